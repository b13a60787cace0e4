//! The device flows for the screens: connect, pairing, login, payment, staff and QA commands,
//! each a thin layer over `companion::flows` (ui/README.md is the contract).
//!
//! Long operations report on their `onProgress` channel: the companion's [`FlowEvent`]s become
//! the contract's [`DeviceProgress`] (stages, PIN digit COUNTS, the indicator), and a mock
//! device's own display and light are watched and sent there too (and, app-wide, as
//! `deviceDisplay` / `devices` events). No PIN digit reaches a result, an event or a log: the
//! PIN is typed on the device and only a count is reported.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use companion::bank::{BankClient, BankError, BankSettings, BearerToken};
use companion::flows::{self as core, BankSession, FlowError, FlowEvent, Step};
use companion::keystore::{KeyStore, PairedHost};
use companion::session::{CancelHandle, Session, SessionError};
use firmware_protocol::message::{GetInfo, GetStatus, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tauri::State;
use tauri::ipc::Channel;

use crate::AppState;
use crate::confirmations::BankWatch;
#[cfg(feature = "sandbox")]
use crate::confirmations::{ConfirmationRequest, now_rfc3339, request_from_bank};
use crate::devices::{self, DeviceStatus, Firmware, Indicator, Lifecycle, LockState, TamperState};
use crate::embedded::{self, Embedded, MockDevices};
#[cfg(feature = "sandbox")]
use crate::embedded::{Key, MockDevice};
use crate::error::AppError;
use crate::events::AppEvent;

// ------------------------------------------------------------------------- contract shapes

/// What a long device operation is doing (`Stage` in ui/src/api/types.ts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Talking to the bank.
    ContactingBank,
    /// Sending to the device.
    SendingToDevice,
    /// The device waits for the user.
    WaitingForUser,
    /// Sending the device's answer to the bank.
    SendingToBank,
    /// The device checks the bank's answer.
    VerifyingResponse,
    /// Finished.
    Done,
}

/// Progress of one long operation (`DeviceProgress`, tag `type`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum DeviceProgress {
    /// A stage starts.
    Stage {
        /// Which.
        stage: Stage,
    },
    /// The device's own display, verbatim.
    Display {
        /// Lines.
        lines: Vec<String>,
    },
    /// PIN entry on the device keypad: a count, never the digits.
    Pin {
        /// Digits entered.
        entered: u8,
        /// Most digits possible.
        length: u8,
    },
    /// The device's indicator.
    Indicator {
        /// As the device reports it.
        indicator: Indicator,
    },
}

/// The stage a companion flow step belongs to.
pub fn stage_of(step: Step) -> Stage {
    match step {
        Step::BankInitialise
        | Step::BankEnrol
        | Step::LoginBegin
        | Step::PreparePayment
        | Step::Revoke => Stage::ContactingBank,
        Step::BankCompleteInitialise | Step::BankCompleteEnrol | Step::BankApproval => {
            Stage::SendingToBank
        }
        Step::DeviceVerify => Stage::VerifyingResponse,
        Step::ReadDeviceInfo
        | Step::DeviceInitialise
        | Step::DeviceEnrol
        | Step::PairBegin
        | Step::PairConfirm
        | Step::IntegrityReport
        | Step::LoadSessionKeys
        | Step::BankChallenge
        | Step::DeviceApprove
        | Step::SignConfirmation
        | Step::RelayBankCommand
        | Step::OperatorReset => Stage::SendingToDevice,
    }
}

/// The contract's progress for a companion flow event (`None`: nothing the screens show).
pub fn progress_of(event: &FlowEvent) -> Option<DeviceProgress> {
    match event {
        FlowEvent::Step { step } => Some(DeviceProgress::Stage {
            stage: stage_of(*step),
        }),
        FlowEvent::WaitingForUser => Some(DeviceProgress::Stage {
            stage: Stage::WaitingForUser,
        }),
        FlowEvent::PinEntry { entered, max, .. } => Some(DeviceProgress::Pin {
            entered: *entered,
            length: *max,
        }),
        FlowEvent::DeviceDecision { indicator, .. } => Some(DeviceProgress::Indicator {
            indicator: indicator_named(indicator),
        }),
        _ => None,
    }
}

fn indicator_named(name: &str) -> Indicator {
    match name {
        "safe" => Indicator::Safe,
        "danger" => Indicator::Danger,
        _ => Indicator::Off,
    }
}

/// `pairing_begin`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingStart {
    /// Names this pairing in `pairing_confirm` / `pairing_cancel`.
    pub pairing_id: String,
    /// Six digits, also on the device's display.
    pub code: String,
}

/// `login`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginSession {
    /// The bank's session id.
    pub session_id: String,
    /// The customer.
    pub customer_id: String,
    /// Their name.
    pub customer_name: String,
    /// The device logged in with.
    pub device_id: String,
    /// Accounts to pay from.
    pub accounts: Vec<String>,
}

/// `payment_prepare`'s argument.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    /// From `login`.
    pub session_id: String,
    /// One of the session's accounts.
    pub from_account: String,
    /// Payee.
    pub payee_name: String,
    /// Payee account.
    pub payee_account: String,
    /// Integer minor units as a decimal string.
    pub amount_minor: String,
    /// ISO 4217.
    pub currency: String,
    /// Free text.
    pub reference: String,
}

/// `payment_prepare`'s result: what the bank prepared (and the device will show).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparedPayment {
    /// The bank's transaction id.
    pub payment_id: String,
    /// Payer account.
    pub from_account: String,
    /// Payee.
    pub payee_name: String,
    /// Payee account.
    pub payee_account: String,
    /// Minor units.
    pub amount_minor: String,
    /// ISO 4217.
    pub currency: String,
    /// Free text.
    pub reference: String,
}

/// How a device operation ended, as the device decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The bank said yes and the device verified it.
    Approved,
    /// A genuine no from the bank.
    Declined,
    /// Signed (confirmation).
    Signed,
    /// The user said no on the device.
    Rejected,
    /// The device refused (tampered, bank answer failed its check).
    Refused,
}

/// Why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutcomeReason {
    /// Nothing to explain.
    None,
    /// The bank did not verify the PIN.
    WrongPin,
    /// Not enough money.
    InsufficientFunds,
    /// The bank's answer failed the device's check.
    BankResponseInvalid,
    /// The device is tampered.
    Tampered,
    /// The host was not verified.
    HostNotVerified,
    /// The user said no.
    UserRejected,
}

/// `payment_approve`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    /// The payment.
    pub payment_id: String,
    /// As the device decided.
    pub outcome: Outcome,
    /// As the device reports it.
    pub indicator: Indicator,
    /// Why.
    pub reason: OutcomeReason,
    /// The device's display at the end.
    pub device_lines: Vec<String>,
    /// The bank's journal reference (its transaction id) when approved.
    pub bank_reference: Option<String>,
}

/// Staff roles as the app names them; the bank's `teller` is a `clerk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StaffRole {
    /// Branch clerk (the bank's teller).
    Clerk,
    /// Service operator (tamper reset).
    Operator,
}

/// `staff_sign_in`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffSession {
    /// Sign-in name.
    pub staff_id: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: StaffRole,
}

/// Which staff action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StaffAction {
    /// Bank keys installed.
    Initialise,
    /// PIN chosen on the device, bound.
    Enrol,
    /// Bound.
    Bind,
    /// Revoked.
    Revoke,
    /// Customer moved to another device.
    Rebind,
    /// Operator tamper reset.
    TamperReset,
}

/// A staff action's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffActionResult {
    /// Which.
    pub action: StaffAction,
    /// The device.
    pub device_id: String,
    /// Plain words, no secrets.
    pub detail: String,
    /// The device afterwards.
    pub device: DeviceStatus,
}

/// A QA fault (tag `kind`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fault {
    /// Hold every device answer this long (stays until cleared).
    Delay {
        /// Milliseconds (at most 30 000).
        ms: u64,
    },
    /// Lose the next packet (retransmitted).
    Drop,
    /// Damage the next packet (its CRC catches it).
    Corrupt,
    /// Close the link after the next packet.
    Disconnect,
    /// Answer the next request BUSY.
    Busy,
    /// The device times out waiting for a key.
    UserTooSlow,
}

// ------------------------------------------------------------------------- state

/// The embedded default's state.
#[derive(Debug, Clone)]
pub enum EmbeddedStatus {
    /// Not started: a bank URL is configured (or the shell was built without it).
    Off,
    /// Starting at setup.
    Starting,
    /// Running.
    Ready(Arc<Embedded>),
    /// Did not start (why).
    Failed(String),
}

/// A device this app has a session with.
struct Slot {
    serial: String,
    firmware: Firmware,
    session: tokio::sync::Mutex<Session>,
    cancel: CancelHandle,
    /// The last GetStatus answer (real devices; mock devices are read in process).
    status: Mutex<Option<firmware_protocol::message::Status>>,
    /// The running operation's progress channel.
    progress: Mutex<Option<Channel<DeviceProgress>>>,
}

impl Slot {
    fn progress(&self) -> MutexGuard<'_, Option<Channel<DeviceProgress>>> {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, progress: DeviceProgress) {
        if let Some(channel) = self.progress().as_ref() {
            let _ = channel.send(progress);
        }
    }
}

/// Sets a slot's progress channel for one operation and clears it afterwards.
struct Operation {
    slot: Arc<Slot>,
}

impl Operation {
    fn begin(slot: &Arc<Slot>, channel: Channel<DeviceProgress>) -> Self {
        *slot.progress() = Some(channel);
        Operation { slot: slot.clone() }
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        *self.slot.progress() = None;
    }
}

fn sink_for(slot: &Arc<Slot>) -> impl FnMut(FlowEvent) + Send + use<> {
    let slot = slot.clone();
    // PIN entry is the device waiting for the user too: the screens get that stage first.
    let mut waiting = false;
    move |event: FlowEvent| {
        // Into the log file (diagnostics' last flow events) before the screen sees it.
        companion::logfile::trace_flow_event(&event);
        match &event {
            FlowEvent::Step { .. } => waiting = false,
            FlowEvent::WaitingForUser => waiting = true,
            FlowEvent::PinEntry { .. } if !waiting => {
                waiting = true;
                slot.send(DeviceProgress::Stage {
                    stage: Stage::WaitingForUser,
                });
            }
            _ => {}
        }
        if let Some(progress) = progress_of(&event) {
            slot.send(progress);
        }
    }
}

struct PendingPairing {
    device_id: String,
    task: tokio::task::JoinHandle<Result<PairedHost, FlowError>>,
}

struct LoginEntry {
    login: BankSession,
    bank: BankClient,
    device_id: String,
    accounts: Vec<String>,
    /// The session's listener on the bank's event stream (pushed confirmations); stops when
    /// the entry goes (logout).
    _confirmations: BankWatch,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PaymentState {
    Prepared,
    Approving,
    Done,
}

struct PaymentEntry {
    session_id: String,
    prepared: core::PreparedPayment,
    state: PaymentState,
}

struct StaffEntry {
    session: StaffSession,
    token: BearerToken,
    bank: BankClient,
}

#[derive(Default)]
struct Tables {
    slots: HashMap<String, Arc<Slot>>,
    pairings: HashMap<String, PendingPairing>,
    logins: HashMap<String, LoginEntry>,
    payments: HashMap<String, PaymentEntry>,
    staff: Option<StaffEntry>,
    /// The customer each device is bound to, as far as this app learnt it.
    customers: HashMap<String, String>,
}

/// Sessions, pairings, logins, payments and staff sign-in: the flows' state, one per app.
pub struct Flows {
    /// The in-process mock PIN pads.
    pub mocks: MockDevices,
    embedded: tokio::sync::watch::Sender<EmbeddedStatus>,
    /// Pairing keys for real devices.
    keys: KeyStore,
    tables: Mutex<Tables>,
    next_id: AtomicU64,
    /// What the display watcher saw last, per mock device.
    seen: Mutex<HashMap<String, (Vec<String>, embedded::MockState)>>,
}

impl std::fmt::Debug for Flows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flows")
            .field("embedded", &*self.embedded.borrow())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every table entry is inserted and removed whole: a poisoned map is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Flows {
    /// Empty state; pairing keys of real devices in `keys_dir`.
    pub fn new(keys_dir: std::path::PathBuf, embedded: EmbeddedStatus) -> Self {
        Flows {
            mocks: MockDevices::default(),
            embedded: tokio::sync::watch::Sender::new(embedded),
            keys: KeyStore::new(keys_dir),
            tables: Mutex::new(Tables::default()),
            next_id: AtomicU64::new(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        lock(&self.tables)
    }

    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// How the real devices' pairing keys are protected (diagnostics).
    pub fn pairing_protection(&self) -> companion::keystore::Protection {
        self.keys.protection()
    }

    /// Sets the embedded default's state.
    pub fn set_embedded(&self, status: EmbeddedStatus) {
        self.embedded.send_replace(status);
    }

    /// The embedded default's state now.
    pub fn embedded_status(&self) -> EmbeddedStatus {
        self.embedded.borrow().clone()
    }

    /// Records the customer a device is bound to.
    pub fn set_customer(&self, device_id: &str, customer_id: Option<&str>) {
        let mut tables = self.tables();
        match customer_id {
            Some(customer) => {
                tables
                    .customers
                    .insert(device_id.to_owned(), customer.to_owned());
            }
            None => {
                tables.customers.remove(device_id);
            }
        }
    }

    /// The embedded bank and devices, once started (waits while they start).
    async fn embedded(&self) -> Result<Arc<Embedded>, AppError> {
        let mut watch = self.embedded.subscribe();
        let status = watch
            .wait_for(|s| !matches!(s, EmbeddedStatus::Starting))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .clone();
        match status {
            EmbeddedStatus::Ready(embedded) => Ok(embedded),
            EmbeddedStatus::Failed(why) => Err(AppError::BankUnreachable(why)),
            EmbeddedStatus::Off | EmbeddedStatus::Starting => Err(AppError::InvalidInput(
                "the embedded sandbox is not running (a bank URL is configured); QA mock devices need it"
                    .into(),
            )),
        }
    }

    /// A client for the configured bank, or the embedded sandbox bank.
    async fn bank(&self, state: &AppState) -> Result<BankClient, AppError> {
        let settings = state.settings.settings();
        if settings.bank_url.is_empty() {
            Ok(self.embedded().await?.client()?)
        } else {
            Ok(BankClient::new(&BankSettings {
                url: settings.bank_url,
                ca_pem: settings.bank_ca_pem.map(String::into_bytes),
            })?)
        }
    }

    /// The key store for a device's pairing: the run's own for mock devices (they are new
    /// every run), the app's for real ones.
    async fn keystore_for(&self, device_id: &str) -> Result<KeyStore, AppError> {
        if self.mocks.by_id(device_id).is_some() {
            Ok(KeyStore::in_memory(
                self.embedded().await?.run_dir().join("pairings"),
            ))
        } else {
            Ok(self.keys.clone())
        }
    }

    fn keystore_now(&self, device_id: &str) -> Option<KeyStore> {
        if self.mocks.by_id(device_id).is_some() {
            match &*self.embedded.borrow() {
                EmbeddedStatus::Ready(e) => Some(KeyStore::in_memory(e.run_dir().join("pairings"))),
                _ => None,
            }
        } else {
            Some(self.keys.clone())
        }
    }

    fn slot(&self, device_id: &str) -> Result<Arc<Slot>, AppError> {
        self.tables().slots.get(device_id).cloned().ok_or_else(|| {
            AppError::DeviceDisconnected(format!(
                "{device_id} is not connected; connect it on the Devices screen"
            ))
        })
    }

    fn staff(&self) -> Result<(StaffSession, BearerToken, BankClient), AppError> {
        self.tables()
            .staff
            .as_ref()
            .map(|s| (s.session.clone(), s.token.clone(), s.bank.clone()))
            .ok_or_else(|| AppError::StaffAuthRequired("staff sign-in required".into()))
    }

    /// Adds what this app knows to the listed devices: session state, the device's own
    /// answers, pairing, customer; mock devices are read in process.
    pub fn describe(&self, mut list: Vec<DeviceStatus>) -> Vec<DeviceStatus> {
        let (slots, customers) = {
            let tables = self.tables();
            (tables.slots.clone(), tables.customers.clone())
        };
        for status in &mut list {
            if let Some(mock) = self.mocks.by_id(&status.device_id) {
                let state = embedded::mock_state(&mock);
                status.serial = mock.serial.clone();
                status.name = mock.name.clone();
                status.lifecycle = lifecycle_named(state.lifecycle);
                status.tamper = if state.tampered {
                    TamperState::Tampered
                } else {
                    TamperState::Clear
                };
                status.lock = if state.locked {
                    LockState::Locked
                } else {
                    LockState::Unlocked
                };
                status.indicator = indicator_named(state.indicator);
                status.firmware = Firmware {
                    version: state.firmware_version,
                    hash: state.firmware_hash,
                };
                status.mock = true;
            }
            if let Some(slot) = slots.get(&status.device_id) {
                status.connected = true;
                status.serial = slot.serial.clone();
                status.firmware = slot.firmware.clone();
                let reported = *lock(&slot.status);
                if let (Some(reported), None) = (reported, self.mocks.by_id(&status.device_id)) {
                    use firmware_protocol::message::{Indicator as I, Lifecycle as L};
                    status.lifecycle = match reported.lifecycle {
                        L::Manufactured => Lifecycle::Manufactured,
                        L::Initialised => Lifecycle::Initialised,
                        L::Bound => Lifecycle::Bound,
                        L::Revoked => Lifecycle::Revoked,
                    };
                    status.tamper = if reported.tampered {
                        TamperState::Tampered
                    } else {
                        TamperState::Clear
                    };
                    status.lock = match reported.lock {
                        firmware_protocol::message::LockState::Unlocked => LockState::Unlocked,
                        _ => LockState::Locked,
                    };
                    status.indicator = match reported.indicator {
                        I::Safe => Indicator::Safe,
                        I::Danger => Indicator::Danger,
                        I::Off => Indicator::Off,
                    };
                }
            }
            status.customer_id = customers.get(&status.device_id).cloned();
            if !status.serial.is_empty()
                && let Some(keys) = self.keystore_now(&status.device_id)
            {
                status.paired = keys.find(&status.serial).is_ok_and(|found| found.is_some());
            }
        }
        list
    }
}

fn lifecycle_named(name: &str) -> Lifecycle {
    match name {
        "initialised" => Lifecycle::Initialised,
        "bound" => Lifecycle::Bound,
        "revoked" => Lifecycle::Revoked,
        _ => Lifecycle::Manufactured,
    }
}

/// Every listed device as the screens show it.
pub async fn list(state: &AppState) -> Vec<DeviceStatus> {
    state.flows.describe(devices::list(&state.devices).await)
}

/// The device list without a rescan.
pub fn list_now(state: &AppState) -> Vec<DeviceStatus> {
    state
        .flows
        .describe(devices::statuses(&state.devices.devices()))
}

async fn status_of(state: &AppState, device_id: &str) -> Result<DeviceStatus, AppError> {
    list(state)
        .await
        .into_iter()
        .find(|d| d.device_id == device_id)
        .ok_or_else(|| AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed")))
}

fn push_devices(state: &AppState) {
    state.subscribers.emit(&AppEvent::Devices {
        devices: list_now(state),
    });
}

/// Watches the mock devices (display, light, state) every 100 ms, for as long as the app runs.
pub fn watch_mock_devices(state: &AppState) -> impl std::future::Future<Output = ()> + use<> {
    let flows = state.flows.clone();
    let subscribers = state.subscribers.clone();
    let devices = state.devices.clone();
    async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let changed = flows.watch_mocks_with(&subscribers);
            if changed {
                let list = flows.describe(devices::statuses(&devices.devices()));
                subscribers.emit(&AppEvent::Devices { devices: list });
            }
        }
    }
}

impl Flows {
    /// Compares every mock device with what was seen last: display changes go to the app
    /// event channel and the running operation's progress; state changes (indicator,
    /// lifecycle, tamper, lock) return `true` so the caller pushes the device list.
    fn watch_mocks_with(&self, subscribers: &crate::events::Subscribers) -> bool {
        let mut list_changed = false;
        let slots = self.tables().slots.clone();
        for mock in self.mocks.all() {
            let device_id = mock.device_id();
            let now = embedded::mock_state(&mock);
            let previous =
                lock(&self.seen).insert(device_id.clone(), (now.display.clone(), now.clone()));
            let (display_changed, state_changed, indicator_changed) = match &previous {
                None => (true, true, true),
                Some((lines, old)) => (
                    *lines != now.display || old.prompt_id != now.prompt_id,
                    old.lifecycle != now.lifecycle
                        || old.tampered != now.tampered
                        || old.locked != now.locked
                        || old.indicator != now.indicator,
                    old.indicator != now.indicator,
                ),
            };
            let slot = slots.get(&device_id);
            if display_changed {
                subscribers.emit(&AppEvent::DeviceDisplay {
                    device_id: device_id.clone(),
                    lines: now.display.clone(),
                    prompt_id: now.prompt_id,
                });
                if let Some(slot) = slot {
                    slot.send(DeviceProgress::Display {
                        lines: now.display.clone(),
                    });
                }
            }
            if indicator_changed && let Some(slot) = slot {
                slot.send(DeviceProgress::Indicator {
                    indicator: indicator_named(now.indicator),
                });
            }
            list_changed |= state_changed;
        }
        list_changed
    }
}

/// Starts the embedded default: the sandbox bank, then `PB-SIM-0001` provisioned for C-1001.
#[cfg(feature = "sandbox")]
pub async fn start_embedded(
    flows: Arc<Flows>,
    devices: companion::devices::DeviceManager,
    runs_dir: std::path::PathBuf,
) {
    let started = async {
        let embedded = Arc::new(Embedded::start_bank(&runs_dir).await?);
        tracing::info!(target: "companion::bank", "embedded sandbox bank started on {}", embedded.bank_url);
        let device = embedded
            .start_device(
                &flows.mocks,
                embedded::SANDBOX_SERIAL,
                embedded::SANDBOX_DEVICE_NAME,
            )
            .await?;
        embedded.provision_sandbox_device(&device).await?;
        flows.set_customer(&device.device_id(), Some(embedded::SANDBOX_CUSTOMER));
        tracing::info!(
            target: "companion::devices",
            "mock PIN pad {} started and enrolled for {} (sandbox)",
            device.serial,
            embedded::SANDBOX_CUSTOMER
        );
        Ok::<_, embedded::EmbeddedError>(embedded)
    };
    match started.await {
        Ok(embedded) => flows.set_embedded(EmbeddedStatus::Ready(embedded)),
        Err(error) => {
            tracing::error!("{error}");
            flows.set_embedded(EmbeddedStatus::Failed(error.to_string()));
        }
    }
    devices.refresh().await;
}

// ------------------------------------------------------------------------- device commands

async fn ask(session: &mut Session, request: &Request) -> Result<Response, AppError> {
    session
        .request(request)
        .await
        .map_err(|e: SessionError| AppError::from(e))
}

/// Opens a session with a device and asks it who and how it is.
#[tauri::command]
pub async fn device_connect(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<DeviceStatus, AppError> {
    let flows = &state.flows;
    if flows.tables().slots.contains_key(&device_id) {
        return status_of(&state, &device_id).await;
    }
    state.devices.refresh().await;
    let id = state
        .devices
        .devices()
        .into_iter()
        .map(|d| d.id().clone())
        .find(|id| id.to_string() == device_id)
        .ok_or_else(|| AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed")))?;
    let transport = state.devices.open(&id).await?;
    let mut session = Session::open(transport).await?;
    let Response::Info(info) = ask(&mut session, &Request::GetInfo(GetInfo)).await? else {
        return Err(AppError::CorruptFrame(
            "the PIN pad did not answer GetInfo with Info".into(),
        ));
    };
    let reported = match ask(&mut session, &Request::GetStatus(GetStatus)).await? {
        Response::Status(status) => Some(status),
        _ => None,
    };
    let slot = Arc::new(Slot {
        serial: info.serial.clone(),
        firmware: Firmware {
            version: info.firmware_version.clone(),
            hash: hex::encode(info.firmware_hash.0),
        },
        cancel: session.cancel_handle(),
        session: tokio::sync::Mutex::new(session),
        status: Mutex::new(reported),
        progress: Mutex::new(None),
    });
    flows.tables().slots.insert(device_id.clone(), slot);
    tracing::info!(
        target: "companion::devices",
        "{} connected ({device_id}); firmware {}",
        info.serial,
        info.firmware_version
    );
    lock(&flows.seen).remove(&device_id);
    push_devices(&state);
    status_of(&state, &device_id).await
}

/// Closes the session with a device.
#[tauri::command]
pub async fn device_disconnect(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<(), AppError> {
    let slot = state.flows.tables().slots.remove(&device_id);
    if let Some(slot) = slot {
        slot.cancel.cancel();
        tracing::info!(target: "companion::devices", "{} disconnected", slot.serial);
        tauri::async_runtime::spawn(async move {
            // Waits for a cancelled operation to let go of the session first.
            let _session = slot.session.lock().await;
        });
    }
    push_devices(&state);
    Ok(())
}

async fn refresh_status(slot: &Slot) {
    let mut session = slot.session.lock().await;
    if let Ok(Response::Status(status)) = session.request(&Request::GetStatus(GetStatus)).await {
        *lock(&slot.status) = Some(status);
    }
}

// ------------------------------------------------------------------------- pairing

/// Starts pairing: keys exchanged with the device, which shows the comparison code.
#[tauri::command]
pub async fn pairing_begin(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<PairingStart, AppError> {
    let slot = state.flows.slot(&device_id)?;
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
    let pairing_id = state.flows.next_id("pair");
    match code_rx.await {
        Ok(code) => {
            state
                .flows
                .tables()
                .pairings
                .insert(pairing_id.clone(), PendingPairing { device_id, task });
            tracing::info!("pairing started with {} (ECDH)", slot.serial);
            Ok(PairingStart { pairing_id, code })
        }
        // The flow ended before the device showed a code: its error says why.
        Err(_) => match task.await {
            Ok(Err(error)) => Err(error.into()),
            Ok(Ok(_)) => Err(AppError::PairingFailed("no comparison code".into())),
            Err(error) => Err(AppError::Internal(error.to_string())),
        },
    }
}

/// Waits for the user to confirm the code on the device; stores the pairing key encrypted.
#[tauri::command]
pub async fn pairing_confirm(
    state: State<'_, AppState>,
    pairing_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<DeviceStatus, AppError> {
    let pending = state
        .flows
        .tables()
        .pairings
        .remove(&pairing_id)
        .ok_or_else(|| AppError::NotFound(format!("no pairing {pairing_id}")))?;
    let slot = state.flows.slot(&pending.device_id)?;
    let _op = Operation::begin(&slot, on_progress.clone());
    let _ = on_progress.send(DeviceProgress::Stage {
        stage: Stage::WaitingForUser,
    });
    if let Some(mock) = state.flows.mocks.by_id(&pending.device_id) {
        let _ = on_progress.send(DeviceProgress::Display {
            lines: embedded::mock_state(&mock).display,
        });
    }
    let host = match pending.task.await {
        Ok(result) => result?,
        Err(error) if error.is_cancelled() => {
            return Err(AppError::UserCancelled(
                "pairing cancelled in the app".into(),
            ));
        }
        Err(error) => return Err(AppError::Internal(error.to_string())),
    };
    let keys = state.flows.keystore_for(&pending.device_id).await?;
    keys.save(&host)?;
    tracing::info!(
        "paired with {}; host pairing key stored encrypted",
        host.serial
    );
    let _ = on_progress.send(DeviceProgress::Stage { stage: Stage::Done });
    refresh_status(&slot).await;
    push_devices(&state);
    status_of(&state, &pending.device_id).await
}

/// Cancels a pairing in progress (the device's prompt is cancelled too).
#[tauri::command]
pub async fn pairing_cancel(
    state: State<'_, AppState>,
    pairing_id: String,
) -> Result<(), AppError> {
    let pending = state.flows.tables().pairings.remove(&pairing_id);
    if let Some(pending) = pending {
        if let Ok(slot) = state.flows.slot(&pending.device_id) {
            slot.cancel.cancel();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), pending.task).await;
        tracing::info!("pairing cancelled in the app");
    }
    Ok(())
}

// ------------------------------------------------------------------------- login

/// Logs the customer in at the bank through the paired device.
#[tauri::command]
pub async fn login(
    state: State<'_, AppState>,
    device_id: String,
    customer_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<LoginSession, AppError> {
    let flows = &state.flows;
    let slot = flows.slot(&device_id)?;
    let keys = flows.keystore_for(&device_id).await?;
    let mut host = keys.find(&slot.serial)?.ok_or_else(|| {
        AppError::NotPaired(format!(
            "{} is not paired with this computer; pair it first",
            slot.serial
        ))
    })?;
    let bank = flows.bank(&state).await?;
    let _op = Operation::begin(&slot, on_progress.clone());
    let mut sink = sink_for(&slot);
    let result = {
        let mut session = slot.session.lock().await;
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
    let accounts = bank.get("/v1/accounts", Some(&login.token)).await?;
    let listed: Vec<&Value> = accounts["accounts"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let account_numbers: Vec<String> = listed
        .iter()
        .filter_map(|a| a["account_number"].as_str().map(str::to_owned))
        .collect();
    let customer_name = listed
        .first()
        .and_then(|a| a["name"].as_str())
        .unwrap_or(&login.customer_id)
        .to_owned();
    let session = LoginSession {
        session_id: login.session_id.clone(),
        customer_id: login.customer_id.clone(),
        customer_name,
        device_id: device_id.clone(),
        accounts: account_numbers.clone(),
    };
    flows.set_customer(&device_id, Some(&login.customer_id));
    tracing::info!(target: "companion::bank", "session opened for {}", login.customer_id);
    let watch = BankWatch::start(
        bank.clone(),
        login.token.clone(),
        state.confirmations.clone(),
        state.subscribers.clone(),
    );
    flows.tables().logins.insert(
        login.session_id.clone(),
        LoginEntry {
            login,
            bank,
            device_id,
            accounts: account_numbers,
            _confirmations: watch,
        },
    );
    let _ = on_progress.send(DeviceProgress::Stage { stage: Stage::Done });
    refresh_status(&slot).await;
    push_devices(&state);
    Ok(session)
}

/// Forgets a customer session.
#[tauri::command]
pub async fn logout(state: State<'_, AppState>, session_id: String) -> Result<(), AppError> {
    let mut tables = state.flows.tables();
    tables.logins.remove(&session_id);
    tables.payments.retain(|_, p| p.session_id != session_id);
    drop(tables);
    tracing::info!(target: "companion::bank", "session closed");
    Ok(())
}

// ------------------------------------------------------------------------- payment

fn compact(account: &str) -> String {
    account.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The bank prepares (and MACs) the payment the device will show.
#[tauri::command]
pub async fn payment_prepare(
    state: State<'_, AppState>,
    request: PaymentRequest,
) -> Result<PreparedPayment, AppError> {
    let (token, bank, accounts) = {
        let tables = state.flows.tables();
        let entry = tables
            .logins
            .get(&request.session_id)
            .ok_or_else(|| AppError::NotLoggedIn("log in first".into()))?;
        (
            entry.login.token.clone(),
            entry.bank.clone(),
            entry.accounts.clone(),
        )
    };
    let amount_minor: u64 = request
        .amount_minor
        .parse()
        .ok()
        .filter(|&a| a > 0)
        .ok_or_else(|| AppError::InvalidInput("amount must be more than zero".into()))?;
    // The companion's payment input rules, as the CLI applies them (companion::input).
    let invalid = |e: companion::input::InputError| AppError::InvalidInput(e.to_string());
    let payee_name = companion::input::parse_payee_name(&request.payee_name).map_err(invalid)?;
    let payee_account = companion::input::parse_account(&request.payee_account)
        .map_err(invalid)?
        .as_str()
        .to_owned();
    let currency = companion::input::Currency::parse(&request.currency).map_err(invalid)?;
    let from_account = compact(&request.from_account);
    if !accounts.iter().any(|a| compact(a) == from_account) {
        return Err(AppError::InvalidInput("not one of your accounts".into()));
    }
    let mut key = [0u8; 8];
    getrandom::fill(&mut key).map_err(|e| AppError::Internal(e.to_string()))?;
    let reference = request.reference.trim().to_owned();
    let prepared = bank
        .post(
            "/v1/payments",
            Some(&token),
            &json!({
                "payer_account": from_account,
                "payee_account": payee_account,
                "payee_name": payee_name,
                "amount_minor": amount_minor,
                "currency": currency.code(),
                "reference": reference,
                "idempotency_key": hex::encode(key),
            }),
        )
        .await?;
    let transaction_id = prepared["transaction_id"]
        .as_str()
        .ok_or_else(|| AppError::BankRejected("the bank's answer has no transaction_id".into()))?
        .to_owned();
    let approve_payment = prepared["approve_payment"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| AppError::BankRejected("the bank's answer has no approve_payment".into()))?;
    tracing::info!(target: "companion::bank", "payment {transaction_id} prepared");
    state.flows.tables().payments.insert(
        transaction_id.clone(),
        PaymentEntry {
            session_id: request.session_id,
            prepared: core::PreparedPayment {
                transaction_id: transaction_id.clone(),
                approve_payment,
            },
            state: PaymentState::Prepared,
        },
    );
    Ok(PreparedPayment {
        payment_id: transaction_id,
        from_account: request.from_account,
        payee_name,
        payee_account,
        amount_minor: amount_minor.to_string(),
        currency: currency.code().to_owned(),
        reference,
    })
}

/// The device shows the payment, the customer enters the PIN on it, the bank verifies and
/// journals, the device checks the bank's answer: the result is what the device decided.
#[tauri::command]
pub async fn payment_approve(
    state: State<'_, AppState>,
    payment_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<PaymentResult, AppError> {
    let flows = &state.flows;
    let (prepared, login, bank, device_id) = {
        let mut tables = flows.tables();
        let Tables {
            payments, logins, ..
        } = &mut *tables;
        let payment = payments
            .get_mut(&payment_id)
            .ok_or_else(|| AppError::NotFound(format!("no payment {payment_id}")))?;
        if payment.state != PaymentState::Prepared {
            return Err(AppError::InvalidInput(
                "this payment was already sent".into(),
            ));
        }
        let entry = logins
            .get(&payment.session_id)
            .ok_or_else(|| AppError::NotLoggedIn("the session has ended; log in again".into()))?;
        payment.state = PaymentState::Approving;
        (
            payment.prepared.clone(),
            entry.login.clone(),
            entry.bank.clone(),
            entry.device_id.clone(),
        )
    };
    let finish = |state: PaymentState| {
        if let Some(p) = flows.tables().payments.get_mut(&payment_id) {
            p.state = state;
        }
    };
    let slot = match flows.slot(&device_id) {
        Ok(slot) => slot,
        Err(error) => {
            finish(PaymentState::Prepared);
            return Err(error);
        }
    };
    let keys = flows.keystore_for(&device_id).await?;
    let mut host = keys.find(&slot.serial)?.ok_or_else(|| {
        AppError::NotPaired(format!("{} is not paired with this computer", slot.serial))
    })?;
    let _op = Operation::begin(&slot, on_progress.clone());
    let mut sink = sink_for(&slot);
    let result = {
        let mut session = slot.session.lock().await;
        core::approve_and_submit(&mut session, &bank, &login, &mut host, &prepared, &mut sink).await
    };
    keys.save(&host)?;
    finish(PaymentState::Done);
    let mock = flows.mocks.by_id(&device_id);
    let lines_now = |fallback: Vec<String>| match &mock {
        Some(mock) => embedded::mock_state(mock).display,
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
                let reason = match outcome.bank_result.as_str() {
                    "pin_incorrect" | "pin_locked" => OutcomeReason::WrongPin,
                    "insufficient_funds" => OutcomeReason::InsufficientFunds,
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
                payment_id: payment_id.clone(),
                outcome: decision,
                indicator,
                reason,
                device_lines: lines_now(vec![outcome.display_text.clone()]),
                bank_reference: (decision == Outcome::Approved)
                    .then(|| outcome.transaction_id.clone()),
            }
        }
        Err(FlowError::Tampered) => {
            tracing::error!(target: "companion::devices", "{}: payment refused, the device is tampered", slot.serial);
            PaymentResult {
                payment_id: payment_id.clone(),
                outcome: Outcome::Refused,
                indicator: Indicator::Danger,
                reason: OutcomeReason::Tampered,
                device_lines: lines_now(vec!["TAMPERED".into()]),
                bank_reference: None,
            }
        }
        Err(FlowError::Device(SessionError::Refused {
            indicator: firmware_protocol::message::Indicator::Danger,
            detail,
            ..
        })) => {
            tracing::error!(target: "companion::devices", "{}: the bank's answer failed the device's check", slot.serial);
            PaymentResult {
                payment_id: payment_id.clone(),
                outcome: Outcome::Refused,
                indicator: Indicator::Danger,
                reason: OutcomeReason::BankResponseInvalid,
                device_lines: lines_now(vec![detail]),
                bank_reference: None,
            }
        }
        Err(error) => return Err(error.into()),
    };
    let _ = on_progress.send(DeviceProgress::Indicator {
        indicator: result.indicator,
    });
    let _ = on_progress.send(DeviceProgress::Stage { stage: Stage::Done });
    refresh_status(&slot).await;
    push_devices(&state);
    Ok(result)
}

/// Cancels a payment: the device's prompt is cancelled and the payment cannot be sent.
#[tauri::command]
pub async fn payment_cancel(
    state: State<'_, AppState>,
    payment_id: String,
) -> Result<(), AppError> {
    let device_id = {
        let mut tables = state.flows.tables();
        let Tables {
            payments, logins, ..
        } = &mut *tables;
        payments.get_mut(&payment_id).and_then(|p| {
            let approving = p.state == PaymentState::Approving;
            p.state = PaymentState::Done;
            approving
                .then(|| logins.get(&p.session_id).map(|l| l.device_id.clone()))
                .flatten()
        })
    };
    if let Some(device_id) = device_id
        && let Ok(slot) = state.flows.slot(&device_id)
    {
        slot.cancel.cancel();
    }
    Ok(())
}

// ------------------------------------------------------------------------- staff

/// Staff sign-in at the bank; the bank's teller is a clerk here.
#[tauri::command]
pub async fn staff_sign_in(
    state: State<'_, AppState>,
    staff_id: String,
    password: String,
) -> Result<StaffSession, AppError> {
    let bank = state.flows.bank(&state).await?;
    let staff_id = staff_id.trim().to_owned();
    let answer = bank
        .post(
            "/v1/staff/login",
            None,
            &json!({"username": staff_id, "password": password}),
        )
        .await
        .map_err(|error| match error {
            BankError::Refused { status: 401, .. } => {
                tracing::warn!(target: "companion::bank", "staff sign-in refused");
                AppError::StaffAuthFailed("staff ID or password not accepted".into())
            }
            other => other.into(),
        })?;
    let role = match answer["role"].as_str() {
        Some("teller") => StaffRole::Clerk,
        Some("operator") => StaffRole::Operator,
        other => {
            return Err(AppError::StaffNotAllowed(format!(
                "the bank's {} role has no staff screen in the app",
                other.unwrap_or("unknown")
            )));
        }
    };
    let token = BearerToken::new(answer["token"].as_str().unwrap_or_default());
    let display_name = embedded::SANDBOX_STAFF
        .iter()
        .find(|s| s.staff_id == staff_id && state.settings.settings().bank_url.is_empty())
        .map_or_else(|| staff_id.clone(), |s| s.display_name.to_owned());
    let session = StaffSession {
        staff_id,
        display_name,
        role,
    };
    tracing::info!(target: "companion::bank", "staff {} signed in ({:?})", session.staff_id, role);
    state.flows.tables().staff = Some(StaffEntry {
        session: session.clone(),
        token,
        bank,
    });
    Ok(session)
}

/// Staff sign-out.
#[tauri::command]
pub async fn staff_sign_out(state: State<'_, AppState>) -> Result<(), AppError> {
    if let Some(staff) = state.flows.tables().staff.take() {
        tracing::info!(target: "companion::bank", "staff {} signed out", staff.session.staff_id);
    }
    Ok(())
}

async fn staff_result(
    state: &AppState,
    action: StaffAction,
    device_id: &str,
    detail: String,
) -> Result<StaffActionResult, AppError> {
    if let Ok(slot) = state.flows.slot(device_id) {
        refresh_status(&slot).await;
    }
    push_devices(state);
    Ok(StaffActionResult {
        action,
        device_id: device_id.to_owned(),
        detail,
        device: status_of(state, device_id).await?,
    })
}

/// Staff: initialise a device at the bank (key-block protection key, KCV compared).
#[tauri::command]
pub async fn staff_initialise(
    state: State<'_, AppState>,
    device_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<StaffActionResult, AppError> {
    let (_, token, bank) = state.flows.staff()?;
    let slot = state.flows.slot(&device_id)?;
    let _op = Operation::begin(&slot, on_progress.clone());
    let mut sink = sink_for(&slot);
    let serial = {
        let mut session = slot.session.lock().await;
        core::initialise(&mut session, &bank, &token, &mut sink).await?
    };
    tracing::info!(target: "companion::bank", "{serial}: initialised; KCV matched");
    let _ = on_progress.send(DeviceProgress::Stage { stage: Stage::Done });
    staff_result(
        &state,
        StaffAction::Initialise,
        &device_id,
        "Key-block protection key installed; the bank matched its check value".into(),
    )
    .await
}

/// Staff: the customer chooses a PIN on the device (twice); the bank binds the device.
#[tauri::command]
pub async fn staff_enrol(
    state: State<'_, AppState>,
    device_id: String,
    customer_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<StaffActionResult, AppError> {
    let (_, token, bank) = state.flows.staff()?;
    let slot = state.flows.slot(&device_id)?;
    let customer_id = customer_id.trim().to_owned();
    let _op = Operation::begin(&slot, on_progress.clone());
    enrol_on(&state, &slot, &device_id, &bank, &token, &customer_id).await?;
    tracing::info!(target: "companion::bank", "{}: {customer_id} enrolled and bound", slot.serial);
    let _ = on_progress.send(DeviceProgress::Stage { stage: Stage::Done });
    staff_result(
        &state,
        StaffAction::Enrol,
        &device_id,
        format!("{customer_id} chose a PIN on the device; the bank bound the device"),
    )
    .await
}

/// The customer chooses a PIN on the device's keypad and the bank binds the device to them.
async fn enrol_on(
    state: &AppState,
    slot: &Arc<Slot>,
    device_id: &str,
    bank: &BankClient,
    teller: &BearerToken,
    customer_id: &str,
) -> Result<(), AppError> {
    let mut sink = sink_for(slot);
    {
        let mut session = slot.session.lock().await;
        core::enrol(
            &mut session,
            bank,
            teller,
            &slot.serial,
            customer_id,
            &mut sink,
        )
        .await?;
    }
    state.flows.set_customer(device_id, Some(customer_id));
    Ok(())
}

/// The device is no longer anyone's: its customer and this computer's pairing with it go.
fn forget_binding(state: &AppState, device_id: &str, serial: &str) {
    state.flows.set_customer(device_id, None);
    if let Some(keys) = state.flows.keystore_now(device_id) {
        let _ = keys.remove(serial);
    }
}

/// Staff: bind. The bank binds a device when the customer enrols on it, so this only
/// confirms a binding that exists.
#[tauri::command]
pub async fn staff_bind(
    state: State<'_, AppState>,
    device_id: String,
    customer_id: String,
) -> Result<StaffActionResult, AppError> {
    state.flows.staff()?;
    let bound = state.flows.tables().customers.get(&device_id).cloned();
    match bound {
        Some(bound) if bound.eq_ignore_ascii_case(customer_id.trim()) => {
            staff_result(
                &state,
                StaffAction::Bind,
                &device_id,
                format!("the device is bound to {bound}"),
            )
            .await
        }
        _ => Err(AppError::InvalidInput(
            "the bank binds a device to a customer when the customer enrols on it: use Enrol"
                .into(),
        )),
    }
}

async fn serial_of(state: &AppState, device_id: &str) -> Result<String, AppError> {
    if let Ok(slot) = state.flows.slot(device_id) {
        return Ok(slot.serial.clone());
    }
    let status = status_of(state, device_id).await?;
    if status.serial.is_empty() {
        Err(AppError::DeviceDisconnected(format!(
            "connect {device_id} first, so the app learns its serial"
        )))
    } else {
        Ok(status.serial)
    }
}

async fn revoke_device(
    state: &AppState,
    device_id: &str,
    token: &BearerToken,
    bank: &BankClient,
) -> Result<String, AppError> {
    let serial = serial_of(state, device_id).await?;
    let mut quiet = |_: FlowEvent| {};
    match state.flows.slot(device_id) {
        Ok(slot) => {
            let mut session = slot.session.lock().await;
            core::revoke(
                Some(&mut session),
                bank,
                token,
                &serial,
                "revoked by staff",
                &mut quiet,
            )
            .await?;
        }
        Err(_) => {
            core::revoke(None, bank, token, &serial, "revoked by staff", &mut quiet).await?;
        }
    }
    forget_binding(state, device_id, &serial);
    tracing::warn!(target: "companion::bank", "{serial} revoked");
    Ok(serial)
}

/// Staff: revoke a device (lost or stolen); a connected device gets the bank's wipe now.
#[tauri::command]
pub async fn staff_revoke(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<StaffActionResult, AppError> {
    let (_, token, bank) = state.flows.staff()?;
    let serial = revoke_device(&state, &device_id, &token, &bank).await?;
    staff_result(
        &state,
        StaffAction::Revoke,
        &device_id,
        format!("{serial} revoked; logins refused"),
    )
    .await
}

/// Staff: moves the customer to another device: the old one is revoked, the customer
/// chooses a PIN on the new one (its keypad), which the bank binds.
#[tauri::command]
pub async fn staff_rebind(
    state: State<'_, AppState>,
    from_device_id: String,
    to_device_id: String,
) -> Result<StaffActionResult, AppError> {
    let (_, token, bank) = state.flows.staff()?;
    if from_device_id == to_device_id {
        return Err(AppError::InvalidInput(
            "choose two different devices".into(),
        ));
    }
    let customer_id = state
        .flows
        .tables()
        .customers
        .get(&from_device_id)
        .cloned()
        .ok_or_else(|| AppError::NotBound(format!("{from_device_id} has no customer")))?;
    let to = state.flows.slot(&to_device_id)?;
    let from_serial = revoke_device(&state, &from_device_id, &token, &bank).await?;
    enrol_on(&state, &to, &to_device_id, &bank, &token, &customer_id).await?;
    tracing::info!(target: "companion::bank", "{customer_id} moved from {from_serial} to {}", to.serial);
    staff_result(
        &state,
        StaffAction::Rebind,
        &to_device_id,
        format!(
            "{customer_id} moved to {}; {from_serial} revoked",
            to.serial
        ),
    )
    .await
}

/// Operator: resets a tampered device with an operator-signed token (back to manufactured).
#[tauri::command]
pub async fn staff_tamper_reset(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<StaffActionResult, AppError> {
    let (staff, token, bank) = state.flows.staff()?;
    if staff.role != StaffRole::Operator {
        return Err(AppError::StaffNotAllowed(
            "this needs an operator with tamper-reset authority".into(),
        ));
    }
    let slot = state.flows.slot(&device_id)?;
    let mut quiet = |_: FlowEvent| {};
    {
        let mut session = slot.session.lock().await;
        core::operator_reset(&mut session, &bank, &token, &slot.serial, &mut quiet).await?;
    }
    forget_binding(&state, &device_id, &slot.serial);
    tracing::info!(
        target: "companion::bank",
        "{}: tamper reset with an operator token for {}",
        slot.serial,
        staff.staff_id
    );
    staff_result(
        &state,
        StaffAction::TamperReset,
        &device_id,
        "Tamper state cleared with an operator-signed token; initialise the device again".into(),
    )
    .await
}

// ------------------------------------------------------------------------- QA

#[cfg(feature = "sandbox")]
fn mock(state: &AppState, device_id: &str) -> Result<Arc<MockDevice>, AppError> {
    state.flows.mocks.by_id(device_id).ok_or_else(|| {
        if state
            .devices
            .devices()
            .iter()
            .any(|d| d.id().to_string() == device_id)
        {
            AppError::InvalidInput(
                "only a mock device has an on-screen keypad and QA controls".into(),
            )
        } else {
            AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed"))
        }
    })
}

/// QA: starts another mock PIN pad (manufactured: staff initialise and enrol it).
#[cfg(feature = "sandbox")]
#[tauri::command]
pub async fn qa_mock_start(
    state: State<'_, AppState>,
    name: String,
) -> Result<DeviceStatus, AppError> {
    let embedded = state.flows.embedded().await?;
    let (serial, n) = state.flows.mocks.next_serial();
    let name = match name.trim() {
        "" => format!("PinPad Sim {n}"),
        given => given.chars().take(40).collect(),
    };
    let device = embedded
        .start_device(&state.flows.mocks, &serial, &name)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    tracing::info!(target: "pinbridge_app::qa", "mock device {} started", device.serial);
    state.devices.refresh().await;
    status_of(&state, &device.device_id()).await
}

/// QA: stops a mock PIN pad.
#[cfg(feature = "sandbox")]
#[tauri::command]
pub async fn qa_mock_stop(state: State<'_, AppState>, device_id: String) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    if let Some(slot) = state.flows.tables().slots.remove(&device_id) {
        slot.cancel.cancel();
    }
    state.flows.mocks.remove(&device_id);
    lock(&state.flows.seen).remove(&device_id);
    tracing::info!(target: "pinbridge_app::qa", "mock device {} stopped", device.serial);
    state.devices.refresh().await;
    Ok(())
}

/// QA: a key on the mock device's keypad. The key goes straight to the device; the log
/// never names a digit.
#[cfg(feature = "sandbox")]
#[tauri::command]
pub async fn qa_key_press(
    state: State<'_, AppState>,
    device_id: String,
    key: String,
    prompt_id: Option<u64>,
) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    let key = Key::parse(&key)
        .ok_or_else(|| AppError::InvalidInput("a key is 0-9, ok, cancel or clear".into()))?;
    if embedded::press(&device, key, prompt_id) {
        tracing::info!(target: "pinbridge_app::qa", "{}: key pressed ({})", device.serial, key.public_name());
    } else {
        tracing::info!(target: "pinbridge_app::qa", "{}: key dropped ({}): its prompt is no longer on the device", device.serial, key.public_name());
    }
    Ok(())
}

/// QA: trips the mock device's tamper switch (it wipes its keys).
#[cfg(feature = "sandbox")]
#[tauri::command]
pub async fn qa_trip_tamper(state: State<'_, AppState>, device_id: String) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    embedded::trip_tamper(&device);
    tracing::error!(target: "companion::devices", "{}: tamper switch tripped; keys wiped", device.serial);
    Ok(())
}

/// QA: arms a fault on the mock device's link.
#[cfg(feature = "sandbox")]
#[tauri::command]
pub async fn qa_inject_fault(
    state: State<'_, AppState>,
    device_id: String,
    fault: Fault,
) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    embedded::apply_fault(&device, &fault);
    tracing::warn!(target: "pinbridge_app::qa", "{}: fault armed: {fault:?}", device.serial);
    Ok(())
}

/// QA: clears every fault.
#[cfg(feature = "sandbox")]
#[tauri::command]
pub async fn qa_clear_faults(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    embedded::clear_faults(&device);
    tracing::info!(target: "pinbridge_app::qa", "{}: faults cleared", device.serial);
    Ok(())
}

// ------------------------------------------------------------------------- confirmations

/// `confirmation_approve`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmationResult {
    /// The request.
    pub request_id: String,
    /// As the device decided.
    pub outcome: Outcome,
    /// As the device reports it.
    pub indicator: Indicator,
    /// Why.
    pub reason: OutcomeReason,
    /// The device's display at the end.
    pub device_lines: Vec<String>,
}

/// QA: the sandbox's web-shop terminal creates a payment that needs confirmation on the device,
/// for the customer the mock device is bound to. The bank pushes it on the customer's event
/// stream; a logged-in app receives it from there (at the next login otherwise).
#[cfg(feature = "sandbox")]
#[tauri::command]
pub async fn qa_push_confirmation(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<ConfirmationRequest, AppError> {
    let device = mock(&state, &device_id)?;
    let embedded = state.flows.embedded().await?;
    let customer_id = state
        .flows
        .tables()
        .customers
        .get(&device_id)
        .cloned()
        .ok_or_else(|| AppError::NotBound(format!("{} has no customer", device.serial)))?;
    let account = embedded::SANDBOX_CUSTOMERS
        .iter()
        .find(|c| c.customer_id == customer_id)
        .map(|c| c.account)
        .ok_or_else(|| AppError::NotFound(format!("no sandbox account for {customer_id}")))?;
    let client = embedded.client()?;
    let (terminal, password) = embedded::SANDBOX_TERMINAL;
    let token = client.staff_login(terminal, password).await?;
    let n = state.flows.next_id.fetch_add(1, Ordering::Relaxed);
    let order_id = format!("ORD-{}", 7800 + n);
    let amount_minor = 1000 + (n % 9) * 1150;
    let (payee_name, payee_account) = ("JD.com", "6222080011223344");
    let mut key = [0u8; 8];
    getrandom::fill(&mut key).map_err(|e| AppError::Internal(e.to_string()))?;
    let view = client
        .post(
            "/v1/confirmations",
            Some(&token),
            &json!({
                "customer_id": customer_id,
                "payer_account": account,
                "payee_account": payee_account,
                "payee_name": payee_name,
                "amount_minor": amount_minor,
                "currency": "CNY",
                "reference": order_id,
                "idempotency_key": hex::encode(key),
            }),
        )
        .await?;
    // The bank sends it to the customer's event stream, which the logged-in app listens to
    // (crate::confirmations::watch_bank): no shortcut into the inbox here.
    let request = request_from_bank(&view, now_rfc3339())?;
    tracing::info!(
        target: "pinbridge_app::qa",
        "{}: the sandbox's web-shop terminal created request {}",
        device.serial,
        request.order_id
    );
    Ok(request)
}

/// A pushed request, shown on the device, approved (or not) there and signed with the device
/// key; the bank checks the signature.
#[tauri::command]
pub async fn confirmation_approve(
    state: State<'_, AppState>,
    request_id: String,
    device_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<ConfirmationResult, AppError> {
    let flows = &state.flows;
    let raw = state
        .confirmations
        .bank_view(&request_id)
        .ok_or_else(|| AppError::NotFound(format!("no pending request {request_id}")))?;
    let (login, bank) = flows
        .tables()
        .logins
        .values()
        .find(|l| l.device_id == device_id)
        .map(|l| (l.login.clone(), l.bank.clone()))
        .ok_or_else(|| {
            AppError::NotLoggedIn("log in with this device first, then confirm".into())
        })?;
    let slot = flows.slot(&device_id)?;
    let keys = flows.keystore_for(&device_id).await?;
    let mut host = keys.find(&slot.serial)?.ok_or_else(|| {
        AppError::NotPaired(format!("{} is not paired with this computer", slot.serial))
    })?;
    let _op = Operation::begin(&slot, on_progress.clone());
    let mut sink = sink_for(&slot);
    let result = {
        let mut session = slot.session.lock().await;
        core::confirm_one(&mut session, &bank, &login, &mut host, &raw, &mut sink).await
    };
    keys.save(&host)?;
    let mock = flows.mocks.by_id(&device_id);
    let lines = |fallback: Vec<String>| match &mock {
        Some(mock) => embedded::mock_state(mock).display,
        None => fallback,
    };
    let (outcome, indicator, reason, fallback) = match result {
        Ok(answer) => {
            let status = answer["status"].as_str().unwrap_or("unknown").to_owned();
            if status == "approved" {
                (
                    Outcome::Signed,
                    Indicator::Safe,
                    OutcomeReason::None,
                    status,
                )
            } else {
                (
                    Outcome::Declined,
                    Indicator::Safe,
                    OutcomeReason::None,
                    status,
                )
            }
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
        Err(error) => return Err(error.into()),
    };
    state.confirmations.remove(&request_id);
    tracing::info!(target: "companion::bank", "request {request_id}: {outcome:?}");
    let _ = on_progress.send(DeviceProgress::Stage { stage: Stage::Done });
    push_devices(&state);
    Ok(ConfirmationResult {
        request_id,
        outcome,
        indicator,
        reason,
        device_lines: lines(vec![fallback]),
    })
}
