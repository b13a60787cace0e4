//! `pinbridge staff ...`: branch staff credentials (never on the command line) and the staff
//! operations on a PIN pad and its record at the bank.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use companion::bank::{BankClient, BearerToken};
use companion::error::ErrorKind;
use companion::flows;
use serde_json::json;
use zeroize::Zeroizing;

use super::{CliError, CommandResult, Connection, Reporter, bank, open_device};

/// Branch staff credentials. The password comes from `--staff-password-file`, else
/// `PINBRIDGE_STAFF_PASSWORD`, else a prompt on the terminal (no echo); never from the command
/// line, which every user of the machine sees in the process list.
#[derive(Debug, Clone, Args)]
pub struct StaffLogin {
    /// Staff user name.
    #[arg(long, env = "PINBRIDGE_STAFF_USER")]
    pub staff_user: String,
    /// A file whose first line is the staff password (keep it 0600).
    #[arg(long, value_name = "FILE")]
    pub staff_password_file: Option<PathBuf>,
    /// Refused: a password on the command line shows in the process list.
    #[arg(long = "staff-password", hide = true, value_name = "REFUSED")]
    pub refused_staff_password: Option<String>,
}

/// The environment variable a staff password may come from.
const STAFF_PASSWORD_ENV: &str = "PINBRIDGE_STAFF_PASSWORD";

/// The staff password, from the file, the environment or the terminal (see [`StaffLogin`]).
fn staff_password(login: &StaffLogin) -> Result<Zeroizing<String>, CliError> {
    if login.refused_staff_password.is_some() {
        return Err(CliError::input(format!(
            "--staff-password is refused: a password on the command line shows in the process \
             list of every user of this machine. Use --staff-password-file FILE, set \
             {STAFF_PASSWORD_ENV}, or run on a terminal to be asked for it"
        )));
    }
    if let Some(path) = &login.staff_password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?,
        );
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(CliError::input(format!(
                "{}: the first line (the staff password) is empty",
                path.display()
            )));
        }
        return Ok(Zeroizing::new(password.to_owned()));
    }
    if let Ok(password) = std::env::var(STAFF_PASSWORD_ENV)
        && !password.is_empty()
    {
        return Ok(Zeroizing::new(password));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rpassword::prompt_password(format!("Staff password for {}: ", login.staff_user))
            .map(Zeroizing::new)
            .map_err(|e| {
                CliError::input(format!(
                    "cannot read the staff password from the terminal: {e}"
                ))
            });
    }
    Err(CliError::new(
        ErrorKind::StaffAuthRequired,
        format!(
            "no staff password: give --staff-password-file FILE or set {STAFF_PASSWORD_ENV} \
             (not on a terminal, so there is no prompt)"
        ),
    ))
}

/// Staff operations.
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Initialise the connected PIN pad at the bank (installs its key-block protection key).
    Init(StaffLogin),
    /// Enrol a customer on the connected PIN pad (PIN chosen on the keypad) and bind it.
    Enrol {
        #[command(flatten)]
        login: StaffLogin,
        /// The customer id.
        #[arg(long)]
        customer: String,
    },
    /// Bind a customer to a replacement PIN pad after a revoke (same as enrol).
    Bind {
        #[command(flatten)]
        login: StaffLogin,
        /// The customer id.
        #[arg(long)]
        customer: String,
    },
    /// Make a PIN pad forget every computer paired with it (a lost or stolen PC), by serial
    /// (no device needed: it gets the signed order through any app it is connected to, or at
    /// its next login).
    Unpair {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Computer lost")]
        reason: String,
    },
    /// Move a customer from a lost PIN pad (by serial, not here) to the one connected: the
    /// old one is revoked, the connected one enrolled (PIN on its keypad) and bound.
    Rebind {
        #[command(flatten)]
        login: StaffLogin,
        /// The serial of the PIN pad being replaced.
        #[arg(long)]
        from: String,
        /// The customer id.
        #[arg(long)]
        customer: String,
    },
    /// Revoke a lost or stolen PIN pad (its wipe is relayed if it is connected).
    Revoke {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Reported lost")]
        reason: String,
        /// Also relay the signed wipe to the connected PIN pad.
        #[arg(long)]
        relay: bool,
    },
    /// Lock a PIN pad's payment functions at the bank by serial (no device needed here: a
    /// watcher it is connected to relays the signed lock).
    Lock {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Reported lost")]
        reason: String,
    },
    /// Unlock a PIN pad the bank locked (also lifts a login throttle), by serial.
    Unlock {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Customer verified")]
        reason: String,
    },
    /// A PIN pad's record at the bank by serial (no PIN pad needed): state, bank lock,
    /// customer, and its latest signed commands with what the device answered to each (as
    /// the app that relayed it reported).
    Device {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
    },
    /// The bank's intrusion reports (KCV mismatches, refused key blocks), newest first.
    Intrusions {
        #[command(flatten)]
        login: StaffLogin,
        /// Only this device's.
        #[arg(long)]
        serial: Option<String>,
    },
    /// Operator reset of a tampered PIN pad (then initialise and enrol again).
    ResetTamper {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
    },
}

pub(crate) async fn staff_token(
    bank: &BankClient,
    login: &StaffLogin,
) -> Result<BearerToken, CliError> {
    let password = staff_password(login)?;
    bank.staff_login(&login.staff_user, &password)
        .await
        .map_err(CliError::from)
}

/// A device serial as a URL path or query part (the library's rule, shared with the app).
pub(crate) fn serial_part(serial: &str) -> Result<&str, CliError> {
    flows::remote::serial_part(serial).map_err(CliError::input)
}

/// Staff: a signed lock or unlock for a device, by serial (no device needed: the bank pushes
/// it to the customer's watching app, and hands it out at the device's next login).
async fn staff_device_command(
    client: &BankClient,
    login: &StaffLogin,
    serial: &str,
    command: &str,
    reason: &str,
) -> CommandResult {
    let token = staff_token(client, login).await?;
    let answer =
        flows::remote::device_command(client, &token, serial_part(serial)?, command, reason)
            .await
            .map_err(CliError::from)?;
    Ok(json!({"serial": serial, "command": command, "issued": answer["command"]}))
}

/// `pinbridge staff ...`.
pub async fn staff(connection: &Connection, json: bool, command: StaffCommand) -> CommandResult {
    let client = bank(connection)?;
    let mut reporter = Reporter::new(json, connection);
    match command {
        StaffCommand::Init(login) => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            let serial = flows::initialise(&mut session, &client, &token, &mut reporter.sink())
                .await
                .map_err(CliError::from)?;
            Ok(json!({"initialised": serial, "events": reporter.events}))
        }
        StaffCommand::Enrol { login, customer } | StaffCommand::Bind { login, customer } => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            let serial = flows::device_serial(&mut session)
                .await
                .map_err(CliError::from)?;
            let enrolment = flows::enrol(
                &mut session,
                &client,
                &token,
                &serial,
                &customer,
                &mut reporter.sink(),
            )
            .await
            .map_err(CliError::from)?;
            Ok(crate::lifecycle::enrolled(
                json!({"bound": serial, "customerId": customer, "events": reporter.events}),
                &enrolment,
            ))
        }
        StaffCommand::Unpair {
            login,
            serial,
            reason,
        } => crate::lifecycle::unpair(connection, &login, &serial, &reason).await,
        StaffCommand::Rebind {
            login,
            from,
            customer,
        } => crate::lifecycle::rebind(connection, json, &login, &from, &customer).await,
        StaffCommand::Revoke {
            login,
            serial,
            reason,
            relay,
        } => {
            let token = staff_token(&client, &login).await?;
            let mut session = if relay {
                Some(open_device(connection).await?)
            } else {
                None
            };
            flows::revoke(
                session.as_mut(),
                &client,
                &token,
                &serial,
                &reason,
                &mut reporter.sink(),
            )
            .await
            .map_err(CliError::from)?;
            Ok(json!({"revoked": serial, "events": reporter.events}))
        }
        StaffCommand::Lock {
            login,
            serial,
            reason,
        } => staff_device_command(&client, &login, &serial, "lock", &reason).await,
        StaffCommand::Unlock {
            login,
            serial,
            reason,
        } => staff_device_command(&client, &login, &serial, "unlock", &reason).await,
        StaffCommand::Device { login, serial } => {
            crate::lifecycle::device_record(&client, &login, &serial).await
        }
        StaffCommand::Intrusions { login, serial } => {
            let token = staff_token(&client, &login).await?;
            let path = match &serial {
                Some(serial) => format!("/v1/intrusion-reports?serial={}", serial_part(serial)?),
                None => "/v1/intrusion-reports".to_owned(),
            };
            let answer = client
                .get(&path, Some(&token))
                .await
                .map_err(CliError::from)?;
            Ok(answer)
        }
        StaffCommand::ResetTamper { login, serial } => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            flows::operator_reset(&mut session, &client, &token, &serial, &mut reporter.sink())
                .await
                .map_err(CliError::from)?;
            Ok(json!({"reset": serial, "events": reporter.events}))
        }
    }
}
