//! Out-of-band confirmation requests the bank pushed to this app, waiting for the customer to
//! approve them on the device.
//!
//! Requests arrive on the bank's event stream (`GET /v1/events`, server-sent events), which
//! [`watch_bank`] listens to for as long as a customer is logged in: the pending ones first,
//! then each new one as a second terminal (a web shop, `qa_push_confirmation` in QA) creates it.
//! What the list shows is decoded from the very request the device will show and sign.
//!
//! The same stream carries the bank's signed commands for the customer's devices (wipe, lock,
//! unlock): those are handed to the login's command follower ([`super::lifecycle`]), which
//! relays them to the device.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use firmware_protocol::message::SignConfirmation;
use serde_json::Value;

use super::types::{ConfirmationRequest, CoreEvent};
use super::{AppError, Emit};
use crate::bank::{BankClient, BankError, BankEvent, BearerToken};

/// The pending requests, oldest first, each with the bank's own view of it (the
/// SignConfirmation to relay to the device).
/// Cheap to clone: clones share one inbox.
#[derive(Clone, Debug, Default)]
pub struct ConfirmationInbox {
    pending: Arc<Mutex<Vec<(ConfirmationRequest, Value)>>>,
}

impl ConfirmationInbox {
    fn lock(&self) -> MutexGuard<'_, Vec<(ConfirmationRequest, Value)>> {
        // Requests are added and removed whole; a poisoned list is still a valid list.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pending requests.
    pub fn list(&self) -> Vec<ConfirmationRequest> {
        self.lock().iter().map(|(r, _)| r.clone()).collect()
    }

    /// Adds a request the bank pushed, with the bank's view of it; `false` when it is already
    /// there (the stream repeats the pending ones after a reconnect).
    pub fn push_from_bank(&self, request: ConfirmationRequest, bank_view: Value) -> bool {
        let mut pending = self.lock();
        if pending
            .iter()
            .any(|(r, _)| r.request_id == request.request_id)
        {
            return false;
        }
        pending.push((request, bank_view));
        true
    }

    /// The bank's view of a pending request.
    pub fn bank_view(&self, request_id: &str) -> Option<Value> {
        self.lock()
            .iter()
            .find(|(r, _)| r.request_id == request_id)
            .map(|(_, v)| v.clone())
    }

    /// Removes a request once answered.
    pub fn remove(&self, request_id: &str) {
        self.lock().retain(|(r, _)| r.request_id != request_id);
    }
}

/// Reads a confirmation as the bank sends it (`ConfirmationView`: an SSE `confirmation` event's
/// data, or the answer to `POST /v1/confirmations`). Payer, payee, amount and order id come from
/// the SignConfirmation request in it, the bytes the device will show and sign, so the list
/// cannot say something the device will not.
pub fn request_from_bank(
    view: &Value,
    received_at: String,
) -> Result<ConfirmationRequest, AppError> {
    let request_id = view["transaction_id"]
        .as_str()
        .ok_or_else(|| AppError::BankRejected("a confirmation without transaction_id"))?;
    let hex_request = view["sign_confirmation"]
        .as_str()
        .ok_or_else(|| AppError::BankRejected("a confirmation without sign_confirmation"))?;
    let sign: SignConfirmation = crate::flows::bank_request("sign_confirmation", hex_request)?;
    let payment = sign.payment;
    Ok(ConfirmationRequest {
        request_id: request_id.to_owned(),
        order_id: payment.reference,
        payer_account: payment.payer_account,
        payee_name: payment.payee_name,
        payee_account: payment.payee_account,
        amount_minor: payment.amount_minor.to_string(),
        currency: payment.currency.as_str().to_owned(),
        received_at,
    })
}

/// Now, as RFC 3339 (when a request reached this app).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Where a login's bank commands go (the event's data: `serial`, `command`, `bank_command`).
pub type CommandSender = tokio::sync::mpsc::UnboundedSender<Value>;

/// Files one event from the bank's stream: a pending confirmation goes into the inbox (once)
/// and to the windows; a decided or expired one leaves it; a bank command goes to `commands`.
fn file_event(event: &BankEvent, inbox: &ConfirmationInbox, emit: &Emit, commands: &CommandSender) {
    if event.event == "bank_command" {
        // The follower is gone only when the login is; nothing is left to act on then.
        let _ = commands.send(event.data.clone());
        return;
    }
    if event.event != "confirmation" {
        return;
    }
    let pending = event.data["status"]
        .as_str()
        .is_some_and(|status| status.starts_with("pending"));
    if !pending {
        if let Some(id) = event.data["transaction_id"].as_str() {
            inbox.remove(id);
        }
        return;
    }
    match request_from_bank(&event.data, now_rfc3339()) {
        Ok(request) => {
            if inbox.push_from_bank(request.clone(), event.data.clone()) {
                tracing::info!(
                    target: "companion::bank",
                    "request {} pushed to the app",
                    request.order_id
                );
                emit(CoreEvent::ConfirmationPushed { request });
            }
        }
        Err(error) => {
            tracing::warn!(target: "companion::bank", "a pushed confirmation was not readable: {error}");
        }
    }
}

/// Listens to the bank's event stream with a customer's session token until the task is dropped
/// (logout, another login) or the bank refuses the token. A dropped stream is opened again after
/// a pause that grows to 30 s; the bank repeats the pending requests, which the inbox files once.
pub async fn watch_bank(
    bank: BankClient,
    token: BearerToken,
    inbox: ConfirmationInbox,
    emit: Emit,
    commands: CommandSender,
) {
    let mut pause = Duration::from_secs(1);
    loop {
        let mut on_event = |event: BankEvent| {
            file_event(&event, &inbox, &emit, &commands);
            true
        };
        match bank.watch_events(&token, &mut on_event).await {
            Err(BankError::Refused { status, .. }) if status == 401 || status == 403 => {
                tracing::info!(target: "companion::bank", "the bank ended the session's event stream");
                return;
            }
            Err(error) => {
                tracing::warn!(target: "companion::bank", "the bank's event stream dropped: {error}");
            }
            Ok(()) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// The running [`watch_bank`] task of one login (and the tasks tied to it); dropping it stops
/// them.
#[derive(Debug)]
pub struct BankWatch(Vec<tokio::task::JoinHandle<()>>);

impl BankWatch {
    /// Starts listening; bank commands go to `commands`.
    pub fn start(
        bank: BankClient,
        token: BearerToken,
        inbox: ConfirmationInbox,
        emit: Emit,
        commands: CommandSender,
    ) -> Self {
        Self(vec![tokio::spawn(watch_bank(
            bank, token, inbox, emit, commands,
        ))])
    }

    /// Ties another task of the login to this watch: it stops when the watch does.
    pub fn with(mut self, task: tokio::task::JoinHandle<()>) -> Self {
        self.0.push(task);
        self
    }
}

impl Drop for BankWatch {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use firmware_protocol::message::{CurrencyCode, GetStatus, Nonce, PaymentDetails, Request};
    use serde_json::json;

    use super::*;

    fn view(transaction_id: &str, status: &str, request: &Request) -> Value {
        json!({
            "transaction_id": transaction_id,
            "status": status,
            "sign_confirmation": hex::encode(request.encode(1).unwrap()),
            // The bank's own summary; the app reads the request instead.
            "payee_name": "Somebody Else",
            "amount_minor": 1,
            "currency": "EUR",
        })
    }

    fn sign_confirmation() -> Request {
        Request::SignConfirmation(SignConfirmation {
            payment: PaymentDetails {
                payer_account: "6222021000001234".into(),
                payee_account: "6222080011223344".into(),
                payee_name: "JD.com".into(),
                amount_minor: 12_345,
                currency: CurrencyCode::new("CNY").unwrap(),
                currency_exponent: 2,
                reference: "ORD-7801".into(),
                bank_transaction_id: "TX-1".into(),
            },
            nonce: Nonce([7; 16]),
        })
    }

    #[test]
    fn the_list_shows_what_the_device_will_show() {
        let request = request_from_bank(
            &view("TX-1", "pending_confirmation", &sign_confirmation()),
            "2026-11-24T12:00:00Z".into(),
        )
        .unwrap();
        assert_eq!(request.request_id, "TX-1");
        assert_eq!(request.order_id, "ORD-7801");
        assert_eq!(request.payee_name, "JD.com");
        assert_eq!(request.payee_account, "6222080011223344");
        assert_eq!(request.payer_account, "6222021000001234");
        assert_eq!(request.amount_minor, "12345");
        assert_eq!(request.currency, "CNY");
    }

    #[test]
    fn unreadable_confirmations_are_refused_with_the_reason() {
        let mut missing = view("TX-1", "pending_confirmation", &sign_confirmation());
        missing.as_object_mut().unwrap().remove("transaction_id");
        let error = request_from_bank(&missing, String::new()).unwrap_err();
        assert!(error.to_string().contains("transaction_id"), "{error}");

        let mut not_hex = view("TX-1", "pending_confirmation", &sign_confirmation());
        not_hex["sign_confirmation"] = json!("zz");
        assert!(request_from_bank(&not_hex, String::new()).is_err());

        let other = view(
            "TX-1",
            "pending_confirmation",
            &Request::GetStatus(GetStatus),
        );
        let error = request_from_bank(&other, String::new()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("it is a GetStatus, not a SignConfirmation"),
            "{error}"
        );
    }

    #[test]
    fn pending_requests_are_filed_once_and_decided_ones_leave() {
        let inbox = ConfirmationInbox::default();
        let emit: Emit = std::sync::Arc::new(|_| {});
        let (commands, mut relayed) = tokio::sync::mpsc::unbounded_channel();
        let pending = BankEvent {
            event: "confirmation".into(),
            data: view("TX-1", "pending_confirmation", &sign_confirmation()),
        };
        file_event(&pending, &inbox, &emit, &commands);
        // A reconnected stream repeats the pending ones.
        file_event(&pending, &inbox, &emit, &commands);
        assert_eq!(inbox.list().len(), 1);
        assert!(inbox.bank_view("TX-1").is_some());

        // A bank command is not a confirmation: it goes to the login's command follower.
        let command = BankEvent {
            event: "bank_command".into(),
            data: json!({"serial": "PB-1", "command": "wipe", "bank_command": "00"}),
        };
        file_event(&command, &inbox, &emit, &commands);
        assert_eq!(inbox.list().len(), 1);
        assert_eq!(relayed.try_recv().ok(), Some(command.data.clone()));

        let decided = BankEvent {
            event: "confirmation".into(),
            data: view("TX-1", "approved", &sign_confirmation()),
        };
        file_event(&decided, &inbox, &emit, &commands);
        assert!(inbox.list().is_empty());
    }
}
