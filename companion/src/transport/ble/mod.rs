//! Bluetooth LE transport: the PinBridge GATT service.
//!
//! | Characteristic | UUID | Properties | Carries |
//! |---|---|---|---|
//! | control point | [`CONTROL_POINT_UUID`] | write without response (or write) | host -> device packets, one per write |
//! | status | [`STATUS_UUID`] | notify | device -> host packets, one per notification |
//! | control-point length | [`CONTROL_POINT_LENGTH_UUID`] | read | packet size, `u16` big-endian, 20..=512 |
//! | service revision | [`SERVICE_REVISION_UUID`] | read | protocol revision (optional) |
//!
//! The service UUID is a fresh random 128-bit UUID, deliberately not the FIDO service 0xFFFD
//! (Windows reserves that for its own WebAuthn stack). Lost packets are recovered above this
//! layer: every MSG is acknowledged and retransmitted by the session's link machine
//! (`firmware_protocol::link::HostLink`, PROTOCOL.md §2.9), which on BLE is what makes
//! delivery reliable.
//!
//! The btleplug-facing code ([`platform`]) is thin; the rest runs against the [`GattLink`]
//! seam, which tests implement with a fake peripheral.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{CharPropFlags, Characteristic, WriteType};
use firmware_protocol::link::Mtu;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub mod adapter;
pub mod platform;

use super::backoff::{ReconnectPolicy, retry};
use super::queue::{Incoming, PacketQueue};
use super::{DeviceIdentity, Transport, TransportError, check_packet_size};

/// What a PIN pad's advertised name starts with; its serial follows (`PinBridge PB-0042`).
pub const NAME_PREFIX: &str = "PinBridge ";

/// The serial a PIN pad advertises in its name, if the name has one.
pub fn serial_from_name(name: &str) -> Option<String> {
    name.strip_prefix(NAME_PREFIX)
        .map(str::trim)
        .filter(|serial| !serial.is_empty())
        .map(str::to_owned)
}

/// The PinBridge GATT service.
pub const SERVICE_UUID: Uuid = Uuid::from_u128(0xbd7f_0001_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Control point: the host writes packets here.
pub const CONTROL_POINT_UUID: Uuid = Uuid::from_u128(0xbd7f_0002_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Status: the device notifies packets here.
pub const STATUS_UUID: Uuid = Uuid::from_u128(0xbd7f_0003_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Control-point length: the packet size.
pub const CONTROL_POINT_LENGTH_UUID: Uuid =
    Uuid::from_u128(0xbd7f_0004_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Service revision.
pub const SERVICE_REVISION_UUID: Uuid = Uuid::from_u128(0xbd7f_0005_ff8f_4abd_a281_9ad1_4d64_c6a9);

/// What the transport was doing when Bluetooth failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BleOperation {
    /// Finding an adapter or scanning.
    Scan,
    /// Connecting.
    Connect,
    /// Discovering services.
    Discover,
    /// Reading a characteristic.
    Read,
    /// Writing the control point.
    Write,
    /// Subscribing to status notifications.
    Subscribe,
    /// Disconnecting.
    Disconnect,
}

impl fmt::Display for BleOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BleOperation::Scan => "scanning",
            BleOperation::Connect => "connecting",
            BleOperation::Discover => "discovering its services",
            BleOperation::Read => "reading a characteristic",
            BleOperation::Write => "sending a packet",
            BleOperation::Subscribe => "subscribing to status notifications",
            BleOperation::Disconnect => "disconnecting",
        })
    }
}

/// A Bluetooth failure.
#[derive(Debug, thiserror::Error)]
pub enum BleError {
    /// No Bluetooth adapter.
    #[error("no Bluetooth adapter found; switch Bluetooth on or plug in an adapter")]
    NoAdapter,
    /// The OS refused Bluetooth access.
    #[error(
        "the system refused access to Bluetooth while {operation}; allow this program to use Bluetooth (on Linux, check that BlueZ is running and the user may use it over D-Bus)"
    )]
    PermissionDenied {
        /// What was refused.
        operation: BleOperation,
    },
    /// No such peripheral (any more).
    #[error("no PinBridge PIN pad {wanted} is in Bluetooth range")]
    NotFound {
        /// The peripheral looked for.
        wanted: String,
    },
    /// The peripheral lacks our service.
    #[error("{device} does not offer the PinBridge Bluetooth service")]
    ServiceMissing {
        /// The device, as displayed.
        device: String,
    },
    /// Our service lacks a characteristic, or it lacks a needed property.
    #[error("{device}'s PinBridge service has no {characteristic} characteristic that can {needs}")]
    CharacteristicMissing {
        /// The device, as displayed.
        device: String,
        /// Which characteristic.
        characteristic: &'static str,
        /// The property it needs.
        needs: &'static str,
    },
    /// The control-point length is not a packet size we support.
    #[error(
        "{device} announces a packet size of {value:02x?}; a 2-byte big-endian size of 20 to 512 is required"
    )]
    BadControlPointLength {
        /// The device, as displayed.
        device: String,
        /// The bytes read.
        value: Vec<u8>,
    },
    /// The connection dropped.
    #[error("the PIN pad {device} disconnected (out of range or switched off)")]
    Disconnected {
        /// The device, as displayed.
        device: String,
    },
    /// An operation timed out.
    #[error("the PIN pad {device} timed out {operation}")]
    Timeout {
        /// The device, as displayed.
        device: String,
        /// What timed out.
        operation: BleOperation,
    },
    /// No adapter could be chosen (see [`adapter::choose_adapter`]).
    #[error(transparent)]
    AdapterChoice(#[from] adapter::AdapterChoiceError),
    /// Anything else the Bluetooth stack reported.
    #[error("Bluetooth error {operation} {device}: {message}")]
    Backend {
        /// The device, as displayed.
        device: String,
        /// What failed.
        operation: BleOperation,
        /// The stack's own words.
        message: String,
    },
}

impl BleError {
    /// Retrying cannot help: the device is not one of ours, or the system refuses access.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            BleError::NoAdapter
                | BleError::AdapterChoice(_)
                | BleError::PermissionDenied { .. }
                | BleError::ServiceMissing { .. }
                | BleError::CharacteristicMissing { .. }
                | BleError::BadControlPointLength { .. }
        )
    }
}

/// Something the peripheral sent after [`GattLink::subscribe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GattEvent {
    /// A characteristic's value changed.
    Notification {
        /// Which characteristic.
        characteristic: Uuid,
        /// The value (one packet, for status).
        value: Vec<u8>,
    },
    /// The connection dropped.
    Disconnected,
}

/// Notifications and connection events of one peripheral.
pub type GattEvents = Pin<Box<dyn Stream<Item = GattEvent> + Send>>;

/// The GATT operations the transport needs from one peripheral: the seam between the
/// transport's logic and btleplug.
#[async_trait]
pub trait GattLink: Send + Sync + fmt::Debug + 'static {
    /// Who it is.
    fn identity(&self) -> DeviceIdentity;
    /// Connects (a no-op when connected).
    async fn connect(&self) -> Result<(), BleError>;
    /// Discovers services and lists every characteristic.
    async fn characteristics(&self) -> Result<Vec<Characteristic>, BleError>;
    /// Reads a characteristic.
    async fn read(&self, characteristic: &Characteristic) -> Result<Vec<u8>, BleError>;
    /// Writes a characteristic.
    async fn write(
        &self,
        characteristic: &Characteristic,
        value: &[u8],
        write_type: WriteType,
    ) -> Result<(), BleError>;
    /// Subscribes to a characteristic; the stream also reports the connection dropping.
    async fn subscribe(&self, characteristic: &Characteristic) -> Result<GattEvents, BleError>;
    /// Disconnects.
    async fn disconnect(&self) -> Result<(), BleError>;
}

/// The characteristics of the PinBridge service on one peripheral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinBridgeGatt {
    /// Where packets are written.
    pub control_point: Characteristic,
    /// How: without response (one Write Command per packet) where the device allows it.
    pub write_type: WriteType,
    /// Where packets are notified.
    pub status: Characteristic,
    /// The packet size.
    pub control_point_length: Characteristic,
    /// The protocol revision, if the device has it.
    pub service_revision: Option<Characteristic>,
}

/// Finds the PinBridge characteristics among everything a peripheral offers.
pub fn find_pinbridge_characteristics(
    characteristics: &[Characteristic],
    device: &str,
) -> Result<PinBridgeGatt, BleError> {
    let ours: Vec<&Characteristic> = characteristics
        .iter()
        .filter(|c| c.service_uuid == SERVICE_UUID)
        .collect();
    if ours.is_empty() {
        return Err(BleError::ServiceMissing {
            device: device.to_owned(),
        });
    }
    let find = |uuid: Uuid, needs: CharPropFlags| {
        ours.iter()
            .find(|c| c.uuid == uuid && c.properties.intersects(needs))
            .map(|c| (*c).clone())
    };
    let missing = |characteristic, needs| BleError::CharacteristicMissing {
        device: device.to_owned(),
        characteristic,
        needs,
    };
    let control_point = find(
        CONTROL_POINT_UUID,
        CharPropFlags::WRITE_WITHOUT_RESPONSE | CharPropFlags::WRITE,
    )
    .ok_or_else(|| missing("control point", "be written"))?;
    let write_type = if control_point
        .properties
        .contains(CharPropFlags::WRITE_WITHOUT_RESPONSE)
    {
        WriteType::WithoutResponse
    } else {
        WriteType::WithResponse
    };
    Ok(PinBridgeGatt {
        write_type,
        status: find(STATUS_UUID, CharPropFlags::NOTIFY)
            .ok_or_else(|| missing("status", "notify"))?,
        control_point_length: find(CONTROL_POINT_LENGTH_UUID, CharPropFlags::READ)
            .ok_or_else(|| missing("control-point length", "be read"))?,
        service_revision: find(SERVICE_REVISION_UUID, CharPropFlags::READ),
        control_point,
    })
}

/// The packet size from the control-point length's value: `u16` big-endian, 20..=512.
pub fn parse_control_point_length(value: &[u8], device: &str) -> Result<Mtu, BleError> {
    let bad = || BleError::BadControlPointLength {
        device: device.to_owned(),
        value: value.to_vec(),
    };
    let bytes: [u8; 2] = value.try_into().map_err(|_| bad())?;
    Mtu::new(usize::from(u16::from_be_bytes(bytes))).map_err(|_| bad())
}

/// A connected, subscribed PinBridge service.
struct Established {
    gatt: PinBridgeGatt,
    mtu: Mtu,
    queue: PacketQueue,
    pump: JoinHandle<()>,
}

async fn establish(link: &dyn GattLink, device: &str) -> Result<Established, BleError> {
    link.connect().await?;
    let gatt = find_pinbridge_characteristics(&link.characteristics().await?, device)?;
    let mtu = parse_control_point_length(&link.read(&gatt.control_point_length).await?, device)?;
    let events = link.subscribe(&gatt.status).await?;
    let (sender, queue) = PacketQueue::new(mtu, device.to_owned());
    let pump = tokio::spawn(forward_status(events, sender, device.to_owned()));
    Ok(Established {
        gatt,
        mtu,
        queue,
        pump,
    })
}

/// Status notifications become packets; the connection dropping ends the queue.
async fn forward_status(mut events: GattEvents, sender: mpsc::Sender<Incoming>, device: String) {
    while let Some(event) = events.next().await {
        match event {
            GattEvent::Notification {
                characteristic,
                value,
            } if characteristic == STATUS_UUID => {
                if sender.send(Ok(value)).await.is_err() {
                    return;
                }
            }
            GattEvent::Notification { .. } => {}
            GattEvent::Disconnected => break,
        }
    }
    let _ = sender
        .send(Err(BleError::Disconnected { device }.into()))
        .await;
}

/// A PIN pad on Bluetooth LE.
pub struct BleTransport {
    identity: DeviceIdentity,
    link: Arc<dyn GattLink>,
    reconnect_policy: ReconnectPolicy,
    mtu: Mtu,
    /// `None` after close or while reconnecting.
    connection: Option<Established>,
}

impl fmt::Debug for BleTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BleTransport")
            .field("identity", &self.identity)
            .field("mtu", &self.mtu)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl BleTransport {
    /// Connects to the peripheral behind `link`, reads the packet size and subscribes.
    pub async fn open_with(link: Arc<dyn GattLink>) -> Result<Self, TransportError> {
        let identity = link.identity();
        let connection = establish(&*link, &identity.to_string()).await?;
        Ok(BleTransport {
            identity,
            link,
            reconnect_policy: ReconnectPolicy::default(),
            mtu: connection.mtu,
            connection: Some(connection),
        })
    }

    /// Sets how [`Transport::reconnect`] retries.
    pub fn set_reconnect_policy(&mut self, policy: ReconnectPolicy) {
        self.reconnect_policy = policy;
    }

    fn connection(&mut self) -> Result<&mut Established, TransportError> {
        self.connection
            .as_mut()
            .ok_or_else(|| TransportError::Closed {
                device: self.identity.to_string(),
            })
    }

    fn drop_connection(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.pump.abort();
        }
    }
}

impl Drop for BleTransport {
    /// A transport dropped while connected disconnects, as `close` does: BlueZ keeps an LE
    /// link up after the program that asked for it goes, so without this the PIN pad stays
    /// connected to a central nobody uses (it does not advertise while connected, and the
    /// next program finds it busy). Drop cannot wait: the disconnect runs on the runtime, and
    /// a program about to exit waits for it with [`finish_disconnects`].
    fn drop(&mut self) {
        if self.connection.is_none() {
            return;
        }
        self.drop_connection();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let link = Arc::clone(&self.link);
        let task = runtime.spawn(async move {
            if let Err(error) = link.disconnect().await {
                tracing::debug!(%error, "BLE disconnect on drop");
            }
        });
        pending_disconnects().push(task);
    }
}

fn pending_disconnects() -> std::sync::MutexGuard<'static, Vec<JoinHandle<()>>> {
    static PENDING: std::sync::Mutex<Vec<JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits (at most `limit`) for the disconnects of BLE transports dropped while connected:
/// a program calls it before its runtime ends, so that it leaves no link behind.
pub async fn finish_disconnects(limit: Duration) {
    let tasks = std::mem::take(&mut *pending_disconnects());
    if tasks.is_empty() {
        return;
    }
    let _ = tokio::time::timeout(limit, futures::future::join_all(tasks)).await;
}

#[async_trait]
impl Transport for BleTransport {
    fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    fn mtu(&self) -> Mtu {
        self.mtu
    }

    async fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet_size(self.mtu, packet)?;
        let link = Arc::clone(&self.link);
        let connection = self.connection()?;
        link.write(
            &connection.gatt.control_point,
            packet,
            connection.gatt.write_type,
        )
        .await?;
        Ok(())
    }

    async fn receive_packet(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.connection()?.queue.next(timeout).await
    }

    async fn reconnect(&mut self) -> Result<(), TransportError> {
        self.drop_connection();
        // The stack may still think it is connected to a peripheral that walked away.
        let _ = self.link.disconnect().await;
        let device = self.identity.to_string();
        let link = Arc::clone(&self.link);
        let connection = retry(
            &self.reconnect_policy,
            || establish(&*link, &device),
            BleError::is_permanent,
        )
        .await?;
        self.mtu = connection.mtu;
        self.connection = Some(connection);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.drop_connection();
        self.link.disconnect().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
