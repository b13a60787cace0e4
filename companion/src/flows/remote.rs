//! Acting on a PIN pad that is not here, by its serial (CN101093566A): the customer's own loss
//! report, and staff's lock, unlock and unpair. The bank signs the command and pushes it to
//! any app the PIN pad is connected to with a customer logged in, or hands it over at the PIN
//! pad's next login attempt. Revoke by serial is [`super::revoke`] without a session.
//! The CLI (`pinbridge device report-lost`, `staff lock/unlock/unpair`) and the desktop app
//! both call these, and relay a pushed command with [`apply_bank_command`], which tells the
//! bank what the device answered ([`report_command_result`]).

use firmware_protocol::message::{BankCommand, Lifecycle, Status};
use serde_json::{Value, json};

use super::{DeviceAnswer, EventSink, FlowError, FlowEvent, Step, relay_field};
use crate::bank::{BankClient, BearerToken};
use crate::session::Session;

/// A device serial as a URL path or query part (letters, digits, `-`, `_`, `.`): never
/// anything that would change the path it is put in.
pub fn serial_part(serial: &str) -> Result<&str, String> {
    if !serial.is_empty()
        && serial
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(serial)
    } else {
        Err(format!(
            "--serial {serial:?}: letters, digits, '-', '_' and '.' only"
        ))
    }
}

/// Staff: a signed `lock`, `unlock` or `forget_hosts` (unpair every computer) for a device,
/// by serial. `serial` must have passed [`serial_part`]. Returns the bank's answer
/// (`serial`, `command`, `bank_command`).
pub async fn device_command(
    bank: &BankClient,
    staff: &BearerToken,
    serial: &str,
    command: &str,
    reason: &str,
) -> Result<Value, FlowError> {
    Ok(bank
        .post(
            &format!("/v1/devices/{serial}/commands"),
            Some(staff),
            &json!({"command": command, "reason": reason}),
        )
        .await?)
}

/// The customer's loss report, with the loss-report code from their enrolment slip: no PIN
/// pad, no login, no staff. The bank locks the device at once and queues a signed wipe.
/// `serial` must have passed [`serial_part`].
pub async fn report_lost(
    bank: &BankClient,
    serial: &str,
    customer_id: &str,
    code: &str,
) -> Result<Value, FlowError> {
    Ok(bank
        .post(
            &format!("/v1/devices/{serial}/report-lost"),
            None,
            &json!({"customer_id": customer_id, "loss_report_code": code}),
        )
        .await?)
}

/// Staff: the bank's record of a device (state, bank lock, bound customer), by serial.
/// `serial` must have passed [`serial_part`].
pub async fn device_view(
    bank: &BankClient,
    staff: &BearerToken,
    serial: &str,
) -> Result<Value, FlowError> {
    Ok(bank
        .get(&format!("/v1/devices/{serial}"), Some(staff))
        .await?)
}

/// Acts on a `bank_command` event from the bank's stream (staff revoked, locked or unlocked
/// the device): when it is for the connected device `serial`, relays the signed command (the
/// device checks the bank's signature and sequence itself), tells `report_to` what the device
/// answered, and returns the device's state after it. A command for another device is left
/// alone (`None`).
pub async fn apply_bank_command(
    session: &mut Session,
    serial: &str,
    data: &Value,
    report_to: Option<&BankClient>,
    events: EventSink<'_>,
) -> Result<Option<Status>, FlowError> {
    if data["serial"].as_str() != Some(serial) {
        return Ok(None);
    }
    events(FlowEvent::Step {
        step: Step::RelayBankCommand,
    });
    let answer = relay_field::<BankCommand>(session, None, data, "bank_command", events).await?;
    if let Some(bank) = report_to {
        report_command_result(bank, serial, data, &answer).await;
    }
    let status = answer.into_answer()?;
    events(FlowEvent::BankCommandApplied {
        serial: serial.to_owned(),
        command: data["command"].as_str().unwrap_or("unknown").to_owned(),
        lifecycle: status.lifecycle.as_str().to_owned(),
        lock: status.lock.as_str().to_owned(),
    });
    Ok(Some(status))
}

/// Tells the bank what the device answered to the signed command in `data["bank_command"]`
/// (its Status, or its refusal), quoting the command. Best effort: the relay happened
/// whatever the bank says, so a failure is logged, not returned. Returns the bank's record.
pub async fn report_command_result(
    bank: &BankClient,
    serial: &str,
    data: &Value,
    answer: &DeviceAnswer<Status>,
) -> Option<Value> {
    let command = data["bank_command"].as_str()?;
    let serial = serial_part(serial).ok()?;
    let answer = match answer.to_hex() {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(target: "companion::bank", "{serial}: the device's answer to a bank command could not be encoded: {error}");
            return None;
        }
    };
    let body = json!({"bank_command": command, "device_answer": answer});
    match bank
        .post(&format!("/v1/devices/{serial}/command-result"), None, &body)
        .await
    {
        Ok(recorded) => {
            tracing::info!(
                target: "companion::bank",
                "{serial}: the bank recorded the device's answer to {}: {}",
                recorded["command"].as_str().unwrap_or("a command"),
                recorded["outcome"].as_str().unwrap_or("?")
            );
            Some(recorded)
        }
        Err(error) => {
            tracing::warn!(target: "companion::bank", "{serial}: the bank could not be told what the device answered to its command: {error}");
            None
        }
    }
}

/// Why a replacement PIN pad in state `status` cannot take a customer now, if it cannot.
/// Rebind revokes the old PIN pad before the customer chooses a PIN on the new one (so they
/// never have two): a replacement that cannot be enrolled would leave them with none.
pub fn not_ready_for_rebind(serial: &str, status: &Status) -> Option<String> {
    if status.tampered {
        return Some(format!("{serial} is tampered: it cannot take a customer"));
    }
    match status.lifecycle {
        Lifecycle::Initialised => None,
        Lifecycle::Manufactured => Some(format!(
            "{serial} is not initialised: initialise it at the bank first; nothing was revoked"
        )),
        Lifecycle::Bound => Some(format!(
            "{serial} already has a customer: use a new or wiped PIN pad; nothing was revoked"
        )),
        Lifecycle::Revoked => Some(format!("{serial} is revoked: it cannot take a customer")),
    }
}
