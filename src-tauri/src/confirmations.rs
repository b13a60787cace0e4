//! Out-of-band confirmation requests the bank pushed to this app, waiting for the customer to
//! approve them on the device.
//!
//! The bank link (server-sent events) is part of the flows still to come, so nothing is pushed
//! yet and the inbox is empty; the screens read it at start-up either way.

use std::sync::{Mutex, MutexGuard};

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

/// The pending requests, oldest first.
#[derive(Debug, Default)]
pub struct ConfirmationInbox {
    pending: Mutex<Vec<ConfirmationRequest>>,
}

impl ConfirmationInbox {
    fn lock(&self) -> MutexGuard<'_, Vec<ConfirmationRequest>> {
        // Requests are added and removed whole; a poisoned list is still a valid list.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The pending requests.
    pub fn list(&self) -> Vec<ConfirmationRequest> {
        self.lock().clone()
    }

    /// Adds a request the bank pushed.
    pub fn push(&self, request: ConfirmationRequest) {
        self.lock().push(request);
    }
}
