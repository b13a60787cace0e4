//! A device's life after issue, as the app takes part in it (CN101093566A): the bank's signed
//! commands (staff or the customer revoked, locked or unlocked the device) relayed to the
//! connected device the moment the bank pushes them, and logout at both ends (the bank revokes
//! the token and signs an EndSession, which the device obeys by dropping its session keys).
//!
//! The app never decides a command: it relays the bank's signed bytes, the device checks the
//! bank's signature and sequence itself, and the app reports what the device's own status says
//! afterwards.

use std::collections::HashMap;
use std::sync::Arc;

use firmware_protocol::message::{GetStatus, Status};
use serde_json::{Value, json};

use super::confirmations::CommandSender;
use super::lifecycle_types::*;
use super::types::*;
use super::{AppCore, AppError, LoginEntry, Slot, lock};
use crate::bank::BankError;
use crate::flows::{self as core, FlowEvent};

/// What relaying one command to a device did.
struct Relayed {
    /// The device's state afterwards says it obeyed.
    applied: bool,
    /// Its status afterwards, when it answered.
    status: Option<Status>,
    /// Why it did not obey (its refusal, or why it could not be asked).
    why_not: Option<String>,
}

/// Commands for devices that were unplugged when the bank sent them, by serial: relayed first
/// when the device is back.
pub(super) type Held = HashMap<String, Vec<Value>>;

/// The device's own status says it is in the state the command asks for.
fn obeyed(kind: BankCommandKind, status: &Status) -> bool {
    status.shows_in_force(kind.wire())
}

/// Plain words for the customer about a command the bank sent their PIN pad.
fn words(kind: BankCommandKind, serial: &str, relayed: &Relayed) -> String {
    if relayed.applied {
        return match kind {
            BankCommandKind::Wipe => format!(
                "Your bank revoked this PIN pad ({serial}); it has been wiped and can no longer \
                 be used. You are logged out."
            ),
            BankCommandKind::Lock => format!(
                "Your bank locked this PIN pad ({serial}); it cannot pay until the bank unlocks \
                 it. You are logged out."
            ),
            BankCommandKind::Unlock => {
                format!("Your bank unlocked this PIN pad ({serial}); you can use it again.")
            }
            BankCommandKind::ForgetHosts => format!(
                "Your bank made this PIN pad ({serial}) forget the computers paired with it: \
                 pair it again, then log in."
            ),
            BankCommandKind::EndSession => {
                format!("The bank ended your session on this PIN pad ({serial}); log in again.")
            }
        };
    }
    let why = relayed.why_not.as_deref().unwrap_or("no answer");
    match kind {
        BankCommandKind::Wipe => format!(
            "Your bank revoked this PIN pad ({serial}) and ended your session, but the PIN pad \
             has not been wiped yet ({why}); it is wiped when it next reaches the bank or this app."
        ),
        BankCommandKind::Lock => format!(
            "Your bank locked this PIN pad ({serial}) and ended your session, but the PIN pad has \
             not locked itself yet ({why}); the bank refuses it meanwhile."
        ),
        _ => format!("Your bank sent this PIN pad ({serial}) a command it did not take ({why})."),
    }
}

impl AppCore {
    /// Starts the follower of one login's bank commands: the bank watch sends each command
    /// pushed for the customer to the returned sender, and the task relays those for the
    /// login's device, one at a time. The task stops when the login ends (it is tied to the
    /// login's [`super::BankWatch`]) or the core goes.
    pub(super) fn follow_bank_commands(
        self: &Arc<Self>,
        session_id: &str,
    ) -> (CommandSender, tokio::task::JoinHandle<()>) {
        let (commands, mut pushed) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let core = Arc::downgrade(self);
        let session_id = session_id.to_owned();
        let task = tokio::spawn(async move {
            while let Some(data) = pushed.recv().await {
                let Some(core) = core.upgrade() else {
                    return;
                };
                if core.on_bank_command(&session_id, &data).await {
                    return;
                }
            }
        });
        (commands, task)
    }

    /// Acts on one command the bank pushed to a login: relays it to the login's device (after
    /// any flow in progress on it), tells the windows what the device did, and ends the login
    /// when the bank ended the session (wipe, lock, forget hosts). Returns whether the login
    /// ended.
    async fn on_bank_command(&self, session_id: &str, data: &Value) -> bool {
        let Some((device_id, serial)) = self
            .tables()
            .logins
            .get(session_id)
            .map(|l| (l.device_id.clone(), l.login.serial.clone()))
        else {
            return true;
        };
        // Another of the customer's devices: its own login (if any) acts on it.
        if data["serial"].as_str() != Some(serial.as_str()) {
            return false;
        }
        let name = data["command"].as_str().unwrap_or_default();
        let Some(kind) = BankCommandKind::from_bank(name) else {
            tracing::warn!(target: "companion::bank", "{serial}: the bank sent a command this app does not know ({name:?}); left alone");
            return false;
        };
        let relayed = match self.slot(&device_id) {
            Ok(slot) => self.relay(&slot, kind, data).await,
            Err(_) => {
                // Unplugged meanwhile: relayed first when it is back (follow_link).
                lock(&self.held)
                    .entry(serial.clone())
                    .or_default()
                    .push(data.clone());
                Relayed {
                    applied: false,
                    status: None,
                    why_not: Some("it is not connected; the app relays it when it is back".into()),
                }
            }
        };
        // The bank ended the session itself for these (its token is refused from now on).
        let ends = matches!(
            kind,
            BankCommandKind::Wipe
                | BankCommandKind::Lock
                | BankCommandKind::ForgetHosts
                | BankCommandKind::EndSession
        );
        self.report_command(&device_id, &serial, kind, &relayed, ends);
        if ends {
            let ended = {
                let mut tables = self.tables();
                tables.payments.retain(|_, p| p.session_id != session_id);
                tables.logins.remove(session_id)
            };
            // Dropping the login stops its bank watch and this follower: nothing may come
            // after this line in the follower's task.
            drop(ended);
        }
        ends
    }

    /// Relays a command held for a device that was unplugged when the bank sent it.
    pub(super) async fn relay_held(&self, device_id: &str, serial: &str) {
        let Some(held) = lock(&self.held).remove(serial) else {
            return;
        };
        let Ok(slot) = self.slot(device_id) else {
            return;
        };
        for data in held {
            let Some(kind) = data["command"]
                .as_str()
                .and_then(BankCommandKind::from_bank)
            else {
                continue;
            };
            let relayed = self.relay(&slot, kind, &data).await;
            self.report_command(device_id, serial, kind, &relayed, false);
        }
    }

    /// Relays one signed command to a device, after any flow in progress on it (the session
    /// lock is taken in turn: a payment at the PIN prompt finishes first), and reads the
    /// device's state afterwards.
    async fn relay(&self, slot: &Arc<Slot>, kind: BankCommandKind, data: &Value) -> Relayed {
        let mut trace = |event: FlowEvent| crate::logfile::trace_flow_event(&event);
        // The bank is told what the device answered (staff see it with the device's record).
        let bank = self.bank().await.ok();
        let (status, why_not) = {
            let mut session = slot.session.lock().await;
            match core::apply_bank_command(
                &mut session,
                &slot.serial,
                data,
                bank.as_ref(),
                &mut trace,
            )
            .await
            {
                Ok(Some(status)) => (Some(status), None),
                Ok(None) => (None, Some("the command names another device".to_owned())),
                Err(error) => {
                    // Refused is not necessarily undone: the same command relayed already (by
                    // staff at this computer) is refused as stale. The device's state says.
                    let status = session.ask(GetStatus).await.ok();
                    (status, Some(error.to_string()))
                }
            }
        };
        if let Some(status) = status {
            *lock(&slot.status) = Some(status);
        }
        let applied = status.is_some_and(|s| obeyed(kind, &s));
        Relayed {
            applied,
            status,
            why_not: if applied { None } else { why_not },
        }
    }

    /// Logs and shows what a command did; a wiped device is no longer anyone's here either.
    fn report_command(
        &self,
        device_id: &str,
        serial: &str,
        kind: BankCommandKind,
        relayed: &Relayed,
        session_ended: bool,
    ) {
        if relayed.applied {
            tracing::warn!(target: "companion::bank", "{serial}: bank command {kind:?} relayed; the device obeyed");
        } else {
            tracing::warn!(
                target: "companion::bank",
                "{serial}: bank command {kind:?} not taken: {}",
                relayed.why_not.as_deref().unwrap_or("no answer")
            );
        }
        if kind == BankCommandKind::Wipe && relayed.applied {
            self.forget_binding(device_id, serial);
        }
        (self.emit)(CoreEvent::BankCommand {
            device_id: device_id.to_owned(),
            serial: serial.to_owned(),
            command: kind,
            applied: relayed.applied,
            lifecycle: relayed.status.map(|s| s.lifecycle.into()),
            lock: relayed.status.map(|s| s.lock.into()),
            session_ended,
            message: words(kind, serial, relayed),
        });
        self.push_devices();
    }

    /// Ends a customer session at both ends: the bank revokes the token and signs an
    /// EndSession, which is relayed to the device so it drops its session keys. When the bank
    /// cannot be reached the session is still forgotten here, and the result says so.
    pub async fn logout(&self, session_id: &str) -> Result<LogoutResult, AppError> {
        let entry = {
            let mut tables = self.tables();
            tables.payments.retain(|_, p| p.session_id != session_id);
            tables.logins.remove(session_id)
        };
        let Some(LoginEntry {
            login,
            bank,
            device_id,
            _confirmations: watch,
            ..
        }) = entry
        else {
            return Ok(LogoutResult {
                bank_ended: false,
                device_cleared: false,
                message: "This session had already ended.".into(),
            });
        };
        // Nothing more is pushed to an ending session.
        drop(watch);
        let serial = login.serial.clone();
        let answer = bank.logout(&login.token).await;
        // The token is zeroized here, whatever the bank said.
        drop(login);
        let end_session = match answer {
            Ok(answer) => answer["bank_command"].as_str().map(str::to_owned),
            // The bank had already ended it (a lock, a wipe, expiry): nothing left to revoke.
            Err(BankError::Refused { status: 401, .. }) => None,
            Err(error) => {
                tracing::warn!(target: "companion::bank", "logout: the bank could not be told: {error}");
                self.push_devices();
                return Ok(LogoutResult {
                    bank_ended: false,
                    device_cleared: false,
                    message: format!(
                        "You are logged out on this computer, but the bank could not be told \
                         ({error}): the bank ends the session when it expires, and the PIN pad \
                         keeps its session keys until then or until it restarts."
                    ),
                });
            }
        };
        tracing::info!(target: "companion::bank", "session closed at the bank");
        let relayed = match (self.slot(&device_id), end_session) {
            (Ok(slot), Some(hex)) => {
                let data = json!({"serial": serial, "command": "end_session", "bank_command": hex});
                Some(self.relay(&slot, BankCommandKind::EndSession, &data).await)
            }
            _ => None,
        };
        self.push_devices();
        let (device_cleared, message) = match relayed {
            Some(Relayed { applied: true, .. }) => (
                true,
                "Logged out: the bank ended the session and the PIN pad dropped its session keys."
                    .to_owned(),
            ),
            Some(Relayed { why_not, .. }) => (
                false,
                format!(
                    "Logged out at the bank, but the PIN pad did not drop its session keys ({}); \
                     it does when it restarts.",
                    why_not.as_deref().unwrap_or("no answer")
                ),
            ),
            None => (
                false,
                "Logged out at the bank. The PIN pad was not connected (or the bank had already \
                 ended the session); it drops its session keys when it restarts."
                    .to_owned(),
            ),
        };
        tracing::info!(target: "companion::devices", "{serial}: logout; device cleared: {device_cleared}");
        Ok(LogoutResult {
            bank_ended: true,
            device_cleared,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware_protocol::message::{
        Indicator, Lifecycle as DeviceLifecycle, LockState as DeviceLock,
    };

    fn status(lifecycle: DeviceLifecycle, lock: DeviceLock, session_active: bool) -> Status {
        Status {
            lifecycle,
            tampered: false,
            lock,
            indicator: Indicator::Off,
            paired_hosts: 1,
            session_active,
            bank_sequence: 3,
            locks_in_seconds: None,
        }
    }

    #[test]
    fn a_command_counts_as_obeyed_only_when_the_device_state_says_so() {
        let bound = status(DeviceLifecycle::Bound, DeviceLock::Unlocked, true);
        let wiped = status(DeviceLifecycle::Revoked, DeviceLock::LockedByBank, false);
        let locked = status(DeviceLifecycle::Bound, DeviceLock::LockedByBank, false);
        assert!(!obeyed(BankCommandKind::Wipe, &bound));
        assert!(obeyed(BankCommandKind::Wipe, &wiped));
        assert!(!obeyed(BankCommandKind::Lock, &bound));
        assert!(obeyed(BankCommandKind::Lock, &locked));
        assert!(obeyed(BankCommandKind::Unlock, &bound));
        assert!(!obeyed(BankCommandKind::Unlock, &locked));
        assert!(!obeyed(BankCommandKind::EndSession, &bound));
        assert!(obeyed(BankCommandKind::EndSession, &locked));
    }

    #[test]
    fn the_customer_is_told_in_plain_words() {
        let done = Relayed {
            applied: true,
            status: None,
            why_not: None,
        };
        let text = words(BankCommandKind::Wipe, "PB-1", &done);
        assert!(text.contains("revoked this PIN pad (PB-1)"), "{text}");
        assert!(text.contains("wiped"), "{text}");
        let not_yet = Relayed {
            applied: false,
            status: None,
            why_not: Some("it is not connected".into()),
        };
        let text = words(BankCommandKind::Lock, "PB-1", &not_yet);
        assert!(
            text.contains("not locked itself yet (it is not connected)"),
            "{text}"
        );
    }
}
