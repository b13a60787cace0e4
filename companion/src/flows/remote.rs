//! Acting on a PIN pad that is not here, by its serial (CN101093566A): the customer's own loss
//! report, and staff's lock, unlock and unpair. The bank signs the command and pushes it to
//! any app the PIN pad is connected to with a customer logged in, or hands it over at the PIN
//! pad's next login attempt. Revoke by serial is [`super::revoke`] without a session.
//! The CLI (`pinbridge device report-lost`, `staff lock/unlock/unpair`) and the desktop app
//! both call these.

use serde_json::{Value, json};

use super::FlowError;
use crate::bank::{BankClient, BearerToken};

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
