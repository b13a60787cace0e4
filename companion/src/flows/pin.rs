//! The customer's own operations on their PIN pad (issue 14 item 7; PROTOCOL.md §6.12, §6.13),
//! relayed like the payment flow: the companion never sees a PIN (the device enciphers both
//! the current and the new one under the session PIN key) and cannot forge or replay a step
//! (the bank MACs its requests, the device MACs its answer, both with counters).
//!
//! - [`change_pin`]: the bank prepares a `ChangePin`; the device asks for the current PIN, the
//!   new PIN and the new PIN again on its keypad; the bank verifies the current PIN (a wrong one
//!   counts toward blocking, as in payments) and stores the new one; the device shows the
//!   bank's MACed verdict.
//! - [`wipe_device`]: the owner confirms on the keypad; the device erases its keys, pairings
//!   and payment data and signs a receipt, which goes to the bank when one is given (the
//!   binding ends there too).

use firmware_protocol::message::{ChangePin, VerifyPinChange, WipeDevice};
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    BankSession, DeviceAnswer, EventSink, FlowError, FlowEvent, device_error, field, relay_field,
    relay_verdict, send_to_device,
};
use crate::bank::BankClient;
use crate::keystore::PairedHost;
use crate::session::Session;

/// How a PIN change ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PinChangeOutcome {
    /// The bank's id of the change.
    pub change_id: String,
    /// The bank's verdict: `changed`, `old_pin_incorrect`, `pin_blocked`, `declined`, ...
    pub bank_result: String,
    /// PIN tries left, after a wrong current PIN.
    pub pin_tries_left: Option<i64>,
    /// What the device accepted after checking the bank's MAC (`approved` for a change).
    pub device_result: String,
    /// The device's indicator (`safe` or `danger`).
    pub indicator: String,
    /// What the device's display shows.
    pub display_text: String,
}

impl PinChangeOutcome {
    /// Changed at the bank and confirmed genuine by the device.
    pub fn changed(&self) -> bool {
        self.bank_result == "changed"
            && self.device_result == "approved"
            && self.indicator == "safe"
    }
}

/// Change the PIN of the logged-in device (see the module documentation).
pub async fn change_pin(
    session: &mut Session,
    bank: &BankClient,
    login: &BankSession,
    host: &mut PairedHost,
    events: EventSink<'_>,
) -> Result<PinChangeOutcome, FlowError> {
    let prepared = bank
        .post("/v1/pin/change", Some(&login.token), &json!({}))
        .await?;
    let change_id = path_segment("change_id", field(&prepared, "change_id")?)?.to_owned();
    let entered =
        relay_field::<ChangePin>(session, Some(host), &prepared, "change_pin", events).await?;
    // The device's refusal (cancelled, timed out, the new entries differed) goes to the bank
    // too, so the prepared change is closed there; nothing changed and no try was counted.
    let verdict = bank
        .post(
            &format!("/v1/pin/change/{change_id}/entered"),
            Some(&login.token),
            &json!({"pin_change_entered": entered.to_hex()?}),
        )
        .await;
    let verdict = match (verdict, entered) {
        (_, DeviceAnswer::Refused { cause, .. }) => return Err(device_error(cause)),
        (v, _) => v?,
    };
    let bank_result = field(&verdict, "result")?.to_owned();
    let pin_tries_left = verdict["pin_tries_left"].as_i64();
    events(FlowEvent::BankVerdict {
        transaction_id: change_id.clone(),
        result: bank_result.clone(),
        replayed: verdict["replayed"].as_bool().unwrap_or(false),
        pin_tries_left,
    });
    let decision =
        relay_verdict::<VerifyPinChange>(session, host, &verdict, "verify_pin_change", events)
            .await?;
    let outcome = PinChangeOutcome {
        change_id,
        bank_result,
        pin_tries_left,
        device_result: decision.result,
        indicator: decision.indicator,
        display_text: decision.display_text,
    };
    Ok(outcome)
}

/// How a wipe ended: the device is wiped; the bank was told or not.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WipeOutcome {
    /// The device's serial (from its signed receipt).
    pub serial: String,
    /// The receipt (`DeviceWiped`, hex): the bank accepts it later too, until the device is
    /// initialised again.
    pub receipt: String,
    /// Whether the bank accepted the receipt (the binding ended there).
    pub bank_notified: bool,
    /// The bank's answer, or why it could not be told.
    pub bank: Value,
}

/// Wipe the connected device after the owner confirms on its keypad (see the module
/// documentation). `bank`: where to send the receipt (`None`: nobody is told now).
pub async fn wipe_device(
    session: &mut Session,
    bank: Option<&BankClient>,
    events: EventSink<'_>,
) -> Result<WipeOutcome, FlowError> {
    let receipt = send_to_device(session, None, &WipeDevice, events)
        .await?
        .into_answer()?;
    let serial = receipt.device_serial.clone();
    let receipt_hex = DeviceAnswer::Answer(receipt).to_hex()?;
    let (bank_notified, bank_answer) = match bank {
        None => (false, json!({"error": "no bank given"})),
        Some(bank) => match notify_bank(bank, &serial, &receipt_hex).await {
            Ok(answer) => (true, answer),
            // The device is wiped whatever the bank says: the failure is reported, not fatal.
            Err(error) => (false, json!({"error": error.to_string()})),
        },
    };
    Ok(WipeOutcome {
        serial,
        receipt: receipt_hex,
        bank_notified,
        bank: bank_answer,
    })
}

/// Hands a wipe receipt to the bank (no session: the device has no keys left to log in).
pub async fn notify_bank(
    bank: &BankClient,
    serial: &str,
    receipt_hex: &str,
) -> Result<Value, FlowError> {
    let serial = path_segment("serial", serial)?;
    Ok(bank
        .post(
            &format!("/v1/devices/{serial}/wiped"),
            None,
            &json!({"device_wiped": receipt_hex}),
        )
        .await?)
}

/// `text` if it can go into a URL path as it is (ids and serials: letters, digits, `-_.`).
fn path_segment<'t>(what: &'static str, text: &'t str) -> Result<&'t str, FlowError> {
    let fine = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(text)
    } else {
        Err(FlowError::BadBankMessage {
            what,
            reason: "not a plain identifier".into(),
        })
    }
}
