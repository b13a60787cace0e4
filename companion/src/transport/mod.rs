//! Transports: how link packets (PROTOCOL.md §2) reach a PIN pad.
//!
//! One [`Transport`] trait moves whole fixed-size packets; everything above it (channels,
//! acknowledgements, retransmission, keepalives) is the [`session`](crate::session)'s job and
//! the same on every transport. Implementations:
//!
//! - [`usb::UsbTransport`]: the vendor-specific interface (class 0xFF) of a PIN pad with our
//!   USB vendor/product id, 64-byte interrupt or bulk transfers (libusb, via `rusb`).
//! - [`ble::BleTransport`]: the PinBridge GATT service (`btleplug`): packets written to the
//!   control point, received as status notifications, MTU from the control-point length.
//! - [`sim::SimTransport`]: TCP to `pinpad-sim`, 64-byte packets back to back.
//! - [`memory::MemoryTransport`]: an in-process pair, for a device running in the same process
//!   (the embedded demo) and for tests.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use firmware_protocol::link::Mtu;

pub mod backoff;
pub mod ble;
pub mod memory;
mod queue;
pub mod sim;
pub mod usb;

pub use backoff::{Backoff, ReconnectPolicy};
pub use ble::BleError;
pub use sim::SimError;
pub use usb::UsbError;

/// Which kind of link a device is reached over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// USB vendor-specific interface.
    Usb,
    /// Bluetooth Low Energy GATT service.
    Ble,
    /// TCP to the `pinpad-sim` mock device.
    Sim,
    /// A device running inside this process.
    InProcess,
}

impl TransportKind {
    /// Short lowercase name, used in device ids (`usb:1-4.2`).
    pub const fn short_name(self) -> &'static str {
        match self {
            TransportKind::Usb => "usb",
            TransportKind::Ble => "ble",
            TransportKind::Sim => "sim",
            TransportKind::InProcess => "in-process",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Usb => "USB",
            TransportKind::Ble => "Bluetooth LE",
            TransportKind::Sim => "simulator",
            TransportKind::InProcess => "in-process",
        })
    }
}

/// A device's address on one transport: stable while it stays plugged in (USB bus and port
/// path, BLE peripheral id, simulator socket address). Displayed as `kind:address`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId {
    /// The transport.
    pub kind: TransportKind,
    /// Transport-specific address.
    pub address: String,
}

impl DeviceId {
    /// An id from its parts.
    pub fn new(kind: TransportKind, address: impl Into<String>) -> Self {
        DeviceId {
            kind,
            address: address.into(),
        }
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.short_name(), self.address)
    }
}

/// Who is at the other end of a transport, for display and for finding it again.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceIdentity {
    /// Transport and address.
    pub id: DeviceId,
    /// Serial number, when the transport reports one before any message is exchanged (USB
    /// string descriptor); otherwise learnt later from `GetInfo`.
    pub serial: Option<String>,
    /// Human-readable name (USB product string, BLE local name).
    pub name: Option<String>,
}

impl DeviceIdentity {
    /// An identity with only an address.
    pub fn new(kind: TransportKind, address: impl Into<String>) -> Self {
        DeviceIdentity {
            id: DeviceId::new(kind, address),
            serial: None,
            name: None,
        }
    }

    /// The transport kind.
    pub fn kind(&self) -> TransportKind {
        self.id.kind
    }
}

impl fmt::Display for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, &self.serial) {
            (Some(name), Some(serial)) => write!(f, "{name} {serial} ({})", self.id),
            (None, Some(serial)) => write!(f, "{serial} ({})", self.id),
            (Some(name), None) => write!(f, "{name} ({})", self.id),
            (None, None) => write!(f, "{}", self.id),
        }
    }
}

/// Moves whole link packets to and from one device.
///
/// Every packet is exactly [`Transport::mtu`] bytes, in both directions; implementations drop
/// (and log) anything else the device sends, as PROTOCOL.md §2.1 requires of a receiver.
#[async_trait]
pub trait Transport: Send + fmt::Debug {
    /// Who is at the other end.
    fn identity(&self) -> &DeviceIdentity;

    /// The transport kind.
    fn kind(&self) -> TransportKind {
        self.identity().kind()
    }

    /// Packet size of this link (64 on USB and the simulator, the control-point length on BLE).
    fn mtu(&self) -> Mtu;

    /// Sends one packet of exactly [`Transport::mtu`] bytes.
    async fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError>;

    /// Waits up to `timeout` for the next packet; `Ok(None)` when none came in time.
    ///
    /// Cancel-safe: dropping the future before it completes loses no packet, so it can be
    /// raced against other events in `tokio::select!`.
    async fn receive_packet(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError>;

    /// Re-establishes the link after the device went away (unplugged, out of range,
    /// simulator restarted), retrying with backoff. Packets in flight are lost; the session
    /// must allocate a channel again.
    async fn reconnect(&mut self) -> Result<(), TransportError>;

    /// Releases the device. Later sends and receives fail with [`TransportError::Closed`].
    async fn close(&mut self) -> Result<(), TransportError>;
}

/// What can go wrong moving packets.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The device went away (unplugged, out of range, connection closed by the peer).
    #[error("the PIN pad {device} was disconnected")]
    Disconnected {
        /// The device, as displayed.
        device: String,
    },
    /// [`Transport::close`] was called.
    #[error("the connection to {device} was closed by this program")]
    Closed {
        /// The device, as displayed.
        device: String,
    },
    /// A caller tried to send a packet that is not exactly one MTU long.
    #[error("a packet of {actual} bytes cannot be sent on a link of {expected}-byte packets")]
    WrongPacketSize {
        /// The link MTU.
        expected: usize,
        /// The packet's length.
        actual: usize,
    },
    /// The device did not take a packet in time.
    #[error("the PIN pad {device} did not accept a packet within {timeout_ms} ms")]
    SendTimeout {
        /// The device, as displayed.
        device: String,
        /// How long the send waited.
        timeout_ms: u64,
    },
    /// This transport cannot re-establish its link (an in-process pair whose device ended).
    #[error("{kind} links cannot be reconnected")]
    ReconnectUnsupported {
        /// The transport kind.
        kind: TransportKind,
    },
    /// USB-specific failure.
    #[error(transparent)]
    Usb(#[from] UsbError),
    /// Bluetooth-specific failure.
    #[error(transparent)]
    Ble(#[from] BleError),
    /// Simulator-link failure.
    #[error(transparent)]
    Sim(#[from] SimError),
}

impl TransportError {
    /// What kind of failure this is, as the app and the CLI report it.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        if self.is_disconnect() {
            return K::DeviceDisconnected;
        }
        match self {
            TransportError::Closed { .. } | TransportError::ReconnectUnsupported { .. } => {
                K::DeviceDisconnected
            }
            TransportError::SendTimeout { .. } => K::Timeout,
            TransportError::WrongPacketSize { .. } => K::Internal,
            TransportError::Usb(error) => match error {
                UsbError::NotFound { .. } | UsbError::OtherDevice { .. } => K::DeviceNotFound,
                UsbError::NoVendorInterface { .. } => K::DeviceNotFound,
                UsbError::InterfaceBusy { .. } => K::DeviceBusy,
                UsbError::Timeout { .. } => K::Timeout,
                UsbError::Enumerating { .. } | UsbError::WorkerStopped { .. } => {
                    K::DeviceDisconnected
                }
                UsbError::Overflow { .. } | UsbError::Stalled { .. } => K::CorruptFrame,
                _ => K::Internal,
            },
            TransportError::Ble(error) => match error {
                BleError::NoAdapter
                | BleError::NotFound { .. }
                | BleError::ServiceMissing { .. }
                | BleError::CharacteristicMissing { .. } => K::DeviceNotFound,
                BleError::Timeout { .. } => K::Timeout,
                _ => K::Internal,
            },
            // Nothing listens at the address: no PIN pad there.
            TransportError::Sim(SimError::Connect { .. } | SimError::ConnectTimeout { .. }) => {
                K::DeviceNotFound
            }
            TransportError::Sim(SimError::Io { .. }) => K::DeviceDisconnected,
            TransportError::Disconnected { .. } => K::DeviceDisconnected,
        }
    }

    /// Whether the device is gone (as opposed to refusing or misbehaving): a reconnect may
    /// bring it back.
    pub fn is_disconnect(&self) -> bool {
        matches!(
            self,
            TransportError::Disconnected { .. }
                | TransportError::Usb(UsbError::Disconnected { .. })
                | TransportError::Ble(BleError::Disconnected { .. })
        )
    }
}

/// Checks an outgoing packet's size against the link MTU.
pub(crate) fn check_packet_size(mtu: Mtu, packet: &[u8]) -> Result<(), TransportError> {
    if packet.len() != mtu.get() {
        return Err(TransportError::WrongPacketSize {
            expected: mtu.get(),
            actual: packet.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_display_kind_and_address() {
        assert_eq!(
            DeviceId::new(TransportKind::Usb, "1-4.2").to_string(),
            "usb:1-4.2"
        );
        assert_eq!(
            DeviceId::new(TransportKind::Sim, "127.0.0.1:7000").to_string(),
            "sim:127.0.0.1:7000"
        );
    }

    #[test]
    fn identity_display_prefers_name_and_serial() {
        let mut identity = DeviceIdentity::new(TransportKind::Usb, "1-4");
        assert_eq!(identity.to_string(), "usb:1-4");
        identity.serial = Some("PB-0001".into());
        assert_eq!(identity.to_string(), "PB-0001 (usb:1-4)");
        identity.name = Some("PinBridge PIN pad".into());
        assert_eq!(identity.to_string(), "PinBridge PIN pad PB-0001 (usb:1-4)");
    }

    #[test]
    fn outgoing_packets_must_be_one_mtu() {
        assert!(check_packet_size(Mtu::USB, &[0; 64]).is_ok());
        assert!(matches!(
            check_packet_size(Mtu::USB, &[0; 63]),
            Err(TransportError::WrongPacketSize {
                expected: 64,
                actual: 63
            })
        ));
    }
}
