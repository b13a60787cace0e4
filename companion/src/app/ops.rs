//! The app's operations: connect, pairing, login, payment, staff and confirmation, each over
//! the companion's flows ([`crate::flows`]) and the typed bank client. No PIN digit reaches a
//! result, an event or a log: the PIN is typed on the device and only a count is reported.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firmware_protocol::message::GetStatus;

use super::recovery::BankRecord;
use super::types::{PreparedPayment as Prepared, *};
use super::{
    AppCore, AppError, LoginEntry, Operation, PaymentEntry, PaymentState, PendingPairing,
    ProgressSink, Slot, Tables, lock, sink_for,
};
use crate::flows::{self as core, FlowError, FlowEvent, PaymentOrder};
use crate::session::{Session, SessionError};

/// The bank's refusals of a confirmation signature after which the request is decided for
/// good (declined, expired, decided elsewhere or gone): the app's list drops it.
const DECIDED_AT_THE_BANK: [&str; 4] = [
    "bad_signature",
    "payment_already_decided",
    "confirmation_expired",
    "unknown_confirmation",
];

pub(super) async fn refresh_status(slot: &Slot) {
    let mut session = slot.session.lock().await;
    if let Ok(status) = session.ask(GetStatus).await {
        *lock(&slot.status) = Some(status);
    }
}

fn compact(account: &str) -> String {
    account.chars().filter(|c| !c.is_whitespace()).collect()
}

fn random_key() -> Result<String, AppError> {
    let mut key = [0u8; 8];
    getrandom::fill(&mut key).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(hex::encode(key))
}

impl AppCore {
    // --------------------------------------------------------------------- device

    /// Opens a session with a device and asks it who and how it is.
    pub async fn connect(&self, device_id: &str) -> Result<DeviceStatus, AppError> {
        if self.tables().slots.contains_key(device_id) {
            return self.device_status(device_id).await;
        }
        self.devices.refresh().await;
        let id = self
            .devices
            .devices()
            .into_iter()
            .map(|d| d.id().clone())
            .find(|id| id.to_string() == device_id)
            .ok_or_else(|| AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed")))?;
        let transport = self.devices.open(&id).await?;
        let mut session = Session::open(transport).await?;
        // Who and how it is, and whether it is genuine: its certificate and a signed report
        // over a fresh nonce of ours (the bank still checks its firmware at every login).
        let check = self.genuine_check(device_id, &mut session).await?;
        let genuine = if !check.failures.is_empty() {
            tracing::error!(
                target: "companion::devices",
                "{}: NOT genuine: {}",
                check.info.serial,
                check.failures.join("; ")
            );
            Genuine::NotGenuine
        } else if check.issuer_unchecked {
            Genuine::NotVerified
        } else {
            Genuine::Genuine
        };
        let info = check.info;
        let reported = Some(check.status);
        let slot = Arc::new(Slot {
            serial: info.serial.clone(),
            firmware: Firmware {
                version: info.firmware_version.clone(),
                hash: hex::encode(info.firmware_hash.0),
            },
            cancel: session.cancel_handle(),
            session: tokio::sync::Mutex::new(session),
            status: Mutex::new(reported),
            genuine: (genuine, check.failures),
            progress: Mutex::new(None),
            stale: std::sync::atomic::AtomicBool::new(false),
        });
        self.tables().slots.insert(device_id.to_owned(), slot);
        self.remember_device(&info.serial, device_id);
        tracing::info!(
            target: "companion::devices",
            "{} connected ({device_id}); firmware {}",
            info.serial,
            info.firmware_version
        );
        lock(&self.seen).remove(device_id);
        self.push_devices();
        self.device_status(device_id).await
    }

    /// The genuine check against the CAs this installation trusts (for a sandbox mock PIN
    /// pad, the sandbox's own CA).
    async fn genuine_check(
        &self,
        device_id: &str,
        session: &mut Session,
    ) -> Result<crate::integrity::GenuineCheck, AppError> {
        use crate::integrity::GenuineCheckError;
        let mut cas = self.device_cas.clone();
        if self.mock(device_id).is_some()
            && let super::EmbeddedStatus::Ready(sandbox) = self.embedded_status()
            && let Some(ca) = &sandbox.device_ca
        {
            cas.push(*ca);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        crate::integrity::check(session, &cas, now)
            .await
            .map_err(|error| match error {
                GenuineCheckError::Session(e) => e.into(),
                GenuineCheckError::Entropy(e) => AppError::Internal(e),
            })
    }

    /// Closes the session with a device.
    pub fn disconnect(&self, device_id: &str) {
        let slot = self.tables().slots.remove(device_id);
        if let Some(slot) = slot {
            slot.cancel.cancel();
            self.forget_device_choice(&slot.serial);
            tracing::info!(target: "companion::devices", "{} disconnected", slot.serial);
            tokio::spawn(async move {
                // Waits for a cancelled operation to let go of the session first.
                let _session = slot.session.lock().await;
            });
        }
        self.push_devices();
    }

    // --------------------------------------------------------------------- pairing

    /// Starts pairing: keys exchanged with the device, which shows the comparison code.
    pub async fn pairing_begin(&self, device_id: &str) -> Result<PairingStart, AppError> {
        let slot = self.slot(device_id)?;
        let (code_tx, code_rx) = tokio::sync::oneshot::channel::<String>();
        let task_slot = slot.clone();
        let task = tokio::spawn(async move {
            let mut code_tx = Some(code_tx);
            let mut forward = sink_for(&task_slot);
            let mut sink = move |event: FlowEvent| {
                if let FlowEvent::ComparisonCode { code } = &event
                    && let Some(tx) = code_tx.take()
                {
                    let _ = tx.send(code.clone());
                }
                forward(event);
            };
            let mut session = task_slot.session.lock().await;
            core::pair(&mut session, "PinBridge desktop", &mut sink).await
        });
        let pairing_id = self.next_id("pair");
        match code_rx.await {
            Ok(code) => {
                self.tables().pairings.insert(
                    pairing_id.clone(),
                    PendingPairing {
                        device_id: device_id.to_owned(),
                        task,
                    },
                );
                tracing::info!("pairing started with {} (ECDH)", slot.serial);
                Ok(PairingStart { pairing_id, code })
            }
            // The flow ended before the device showed a code: its error says why.
            Err(_) => match task.await {
                Ok(Err(error)) => Err(error.into()),
                Ok(Ok(_)) => Err(AppError::PairingFailed("no comparison code")),
                Err(error) => Err(AppError::Internal(error.to_string())),
            },
        }
    }

    /// Waits for the user to confirm the code on the device; stores the pairing key.
    pub async fn pairing_confirm(
        &self,
        pairing_id: &str,
        progress: ProgressSink,
    ) -> Result<DeviceStatus, AppError> {
        let pending = self
            .tables()
            .pairings
            .remove(pairing_id)
            .ok_or_else(|| AppError::NotFound(format!("no pairing {pairing_id}")))?;
        let slot = self.slot(&pending.device_id)?;
        let _op = Operation::begin(&slot, progress.clone());
        progress(DeviceProgress::Stage {
            stage: Stage::WaitingForUser,
        });
        if let Some(mock) = self.mock(&pending.device_id) {
            progress(DeviceProgress::Display {
                lines: mock.display,
            });
        }
        let host = match pending.task.await {
            Ok(result) => result?,
            Err(error) if error.is_cancelled() => {
                return Err(AppError::UserCancelled("pairing cancelled in the app"));
            }
            Err(error) => return Err(AppError::Internal(error.to_string())),
        };
        let keys = self.keystore_for(&pending.device_id).await?;
        keys.save(&host)?;
        tracing::info!("paired with {}; host pairing key stored", host.serial);
        progress(DeviceProgress::Stage { stage: Stage::Done });
        refresh_status(&slot).await;
        self.push_devices();
        self.device_status(&pending.device_id).await
    }

    /// Cancels a pairing in progress (the device's prompt is cancelled too).
    pub async fn pairing_cancel(&self, pairing_id: &str) {
        let pending = self.tables().pairings.remove(pairing_id);
        if let Some(pending) = pending {
            if let Ok(slot) = self.slot(&pending.device_id) {
                slot.cancel.cancel();
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), pending.task).await;
            tracing::info!("pairing cancelled in the app");
        }
    }

    // --------------------------------------------------------------------- login

    /// [`AppCore::login`] itself (the wrapper notes whether the bank answered).
    pub(super) async fn login_at_bank(
        self: &Arc<Self>,
        device_id: &str,
        customer_id: &str,
        progress: ProgressSink,
    ) -> Result<LoginSession, AppError> {
        let slot = self.slot(device_id)?;
        let keys = self.keystore_for(device_id).await?;
        let mut host = keys.find(&slot.serial)?.ok_or_else(|| {
            AppError::NotPaired(format!(
                "{} is not paired with this computer; pair it first",
                slot.serial
            ))
        })?;
        let bank = self.bank().await?;
        let _op = Operation::begin(&slot, progress.clone());
        let mut sink = sink_for(&slot);
        let result = {
            let mut session = slot.session.lock().await;
            self.fresh_link_if_stale(device_id, &slot, &mut session)
                .await;
            core::login(&mut session, &bank, &mut host, &mut sink).await
        };
        // The host counter moved whatever the outcome: never reuse it.
        keys.save(&host)?;
        let login = result?;
        if !login.customer_id.eq_ignore_ascii_case(customer_id.trim()) {
            return Err(AppError::BankRejected(format!(
                "{} is bound to another customer, not {}",
                slot.serial,
                customer_id.trim()
            )));
        }
        let accounts = bank.accounts(&login.token).await?;
        let customer_name = accounts
            .first()
            .map(|a| a.name.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| login.customer_id.clone());
        let numbers: Vec<String> = accounts.into_iter().map(|a| a.account_number).collect();
        let session = LoginSession {
            session_id: login.session_id.clone(),
            customer_id: login.customer_id.clone(),
            customer_name,
            device_id: device_id.to_owned(),
            accounts: numbers.clone(),
        };
        self.set_customer(device_id, Some(&login.customer_id));
        tracing::info!(target: "companion::bank", "session opened for {}", login.customer_id);
        // The session's listener on the bank's event stream (pushed confirmations, and the
        // bank's commands for the device, relayed by the follower as they come). Started
        // with the tables locked: the follower looks its login up there, so it cannot see a
        // command before the login is in (a std lock held for no await).
        {
            let mut tables = self.tables();
            let (commands, follower) = self.follow_bank_commands(&login.session_id);
            let watch = super::BankWatch::start(
                bank.clone(),
                login.token.clone(),
                self.confirmations.clone(),
                self.emit.clone(),
                commands,
            )
            .with(follower);
            tables.logins.insert(
                login.session_id.clone(),
                LoginEntry {
                    login,
                    bank,
                    device_id: device_id.to_owned(),
                    accounts: numbers,
                    _confirmations: watch,
                },
            );
        }
        progress(DeviceProgress::Stage { stage: Stage::Done });
        refresh_status(&slot).await;
        self.push_devices();
        Ok(session)
    }

    // --------------------------------------------------------------------- payment

    /// [`AppCore::payment_prepare`] itself.
    pub(super) async fn prepare_at_bank(
        &self,
        request: PaymentRequest,
    ) -> Result<Prepared, AppError> {
        let (login, bank, accounts, device_id) = {
            let tables = self.tables();
            let entry = tables
                .logins
                .get(&request.session_id)
                .ok_or_else(|| AppError::NotLoggedIn("log in first"))?;
            (
                entry.login.clone(),
                entry.bank.clone(),
                entry.accounts.clone(),
                entry.device_id.clone(),
            )
        };
        // Nothing goes to the bank for a device that cannot approve it safely.
        self.payment_blocker(&device_id).await?;
        let amount_minor: u64 = request
            .amount_minor
            .parse()
            .ok()
            .filter(|&a| a > 0)
            .ok_or_else(|| AppError::InvalidInput("amount must be more than zero"))?;
        let payee_name = crate::input::parse_payee_name(&request.payee_name)?;
        let payee_account = crate::input::parse_account(&request.payee_account)?
            .as_str()
            .to_owned();
        let currency = crate::input::Currency::parse(&request.currency)?;
        let from_account = compact(&request.from_account);
        if !accounts.iter().any(|a| compact(a) == from_account) {
            return Err(AppError::InvalidInput("not one of your accounts"));
        }
        let reference = request.reference.trim().to_owned();
        let order = PaymentOrder {
            payee_account: payee_account.clone(),
            payee_name: payee_name.clone(),
            amount_minor,
            currency: currency.code().to_owned(),
            reference: reference.clone(),
            idempotency_key: random_key()?,
        };
        let mut quiet = |_: FlowEvent| {};
        let prepared =
            core::prepare_payment_from(&bank, &login, Some(&from_account), &order, &mut quiet)
                .await?;
        let payment_id = prepared.transaction_id.clone();
        tracing::info!(target: "companion::bank", "payment {payment_id} prepared");
        self.tables().payments.insert(
            payment_id.clone(),
            PaymentEntry {
                session_id: request.session_id,
                prepared,
                state: PaymentState::Prepared,
            },
        );
        Ok(Prepared {
            payment_id,
            from_account: request.from_account,
            payee_name,
            payee_account,
            amount_minor: amount_minor.to_string(),
            currency: currency.code().to_owned(),
            reference,
        })
    }

    /// [`AppCore::payment_approve`] itself.
    pub(super) async fn approve_at_bank(
        &self,
        payment_id: &str,
        progress: ProgressSink,
    ) -> Result<PaymentResult, AppError> {
        let (prepared, login, bank, device_id) = {
            let mut tables = self.tables();
            let Tables {
                payments, logins, ..
            } = &mut *tables;
            let payment = payments
                .get_mut(payment_id)
                .ok_or_else(|| AppError::NotFound(format!("no payment {payment_id}")))?;
            if payment.state != PaymentState::Prepared {
                return Err(AppError::InvalidInput("this payment was already sent"));
            }
            let entry = logins
                .get(&payment.session_id)
                .ok_or_else(|| AppError::NotLoggedIn("the session has ended; log in again"))?;
            payment.state = PaymentState::Approving;
            (
                payment.prepared.clone(),
                entry.login.clone(),
                entry.bank.clone(),
                entry.device_id.clone(),
            )
        };
        let finish = |state: PaymentState| {
            if let Some(p) = self.tables().payments.get_mut(payment_id) {
                p.state = state;
            }
        };
        let (slot, keys) = match self.slot(&device_id) {
            Ok(slot) => match self.keystore_for(&device_id).await {
                Ok(keys) => (slot, keys),
                Err(error) => {
                    finish(PaymentState::Prepared);
                    return Err(error);
                }
            },
            Err(error) => {
                finish(PaymentState::Prepared);
                return Err(error);
            }
        };
        let mut host = match keys.find(&slot.serial) {
            Ok(Some(host)) => host,
            Ok(None) => {
                finish(PaymentState::Prepared);
                return Err(AppError::NotPaired(format!(
                    "{} is not paired with this computer",
                    slot.serial
                )));
            }
            Err(error) => {
                finish(PaymentState::Prepared);
                return Err(error.into());
            }
        };
        let _op = Operation::begin(&slot, progress.clone());
        let mut forward = sink_for(&slot);
        // What the bank recorded before a failure decides "paid" or "nothing was paid".
        let mut record = BankRecord::default();
        let result = {
            let mut sink = |event: FlowEvent| {
                if let FlowEvent::BankVerdict {
                    transaction_id,
                    result,
                    ..
                } = &event
                {
                    record.verdict = Some((result.clone(), transaction_id.clone()));
                }
                forward(event);
            };
            let mut session = slot.session.lock().await;
            self.fresh_link_if_stale(&device_id, &slot, &mut session)
                .await;
            core::approve_and_submit(&mut session, &bank, &login, &mut host, &prepared, &mut sink)
                .await
        };
        keys.save(&host)?;
        finish(PaymentState::Done);
        let lines_now = |fallback: Vec<String>| match self.mock(&device_id) {
            Some(mock) => mock.display,
            None => fallback,
        };
        let result = match result {
            Ok(outcome) => {
                let indicator = indicator_named(&outcome.indicator);
                let (decision, reason) = if indicator == Indicator::Danger {
                    (Outcome::Refused, OutcomeReason::BankResponseInvalid)
                } else if outcome.approved() {
                    (Outcome::Approved, OutcomeReason::None)
                } else {
                    // The last wrong PIN blocks it: that answer says "call your bank", not
                    // "try again" (the bank's own words for the same: account_blocked).
                    let reason = match (outcome.bank_result.as_str(), outcome.pin_tries_left) {
                        ("pin_incorrect", Some(n)) if n <= 0 => OutcomeReason::PinBlocked,
                        ("pin_incorrect", _) => OutcomeReason::WrongPin,
                        ("pin_locked" | "pin_blocked" | "account_blocked", _) => {
                            OutcomeReason::PinBlocked
                        }
                        ("insufficient_funds", _) => OutcomeReason::InsufficientFunds,
                        _ => OutcomeReason::None,
                    };
                    (Outcome::Declined, reason)
                };
                tracing::info!(
                    target: "companion::bank",
                    "payment {payment_id}: bank {}, device {} ({})",
                    outcome.bank_result,
                    outcome.device_result,
                    outcome.indicator
                );
                PaymentResult {
                    payment_id: payment_id.to_owned(),
                    outcome: decision,
                    indicator,
                    reason,
                    device_lines: lines_now(vec![outcome.display_text.clone()]),
                    bank_reference: (decision == Outcome::Approved)
                        .then(|| outcome.transaction_id.clone()),
                    pin_tries_left: (reason == OutcomeReason::WrongPin)
                        .then(|| outcome.pin_tries_left.and_then(|n| u32::try_from(n).ok()))
                        .flatten(),
                }
            }
            Err(FlowError::Tampered) => {
                tracing::error!(target: "companion::devices", "{}: payment refused, the device is tampered", slot.serial);
                PaymentResult {
                    payment_id: payment_id.to_owned(),
                    outcome: Outcome::Refused,
                    indicator: Indicator::Danger,
                    reason: OutcomeReason::Tampered,
                    device_lines: lines_now(vec!["TAMPERED".into()]),
                    bank_reference: None,
                    pin_tries_left: None,
                }
            }
            Err(FlowError::Device(SessionError::Refused {
                indicator: firmware_protocol::message::Indicator::Danger,
                detail,
                ..
            })) => {
                tracing::error!(target: "companion::devices", "{}: the bank's answer failed the device's check", slot.serial);
                PaymentResult {
                    payment_id: payment_id.to_owned(),
                    outcome: Outcome::Refused,
                    indicator: Indicator::Danger,
                    reason: OutcomeReason::BankResponseInvalid,
                    device_lines: lines_now(vec![detail]),
                    bank_reference: None,
                    pin_tries_left: None,
                }
            }
            Err(error) => {
                return Err(self
                    .payment_failure(&device_id, &slot, error, &record)
                    .await);
            }
        };
        progress(DeviceProgress::Indicator {
            indicator: result.indicator,
        });
        progress(DeviceProgress::Stage { stage: Stage::Done });
        refresh_status(&slot).await;
        self.push_devices();
        Ok(result)
    }

    /// Cancels a payment: the device's prompt is cancelled and the payment cannot be sent.
    pub fn payment_cancel(&self, payment_id: &str) {
        let device_id = {
            let mut tables = self.tables();
            let Tables {
                payments, logins, ..
            } = &mut *tables;
            payments.get_mut(payment_id).and_then(|p| {
                let approving = p.state == PaymentState::Approving;
                p.state = PaymentState::Done;
                approving
                    .then(|| logins.get(&p.session_id).map(|l| l.device_id.clone()))
                    .flatten()
            })
        };
        if let Some(device_id) = device_id
            && let Ok(slot) = self.slot(&device_id)
        {
            slot.cancel.cancel();
        }
    }

    // --------------------------------------------------------------------- confirmations

    /// A pushed request, shown on the device, approved (or not) there and signed with the
    /// device key; the bank checks the signature.
    pub async fn confirmation_approve(
        &self,
        request_id: &str,
        device_id: &str,
        progress: ProgressSink,
    ) -> Result<ConfirmationResult, AppError> {
        let raw = self
            .confirmations
            .bank_view(request_id)
            .ok_or_else(|| AppError::NotFound(format!("no pending request {request_id}")))?;
        let (login, bank) = self
            .tables()
            .logins
            .values()
            .find(|l| l.device_id == device_id)
            .map(|l| (l.login.clone(), l.bank.clone()))
            .ok_or_else(|| AppError::NotLoggedIn("log in with this device first, then confirm"))?;
        let slot = self.slot(device_id)?;
        let keys = self.keystore_for(device_id).await?;
        let mut host = keys.find(&slot.serial)?.ok_or_else(|| {
            AppError::NotPaired(format!("{} is not paired with this computer", slot.serial))
        })?;
        let _op = Operation::begin(&slot, progress.clone());
        let mut sink = sink_for(&slot);
        let result = {
            let mut session = slot.session.lock().await;
            self.fresh_link_if_stale(device_id, &slot, &mut session)
                .await;
            core::confirm_one(&mut session, &bank, &login, &mut host, &raw, &mut sink).await
        };
        keys.save(&host)?;
        let (outcome, indicator, reason, fallback) = match result {
            Ok(answer) => {
                let status = answer["status"].as_str().unwrap_or("unknown").to_owned();
                let (outcome, reason) = match (status.as_str(), answer["device_status"].as_str()) {
                    ("approved", _) => (Outcome::Signed, OutcomeReason::None),
                    // The customer said no on the keypad: the device's refusal was posted and
                    // the bank recorded the request as declined (not left pending).
                    (_, Some("UserCancelled")) => (Outcome::Declined, OutcomeReason::UserRejected),
                    _ => (Outcome::Declined, OutcomeReason::None),
                };
                (outcome, Indicator::Safe, reason, status)
            }
            Err(FlowError::Tampered) => (
                Outcome::Refused,
                Indicator::Danger,
                OutcomeReason::Tampered,
                "TAMPERED".to_owned(),
            ),
            Err(FlowError::Device(SessionError::Refused {
                status: firmware_protocol::message::StatusCode::UserCancelled,
                detail,
                ..
            })) => (
                Outcome::Rejected,
                Indicator::Off,
                OutcomeReason::UserRejected,
                detail,
            ),
            Err(FlowError::Bank(error))
                if error
                    .code()
                    .is_some_and(|code| DECIDED_AT_THE_BANK.contains(&code)) =>
            {
                // Decided for good at the bank (a bad signature is declined there too): never
                // offered again.
                self.confirmations.remove(request_id);
                tracing::info!(target: "companion::bank", "request {request_id}: {error}");
                return Err(error.into());
            }
            Err(error) => {
                if super::recovery::link_fault(&error).is_some() {
                    let delay = super::recovery::is_delay(&error);
                    self.recover_link(device_id, &slot, delay).await;
                }
                return Err(error.into());
            }
        };
        self.confirmations.remove(request_id);
        tracing::info!(target: "companion::bank", "request {request_id}: {outcome:?}");
        progress(DeviceProgress::Stage { stage: Stage::Done });
        self.push_devices();
        Ok(ConfirmationResult {
            request_id: request_id.to_owned(),
            outcome,
            indicator,
            reason,
            device_lines: self
                .mock(device_id)
                .map_or_else(|| vec![fallback], |mock| mock.display),
        })
    }
}
