//! Out-of-band confirmation requests the bank pushed to this app, waiting for the customer to
//! approve them on the device.
//!
//! Requests arrive when the sandbox bank pushes one (QA, `qa_push_confirmation`); a listener on
//! a configured bank's event stream is still to come.

use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

use serde::Serialize;

/// One pushed request (`ConfirmationRequest` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmationRequest {
    /// The bank's id for this request.
    pub request_id: String,
    /// The merchant's order id.
    pub order_id: String,
    /// The customer's account to pay from.
    pub payer_account: String,
    /// Who is paid.
    pub payee_name: String,
    /// Their account.
    pub payee_account: String,
    /// Integer minor units as a decimal string.
    pub amount_minor: String,
    /// ISO 4217 code.
    pub currency: String,
    /// ISO-8601 time the bank pushed it.
    pub received_at: String,
}

/// The pending requests, oldest first, each with the bank's own view of it (the
/// SignConfirmation to relay to the device).
#[derive(Debug, Default)]
pub struct ConfirmationInbox {
    pending: Mutex<Vec<(ConfirmationRequest, Value)>>,
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

    /// Adds a request the bank pushed, with the bank's view of it.
    pub fn push_from_bank(&self, request: ConfirmationRequest, bank_view: Value) {
        self.lock().push((request, bank_view));
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
