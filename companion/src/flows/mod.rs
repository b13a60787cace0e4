//! The flows of DESIGN.md §3 over a device [`Session`] and a [`BankClient`]: staff
//! provisioning (initialise + enrol/bind), pairing, login, payment, out-of-band confirmation,
//! revoke and operator tamper reset; the customer's PIN change and wipe are in [`pin`].
//!
//! The companion is a relay: bank requests go to the device byte for byte (inside a
//! `HostVerified` envelope where PROTOCOL.md §3.7 requires one), device answers go back to the
//! bank. It never sees the PIN: the device enciphers it. Each flow reports [`FlowEvent`]s, which
//! serialise to camelCase JSON for the desktop app and never carry a PIN, a key or a token.

mod events;
pub mod pin;
pub mod remote;

pub use events::{FlowEvent, Step};
pub use remote::apply_bank_command;

use firmware_protocol::crypto::host_auth::HostSigner;
use firmware_protocol::crypto::pairing::{HostPairing, PairingNonce, PairingPublicKey};
use firmware_protocol::message::{
    ApprovePayment, BankChallenge, BankCommand, Command, Enrol, ErrorResponse, GetInfo,
    GetIntegrityReport, HostVerified, IndicatorSet, Initialise, LoadSessionKeys, MessageError,
    OperatorReset, PairBegin, PairConfirm, Request, Response, SignConfirmation, StatusCode,
    VerifyBankResponse, decode_request,
};
use firmware_protocol::message::{EcPublicKey, Nonce, Sha256Digest};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bank::{BankClient, BankError, BearerToken};
use crate::keystore::PairedHost;
use crate::session::{Progress, Session, SessionError};

/// Where flow events go.
pub type EventSink<'a> = &'a mut (dyn FnMut(FlowEvent) + Send);

/// Why a flow stopped.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The bank refused or could not be reached.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// The device refused or the link failed.
    #[error(transparent)]
    Device(#[from] SessionError),
    /// The device is tampered: it refuses everything until an operator reset.
    #[error(
        "the PIN pad reports it was TAMPERED (opened or attacked) and refuses to work; bring it to the branch for an operator reset and re-initialisation"
    )]
    Tampered,
    /// The bank sent bytes that are not a device request.
    #[error("the bank's {what} is not a valid device message: {reason}")]
    BadBankMessage {
        /// Which field.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A host-verified request without a pairing.
    #[error("this computer is not paired with the PIN pad; run `pinbridge pair` first")]
    NotPaired,
    /// Pairing failed its cryptographic checks (man in the middle, or a faulty device).
    #[error("pairing failed: {0}; nothing was stored")]
    Pairing(String),
    /// A message could not be encoded.
    #[error("cannot build {what}: {source}")]
    Encode {
        /// What.
        what: &'static str,
        /// Why.
        source: MessageError,
    },
    /// The bank's answer lacks a field the API promises.
    #[error("the bank's answer has no {0}")]
    MissingField(&'static str),
}

impl FlowError {
    /// What kind of failure this is, as the app and the CLI report it.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        match self {
            FlowError::Bank(error) => error.kind(),
            FlowError::Device(error) => error.kind(),
            FlowError::Tampered => K::Tampered,
            FlowError::NotPaired => K::NotPaired,
            FlowError::Pairing(_) => K::PairingFailed,
            FlowError::BadBankMessage { .. } | FlowError::MissingField(_) => K::BankRejected,
            FlowError::Encode { .. } => K::Internal,
        }
    }
}

/// Staff and customer identities the bank gave at the end of a login.
#[derive(Debug, Clone)]
pub struct BankSession {
    /// Customer session token (secret; redacted in Debug).
    pub token: BearerToken,
    /// The session id (hex).
    pub session_id: String,
    /// The customer.
    pub customer_id: String,
    /// The device serial.
    pub serial: String,
    /// When the bank ends the session (Unix ms), if it said; a command-line session is kept
    /// for the next command until then (`pinbridge logout` ends it sooner).
    pub expires_at_ms: Option<i64>,
}

/// A payment order as the user typed it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOrder {
    /// Payee account number.
    pub payee_account: String,
    /// Payee name.
    pub payee_name: String,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Free text.
    pub reference: String,
    /// Makes a retried prepare return the same payment.
    pub idempotency_key: String,
}

/// A payment the bank prepared: the ApprovePayment to relay to the device.
#[derive(Debug, Clone)]
pub struct PreparedPayment {
    /// The bank's transaction id.
    pub transaction_id: String,
    /// The encoded ApprovePayment, as the bank sent it.
    pub approve_payment: Vec<u8>,
}

/// How a payment ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOutcome {
    /// The bank's transaction id.
    pub transaction_id: String,
    /// The bank's verdict (`approved`, `pin_incorrect`, `account_blocked`, ...).
    pub bank_result: String,
    /// PIN tries left, when the bank says.
    pub pin_tries_left: Option<i64>,
    /// What the device decided after checking the bank's MAC: `approved` only when the
    /// device verified a genuine approval.
    pub device_result: String,
    /// The device's indicator (`safe` or `danger`).
    pub indicator: String,
    /// The device's display text.
    pub display_text: String,
}

impl PaymentOutcome {
    /// Approved by the bank and confirmed genuine by the device.
    pub fn approved(&self) -> bool {
        self.device_result == "approved" && self.indicator == "safe"
    }
}

/// The app's integrity measurement (CN102610045A) reported at login and checked against the
/// bank's app allow-list: SHA-256 of the running executable (`std::env::current_exe`), read
/// once per process. A release step registers the hash of each released binary
/// (`scripts/release-hashes.sh`, the bank's `POST /v1/admin/allowed-hashes`;
/// docs/SECURITY.md). If the executable cannot be read, the measurement is all zeros, which
/// no allow-list holds: the bank refuses the login with `app_hash_not_allowed` (fail closed,
/// never a guess).
pub fn app_build_hash() -> [u8; 32] {
    static MEASURED: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *MEASURED.get_or_init(|| match measure_executable() {
        Ok(hash) => hash,
        Err(error) => {
            tracing::error!(%error, "cannot measure the running executable");
            [0; 32]
        }
    })
}

/// SHA-256 of the running executable, streamed.
fn measure_executable() -> std::io::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let path = std::env::current_exe()?;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

fn forward_progress(events: &mut (dyn FnMut(FlowEvent) + Send), progress: Progress) {
    let event = match progress {
        Progress::Processing => return,
        Progress::WaitingForUser => FlowEvent::WaitingForUser,
        Progress::PinEntry { entered, max } => FlowEvent::PinEntry {
            entered,
            max,
            dots: crate::session::pin_dots(entered, max),
        },
        Progress::DeviceBusy { retry, .. } => FlowEvent::DeviceBusy { retry },
        Progress::Cancelling => FlowEvent::Cancelling,
    };
    events(event);
}

/// What the device said to a relayed command: the answer the command names, or its Error
/// (which some steps relay to the bank too).
#[derive(Debug)]
pub enum DeviceAnswer<T> {
    /// The success response.
    Answer(T),
    /// The device refused with an Error message.
    Refused {
        /// The Error message to relay.
        error: ErrorResponse,
        /// The session's error, for the user.
        cause: SessionError,
    },
}

impl<T: Clone + Into<Response>> DeviceAnswer<T> {
    /// Hex of the encoded answer (request id 0), for the bank.
    pub fn to_hex(&self) -> Result<String, FlowError> {
        let response = match self {
            DeviceAnswer::Answer(r) => r.clone().into(),
            DeviceAnswer::Refused { error, .. } => Response::Error(error.clone()),
        };
        response
            .encode(0)
            .map(hex::encode)
            .map_err(|source| FlowError::Encode {
                what: "the answer for the bank",
                source,
            })
    }

    /// The answer, or the device's refusal as an error.
    pub fn into_answer(self) -> Result<T, FlowError> {
        match self {
            DeviceAnswer::Answer(r) => Ok(r),
            DeviceAnswer::Refused { cause, .. } => Err(device_error(cause)),
        }
    }
}

fn device_error(error: SessionError) -> FlowError {
    if error.status() == Some(StatusCode::Tampered) {
        FlowError::Tampered
    } else {
        FlowError::Device(error)
    }
}

/// Sends `request` to the device, wrapped in a `HostVerified` envelope when §3.7 requires it
/// (then `host` must be given; its counter advances and the caller persists it), and returns
/// the answer the command names. Progress (PIN digits, waiting for the user) goes to `events`.
pub async fn send_to_device<C: Command>(
    session: &mut Session,
    host: Option<&mut PairedHost>,
    request: &C,
    events: EventSink<'_>,
) -> Result<DeviceAnswer<C::Response>, FlowError> {
    let mut host = host;
    let first = send_once(session, host.as_deref_mut(), request, events).await?;
    // A host restored from an old backup (or that crashed before persisting its counter)
    // learns from the device where to resume, once (PROTOCOL.md §4.2).
    if let (DeviceAnswer::Refused { error, .. }, Some(host)) = (&first, host)
        && error.status == StatusCode::ReplayedCounter
        && let Some(last) = last_number(&error.detail)
        && last >= host.next_counter
    {
        host.next_counter = last.saturating_add(1);
        return send_once(session, Some(host), request, events).await;
    }
    Ok(first)
}

/// The last decimal number in a text (the device's "... last accepted N").
fn last_number(text: &str) -> Option<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .rfind(|part| !part.is_empty())
        .and_then(|part| part.parse().ok())
}

async fn send_once<C: Command>(
    session: &mut Session,
    host: Option<&mut PairedHost>,
    request: &C,
    events: EventSink<'_>,
) -> Result<DeviceAnswer<C::Response>, FlowError> {
    let mut on_progress = |p: Progress| forward_progress(events, p);
    let result = if C::HOST_VERIFIED {
        let host = host.ok_or(FlowError::NotPaired)?;
        let inner: Request = request.clone().into();
        let mut signer = HostSigner::resume(host.host_id, &host.pairing_key, host.next_counter);
        let mut build = |request_id: u32| -> Result<Vec<u8>, MessageError> {
            Request::HostVerified(HostVerified::sign(request_id, &inner, &mut signer)?)
                .encode(request_id)
        };
        let result = session.ask_built::<C>(&mut build, &mut on_progress).await;
        // Counters the device may have consumed are never reused, whatever the outcome.
        host.next_counter = signer.next_counter().unwrap_or(u64::MAX);
        result
    } else {
        session
            .ask_with_progress(request.clone(), &mut on_progress)
            .await
    };
    match result {
        Ok(response) => Ok(DeviceAnswer::Answer(response)),
        Err(SessionError::Refused {
            request,
            status,
            indicator,
            detail,
        }) => Ok(DeviceAnswer::Refused {
            error: ErrorResponse {
                status,
                indicator,
                detail: detail.clone(),
            },
            cause: SessionError::Refused {
                request,
                status,
                indicator,
                detail,
            },
        }),
        Err(other) => Err(device_error(other)),
    }
}

/// Decodes the device request the bank sent as hex for a step that relays command `C`; any
/// other request is refused, so the companion relays only what the step is for.
pub fn bank_request<C: Command>(what: &'static str, hex_text: &str) -> Result<C, FlowError> {
    let bytes = hex::decode(hex_text).map_err(|e| FlowError::BadBankMessage {
        what,
        reason: e.to_string(),
    })?;
    bank_request_bytes(what, &bytes)
}

fn bank_request_bytes<C: Command>(what: &'static str, bytes: &[u8]) -> Result<C, FlowError> {
    let (_, request) = decode_request(bytes).map_err(|e| FlowError::BadBankMessage {
        what,
        reason: e.to_string(),
    })?;
    C::try_from(request).map_err(|other| FlowError::BadBankMessage {
        what,
        reason: format!("it is a {}, not a {}", other.name(), C::NAME),
    })
}

fn field<'v>(value: &'v Value, name: &'static str) -> Result<&'v str, FlowError> {
    value[name].as_str().ok_or(FlowError::MissingField(name))
}

/// Relays the bank's command `C` in field `name` of `value` to the device.
async fn relay_field<C: Command>(
    session: &mut Session,
    host: Option<&mut PairedHost>,
    value: &Value,
    name: &'static str,
    events: EventSink<'_>,
) -> Result<DeviceAnswer<C::Response>, FlowError> {
    let request: C = bank_request(name, field(value, name)?)?;
    send_to_device(session, host, &request, events).await
}

/// What the device showed for a bank verdict it verified: its result, indicator and screen.
struct DeviceDecision {
    result: String,
    indicator: String,
    display_text: String,
}

/// Relays the bank's MACed verdict `C` in field `name` of `verdict` (a payment's or a PIN
/// change's) to the device, which answers with the indicator it set; reports the decision.
async fn relay_verdict<C: Command<Response = IndicatorSet>>(
    session: &mut Session,
    host: &mut PairedHost,
    verdict: &Value,
    name: &'static str,
    events: EventSink<'_>,
) -> Result<DeviceDecision, FlowError> {
    let set = relay_field::<C>(session, Some(host), verdict, name, events)
        .await?
        .into_answer()?;
    let decision = DeviceDecision {
        result: set.result.as_str().to_owned(),
        indicator: set.indicator.as_str().to_owned(),
        display_text: set.display_text,
    };
    events(FlowEvent::DeviceDecision {
        result: decision.result.clone(),
        indicator: decision.indicator.clone(),
        display_text: decision.display_text.clone(),
    });
    Ok(decision)
}

/// Reads the device's Info (encoded, hex) and serial.
async fn device_info(
    session: &mut Session,
    events: EventSink<'_>,
) -> Result<(String, String), FlowError> {
    events(FlowEvent::Step {
        step: Step::ReadDeviceInfo,
    });
    let info = send_to_device(session, None, &GetInfo, events)
        .await?
        .into_answer()?;
    let serial = info.serial.clone();
    let hex_info = DeviceAnswer::Answer(info).to_hex()?;
    Ok((serial, hex_info))
}

/// The connected device's serial (from its Info).
pub async fn device_serial(session: &mut Session) -> Result<String, FlowError> {
    device_info(session, &mut |_| {})
        .await
        .map(|(serial, _)| serial)
}

/// If a bank refusal carries a signed `bank_command` (revoked or locked device at login),
/// relays it to the device so a lost device wipes itself.
async fn relay_refusal_command(
    session: &mut Session,
    bank: &BankClient,
    serial: &str,
    error: &BankError,
    events: EventSink<'_>,
) -> Result<(), FlowError> {
    if let BankError::Refused { details, .. } = error
        && details["bank_command"].is_string()
    {
        events(FlowEvent::Step {
            step: Step::RelayBankCommand,
        });
        // The device's answer changes nothing for the user (the bank already refused); the
        // bank is told what it was.
        let answer =
            relay_field::<BankCommand>(session, None, details, "bank_command", events).await?;
        remote::report_command_result(bank, serial, details, &answer).await;
    }
    Ok(())
}

/// Staff: initialise the device at the bank (installs the key-block protection key).
/// Returns the device serial.
pub async fn initialise(
    session: &mut Session,
    bank: &BankClient,
    teller: &BearerToken,
    events: EventSink<'_>,
) -> Result<String, FlowError> {
    let (serial, info) = device_info(session, events).await?;
    events(FlowEvent::Step {
        step: Step::BankInitialise,
    });
    let begun = bank
        .post(
            "/v1/devices/initialise",
            Some(teller),
            &json!({"info": info}),
        )
        .await?;
    events(FlowEvent::Step {
        step: Step::DeviceInitialise,
    });
    let answer = relay_field::<Initialise>(session, None, &begun, "initialise", events)
        .await?
        .into_answer()?;
    events(FlowEvent::Step {
        step: Step::BankCompleteInitialise,
    });
    let initialised = DeviceAnswer::Answer(answer).to_hex()?;
    bank.post(
        &format!("/v1/devices/{serial}/initialise/complete"),
        Some(teller),
        &json!({"initialised": initialised}),
    )
    .await?;
    Ok(serial)
}

/// Staff: enrol the customer on the device and bind them (the customer chooses the PIN on the
/// device keypad, twice).
pub async fn enrol(
    session: &mut Session,
    bank: &BankClient,
    teller: &BearerToken,
    serial: &str,
    customer_id: &str,
    events: EventSink<'_>,
) -> Result<Enrolment, FlowError> {
    events(FlowEvent::Step {
        step: Step::BankEnrol,
    });
    let begun = bank
        .post(
            &format!("/v1/devices/{serial}/enrol"),
            Some(teller),
            &json!({"customer_id": customer_id}),
        )
        .await?;
    events(FlowEvent::Step {
        step: Step::DeviceEnrol,
    });
    let answer = relay_field::<Enrol>(session, None, &begun, "enrol", events)
        .await?
        .into_answer()?;
    events(FlowEvent::Step {
        step: Step::BankCompleteEnrol,
    });
    let enrolled = DeviceAnswer::Answer(answer).to_hex()?;
    let done = bank
        .post(
            &format!("/v1/devices/{serial}/enrol/complete"),
            Some(teller),
            &json!({"enrolled": enrolled}),
        )
        .await?;
    Ok(Enrolment {
        loss_report_code: done["loss_report_code"]
            .as_str()
            .map(|code| zeroize::Zeroizing::new(code.to_owned())),
    })
}

/// What an enrolment gives the customer besides the bound PIN pad.
#[derive(Default)]
pub struct Enrolment {
    /// The code that reports this PIN pad lost with no device and no session (shown once;
    /// the customer keeps it apart from the PIN pad).
    pub loss_report_code: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field(
                "loss_report_code",
                &self.loss_report_code.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Staff: initialise, then enrol and bind `customer_id`. Returns the serial.
pub async fn provision(
    session: &mut Session,
    bank: &BankClient,
    teller: &BearerToken,
    customer_id: &str,
    events: EventSink<'_>,
) -> Result<String, FlowError> {
    let serial = initialise(session, bank, teller, events).await?;
    enrol(session, bank, teller, &serial, customer_id, events).await?;
    Ok(serial)
}

/// Pairs this computer with the device (PROTOCOL.md §4.1): shows the comparison code, waits
/// for the user to confirm it on the device, checks the device's confirmation. The caller
/// stores the returned pairing (encrypted, [`crate::keystore::KeyStore`]).
pub async fn pair(
    session: &mut Session,
    host_name: &str,
    events: EventSink<'_>,
) -> Result<PairedHost, FlowError> {
    let (serial, _) = device_info(session, events).await?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| FlowError::Pairing(format!("no randomness: {e}")))?;
    let mut rng = ChaCha20Rng::from_seed(seed);
    let pairing = HostPairing::start(&mut rng);
    let host_nonce = *pairing.nonce();
    events(FlowEvent::Step {
        step: Step::PairBegin,
    });
    let begin = PairBegin {
        host_public_key: EcPublicKey::new(*pairing.public_key().as_bytes()).map_err(|source| {
            FlowError::Encode {
                what: "PairBegin",
                source,
            }
        })?,
        host_commitment: Sha256Digest(*pairing.commitment().as_bytes()),
        host_name: host_name.chars().take(32).collect(),
    };
    let challenge = send_to_device(session, None, &begin, events)
        .await?
        .into_answer()?;
    let device_public = PairingPublicKey::from_sec1_bytes(challenge.device_public_key.as_bytes())
        .map_err(|e| FlowError::Pairing(e.to_string()))?;
    let device_nonce = PairingNonce::from_slice(&challenge.device_nonce.0)
        .map_err(|e| FlowError::Pairing(e.to_string()))?;
    let outcome = pairing.finish(&device_public, &device_nonce);
    events(FlowEvent::ComparisonCode {
        code: outcome.comparison_code().to_string(),
    });
    events(FlowEvent::Step {
        step: Step::PairConfirm,
    });
    let confirm = PairConfirm {
        host_nonce: Nonce(*host_nonce.as_bytes()),
    };
    let result = send_to_device(session, None, &confirm, events)
        .await?
        .into_answer()?;
    outcome
        .check_device_confirmation(&result.device_confirmation.0)
        .map_err(|e| FlowError::Pairing(e.to_string()))?;
    if result.host_id != outcome.host_id() {
        return Err(FlowError::Pairing(
            "the device named another host id than the pairing derives".into(),
        ));
    }
    events(FlowEvent::Paired {
        serial: serial.clone(),
        host_id: hex::encode(outcome.host_id().as_bytes()),
    });
    Ok(PairedHost {
        serial,
        host_id: outcome.host_id(),
        pairing_key: outcome.host_pairing_key().clone(),
        next_counter: 1,
    })
}

/// Ends the bank session: the bank revokes its token. The caller drops the
/// [`BankSession`] (its token is zeroized).
pub async fn logout(bank: &BankClient, login: BankSession) -> Result<(), FlowError> {
    bank.logout(&login.token).await?;
    Ok(())
}

/// Logout at both ends: the bank revokes the token and signs an EndSession, relayed to the
/// device, which drops its session keys (PROTOCOL.md §6.11). Returns the device's state.
pub async fn logout_device(
    session: &mut Session,
    bank: &BankClient,
    login: BankSession,
    events: EventSink<'_>,
) -> Result<firmware_protocol::message::Status, FlowError> {
    let ended = bank.logout(&login.token).await?;
    events(FlowEvent::Step {
        step: Step::RelayBankCommand,
    });
    relay_field::<BankCommand>(session, None, &ended, "bank_command", events)
        .await?
        .into_answer()
}

/// Logs in at the bank through the device (DESIGN.md §3 login, PROTOCOL.md §3.9).
/// `host.next_counter` advances; persist it afterwards.
pub async fn login(
    session: &mut Session,
    bank: &BankClient,
    host: &mut PairedHost,
    events: EventSink<'_>,
) -> Result<BankSession, FlowError> {
    let (serial, info) = device_info(session, events).await?;
    events(FlowEvent::Step {
        step: Step::LoginBegin,
    });
    let begun = match bank.post("/v1/login", None, &json!({"info": info})).await {
        Ok(v) => v,
        Err(e) => {
            relay_refusal_command(session, bank, &serial, &e, events).await?;
            return Err(e.into());
        }
    };
    let login_id = field(&begun, "login_id")?.to_owned();
    // Staff made the device forget its paired computers (a lost PC): relayed before anything
    // else. A device that already did answers StaleBankCounter, which changes nothing; one
    // that does it now no longer knows this computer, and the login stops at the session
    // keys (UnknownHost: pair again).
    if begun["bank_command"].is_string() {
        events(FlowEvent::Step {
            step: Step::RelayBankCommand,
        });
        let answer =
            relay_field::<BankCommand>(session, None, &begun, "bank_command", events).await?;
        remote::report_command_result(bank, &serial, &begun, &answer).await;
    }
    events(FlowEvent::Step {
        step: Step::IntegrityReport,
    });
    let report =
        relay_field::<GetIntegrityReport>(session, None, &begun, "get_integrity_report", events)
            .await?
            .into_answer()?;
    let report = DeviceAnswer::Answer(report).to_hex()?;
    let keys = bank
        .post(
            &format!("/v1/login/{login_id}/integrity"),
            None,
            &json!({"integrity_report": report, "app_hash": hex::encode(app_build_hash())}),
        )
        .await?;
    events(FlowEvent::Step {
        step: Step::LoadSessionKeys,
    });
    let mut loaded =
        relay_field::<LoadSessionKeys>(session, Some(host), &keys, "load_session_keys", events)
            .await?;
    let keys_path = format!("/v1/login/{login_id}/keys");
    let mut challenge = bank
        .post(&keys_path, None, &json!({"keys_loaded": loaded.to_hex()?}))
        .await;
    // Locked after T2 without bank contact or T1 powered off: the bank, having just verified
    // a fresh integrity report, answers with a signed Unlock and the same keys to relay
    // again; so it does with an Unlock staff issued for a lock only staff lift (PROTOCOL.md
    // §6.11).
    if let Err(BankError::Refused { code, details, .. }) = &challenge
        && (code == "device_locked_inactivity" || code == "device_unlock_pending")
        && matches!(loaded, DeviceAnswer::Refused { .. })
    {
        let details = details.clone();
        events(FlowEvent::Step {
            step: Step::RelayBankCommand,
        });
        let answer =
            relay_field::<BankCommand>(session, None, &details, "bank_command", events).await?;
        remote::report_command_result(bank, &serial, &details, &answer).await;
        answer.into_answer()?;
        events(FlowEvent::Step {
            step: Step::LoadSessionKeys,
        });
        loaded = relay_field::<LoadSessionKeys>(
            session,
            Some(host),
            &details,
            "load_session_keys",
            events,
        )
        .await?;
        challenge = bank
            .post(&keys_path, None, &json!({"keys_loaded": loaded.to_hex()?}))
            .await;
    }
    // A device refusal is relayed first (the bank records the intrusion), then reported.
    let challenge = match (challenge, loaded) {
        (_, DeviceAnswer::Refused { cause, .. }) => return Err(device_error(cause)),
        (c, _) => c?,
    };
    events(FlowEvent::Step {
        step: Step::BankChallenge,
    });
    let answer =
        relay_field::<BankChallenge>(session, Some(host), &challenge, "bank_challenge", events)
            .await?
            .into_answer()?;
    let answer = DeviceAnswer::Answer(answer).to_hex()?;
    let done = bank
        .post(
            &format!("/v1/login/{login_id}/challenge"),
            None,
            &json!({"challenge_response": answer}),
        )
        .await?;
    let result = BankSession {
        token: BearerToken::new(field(&done, "session_token")?),
        session_id: field(&done, "session_id")?.to_owned(),
        customer_id: field(&done, "customer_id")?.to_owned(),
        serial: field(&done, "serial")?.to_owned(),
        expires_at_ms: done["expires_at"].as_i64(),
    };
    events(FlowEvent::LoggedIn {
        customer_id: result.customer_id.clone(),
        serial: result.serial.clone(),
    });
    Ok(result)
}

/// Payment step 1: the bank prepares the payment and MACs it for the device.
pub async fn prepare_payment(
    bank: &BankClient,
    login: &BankSession,
    order: &PaymentOrder,
    events: EventSink<'_>,
) -> Result<PreparedPayment, FlowError> {
    prepare_payment_from(bank, login, None, order, events).await
}

/// [`prepare_payment`] from one of the customer's accounts (`None`: the bank's default).
pub async fn prepare_payment_from(
    bank: &BankClient,
    login: &BankSession,
    payer_account: Option<&str>,
    order: &PaymentOrder,
    events: EventSink<'_>,
) -> Result<PreparedPayment, FlowError> {
    events(FlowEvent::Step {
        step: Step::PreparePayment,
    });
    let mut body = json!({
        "payee_account": order.payee_account,
        "payee_name": order.payee_name,
        "amount_minor": order.amount_minor,
        "currency": order.currency,
        "reference": order.reference,
        "idempotency_key": order.idempotency_key,
    });
    if let Some(account) = payer_account {
        body["payer_account"] = json!(account);
    }
    let prepared = bank.post("/v1/payments", Some(&login.token), &body).await?;
    let approve = field(&prepared, "approve_payment")?;
    Ok(PreparedPayment {
        transaction_id: field(&prepared, "transaction_id")?.to_owned(),
        approve_payment: hex::decode(approve).map_err(|e| FlowError::BadBankMessage {
            what: "approve_payment",
            reason: e.to_string(),
        })?,
    })
}

/// Formats minor units with the currency exponent, grouped (`123456`, 2 -> `1,234.56`), as
/// the PIN pad shows them (one home: `firmware_protocol::display`).
pub use firmware_protocol::display::format_amount;

/// Payment steps 2-4: the device shows the payment and takes the PIN, the bank verifies and
/// journals, the device checks the bank's answer. The result is what the device decided.
pub async fn approve_and_submit(
    session: &mut Session,
    bank: &BankClient,
    login: &BankSession,
    host: &mut PairedHost,
    prepared: &PreparedPayment,
    events: EventSink<'_>,
) -> Result<PaymentOutcome, FlowError> {
    let request: ApprovePayment = bank_request_bytes("approve_payment", &prepared.approve_payment)?;
    let p = &request.payment;
    events(FlowEvent::PaymentShown {
        transaction_id: p.bank_transaction_id.clone(),
        payee_name: p.payee_name.clone(),
        payee_account: p.payee_account.clone(),
        amount: format_amount(p.amount_minor, p.currency_exponent),
        currency: p.currency.as_str().to_owned(),
    });
    events(FlowEvent::Step {
        step: Step::DeviceApprove,
    });
    let approved = send_to_device(session, Some(host), &request, events).await?;
    events(FlowEvent::Step {
        step: Step::BankApproval,
    });
    let verdict = bank
        .post(
            &format!("/v1/payments/{}/approval", prepared.transaction_id),
            Some(&login.token),
            &json!({"payment_approved": approved.to_hex()?}),
        )
        .await;
    let verdict = match (verdict, approved) {
        (_, DeviceAnswer::Refused { cause, .. }) => return Err(device_error(cause)),
        (v, _) => v?,
    };
    let bank_result = field(&verdict, "result")?.to_owned();
    let pin_tries_left = verdict["pin_tries_left"].as_i64();
    events(FlowEvent::BankVerdict {
        transaction_id: prepared.transaction_id.clone(),
        result: bank_result.clone(),
        replayed: verdict["replayed"].as_bool().unwrap_or(false),
        pin_tries_left,
    });
    events(FlowEvent::Step {
        step: Step::DeviceVerify,
    });
    let decision = relay_verdict::<VerifyBankResponse>(
        session,
        host,
        &verdict,
        "verify_bank_response",
        events,
    )
    .await?;
    let outcome = PaymentOutcome {
        transaction_id: prepared.transaction_id.clone(),
        bank_result,
        pin_tries_left,
        device_result: decision.result,
        indicator: decision.indicator,
        display_text: decision.display_text,
    };
    Ok(outcome)
}

/// A whole payment: prepare, approve with the PIN on the device, bank verdict, device check.
pub async fn pay(
    session: &mut Session,
    bank: &BankClient,
    login: &BankSession,
    host: &mut PairedHost,
    order: &PaymentOrder,
    events: EventSink<'_>,
) -> Result<PaymentOutcome, FlowError> {
    let prepared = prepare_payment(bank, login, order, events).await?;
    approve_and_submit(session, bank, login, host, &prepared, events).await
}

/// Out-of-band confirmation (DESIGN.md §3): the pending confirmations the bank pushed to this
/// session, each shown on the device, approved there and signed with the device key.
/// Returns the bank's answer per confirmation.
pub async fn confirm_pending(
    session: &mut Session,
    bank: &BankClient,
    login: &BankSession,
    host: &mut PairedHost,
    events: EventSink<'_>,
) -> Result<Vec<Value>, FlowError> {
    let pending = bank
        .get("/v1/session/confirmations", Some(&login.token))
        .await?;
    let items = pending["confirmations"]
        .as_array()
        .cloned()
        .or_else(|| pending.as_array().cloned())
        .unwrap_or_default();
    let mut results = Vec::new();
    for item in items {
        match confirm_one(session, bank, login, host, &item, events).await {
            Ok(answer) => results.push(answer),
            // Without the PIN pad (or with a tampered one) none of the others can be done.
            Err(error @ FlowError::Tampered) => return Err(error),
            Err(FlowError::Device(error)) if error.is_disconnect() => {
                return Err(FlowError::Device(error));
            }
            // One failure (expired, decided elsewhere, a bank refusal) is reported with its
            // reason; the others are still asked.
            Err(error) => results.push(json!({
                "transaction_id": item["transaction_id"],
                "status": "failed",
                "error": error.to_string(),
            })),
        }
    }
    Ok(results)
}

/// Confirms one confirmation the bank pushed (an SSE `confirmation` event's data).
pub async fn confirm_one(
    session: &mut Session,
    bank: &BankClient,
    login: &BankSession,
    host: &mut PairedHost,
    confirmation: &Value,
    events: EventSink<'_>,
) -> Result<Value, FlowError> {
    let transaction_id = field(confirmation, "transaction_id")?.to_owned();
    events(FlowEvent::Step {
        step: Step::SignConfirmation,
    });
    let answer = relay_field::<SignConfirmation>(
        session,
        Some(host),
        confirmation,
        "sign_confirmation",
        events,
    )
    .await?;
    // The device's signature, or its refusal (the customer declined on the keypad, or the
    // device would not sign): either way the bank hears the answer, so a decline is
    // recorded as declined and not offered again.
    let body = answer.to_hex()?;
    let refusal = match answer {
        DeviceAnswer::Answer(_) => None,
        DeviceAnswer::Refused { error, cause } => Some((error, cause)),
    };
    let posted = bank
        .post(
            &format!("/v1/confirmations/{transaction_id}/signature"),
            Some(&login.token),
            &json!({"confirmation_signature": body}),
        )
        .await;
    let answer = match (posted, refusal) {
        (Ok(answer), _) => answer,
        (Err(refused), Some((error, cause))) if refused.code() == Some("device_refused") => {
            if error.status == StatusCode::Tampered {
                return Err(FlowError::Tampered);
            }
            json!({
                "transaction_id": transaction_id,
                "status": "declined",
                "device_status": error.status.as_str(),
                "reason": cause.to_string(),
            })
        }
        (Err(refused), _) => return Err(refused.into()),
    };
    events(FlowEvent::ConfirmationDecided {
        transaction_id,
        status: answer["status"].as_str().unwrap_or("unknown").to_owned(),
    });
    Ok(answer)
}

/// Staff: revoke a device (lost or stolen). The bank ends the binding and signs a wipe; when
/// the device is connected (`session`), the wipe is relayed to it now.
pub async fn revoke(
    session: Option<&mut Session>,
    bank: &BankClient,
    teller: &BearerToken,
    serial: &str,
    reason: &str,
    events: EventSink<'_>,
) -> Result<(), FlowError> {
    events(FlowEvent::Step { step: Step::Revoke });
    let answer = bank
        .post(
            &format!("/v1/devices/{serial}/revoke"),
            Some(teller),
            &json!({"reason": reason}),
        )
        .await?;
    if let Some(session) = session {
        events(FlowEvent::Step {
            step: Step::RelayBankCommand,
        });
        relay_field::<BankCommand>(session, None, &answer, "bank_command", events)
            .await?
            .into_answer()?;
    }
    Ok(())
}

/// Operator: reset a tampered (or revoked) device with an operator-signed token. The device
/// returns to Manufactured and must be initialised and enrolled again (use [`provision`]).
pub async fn operator_reset(
    session: &mut Session,
    bank: &BankClient,
    operator: &BearerToken,
    serial: &str,
    events: EventSink<'_>,
) -> Result<(), FlowError> {
    events(FlowEvent::Step {
        step: Step::OperatorReset,
    });
    let answer = bank
        .post(
            &format!("/v1/devices/{serial}/operator-reset"),
            Some(operator),
            &json!({}),
        )
        .await?;
    relay_field::<OperatorReset>(session, None, &answer, "operator_reset", events)
        .await?
        .into_answer()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_placed_by_the_exponent() {
        assert_eq!(format_amount(1234, 2), "12.34");
        assert_eq!(format_amount(5, 2), "0.05");
        assert_eq!(format_amount(7, 0), "7");
        assert_eq!(format_amount(1_000, 3), "1.000");
    }

    #[test]
    fn the_bank_s_hex_must_be_the_request_the_step_relays() {
        let status = Request::GetStatus(firmware_protocol::message::GetStatus)
            .encode(0)
            .map(hex::encode)
            .unwrap_or_default();
        let error = bank_request::<BankCommand>("bank_command", &status).unwrap_err();
        assert!(
            matches!(
                &error,
                FlowError::BadBankMessage { what: "bank_command", reason }
                    if reason == "it is a GetStatus, not a BankCommand"
            ),
            "{error}"
        );
        assert!(bank_request::<firmware_protocol::message::GetStatus>("x", &status).is_ok());
    }

    #[test]
    fn the_last_accepted_counter_is_read_from_the_detail() {
        assert_eq!(
            last_number("counter 3 is not above the last accepted 17"),
            Some(17)
        );
        assert_eq!(last_number("no numbers"), None);
    }
}
