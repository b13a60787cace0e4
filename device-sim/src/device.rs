//! The device core: a pure state machine.
//!
//! [`Device::handle`] takes one encoded request (message-layer bytes, PROTOCOL.md §3) and
//! answers with encoded responses, or with a pending state for requests that need the user
//! (PIN entry, confirmations). Pending requests progress in [`Device::poll`], which reads the
//! keypad, the tamper switch and the clock through [`Hardware`] and reports the
//! [`Progress`] the link layer turns into KEEPALIVE packets (a digit *count*, never a digit).
//! Nothing here does I/O, reads a clock or uses a global RNG.
//!
//! The checks run in the order of PROTOCOL.md §3.8; the first that fails is the answer.

mod confirmation;
mod lifecycle;
mod owner;
mod pairing;
mod payment;
mod persistence;
mod prompt;
mod provisioning;
mod session;
mod snapshot;
mod stored;
mod tamper;
mod texts;

use std::fmt;

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey};
use firmware_protocol::crypto::host_auth::HostVerifier;
use firmware_protocol::crypto::keys::KeyBlockProtectionKey;
use firmware_protocol::device_side::SessionKeys;
use firmware_protocol::message::{
    self, CancelResult, Capabilities, EcPublicKey, ErrorResponse, HostId, Indicator, Info,
    Lifecycle, LockState, Pong, Request, Response, Sha256Digest, Status, StatusCode,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use prompt::OUTCOME_SCREEN_MS;
pub use provisioning::{CERTIFICATE_VALIDITY_SECONDS, Manufacture};
pub use snapshot::Snapshot;
pub use stored::{STATE_FORMAT, StoredBinding, StoredHostName, StoredState};
pub use texts::{Language, UnknownLanguage};

use pairing::PendingPairing;
use payment::{PendingPayment, payment_lines};
use prompt::{Ended, Operation, PinEntry, Running, pin_of};
use provisioning::payload_refusal;

use crate::certificate::CertificateError;
use crate::hardware::{EventKind, Hardware};

/// Firmware version this build reports.
pub const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Default T2: lock after 30 days without a successful bank contact.
pub const DEFAULT_LOCK_AFTER_SECONDS: u64 = 30 * 24 * 3600;

/// Default time the user has to act on a prompt.
pub const DEFAULT_USER_TIMEOUT_SECONDS: u64 = 120;

/// Link MTU reported in `Info.link_mtu` unless the adapter says otherwise.
pub const DEFAULT_LINK_MTU: u16 = 64;

/// The simulator's "firmware image": what the device measures at start-up. The bank's
/// firmware allow-list holds [`firmware_image_hash`] of it.
pub fn firmware_image(version: &str) -> Vec<u8> {
    format!("PinBridge pinpad-sim firmware image, version {version}").into_bytes()
}

/// SHA-256 of [`firmware_image`]: the `firmware_hash` a genuine simulator reports.
pub fn firmware_image_hash(version: &str) -> [u8; 32] {
    Sha256::digest(firmware_image(version)).into()
}

/// What a long operation is waiting for: the link layer's KEEPALIVE status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Working, no user action needed.
    Processing,
    /// Waiting for the user to confirm on the device.
    AwaitingUser,
    /// PIN entry: digits entered so far out of at most `max`.
    PinEntry {
        /// Digits entered.
        entered: u8,
        /// Most digits.
        max: u8,
    },
}

/// What the device has to say after a request or a poll.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Encoded responses ready to send, in order (usually zero or one; a `Cancel` of a
    /// pending request gives that request's `Error(HostCancelled)` first).
    pub answers: Vec<Vec<u8>>,
    /// Set while a request is still in progress.
    pub progress: Option<Progress>,
}

impl Outcome {
    /// The last answer, if any.
    pub fn answer(&self) -> Option<&[u8]> {
        self.answers.last().map(Vec::as_slice)
    }

    /// Whether a request is still in progress.
    pub fn is_pending(&self) -> bool {
        self.progress.is_some()
    }
}

/// Why a device could not be made or restored.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The state file is not a device state this build reads.
    #[error("device state: {0}")]
    State(String),
    /// The certificate could not be issued.
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// Writing the state failed.
    #[error(transparent)]
    Store(#[from] crate::hardware::StoreError),
}

/// A refusal: the status and a detail for logs (never a secret).
#[derive(Clone, Debug)]
struct Refusal {
    status: StatusCode,
    detail: String,
}

fn refuse(status: StatusCode, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        detail: detail.into(),
    }
}

fn internal(error: impl fmt::Display) -> Refusal {
    refuse(StatusCode::InternalError, error.to_string())
}

enum Step {
    Respond(Response),
    Pending,
    /// A `Cancel` that aborted a pending request: that request's answer, then this one's.
    CancelledThen(Vec<u8>, Response),
}

/// The enrolment binding.
#[derive(Clone, Debug)]
struct Binding {
    customer_id: String,
    pin_account_number: String,
    pin_length_min: u8,
    pin_length_max: u8,
}

/// The PIN pad.
pub struct Device {
    serial: String,
    firmware_version: String,
    firmware_reference_hash: [u8; 32],
    measured_firmware_hash: [u8; 32],
    attestation: EcdsaSigningKey,
    certificate: Vec<u8>,
    bank_management_key: Option<EcdsaVerifyingKey>,
    bank_operator_key: Option<EcdsaVerifyingKey>,
    lock_after_ms: u64,
    /// T1 (0: no power-off lock).
    power_off_lock_ms: u64,
    /// T.
    identity_wipe_ms: u64,
    user_timeout_ms: u64,
    /// The screen's language: a setting of the device, not of any host (texts.rs).
    language: Language,
    link_mtu: u16,

    bank_sequence: u64,
    tampered: bool,
    lifecycle: Lifecycle,
    lock: LockState,
    kbpk: Option<KeyBlockProtectionKey>,
    binding: Option<Binding>,
    hosts: HostVerifier,
    host_names: Vec<(HostId, String)>,
    last_payment_counter: u64,
    device_counter: u64,
    last_bank_contact_ms: u64,
    /// The identifiers payments were enabled for (Enrol), §6.11.
    activation_record: Option<firmware_protocol::lifecycle::ActivationRecord>,
    /// When the current lock was taken.
    locked_since_ms: u64,
    /// Last time the device recorded it was running (T1 is measured from it).
    last_alive_ms: u64,

    indicator: Indicator,
    /// What a restart loses.
    volatile: Volatile,
}

/// The device's volatile state: a restart (power-on, [`Device::restore`]) starts it afresh,
/// so the session ends and nothing in progress survives.
#[derive(Default)]
struct Volatile {
    /// The outcome (or sticky state note) shown under the state line when idle.
    banner: Vec<String>,
    /// When the banner gives way to the neutral idle screen; `None`: it stays.
    banner_until_ms: Option<u64>,
    /// The id of the last prompt shown (ids restart at power-on).
    prompt_seq: u64,
    /// Session keys from LoadSessionKeys.
    session: Option<SessionKeys>,
    pending_payment: Option<PendingPayment>,
    /// The device counter of the PIN change sent to the bank, until its verdict.
    pending_pin_change: Option<u64>,
    pairing: Option<PendingPairing>,
    running: Option<Running>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("serial", &self.serial)
            .field("lifecycle", &self.lifecycle)
            .field("tampered", &self.tampered)
            .field("lock", &self.lock)
            .field("indicator", &self.indicator)
            .field("paired_hosts", &self.hosts.len())
            .field("session_active", &self.volatile.session.is_some())
            .finish_non_exhaustive()
    }
}

/// Request id of a message whose body did not decode (0 if even the header is short).
fn header_request_id(bytes: &[u8]) -> u32 {
    match bytes.get(3..7) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// `text` fit for `Error.detail`: at most 128 bytes, no control or bidi characters.
fn sanitize_detail(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let forbidden = c.is_control()
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        let c = if forbidden { ' ' } else { c };
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

impl Device {
    /// Start-up: drives the indicator and display from the restored state (a tampered device
    /// comes back blinking red) and checks the tamper switch and the T2 lock.
    pub fn power_on<H: Hardware>(&mut self, hw: &mut H) {
        let indicator = self.indicator;
        self.set_indicator(indicator, hw);
        self.power_on_rules(hw);
        let _ = self.sense(hw);
        self.refresh_display(hw);
    }

    /// Sets the MTU reported in `Info.link_mtu` (the adapter's link).
    pub fn set_link_mtu(&mut self, mtu: u16) {
        self.link_mtu = mtu;
    }

    /// Measures `image` as the running firmware (a restart with other firmware): a hash
    /// different from the reference recorded at manufacture disables payment functions
    /// (`IntegrityFailure`) and is what the integrity report then carries.
    pub fn measure_firmware(&mut self, image: &[u8]) {
        self.measured_firmware_hash = Sha256::digest(image).into();
    }

    /// Takes `hash` as the start-up measurement (a measurement made elsewhere, e.g. of a
    /// large image streamed from flash).
    pub fn set_measured_firmware_hash(&mut self, hash: [u8; 32]) {
        self.measured_firmware_hash = hash;
    }

    /// The reference firmware hash recorded at manufacture.
    pub fn reference_firmware_hash(&self) -> [u8; 32] {
        self.firmware_reference_hash
    }

    /// The start-up measurement of the running firmware.
    pub fn measured_firmware_hash(&self) -> [u8; 32] {
        self.measured_firmware_hash
    }

    /// Whether the measured firmware is the reference one.
    pub fn integrity_ok(&self) -> bool {
        bool::from(
            self.measured_firmware_hash
                .ct_eq(&self.firmware_reference_hash),
        )
    }

    /// Device serial.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The attestation public key (also in the certificate).
    pub fn attestation_public_key(&self) -> EcdsaVerifyingKey {
        self.attestation.verifying_key()
    }

    /// The CA certificate bytes (`Info.certificate`).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// The display language setting.
    pub fn display_language(&self) -> Language {
        self.language
    }

    /// Changes the display language, as the device's own settings menu does (no host message
    /// can: PROTOCOL.md §6.1). Kept in the secure store. When idle the screen is redrawn at
    /// once in the new language: a passing outcome gives way to the idle screen (as a settings
    /// menu would replace it), a lasting note (tamper, the bank's reason) stays. A prompt on
    /// the screen stays as it is until its request ends (a real terminal's menu is reached only
    /// when idle).
    pub fn set_display_language<H: Hardware>(
        &mut self,
        language: Language,
        hw: &mut H,
    ) -> Result<(), DeviceError> {
        if self.language == language {
            return Ok(());
        }
        self.language = language;
        self.save(hw)?;
        if self.volatile.running.is_none() && self.volatile.banner_until_ms.is_some() {
            self.volatile.banner.clear();
            self.volatile.banner_until_ms = None;
        }
        self.refresh_display(hw);
        Ok(())
    }

    /// `text` in the device's display language.
    fn say(&self, text: texts::Text<'_>) -> String {
        text.render(self.language)
    }

    /// Handles one request (message-layer bytes).
    pub fn handle<H: Hardware>(&mut self, bytes: &[u8], hw: &mut H) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some(aborted) = self.sense(hw) {
            outcome.answers.push(aborted);
        }
        let (request_id, request) = match message::decode_request(bytes) {
            Ok(decoded) => decoded,
            Err(error) => {
                let request_id = header_request_id(bytes);
                hw.record(EventKind::Request {
                    name: "undecodable".into(),
                    request_id,
                });
                let answer = self.error_answer(
                    request_id,
                    &refuse(error.status_code(), error.to_string()),
                    hw,
                );
                outcome.answers.push(answer);
                self.refresh_display(hw);
                return outcome;
            }
        };
        hw.record(EventKind::Request {
            name: request.name().into(),
            request_id,
        });
        match self.dispatch(request_id, request, false, hw) {
            Ok(Step::Respond(response)) => {
                outcome.answers.push(self.encode(request_id, response, hw));
            }
            Ok(Step::CancelledThen(cancelled, response)) => {
                outcome.answers.push(cancelled);
                outcome.answers.push(self.encode(request_id, response, hw));
            }
            Ok(Step::Pending) => outcome.progress = self.progress(),
            Err(refusal) => outcome
                .answers
                .push(self.error_answer(request_id, &refusal, hw)),
        }
        self.refresh_display(hw);
        outcome
    }

    /// Advances a pending request: reads keys, the tamper switch and the clock. Call it
    /// regularly (the simulator does every few milliseconds); idle devices use it to notice
    /// tamper and the T2 lock.
    pub fn poll<H: Hardware>(&mut self, hw: &mut H) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some(aborted) = self.sense(hw) {
            outcome.answers.push(aborted);
        }
        if self.volatile.running.is_none() {
            // No prompt on the screen: a key pressed now is meant for nothing.
            hw.discard_keys();
        }
        while self.volatile.running.is_some() {
            let Some(key) = hw.next_key() else { break };
            if let Some(answer) = self.on_key(key, hw) {
                outcome.answers.push(answer);
            }
        }
        if let Some(running) = &self.volatile.running
            && hw.now_ms() >= running.deadline_ms
        {
            let request_id = running.request_id;
            self.end_operation_as(Ended::TimedOut, hw);
            let answer = self.error_answer(
                request_id,
                &refuse(StatusCode::UserTimeout, "the user did not act in time"),
                hw,
            );
            outcome.answers.push(answer);
        }
        outcome.progress = self.progress();
        if outcome.progress.is_none() {
            self.refresh_display(hw);
        }
        outcome
    }

    /// Link-layer CANCEL: drops the pending request (and any PIN digits typed). Returns
    /// whether one was pending. The link answers ERROR CANCELLED; no message answer follows.
    pub fn abort<H: Hardware>(&mut self, hw: &mut H) -> bool {
        let aborted = self.volatile.running.is_some();
        if aborted {
            self.end_operation_as(Ended::ByHost, hw);
            hw.record(EventKind::State {
                change: "request cancelled by the host".into(),
            });
            self.refresh_display(hw);
        }
        aborted
    }

    /// Makes the pending request time out at the next poll (the "user too slow" fault).
    pub fn expire_user_prompt(&mut self) {
        if let Some(running) = &mut self.volatile.running {
            running.deadline_ms = 0;
        }
    }

    /// The prompt on the screen, if any ([`Snapshot::prompt_id`]).
    pub fn prompt_id(&self) -> Option<u64> {
        self.volatile.running.as_ref().map(|r| r.prompt_id)
    }

    /// The request id of the pending request, if any.
    pub fn pending_request_id(&self) -> Option<u32> {
        self.volatile.running.as_ref().map(|r| r.request_id)
    }

    fn set_indicator<H: Hardware>(&mut self, indicator: Indicator, hw: &mut H) {
        self.indicator = indicator;
        hw.set_indicator(indicator);
    }

    fn encode<H: Hardware>(&mut self, request_id: u32, response: Response, hw: &mut H) -> Vec<u8> {
        match response.encode(request_id) {
            Ok(bytes) => {
                hw.record(EventKind::Answer {
                    name: response.name().into(),
                    request_id,
                    status: None,
                });
                bytes
            }
            Err(error) => self.error_answer(request_id, &internal(error), hw),
        }
    }

    fn error_answer<H: Hardware>(
        &mut self,
        request_id: u32,
        refusal: &Refusal,
        hw: &mut H,
    ) -> Vec<u8> {
        hw.record(EventKind::Answer {
            name: "Error".into(),
            request_id,
            status: Some(format!("{:?}", refusal.status)),
        });
        let response = Response::Error(ErrorResponse {
            status: refusal.status,
            indicator: self.indicator,
            detail: sanitize_detail(&refusal.detail),
        });
        response.encode(request_id).unwrap_or_else(|_| {
            // An Error with an empty detail always encodes.
            Response::Error(ErrorResponse {
                status: StatusCode::InternalError,
                indicator: self.indicator,
                detail: String::new(),
            })
            .encode(request_id)
            .unwrap_or_default()
        })
    }

    fn status(&self, now_ms: u64) -> Status {
        let locks_in_seconds = (!self.tampered
            && matches!(self.lifecycle, Lifecycle::Initialised | Lifecycle::Bound)
            && self.lock == LockState::Unlocked)
            .then(|| {
                let deadline = self.last_bank_contact_ms.saturating_add(self.lock_after_ms);
                u32::try_from(deadline.saturating_sub(now_ms) / 1000).unwrap_or(u32::MAX)
            });
        Status {
            lifecycle: self.lifecycle,
            tampered: self.tampered,
            lock: self.lock,
            indicator: self.indicator,
            paired_hosts: u8::try_from(self.hosts.len()).unwrap_or(u8::MAX),
            session_active: self.volatile.session.is_some(),
            bank_sequence: self.bank_sequence,
            locks_in_seconds,
        }
    }

    fn info(&self) -> Result<Info, Refusal> {
        Ok(Info {
            protocol_version: message::PROTOCOL_VERSION,
            capabilities: Capabilities(
                Capabilities::TR31_AES
                    | Capabilities::PIN_BLOCK_ISO4
                    | Capabilities::MAC_AES_CMAC
                    | Capabilities::CONFIRMATION_SIGNING
                    | Capabilities::INTEGRITY_REPORT,
            ),
            max_message_len: 4095,
            link_mtu: self.link_mtu,
            serial: self.serial.clone(),
            firmware_version: self.firmware_version.clone(),
            firmware_hash: Sha256Digest(self.measured_firmware_hash),
            attestation_public_key: EcPublicKey::from(&self.attestation.verifying_key()),
            certificate: self.certificate.clone(),
        })
    }

    fn dispatch<H: Hardware>(
        &mut self,
        request_id: u32,
        request: Request,
        verified: bool,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        // 2. Always answered, in every state, even when busy.
        match &request {
            Request::GetInfo(_) => return Ok(Step::Respond(Response::Info(self.info()?))),
            Request::GetStatus(_) => {
                return Ok(Step::Respond(Response::Status(self.status(hw.now_ms()))));
            }
            Request::Ping(ping) => {
                return Ok(Step::Respond(Response::Pong(Pong {
                    payload: ping.payload.clone(),
                })));
            }
            Request::Cancel(cancel) => return Ok(self.cancel(cancel.target_request_id, hw)),
            Request::Vendor(vendor) => {
                return Err(refuse(
                    StatusCode::UnknownMessage,
                    format!(
                        "vendor message 0x{:04x} not implemented",
                        vendor.message_type
                    ),
                ));
            }
            _ => {}
        }
        // 3. One request at a time.
        if let Some(running) = &self.volatile.running {
            return Err(refuse(
                StatusCode::Busy,
                format!("request {} is waiting for the user", running.request_id),
            ));
        }
        // 4. Tamper.
        if self.tampered && !matches!(request, Request::OperatorReset(_)) {
            return Err(refuse(
                StatusCode::Tampered,
                "tampered: operator reset required",
            ));
        }
        // 5. Host verification.
        let request = match request {
            Request::HostVerified(envelope) => {
                let inner = self.open_envelope(request_id, &envelope, hw)?;
                return self.dispatch(request_id, inner, true, hw);
            }
            request if request.requires_host_verification() && !verified => {
                return Err(refuse(
                    StatusCode::NotPaired,
                    format!("{} needs the host-verified envelope", request.name()),
                ));
            }
            request => request,
        };
        // 6. Lifecycle.
        self.check_lifecycle(&request)?;
        let payment_function = matches!(
            request,
            Request::LoadSessionKeys(_)
                | Request::BankChallenge(_)
                | Request::ApprovePayment(_)
                | Request::SignConfirmation(_)
                | Request::ChangePin(_)
        );
        // 7. Integrity.
        if payment_function && !self.integrity_ok() {
            return Err(refuse(
                StatusCode::IntegrityFailure,
                "firmware measurement failed at start-up",
            ));
        }
        // 8. Lock.
        let lockable = payment_function
            || matches!(
                request,
                Request::PairBegin(_)
                    | Request::PairConfirm(_)
                    | Request::VerifyBankResponse(_)
                    | Request::VerifyPinChange(_)
            );
        if lockable {
            match self.lock {
                LockState::Unlocked => {}
                LockState::LockedInactivity => {
                    return Err(refuse(StatusCode::Locked, "no bank contact within T2"));
                }
                LockState::LockedByBank => {
                    return Err(refuse(StatusCode::LockedByBank, "locked by the bank"));
                }
                LockState::LockedPowerOff => {
                    return Err(refuse(
                        StatusCode::Locked,
                        "powered off for longer than T1: the bank must verify the device",
                    ));
                }
                LockState::LockedIdentity => {
                    return Err(refuse(
                        StatusCode::IdentityMismatch,
                        "the device's identifiers differ from its activation record",
                    ));
                }
            }
        }
        // 8a. The activation record, before every payment (§6.11).
        if matches!(
            request,
            Request::ApprovePayment(_) | Request::SignConfirmation(_) | Request::ChangePin(_)
        ) {
            self.check_activation(hw)?;
        }
        // 9. Session, then 10. payload checks in the handlers.
        match request {
            Request::PairBegin(r) => self.pair_begin(r, hw),
            Request::PairConfirm(r) => self.pair_confirm(request_id, r, hw),
            Request::Unpair(r) => self.unpair(r.host_id, hw),
            Request::Initialise(r) => self.initialise(r, hw),
            Request::Enrol(r) => self.enrol(request_id, r, hw),
            Request::OperatorReset(r) => self.operator_reset(r, hw),
            Request::BankCommand(r) => self.bank_command(r, hw),
            Request::GetIntegrityReport(r) => self.integrity_report(r),
            Request::LoadSessionKeys(r) => self.load_session_keys(r, hw),
            Request::BankChallenge(r) => self.bank_challenge(r, hw),
            Request::ApprovePayment(r) => self.approve_payment(request_id, r, hw),
            Request::VerifyBankResponse(r) => self.verify_bank_response(r, hw),
            Request::SignConfirmation(r) => self.sign_confirmation(request_id, r, hw),
            Request::ChangePin(r) => self.change_pin(request_id, r, hw),
            Request::VerifyPinChange(r) => self.verify_pin_change(r, hw),
            Request::WipeDevice(_) => self.wipe_device(request_id, hw),
            // Answered above; an envelope cannot contain an envelope.
            Request::GetInfo(_)
            | Request::GetStatus(_)
            | Request::Ping(_)
            | Request::Cancel(_)
            | Request::Vendor(_)
            | Request::HostVerified(_) => Err(internal("request routed twice")),
        }
    }

    fn cancel<H: Hardware>(&mut self, target: u32, hw: &mut H) -> Step {
        let cancels = self
            .volatile
            .running
            .as_ref()
            .is_some_and(|r| r.request_id == target);
        if !cancels {
            return Step::Respond(Response::CancelResult(CancelResult {
                target_request_id: target,
                cancelled: false,
            }));
        }
        self.end_operation_as(Ended::ByHost, hw);
        let cancelled = self.error_answer(
            target,
            &refuse(StatusCode::HostCancelled, "cancelled by the host"),
            hw,
        );
        Step::CancelledThen(
            cancelled,
            Response::CancelResult(CancelResult {
                target_request_id: target,
                cancelled: true,
            }),
        )
    }

    fn check_lifecycle(&self, request: &Request) -> Result<(), Refusal> {
        let name = request.name();
        let reset = matches!(request, Request::OperatorReset(_));
        match self.lifecycle {
            Lifecycle::Revoked if !reset => Err(refuse(StatusCode::Revoked, "wiped by the bank")),
            Lifecycle::Manufactured
                if !matches!(
                    request,
                    Request::Initialise(_)
                        | Request::GetIntegrityReport(_)
                        | Request::OperatorReset(_)
                ) =>
            {
                Err(refuse(
                    StatusCode::NotInitialised,
                    format!("{name} needs a bank-initialised device"),
                ))
            }
            Lifecycle::Initialised => match request {
                Request::Initialise(_) => {
                    Err(refuse(StatusCode::WrongState, "already initialised"))
                }
                Request::LoadSessionKeys(_)
                | Request::BankChallenge(_)
                | Request::ApprovePayment(_)
                | Request::VerifyBankResponse(_)
                | Request::SignConfirmation(_)
                | Request::ChangePin(_)
                | Request::VerifyPinChange(_) => Err(refuse(
                    StatusCode::NotBound,
                    format!("{name} needs a device bound to a customer"),
                )),
                _ => Ok(()),
            },
            Lifecycle::Bound if matches!(request, Request::Initialise(_) | Request::Enrol(_)) => {
                Err(refuse(
                    StatusCode::WrongState,
                    format!("{name} not allowed when bound"),
                ))
            }
            _ => Ok(()),
        }
    }

    fn bank_contact<H: Hardware>(&mut self, hw: &mut H) {
        self.last_bank_contact_ms = hw.now_ms();
    }

    fn intrusion<H: Hardware>(&mut self, refusal: Refusal, hw: &mut H) -> Refusal {
        self.set_indicator(Indicator::Danger, hw);
        hw.record(EventKind::Intrusion {
            what: format!("{:?}", refusal.status),
        });
        refusal
    }
}
