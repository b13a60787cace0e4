//! `pinbridge device report-lost` and the staff commands that act on a PIN pad that is not
//! plugged into this computer (CN101093566A): unpair every computer, rebind the customer to a
//! replacement, and look at its record (with what it answered to the bank's commands). Revoke
//! and lock/unlock by serial live with the other staff commands; `device wipe` and `pin
//! change` in `owner.rs`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use companion::flows;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use companion::error::ErrorKind;

use crate::commands::{
    CliError, CommandResult, Connection, Reporter, StaffLogin, bank, open_device, serial_part,
    staff_token,
};
use companion::bank::BankClient;
use firmware_protocol::message::{GetStatus, Request, Response};

/// The customer's own commands about their PIN pad.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Report your PIN pad lost or stolen (no PIN pad and no login needed): the bank locks
    /// and revokes it at once. Uses the loss-report code you got at enrolment, from
    /// --code-file, PINBRIDGE_LOSS_REPORT_CODE or a prompt.
    ReportLost(ReportLost),
    /// Wipe the connected PIN pad (confirm with OK on its keypad): its keys, pairings and
    /// payment data are erased and it returns to the factory state; the bank is told, and the
    /// binding ends there (a new owner's PIN pad is initialised again at a branch).
    Wipe(crate::owner::WipeArgs),
    /// The connected PIN pad: genuine or not (its signed integrity report over a fresh nonce,
    /// its certificate), lifecycle, tamper, lock, firmware and certificate expiry.
    Info(InfoArgs),
}

/// `pinbridge device info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Public key (SEC1 hex) of a device-issuing CA this installation trusts; repeat for
    /// several, or give them comma-separated in PINBRIDGE_DEVICE_CA. Without one the issuer
    /// is not checked and the PIN pad is reported "not verified".
    #[arg(
        long = "device-ca",
        value_name = "HEX",
        env = "PINBRIDGE_DEVICE_CA",
        value_delimiter = ','
    )]
    pub device_ca: Vec<String>,
}

/// `pinbridge device report-lost`.
#[derive(Debug, Args)]
pub struct ReportLost {
    /// The PIN pad's serial (printed on it and on the enrolment slip).
    #[arg(long)]
    pub serial: String,
    /// Your customer id.
    #[arg(long)]
    pub customer: String,
    /// A file whose first line is the loss-report code.
    #[arg(long, value_name = "FILE")]
    pub code_file: Option<PathBuf>,
}

const LOSS_CODE_ENV: &str = "PINBRIDGE_LOSS_REPORT_CODE";

fn loss_code(args: &ReportLost) -> Result<Zeroizing<String>, CliError> {
    if let Some(path) = &args.code_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?,
        );
        let code = text.lines().next().unwrap_or_default().trim();
        if code.is_empty() {
            return Err(CliError::input(format!(
                "{}: the first line is empty",
                path.display()
            )));
        }
        return Ok(Zeroizing::new(code.to_owned()));
    }
    if let Ok(code) = std::env::var(LOSS_CODE_ENV)
        && !code.trim().is_empty()
    {
        return Ok(Zeroizing::new(code.trim().to_owned()));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rpassword::prompt_password("Loss-report code (from your enrolment slip): ")
            .map(Zeroizing::new)
            .map_err(|e| CliError::input(format!("cannot read the code from the terminal: {e}")));
    }
    Err(CliError::input(format!(
        "no loss-report code: give --code-file FILE or set {LOSS_CODE_ENV} (not on a terminal, \
         so there is no prompt)"
    )))
}

/// `pinbridge device ...`.
pub async fn device(connection: &Connection, json: bool, command: DeviceCommand) -> CommandResult {
    match command {
        DeviceCommand::Wipe(args) => crate::owner::wipe(connection, json, &args).await,
        DeviceCommand::Info(args) => device_info(connection, &args).await,
        DeviceCommand::ReportLost(args) => {
            let client = bank(connection)?;
            let serial = serial_part(&args.serial)?;
            let code = loss_code(&args)?;
            let answer = flows::remote::report_lost(&client, serial, &args.customer, &code)
                .await
                .map_err(CliError::from)?;
            Ok(json!({
                "reportedLost": serial,
                "state": answer["state"],
                "lines": [format!(
                    "{serial} is locked and revoked at the bank: it can no longer log in, and \
                     it wipes itself when it next reaches the bank or a PinBridge app"
                )],
            }))
        }
    }
}

async fn device_info(connection: &Connection, args: &InfoArgs) -> CommandResult {
    let mut cas = Vec::new();
    for text in &args.device_ca {
        cas.push(
            companion::integrity::ca_from_hex(text)
                .map_err(|e| CliError::input(format!("--device-ca {e}")))?,
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut session = open_device(connection).await?;
    let check = companion::integrity::check(&mut session, &cas, now)
        .await
        .map_err(CliError::from)?;
    let _ = session.close().await;
    let verdict = if !check.failures.is_empty() {
        "not genuine"
    } else if check.issuer_unchecked {
        "not verified (no trusted device CA given)"
    } else {
        "genuine"
    };
    let result = json!({
        "serial": check.info.serial,
        "genuine": verdict,
        "failures": check.failures,
        "lifecycle": check.status.lifecycle.as_str(),
        "tampered": check.status.tampered,
        "lock": check.status.lock.as_str(),
        "indicator": check.status.indicator.as_str(),
        "pairedComputers": check.status.paired_hosts,
        "sessionActive": check.status.session_active,
        "locksInSeconds": check.status.locks_in_seconds,
        "firmwareVersion": check.info.firmware_version,
        "firmwareHash": hex::encode(check.info.firmware_hash.0),
        "certificateValidUntil": check.certificate_window.map(|(_, until)| until),
        "certificateExpiresInDays": check
            .certificate_window
            .map(|(_, until)| (i128::from(until) - i128::from(now)) / 86_400),
    });
    if check.failures.is_empty() {
        Ok(result)
    } else {
        Err(CliError {
            kind: ErrorKind::IntegrityFailed,
            code: "not_genuine",
            message: format!(
                "the PIN pad {} is NOT genuine: {}",
                check.info.serial,
                check.failures.join("; ")
            ),
        })
    }
}

/// Staff: the device forgets every paired computer (a lost or stolen PC), by serial. The
/// signed command reaches the device through any app it is connected to, else at its next
/// login; the customer then pairs the computers they still have again.
pub async fn unpair(
    connection: &Connection,
    login: &StaffLogin,
    serial: &str,
    reason: &str,
) -> CommandResult {
    let client = bank(connection)?;
    let token = staff_token(&client, login).await?;
    let answer = flows::remote::device_command(
        &client,
        &token,
        serial_part(serial)?,
        "forget_hosts",
        reason,
    )
    .await
    .map_err(CliError::from)?;
    Ok(json!({"serial": serial, "command": "forget_hosts", "issued": answer["command"]}))
}

/// Staff: move a customer from a lost PIN pad (`from`, not here) to the one connected:
/// the old one is revoked first (its wipe goes out as for a revoke), so the customer never
/// has two, then the connected one is enrolled (PIN chosen on its keypad) and bound.
pub async fn rebind(
    connection: &Connection,
    json_output: bool,
    login: &StaffLogin,
    from: &str,
    customer: &str,
) -> CommandResult {
    let client = bank(connection)?;
    let token = staff_token(&client, login).await?;
    let mut reporter = Reporter::new(json_output, connection);
    let from = serial_part(from)?;
    // The customer must be the one the bank has bound to the old PIN pad: a typo would
    // otherwise revoke one customer's PIN pad and give another a new one. (A PIN pad whose
    // binding already ended, e.g. reported lost, names no customer to compare.)
    let record = flows::remote::device_view(&client, &token, from)
        .await
        .map_err(CliError::from)?;
    if let Some(bound) = record["customer_id"].as_str()
        && bound != customer
    {
        return Err(CliError::input(format!(
            "{from} is bound to customer {bound}, not {customer}: nothing was revoked"
        )));
    }
    let mut session = open_device(connection).await?;
    let serial = flows::device_serial(&mut session)
        .await
        .map_err(CliError::from)?;
    if serial == from {
        return Err(CliError::input(format!(
            "--from {from} is the PIN pad connected here: rebind moves the customer to another one"
        )));
    }
    let status = match session
        .request(&Request::GetStatus(GetStatus))
        .await
        .map_err(|e| CliError::from(flows::FlowError::from(e)))?
    {
        Response::Status(status) => status,
        other => {
            return Err(CliError::new(
                ErrorKind::Internal,
                format!("{serial} answered GetStatus with {}", other.name()),
            ));
        }
    };
    if let Some(why) = flows::remote::not_ready_for_rebind(&serial, &status) {
        return Err(CliError::new(ErrorKind::NotInitialised, why));
    }
    flows::revoke(
        None,
        &client,
        &token,
        from,
        "Replaced by a new PIN pad",
        &mut reporter.sink(),
    )
    .await
    .map_err(CliError::from)?;
    let enrolment = flows::enrol(
        &mut session,
        &client,
        &token,
        &serial,
        customer,
        &mut reporter.sink(),
    )
    .await
    .map_err(CliError::from)?;
    Ok(enrolled(
        json!({"revoked": from, "bound": serial, "customerId": customer, "events": reporter.events}),
        &enrolment,
    ))
}

/// Adds the loss-report code of an enrolment to a command's result (shown once).
pub fn enrolled(mut result: Value, enrolment: &flows::Enrolment) -> Value {
    if let Some(code) = &enrolment.loss_report_code {
        result["lossReportCode"] = Value::String(code.to_string());
        result["lines"] = json!([
            "Give the customer the loss-report code below, to keep apart from the PIN pad: it \
             reports the PIN pad lost with `pinbridge device report-lost`."
        ]);
    }
    result
}

/// Staff: the bank's record of a PIN pad by serial, with its latest signed commands and what
/// the device answered to each, in plain lines too.
pub async fn device_record(client: &BankClient, login: &StaffLogin, serial: &str) -> CommandResult {
    let token = staff_token(client, login).await?;
    let mut view = flows::remote::device_view(client, &token, serial_part(serial)?)
        .await
        .map_err(CliError::from)?;
    let mut lines = vec![format!(
        "{}: {}{}, customer {}",
        view["serial"].as_str().unwrap_or(serial),
        view["state"].as_str().unwrap_or("unknown"),
        if view["locked_by_bank"].as_bool() == Some(true) {
            ", locked by the bank"
        } else {
            ""
        },
        view["customer_id"].as_str().unwrap_or("none"),
    )];
    for command in view["commands"].as_array().into_iter().flatten() {
        lines.push(command_line(command));
    }
    view["lines"] = json!(lines);
    Ok(view)
}

/// One command and the device's answer to it, for staff.
fn command_line(command: &Value) -> String {
    let head = format!(
        "#{} {} (by {})",
        command["sequence"],
        command["command"].as_str().unwrap_or("?"),
        command["issued_by"].as_str().unwrap_or("?")
    );
    let result = &command["result"];
    let told = match result["outcome"].as_str() {
        None => "no answer reported yet".to_owned(),
        Some("refused") => format!(
            "the device refused it ({})",
            result["device_error"].as_str().unwrap_or("?")
        ),
        Some(outcome) => format!(
            "{} (device: {}, {})",
            if outcome == "applied" {
                "applied"
            } else {
                "NOT applied"
            },
            result["lifecycle"].as_str().unwrap_or("?"),
            result["lock"].as_str().unwrap_or("?")
        ),
    };
    let evidence = if result.is_object() {
        "; reported by the app that relayed it, not signed by the device"
    } else {
        ""
    };
    format!("{head}: {told}{evidence}")
}
