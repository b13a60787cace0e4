//! Link recovery after a fault in the middle of an operation (issue 17 item 4): the session
//! resets its link by itself (reconnects the transport or resynchronises the channel, see
//! [`Session::recover`](crate::session::Session::recover)) as soon as the operation has
//! failed, so the customer never disconnects and connects by hand; a device that restarted
//! and forgot the customer session ends the login ("log in again"). A payment's error says in
//! plain words what happened on the link (a delay or a disconnect) and whether anything was
//! paid.

use std::sync::atomic::Ordering;
use std::time::Duration;

use firmware_protocol::message::GetStatus;

use super::ops::refresh_status;
use super::{AppCore, AppError, CoreEvent, LinkState, Slot, lock};
use crate::error::ErrorKind;
use crate::flows::FlowError;
use crate::session::{Session, SessionError};

/// How long the app tries to bring the link back at once; past it, the next request tries
/// again (the session remembers what is left to do).
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

/// What a link fault was, in plain words; `None` when the failure was not on the link (the
/// device or the bank refused, the user cancelled).
pub(super) fn link_fault(error: &FlowError) -> Option<&'static str> {
    let FlowError::Device(error) = error else {
        return None;
    };
    if matches!(error, SessionError::Refused { .. }) {
        return None;
    }
    match error.kind() {
        ErrorKind::DeviceDisconnected => Some("the PIN pad's link was lost (a disconnect)"),
        ErrorKind::Timeout => Some("the PIN pad answered too slowly (a delay on the link)"),
        ErrorKind::CorruptFrame => Some("a message to or from the PIN pad was damaged"),
        _ => None,
    }
}

/// Whether a link fault was a delay: the device answered, but too late. Its late answers to
/// the retransmissions are still queued on the link, so a resync over the same transport
/// would wait behind them; the next operation opens a fresh transport instead.
pub(super) fn is_delay(error: &FlowError) -> bool {
    matches!(
        error,
        FlowError::Device(error)
            if !matches!(error, SessionError::Refused { .. }) && error.kind() == ErrorKind::Timeout
    )
}

/// What the bank had recorded of a payment when its flow failed: its verdict, if it gave one.
#[derive(Clone, Debug, Default)]
pub(super) struct BankRecord {
    /// The bank's result (`approved`, `pin_incorrect`, ...) and the payment's reference.
    pub verdict: Option<(String, String)>,
}

impl AppCore {
    /// A payment's flow failed: on a link fault the link is reset at once and the error says
    /// what happened and whether the bank took the money; any other failure is passed on as
    /// it is, with "nothing was paid" when the bank never gave a verdict.
    pub(super) async fn payment_failure(
        &self,
        device_id: &str,
        slot: &Slot,
        error: FlowError,
        record: &BankRecord,
    ) -> AppError {
        let paid = record
            .verdict
            .as_ref()
            .is_some_and(|(result, _)| result == "approved");
        let Some(fault) = link_fault(&error) else {
            return AppError::from(error).with_paid(paid);
        };
        let delay = is_delay(&error);
        let recovered = self.recover_link(device_id, slot, delay).await;
        let money = match &record.verdict {
            None => "Nothing was paid: the bank never received an approval.".to_owned(),
            Some((result, reference)) if result == "approved" => format!(
                "The bank had already approved and booked the payment (reference {reference}) \
                 before the fault: it is paid. Do not send it again."
            ),
            Some((result, reference)) => format!(
                "The bank had already answered \"{result}\" (reference {reference}): nothing was paid."
            ),
        };
        let next = if delay {
            "The app opens a fresh link to it before the next step; you can send the payment again."
        } else if recovered {
            "The link was reset by itself; you can go on."
        } else {
            "The app could not reach it again yet and keeps trying at the next step; check the cable or Bluetooth."
        };
        tracing::warn!(target: "companion::devices", "{}: payment failed: {fault} ({error})", slot.serial);
        AppError::new(
            AppError::from(error).kind,
            format!("The payment stopped: {fault}. {money} {next}"),
        )
        .with_paid(paid)
    }

    /// Resets a device's link after a fault (reconnect or resync), then asks the device
    /// whether it still has the customer session. Returns whether the link is back. After a
    /// delay (`delay`) nothing is tried now: while the delay lasts a resync would only wait
    /// behind the late answers; the next operation opens a fresh transport
    /// ([`AppCore::fresh_link_if_stale`]).
    pub(super) async fn recover_link(&self, device_id: &str, slot: &Slot, delay: bool) -> bool {
        if delay {
            slot.stale.store(true, Ordering::Release);
            tracing::info!(target: "companion::devices", "{}: the link was slow; a fresh link is opened before the next step", slot.serial);
            return false;
        }
        let result = {
            let mut session = slot.session.lock().await;
            if !session.needs_recovery() {
                return true;
            }
            (self.emit)(CoreEvent::DeviceLink {
                device_id: device_id.to_owned(),
                link: LinkState::Reconnecting,
                message: format!("{}: the link failed; resetting it", slot.serial),
            });
            tokio::time::timeout(RECOVERY_LIMIT, session.recover()).await
        };
        match result {
            Ok(Ok(())) => {
                refresh_status(slot).await;
                let reported = *lock(&slot.status);
                let session_active = reported.is_some_and(|s| s.session_active);
                let lost = self.end_logins_if_forgotten(device_id, session_active);
                let (link, message) = if lost {
                    (
                        LinkState::SessionLost,
                        format!(
                            "{} is back but forgot the session: log in again",
                            slot.serial
                        ),
                    )
                } else {
                    (
                        LinkState::Reconnected,
                        format!("{}: the link was reset; you can go on", slot.serial),
                    )
                };
                tracing::info!(target: "companion::devices", "{message}");
                (self.emit)(CoreEvent::DeviceLink {
                    device_id: device_id.to_owned(),
                    link,
                    message,
                });
                self.push_devices();
                true
            }
            Ok(Err(error)) => {
                tracing::warn!(target: "companion::devices", "{}: the link is not back yet ({error})", slot.serial);
                false
            }
            Err(_) => {
                tracing::warn!(target: "companion::devices", "{}: the link is not back after {} s", slot.serial, RECOVERY_LIMIT.as_secs());
                false
            }
        }
    }

    /// Before an operation on a link a delay left stale: a fresh transport and channel (the
    /// late answers queued on the old one are dropped with it), then the device is asked
    /// whether it still has the customer session. If the link does not come back, the
    /// operation goes on and fails with its own error, and the next one tries again.
    pub(super) async fn fresh_link_if_stale(
        &self,
        device_id: &str,
        slot: &Slot,
        session: &mut Session,
    ) {
        if !slot.stale.swap(false, Ordering::AcqRel) {
            return;
        }
        (self.emit)(CoreEvent::DeviceLink {
            device_id: device_id.to_owned(),
            link: LinkState::Reconnecting,
            message: format!("{}: the link was slow; opening a fresh one", slot.serial),
        });
        match tokio::time::timeout(RECOVERY_LIMIT, session.reconnect()).await {
            Ok(Ok(())) => {
                if let Ok(status) = session.ask(GetStatus).await {
                    *lock(&slot.status) = Some(status);
                }
                let session_active = lock(&slot.status).is_some_and(|s| s.session_active);
                let lost = self.end_logins_if_forgotten(device_id, session_active);
                let (link, message) = if lost {
                    (
                        LinkState::SessionLost,
                        format!("{} forgot the session: log in again", slot.serial),
                    )
                } else {
                    (
                        LinkState::Reconnected,
                        format!("{}: a fresh link is open; you can go on", slot.serial),
                    )
                };
                tracing::info!(target: "companion::devices", "{message}");
                (self.emit)(CoreEvent::DeviceLink {
                    device_id: device_id.to_owned(),
                    link,
                    message,
                });
            }
            Ok(Err(error)) => {
                slot.stale.store(true, Ordering::Release);
                tracing::warn!(target: "companion::devices", "{}: no fresh link yet ({error})", slot.serial);
            }
            Err(_) => {
                slot.stale.store(true, Ordering::Release);
                tracing::warn!(target: "companion::devices", "{}: no fresh link after {} s", slot.serial, RECOVERY_LIMIT.as_secs());
            }
        }
    }

    /// Ends the logins through `device_id` when the device no longer has their session
    /// (it restarted); returns whether any ended.
    pub(super) fn end_logins_if_forgotten(&self, device_id: &str, session_active: bool) -> bool {
        if session_active {
            return false;
        }
        let mut tables = self.tables();
        let lost: Vec<String> = tables
            .logins
            .iter()
            .filter(|(_, login)| login.device_id == device_id)
            .map(|(session_id, _)| session_id.clone())
            .collect();
        for session_id in &lost {
            tables.logins.remove(session_id);
            tables.payments.retain(|_, p| p.session_id != *session_id);
        }
        !lost.is_empty()
    }
}
