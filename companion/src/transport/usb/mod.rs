//! USB transport: the PIN pad's vendor-specific interface (class 0xFF) with one interrupt or
//! bulk endpoint pair, 64-byte packets, via libusb (`rusb`).
//!
//! The libusb-facing code is thin; what it decides is in pure or trait-based pieces tested
//! with fakes: [`descriptor::select_vendor_interface`] (which interface and endpoints),
//! [`error::map_libusb_error`] (what an error means for the user), [`link::UsbLink`] over
//! [`link::UsbPacketIo`] (packet I/O, timeouts, unplugging) and [`UsbConnector`] with the
//! shared [`backoff`](crate::transport::backoff) (reconnecting).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use firmware_protocol::link::Mtu;
use rusb::UsbContext;
use tokio::sync::mpsc;

pub mod descriptor;
pub mod error;
pub mod link;

pub use descriptor::{
    EndpointDirection, EndpointSummary, EndpointTransfer, InterfaceSummary, PacketTransfer,
    VendorInterface, select_vendor_interface, usb_address,
};
pub use error::{UsbError, UsbOperation, map_libusb_error};
pub use link::{UsbLink, UsbPacketIo};

use super::backoff::{ReconnectPolicy, retry};
use super::{DeviceIdentity, Transport, TransportError, TransportKind, check_packet_size};

/// USB vendor id the PIN pad enumerates with.
///
/// PLACEHOLDER: 0x1209 is the pid.codes vendor id and 0x0001 its test product id, meant for
/// development only. A product that ships gets its own vendor id from the USB-IF (or a
/// product id allocated under one) and changes [`VENDOR_ID`], [`PRODUCT_ID`] and the udev
/// rule in [`UDEV_RULE_PATH`] together; nothing else depends on the numbers.
pub const VENDOR_ID: u16 = 0x1209;

/// USB product id the PIN pad enumerates with (placeholder, see [`VENDOR_ID`]).
pub const PRODUCT_ID: u16 = 0x0001;

/// Where the repository keeps the Linux udev rule that grants the logged-in user access.
pub const UDEV_RULE_PATH: &str = "packaging/linux/70-pinbridge.rules";

/// Opens a PIN pad and claims its packet interface. The seam between the transport's logic
/// (open, reconnect with backoff) and libusb.
pub trait UsbConnector: Send + Sync + std::fmt::Debug + 'static {
    /// Finds the device, opens it, claims the interface; blocking.
    fn connect(&self) -> Result<(Arc<dyn UsbPacketIo>, DeviceIdentity), UsbError>;
}

/// Which PIN pad a [`RusbConnector`] opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsbSelector {
    /// The first one found.
    Any,
    /// The one with this serial number (survives replugging into another port).
    Serial(String),
    /// The one at this bus/port address (`1-4.2`).
    Address(String),
}

impl std::fmt::Display for UsbSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsbSelector::Any => write!(f, "USB {VENDOR_ID:04x}:{PRODUCT_ID:04x}"),
            UsbSelector::Serial(serial) => write!(f, "serial {serial}"),
            UsbSelector::Address(address) => write!(f, "usb:{address}"),
        }
    }
}

/// The real connector: libusb enumeration by vendor/product id.
#[derive(Debug, Clone)]
pub struct RusbConnector {
    context: rusb::Context,
    vendor_id: u16,
    product_id: u16,
    selector: UsbSelector,
}

impl RusbConnector {
    /// A connector for PIN pads with our ids.
    pub fn new(context: rusb::Context, selector: UsbSelector) -> Self {
        RusbConnector {
            context,
            vendor_id: VENDOR_ID,
            product_id: PRODUCT_ID,
            selector,
        }
    }
}

impl UsbConnector for RusbConnector {
    fn connect(&self) -> Result<(Arc<dyn UsbPacketIo>, DeviceIdentity), UsbError> {
        let devices = self
            .context
            .devices()
            .map_err(|e| map_libusb_error(e, UsbOperation::Enumerate, "the USB bus"))?;
        let mut last_error = None;
        for device in devices.iter() {
            let Ok(descriptor) = device.device_descriptor() else {
                continue;
            };
            if descriptor.vendor_id() != self.vendor_id
                || descriptor.product_id() != self.product_id
            {
                continue;
            }
            let address = device_address(&device);
            if let UsbSelector::Address(wanted) = &self.selector
                && *wanted != address
            {
                continue;
            }
            match open_and_claim(&device, &descriptor, &address) {
                Ok((io, identity)) => {
                    if let UsbSelector::Serial(wanted) = &self.selector
                        && identity.serial.as_deref() != Some(wanted.as_str())
                    {
                        continue;
                    }
                    return Ok((io, identity));
                }
                Err(error) => last_error = Some(error),
            }
        }
        // A device that matched but could not be opened says more than "not found".
        Err(last_error.unwrap_or_else(|| UsbError::NotFound {
            wanted: self.selector.to_string(),
        }))
    }
}

fn device_address(device: &rusb::Device<rusb::Context>) -> String {
    usb_address(
        device.bus_number(),
        &device.port_numbers().unwrap_or_default(),
    )
}

/// Reads what a device's active configuration says about its interfaces.
pub fn summarize_config(config: &rusb::ConfigDescriptor) -> Vec<InterfaceSummary> {
    config
        .interfaces()
        .flat_map(|interface| interface.descriptors())
        .map(|setting| InterfaceSummary {
            number: setting.interface_number(),
            alt_setting: setting.setting_number(),
            class: setting.class_code(),
            endpoints: setting
                .endpoint_descriptors()
                .map(|endpoint| EndpointSummary {
                    address: endpoint.address(),
                    direction: match endpoint.direction() {
                        rusb::Direction::In => EndpointDirection::In,
                        rusb::Direction::Out => EndpointDirection::Out,
                    },
                    transfer: match endpoint.transfer_type() {
                        rusb::TransferType::Control => EndpointTransfer::Control,
                        rusb::TransferType::Isochronous => EndpointTransfer::Isochronous,
                        rusb::TransferType::Bulk => EndpointTransfer::Bulk,
                        rusb::TransferType::Interrupt => EndpointTransfer::Interrupt,
                    },
                    max_packet_size: endpoint.max_packet_size(),
                })
                .collect(),
        })
        .collect()
}

/// Serial number and product name from the string descriptors, when readable.
fn read_strings(
    handle: &rusb::DeviceHandle<rusb::Context>,
    descriptor: &rusb::DeviceDescriptor,
) -> (Option<String>, Option<String>) {
    let serial = handle
        .read_serial_number_string_ascii(descriptor)
        .ok()
        .filter(|s| !s.is_empty());
    let name = handle
        .read_product_string_ascii(descriptor)
        .ok()
        .filter(|s| !s.is_empty());
    (serial, name)
}

fn open_and_claim(
    device: &rusb::Device<rusb::Context>,
    descriptor: &rusb::DeviceDescriptor,
    address: &str,
) -> Result<(Arc<dyn UsbPacketIo>, DeviceIdentity), UsbError> {
    let display = format!("usb:{address}");
    let handle = device
        .open()
        .map_err(|e| map_libusb_error(e, UsbOperation::Open, &display))?;
    let config = device
        .active_config_descriptor()
        .map_err(|e| map_libusb_error(e, UsbOperation::ReadDescriptor, &display))?;
    let interface = select_vendor_interface(&summarize_config(&config)).map_err(|reason| {
        UsbError::NoVendorInterface {
            device: display.clone(),
            reason,
        }
    })?;
    // Linux binds no driver to a class 0xFF interface unless some other rule did; detaching
    // is automatic where libusb supports it and not needed elsewhere (macOS, WinUSB).
    match handle.set_auto_detach_kernel_driver(true) {
        Ok(()) | Err(rusb::Error::NotSupported) => {}
        Err(e) => {
            return Err(map_libusb_error(
                e,
                UsbOperation::DetachKernelDriver,
                &display,
            ));
        }
    }
    handle
        .claim_interface(interface.number)
        .map_err(|e| map_libusb_error(e, UsbOperation::ClaimInterface, &display))?;
    if interface.alt_setting != 0 {
        handle
            .set_alternate_setting(interface.number, interface.alt_setting)
            .map_err(|e| map_libusb_error(e, UsbOperation::SetAlternateSetting, &display))?;
    }
    let (serial, name) = read_strings(&handle, descriptor);
    let identity = DeviceIdentity {
        id: super::DeviceId::new(TransportKind::Usb, address),
        serial,
        name,
    };
    Ok((Arc::new(RusbIo { handle, interface }), identity))
}

/// Transfers on a claimed interface of an open libusb handle.
struct RusbIo {
    handle: rusb::DeviceHandle<rusb::Context>,
    interface: VendorInterface,
}

impl RusbIo {
    fn read(&self, buf: &mut [u8], timeout: Duration) -> rusb::Result<usize> {
        match self.interface.transfer {
            PacketTransfer::Interrupt => {
                self.handle
                    .read_interrupt(self.interface.in_endpoint, buf, timeout)
            }
            PacketTransfer::Bulk => self
                .handle
                .read_bulk(self.interface.in_endpoint, buf, timeout),
        }
    }

    fn write(&self, buf: &[u8], timeout: Duration) -> rusb::Result<usize> {
        match self.interface.transfer {
            PacketTransfer::Interrupt => {
                self.handle
                    .write_interrupt(self.interface.out_endpoint, buf, timeout)
            }
            PacketTransfer::Bulk => {
                self.handle
                    .write_bulk(self.interface.out_endpoint, buf, timeout)
            }
        }
    }
}

impl RusbIo {
    /// GET_STATUS (USB 2.0 §9.4.5): every device answers it in any state.
    const GET_STATUS: u8 = 0x00;
    /// How long [`UsbPacketIo::is_gone`] waits for the kernel to make up its mind.
    const GONE_PROBE_WINDOW: Duration = Duration::from_secs(1);
}

impl UsbPacketIo for RusbIo {
    fn read_packet(&self, buf: &mut [u8], timeout: Duration) -> rusb::Result<usize> {
        RusbIo::read(self, buf, timeout)
    }

    fn write_packet(&self, buf: &[u8], timeout: Duration) -> rusb::Result<usize> {
        RusbIo::write(self, buf, timeout)
    }

    /// Asks the device for its status until it answers (present) or the kernel says it is
    /// gone. A transfer cut short by an unplug fails before usbcore has finished removing
    /// the device, so for a moment the probe fails with I/O errors too: those are retried.
    fn is_gone(&self) -> bool {
        let deadline = std::time::Instant::now() + Self::GONE_PROBE_WINDOW;
        let request_type = rusb::request_type(
            rusb::Direction::In,
            rusb::RequestType::Standard,
            rusb::Recipient::Device,
        );
        loop {
            let mut status = [0u8; 2];
            match self.handle.read_control(
                request_type,
                Self::GET_STATUS,
                0,
                0,
                &mut status,
                Duration::from_millis(100),
            ) {
                Ok(_) => return false,
                Err(rusb::Error::NoDevice) => return true,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                // Still there but not answering: not known to be unplugged.
                Err(_) => return false,
            }
        }
    }
}

impl Drop for RusbIo {
    fn drop(&mut self) {
        // The handle closes right after; releasing first lets the kernel reattach a driver.
        let _ = self.handle.release_interface(self.interface.number);
    }
}

/// A PIN pad on USB.
#[derive(Debug)]
pub struct UsbTransport {
    identity: DeviceIdentity,
    connector: Arc<dyn UsbConnector>,
    reconnect_policy: ReconnectPolicy,
    /// `None` after close, or while a reconnect has not succeeded yet.
    link: Option<UsbLink>,
}

impl UsbTransport {
    /// Opens the PIN pad `selector` names (libusb).
    pub async fn open(
        context: rusb::Context,
        selector: UsbSelector,
    ) -> Result<Self, TransportError> {
        Self::open_with(Arc::new(RusbConnector::new(context, selector))).await
    }

    /// Opens through any connector (tests use a fake one).
    pub async fn open_with(connector: Arc<dyn UsbConnector>) -> Result<Self, TransportError> {
        let (link, identity) = connect_link(Arc::clone(&connector), None).await?;
        Ok(UsbTransport {
            identity,
            connector,
            reconnect_policy: ReconnectPolicy::default(),
            link: Some(link),
        })
    }

    /// Sets how [`Transport::reconnect`] retries.
    pub fn set_reconnect_policy(&mut self, policy: ReconnectPolicy) {
        self.reconnect_policy = policy;
    }

    fn link(&mut self) -> Result<&mut UsbLink, TransportError> {
        self.link.as_mut().ok_or_else(|| TransportError::Closed {
            device: self.identity.to_string(),
        })
    }
}

/// Connects and starts the link once the device is completely enumerated: its serial is
/// readable (a device opened the moment it appears on the bus may not answer string requests
/// yet, and one without its serial cannot be told from another PIN pad) and, when `expected`
/// is given, the same one as before.
async fn connect_link(
    connector: Arc<dyn UsbConnector>,
    expected: Option<String>,
) -> Result<(UsbLink, DeviceIdentity), UsbError> {
    let (io, identity) = tokio::task::spawn_blocking(move || connector.connect())
        .await
        .map_err(|_| UsbError::WorkerStopped {
            device: "USB".into(),
        })??;
    match (&identity.serial, expected) {
        (None, _) => {
            return Err(UsbError::Enumerating {
                device: identity.to_string(),
            });
        }
        (Some(found), Some(expected)) if *found != expected => {
            return Err(UsbError::OtherDevice {
                expected,
                found: found.clone(),
            });
        }
        _ => {}
    }
    let link = UsbLink::start(io, identity.to_string())?;
    Ok((link, identity))
}

#[async_trait]
impl Transport for UsbTransport {
    fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    fn mtu(&self) -> Mtu {
        Mtu::USB
    }

    async fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        check_packet_size(Mtu::USB, packet)?;
        self.link()?.send(packet).await
    }

    async fn receive_packet(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.link()?.receive(timeout).await
    }

    async fn reconnect(&mut self) -> Result<(), TransportError> {
        // Release the old handle first: the same device reappears under a new handle.
        self.link = None;
        let connector = Arc::clone(&self.connector);
        let expected = self.identity.serial.clone();
        let (link, identity) = retry(
            &self.reconnect_policy,
            || connect_link(Arc::clone(&connector), expected.clone()),
            UsbError::is_permanent,
        )
        .await?;
        self.identity = identity;
        self.link = Some(link);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.link = None;
        Ok(())
    }
}

/// A PIN pad found on the bus, before it is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbListing {
    /// Address, and serial/name when the strings could be read.
    pub identity: DeviceIdentity,
    /// Opening it for the strings was refused (no udev rule yet).
    pub permission_denied: bool,
    /// Another program has it open.
    pub busy: bool,
}

/// Lists the PIN pads on the bus (our vendor/product id). Reads serial and product strings
/// where the device can be opened; a refusal is reported per device, not as an error.
pub fn list_devices(context: &rusb::Context) -> Result<Vec<UsbListing>, UsbError> {
    let devices = context
        .devices()
        .map_err(|e| map_libusb_error(e, UsbOperation::Enumerate, "the USB bus"))?;
    let mut found = Vec::new();
    for device in devices.iter() {
        let Ok(descriptor) = device.device_descriptor() else {
            continue;
        };
        if descriptor.vendor_id() != VENDOR_ID || descriptor.product_id() != PRODUCT_ID {
            continue;
        }
        let address = device_address(&device);
        let mut listing = UsbListing {
            identity: DeviceIdentity::new(TransportKind::Usb, address),
            permission_denied: false,
            busy: false,
        };
        match device.open() {
            Ok(handle) => {
                let (serial, name) = read_strings(&handle, &descriptor);
                listing.identity.serial = serial;
                listing.identity.name = name;
            }
            Err(rusb::Error::Access) => listing.permission_denied = true,
            Err(rusb::Error::Busy) => listing.busy = true,
            Err(error) => tracing::debug!(%error, "could not open a PIN pad to read its serial"),
        }
        found.push(listing);
    }
    Ok(found)
}

/// Something arrived or left on the bus (our vendor/product id only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbHotplugEvent {
    /// A PIN pad was plugged in.
    Arrived,
    /// A PIN pad was unplugged.
    Left,
}

/// Native hotplug notifications; stops when dropped.
#[derive(Debug)]
pub struct UsbHotplugWatch {
    stop: Arc<AtomicBool>,
    context: rusb::Context,
}

impl Drop for UsbHotplugWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The event loop waits with no timeout (no wake-ups while nothing happens on the
        // bus): wake it so it sees the stop.
        self.context.interrupt_handle_events();
    }
}

struct HotplugForwarder {
    events: mpsc::UnboundedSender<UsbHotplugEvent>,
}

impl rusb::Hotplug<rusb::Context> for HotplugForwarder {
    fn device_arrived(&mut self, _device: rusb::Device<rusb::Context>) {
        let _ = self.events.send(UsbHotplugEvent::Arrived);
    }

    fn device_left(&mut self, _device: rusb::Device<rusb::Context>) {
        let _ = self.events.send(UsbHotplugEvent::Left);
    }
}

/// Starts libusb hotplug notifications for our vendor/product id, handled on a dedicated
/// thread. `Ok(None)` where libusb has no hotplug support (then poll [`list_devices`]).
pub fn watch_hotplug(
    context: &rusb::Context,
) -> Result<Option<(UsbHotplugWatch, mpsc::UnboundedReceiver<UsbHotplugEvent>)>, UsbError> {
    if !rusb::has_hotplug() {
        return Ok(None);
    }
    let (sender, receiver) = mpsc::unbounded_channel();
    let registration = rusb::HotplugBuilder::new()
        .vendor_id(VENDOR_ID)
        .product_id(PRODUCT_ID)
        .enumerate(false)
        .register(
            context.clone(),
            Box::new(HotplugForwarder { events: sender }),
        )
        .map_err(|e| map_libusb_error(e, UsbOperation::Hotplug, "the USB bus"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread_context = context.clone();
    std::thread::Builder::new()
        .name("usb-hotplug".into())
        .spawn(move || {
            // Callbacks run inside handle_events; the registration lives as long as the loop.
            let _registration = registration;
            while !thread_stop.load(Ordering::Relaxed) {
                if let Err(error) = thread_context.handle_events(None) {
                    tracing::warn!(%error, "libusb event handling failed; hotplug stops");
                    return;
                }
            }
        })
        .map_err(|_| UsbError::WorkerStopped {
            device: "the USB bus".into(),
        })?;
    Ok(Some((
        UsbHotplugWatch {
            stop,
            context: context.clone(),
        },
        receiver,
    )))
}

#[cfg(test)]
mod tests {
    use super::link::tests::FakeIo;
    use super::*;
    use std::sync::Mutex;

    /// Fails `failures` times with the given error, then connects to `io`.
    #[derive(Debug)]
    struct FakeConnector {
        failures: Mutex<Vec<rusb::Error>>,
        attempts: Mutex<u32>,
        io: Mutex<Option<Arc<FakeIo>>>,
        /// Serials the next connects report (popped from the end); "PB-42" when empty.
        serials: Mutex<Vec<Option<String>>>,
    }

    impl std::fmt::Debug for FakeIo {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("FakeIo")
        }
    }

    impl UsbConnector for FakeConnector {
        fn connect(&self) -> Result<(Arc<dyn UsbPacketIo>, DeviceIdentity), UsbError> {
            *self.attempts.lock().unwrap() += 1;
            if let Some(error) = self.failures.lock().unwrap().pop() {
                return Err(map_libusb_error(error, UsbOperation::Open, "usb:1-4"));
            }
            let io = self.io.lock().unwrap().clone().ok_or(UsbError::NotFound {
                wanted: "any".into(),
            })?;
            let mut identity = DeviceIdentity::new(TransportKind::Usb, "1-4");
            identity.serial = self
                .serials
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(Some("PB-42".into()));
            Ok((io, identity))
        }
    }

    fn connector(failures: Vec<rusb::Error>, io: Arc<FakeIo>) -> Arc<FakeConnector> {
        Arc::new(FakeConnector {
            failures: Mutex::new(failures),
            attempts: Mutex::new(0),
            io: Mutex::new(Some(io)),
            serials: Mutex::new(Vec::new()),
        })
    }

    fn fast_policy() -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(1),
            multiplier: 2,
            max_delay: Duration::from_millis(4),
            max_attempts: 5,
        }
    }

    #[tokio::test]
    async fn open_moves_64_byte_packets_and_refuses_other_sizes() {
        let io = FakeIo::with_reads(vec![Ok(vec![7; 64])]);
        let mut transport = UsbTransport::open_with(connector(vec![], io.clone()))
            .await
            .unwrap();
        assert_eq!(transport.identity().serial.as_deref(), Some("PB-42"));
        assert_eq!(transport.mtu(), Mtu::USB);
        transport.send_packet(&[1; 64]).await.unwrap();
        assert!(matches!(
            transport.send_packet(&[1; 20]).await,
            Err(TransportError::WrongPacketSize { .. })
        ));
        assert_eq!(io.writes.lock().unwrap().len(), 1);
        assert_eq!(
            transport
                .receive_packet(Duration::from_secs(2))
                .await
                .unwrap(),
            Some(vec![7; 64])
        );
        transport.close().await.unwrap();
        assert!(matches!(
            transport.send_packet(&[1; 64]).await,
            Err(TransportError::Closed { .. })
        ));
    }

    #[tokio::test]
    async fn reconnect_retries_until_the_device_is_back() {
        let first = FakeIo::with_reads(vec![Err(rusb::Error::NoDevice)]);
        let fake = connector(vec![], first);
        let mut transport = UsbTransport::open_with(fake.clone()).await.unwrap();
        transport.set_reconnect_policy(fast_policy());
        assert!(
            transport
                .receive_packet(Duration::from_secs(2))
                .await
                .unwrap_err()
                .is_disconnect()
        );
        // Unplugged for two attempts, then back with a packet waiting.
        *fake.failures.lock().unwrap() = vec![rusb::Error::NoDevice, rusb::Error::NoDevice];
        *fake.io.lock().unwrap() = Some(FakeIo::with_reads(vec![Ok(vec![8; 64])]));
        transport.reconnect().await.unwrap();
        assert_eq!(*fake.attempts.lock().unwrap(), 4);
        assert_eq!(
            transport
                .receive_packet(Duration::from_secs(2))
                .await
                .unwrap(),
            Some(vec![8; 64])
        );
    }

    #[tokio::test]
    async fn reconnect_counts_only_a_completely_enumerated_device() {
        let fake = connector(vec![], FakeIo::with_reads(vec![]));
        let mut transport = UsbTransport::open_with(fake.clone()).await.unwrap();
        transport.set_reconnect_policy(fast_policy());
        // Replugged: first seen half-enumerated (no serial), then complete.
        *fake.serials.lock().unwrap() = vec![Some("PB-42".into()), None, None];
        let attempts_before = *fake.attempts.lock().unwrap();
        transport.reconnect().await.unwrap();
        assert_eq!(*fake.attempts.lock().unwrap(), attempts_before + 3);
        assert_eq!(transport.identity().serial.as_deref(), Some("PB-42"));
    }

    #[tokio::test]
    async fn reconnect_refuses_another_pin_pad() {
        let fake = connector(vec![], FakeIo::with_reads(vec![]));
        let mut transport = UsbTransport::open_with(fake.clone()).await.unwrap();
        transport.set_reconnect_policy(fast_policy());
        *fake.serials.lock().unwrap() = vec![Some("PB-7".into()); 6];
        let error = transport.reconnect().await.unwrap_err();
        assert!(error.to_string().contains("PB-7"), "{error}");
        assert!(error.to_string().contains("PB-42"), "{error}");
    }

    #[tokio::test]
    async fn reconnect_stops_at_permission_denied_with_the_udev_hint() {
        let fake = connector(vec![], FakeIo::with_reads(vec![]));
        let mut transport = UsbTransport::open_with(fake.clone()).await.unwrap();
        transport.set_reconnect_policy(fast_policy());
        *fake.failures.lock().unwrap() = vec![rusb::Error::Access];
        let attempts_before = *fake.attempts.lock().unwrap();
        let error = transport.reconnect().await.unwrap_err();
        assert_eq!(*fake.attempts.lock().unwrap(), attempts_before + 1);
        assert!(error.to_string().contains("udev"), "{error}");
    }

    #[tokio::test]
    async fn reconnect_gives_up_after_the_policy_s_attempts() {
        let fake = connector(vec![], FakeIo::with_reads(vec![]));
        let mut transport = UsbTransport::open_with(fake.clone()).await.unwrap();
        transport.set_reconnect_policy(fast_policy());
        *fake.io.lock().unwrap() = None;
        let error = transport.reconnect().await.unwrap_err();
        assert!(matches!(
            error,
            TransportError::Usb(UsbError::NotFound { .. })
        ));
        assert_eq!(*fake.attempts.lock().unwrap(), 1 + 5);
    }

    #[test]
    fn the_udev_rule_matches_the_ids_in_this_file() {
        let rule = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(UDEV_RULE_PATH),
        )
        .unwrap();
        assert!(rule.contains(&format!("ATTRS{{idVendor}}==\"{VENDOR_ID:04x}\"")));
        assert!(rule.contains(&format!("ATTRS{{idProduct}}==\"{PRODUCT_ID:04x}\"")));
        assert!(rule.contains("TAG+=\"uaccess\""));
    }

    #[test]
    fn selectors_display_what_was_looked_for() {
        assert_eq!(UsbSelector::Any.to_string(), "USB 1209:0001");
        assert_eq!(
            UsbSelector::Serial("PB-1".into()).to_string(),
            "serial PB-1"
        );
        assert_eq!(UsbSelector::Address("1-4".into()).to_string(), "usb:1-4");
    }
}
