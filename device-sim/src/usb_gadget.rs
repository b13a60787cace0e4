//! The USB gadget adapter (Linux): the simulated device served as a real USB device through
//! the kernel's gadget framework (configfs + FunctionFS, the `usb-gadget` crate), so the host
//! side of the same or another machine sees a PIN pad on its USB bus and the companion talks
//! to it through usbcore, usbfs and libusb exactly as to hardware.
//!
//! Identity (PROTOCOL.md §2.1, DESIGN.md "USB identity"): our vendor/product id, one
//! vendor-specific interface (class 0xFF) with an interrupt OUT/IN endpoint pair of 64-byte
//! packets, manufacturer/product/serial strings (the serial is the device serial), and
//! Microsoft OS descriptors (WinUSB compatible id + a device interface GUID) so Windows binds
//! WinUSB without a driver. Linux's configfs serves the Microsoft OS 1.0 descriptor set
//! (`os_desc`, vendor code 0xF0); Windows 8 and later read it as they read the 2.0 set, and
//! the gadget framework has no way to add the BOS platform capability 2.0 needs.
//!
//! The adapter only moves packets: one host "connection" of the link engine per USB
//! configuration (FunctionFS ENABLE opens it, DISABLE/UNBIND closes it, as an unplug or a
//! host reset does), exactly as the TCP adapter opens one per TCP connection.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use usb_gadget::function::custom::{
    Custom, Endpoint, EndpointDirection, EndpointReceiver, EndpointSender, Event, Interface,
    OsExtCompat, OsExtProp, TransferType,
};
use usb_gadget::{Class, Config, Gadget, Id, OsDescriptor, RegGadget, Speed, Strings, Udc};

use crate::link::ConnectionId;
use crate::sim::{ConnectionCommand, SimHandle};

/// USB vendor id (pid.codes; the same placeholder the companion looks for).
pub const VENDOR_ID: u16 = 0x1209;
/// USB product id (pid.codes test id; see the companion's `transport::usb::PRODUCT_ID`).
pub const PRODUCT_ID: u16 = 0x0001;
/// The manufacturer string.
pub const MANUFACTURER: &str = "PinBridge";
/// The product string.
pub const PRODUCT: &str = "PinBridge PIN pad (simulator)";
/// The device interface GUID Windows registers for the WinUSB interface (applications find
/// the PIN pad by it through SetupAPI). Fixed for the product, never per device.
pub const DEVICE_INTERFACE_GUID: &str = "6b7c5a1e-3f0d-4c2b-9a57-5e1d2c8b4f10";
/// Packet size: one interrupt transfer (PROTOCOL.md §2.1).
pub const PACKET_SIZE: usize = 64;

/// How long a blocking endpoint or ep0 wait lasts before the thread checks for a stop.
const POLL: Duration = Duration::from_millis(200);

/// Why the gadget could not be served.
#[derive(Debug, thiserror::Error)]
pub enum UsbGadgetError {
    /// No USB device controller: the machine has no peripheral port, or the virtual one is
    /// not loaded.
    #[error(
        "no USB device controller (UDC) on this machine. A desktop has none: load the virtual \
         one with `sudo modprobe dummy_hcd` (it also needs `libcomposite` and `usb_f_fs`, which \
         modprobe loads on demand), then run this again as root"
    )]
    NoUdc,
    /// The controller asked for by name does not exist.
    #[error("no USB device controller named {wanted:?} (present: {present})")]
    UnknownUdc {
        /// The name asked for.
        wanted: String,
        /// The names present.
        present: String,
    },
    /// configfs is not mounted.
    #[error(
        "configfs is not mounted: `sudo mount -t configfs none /sys/kernel/config` (and \
         `sudo modprobe libcomposite`)"
    )]
    NoConfigfs,
    /// Gadgets are made by root only.
    #[error("making a USB gadget needs root (configfs and FunctionFS): run with sudo")]
    NotRoot,
    /// Anything else the kernel refused.
    #[error("USB gadget: {what}: {source}")]
    Kernel {
        /// The step that failed.
        what: &'static str,
        /// The kernel's answer.
        source: std::io::Error,
    },
}

fn kernel(what: &'static str) -> impl FnOnce(std::io::Error) -> UsbGadgetError {
    move |source| match source.kind() {
        ErrorKind::PermissionDenied => UsbGadgetError::NotRoot,
        _ if source.to_string().contains("configfs is not mounted") => UsbGadgetError::NoConfigfs,
        _ => UsbGadgetError::Kernel { what, source },
    }
}

/// Picks the controller: the named one, or the only/first one.
fn choose_udc(wanted: Option<&str>) -> Result<Udc, UsbGadgetError> {
    let udcs = usb_gadget::udcs().map_err(kernel("listing USB device controllers"))?;
    let mut udcs: Vec<Udc> = udcs.into_iter().collect();
    udcs.sort_by_key(|udc| udc.name().to_os_string());
    match wanted {
        None => udcs.into_iter().next().ok_or(UsbGadgetError::NoUdc),
        Some(wanted) => {
            let present = udcs
                .iter()
                .map(|udc| udc.name().to_string_lossy().into_owned())
                .collect::<Vec<_>>();
            if udcs.is_empty() {
                return Err(UsbGadgetError::NoUdc);
            }
            udcs.into_iter()
                .find(|udc| udc.name() == wanted)
                .ok_or_else(|| UsbGadgetError::UnknownUdc {
                    wanted: wanted.to_owned(),
                    present: present.join(", "),
                })
        }
    }
}

/// Which host connection is open now (the USB configuration is enabled), shared by the
/// ep0, reader and writer threads.
#[derive(Debug, Default)]
struct Enabled {
    connection: Mutex<Option<ConnectionId>>,
    changed: Condvar,
}

impl Enabled {
    fn set(&self, value: Option<ConnectionId>) {
        *self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
        self.changed.notify_all();
    }

    /// The open connection now.
    fn current(&self) -> Option<ConnectionId> {
        *self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The open connection, waiting up to `timeout` for one.
    fn wait(&self, timeout: Duration) -> Option<ConnectionId> {
        let guard = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |c| c.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard
    }
}

/// A device served as a USB gadget; unbound and removed from configfs when dropped.
#[derive(Debug)]
pub struct UsbGadgetDevice {
    /// The controller it is bound to.
    pub udc: String,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    registration: Option<RegGadget>,
}

impl UsbGadgetDevice {
    /// Registers the gadget for `handle`'s device on `udc` (or the first controller) and
    /// starts moving packets. The core must be ticked by its owner (see
    /// [`crate::server::spawn_ticker`]).
    pub fn spawn(handle: SimHandle, udc: Option<&str>) -> Result<Self, UsbGadgetError> {
        let udc = choose_udc(udc)?;
        let serial = handle.lock().device.serial().to_string();
        let (ep_out, out_direction) = EndpointDirection::host_to_device();
        let (ep_in, in_direction) = EndpointDirection::device_to_host();
        let mut interface = Interface::new(Class::vendor_specific(0, 0), "PinBridge packets")
            .with_endpoint(packet_endpoint(out_direction))
            .with_endpoint(packet_endpoint(in_direction))
            .with_os_ext_compat(OsExtCompat::winusb());
        if let Ok(guid) = DEVICE_INTERFACE_GUID.parse() {
            interface = interface.with_os_ext_prop(OsExtProp::device_interface_guid(guid));
        }
        let (custom, function) = Custom::builder().with_interface(interface).build();
        let mut gadget = Gadget::new(
            Class::INTERFACE_SPECIFIC,
            Id::new(VENDOR_ID, PRODUCT_ID),
            Strings::new(MANUFACTURER, PRODUCT, &serial),
        )
        .with_config(Config::new("PIN pad").with_function(function))
        .with_os_descriptor(OsDescriptor::microsoft());
        // High speed: dummy_hcd's and most controllers' speed; the 64-byte interrupt
        // endpoints are valid at full speed too.
        gadget.max_speed = Some(Speed::HighSpeed);
        let registration = gadget.bind(&udc).map_err(kernel("binding the gadget"))?;
        let udc_name = udc.name().to_string_lossy().into_owned();
        tracing::info!(udc = %udc_name, %serial, "USB gadget bound");

        let stop = Arc::new(AtomicBool::new(false));
        let enabled = Arc::new(Enabled::default());
        let (writers, writer_queue) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(body)
                .map_err(kernel("starting a thread"))
        };
        {
            let (handle, stop, enabled) = (handle.clone(), stop.clone(), enabled.clone());
            threads.push(spawn(
                "usb-gadget-ep0",
                Box::new(move || control_loop(custom, &handle, &stop, &enabled, &writers)),
            )?);
        }
        {
            let (handle, stop, enabled) = (handle.clone(), stop.clone(), enabled.clone());
            threads.push(spawn(
                "usb-gadget-out",
                Box::new(move || read_loop(ep_out, &handle, &stop, &enabled)),
            )?);
        }
        {
            let (stop, enabled) = (stop.clone(), enabled.clone());
            threads.push(spawn(
                "usb-gadget-in",
                Box::new(move || write_loop(ep_in, &stop, &enabled, &writer_queue)),
            )?);
        }
        Ok(Self {
            udc: udc_name,
            stop,
            threads,
            registration: Some(registration),
        })
    }

    /// Unbinds and removes the gadget (the host sees an unplug) and stops the threads.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(registration) = self.registration.take()
            && let Err(error) = registration.remove()
        {
            tracing::warn!(%error, "removing the USB gadget failed");
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for UsbGadgetDevice {
    fn drop(&mut self) {
        self.stop();
    }
}

fn packet_endpoint(direction: EndpointDirection) -> Endpoint {
    let mut endpoint = Endpoint::custom(direction, TransferType::Interrupt);
    endpoint.max_packet_size_hs = u16::try_from(PACKET_SIZE).unwrap_or(64);
    endpoint.max_packet_size_ss = u16::try_from(PACKET_SIZE).unwrap_or(64);
    // Poll every microframe at high speed (bInterval 1 = 125 µs), every frame at full speed.
    endpoint.interval = 1;
    endpoint
}

/// ep0: the host configures (ENABLE) and unconfigures/unplugs (DISABLE, UNBIND) the
/// function; each enable is a new host connection of the link engine.
fn control_loop(
    mut custom: Custom,
    handle: &SimHandle,
    stop: &AtomicBool,
    enabled: &Enabled,
    writers: &std::sync::mpsc::Sender<(ConnectionId, mpsc::UnboundedReceiver<ConnectionCommand>)>,
) {
    let close = |connection: &mut Option<ConnectionId>| {
        if let Some(id) = connection.take() {
            enabled.set(None);
            handle.lock().disconnect(id);
            tracing::info!(connection = id, "USB host gone (unplugged or reset)");
        }
    };
    let mut connection = None;
    while !stop.load(Ordering::Relaxed) {
        let event = match custom.event_timeout(POLL) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, "USB gadget ep0 failed; the gadget stops serving");
                break;
            }
        };
        match event {
            Event::Enable => {
                close(&mut connection);
                let (sender, commands) = mpsc::unbounded_channel();
                let id = handle.lock().connect(sender);
                if writers.send((id, commands)).is_err() {
                    break;
                }
                connection = Some(id);
                enabled.set(Some(id));
                tracing::info!(connection = id, "USB host configured the PIN pad");
            }
            // Suspend is not an unplug: the host resumes the same configuration.
            Event::Disable | Event::Unbind => close(&mut connection),
            // No class or vendor requests: dropping the request stalls it, as PROTOCOL.md
            // defines none (the OS descriptors are answered by the kernel).
            Event::SetupDeviceToHost(_) | Event::SetupHostToDevice(_) => {}
            _ => {}
        }
    }
    close(&mut connection);
}

/// Interrupt OUT: each 64-byte transfer is one packet for the link engine.
fn read_loop(
    mut endpoint: EndpointReceiver,
    handle: &SimHandle,
    stop: &AtomicBool,
    enabled: &Enabled,
) {
    while !stop.load(Ordering::Relaxed) {
        let Some(connection) = enabled.wait(POLL) else {
            continue;
        };
        match endpoint.recv_and_fetch_timeout(BytesMut::with_capacity(PACKET_SIZE), POLL) {
            Ok(packet) if packet.len() == PACKET_SIZE => {
                handle.receive(connection, packet.to_vec(), handle.link_now_ms());
            }
            // A short or empty transfer is not a packet (PROTOCOL.md §2.1).
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::TimedOut => {}
            // The endpoint is disabled between a DISABLE and the next ENABLE: wait for that.
            Err(_) => {
                let _ = enabled.wait(Duration::ZERO);
                std::thread::sleep(POLL / 4);
            }
        }
    }
}

/// Interrupt IN: the link engine's packets for the open connection, in order.
fn write_loop(
    mut endpoint: EndpointSender,
    stop: &AtomicBool,
    enabled: &Enabled,
    connections: &std::sync::mpsc::Receiver<(
        ConnectionId,
        mpsc::UnboundedReceiver<ConnectionCommand>,
    )>,
) {
    while !stop.load(Ordering::Relaxed) {
        let (id, mut commands) = match connections.recv_timeout(POLL) {
            Ok(connection) => connection,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // Packets queued for a host that is gone are never sent to the next one.
        let _ = endpoint.cancel();
        let open = || !stop.load(Ordering::Relaxed) && enabled.current() == Some(id);
        // Ends when the core forgets the connection (its sender is dropped).
        while let Some(command) = commands.blocking_recv() {
            match command {
                ConnectionCommand::Packet { packet, delay_ms } => {
                    if delay_ms > 0 {
                        std::thread::sleep(Duration::from_millis(delay_ms));
                    }
                    match deliver(&mut endpoint, Bytes::from(packet), open) {
                        Delivery::Queued => {}
                        Delivery::HostGone => break,
                        Delivery::Failed(error) => {
                            tracing::debug!(%error, "USB IN packet not delivered");
                            let _ = endpoint.cancel();
                        }
                    }
                }
                // Fault injection "disconnect": a USB device cannot hang up on its host; the
                // packets stop until the host configures the device again.
                ConnectionCommand::Close => break,
            }
        }
    }
}

/// An IN endpoint's queue (the seam [`deliver`] is tested through).
trait InEndpoint {
    /// Queues `data`, waiting up to `timeout` for room (the queue is full while the host
    /// reads nothing).
    fn send_timeout(&mut self, data: Bytes, timeout: Duration) -> std::io::Result<()>;
}

impl InEndpoint for EndpointSender {
    fn send_timeout(&mut self, data: Bytes, timeout: Duration) -> std::io::Result<()> {
        EndpointSender::send_timeout(self, data, timeout)
    }
}

/// What became of one IN packet.
#[derive(Debug)]
enum Delivery {
    /// In the endpoint's queue: the host gets it at its next polls.
    Queued,
    /// The host unconfigured the device or the gadget stops: the packet is for nobody.
    HostGone,
    /// The endpoint failed.
    Failed(std::io::Error),
}

/// Queues one IN packet, however long the host takes to read: a device's IN endpoint holds
/// its packet until the host polls for it, so the reference PIN pad never gives up on one
/// while its host is there. A host that reads only while it waits for an answer (an idle
/// companion reads nothing, to cost no wake-ups) still gets every packet, in order. Only a
/// gone host (unplug, reset, the gadget stopping: `open` false) drops it.
fn deliver(endpoint: &mut impl InEndpoint, packet: Bytes, open: impl Fn() -> bool) -> Delivery {
    loop {
        match endpoint.send_timeout(packet.clone(), POLL) {
            Ok(()) => return Delivery::Queued,
            Err(error) if error.kind() == ErrorKind::TimedOut => {
                if !open() {
                    return Delivery::HostGone;
                }
            }
            Err(error) => return Delivery::Failed(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endpoint whose queue stays full for `full_for` attempts (a host reading nothing).
    struct SlowHost {
        full_for: usize,
        attempts: usize,
        queued: Vec<Bytes>,
    }

    impl InEndpoint for SlowHost {
        fn send_timeout(&mut self, data: Bytes, _timeout: Duration) -> std::io::Result<()> {
            self.attempts += 1;
            if self.attempts <= self.full_for {
                return Err(std::io::Error::new(ErrorKind::TimedOut, "no send space"));
            }
            self.queued.push(data);
            Ok(())
        }
    }

    #[test]
    fn a_packet_waits_for_a_host_that_reads_late() {
        // The host leaves the endpoint unread for 25 polls (5 s): the packet is still
        // delivered, unchanged (the old writer gave up after 1 s and cancelled the queue).
        let mut host = SlowHost {
            full_for: 25,
            attempts: 0,
            queued: Vec::new(),
        };
        let packet = Bytes::from_static(&[0x42; PACKET_SIZE]);
        assert!(matches!(
            deliver(&mut host, packet.clone(), || true),
            Delivery::Queued
        ));
        assert_eq!(host.queued, vec![packet]);
        assert_eq!(host.attempts, 26);
    }

    #[test]
    fn a_packet_for_a_gone_host_is_dropped() {
        let mut host = SlowHost {
            full_for: usize::MAX,
            attempts: 0,
            queued: Vec::new(),
        };
        let gone_after = std::cell::Cell::new(3);
        let open = || {
            gone_after.set(gone_after.get() - 1);
            gone_after.get() > 0
        };
        let packet = Bytes::from_static(&[0x42; PACKET_SIZE]);
        assert!(matches!(
            deliver(&mut host, packet, open),
            Delivery::HostGone
        ));
        assert!(host.queued.is_empty());
        assert_eq!(host.attempts, 3);
    }
}
