//! Whether the bank answers, for the header (issue 17 item 3): the bank fact was worded from
//! the settings alone ("configured", "sandbox") and stayed green while every call failed. The
//! core now keeps what it last saw: a call that reached the bank (an answer, even a refusal)
//! makes it `reachable`, one that failed on the way (no route, refused connection, TLS, the
//! embedded bank did not start) `unreachable` with that reason, and nothing yet `unknown`. A
//! probe (`GET /health`) runs at start and whenever the bank address changes. Each change is
//! a [`CoreEvent::BankReach`].

use std::sync::Arc;

use serde::Serialize;

use super::{
    AppCore, AppError, CoreEvent, LoginSession, PaymentRequest, PaymentResult, PreparedPayment,
    ProgressSink, lock,
};
use crate::error::ErrorKind;

/// Whether the bank answers, as last seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum BankReach {
    /// No call has gone to the bank in use yet (or its address just changed).
    #[default]
    Unknown,
    /// The last call got an answer from the bank.
    Reachable,
    /// The last call did not reach the bank (the reason says why).
    Unreachable,
}

/// What the core last saw of the bank, and why (for `unreachable`).
#[derive(Debug, Default)]
pub(super) struct ReachState {
    now: std::sync::Mutex<(BankReach, Option<String>)>,
    /// Changes of bank address: a probe's answer about an older address is dropped.
    generation: std::sync::atomic::AtomicU64,
}

impl AppCore {
    /// The bank's reachability now, as the event the windows get.
    pub fn bank_reach(&self) -> CoreEvent {
        let (reach, reason) = lock(&self.reach.now).clone();
        CoreEvent::BankReach { reach, reason }
    }

    fn set_reach(&self, reach: BankReach, reason: Option<String>) {
        let changed = {
            let mut now = lock(&self.reach.now);
            let changed = now.0 != reach || now.1 != reason;
            *now = (reach, reason.clone());
            changed
        };
        if changed {
            match &reason {
                Some(why) => {
                    tracing::warn!(target: "companion::bank", "the bank is unreachable: {why}")
                }
                None => tracing::info!(target: "companion::bank", "the bank is {reach:?}"),
            }
            (self.emit)(CoreEvent::BankReach { reach, reason });
        }
    }

    /// Takes in the outcome of an operation that calls the bank: done, or refused by the bank
    /// (`bank.*` codes), it reached the bank; failed on the way, it did not; anything else (a
    /// device or input error before any bank call) says nothing about the bank.
    pub(super) fn saw_bank<T>(&self, result: &Result<T, AppError>) {
        match result {
            Ok(_) => self.set_reach(BankReach::Reachable, None),
            Err(error) if error.kind == ErrorKind::BankUnreachable => {
                self.set_reach(BankReach::Unreachable, Some(error.message.clone()));
            }
            // A refusal is an answer: the bank's codes, and a staff password it turned down.
            Err(error)
                if error.kind == ErrorKind::StaffAuthFailed
                    || error
                        .code
                        .as_deref()
                        .is_some_and(|c| c.starts_with("bank.")) =>
            {
                self.set_reach(BankReach::Reachable, None);
            }
            Err(_) => {}
        }
    }

    /// Asks the bank in use whether it answers (`GET /health`; any answer, even a refusal,
    /// means it is there). Waits for the embedded sandbox bank while it starts.
    pub async fn probe_bank(&self) {
        let generation = || {
            self.reach
                .generation
                .load(std::sync::atomic::Ordering::Acquire)
        };
        let asked = generation();
        let client = match self.bank().await {
            Ok(client) => client,
            Err(error) => {
                if asked == generation() {
                    self.saw_bank::<()>(&Err(error));
                }
                return;
            }
        };
        let answer = client.get("/health", None).await;
        if asked != generation() {
            return;
        }
        match answer {
            Err(error) if error.kind() == ErrorKind::BankUnreachable => {
                self.set_reach(BankReach::Unreachable, Some(AppError::from(error).message));
            }
            // Any answer, a refusal included, came from the bank.
            Ok(_) | Err(_) => self.set_reach(BankReach::Reachable, None),
        }
    }

    /// Logs the customer in at the bank through the paired device.
    pub async fn login(
        self: &Arc<Self>,
        device_id: &str,
        customer_id: &str,
        progress: ProgressSink,
    ) -> Result<LoginSession, AppError> {
        let result = self.login_at_bank(device_id, customer_id, progress).await;
        self.saw_bank(&result);
        result
    }

    /// Checks the payment with the companion's input rules (as the CLI applies them), then
    /// the bank prepares (and MACs) the payment the device will show.
    pub async fn payment_prepare(
        &self,
        request: PaymentRequest,
    ) -> Result<PreparedPayment, AppError> {
        let result = self.prepare_at_bank(request).await;
        self.saw_bank(&result);
        result
    }

    /// The device shows the payment, the customer enters the PIN on it, the bank verifies and
    /// journals, the device checks the bank's answer: the result is what the device decided.
    pub async fn payment_approve(
        &self,
        payment_id: &str,
        progress: ProgressSink,
    ) -> Result<PaymentResult, AppError> {
        let result = self.approve_at_bank(payment_id, progress).await;
        self.saw_bank(&result);
        result
    }

    /// The bank address changed (settings): what was known is forgotten (`unknown`) and the
    /// new bank is probed in the background.
    pub fn bank_changed(self: &Arc<Self>) {
        self.reach
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.set_reach(BankReach::Unknown, None);
        let core = self.clone();
        tokio::spawn(async move { core.probe_bank().await });
    }
}
