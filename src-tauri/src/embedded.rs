//! The embedded default and QA mode: an in-process sandbox bank and mock PIN pads.
//!
//! This module is the only place in the app that names `bank-sandbox` and `device-sim` (a
//! composition root, like the CLI's `pinbridge demo`). With no bank configured
//! (`settings.bankUrl` empty) the shell starts, at setup:
//!
//! - a sandbox bank serving its HTTP API on 127.0.0.1 (an ephemeral port) over a SQLite file in
//!   the sandbox's state directory under the app's data directory (`embedded/sandbox/`, kept
//!   across restarts with the device CA, the mock PIN pads' own state and their pairings with
//!   this app: see [`SandboxFiles`]), seeded at the first start like the UI's MockBackend
//!   sandbox: customers `C-1001` Li Wei and `C-1002` Wang Fang, staff `op-01` (operator) and
//!   `clerk-01` (the bank's teller role, the contract's `clerk`);
//! - one mock PIN pad `PB-SIM-0001`, manufactured for that bank, served over the sim link on
//!   127.0.0.1, then initialised and enrolled for `C-1001` by the shell itself. The sandbox
//!   PIN `123456` is chosen on the mock device by a scripted keypad during that start-up
//!   enrolment only (the PIN is typed on the device side and never leaves it); afterwards the
//!   keypad is the user's (the on-screen keypad, `qa_key_press`). The device is not paired
//!   at the first start; a restart finds it as it was left (bound, paired, its counters and
//!   PIN), as a real PIN pad is after the computer restarts.
//!
//! The PIN pads are listed by the companion's [`DeviceManager`](companion::devices::DeviceManager)
//! through [`MockDevices`], a device source of kind in-process (`in-process:PB-SIM-0001`), and
//! opened over the same sim link as a `pinpad-sim` process, so every flow runs exactly as it
//! would against a real device.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bank_sandbox::bank::{Bank, BankConfig, Role};
use companion::app::{
    AppCore, EmbeddedStatus, Fault, Firmware, Indicator, Lifecycle, MockPads, MockState,
    SandboxBank,
};
use companion::bank::{BankClient, BankSettings};
use companion::devices::{DeviceInfo, DeviceSource, DeviceState};
use companion::flows::{self, FlowEvent};
use companion::keystore::secrets::SecretStore;
use companion::keystore::{KeyStore, KeyStoreError};
use companion::session::Session;
use companion::transport::sim::SimTransport;
use companion::transport::{DeviceIdentity, Transport, TransportError, TransportKind};
use device_sim::certificate::CaKey;
use device_sim::device::{
    Device, FIRMWARE_VERSION, Language as DisplayLanguage, Manufacture, firmware_image_hash,
};
use device_sim::hardware::{Clock, KeyPress, SecureStore, VirtualHardware, write_atomically};
use device_sim::server::ServedDevice;
use device_sim::sim::{Faults, SimCore, SimHandle};
use firmware_protocol::link::Mtu;
use firmware_protocol::message::{
    Indicator as DeviceIndicator, Lifecycle as DeviceLifecycle, LockState as DeviceLock,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::{oneshot, watch};

/// The serial of the mock PIN pad the embedded default starts with.
pub const SANDBOX_SERIAL: &str = "PB-SIM-0001";
/// Its display name (the MockBackend's name for it).
pub const SANDBOX_DEVICE_NAME: &str = "PinPad Sim 1";
/// The customer it is bound to.
pub const SANDBOX_CUSTOMER: &str = "C-1001";

/// A sandbox customer: id, name, account (also the PIN account number).
#[derive(Clone, Copy, Debug)]
pub struct SandboxCustomer {
    /// Customer id at the bank.
    pub customer_id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// The one current account (CNY).
    pub account: &'static str,
}

/// The sandbox customers (ui/src/api/mock.ts `SANDBOX.customers`, accounts without spaces).
pub const SANDBOX_CUSTOMERS: &[SandboxCustomer] = &[
    SandboxCustomer {
        customer_id: "C-1001",
        name: "Li Wei",
        account: "6222021000001234",
    },
    SandboxCustomer {
        customer_id: "C-1002",
        name: "Wang Fang",
        account: "6222021000005678",
    },
];

/// A sandbox staff account: id, password (public: sandbox only), display name, bank role.
#[derive(Clone, Copy, Debug)]
pub struct SandboxStaff {
    /// Sign-in name.
    pub staff_id: &'static str,
    /// Password (sandbox only; public in ui/README.md).
    pub password: &'static str,
    /// Display name.
    pub display_name: &'static str,
    /// The bank's role.
    pub role: Role,
}

/// The sandbox staff (mock.ts `SANDBOX.staff`); `clerk-01` is a teller at the bank.
pub const SANDBOX_STAFF: &[SandboxStaff] = &[
    SandboxStaff {
        staff_id: "op-01",
        password: "operator-pass",
        display_name: "Zhang Min",
        role: Role::Operator,
    },
    SandboxStaff {
        staff_id: "clerk-01",
        password: "clerk-pass",
        display_name: "Chen Jie",
        role: Role::Teller,
    },
];

/// The web shop's terminal that pushes confirmation requests in QA (not a staff screen login).
pub const SANDBOX_TERMINAL: (&str, &str) = ("shop-terminal", "terminal-pass");

/// The sandbox customers' opening balance: 10 000.00 CNY.
const OPENING_BALANCE_MINOR: i64 = 1_000_000;
/// The PIN the start-up enrolment chooses for `C-1001` on the mock keypad (public: sandbox).
const SANDBOX_PIN: &str = "123456";

/// Why the embedded default could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// A part would not start.
    #[error("the embedded {what} did not start: {reason}")]
    Start {
        /// Which part.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The start-up provisioning of the sandbox device failed.
    #[error("the sandbox PIN pad could not be provisioned: {0}")]
    Provision(String),
}

fn start_error(what: &'static str) -> impl Fn(String) -> EmbeddedError {
    move |reason| EmbeddedError::Start { what, reason }
}

/// One in-process mock PIN pad, served over the sim link on loopback.
pub struct MockDevice {
    /// Serial (also its address in the device id).
    pub serial: String,
    /// Display name.
    pub name: String,
    /// The sim link address.
    pub address: SocketAddr,
    /// Keypad, tamper switch, faults, display.
    pub handle: SimHandle,
    _served: ServedDevice,
    /// Signals [`MockDevices`]' change channel when the device's display or state changed.
    _watcher: Watcher,
}

/// A task that stops when dropped.
struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for MockDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockDevice")
            .field("serial", &self.serial)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl MockDevice {
    /// The companion's device id for it (`in-process:PB-SIM-0001`).
    pub fn device_id(&self) -> String {
        format!("{}:{}", TransportKind::InProcess.short_name(), self.serial)
    }
}

/// The mock PIN pads running in this process: a device source for the companion's manager
/// (kind in-process), the core's view of them ([`MockPads`]) and the QA controls. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct MockDevices {
    devices: Arc<Mutex<Vec<Arc<MockDevice>>>>,
    /// Marked changed when a device's display or state changed, or a device came or went.
    changes: Arc<watch::Sender<()>>,
    /// The mock PIN pads' display language: the app's, so a customer who reads the app in
    /// Chinese reads the PIN pad in Chinese (a real PIN pad has its own setting).
    display_language: Arc<Mutex<DisplayLanguage>>,
}

impl Default for MockDevices {
    fn default() -> Self {
        MockDevices {
            devices: Arc::default(),
            changes: Arc::new(watch::Sender::new(())),
            display_language: Arc::default(),
        }
    }
}

/// The mock PIN pad's display language for the app's language.
pub fn display_language(language: companion::app::settings::Language) -> DisplayLanguage {
    match language {
        companion::app::settings::Language::En => DisplayLanguage::En,
        companion::app::settings::Language::ZhCn => DisplayLanguage::ZhCn,
    }
}

impl MockDevices {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<MockDevice>>> {
        // Devices are added and removed whole; a poisoned list is still a valid list.
        self.devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the display language of every mock PIN pad, now and started later (each through
    /// its own settings menu, as the language is the device's setting).
    pub fn set_display_language(&self, language: DisplayLanguage) {
        *self
            .display_language
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = language;
        for device in self.all() {
            if let Err(error) = device.handle.set_display_language(language) {
                tracing::warn!("mock PIN pad {}: display language: {error}", device.serial);
            }
        }
        self.changes.send_replace(());
    }

    fn display_language(&self) -> DisplayLanguage {
        *self
            .display_language
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every running mock device.
    pub fn all(&self) -> Vec<Arc<MockDevice>> {
        self.lock().clone()
    }

    /// The mock device with this device id.
    pub fn by_id(&self, device_id: &str) -> Option<Arc<MockDevice>> {
        self.lock()
            .iter()
            .find(|d| d.device_id() == device_id)
            .cloned()
    }

    fn add(&self, device: MockDevice) -> Arc<MockDevice> {
        let device = Arc::new(device);
        self.lock().push(device.clone());
        self.changes.send_replace(());
        device
    }

    /// Stops and removes a mock device; `false` if there is none with that id.
    pub fn remove(&self, device_id: &str) -> bool {
        let removed = {
            let mut devices = self.lock();
            let before = devices.len();
            devices.retain(|d| d.device_id() != device_id);
            devices.len() != before
        };
        self.changes.send_replace(());
        removed
    }

    /// Watches one device: the simulator signals each time its core ran (a packet, a tick);
    /// what the screens see (display, prompt, light, state) is compared and only a change
    /// marks [`MockDevices`]' channel, so the core wakes on changes only.
    fn watch(&self, handle: SimHandle) -> Watcher {
        let changes = self.changes.clone();
        Watcher(tokio::spawn(async move {
            let mut activity = handle.activity();
            let mut last = None;
            loop {
                let view = handle.view();
                let now = (view.display, view.state);
                if last.as_ref() != Some(&now) {
                    last = Some(now);
                    changes.send_replace(());
                }
                if activity.changed().await.is_err() {
                    break;
                }
            }
        }))
    }

    /// The next free `PB-SIM-NNNN` serial.
    pub fn next_serial(&self) -> (String, usize) {
        let devices = self.lock();
        let taken = |n: usize| {
            let serial = format!("PB-SIM-{n:04}");
            devices.iter().any(|d| d.serial == serial)
        };
        let n = (1..).find(|&n| !taken(n)).unwrap_or(1);
        (format!("PB-SIM-{n:04}"), n)
    }
}

#[async_trait]
impl DeviceSource for MockDevices {
    fn kind(&self) -> TransportKind {
        TransportKind::InProcess
    }

    async fn scan(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        Ok(self
            .all()
            .iter()
            .map(|d| {
                let mut identity = DeviceIdentity::new(TransportKind::InProcess, d.serial.clone());
                identity.serial = Some(d.serial.clone());
                identity.name = Some(d.name.clone());
                DeviceInfo::new(identity, DeviceState::Available)
            })
            .collect())
    }

    async fn open(&self, device: &DeviceInfo) -> Result<Box<dyn Transport>, TransportError> {
        let found = self
            .all()
            .into_iter()
            .find(|d| d.serial == device.id().address)
            .ok_or_else(|| TransportError::Disconnected {
                device: device.id().to_string(),
            })?;
        Ok(Box::new(SimTransport::connect(found.address).await?))
    }
}

impl MockPads for MockDevices {
    fn state(&self, device_id: &str) -> Option<MockState> {
        self.by_id(device_id).map(|device| mock_state(&device))
    }

    fn device_ids(&self) -> Vec<String> {
        self.all().iter().map(|d| d.device_id()).collect()
    }

    fn changes(&self) -> watch::Receiver<()> {
        self.changes.subscribe()
    }
}

/// The sandbox's files, all in one directory the app's data directory holds (mode 0700, each
/// file 0600): kept across restarts so the sandbox behaves as a bank and a PIN pad do, and
/// removed as a whole when a first start did not finish (no `seeded` marker: it is written once
/// the bank is seeded and the sandbox device enrolled).
///
/// - `bank.db` (and SQLite's `-wal`/`-shm`): the sandbox bank's database (staff password
///   hashes, PIN verification values, wrapped keys, payments);
/// - `bank.master-key`: the key the bank wraps its keys under;
/// - `device-ca.key`: the sandbox's device-issuing CA (its secret scalar);
/// - `devices/<serial>.state`: each mock PIN pad's secure store (its keys, pairing, counters,
///   PIN verification data), written atomically by the simulator;
/// - `pairings/`: this app's pairings with the mock PIN pads (the companion's key store
///   format), sealed under a key in `pairing-secrets/` (the sandbox stands in for the OS key
///   store there: nothing in it protects real money).
#[derive(Clone, Debug)]
pub struct SandboxFiles {
    dir: PathBuf,
}

impl SandboxFiles {
    /// The sandbox's files under `embedded_dir` (the app's `<data>/embedded`).
    pub fn under(embedded_dir: &Path) -> Self {
        SandboxFiles {
            dir: embedded_dir.join("sandbox"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn seeded_marker(&self) -> PathBuf {
        self.dir.join("seeded")
    }

    /// Whether a first start finished (the bank seeded, the sandbox device enrolled).
    pub fn seeded(&self) -> bool {
        self.seeded_marker().is_file()
    }

    /// Records that the first start finished: from now on a start opens these files as they
    /// are (before it, a start removes them and begins again).
    pub fn mark_seeded(&self) -> std::io::Result<()> {
        if self.seeded() {
            return Ok(());
        }
        write_atomically(&self.seeded_marker(), b"1\n")
    }

    fn device_state(&self, serial: &str) -> PathBuf {
        // Serials are the app's own `PB-SIM-NNNN`; anything else is kept out of the path.
        let safe: String = serial
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join("devices").join(format!("{safe}.state"))
    }

    /// Creates the directory (0700), after removing what a first start left unfinished (a
    /// bank seeded but a device not enrolled, say: all of it is made again).
    fn prepare(&self) -> std::io::Result<()> {
        if self.dir.exists() && !self.seeded() {
            std::fs::remove_dir_all(&self.dir)?;
        }
        for dir in [
            self.dir.clone(),
            self.dir.join("devices"),
            self.dir.join("pairings"),
            self.dir.join("pairing-secrets"),
        ] {
            std::fs::create_dir_all(&dir)?;
            private_dir(&dir)?;
        }
        Ok(())
    }

    /// The mock PIN pads' pairings with this app, kept across restarts.
    pub fn pairings(&self) -> KeyStore {
        KeyStore::with_secret_store(
            self.dir.join("pairings"),
            Arc::new(FileSecrets {
                dir: self.dir.join("pairing-secrets"),
            }),
        )
    }
}

#[cfg(unix)]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn private_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The sandbox's stand-in for the OS key store: one 0600 file per account in a 0700
/// directory. Sandbox only: the pairings it seals are with mock PIN pads.
struct FileSecrets {
    dir: PathBuf,
}

impl std::fmt::Debug for FileSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSecrets")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileSecrets {
    fn path(&self, account: &str) -> PathBuf {
        self.dir.join(hex::encode(account.as_bytes()))
    }

    fn failed(&self, error: std::io::Error) -> KeyStoreError {
        KeyStoreError::SecretStore(format!("{}: {error}", self.dir.display()))
    }
}

impl SecretStore for FileSecrets {
    fn name(&self) -> String {
        "the sandbox's secrets directory".into()
    }

    fn get(&self, account: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, KeyStoreError> {
        match std::fs::read(self.path(account)) {
            Ok(bytes) => Ok(Some(zeroize::Zeroizing::new(bytes))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.failed(error)),
        }
    }

    fn set(&self, account: &str, secret: &[u8], _label: &str) -> Result<(), KeyStoreError> {
        write_atomically(&self.path(account), secret).map_err(|e| self.failed(e))
    }

    fn delete(&self, account: &str) -> Result<bool, KeyStoreError> {
        match std::fs::remove_file(self.path(account)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(self.failed(error)),
        }
    }
}

/// The running sandbox bank and the CA its mock devices are certified by.
pub struct Embedded {
    /// The bank's base URL on loopback.
    pub bank_url: String,
    /// The bank (for QA: pushing confirmation requests).
    pub bank: Arc<Bank>,
    ca: CaKey,
    stop: Option<oneshot::Sender<()>>,
    /// The sandbox's files (bank database, master key, CA, mock devices, pairings).
    files: SandboxFiles,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("bank_url", &self.bank_url)
            .field("dir", &self.files.dir())
            .finish_non_exhaustive()
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Embedded {
    /// The sandbox's files.
    pub fn files(&self) -> &SandboxFiles {
        &self.files
    }

    /// A bank client for the embedded bank (plain http on loopback).
    pub fn client(&self) -> Result<BankClient, companion::bank::BankError> {
        BankClient::new(&BankSettings {
            url: self.bank_url.clone(),
            ca_pem: None,
        })
    }

    /// Starts the sandbox bank over its files under `embedded_dir`: the first start seeds the
    /// bank and makes the device CA; a restart opens them as they were left. (Files of the
    /// per-run layout of earlier versions, `run-*`, are removed.)
    pub async fn start_bank(embedded_dir: &Path) -> Result<Self, EmbeddedError> {
        let io = start_error("bank");
        sweep_old_runs(embedded_dir);
        let files = SandboxFiles::under(embedded_dir);
        files.prepare().map_err(|e| io(e.to_string()))?;
        let first_start = !files.seeded();
        let database = format!("sqlite://{}", files.dir().join("bank.db").display());
        let bank = bank_sandbox::server::open_bank(
            &database,
            &files.dir().join("bank.master-key"),
            BankConfig::default(),
        )
        .await
        .map_err(|e| io(e.to_string()))?;
        if first_start {
            seed(&bank).await.map_err(&io)?;
        }
        let ca = device_ca(&files.dir().join("device-ca.key")).map_err(&io)?;
        bank.trust_ca(&ca.public_key().to_sec1_bytes(), "embedded mock device CA")
            .await
            .map_err(|e| io(e.to_string()))?;
        bank.allow_hash(
            "firmware",
            &firmware_image_hash(FIRMWARE_VERSION),
            "pinpad-sim",
        )
        .await
        .map_err(|e| io(e.to_string()))?;
        bank.allow_hash("app", &flows::app_build_hash(), "pinbridge app")
            .await
            .map_err(|e| io(e.to_string()))?;
        let bank = Arc::new(bank);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| io(e.to_string()))?;
        let address = listener.local_addr().map_err(|e| io(e.to_string()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = bank.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = bank_sandbox::server::serve_plain(listener, served, shutdown).await
            {
                tracing::error!("the embedded sandbox bank stopped: {error}");
            }
        });
        Ok(Embedded {
            bank_url: format!("http://{address}"),
            bank,
            ca,
            stop: Some(stop),
            files,
        })
    }

    /// Starts the mock PIN pad `serial` for this bank, served on loopback and added to
    /// `devices`: as it was left if its state file exists (keys, pairing, counters, PIN),
    /// else manufactured now (certified by the sandbox CA, trusting the bank's management and
    /// operator keys). Its secure store is that file from then on.
    pub async fn start_device(
        &self,
        devices: &MockDevices,
        serial: &str,
        name: &str,
    ) -> Result<Arc<MockDevice>, EmbeddedError> {
        let fail = start_error("mock PIN pad");
        let mut seed_bytes = [0u8; 32];
        getrandom::fill(&mut seed_bytes).map_err(|e| fail(e.to_string()))?;
        let state_file = self.files.device_state(serial);
        let restored = match std::fs::read(&state_file) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                Some(Device::restore(&bytes).map_err(|e| fail(e.to_string()))?)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(fail(error.to_string())),
        };
        let device = match restored {
            Some(device) => device,
            None => {
                let mut rng = ChaCha20Rng::from_seed(seed_bytes);
                let mut settings = Manufacture::new(serial);
                settings.bank_management_key = Some(self.bank.management_public_key());
                settings.bank_operator_key = Some(self.bank.operator_public_key());
                settings.display_language = devices.display_language();
                let device = Device::manufacture(&settings, &self.ca, &mut rng)
                    .map_err(|e| fail(e.to_string()))?;
                write_atomically(&state_file, &device.stored_state())
                    .map_err(|e| fail(e.to_string()))?;
                device
            }
        };
        let hardware = VirtualHardware::with(
            seed_bytes,
            Clock::System { offset_ms: 0 },
            SecureStore::File(state_file),
        );
        let handle = SimHandle::new(SimCore::new(device, hardware, Mtu::SIM));
        if let Err(error) = handle.set_display_language(devices.display_language()) {
            tracing::warn!("mock PIN pad {serial}: display language: {error}");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| fail(e.to_string()))?;
        let served =
            ServedDevice::spawn(handle.clone(), listener).map_err(|e| fail(e.to_string()))?;
        let watcher = devices.watch(handle.clone());
        Ok(devices.add(MockDevice {
            serial: serial.to_owned(),
            name: name.to_owned(),
            address: served.address,
            handle,
            _served: served,
            _watcher: watcher,
        }))
    }

    /// Initialises `device` at the bank and enrols [`SANDBOX_CUSTOMER`] on it, as the branch
    /// clerk `clerk-01` would; the sandbox PIN is chosen on the mock keypad by a script that
    /// runs only for this enrolment.
    pub async fn provision_sandbox_device(&self, device: &MockDevice) -> Result<(), EmbeddedError> {
        let fail = |e: &dyn std::fmt::Display| EmbeddedError::Provision(e.to_string());
        let client = self.client().map_err(|e| fail(&e))?;
        let clerk = SANDBOX_STAFF
            .iter()
            .find(|s| s.role == Role::Teller)
            .ok_or_else(|| EmbeddedError::Provision("no sandbox clerk".into()))?;
        let token = client
            .staff_login(clerk.staff_id, clerk.password)
            .await
            .map_err(|e| fail(&e))?;
        let transport = SimTransport::connect(device.address)
            .await
            .map_err(|e| fail(&e))?;
        let mut session = Session::open(Box::new(transport))
            .await
            .map_err(|e| fail(&e))?;
        let keypad = script_keypad(device.handle.clone());
        let mut quiet = |_: FlowEvent| {};
        let provisioned =
            flows::provision(&mut session, &client, &token, SANDBOX_CUSTOMER, &mut quiet).await;
        keypad.abort();
        let _ = session.close().await;
        provisioned.map(|_| ()).map_err(|e| fail(&e))
    }
}

/// Creates the sandbox staff, customers and accounts.
async fn seed(bank: &Bank) -> Result<(), String> {
    for staff in SANDBOX_STAFF {
        bank.create_staff(staff.staff_id, staff.password, staff.role)
            .await
            .map_err(|e| format!("staff {}: {e}", staff.staff_id))?;
    }
    let (terminal, password) = SANDBOX_TERMINAL;
    bank.create_staff(terminal, password, Role::Terminal)
        .await
        .map_err(|e| format!("staff {terminal}: {e}"))?;
    for customer in SANDBOX_CUSTOMERS {
        bank.create_customer(customer.customer_id, customer.name, customer.account)
            .await
            .map_err(|e| format!("customer {}: {e}", customer.customer_id))?;
        bank.create_account(
            customer.account,
            Some(customer.customer_id),
            customer.name,
            "CNY",
            2,
            OPENING_BALANCE_MINOR,
        )
        .await
        .map_err(|e| format!("account of {}: {e}", customer.customer_id))?;
    }
    Ok(())
}

/// The sandbox's device CA: the one in `path`, or a new one written there (0600).
fn device_ca(path: &Path) -> Result<CaKey, String> {
    if path.exists() {
        return CaKey::load(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    let mut seed_bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed_bytes.as_mut_slice()).map_err(|e| e.to_string())?;
    let ca = CaKey::generate(&mut ChaCha20Rng::from_seed(*seed_bytes));
    write_atomically(path, ca.to_file_text().as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(ca)
}

/// Removes the per-run directories of earlier versions (each run had its own bank and
/// devices; nothing carried over).
fn sweep_old_runs(runs_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return;
    };
    let old: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-"))
        })
        .collect();
    for path in old {
        if let Err(error) = std::fs::remove_dir_all(&path) {
            tracing::warn!("could not remove {}: {error}", path.display());
        }
    }
}

/// Types the sandbox PIN at every PIN prompt of the mock device and confirms any other
/// prompt, until aborted, for the prompt on the screen only and on the device's activity (no
/// timer: `device_sim::scripted`). Used only while the shell enrols the sandbox customer at
/// start-up.
fn script_keypad(handle: SimHandle) -> tokio::task::JoinHandle<()> {
    device_sim::scripted::spawn_scripted_keypad(
        handle,
        Box::new(|| zeroize::Zeroizing::new(SANDBOX_PIN.to_owned())),
        device_sim::scripted::Pace::AllAtOnce,
    )
}

/// The QA faults of the contract on the simulator's fault settings: one-shot on the next
/// exchange, except `delay`, which stays until cleared.
pub fn apply_fault(device: &MockDevice, fault: &Fault) {
    let handle = &device.handle;
    let mut faults: Faults = handle.view().faults;
    match fault {
        Fault::Delay { ms } => faults.delay_ms = (*ms).min(30_000),
        Fault::Drop => faults.drop_nth = Some(1),
        Fault::Corrupt => faults.corrupt_nth = Some(1),
        Fault::Disconnect => faults.disconnect_after = Some(1),
        Fault::Busy => faults.busy_next = faults.busy_next.saturating_add(1),
        Fault::UserTooSlow => faults.user_too_slow = true,
    }
    handle.set_faults(faults);
}

/// Clears every fault.
pub fn clear_faults(device: &MockDevice) {
    device.handle.set_faults(Faults::default());
}

/// Reads a mock device's state, display included.
pub fn mock_state(device: &MockDevice) -> MockState {
    let view = device.handle.view();
    MockState {
        serial: device.serial.clone(),
        name: device.name.clone(),
        lifecycle: match view.state.lifecycle.parse::<DeviceLifecycle>() {
            Ok(DeviceLifecycle::Initialised) => Lifecycle::Initialised,
            Ok(DeviceLifecycle::Bound) => Lifecycle::Bound,
            Ok(DeviceLifecycle::Revoked) => Lifecycle::Revoked,
            Ok(DeviceLifecycle::Manufactured) | Err(_) => Lifecycle::Manufactured,
        },
        tampered: view.state.tampered,
        locked: view.state.lock != DeviceLock::Unlocked.as_str(),
        indicator: match view.state.indicator.parse::<DeviceIndicator>() {
            Ok(DeviceIndicator::Safe) => Indicator::Safe,
            Ok(DeviceIndicator::Danger) => Indicator::Danger,
            Ok(DeviceIndicator::Off) | Err(_) => Indicator::Off,
        },
        firmware: Firmware {
            version: FIRMWARE_VERSION.to_owned(),
            hash: view.state.firmware_hash,
        },
        display: view.display,
        prompt_id: view.state.prompt_id,
    }
}

/// One key of the contract's keypad (`0`..`9`, `ok`, `cancel`, `clear`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A digit.
    Digit(u8),
    /// OK (the device's Enter).
    Ok,
    /// Cancel.
    Cancel,
    /// Clear.
    Clear,
}

impl std::fmt::Debug for Key {
    /// Never which digit: a log of key presses during PIN entry is the PIN.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.public_name())
    }
}

impl Key {
    /// Parses the contract's key name.
    pub fn parse(name: &str) -> Option<Key> {
        match name {
            "ok" => Some(Key::Ok),
            "cancel" => Some(Key::Cancel),
            "clear" => Some(Key::Clear),
            _ => match name.as_bytes() {
                [digit @ b'0'..=b'9'] => Some(Key::Digit(digit - b'0')),
                _ => None,
            },
        }
    }

    /// What a log may say about the key: never which digit.
    pub fn public_name(self) -> &'static str {
        match self {
            Key::Digit(_) => "a digit",
            Key::Ok => "OK",
            Key::Cancel => "CANCEL",
            Key::Clear => "CLEAR",
        }
    }
}

/// Presses a key on a mock device's keypad for the prompt `prompt_id` the user saw (`None`:
/// whatever is on the screen). Returns `false` if that prompt has gone: the key is dropped, as
/// a real keypad's key meant for a screen that has changed never reaches the next prompt.
pub fn press(device: &MockDevice, key: Key, prompt_id: Option<u64>) -> bool {
    let press = match key {
        Key::Digit(d) => KeyPress::Digit(d),
        Key::Ok => KeyPress::Enter,
        Key::Cancel => KeyPress::Cancel,
        Key::Clear => KeyPress::Clear,
    };
    match prompt_id {
        Some(prompt_id) => device.handle.press_for(prompt_id, &[press]).is_ok(),
        None => {
            device.handle.press(&[press]);
            true
        }
    }
}

/// Opens the mock device's case and closes it again, as someone who got into the device would
/// leave it: the device latches tampered and wipes its keys at once. The tamper state stays
/// (sticky) until an operator reset, which the device only accepts with the case closed.
pub fn trip_tamper(device: &MockDevice) {
    device.handle.set_tamper(true);
    device.handle.set_tamper(false);
}

/// Starts the embedded default: the sandbox bank, then `PB-SIM-0001` provisioned for C-1001.
pub async fn start_embedded(core: Arc<AppCore>, mocks: MockDevices, embedded_dir: PathBuf) {
    let started = async {
        let embedded = Arc::new(Embedded::start_bank(&embedded_dir).await?);
        tracing::info!(target: "companion::bank", "embedded sandbox bank started on {}", embedded.bank_url);
        let device = embedded
            .start_device(&mocks, SANDBOX_SERIAL, SANDBOX_DEVICE_NAME)
            .await?;
        // A restart finds it bound as it was left; only a new one is enrolled.
        if mock_state(&device).lifecycle == Lifecycle::Manufactured {
            embedded.provision_sandbox_device(&device).await?;
            tracing::info!(
                target: "companion::devices",
                "mock PIN pad {} started and enrolled for {} (sandbox)",
                device.serial,
                SANDBOX_CUSTOMER
            );
        } else {
            tracing::info!(
                target: "companion::devices",
                "mock PIN pad {} started as it was left (sandbox)",
                device.serial
            );
        }
        embedded
            .files()
            .mark_seeded()
            .map_err(|e| EmbeddedError::Provision(e.to_string()))?;
        core.set_customer(&device.device_id(), Some(SANDBOX_CUSTOMER));
        let client = embedded
            .client()
            .map_err(|e| EmbeddedError::Provision(e.to_string()))?;
        Ok::<_, EmbeddedError>(SandboxBank {
            client,
            pairings: embedded.files().pairings(),
            staff_names: SANDBOX_STAFF
                .iter()
                .map(|s| (s.staff_id.to_owned(), s.display_name.to_owned()))
                .collect(),
            device_ca: Some(embedded.ca.public_key()),
            keep_alive: embedded,
        })
    };
    match started.await {
        Ok(sandbox) => core.set_embedded(EmbeddedStatus::Ready(Arc::new(sandbox))),
        Err(error) => {
            tracing::error!("{error}");
            core.set_embedded(EmbeddedStatus::Failed(error.to_string()));
        }
    }
    core.devices().refresh().await;
    // The sandbox device's customer is the app's to know: the windows get it now.
    core.push_devices();
}
