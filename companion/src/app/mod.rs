//! The desktop app's core, without a window: device sessions, pairing, login, payment and
//! confirmation state, staff actions, payment validation and error classification, every bank
//! call through the typed [`BankClient`]. The Tauri shell (`src-tauri`) wraps each operation
//! in a command and forwards [`CoreEvent`]s and [`DeviceProgress`] to the windows; the tests
//! drive the same operations as plain async calls.
//!
//! Sandbox parts (the embedded sandbox bank, in-process mock PIN pads) are not named here: the
//! shell's sandbox flavour hands them in through [`MockPads`] and [`EmbeddedStatus::Ready`].

pub mod confirmations;
mod error;
mod guard;
mod history;
mod lifecycle;
mod lifecycle_types;
mod ops;
mod owner;
pub mod profile;
mod reach;
mod recovery;
mod resume;
pub mod settings;
mod staff;
pub mod types;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use error::AppError;
pub use history::{
    HISTORY_PAGE, HistoryOutcome, PaymentHistory, PaymentOrigin, PaymentRecord, fetch_history,
    mask_account,
};
pub use lifecycle_types::*;
pub use owner::{PinChangeResult, PinChangeVerdict, WipeResult};
pub use reach::BankReach;
pub use resume::LastDevice;
pub use types::*;

use crate::bank::{BankClient, BankSettings, BearerToken};
use crate::devices::{DeviceEvent, DeviceManager};
use crate::flows::{self as core, BankSession, FlowError, FlowEvent};
use crate::keystore::{KeyStore, PairedHost};
use crate::session::{CancelHandle, Session};
use confirmations::{BankWatch, ConfirmationInbox};
use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;

/// Where the core's app-wide events go (the shell: every subscribed window).
pub type Emit = Arc<dyn Fn(CoreEvent) + Send + Sync>;
/// Where one long operation's progress goes (the shell: the command's `onProgress` channel).
pub type ProgressSink = Arc<dyn Fn(DeviceProgress) + Send + Sync>;
/// The bank to use now (settings can change while the app runs); an empty URL means the
/// embedded sandbox bank.
pub type BankSource = Arc<dyn Fn() -> BankSettings + Send + Sync>;

/// What an in-process mock PIN pad reports about itself, read in process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockState {
    /// Its serial.
    pub serial: String,
    /// Its display name.
    pub name: String,
    /// Where it is in its life.
    pub lifecycle: Lifecycle,
    /// The sticky tamper flag.
    pub tampered: bool,
    /// Any lock.
    pub locked: bool,
    /// Its light.
    pub indicator: Indicator,
    /// Firmware identity.
    pub firmware: Firmware,
    /// The display.
    pub display: Vec<String>,
    /// The prompt on the display waiting for a key, if any.
    pub prompt_id: Option<u64>,
}

/// The sandbox flavour's in-process PIN pads, as the core sees them (the shell's
/// `embedded::MockDevices` implements it; the production build has none).
pub trait MockPads: Send + Sync + std::fmt::Debug {
    /// The state of the mock device with this id; `None`: not a mock device.
    fn state(&self, device_id: &str) -> Option<MockState>;
    /// The ids of every running mock device.
    fn device_ids(&self) -> Vec<String>;
    /// Marked changed whenever a mock device's display, light or state may have changed (or
    /// a device came or went): the core compares and pushes what did change.
    fn changes(&self) -> tokio::sync::watch::Receiver<()>;
}

/// The embedded sandbox bank, as the core uses it.
pub struct SandboxBank {
    /// A client for it.
    pub client: BankClient,
    /// This app's pairings with the mock PIN pads (kept with the sandbox's other files).
    pub pairings: KeyStore,
    /// Display names of the sandbox's staff ids.
    pub staff_names: Vec<(String, String)>,
    /// The CA that certifies the sandbox's mock PIN pads (trusted for them only).
    pub device_ca: Option<EcdsaVerifyingKey>,
    /// Keeps the bank running for as long as the core holds it.
    pub keep_alive: Arc<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for SandboxBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxBank")
            .field("url", &self.client.url())
            .field("pairings", &self.pairings.dir())
            .finish_non_exhaustive()
    }
}

/// The embedded default's state.
#[derive(Debug, Clone)]
pub enum EmbeddedStatus {
    /// Not started: a bank URL is configured (or the build has no sandbox).
    Off,
    /// Starting.
    Starting,
    /// Running.
    Ready(Arc<SandboxBank>),
    /// Did not start (why).
    Failed(String),
}

/// What the core is built from.
pub struct CoreConfig {
    /// Real devices' pairing keys (the shell chooses the store: the OS key store for the
    /// app; tests keep theirs in memory).
    pub keys: KeyStore,
    /// The bank settings in force.
    pub bank: BankSource,
    /// The embedded default's state at start.
    pub embedded: EmbeddedStatus,
    /// Where app-wide events go.
    pub emit: Emit,
    /// The device manager (every transport's PIN pads).
    pub devices: DeviceManager,
    /// The sandbox's mock PIN pads, if any.
    pub mocks: Option<Arc<dyn MockPads>>,
    /// Device-issuing CAs this installation trusts, for the genuine check at connect (empty:
    /// devices are reported "not verified"; the embedded sandbox adds its own for its mocks).
    pub device_cas: Vec<EcdsaVerifyingKey>,
}

impl std::fmt::Debug for CoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreConfig")
            .field("keys", &self.keys.dir())
            .finish_non_exhaustive()
    }
}

/// A device this app has a session with.
struct Slot {
    serial: String,
    firmware: Firmware,
    session: tokio::sync::Mutex<Session>,
    cancel: CancelHandle,
    /// The last GetStatus answer (real devices; mock devices are read in process).
    status: Mutex<Option<firmware_protocol::message::Status>>,
    /// The genuine check made at connect, and what failed.
    genuine: (Genuine, Vec<String>),
    /// The running operation's progress sink.
    progress: Mutex<Option<ProgressSink>>,
    /// A delay on the link left answers queued behind it (the device's late replies to
    /// retransmissions): the next operation opens a fresh transport before it starts.
    stale: std::sync::atomic::AtomicBool,
}

impl Slot {
    fn send(&self, progress: DeviceProgress) {
        let sink = lock(&self.progress).clone();
        if let Some(sink) = sink {
            sink(progress);
        }
    }
}

/// Sets a slot's progress sink for one operation and clears it afterwards.
struct Operation {
    slot: Arc<Slot>,
}

impl Operation {
    fn begin(slot: &Arc<Slot>, sink: ProgressSink) -> Self {
        *lock(&slot.progress) = Some(sink);
        Operation { slot: slot.clone() }
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        *lock(&self.slot.progress) = None;
    }
}

/// The companion flows' events as the screens' progress, on the slot's running operation.
fn sink_for(slot: &Arc<Slot>) -> impl FnMut(FlowEvent) + Send + use<> {
    let slot = slot.clone();
    // PIN entry is the device waiting for the user too: the screens get that stage first.
    let mut waiting = false;
    move |event: FlowEvent| {
        // Into the log file (diagnostics' last flow events) before the screen sees it.
        crate::logfile::trace_flow_event(&event);
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

/// The app's state and operations, one per app.
pub struct AppCore {
    devices: DeviceManager,
    mocks: Option<Arc<dyn MockPads>>,
    device_cas: Vec<EcdsaVerifyingKey>,
    embedded: tokio::sync::watch::Sender<EmbeddedStatus>,
    keys: KeyStore,
    bank: BankSource,
    emit: Emit,
    confirmations: ConfirmationInbox,
    tables: Mutex<Tables>,
    next_id: AtomicU64,
    /// What the mock watcher saw last, per mock device.
    seen: Mutex<HashMap<String, MockState>>,
    /// Devices that had a session when they went away: device id -> serial.
    reconnecting: Mutex<HashMap<String, String>>,
    /// Bank commands for devices that were unplugged when the bank sent them.
    held: Mutex<lifecycle::Held>,
    /// The last device used, reconnected by itself when it is listed.
    last: resume::LastDeviceFile,
    /// Whether the bank answers, as last seen.
    reach: reach::ReachState,
}

impl std::fmt::Debug for AppCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCore")
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

impl AppCore {
    /// How the real devices' pairing keys are protected (diagnostics).
    pub fn pairing_protection(&self) -> crate::keystore::Protection {
        self.keys.protection()
    }

    /// What the pairing key store needs from the user: where the OS has no key store, a
    /// passphrase, asked for by the app's own screen (never a key file beside the data).
    pub fn key_store_need(&self) -> crate::keystore::PassphraseNeed {
        self.keys.passphrase_need()
    }

    /// The passphrase the user typed for the pairing key store: an existing store is opened
    /// with it now (a wrong one is refused and forgotten), a new one is sealed under it at the
    /// first pairing. Returns what the store still needs.
    pub fn key_store_unlock(
        &self,
        passphrase: String,
    ) -> Result<crate::keystore::PassphraseNeed, AppError> {
        self.keys
            .use_passphrase(zeroize::Zeroizing::new(passphrase))?;
        tracing::info!("pairing key store: passphrase given");
        self.push_devices();
        Ok(self.keys.passphrase_need())
    }

    /// A core with no sessions yet.
    pub fn new(config: CoreConfig) -> Self {
        AppCore {
            devices: config.devices,
            mocks: config.mocks,
            device_cas: config.device_cas,
            embedded: tokio::sync::watch::Sender::new(config.embedded),
            keys: config.keys,
            bank: config.bank,
            emit: config.emit,
            confirmations: ConfirmationInbox::default(),
            tables: Mutex::new(Tables::default()),
            next_id: AtomicU64::new(1),
            seen: Mutex::new(HashMap::new()),
            reconnecting: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            last: resume::LastDeviceFile::default(),
            reach: reach::ReachState::default(),
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        lock(&self.tables)
    }

    /// A new number for ids this app makes up (pairings, QA orders).
    pub fn next_number(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_number())
    }

    /// The device manager.
    pub fn devices(&self) -> &DeviceManager {
        &self.devices
    }

    /// The pushed confirmation requests.
    pub fn confirmations(&self) -> &ConfirmationInbox {
        &self.confirmations
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

    /// The customer a device is bound to, as far as this app learnt it.
    pub fn customer_of(&self, device_id: &str) -> Option<String> {
        self.tables().customers.get(device_id).cloned()
    }

    /// The embedded bank, once started (waits while it starts).
    pub async fn embedded(&self) -> Result<Arc<SandboxBank>, AppError> {
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
                "the embedded sandbox is not running (a bank URL is configured); QA mock devices need it",
            )),
        }
    }

    /// A client for the configured bank, or the embedded sandbox bank.
    async fn bank(&self) -> Result<BankClient, AppError> {
        let settings = (self.bank)();
        if settings.url.is_empty() {
            Ok(self.embedded().await?.client.clone())
        } else {
            Ok(BankClient::new(&settings)?)
        }
    }

    fn mock(&self, device_id: &str) -> Option<MockState> {
        self.mocks.as_ref().and_then(|m| m.state(device_id))
    }

    /// The key store for a device's pairing: the sandbox's own for mock devices, the app's
    /// for real ones.
    async fn keystore_for(&self, device_id: &str) -> Result<KeyStore, AppError> {
        if self.mock(device_id).is_some() {
            Ok(self.embedded().await?.pairings.clone())
        } else {
            Ok(self.keys.clone())
        }
    }

    fn keystore_now(&self, device_id: &str) -> Option<KeyStore> {
        if self.mock(device_id).is_some() {
            match &*self.embedded.borrow() {
                EmbeddedStatus::Ready(e) => Some(e.pairings.clone()),
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
            .ok_or_else(|| AppError::StaffAuthRequired("staff sign-in required"))
    }

    /// Adds what this app knows to the listed devices: session state, the device's own
    /// answers, pairing, customer; mock devices are read in process.
    pub fn describe(&self, mut list: Vec<DeviceStatus>) -> Vec<DeviceStatus> {
        let (slots, customers) = {
            let tables = self.tables();
            (tables.slots.clone(), tables.customers.clone())
        };
        for status in &mut list {
            let mock = self.mock(&status.device_id);
            if let Some(mock) = &mock {
                status.serial = mock.serial.clone();
                status.name = mock.name.clone();
                status.lifecycle = mock.lifecycle;
                status.tamper = if mock.tampered {
                    TamperState::Tampered
                } else {
                    TamperState::Clear
                };
                status.lock = if mock.locked {
                    LockState::Locked
                } else {
                    LockState::Unlocked
                };
                status.indicator = mock.indicator;
                status.firmware = mock.firmware.clone();
                status.mock = true;
            }
            if let Some(slot) = slots.get(&status.device_id) {
                status.connected = true;
                status.serial = slot.serial.clone();
                status.firmware = slot.firmware.clone();
                status.genuine = slot.genuine.0;
                status.genuine_failures = slot.genuine.1.clone();
                let reported = *lock(&slot.status);
                if let (Some(reported), None) = (reported, &mock) {
                    status.apply_reported(&reported);
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

    /// Every listed device as the screens show it, rescanned now.
    pub async fn device_list(&self) -> Vec<DeviceStatus> {
        self.describe(statuses(&self.devices.refresh().await))
    }

    /// The device list without a rescan.
    pub fn device_list_now(&self) -> Vec<DeviceStatus> {
        self.describe(statuses(&self.devices.devices()))
    }

    /// One device's status, rescanned now.
    pub async fn device_status(&self, device_id: &str) -> Result<DeviceStatus, AppError> {
        self.device_list()
            .await
            .into_iter()
            .find(|d| d.device_id == device_id)
            .ok_or_else(|| AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed")))
    }

    /// Pushes the device list to the windows (after a change the manager does not see).
    pub fn push_devices(&self) {
        (self.emit)(CoreEvent::Devices {
            devices: self.device_list_now(),
        });
    }

    /// Keeps the device list current for as long as the app runs: every change the device
    /// manager reports (hotplug, rescans) is logged and the new list pushed.
    pub async fn watch_devices(self: Arc<Self>, poll_interval: Duration) {
        let mut changes = self.devices.subscribe();
        let _watch = self.devices.watch(poll_interval).await;
        for info in self.devices.devices() {
            self.resume_if_remembered(&info);
        }
        loop {
            match changes.recv().await {
                Ok(event) => {
                    let words = describe(&event);
                    if matches!(event, DeviceEvent::SourceFailed { .. }) {
                        tracing::warn!(target: "companion::devices", "{words}");
                    } else {
                        tracing::info!(target: "companion::devices", "{words}");
                    }
                    self.follow_link(&event).await;
                    if let DeviceEvent::Arrived(info) | DeviceEvent::Changed(info) = &event {
                        self.resume_if_remembered(info);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
            self.push_devices();
        }
    }

    /// Hotplug drives the link of connected devices: an unplugged device's session is closed
    /// and remembered ("reconnecting"); when a device with its serial is listed again (the
    /// same or another port), a new session is opened and the pairing and customer session go
    /// on ("reconnected"), or, if the device restarted and forgot the session keys, the
    /// customer is told to log in again ("sessionLost").
    async fn follow_link(&self, event: &DeviceEvent) {
        match event {
            DeviceEvent::Left(id) => {
                let device_id = id.to_string();
                let Some(slot) = self.tables().slots.remove(&device_id) else {
                    return;
                };
                slot.cancel.cancel();
                lock(&self.reconnecting).insert(device_id.clone(), slot.serial.clone());
                tracing::warn!(target: "companion::devices", "{} unplugged; reconnecting when it is back", slot.serial);
                (self.emit)(CoreEvent::DeviceLink {
                    device_id,
                    link: LinkState::Reconnecting,
                    message: format!(
                        "{} was unplugged; plug it in again to continue (nothing is paid without it)",
                        slot.serial
                    ),
                });
            }
            DeviceEvent::Arrived(info) | DeviceEvent::Changed(info) => {
                let new_id = info.id().to_string();
                let old_id = {
                    let waiting = lock(&self.reconnecting);
                    waiting
                        .iter()
                        .find(|(id, serial)| {
                            **id == new_id || info.identity.serial.as_deref() == Some(serial)
                        })
                        .map(|(id, _)| id.clone())
                };
                if let Some(old_id) = old_id {
                    self.reconnect(&old_id, &new_id).await;
                }
            }
            DeviceEvent::SourceFailed { .. } => {}
        }
    }

    async fn reconnect(&self, old_id: &str, new_id: &str) {
        let Some(serial) = lock(&self.reconnecting).get(old_id).cloned() else {
            return;
        };
        let remembered = self.last_device();
        // A half-enumerated device fails here; the next change event tries again.
        let status = match self.connect(new_id).await {
            Ok(status) => status,
            Err(error) => {
                tracing::info!(target: "companion::devices", "{serial}: not back yet ({error})");
                return;
            }
        };
        if status.serial != serial {
            // Another device on that port: not the one to come back to.
            self.disconnect(new_id);
            self.restore_last_device(remembered);
            return;
        }
        lock(&self.reconnecting).remove(old_id);
        // What the bank commanded while it was away comes first.
        self.relay_held(new_id, &serial).await;
        let session_active = self
            .tables()
            .slots
            .get(new_id)
            .and_then(|slot| *lock(&slot.status))
            .is_some_and(|s| s.session_active);
        let lost = {
            let mut tables = self.tables();
            if let Some(customer) = tables.customers.remove(old_id) {
                tables.customers.insert(new_id.to_owned(), customer);
            }
            let mut lost = Vec::new();
            for (session_id, login) in tables.logins.iter_mut() {
                if login.device_id == old_id {
                    login.device_id = new_id.to_owned();
                    if !session_active {
                        lost.push(session_id.clone());
                    }
                }
            }
            for session_id in &lost {
                tables.logins.remove(session_id);
                tables.payments.retain(|_, p| p.session_id != *session_id);
            }
            !lost.is_empty()
        };
        let (link, message) = if lost {
            tracing::warn!(target: "companion::devices", "{serial} is back but restarted: the customer session is lost");
            (
                LinkState::SessionLost,
                format!("{serial} is back but restarted and forgot the session: log in again"),
            )
        } else {
            tracing::info!(target: "companion::devices", "{serial} is back; the session goes on");
            (
                LinkState::Reconnected,
                format!("{serial} is back; you can go on"),
            )
        };
        (self.emit)(CoreEvent::DeviceLink {
            device_id: new_id.to_owned(),
            link,
            message,
        });
        self.push_devices();
    }

    /// Pushes mock devices' display, light and state changes as they happen, for as long as
    /// the app runs: woken by [`MockPads::changes`], never on a timer.
    pub async fn watch_mocks(self: Arc<Self>) {
        let Some(mocks) = self.mocks.clone() else {
            return;
        };
        let mut changes = mocks.changes();
        loop {
            changes.borrow_and_update();
            if self.compare_mocks(mocks.as_ref()) {
                self.push_devices();
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
    }

    /// Compares every mock device with what was seen last: display changes go to the app
    /// event channel and the running operation's progress; returns `true` when the state
    /// (indicator, lifecycle, tamper, lock) or the set of devices changed.
    fn compare_mocks(&self, mocks: &dyn MockPads) -> bool {
        let mut list_changed = false;
        let slots = self.tables().slots.clone();
        let ids = mocks.device_ids();
        lock(&self.seen).retain(|id, _| {
            let keep = ids.contains(id);
            list_changed |= !keep;
            keep
        });
        for device_id in ids {
            let Some(now) = mocks.state(&device_id) else {
                continue;
            };
            let previous = lock(&self.seen).insert(device_id.clone(), now.clone());
            let (display_changed, state_changed, indicator_changed) = match &previous {
                None => (true, true, true),
                Some(old) => (
                    old.display != now.display || old.prompt_id != now.prompt_id,
                    old.lifecycle != now.lifecycle
                        || old.tampered != now.tampered
                        || old.locked != now.locked
                        || old.indicator != now.indicator,
                    old.indicator != now.indicator,
                ),
            };
            let slot = slots.get(&device_id);
            if display_changed {
                (self.emit)(CoreEvent::DeviceDisplay {
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
                    indicator: now.indicator,
                });
            }
            list_changed |= state_changed;
        }
        list_changed
    }

    /// Forgets a device that is gone for good (a stopped mock device): its session ends.
    pub fn forget_device(&self, device_id: &str) {
        if let Some(slot) = self.tables().slots.remove(device_id) {
            slot.cancel.cancel();
        }
        lock(&self.seen).remove(device_id);
    }
}
