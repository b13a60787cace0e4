//! The device manager: PIN pads on every transport, listed with their state, hotplug events,
//! several at once, one selected.
//!
//! Each transport contributes a [`DeviceSource`]: [`UsbSource`] (libusb enumeration, native
//! hotplug where libusb has it), [`BleSource`] (scan for the PinBridge GATT service),
//! [`SimSource`] (configured `pinpad-sim` addresses). The [`DeviceManager`] merges their scans,
//! turns differences into [`DeviceEvent`]s on a broadcast channel, and opens the selected
//! device's [`Transport`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{OnceCell, broadcast};
use tokio::task::JoinHandle;

use crate::transport::ble::{BleTransport, platform as ble_platform};
use crate::transport::sim::SimTransport;
use crate::transport::usb::{self, UsbSelector, UsbTransport};
use crate::transport::{DeviceId, DeviceIdentity, Transport, TransportError, TransportKind};

/// What is known about a device's availability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceState {
    /// Present and can be opened.
    Available,
    /// Connected already (BLE: by this program or the system).
    Connected,
    /// Present, but the system refuses access (USB on Linux: the udev rule is missing).
    PermissionDenied,
    /// Present, but another program has it open.
    InUse,
    /// Configured (simulator address) but nothing answers there.
    Unreachable,
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceState::Available => "available",
            DeviceState::Connected => "connected",
            DeviceState::PermissionDenied => {
                "permission denied (install packaging/linux/70-pinbridge.rules)"
            }
            DeviceState::InUse => "in use by another program",
            DeviceState::Unreachable => "unreachable",
        })
    }
}

/// One device as listed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceInfo {
    /// Transport, address, serial and name as far as known.
    pub identity: DeviceIdentity,
    /// Availability.
    pub state: DeviceState,
}

impl DeviceInfo {
    /// A device in a state.
    pub fn new(identity: DeviceIdentity, state: DeviceState) -> Self {
        DeviceInfo { identity, state }
    }

    /// Its id.
    pub fn id(&self) -> &DeviceId {
        &self.identity.id
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.identity, self.state)
    }
}

/// A change in the device list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A device appeared.
    Arrived(DeviceInfo),
    /// A device went away.
    Left(DeviceId),
    /// A device's state, serial or name changed.
    Changed(DeviceInfo),
    /// A transport could not be scanned (its devices keep their last known state).
    SourceFailed {
        /// The transport.
        kind: TransportKind,
        /// Why, in words.
        message: String,
    },
}

/// Why the manager could not pick or open a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Nothing found on any transport.
    #[error("no PIN pad found; plug one in, switch it on, or start pinpad-sim")]
    NoDevices,
    /// Several found and none chosen.
    #[error("{} PIN pads found ({}); choose one", .devices.len(), list(.devices))]
    Ambiguous {
        /// The candidates.
        devices: Vec<DeviceId>,
    },
    /// The named device is not in the list.
    #[error("no PIN pad {wanted} is connected")]
    NotFound {
        /// What was asked for.
        wanted: String,
    },
    /// `open_selected` without a selection.
    #[error("no PIN pad selected")]
    NoneSelected,
    /// No source handles this transport.
    #[error("{kind} devices are not enabled")]
    NoSource {
        /// The transport.
        kind: TransportKind,
    },
    /// The transport failed to open the device.
    #[error("could not open {device}: {source}")]
    Open {
        /// The device.
        device: DeviceId,
        /// Why.
        source: TransportError,
    },
}

impl DeviceError {
    /// What kind of failure this is, as the app and the CLI report it.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        match self {
            DeviceError::NoDevices | DeviceError::NotFound { .. } => K::DeviceNotFound,
            DeviceError::Ambiguous { .. } | DeviceError::NoneSelected => K::InvalidInput,
            // Enabled but unopenable: the device is there for the system but not for us.
            DeviceError::NoSource { .. } | DeviceError::Open { .. } => K::DeviceDisconnected,
        }
    }
}

fn list(devices: &[DeviceId]) -> String {
    devices
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Yields whenever a source's devices may have changed.
pub type ChangeStream = BoxStream<'static, ()>;

/// Devices of one transport.
#[async_trait]
pub trait DeviceSource: Send + Sync + fmt::Debug {
    /// The transport.
    fn kind(&self) -> TransportKind;
    /// Lists the devices present now.
    async fn scan(&self) -> Result<Vec<DeviceInfo>, TransportError>;
    /// Opens one of them.
    async fn open(&self, device: &DeviceInfo) -> Result<Box<dyn Transport>, TransportError>;
    /// Native hotplug notifications, if the platform has them; `None` means the manager polls.
    async fn changes(&self) -> Option<ChangeStream> {
        None
    }
}

/// What changed between two scans.
pub fn diff_devices(
    old: &BTreeMap<DeviceId, DeviceInfo>,
    new: &BTreeMap<DeviceId, DeviceInfo>,
) -> Vec<DeviceEvent> {
    let mut events = Vec::new();
    for (id, device) in new {
        match old.get(id) {
            None => events.push(DeviceEvent::Arrived(device.clone())),
            Some(before) if before != device => events.push(DeviceEvent::Changed(device.clone())),
            Some(_) => {}
        }
    }
    events.extend(
        old.keys()
            .filter(|id| !new.contains_key(*id))
            .map(|id| DeviceEvent::Left(id.clone())),
    );
    events
}

#[derive(Debug, Default)]
struct ManagerState {
    devices: BTreeMap<DeviceId, DeviceInfo>,
    selected: Option<DeviceId>,
}

/// Every PIN pad on every enabled transport. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct DeviceManager {
    sources: Vec<Arc<dyn DeviceSource>>,
    state: Arc<Mutex<ManagerState>>,
    events: broadcast::Sender<DeviceEvent>,
}

impl Default for DeviceManager {
    fn default() -> Self {
        Self::new()
    }
}

/// Which transports [`DeviceManager::with_platform_sources`] enables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Look for USB PIN pads.
    pub usb: bool,
    /// Scan for BLE PIN pads (takes [`BleSource::DEFAULT_SCAN_WINDOW`] per scan).
    pub ble: bool,
    /// Simulator addresses to list.
    pub sim: Vec<SocketAddr>,
    /// The Bluetooth adapter to use (`hci1`); `None`: the one adapter that is not advertising
    /// (see [`crate::transport::ble::adapter::choose_adapter`]).
    pub ble_adapter: Option<String>,
}

impl DiscoveryConfig {
    /// What to look on for the device a user named: `sim:HOST:PORT` on the sim link,
    /// `usb:ADDRESS` on USB, `ble:ADDRESS` on BLE, and a serial on USB and BLE.
    pub fn for_device(wanted: &str) -> Self {
        let mut config = DiscoveryConfig::default();
        if let Some(address) = wanted.strip_prefix("sim:") {
            config.sim.extend(address.parse::<SocketAddr>());
        } else if wanted.starts_with("usb:") {
            config.usb = true;
        } else if wanted.starts_with("ble:") {
            config.ble = true;
        } else {
            config.usb = true;
            config.ble = true;
        }
        config
    }
}

impl DeviceManager {
    /// A manager with no sources.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(64);
        DeviceManager {
            sources: Vec::new(),
            state: Arc::new(Mutex::new(ManagerState::default())),
            events,
        }
    }

    /// Adds a source.
    pub fn with_source(mut self, source: Arc<dyn DeviceSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// The sources `config` enables. A transport whose stack is unusable here (no libusb
    /// backend) is left out, with a warning in the log.
    pub fn with_platform_sources(config: &DiscoveryConfig) -> Self {
        let mut manager = DeviceManager::new();
        if config.usb {
            match UsbSource::new() {
                Ok(source) => manager = manager.with_source(Arc::new(source)),
                Err(error) => tracing::warn!(%error, "USB devices disabled"),
            }
        }
        if config.ble {
            manager = manager.with_source(Arc::new(BleSource::on_adapter(
                BleSource::DEFAULT_SCAN_WINDOW,
                config.ble_adapter.clone(),
            )));
        }
        if !config.sim.is_empty() {
            manager = manager.with_source(Arc::new(SimSource::new(config.sim.clone())));
        }
        manager
    }

    fn lock(&self) -> MutexGuard<'_, ManagerState> {
        // A panic while holding the lock leaves a consistent map; keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Device list changes from now on. Slow receivers miss events (`Lagged`) rather than
    /// slowing the manager; [`DeviceManager::devices`] always has the current list.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.events.subscribe()
    }

    /// The devices as of the last scan, ordered by transport and address.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        self.lock().devices.values().cloned().collect()
    }

    /// Scans every source and updates the list; returns it.
    pub async fn refresh(&self) -> Vec<DeviceInfo> {
        for index in 0..self.sources.len() {
            self.refresh_source(index).await;
        }
        self.devices()
    }

    async fn refresh_source(&self, index: usize) {
        let Some(source) = self.sources.get(index) else {
            return;
        };
        let kind = source.kind();
        let scanned = source.scan().await;
        let events = {
            let mut state = self.lock();
            match scanned {
                Ok(found) => {
                    let mut next = state.devices.clone();
                    next.retain(|id, _| id.kind != kind);
                    next.extend(found.into_iter().map(|d| (d.id().clone(), d)));
                    let events = diff_devices(&state.devices, &next);
                    state.devices = next;
                    events
                }
                Err(error) => vec![DeviceEvent::SourceFailed {
                    kind,
                    message: error.to_string(),
                }],
            }
        };
        for event in events {
            // No subscriber is fine.
            let _ = self.events.send(event);
        }
    }

    /// Selects a device by id.
    pub fn select(&self, id: &DeviceId) -> Result<DeviceInfo, DeviceError> {
        let mut state = self.lock();
        let device = state
            .devices
            .get(id)
            .cloned()
            .ok_or_else(|| DeviceError::NotFound {
                wanted: id.to_string(),
            })?;
        state.selected = Some(id.clone());
        Ok(device)
    }

    /// Selects the device whose id (`usb:1-4`), address or serial is `wanted`.
    pub fn select_matching(&self, wanted: &str) -> Result<DeviceInfo, DeviceError> {
        let id = {
            let state = self.lock();
            state
                .devices
                .values()
                .find(|d| {
                    d.id().to_string() == wanted
                        || d.id().address == wanted
                        || d.identity.serial.as_deref() == Some(wanted)
                })
                .map(|d| d.id().clone())
        };
        let id = id.ok_or_else(|| DeviceError::NotFound {
            wanted: wanted.to_owned(),
        })?;
        self.select(&id)
    }

    /// [`DeviceManager::select_matching`], waiting up to `timeout` for the device to be
    /// plugged in (or to finish enumerating: a USB device is only matched once its serial is
    /// readable) when it is not there yet. Hotplug notifications trigger a rescan; sources
    /// without them, and a device seen before its serial was readable, are rescanned every
    /// `rescan` meanwhile. `waiting` is called once, when the device is not there at first.
    pub async fn wait_for_matching(
        &self,
        wanted: &str,
        timeout: Duration,
        rescan: Duration,
        waiting: impl FnOnce(),
    ) -> Result<DeviceInfo, DeviceError> {
        let usable = |manager: &Self| {
            manager
                .select_matching(wanted)
                .ok()
                .filter(|d| matches!(d.state, DeviceState::Available | DeviceState::Connected))
        };
        let mut events = self.subscribe();
        self.refresh().await;
        if let Some(device) = usable(self) {
            return Ok(device);
        }
        waiting();
        let _watch = self.watch(rescan).await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    return usable(self).ok_or_else(|| DeviceError::NotFound {
                        wanted: wanted.to_owned(),
                    });
                }
                _ = events.recv() => {}
                () = tokio::time::sleep(rescan) => {
                    self.refresh().await;
                }
            }
            if let Some(device) = usable(self) {
                return Ok(device);
            }
        }
    }

    /// Selects the only usable device; an error if there is none or more than one.
    pub fn select_only(&self) -> Result<DeviceInfo, DeviceError> {
        let usable: Vec<DeviceId> = self
            .lock()
            .devices
            .values()
            .filter(|d| matches!(d.state, DeviceState::Available | DeviceState::Connected))
            .map(|d| d.id().clone())
            .collect();
        match usable.as_slice() {
            [] => Err(DeviceError::NoDevices),
            [only] => self.select(only),
            _ => Err(DeviceError::Ambiguous { devices: usable }),
        }
    }

    /// The selected device, if it is still listed.
    pub fn selected(&self) -> Option<DeviceInfo> {
        let state = self.lock();
        state
            .selected
            .as_ref()
            .and_then(|id| state.devices.get(id))
            .cloned()
    }

    /// Opens the transport to a listed device.
    pub async fn open(&self, id: &DeviceId) -> Result<Box<dyn Transport>, DeviceError> {
        let device = self
            .lock()
            .devices
            .get(id)
            .cloned()
            .ok_or_else(|| DeviceError::NotFound {
                wanted: id.to_string(),
            })?;
        let source = self
            .sources
            .iter()
            .find(|s| s.kind() == id.kind)
            .ok_or(DeviceError::NoSource { kind: id.kind })?;
        source
            .open(&device)
            .await
            .map_err(|source| DeviceError::Open {
                device: id.clone(),
                source,
            })
    }

    /// Opens the selected device.
    pub async fn open_selected(&self) -> Result<Box<dyn Transport>, DeviceError> {
        let id = self
            .lock()
            .selected
            .clone()
            .ok_or(DeviceError::NoneSelected)?;
        self.open(&id).await
    }

    /// Keeps the list current in the background: sources with native hotplug are rescanned
    /// when they report a change, the others every `poll_interval`. Stops when the handle is
    /// dropped.
    pub async fn watch(&self, poll_interval: Duration) -> WatchHandle {
        let mut native = Vec::new();
        let mut polled = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            match source.changes().await {
                Some(stream) => native.push(stream.map(move |()| index).boxed()),
                None => polled.push(index),
            }
        }
        let manager = self.clone();
        let task = tokio::spawn(async move {
            let mut changes = futures::stream::select_all(native);
            // No timer at all when every source has hotplug: an idle app with a USB PIN pad
            // wakes for nothing (a ticker with nothing to poll woke a worker every interval).
            let mut ticker = (!polled.is_empty()).then(|| {
                let mut ticker = tokio::time::interval(poll_interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker
            });
            loop {
                tokio::select! {
                    Some(_) = async {
                        match ticker.as_mut() {
                            Some(ticker) => Some(ticker.tick().await),
                            None => std::future::pending().await,
                        }
                    } => {
                        for &index in &polled {
                            manager.refresh_source(index).await;
                        }
                    }
                    Some(index) = changes.next() => {
                        // A burst of notifications (a hub with several devices) needs one scan.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        manager.refresh_source(index).await;
                    }
                }
            }
        });
        WatchHandle { task }
    }
}

/// Stops [`DeviceManager::watch`] when dropped.
#[derive(Debug)]
pub struct WatchHandle {
    task: JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Simulated PIN pads at configured addresses.
#[derive(Debug, Clone)]
pub struct SimSource {
    endpoints: Vec<SocketAddr>,
    probe_timeout: Duration,
}

impl SimSource {
    /// Lists these addresses; each is probed with a TCP connect on every scan.
    pub fn new(endpoints: Vec<SocketAddr>) -> Self {
        SimSource {
            endpoints,
            probe_timeout: Duration::from_millis(500),
        }
    }
}

#[async_trait]
impl DeviceSource for SimSource {
    fn kind(&self) -> TransportKind {
        TransportKind::Sim
    }

    async fn scan(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        let probes = self.endpoints.iter().map(|&addr| async move {
            let reachable =
                tokio::time::timeout(self.probe_timeout, tokio::net::TcpStream::connect(addr))
                    .await
                    .is_ok_and(|connected| connected.is_ok());
            DeviceInfo::new(
                DeviceIdentity::new(TransportKind::Sim, addr.to_string()),
                if reachable {
                    DeviceState::Available
                } else {
                    DeviceState::Unreachable
                },
            )
        });
        Ok(futures::future::join_all(probes).await)
    }

    async fn open(&self, device: &DeviceInfo) -> Result<Box<dyn Transport>, TransportError> {
        let addr = self
            .endpoints
            .iter()
            .copied()
            .find(|addr| addr.to_string() == device.id().address)
            .ok_or_else(|| TransportError::Disconnected {
                device: device.id().to_string(),
            })?;
        Ok(Box::new(SimTransport::connect(addr).await?))
    }
}

/// USB PIN pads (our vendor/product id).
#[derive(Debug, Clone)]
pub struct UsbSource {
    context: rusb::Context,
}

impl UsbSource {
    /// A libusb context for enumeration and opening.
    pub fn new() -> Result<Self, TransportError> {
        let context = rusb::Context::new().map_err(|error| {
            usb::map_libusb_error(error, usb::UsbOperation::Enumerate, "the USB bus")
        })?;
        Ok(UsbSource { context })
    }
}

#[async_trait]
impl DeviceSource for UsbSource {
    fn kind(&self) -> TransportKind {
        TransportKind::Usb
    }

    async fn scan(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        let context = self.context.clone();
        let listings = tokio::task::spawn_blocking(move || usb::list_devices(&context))
            .await
            .map_err(|_| usb::UsbError::WorkerStopped {
                device: "the USB bus".into(),
            })??;
        Ok(listings
            .into_iter()
            .map(|listing| {
                let state = if listing.permission_denied {
                    DeviceState::PermissionDenied
                } else if listing.busy {
                    DeviceState::InUse
                } else {
                    DeviceState::Available
                };
                DeviceInfo::new(listing.identity, state)
            })
            .collect())
    }

    async fn open(&self, device: &DeviceInfo) -> Result<Box<dyn Transport>, TransportError> {
        // The serial follows the device to another port; the address is all we have without.
        let selector = match &device.identity.serial {
            Some(serial) => UsbSelector::Serial(serial.clone()),
            None => UsbSelector::Address(device.id().address.clone()),
        };
        Ok(Box::new(
            UsbTransport::open(self.context.clone(), selector).await?,
        ))
    }

    async fn changes(&self) -> Option<ChangeStream> {
        match usb::watch_hotplug(&self.context) {
            Ok(Some((watch, receiver))) => Some(
                futures::stream::unfold((watch, receiver), |(watch, mut receiver)| async move {
                    receiver.recv().await.map(|_| ((), (watch, receiver)))
                })
                .boxed(),
            ),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "USB hotplug unavailable; polling instead");
                None
            }
        }
    }
}

/// BLE PIN pads advertising the PinBridge service. Polled: a scan is what makes
/// advertisements arrive, so there are no notifications without one.
#[derive(Debug)]
pub struct BleSource {
    adapter: OnceCell<btleplug::platform::Adapter>,
    adapter_name: Option<String>,
    scan_window: Duration,
}

impl BleSource {
    /// How long one scan listens for advertisements.
    pub const DEFAULT_SCAN_WINDOW: Duration = Duration::from_secs(2);

    /// A source that scans for `scan_window` each time.
    pub fn new(scan_window: Duration) -> Self {
        Self::on_adapter(scan_window, None)
    }

    /// A source on the adapter named `adapter` (`None`: chosen, see
    /// [`ble_platform::select_adapter`]).
    pub fn on_adapter(scan_window: Duration, adapter: Option<String>) -> Self {
        BleSource {
            adapter: OnceCell::new(),
            adapter_name: adapter,
            scan_window,
        }
    }

    async fn adapter(&self) -> Result<&btleplug::platform::Adapter, TransportError> {
        Ok(self
            .adapter
            .get_or_try_init(|| ble_platform::select_adapter(self.adapter_name.as_deref()))
            .await?)
    }
}

#[async_trait]
impl DeviceSource for BleSource {
    fn kind(&self) -> TransportKind {
        TransportKind::Ble
    }

    async fn scan(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        let adapter = self.adapter().await?;
        let listings = ble_platform::scan(adapter, self.scan_window).await?;
        Ok(listings
            .into_iter()
            .map(|listing| {
                let state = if listing.connected {
                    DeviceState::Connected
                } else {
                    DeviceState::Available
                };
                DeviceInfo::new(listing.identity, state)
            })
            .collect())
    }

    async fn open(&self, device: &DeviceInfo) -> Result<Box<dyn Transport>, TransportError> {
        let adapter = self.adapter().await?;
        let link = ble_platform::PeripheralLink::find(adapter, &device.id().address).await?;
        Ok(Box::new(BleTransport::open_with(Arc::new(link)).await?))
    }
}

#[cfg(test)]
mod tests;
