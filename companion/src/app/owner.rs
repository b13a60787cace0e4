//! The customer's own operations on their PIN pad in the app (PROTOCOL.md §6.12, §6.13), over
//! the same flows as `pinbridge pin change` and `pinbridge device wipe`: every PIN is typed on
//! the PIN pad's keypad, and the result is told in plain words.

use serde::Serialize;

use super::ops::refresh_status;
use super::{AppCore, AppError, Operation, ProgressSink, sink_for};
use crate::flows::{self as core};

/// How a PIN change ended, for the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum PinChangeVerdict {
    /// The bank stored the new PIN and the PIN pad confirmed the bank's verdict.
    Changed,
    /// The current PIN was wrong: nothing changed, one try fewer.
    WrongPin,
    /// The current PIN was wrong too often: the PIN is blocked.
    Blocked,
    /// Anything else the bank or the PIN pad said (declined, bank error, forged answer).
    NotChanged,
}

/// `pin_change`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PinChangeResult {
    /// The verdict.
    pub verdict: PinChangeVerdict,
    /// PIN tries left after a wrong current PIN.
    pub tries_left: Option<i64>,
    /// What the PIN pad's screen says.
    pub device_text: String,
    /// Plain words for the customer.
    pub message: String,
}

/// `device_wipe`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WipeResult {
    /// The wiped PIN pad.
    pub serial: String,
    /// The bank accepted the PIN pad's signed receipt (the binding ended there).
    pub bank_notified: bool,
    /// Plain words for the customer.
    pub message: String,
}

/// The verdict and the words for a finished PIN change.
fn pin_words(outcome: &core::pin::PinChangeOutcome) -> (PinChangeVerdict, String) {
    if outcome.changed() {
        return (
            PinChangeVerdict::Changed,
            "PIN changed: use the new PIN from now on.".to_owned(),
        );
    }
    match outcome.bank_result.as_str() {
        "old_pin_incorrect" => (
            PinChangeVerdict::WrongPin,
            match outcome.pin_tries_left {
                Some(1) => "The current PIN was wrong: the PIN is not changed. 1 try left before \
                            the PIN is blocked."
                    .to_owned(),
                Some(n) => format!(
                    "The current PIN was wrong: the PIN is not changed. {n} tries left before \
                     the PIN is blocked."
                ),
                None => "The current PIN was wrong: the PIN is not changed.".to_owned(),
            },
        ),
        "pin_blocked" => (
            PinChangeVerdict::Blocked,
            "The current PIN was wrong too many times: the PIN is blocked. Contact your bank."
                .to_owned(),
        ),
        _ => (
            PinChangeVerdict::NotChanged,
            format!(
                "The PIN is not changed (bank: {}; PIN pad: {}).",
                outcome.bank_result.replace('_', " "),
                outcome.display_text
            ),
        ),
    }
}

impl AppCore {
    /// The logged-in customer changes their PIN on the PIN pad's keypad: the current PIN, the
    /// new PIN, the new PIN again; the bank verifies the current one.
    pub async fn pin_change(
        &self,
        session_id: &str,
        progress: ProgressSink,
    ) -> Result<PinChangeResult, AppError> {
        let (login, bank, device_id) = {
            let tables = self.tables();
            let entry = tables
                .logins
                .get(session_id)
                .ok_or_else(|| AppError::NotLoggedIn("the session has ended; log in again"))?;
            (
                entry.login.clone(),
                entry.bank.clone(),
                entry.device_id.clone(),
            )
        };
        let slot = self.slot(&device_id)?;
        let keys = self.keystore_for(&device_id).await?;
        let mut host = keys.find(&slot.serial)?.ok_or_else(|| {
            AppError::NotPaired(format!("{} is not paired with this computer", slot.serial))
        })?;
        let _op = Operation::begin(&slot, progress.clone());
        let mut sink = sink_for(&slot);
        let result = {
            let mut session = slot.session.lock().await;
            core::pin::change_pin(&mut session, &bank, &login, &mut host, &mut sink).await
        };
        // The device's counter moved whatever the outcome: keep it.
        keys.save(&host)?;
        refresh_status(&slot).await;
        self.push_devices();
        let outcome = result?;
        let (verdict, message) = pin_words(&outcome);
        tracing::info!(
            target: "companion::bank",
            "{}: PIN change: bank {}, device {}",
            slot.serial,
            outcome.bank_result,
            outcome.device_result
        );
        progress(super::DeviceProgress::Stage {
            stage: super::Stage::Done,
        });
        Ok(PinChangeResult {
            verdict,
            tries_left: outcome.pin_tries_left,
            device_text: outcome.display_text,
            message,
        })
    }

    /// The owner wipes the connected PIN pad after confirming on its keypad; the PIN pad's
    /// signed receipt goes to the bank, which ends the binding. This computer's pairing with
    /// it and its customer here are forgotten, and any login on it ends.
    pub async fn device_wipe(
        &self,
        device_id: &str,
        progress: ProgressSink,
    ) -> Result<WipeResult, AppError> {
        let slot = self.slot(device_id)?;
        // A bank that cannot be reached is no reason not to wipe: the result says so.
        let bank = self.bank().await.ok();
        let _op = Operation::begin(&slot, progress.clone());
        let mut sink = sink_for(&slot);
        let outcome = {
            let mut session = slot.session.lock().await;
            core::pin::wipe_device(&mut session, bank.as_ref(), &mut sink).await?
        };
        {
            let mut tables = self.tables();
            let ended: Vec<String> = tables
                .logins
                .iter()
                .filter(|(_, l)| l.device_id == device_id)
                .map(|(id, _)| id.clone())
                .collect();
            for id in ended {
                tables.payments.retain(|_, p| p.session_id != id);
                tables.logins.remove(&id);
            }
        }
        self.forget_binding(device_id, &outcome.serial);
        refresh_status(&slot).await;
        self.push_devices();
        tracing::warn!(
            target: "companion::devices",
            "{}: wiped by its owner; bank told: {}",
            outcome.serial,
            outcome.bank_notified
        );
        progress(super::DeviceProgress::Stage {
            stage: super::Stage::Done,
        });
        let message = if outcome.bank_notified {
            format!(
                "{} is wiped: its keys, pairings and payment data are erased, and your bank \
                 ended its link to you. A branch can set it up again for a new owner.",
                outcome.serial
            )
        } else {
            format!(
                "{} is wiped: its keys, pairings and payment data are erased. Your bank could \
                 not be told now: report the PIN pad at your bank (or report it lost) so the \
                 bank ends its link to you.",
                outcome.serial
            )
        };
        Ok(WipeResult {
            serial: outcome.serial,
            bank_notified: outcome.bank_notified,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::pin::PinChangeOutcome;

    fn outcome(bank: &str, device: &str, tries: Option<i64>) -> PinChangeOutcome {
        PinChangeOutcome {
            change_id: "c-1".into(),
            bank_result: bank.into(),
            pin_tries_left: tries,
            device_result: device.into(),
            indicator: "safe".into(),
            display_text: "PIN changed".into(),
        }
    }

    #[test]
    fn each_pin_change_outcome_is_told_in_plain_words() {
        let (v, text) = pin_words(&outcome("changed", "approved", None));
        assert_eq!(v, PinChangeVerdict::Changed);
        assert!(text.contains("new PIN"), "{text}");
        let (v, text) = pin_words(&outcome("old_pin_incorrect", "pin_incorrect", Some(2)));
        assert_eq!(v, PinChangeVerdict::WrongPin);
        assert!(text.contains("2 tries left"), "{text}");
        let (_, text) = pin_words(&outcome("old_pin_incorrect", "pin_incorrect", Some(1)));
        assert!(text.contains("1 try left"), "{text}");
        let (v, _) = pin_words(&outcome("pin_blocked", "account_blocked", None));
        assert_eq!(v, PinChangeVerdict::Blocked);
        // Changed at the bank but the device did not confirm it genuine: not told "changed".
        let mut forged = outcome("changed", "approved", None);
        forged.indicator = "danger".into();
        assert_eq!(pin_words(&forged).0, PinChangeVerdict::NotChanged);
    }
}
