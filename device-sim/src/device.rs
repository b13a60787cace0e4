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

mod lifecycle;
mod owner;
mod stored;

use std::fmt;

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::crypto::host_auth::{HostAuthError, HostVerifier, MAX_PAIRED_HOSTS};
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{
    KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial, MacKey, PinKey, Usage,
};
use firmware_protocol::crypto::pairing::{
    DevicePairing, HostCommitment, PairingNonce, PairingOutcome, PairingPublicKey,
    derive_initialisation_kek,
};
use firmware_protocol::crypto::pinblock::{self, Pan, Pin};
use firmware_protocol::crypto::tr31::{self, Tr31Error};
use firmware_protocol::display::format_money;
use firmware_protocol::message::{
    self, ApprovePayment, BankChallenge, BankCommand, BankCommandKind, BankResult, CancelResult,
    Capabilities, ChallengeResponse, ConfirmationSignature, EcPublicKey, EcdsaSignature, Enrol,
    Enrolled, ErrorResponse, GetIntegrityReport, HostId, HostVerified, Indicator, IndicatorSet,
    Info, Initialise, Initialised, IntegrityReport, Kcv, KeyBlock, KeysLoaded, Lifecycle,
    LoadSessionKeys, LockState, MacTag, Nonce, OperatorReset, PairBegin, PairChallenge,
    PairConfirm, PairResult, PaymentApproved, PaymentDetails, PinBlock, PinBlockFormat, Pong,
    Request, Response, SessionId, Sha256Digest, SignConfirmation, Status, StatusCode,
    VerifyBankResponse,
};
use rand_core::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

pub use stored::{STATE_FORMAT, StoredBinding, StoredHostName, StoredState};

use crate::certificate::{CaKey, CertificateError};
use crate::hardware::{EventKind, Hardware, KeyPress};

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

/// Settings fixed at manufacture.
#[derive(Clone, Debug)]
pub struct Manufacture {
    /// Device serial, 1..=32 bytes of text.
    pub serial: String,
    /// Bank management public key (verifies Initialise, Enrol, BankCommand).
    pub bank_management_key: Option<EcdsaVerifyingKey>,
    /// Bank operator public key (verifies OperatorReset).
    pub bank_operator_key: Option<EcdsaVerifyingKey>,
    /// T2, seconds.
    pub lock_after_seconds: u64,
    /// T1: powered off for longer than this, the device locks at power-on (0: never).
    pub power_off_lock_seconds: u64,
    /// T: an identity lock held this long deletes the payment data.
    pub identity_wipe_seconds: u64,
    /// SHA-256 of the firmware image installed at manufacture: the reference the device
    /// compares its start-up measurement with (default: [`firmware_image_hash`]).
    pub firmware_hash: [u8; 32],
    /// How long the user has to act on a prompt, seconds.
    pub user_timeout_seconds: u64,
    /// Certificate validity start, Unix seconds.
    pub certificate_not_before: u64,
    /// Certificate validity end, Unix seconds.
    pub certificate_not_after: u64,
}

/// How long a certificate issued at manufacture is valid.
pub const CERTIFICATE_VALIDITY_SECONDS: u64 = 20 * 365 * 24 * 3600;

impl Manufacture {
    /// Defaults for everything but the serial; the certificate is valid from a day before
    /// now (clock skew between the factory and the bank) for 20 years.
    pub fn new(serial: impl Into<String>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let not_before = now.saturating_sub(24 * 3600);
        Self {
            serial: serial.into(),
            bank_management_key: None,
            bank_operator_key: None,
            lock_after_seconds: DEFAULT_LOCK_AFTER_SECONDS,
            power_off_lock_seconds: firmware_protocol::lifecycle::REFERENCE_T1_SECONDS,
            identity_wipe_seconds: firmware_protocol::lifecycle::REFERENCE_T_SECONDS,
            firmware_hash: firmware_image_hash(FIRMWARE_VERSION),
            user_timeout_seconds: DEFAULT_USER_TIMEOUT_SECONDS,
            certificate_not_before: not_before,
            certificate_not_after: not_before.saturating_add(CERTIFICATE_VALIDITY_SECONDS),
        }
    }
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

/// Session keys from LoadSessionKeys. Volatile: a restart ends the session.
struct Session {
    id: SessionId,
    pin_key: PinKey,
    mac_key: MacKey,
    response_key: MacKey,
}

struct PendingPayment {
    transaction_id: String,
    device_counter: u64,
}

struct PendingPairing {
    pairing: DevicePairing,
    host_name: String,
}

/// Digits typed so far; zeroized on drop, never shown.
struct PinEntry {
    digits: Zeroizing<Vec<u8>>,
    max: u8,
}

impl PinEntry {
    fn new(max: u8) -> Self {
        Self {
            digits: Zeroizing::new(Vec::with_capacity(12)),
            max,
        }
    }

    fn entered(&self) -> u8 {
        u8::try_from(self.digits.len()).unwrap_or(u8::MAX)
    }

    fn clear(&mut self) {
        self.digits.zeroize();
    }

    fn pin(&self) -> Option<Pin> {
        std::str::from_utf8(&self.digits)
            .ok()
            .and_then(|s| Pin::new(s).ok())
    }
}

enum Operation {
    Enrol {
        request: Box<Enrol>,
        pin_key: PinKey,
        first: Option<Zeroizing<Vec<u8>>>,
        entry: PinEntry,
    },
    ConfirmPairing {
        outcome: Box<PairingOutcome>,
        host_name: String,
    },
    ApprovePayment {
        request: Box<ApprovePayment>,
        entry: PinEntry,
    },
    SignConfirmation {
        request: Box<SignConfirmation>,
    },
    /// The owner's PIN change (§6.12): three PIN entries.
    ChangePin(Box<owner::PinChange>),
    /// The owner's wipe (§6.13): OK or X.
    Wipe,
}

impl Operation {
    fn pin_entry_mut(&mut self) -> Option<&mut PinEntry> {
        match self {
            Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. } => Some(entry),
            Operation::ChangePin(change) => Some(&mut change.entry),
            Operation::ConfirmPairing { .. }
            | Operation::SignConfirmation { .. }
            | Operation::Wipe => None,
        }
    }

    fn pin_entered(&self) -> Option<u8> {
        match self {
            Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. } => {
                Some(entry.entered())
            }
            Operation::ChangePin(change) => Some(change.entry.entered()),
            Operation::ConfirmPairing { .. }
            | Operation::SignConfirmation { .. }
            | Operation::Wipe => None,
        }
    }
}

/// How an operation waiting for the user ended without the user's OK.
#[derive(Clone, Copy)]
enum Ended {
    /// X on the keypad.
    ByUser,
    /// No key within the user timeout.
    TimedOut,
    /// The host cancelled it (link CANCEL or a Cancel request).
    ByHost,
}

impl Operation {
    /// What did not happen, for the outcome screen ("not paid").
    fn not_done(&self) -> &'static str {
        match self {
            Operation::Enrol { .. } => "not enrolled",
            Operation::ApprovePayment { .. } => "not paid",
            Operation::ConfirmPairing { .. } => "not paired",
            Operation::SignConfirmation { .. } => "not confirmed",
            Operation::ChangePin(_) => "PIN not changed",
            Operation::Wipe => "not wiped",
        }
    }

    /// The outcome screen of an operation that ended as `ended`.
    fn ended_text(&self, ended: Ended) -> String {
        let not_done = self.not_done();
        match (ended, self) {
            (Ended::ByUser, Operation::SignConfirmation { .. }) => "Rejected: not confirmed".into(),
            (Ended::ByUser, _) => format!("Cancelled: {not_done}"),
            (Ended::TimedOut, _) => format!("Timed out: {not_done}"),
            (Ended::ByHost, _) => format!("Cancelled by the computer: {not_done}"),
        }
    }
}

/// How long an outcome (approved, declined, cancelled, timed out...) stays on the screen
/// before the neutral idle screen comes back, device clock milliseconds.
pub const OUTCOME_SCREEN_MS: u64 = 15_000;

/// The prompt line that shows one star per PIN digit entered.
const PIN_LINE: &str = "PIN:";

struct Running {
    request_id: u32,
    /// The prompt on the screen ([`Snapshot::prompt_id`]).
    prompt_id: u64,
    deadline_ms: u64,
    operation: Operation,
    /// What the display shows; the [`PIN_LINE`] gets the stars.
    prompt: Vec<String>,
}

impl Running {
    fn render<H: Hardware>(&self, hw: &mut H) {
        let entered = self.operation.pin_entered();
        let lines = self
            .prompt
            .iter()
            .map(|line| match entered {
                Some(count) if line == PIN_LINE => {
                    format!("{PIN_LINE} {}", "*".repeat(usize::from(count)))
                }
                _ => line.clone(),
            })
            .collect();
        hw.show(lines);
    }
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
    /// The outcome (or sticky state note) shown under the state line when idle.
    banner: Vec<String>,
    /// When the banner gives way to the neutral idle screen; `None`: it stays.
    banner_until_ms: Option<u64>,
    /// The id of the last prompt shown (volatile: ids restart at power-on).
    prompt_seq: u64,
    session: Option<Session>,
    pending_payment: Option<PendingPayment>,
    /// The device counter of the PIN change sent to the bank, until its verdict (volatile,
    /// like the session it belongs to).
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
            .field("session_active", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Device::snapshot`] tells: the public state, for the control API and tests.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Device serial.
    pub serial: String,
    /// `manufactured`, `initialised`, `bound` or `revoked`.
    pub lifecycle: &'static str,
    /// The sticky tamper flag.
    pub tampered: bool,
    /// `unlocked`, `locked_inactivity` or `locked_by_bank`.
    pub lock: &'static str,
    /// `off`, `safe` or `danger`.
    pub indicator: &'static str,
    /// Paired hosts.
    pub paired_hosts: usize,
    /// Session keys loaded.
    pub session_active: bool,
    /// Last accepted bank sequence.
    pub bank_sequence: u64,
    /// A request is waiting for the user.
    pub busy: bool,
    /// What the pending request waits for: `pin`, `confirm` or none.
    pub waiting_for: Option<&'static str>,
    /// PIN digits entered so far (a count).
    pub pin_digits_entered: Option<u8>,
    /// The prompt on the screen, if any: a number new for every prompt shown since power-on
    /// (a scripted user presses for the prompt it saw, [`crate::sim::SimHandle::press_for`]).
    pub prompt_id: Option<u64>,
    /// The firmware measured at start-up matches the reference.
    pub integrity_ok: bool,
    /// SHA-256 of the firmware as measured, hex.
    pub firmware_hash: String,
}

fn lifecycle_name(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Manufactured => "manufactured",
        Lifecycle::Initialised => "initialised",
        Lifecycle::Bound => "bound",
        Lifecycle::Revoked => "revoked",
    }
}

fn lock_name(lock: LockState) -> &'static str {
    match lock {
        LockState::Unlocked => "unlocked",
        LockState::LockedInactivity => "locked_inactivity",
        LockState::LockedByBank => "locked_by_bank",
        LockState::LockedPowerOff => "locked_power_off",
        LockState::LockedIdentity => "locked_identity",
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

/// The Initialise KEK context and the amount as the device shows it are protocol rules: their
/// one home is `firmware-protocol` (as are each signed payload's `SIGNATURE_DOMAIN` and
/// `MacTag::aes_cmac`).
pub use firmware_protocol::crypto::pairing::initialisation_context;
pub use firmware_protocol::display::format_amount;

fn payment_lines(payment: &PaymentDetails) -> Vec<String> {
    let mut lines = vec![
        format!(
            "Pay {}",
            format_money(
                payment.currency.as_str(),
                payment.amount_minor,
                payment.currency_exponent
            )
        ),
        format!("To: {}", payment.payee_name),
        format!("Account: {}", payment.payee_account),
        format!("From: {}", payment.payer_account),
    ];
    if !payment.reference.is_empty() {
        lines.push(format!("Ref: {}", payment.reference));
    }
    lines
}

/// A refusal at the end of a prompt, for the outcome screen.
fn refusal_text(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PinMismatch => "PINs differ",
        StatusCode::PinPolicy => "PIN length not allowed",
        StatusCode::PairingTableFull => "Too many computers paired",
        StatusCode::NoSession => "Session ended",
        _ => "Failed",
    }
}

fn result_text(result: BankResult) -> &'static str {
    match result {
        BankResult::Approved => "Approved",
        BankResult::Declined => "Declined",
        BankResult::PinIncorrect => "Declined: wrong PIN",
        BankResult::InsufficientFunds => "Declined: insufficient funds",
        BankResult::LimitExceeded => "Declined: limit exceeded",
        BankResult::AccountBlocked => "Declined: account blocked",
        BankResult::Duplicate => "Already paid",
        BankResult::SystemError => "Bank error: not paid",
    }
}

fn unwrap_typed<U: Usage>(
    kbpk: &KeyBlockProtectionKey,
    block: &KeyBlock,
    what: &str,
) -> Result<firmware_protocol::crypto::keys::Key<U>, Refusal> {
    let unwrapped = tr31::unwrap(kbpk, block.as_str())
        .map_err(|e| refuse(StatusCode::KeyBlockRejected, format!("{what}: {e}")))?;
    unwrapped.into_key::<U>().map_err(|e| match e {
        Tr31Error::WrongUsage { .. } | Tr31Error::ModeOfUseNotAllowed { .. } => {
            refuse(StatusCode::WrongKeyUsage, format!("{what}: {e}"))
        }
        other => refuse(StatusCode::KeyBlockRejected, format!("{what}: {other}")),
    })
}

fn require_aes(material: &KeyMaterial, what: &str) -> Result<(), Refusal> {
    if material.algorithm() != KeyAlgorithm::Aes {
        return Err(refuse(
            StatusCode::UnsupportedKeyAlgorithm,
            format!("{what}: this device takes AES keys only"),
        ));
    }
    Ok(())
}

fn check_kcv(material: &KeyMaterial, expected: &Kcv, what: &str) -> Result<(), Refusal> {
    let method = KcvMethod::standard_for(material.algorithm());
    kcv::verify(material, method, expected.as_bytes())
        .map_err(|e| refuse(StatusCode::KcvMismatch, format!("{what}: {e}")))
}

fn computed_kcv(material: &KeyMaterial) -> Result<Kcv, Refusal> {
    let value = kcv::compute(material, KcvMethod::standard_for(material.algorithm()));
    Kcv::new(value.as_bytes()).map_err(internal)
}

fn cmac(key: &MacKey, input: &[u8]) -> Result<MacTag, Refusal> {
    MacTag::aes_cmac(key, input).map_err(internal)
}

impl Device {
    /// Manufactures a device: a fresh attestation key, a certificate from `ca`, the bank's
    /// public keys, lifecycle Manufactured.
    pub fn manufacture(
        settings: &Manufacture,
        ca: &CaKey,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self, DeviceError> {
        let attestation = EcdsaSigningKey::generate(rng);
        let certificate = ca.issue(
            &settings.serial,
            &attestation.verifying_key(),
            settings.certificate_not_before,
            settings.certificate_not_after,
        )?;
        let reference = settings.firmware_hash;
        Ok(Self {
            serial: settings.serial.clone(),
            firmware_version: FIRMWARE_VERSION.into(),
            firmware_reference_hash: reference,
            measured_firmware_hash: reference,
            attestation,
            certificate: certificate.to_bytes(),
            bank_management_key: settings.bank_management_key,
            bank_operator_key: settings.bank_operator_key,
            lock_after_ms: settings.lock_after_seconds.saturating_mul(1000),
            power_off_lock_ms: settings.power_off_lock_seconds.saturating_mul(1000),
            identity_wipe_ms: settings.identity_wipe_seconds.saturating_mul(1000),
            user_timeout_ms: settings.user_timeout_seconds.saturating_mul(1000),
            link_mtu: DEFAULT_LINK_MTU,
            bank_sequence: 0,
            tampered: false,
            lifecycle: Lifecycle::Manufactured,
            lock: LockState::Unlocked,
            kbpk: None,
            binding: None,
            hosts: HostVerifier::new(),
            host_names: Vec::new(),
            last_payment_counter: 0,
            device_counter: 0,
            last_bank_contact_ms: 0,
            activation_record: None,
            locked_since_ms: 0,
            last_alive_ms: 0,
            indicator: Indicator::Off,
            banner: Vec::new(),
            banner_until_ms: None,
            prompt_seq: 0,
            session: None,
            pending_payment: None,
            pending_pin_change: None,
            pairing: None,
            running: None,
        })
    }

    /// Restores a device from its secure store (a restart). Volatile state (session keys,
    /// a pairing or payment in progress) is gone; the indicator reads danger if tampered,
    /// else off. The firmware is measured again (genuine image).
    pub fn restore(state: &[u8]) -> Result<Self, DeviceError> {
        let bad = |what: &str| DeviceError::State(what.into());
        let stored: StoredState =
            serde_json::from_slice(state).map_err(|e| bad(&format!("not a device state: {e}")))?;
        if stored.format != STATE_FORMAT {
            return Err(bad(&format!(
                "state format {} not supported",
                stored.format
            )));
        }
        let hex32 = |text: &str, what: &str| -> Result<[u8; 32], DeviceError> {
            let bytes = Zeroizing::new(hex::decode(text).map_err(|_| bad(what))?);
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad(what))
        };
        let public_key = |text: &Option<String>, what: &str| -> Result<_, DeviceError> {
            text.as_ref()
                .map(|t| {
                    let bytes = hex::decode(t).map_err(|_| bad(what))?;
                    EcdsaVerifyingKey::from_sec1_bytes(&bytes).map_err(|_| bad(what))
                })
                .transpose()
        };
        let attestation_secret = Zeroizing::new(hex32(&stored.attestation_key, "attestation_key")?);
        let attestation = EcdsaSigningKey::from_bytes(attestation_secret.as_slice())
            .map_err(|_| bad("attestation_key"))?;
        let kbpk = match &stored.kbpk {
            Some(text) => {
                let bytes = Zeroizing::new(hex::decode(text).map_err(|_| bad("kbpk"))?);
                Some(
                    KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &bytes)
                        .map_err(|_| bad("kbpk"))?,
                )
            }
            None => None,
        };
        let hosts_bytes = Zeroizing::new(hex::decode(&stored.hosts).map_err(|_| bad("hosts"))?);
        let hosts = HostVerifier::from_bytes(&hosts_bytes).map_err(|_| bad("hosts"))?;
        let mut host_names = Vec::new();
        for entry in &stored.host_names {
            let id = hex::decode(&entry.host_id).map_err(|_| bad("host_names"))?;
            let id: [u8; 8] = id.as_slice().try_into().map_err(|_| bad("host_names"))?;
            host_names.push((HostId::from_array(id), entry.name.clone()));
        }
        let lifecycle = Lifecycle::from_wire(stored.lifecycle).ok_or_else(|| bad("lifecycle"))?;
        let lock = LockState::from_wire(stored.lock).ok_or_else(|| bad("lock"))?;
        let reference = hex32(&stored.firmware_hash, "firmware_hash")?;
        let certificate = hex::decode(&stored.certificate).map_err(|_| bad("certificate"))?;
        Ok(Self {
            serial: stored.serial.clone(),
            firmware_version: stored.firmware_version.clone(),
            firmware_reference_hash: reference,
            measured_firmware_hash: firmware_image_hash(&stored.firmware_version),
            attestation,
            certificate,
            bank_management_key: public_key(&stored.bank_management_key, "bank_management_key")?,
            bank_operator_key: public_key(&stored.bank_operator_key, "bank_operator_key")?,
            lock_after_ms: stored.lock_after_seconds.saturating_mul(1000),
            power_off_lock_ms: stored.power_off_lock_seconds.saturating_mul(1000),
            identity_wipe_ms: stored.identity_wipe_seconds.saturating_mul(1000),
            user_timeout_ms: stored.user_timeout_seconds.saturating_mul(1000),
            link_mtu: DEFAULT_LINK_MTU,
            bank_sequence: stored.bank_sequence,
            tampered: stored.tampered,
            lifecycle,
            lock,
            kbpk,
            binding: stored.binding.as_ref().map(|b| Binding {
                customer_id: b.customer_id.clone(),
                pin_account_number: b.pin_account_number.clone(),
                pin_length_min: b.pin_length_min,
                pin_length_max: b.pin_length_max,
            }),
            hosts,
            host_names,
            last_payment_counter: stored.last_payment_counter,
            device_counter: stored.device_counter,
            last_bank_contact_ms: stored.last_bank_contact_ms,
            activation_record: match &stored.activation_record {
                Some(text) => Some(firmware_protocol::lifecycle::ActivationRecord(hex32(
                    text,
                    "activation_record",
                )?)),
                None => None,
            },
            locked_since_ms: stored.locked_since_ms,
            // A store from before the alive record: the power-off time is unknown, so T1
            // cannot be applied this once (saturating: "off for 0 ms").
            last_alive_ms: stored.last_alive_ms.unwrap_or(u64::MAX),
            indicator: if stored.tampered {
                Indicator::Danger
            } else {
                Indicator::Off
            },
            banner: Vec::new(),
            banner_until_ms: None,
            prompt_seq: 0,
            session: None,
            pending_payment: None,
            pending_pin_change: None,
            pairing: None,
            running: None,
        })
    }

    /// The secure-store bytes of the persistent state (JSON; holds secrets).
    pub fn stored_state(&self) -> Zeroizing<Vec<u8>> {
        let stored = StoredState {
            format: STATE_FORMAT,
            serial: self.serial.clone(),
            firmware_version: self.firmware_version.clone(),
            firmware_hash: hex::encode(self.firmware_reference_hash),
            attestation_key: hex::encode(*self.attestation.reveal_bytes()),
            certificate: hex::encode(&self.certificate),
            bank_management_key: self
                .bank_management_key
                .map(|k| hex::encode(k.to_sec1_bytes())),
            bank_operator_key: self
                .bank_operator_key
                .map(|k| hex::encode(k.to_sec1_bytes())),
            lock_after_seconds: self.lock_after_ms / 1000,
            power_off_lock_seconds: self.power_off_lock_ms / 1000,
            identity_wipe_seconds: self.identity_wipe_ms / 1000,
            user_timeout_seconds: self.user_timeout_ms / 1000,
            bank_sequence: self.bank_sequence,
            tampered: self.tampered,
            lifecycle: self.lifecycle.to_wire(),
            lock: self.lock.to_wire(),
            kbpk: self
                .kbpk
                .as_ref()
                .map(|k| hex::encode(k.material().reveal_bytes())),
            binding: self.binding.as_ref().map(|b| StoredBinding {
                customer_id: b.customer_id.clone(),
                pin_account_number: b.pin_account_number.clone(),
                pin_length_min: b.pin_length_min,
                pin_length_max: b.pin_length_max,
            }),
            hosts: hex::encode(&*self.hosts.to_bytes()),
            host_names: self
                .host_names
                .iter()
                .map(|(id, name)| StoredHostName {
                    host_id: hex::encode(id.as_bytes()),
                    name: name.clone(),
                })
                .collect(),
            last_payment_counter: self.last_payment_counter,
            device_counter: self.device_counter,
            last_bank_contact_ms: self.last_bank_contact_ms,
            activation_record: self.activation_record.map(|r| hex::encode(r.0)),
            locked_since_ms: self.locked_since_ms,
            last_alive_ms: Some(self.last_alive_ms),
        };
        Zeroizing::new(serde_json::to_vec_pretty(&stored).unwrap_or_default())
    }

    /// Writes the persistent state to the secure store.
    pub fn save<H: Hardware>(&self, hw: &mut H) -> Result<(), DeviceError> {
        hw.persist(&self.stored_state())?;
        Ok(())
    }

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

    /// The public state.
    pub fn snapshot(&self) -> Snapshot {
        let (waiting_for, pin_digits_entered) = match self.running.as_ref().map(|r| &r.operation) {
            Some(Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. }) => {
                (Some("pin"), Some(entry.entered()))
            }
            Some(Operation::ChangePin(change)) => (Some("pin"), Some(change.entry.entered())),
            Some(
                Operation::ConfirmPairing { .. }
                | Operation::SignConfirmation { .. }
                | Operation::Wipe,
            ) => (Some("confirm"), None),
            None => (None, None),
        };
        Snapshot {
            serial: self.serial.clone(),
            lifecycle: lifecycle_name(self.lifecycle),
            tampered: self.tampered,
            lock: lock_name(self.lock),
            indicator: crate::hardware::indicator_name(self.indicator),
            paired_hosts: self.hosts.len(),
            session_active: self.session.is_some(),
            bank_sequence: self.bank_sequence,
            busy: self.running.is_some(),
            waiting_for,
            pin_digits_entered,
            prompt_id: self.running.as_ref().map(|r| r.prompt_id),
            integrity_ok: self.integrity_ok(),
            firmware_hash: hex::encode(self.measured_firmware_hash),
        }
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
        if self.running.is_none() {
            // No prompt on the screen: a key pressed now is meant for nothing.
            hw.discard_keys();
        }
        while self.running.is_some() {
            let Some(key) = hw.next_key() else { break };
            if let Some(answer) = self.on_key(key, hw) {
                outcome.answers.push(answer);
            }
        }
        if let Some(running) = &self.running
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
        let aborted = self.running.is_some();
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
        if let Some(running) = &mut self.running {
            running.deadline_ms = 0;
        }
    }

    /// The prompt on the screen, if any ([`Snapshot::prompt_id`]).
    pub fn prompt_id(&self) -> Option<u64> {
        self.running.as_ref().map(|r| r.prompt_id)
    }

    /// The request id of the pending request, if any.
    pub fn pending_request_id(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.request_id)
    }

    fn progress(&self) -> Option<Progress> {
        self.running
            .as_ref()
            .map(|running| match &running.operation {
                Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. } => {
                    Progress::PinEntry {
                        entered: entry.entered(),
                        max: entry.max,
                    }
                }
                Operation::ChangePin(change) => Progress::PinEntry {
                    entered: change.entry.entered(),
                    max: change.entry.max,
                },
                Operation::ConfirmPairing { .. }
                | Operation::SignConfirmation { .. }
                | Operation::Wipe => Progress::AwaitingUser,
            })
    }

    /// Ends the operation waiting for the user, with its outcome screen.
    fn end_operation_as<H: Hardware>(&mut self, ended: Ended, hw: &mut H) {
        // Dropping the operation zeroizes any PIN digits it held.
        if let Some(running) = self.running.take() {
            self.outcome(vec![running.operation.ended_text(ended)], hw);
        }
    }

    /// Shows `lines` as the outcome of what just happened, until [`OUTCOME_SCREEN_MS`] passed
    /// or the next prompt or outcome replaces them.
    fn outcome<H: Hardware>(&mut self, lines: Vec<String>, hw: &H) {
        self.banner = lines;
        self.banner_until_ms = Some(hw.now_ms().saturating_add(OUTCOME_SCREEN_MS));
    }

    /// The next prompt's id.
    fn next_prompt_id(&mut self) -> u64 {
        self.prompt_seq = self.prompt_seq.wrapping_add(1);
        self.prompt_seq
    }

    /// Tamper switch and T2 lock. Returns the answer of a request aborted by tamper.
    fn sense<H: Hardware>(&mut self, hw: &mut H) -> Option<Vec<u8>> {
        if hw.tamper_switch_open() && !self.tampered {
            return self.trip_tamper(hw);
        }
        self.timer_rules(hw);
        if self.running.is_none()
            && self.can_self_lock()
            && hw.now_ms().saturating_sub(self.last_bank_contact_ms) > self.lock_after_ms
        {
            self.lock_payments(LockState::LockedInactivity, hw);
            hw.record(EventKind::State {
                change: "locked: no bank contact within T2".into(),
            });
            self.persist(hw);
        }
        None
    }

    /// Tamper: wipe keys and payment data at once, danger, sticky flag (CN103106582A).
    fn trip_tamper<H: Hardware>(&mut self, hw: &mut H) -> Option<Vec<u8>> {
        let aborted = self.running.take().map(|running| running.request_id);
        self.tampered = true;
        self.wipe_bank_data();
        self.lifecycle = Lifecycle::Manufactured;
        self.lock = LockState::Unlocked;
        self.set_indicator(Indicator::Danger, hw);
        self.banner = vec!["Keys wiped. Service required.".into()];
        self.banner_until_ms = None;
        hw.record(EventKind::Tamper);
        self.persist(hw);
        self.refresh_display(hw);
        aborted.map(|request_id| {
            self.error_answer(
                request_id,
                &refuse(
                    StatusCode::Tampered,
                    "tamper switch opened during the request",
                ),
                hw,
            )
        })
    }

    /// Bank keys, binding, pairings, session, payment data.
    fn wipe_bank_data(&mut self) {
        self.kbpk = None;
        self.binding = None;
        self.hosts = HostVerifier::new();
        self.host_names.clear();
        self.session = None;
        self.pending_payment = None;
        self.pending_pin_change = None;
        self.pairing = None;
        self.last_payment_counter = 0;
        self.device_counter = 0;
        self.activation_record = None;
    }

    fn set_indicator<H: Hardware>(&mut self, indicator: Indicator, hw: &mut H) {
        self.indicator = indicator;
        hw.set_indicator(indicator);
    }

    fn persist<H: Hardware>(&mut self, hw: &mut H) -> bool {
        match hw.persist(&self.stored_state()) {
            Ok(()) => true,
            Err(error) => {
                hw.record(EventKind::State {
                    change: format!("secure store write failed: {error}"),
                });
                false
            }
        }
    }

    fn persist_or_refuse<H: Hardware>(&mut self, hw: &mut H) -> Result<(), Refusal> {
        if self.persist(hw) {
            Ok(())
        } else {
            Err(refuse(
                StatusCode::InternalError,
                "secure store write failed",
            ))
        }
    }

    fn refresh_display<H: Hardware>(&mut self, hw: &mut H) {
        if self.running.is_some() {
            return;
        }
        if self
            .banner_until_ms
            .is_some_and(|until| hw.now_ms() >= until)
        {
            self.banner.clear();
            self.banner_until_ms = None;
        }
        let normal = !self.tampered
            && self.integrity_ok()
            && self.lock == LockState::Unlocked
            && matches!(self.lifecycle, Lifecycle::Initialised | Lifecycle::Bound);
        let state = if self.tampered {
            "TAMPERED - operator reset required"
        } else if !self.integrity_ok() {
            "Firmware check failed"
        } else {
            match (self.lifecycle, self.lock) {
                (Lifecycle::Revoked, _) => "Revoked by the bank",
                (Lifecycle::Manufactured, _) => "Not initialised",
                (_, LockState::LockedInactivity) => "Locked: contact your bank",
                (_, LockState::LockedByBank) => "Locked by your bank",
                (_, LockState::LockedPowerOff) => "Locked: log in to unlock",
                (_, LockState::LockedIdentity) => "Locked: identity changed",
                (Lifecycle::Initialised, _) => "Initialised, not enrolled",
                (Lifecycle::Bound, _) => "Ready",
            }
        };
        // An outcome replaces the everyday state line; an abnormal state stays above it.
        let mut lines = vec![format!("PinBridge {}", self.serial)];
        if !normal || self.banner.is_empty() {
            lines.push(state.to_string());
        }
        lines.extend(self.banner.iter().cloned());
        hw.show(lines);
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
            session_active: self.session.is_some(),
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
            attestation_public_key: EcPublicKey::new(
                self.attestation.verifying_key().to_sec1_bytes(),
            )
            .map_err(internal)?,
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
        if let Some(running) = &self.running {
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

    fn open_envelope<H: Hardware>(
        &mut self,
        request_id: u32,
        envelope: &HostVerified,
        hw: &mut H,
    ) -> Result<Request, Refusal> {
        let host_id = envelope.host_id;
        match self
            .hosts
            .verify(&host_id, envelope.counter, &envelope.inner, &envelope.mac.0)
        {
            Ok(()) => {}
            Err(HostAuthError::UnknownHost { .. }) => {
                return Err(refuse(StatusCode::UnknownHost, "host id not paired"));
            }
            Err(HostAuthError::BadMac) => {
                self.set_indicator(Indicator::Danger, hw);
                hw.record(EventKind::Intrusion {
                    what: "BadHostMac".into(),
                });
                return Err(refuse(StatusCode::BadHostMac, "host MAC does not verify"));
            }
            Err(HostAuthError::Replay { last, got }) => {
                return Err(refuse(
                    StatusCode::ReplayedCounter,
                    format!("counter {got} is not above the last accepted {last}"),
                ));
            }
            Err(other) => return Err(internal(other)),
        }
        // The counter is now consumed: persist before acting, so a restart cannot reopen it.
        self.persist_or_refuse(hw)?;
        envelope
            .open(request_id)
            .map_err(|e| refuse(e.status_code(), e.to_string()))
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

    fn check_serial(&self, serial: &str) -> Result<(), Refusal> {
        if serial != self.serial {
            return Err(refuse(
                StatusCode::WrongDevice,
                format!("signed for device {serial}, this is {}", self.serial),
            ));
        }
        Ok(())
    }

    fn check_signature(
        key: Option<&EcdsaVerifyingKey>,
        domain: SignatureDomain,
        signed: Result<Vec<u8>, message::MessageError>,
        signature: &EcdsaSignature,
    ) -> Result<(), Refusal> {
        let key = key.ok_or_else(|| {
            refuse(
                StatusCode::BadSignature,
                "no bank public key was installed at manufacture",
            )
        })?;
        let signed = signed.map_err(internal)?;
        key.verify(domain, &signed, signature)
            .map_err(|e| refuse(StatusCode::BadSignature, e.to_string()))
    }

    fn check_sequence(&self, sequence: u64) -> Result<(), Refusal> {
        if sequence <= self.bank_sequence {
            return Err(refuse(
                StatusCode::StaleBankCounter,
                format!(
                    "bank sequence {sequence} is not above the last accepted {}",
                    self.bank_sequence
                ),
            ));
        }
        Ok(())
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

    fn initialise<H: Hardware>(
        &mut self,
        request: Initialise,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_serial(&request.device_serial)?;
        Self::check_signature(
            self.bank_management_key.as_ref(),
            Initialise::SIGNATURE_DOMAIN,
            request.signed_bytes(),
            &request.signature,
        )?;
        self.check_sequence(request.sequence)?;
        let bank_public = EcdsaVerifyingKey::from_sec1_bytes(request.bank_public_key.as_bytes())
            .map_err(|e| {
                refuse(
                    StatusCode::MalformedMessage,
                    format!("bank_public_key: {e}"),
                )
            })?;
        let kek = derive_initialisation_kek(
            &self.attestation,
            &bank_public,
            &initialisation_context(&request.device_serial, request.sequence),
        );
        let kbpk: KeyBlockProtectionKey = unwrap_typed(&kek, &request.kbpk.key_block, "kbpk")?;
        require_aes(kbpk.material(), "kbpk")?;
        check_kcv(kbpk.material(), &request.kbpk.kcv, "kbpk")?;
        let kcv = computed_kcv(kbpk.material())?;
        self.kbpk = Some(kbpk);
        self.lifecycle = Lifecycle::Initialised;
        self.lock = LockState::Unlocked;
        self.bank_sequence = request.sequence;
        self.bank_contact(hw);
        self.outcome(vec!["Initialised by the bank".into()], hw);
        hw.record(EventKind::State {
            change: "initialised".into(),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Initialised(Initialised { kcv })))
    }

    fn enrol<H: Hardware>(
        &mut self,
        request_id: u32,
        request: Enrol,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_serial(&request.device_serial)?;
        Self::check_signature(
            self.bank_management_key.as_ref(),
            Enrol::SIGNATURE_DOMAIN,
            request.signed_bytes(),
            &request.signature,
        )?;
        self.check_sequence(request.sequence)?;
        let kbpk = self
            .kbpk
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotInitialised, "no key-block protection key"))?;
        let pin_key: PinKey = unwrap_typed(kbpk, &request.pin_key.key_block, "pin_key")?;
        require_aes(pin_key.material(), "pin_key")?;
        check_kcv(pin_key.material(), &request.pin_key.kcv, "pin_key")?;
        self.bank_contact(hw);
        let max = request.pin_length_max;
        let prompt = vec![
            format!("Enrolment for {}", request.customer_id),
            format!("Choose a PIN ({}-{} digits)", request.pin_length_min, max),
            PIN_LINE.into(),
            "OK = enter, X = cancel".into(),
        ];
        self.start(
            request_id,
            Operation::Enrol {
                request: Box::new(request),
                pin_key,
                first: None,
                entry: PinEntry::new(max),
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    fn start<H: Hardware>(
        &mut self,
        request_id: u32,
        operation: Operation,
        prompt: Vec<String>,
        hw: &mut H,
    ) {
        let running = Running {
            request_id,
            prompt_id: self.next_prompt_id(),
            deadline_ms: hw.now_ms().saturating_add(self.user_timeout_ms),
            operation,
            prompt,
        };
        // The prompt replaces any earlier outcome, and only keys pressed from now on count.
        self.banner.clear();
        self.banner_until_ms = None;
        running.render(hw);
        hw.discard_keys();
        self.running = Some(running);
    }

    fn operator_reset<H: Hardware>(
        &mut self,
        request: OperatorReset,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_serial(&request.device_serial)?;
        Self::check_signature(
            self.bank_operator_key.as_ref(),
            OperatorReset::SIGNATURE_DOMAIN,
            request.signed_bytes(),
            &request.signature,
        )?;
        self.check_sequence(request.sequence)?;
        if hw.tamper_switch_open() {
            return Err(refuse(
                StatusCode::WrongState,
                "the tamper switch is still open: close the case first",
            ));
        }
        self.wipe_bank_data();
        self.tampered = false;
        self.lifecycle = Lifecycle::Manufactured;
        self.lock = LockState::Unlocked;
        self.bank_sequence = request.sequence;
        self.set_indicator(Indicator::Off, hw);
        self.outcome(
            vec![format!("Reset by operator {}", request.operator_id)],
            hw,
        );
        hw.record(EventKind::State {
            change: format!("operator reset by {}", request.operator_id),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Status(self.status(hw.now_ms()))))
    }

    fn bank_command<H: Hardware>(
        &mut self,
        request: BankCommand,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_serial(&request.device_serial)?;
        Self::check_signature(
            self.bank_management_key.as_ref(),
            BankCommand::SIGNATURE_DOMAIN,
            request.signed_bytes(),
            &request.signature,
        )?;
        self.check_sequence(request.sequence)?;
        self.bank_sequence = request.sequence;
        self.bank_contact(hw);
        let change = match request.command {
            BankCommandKind::Lock => {
                self.lock_payments(LockState::LockedByBank, hw);
                "locked by the bank"
            }
            BankCommandKind::Unlock => {
                self.lock = LockState::Unlocked;
                "unlocked by the bank"
            }
            BankCommandKind::Wipe => {
                self.wipe_bank_data();
                self.lifecycle = Lifecycle::Revoked;
                self.lock = LockState::Unlocked;
                "wiped by the bank: revoked"
            }
            BankCommandKind::ForgetHosts => {
                // A lost computer: its pairing (and every other) goes; the session the lost
                // one may hold goes with it.
                self.hosts = HostVerifier::new();
                self.host_names.clear();
                self.pairing = None;
                self.session = None;
                self.pending_payment = None;
                self.pending_pin_change = None;
                "paired computers forgotten by the bank"
            }
            BankCommandKind::EndSession => {
                self.session = None;
                self.pending_payment = None;
                self.pending_pin_change = None;
                "session ended by the bank (logout)"
            }
        };
        // The bank's reason stays as long as the state it explains. An EndSession without
        // one changes nothing on the screen (§6.11 "nothing else changes"): the logout relayed
        // right after a payment or PIN change must not erase that outcome's screen (§6.1).
        if !request.reason.is_empty() {
            self.banner = vec![request.reason.clone()];
            self.banner_until_ms = None;
        } else if request.command != BankCommandKind::EndSession {
            self.banner = Vec::new();
            self.banner_until_ms = None;
        }
        hw.record(EventKind::State {
            change: change.into(),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Status(self.status(hw.now_ms()))))
    }

    fn integrity_report(&self, request: GetIntegrityReport) -> Result<Step, Refusal> {
        let mut report = IntegrityReport {
            device_serial: self.serial.clone(),
            firmware_version: self.firmware_version.clone(),
            firmware_hash: Sha256Digest(self.measured_firmware_hash),
            signature: EcdsaSignature::from_array([0; 64]),
        };
        let signed = report.signed_bytes(&request).map_err(internal)?;
        report.signature = self
            .attestation
            .sign(IntegrityReport::SIGNATURE_DOMAIN, &signed);
        Ok(Step::Respond(Response::IntegrityReport(report)))
    }

    fn pair_begin<H: Hardware>(&mut self, request: PairBegin, hw: &mut H) -> Result<Step, Refusal> {
        if self.hosts.len() >= MAX_PAIRED_HOSTS {
            return Err(refuse(
                StatusCode::PairingTableFull,
                format!("{MAX_PAIRED_HOSTS} hosts are paired; unpair one first"),
            ));
        }
        let host_public = PairingPublicKey::from_sec1_bytes(request.host_public_key.as_bytes())
            .map_err(|e| {
                refuse(
                    StatusCode::MalformedMessage,
                    format!("host_public_key: {e}"),
                )
            })?;
        let commitment = HostCommitment::from_slice(request.host_commitment.as_bytes())
            .map_err(|e| refuse(StatusCode::MalformedMessage, e.to_string()))?;
        let pairing = DevicePairing::respond(hw.rng(), host_public, commitment);
        let challenge = PairChallenge {
            device_public_key: EcPublicKey::new(*pairing.public_key().as_bytes())
                .map_err(internal)?,
            device_nonce: Nonce(*pairing.nonce().as_bytes()),
        };
        self.outcome(vec![format!("Pairing with {}...", request.host_name)], hw);
        self.pairing = Some(PendingPairing {
            pairing,
            host_name: request.host_name,
        });
        Ok(Step::Respond(Response::PairChallenge(challenge)))
    }

    fn pair_confirm<H: Hardware>(
        &mut self,
        request_id: u32,
        request: PairConfirm,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let pending = self.pairing.take().ok_or_else(|| {
            refuse(
                StatusCode::WrongState,
                "no pairing in progress (PairBegin first)",
            )
        })?;
        let outcome = pending
            .pairing
            .finish(&PairingNonce::from_array(request.host_nonce.0))
            .map_err(|e| {
                refuse(
                    StatusCode::PairingConfirmationFailed,
                    format!("host nonce does not match its commitment: {e}"),
                )
            })?;
        if self.hosts.is_paired(&outcome.host_id()) {
            return Err(refuse(StatusCode::WrongState, "host already paired"));
        }
        let prompt = vec![
            format!("Pair with {}?", pending.host_name),
            format!("Code: {}", outcome.comparison_code()),
            "Same code on the computer?".into(),
            "OK = yes, X = no".into(),
        ];
        self.start(
            request_id,
            Operation::ConfirmPairing {
                outcome: Box::new(outcome),
                host_name: pending.host_name,
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    fn unpair<H: Hardware>(&mut self, host_id: HostId, hw: &mut H) -> Result<Step, Refusal> {
        if !self.hosts.remove_host(&host_id) {
            return Err(refuse(StatusCode::UnknownHost, "that host is not paired"));
        }
        self.host_names.retain(|(id, _)| *id != host_id);
        hw.record(EventKind::State {
            change: format!("host {} unpaired", hex::encode(host_id.as_bytes())),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Status(self.status(hw.now_ms()))))
    }

    fn load_session_keys<H: Hardware>(
        &mut self,
        request: LoadSessionKeys,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let session = self
            .unwrap_session(&request)
            .map_err(|r| self.intrusion(r, hw))?;
        self.session = Some(session);
        self.pending_payment = None;
        self.pending_pin_change = None;
        self.bank_contact(hw);
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::KeysLoaded(KeysLoaded {
            session_id: request.session_id,
        })))
    }

    /// All three keys or none (CN102004977A step 104): any failure leaves the old ones.
    fn unwrap_session(&self, request: &LoadSessionKeys) -> Result<Session, Refusal> {
        let kbpk = self
            .kbpk
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotInitialised, "no key-block protection key"))?;
        let pin_key: PinKey = unwrap_typed(kbpk, &request.pin_key.key_block, "pin_key")?;
        require_aes(pin_key.material(), "pin_key")?;
        check_kcv(pin_key.material(), &request.pin_key.kcv, "pin_key")?;
        let mac_key: MacKey = unwrap_typed(kbpk, &request.mac_key.key_block, "mac_key")?;
        require_aes(mac_key.material(), "mac_key")?;
        check_kcv(mac_key.material(), &request.mac_key.kcv, "mac_key")?;
        let response_key: MacKey =
            unwrap_typed(kbpk, &request.response_key.key_block, "response_key")?;
        require_aes(response_key.material(), "response_key")?;
        check_kcv(
            response_key.material(),
            &request.response_key.kcv,
            "response_key",
        )?;
        let same =
            |a: &KeyMaterial, b: &KeyMaterial| bool::from(a.reveal_bytes().ct_eq(b.reveal_bytes()));
        if same(pin_key.material(), mac_key.material())
            || same(pin_key.material(), response_key.material())
            || same(mac_key.material(), response_key.material())
        {
            return Err(refuse(
                StatusCode::KeysNotDistinct,
                "PIN, MAC and response keys must all differ",
            ));
        }
        Ok(Session {
            id: request.session_id,
            pin_key,
            mac_key,
            response_key,
        })
    }

    fn session_for(&self, session_id: &SessionId) -> Result<&Session, Refusal> {
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NoSession, "no session keys loaded"))?;
        if session.id != *session_id {
            return Err(refuse(
                StatusCode::SessionMismatch,
                "not the current session",
            ));
        }
        Ok(session)
    }

    fn bank_challenge<H: Hardware>(
        &mut self,
        request: BankChallenge,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let mut nonce = [0u8; 16];
        hw.rng().fill_bytes(&mut nonce);
        let session = self.session_for(&request.session_id)?;
        let mut response = ChallengeResponse {
            device_nonce: Nonce(nonce),
            mac: MacTag([0; 16]),
        };
        let input = response.mac_input(&request).map_err(internal)?;
        response.mac = cmac(&session.mac_key, &input)?;
        Ok(Step::Respond(Response::ChallengeResponse(response)))
    }

    fn approve_payment<H: Hardware>(
        &mut self,
        request_id: u32,
        request: ApprovePayment,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let session = self.session_for(&request.session_id)?;
        if request.counter <= self.last_payment_counter {
            return Err(refuse(
                StatusCode::StaleBankCounter,
                format!(
                    "payment counter {} is not above the last accepted {}",
                    request.counter, self.last_payment_counter
                ),
            ));
        }
        let input = request.mac_input().map_err(internal)?;
        if !request.bank_mac.verifies(&session.response_key, &input) {
            let refusal = refuse(
                StatusCode::BadBankMac,
                "bank MAC on the payment does not verify",
            );
            return Err(self.intrusion(refusal, hw));
        }
        let binding = self
            .binding
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotBound, "no binding"))?;
        let max = binding.pin_length_max;
        self.last_payment_counter = request.counter;
        self.pending_payment = None;
        self.bank_contact(hw);
        self.persist_or_refuse(hw)?;
        let mut prompt = payment_lines(&request.payment);
        prompt.push(PIN_LINE.into());
        prompt.push("OK = approve, X = cancel".into());
        self.start(
            request_id,
            Operation::ApprovePayment {
                request: Box::new(request),
                entry: PinEntry::new(max),
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    fn verify_bank_response<H: Hardware>(
        &mut self,
        request: VerifyBankResponse,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let session = self.session_for(&request.session_id)?;
        let input = request.mac_input().map_err(internal)?;
        if !request.bank_mac.verifies(&session.response_key, &input) {
            self.outcome(vec!["WARNING: forged bank response".into()], hw);
            let refusal = refuse(StatusCode::BadBankMac, "bank response MAC does not verify");
            return Err(self.intrusion(refusal, hw));
        }
        let matches = self.pending_payment.as_ref().is_some_and(|pending| {
            pending.transaction_id == request.bank_transaction_id
                && pending.device_counter == request.device_counter
        });
        if !matches {
            return Err(refuse(
                StatusCode::TransactionMismatch,
                "no approved payment with that transaction id and device counter",
            ));
        }
        self.pending_payment = None;
        self.bank_contact(hw);
        self.set_indicator(Indicator::Safe, hw);
        let text = result_text(request.result);
        self.outcome(vec![text.into()], hw);
        hw.record(EventKind::State {
            change: format!("bank response verified: {text}"),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::IndicatorSet(IndicatorSet {
            indicator: Indicator::Safe,
            result: request.result,
            display_text: text.into(),
        })))
    }

    fn sign_confirmation<H: Hardware>(
        &mut self,
        request_id: u32,
        request: SignConfirmation,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let mut prompt = vec!["Confirm payment".to_string()];
        prompt.extend(payment_lines(&request.payment));
        prompt.push("OK = confirm, X = reject".into());
        self.start(
            request_id,
            Operation::SignConfirmation {
                request: Box::new(request),
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    /// A key during a pending request; returns the answer when the request is done.
    fn on_key<H: Hardware>(&mut self, key: KeyPress, hw: &mut H) -> Option<Vec<u8>> {
        let mut running = self.running.take()?;
        let request_id = running.request_id;
        running.deadline_ms = hw.now_ms().saturating_add(self.user_timeout_ms);
        let result = match key {
            KeyPress::Digit(digit) => {
                if let Some(entry) = running.operation.pin_entry_mut()
                    && entry.entered() < entry.max
                    && digit <= 9
                {
                    entry.digits.push(b'0' + digit);
                }
                None
            }
            KeyPress::Clear => {
                if let Some(entry) = running.operation.pin_entry_mut() {
                    entry.digits.pop();
                }
                None
            }
            // One refusal key: at the pairing code too, the device cannot tell "the codes
            // differ" from "not now" (PROTOCOL.md §6.2).
            KeyPress::Cancel => Some(Err(refuse(
                StatusCode::UserCancelled,
                "cancelled on the device",
            ))),
            KeyPress::Enter => self.on_enter(&mut running, hw),
        };
        match result {
            None => {
                running.render(hw);
                self.running = Some(running);
                None
            }
            Some(Ok(response)) => {
                drop(running);
                Some(self.encode(request_id, response, hw))
            }
            Some(Err(refusal)) => {
                let text = match key {
                    KeyPress::Cancel => running.operation.ended_text(Ended::ByUser),
                    _ => format!(
                        "{}: {}",
                        refusal_text(refusal.status),
                        running.operation.not_done()
                    ),
                };
                drop(running);
                self.outcome(vec![text], hw);
                Some(self.error_answer(request_id, &refusal, hw))
            }
        }
    }

    /// Enter during a pending request: `None` keep waiting, else the answer.
    fn on_enter<H: Hardware>(
        &mut self,
        running: &mut Running,
        hw: &mut H,
    ) -> Option<Result<Response, Refusal>> {
        match &mut running.operation {
            Operation::Enrol {
                request,
                pin_key,
                first,
                entry,
            } => {
                let entered = entry.entered();
                if entered < request.pin_length_min || entered > request.pin_length_max {
                    return Some(Err(refuse(
                        StatusCode::PinPolicy,
                        format!(
                            "PIN must have {}-{} digits",
                            request.pin_length_min, request.pin_length_max
                        ),
                    )));
                }
                match first {
                    None => {
                        *first = Some(Zeroizing::new(entry.digits.to_vec()));
                        entry.clear();
                        // A new prompt: keys typed ahead of it are not taken for it.
                        running.prompt_id = self.next_prompt_id();
                        hw.discard_keys();
                        running.prompt = vec![
                            format!("Enrolment for {}", request.customer_id),
                            "Enter the same PIN again".into(),
                            PIN_LINE.into(),
                            "OK = enter, X = cancel".into(),
                        ];
                        None
                    }
                    Some(first_pin) => {
                        if !bool::from(first_pin.as_slice().ct_eq(entry.digits.as_slice())) {
                            return Some(Err(refuse(
                                StatusCode::PinMismatch,
                                "the two PIN entries differ",
                            )));
                        }
                        Some(self.finish_enrol(request, pin_key, entry, hw))
                    }
                }
            }
            Operation::ApprovePayment { request, entry } => {
                let min = self.binding.as_ref().map_or(4, |b| b.pin_length_min);
                if entry.entered() < min {
                    // Too short: a real PIN pad beeps and keeps waiting.
                    return None;
                }
                Some(self.finish_payment(request, entry, hw))
            }
            Operation::ConfirmPairing { outcome, host_name } => {
                Some(self.finish_pairing(outcome, host_name, hw))
            }
            Operation::ChangePin(_) => self.change_pin_enter(running, hw),
            Operation::Wipe => Some(self.finish_wipe(hw)),
            Operation::SignConfirmation { request } => {
                let signed = match request.signed_bytes() {
                    Ok(signed) => signed,
                    Err(e) => return Some(Err(internal(e))),
                };
                let signature = self
                    .attestation
                    .sign(SignatureDomain::OutOfBandConfirmation, &signed);
                self.outcome(vec!["Payment confirmed".into()], hw);
                Some(Ok(Response::ConfirmationSignature(ConfirmationSignature {
                    signature,
                })))
            }
        }
    }

    fn finish_enrol<H: Hardware>(
        &mut self,
        request: &Enrol,
        pin_key: &PinKey,
        entry: &PinEntry,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        let pin = entry
            .pin()
            .ok_or_else(|| refuse(StatusCode::PinPolicy, "PIN must be 4-12 digits"))?;
        let pan = Pan::new(&request.pin_account_number).map_err(internal)?;
        let block = pinblock::encrypt_pin(
            pinblock::PinBlockFormat::Iso4,
            &pin,
            Some(&pan),
            pin_key,
            hw.rng(),
        )
        .map_err(internal)?;
        let pin_block = PinBlock::new(PinBlockFormat::Iso4, block.as_bytes()).map_err(internal)?;
        self.binding = Some(Binding {
            customer_id: request.customer_id.clone(),
            pin_account_number: request.pin_account_number.clone(),
            pin_length_min: request.pin_length_min,
            pin_length_max: request.pin_length_max,
        });
        self.lifecycle = Lifecycle::Bound;
        self.record_activation(hw);
        self.bank_sequence = self.bank_sequence.max(request.sequence);
        self.last_payment_counter = 0;
        self.device_counter = 0;
        self.bank_contact(hw);
        self.outcome(vec![format!("Bound to {}", request.customer_id)], hw);
        hw.record(EventKind::State {
            change: "enrolled and bound".into(),
        });
        self.persist_or_refuse(hw)?;
        Ok(Response::Enrolled(Enrolled { pin_block }))
    }

    fn finish_payment<H: Hardware>(
        &mut self,
        request: &ApprovePayment,
        entry: &PinEntry,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        let pin = entry
            .pin()
            .ok_or_else(|| refuse(StatusCode::PinPolicy, "PIN must be 4-12 digits"))?;
        let binding = self
            .binding
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotBound, "no binding"))?;
        let pan = Pan::new(&binding.pin_account_number).map_err(internal)?;
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NoSession, "session ended during PIN entry"))?;
        let block = pinblock::encrypt_pin(
            pinblock::PinBlockFormat::Iso4,
            &pin,
            Some(&pan),
            &session.pin_key,
            hw.rng(),
        )
        .map_err(internal)?;
        let device_counter = self.device_counter.saturating_add(1);
        let mut response = PaymentApproved {
            pin_block: PinBlock::new(PinBlockFormat::Iso4, block.as_bytes()).map_err(internal)?,
            device_counter,
            mac: MacTag([0; 16]),
        };
        let input = response.mac_input(request).map_err(internal)?;
        response.mac = cmac(&session.mac_key, &input)?;
        self.device_counter = device_counter;
        self.pending_payment = Some(PendingPayment {
            transaction_id: request.payment.bank_transaction_id.clone(),
            device_counter,
        });
        self.outcome(vec!["Sent to your bank...".into()], hw);
        self.persist_or_refuse(hw)?;
        Ok(Response::PaymentApproved(response))
    }

    fn finish_pairing<H: Hardware>(
        &mut self,
        outcome: &PairingOutcome,
        host_name: &str,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        self.hosts
            .add_host(outcome.host_id(), outcome.host_pairing_key().clone())
            .map_err(|e| match e {
                HostAuthError::TooManyHosts { .. } => {
                    refuse(StatusCode::PairingTableFull, e.to_string())
                }
                other => refuse(StatusCode::WrongState, other.to_string()),
            })?;
        let host_id = outcome.host_id();
        self.host_names.push((host_id, host_name.to_string()));
        self.outcome(vec![format!("Paired with {host_name}")], hw);
        hw.record(EventKind::State {
            change: format!("host {} paired", hex::encode(host_id.as_bytes())),
        });
        self.persist_or_refuse(hw)?;
        Ok(Response::PairResult(PairResult {
            host_id,
            device_confirmation: MacTag(*outcome.device_confirmation()),
        }))
    }
}
