//! The BLE adapter (Linux): the simulated device as a Bluetooth LE peripheral through BlueZ
//! over D-Bus (the `bluer` crate), so a central on another controller (or another machine)
//! finds, connects and talks to it through the real Bluetooth stack.
//!
//! The GATT service is the companion's (`companion::transport::ble`, PROTOCOL.md §2.1): the
//! control point takes one host-to-device packet per write (write or write without response),
//! status notifies one device-to-host packet per notification, the control-point length reads
//! as the packet size (`u16` big-endian) and the service revision as the protocol version.
//! Packets of any other length are dropped (§2.1); lost ones are recovered by the link's
//! acknowledged delivery (every MSG is ACKed and retransmitted, §2.9), which the link engine
//! does as on every transport. A central subscribing to status is a host connection of the
//! link engine; its unsubscribing or disconnecting closes it (the device abandons what that
//! host's channel was doing).
//!
//! The advertisement carries the service UUID and the local name `PinBridge <serial>` (the
//! scan response has room for it; a 128-bit service-data field would not fit next to the
//! service UUID in a legacy advertisement).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::gatt::CharacteristicReader;
use bluer::gatt::local::{
    Application, ApplicationHandle, Characteristic, CharacteristicControl,
    CharacteristicControlEvent, CharacteristicNotifier, CharacteristicNotify,
    CharacteristicNotifyMethod, CharacteristicRead, CharacteristicWrite, CharacteristicWriteMethod,
    Service, characteristic_control,
};
use firmware_protocol::link::RetransmitPolicy;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::link::ConnectionId;
use crate::sim::{ConnectionCommand, SimHandle};

/// The PinBridge GATT service (the companion's `SERVICE_UUID`; a companion test checks they
/// agree).
pub const SERVICE_UUID: Uuid = Uuid::from_u128(0xbd7f_0001_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Control point: host -> device packets.
pub const CONTROL_POINT_UUID: Uuid = Uuid::from_u128(0xbd7f_0002_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Status: device -> host packets.
pub const STATUS_UUID: Uuid = Uuid::from_u128(0xbd7f_0003_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Control-point length: the packet size.
pub const CONTROL_POINT_LENGTH_UUID: Uuid =
    Uuid::from_u128(0xbd7f_0004_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// Service revision: the protocol version.
pub const SERVICE_REVISION_UUID: Uuid = Uuid::from_u128(0xbd7f_0005_ff8f_4abd_a281_9ad1_4d64_c6a9);
/// What the advertised name starts with; the device serial follows.
pub const NAME_PREFIX: &str = "PinBridge ";

/// Why the peripheral could not be served.
#[derive(Debug, thiserror::Error)]
pub enum BlePeripheralError {
    /// BlueZ is not reachable.
    #[error(
        "BlueZ is not reachable over D-Bus ({0}); start bluetoothd (systemctl start bluetooth)"
    )]
    NoBluez(bluer::Error),
    /// The adapter asked for (or any) is missing.
    #[error("no Bluetooth adapter {wanted} ({source}); list them with `bluetoothctl list`")]
    NoAdapter {
        /// The adapter asked for, or "(default)".
        wanted: String,
        /// BlueZ's answer.
        source: bluer::Error,
    },
    /// BlueZ refused a step.
    #[error("Bluetooth: {what}: {source}")]
    Bluez {
        /// The step.
        what: &'static str,
        /// BlueZ's answer.
        source: bluer::Error,
    },
}

/// A device served as a BLE peripheral; the service and advertisement go when dropped.
#[derive(Debug)]
pub struct BlePeripheral {
    /// The adapter it is served on.
    pub adapter: String,
    /// The advertised name.
    pub name: String,
    _application: ApplicationHandle,
    _advertisement: AdvertisementHandle,
    receiver: JoinHandle<()>,
    link: JoinHandle<()>,
}

impl Drop for BlePeripheral {
    fn drop(&mut self) {
        self.receiver.abort();
        self.link.abort();
    }
}

impl BlePeripheral {
    /// Registers the service and the advertisement for `handle`'s device on `adapter` (or
    /// BlueZ's default adapter). The core must be ticked by its owner.
    pub async fn spawn(
        handle: SimHandle,
        adapter: Option<&str>,
    ) -> Result<Self, BlePeripheralError> {
        let session = bluer::Session::new()
            .await
            .map_err(BlePeripheralError::NoBluez)?;
        let no_adapter = |source| BlePeripheralError::NoAdapter {
            wanted: adapter.unwrap_or("(default)").to_owned(),
            source,
        };
        let adapter = match adapter {
            Some(name) => session.adapter(name).map_err(no_adapter)?,
            None => session.default_adapter().await.map_err(no_adapter)?,
        };
        adapter
            .set_powered(true)
            .await
            .map_err(|source| BlePeripheralError::Bluez {
                what: "powering the adapter on",
                source,
            })?;
        let (serial, packet_size) = {
            let mut core = handle.lock();
            // Before any central connects: every channel of this device times its answers'
            // retransmissions for a BLE round trip (PROTOCOL.md §2.1.1, "Timing").
            core.link.set_retransmit(RetransmitPolicy::BLE);
            (core.device.serial().to_string(), core.link.mtu().get())
        };
        let current: Arc<Mutex<Option<ConnectionId>>> = Arc::new(Mutex::new(None));

        // The control point is served through an acquired socket (BlueZ `AcquireWrite`), not
        // as a D-Bus `WriteValue` per packet: bluer runs each D-Bus method call as a task of
        // its own, and tasks on a multi-threaded runtime (tokio's LIFO slot, two workers) run
        // in any order, so two packets written back to back could reach the link engine
        // swapped and a multi-packet message never reassembled. BlueZ writes every ATT write
        // to the socket in the order it arrived, as a PIN pad's radio would hand them over.
        let (control_point_control, control_point_handle) = characteristic_control();
        let write = CharacteristicWrite {
            write: true,
            write_without_response: true,
            method: CharacteristicWriteMethod::Io,
            ..Default::default()
        };
        // Status notifications are D-Bus property changes (BlueZ's `StartNotify` model): a
        // property change goes to every subscribed central, and `StopNotify` comes only when
        // the last one leaves, which suits centrals that come and go while an earlier one's
        // departure is still being reported. (An acquired notify socket, `AcquireNotify`, was
        // tried: it is per central, and it did not change the notification loss the rig
        // shows under emulation; see the README's real-stack section.)
        let (notifiers, new_notifiers) = mpsc::unbounded_channel();
        let notify = CharacteristicNotify {
            notify: true,
            method: CharacteristicNotifyMethod::Fun(Box::new(move |notifier| {
                let _ = notifiers.send(notifier);
                Box::pin(async {})
            })),
            ..Default::default()
        };
        let link = tokio::spawn(serve_link(handle.clone(), current.clone(), new_notifiers));
        let read_value = |value: Vec<u8>| CharacteristicRead {
            read: true,
            fun: Box::new(move |_request| {
                let value = value.clone();
                Box::pin(async move { Ok(value) })
            }),
            ..Default::default()
        };
        let length = u16::try_from(packet_size).unwrap_or(u16::MAX).to_be_bytes();
        let application = Application {
            services: vec![Service {
                uuid: SERVICE_UUID,
                primary: true,
                characteristics: vec![
                    Characteristic {
                        uuid: CONTROL_POINT_UUID,
                        write: Some(write),
                        control_handle: control_point_handle,
                        ..Default::default()
                    },
                    Characteristic {
                        uuid: STATUS_UUID,
                        notify: Some(notify),
                        ..Default::default()
                    },
                    Characteristic {
                        uuid: CONTROL_POINT_LENGTH_UUID,
                        read: Some(read_value(length.to_vec())),
                        ..Default::default()
                    },
                    Characteristic {
                        uuid: SERVICE_REVISION_UUID,
                        read: Some(read_value(vec![firmware_protocol::link::PROTOCOL_VERSION])),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let application = adapter
            .serve_gatt_application(application)
            .await
            .map_err(|source| BlePeripheralError::Bluez {
                what: "registering the GATT service",
                source,
            })?;
        let name = format!("{NAME_PREFIX}{serial}");
        let advertisement = adapter
            .advertise(Advertisement {
                service_uuids: [SERVICE_UUID].into_iter().collect(),
                local_name: Some(name.clone()),
                discoverable: Some(true),
                ..Default::default()
            })
            .await
            .map_err(|source| BlePeripheralError::Bluez {
                what: "advertising",
                source,
            })?;
        let receiver = tokio::spawn(receive_control_point(
            handle,
            current,
            control_point_control,
            packet_size,
        ));
        tracing::info!(adapter = adapter.name(), %name, "BLE peripheral advertising");
        Ok(Self {
            adapter: adapter.name().to_owned(),
            name,
            _application: application,
            _advertisement: advertisement,
            receiver,
            link,
        })
    }
}

/// The BLE link as a host connection of the link engine. A PIN pad has one central at a
/// time: the connection opens with a subscription to status and closes when the latest
/// subscription stops (the central unsubscribed or disconnected: the device abandons what the
/// host was doing). BlueZ tells the application about subscriptions over D-Bus, later than the
/// central's first writes may arrive: a new central's subscription can start before the
/// previous one's stop is reported, and its first packets can come before either. So a new
/// subscription takes over the open connection instead of opening another, and only the stop
/// of the latest one closes it; the engine's packets go out, in order, as notifications of the
/// latest subscription (BlueZ sends them to the subscribed centrals).
async fn serve_link(
    handle: SimHandle,
    current: Arc<Mutex<Option<ConnectionId>>>,
    mut new_notifiers: mpsc::UnboundedReceiver<CharacteristicNotifier>,
) {
    let mut notifier: Option<CharacteristicNotifier> = None;
    let mut open: Option<(ConnectionId, mpsc::UnboundedReceiver<ConnectionCommand>)> = None;
    let set_current = |connection: Option<ConnectionId>| {
        *current.lock().unwrap_or_else(|p| p.into_inner()) = connection;
    };
    loop {
        let stopped = async {
            match &notifier {
                Some(notifier) => notifier.stopped().await,
                None => std::future::pending().await,
            }
        };
        let command = async {
            match &mut open {
                Some((_, commands)) => commands.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            new = new_notifiers.recv() => {
                let Some(new) = new else { break };
                if open.is_none() {
                    let (sender, commands) = mpsc::unbounded_channel();
                    let connection = handle.lock().connect(sender);
                    set_current(Some(connection));
                    open = Some((connection, commands));
                }
                tracing::info!(connection = ?open.as_ref().map(|(c, _)| *c), "BLE central subscribed");
                notifier = Some(new);
            }
            () = stopped => {
                notifier = None;
                close(&handle, &mut open, &set_current);
                tracing::info!("BLE central gone");
            }
            command = command => match command {
                Some(ConnectionCommand::Packet { packet, delay_ms }) => {
                    if delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    }
                    if let Some(active) = notifier.as_mut()
                        && let Err(error) = active.notify(packet).await
                    {
                        tracing::info!(%error, "BLE notification failed; the central is gone");
                        notifier = None;
                        close(&handle, &mut open, &set_current);
                    }
                }
                // Fault injection "disconnect", or the core forgetting us: the host's channels
                // go; a central still subscribed gets a fresh connection (it will INIT again).
                Some(ConnectionCommand::Close) | None => {
                    close(&handle, &mut open, &set_current);
                    if notifier.is_some() {
                        let (sender, commands) = mpsc::unbounded_channel();
                        let connection = handle.lock().connect(sender);
                        set_current(Some(connection));
                        open = Some((connection, commands));
                    }
                }
            },
        }
    }
    close(&handle, &mut open, &set_current);
}

fn close(
    handle: &SimHandle,
    open: &mut Option<(ConnectionId, mpsc::UnboundedReceiver<ConnectionCommand>)>,
    set_current: &impl Fn(Option<ConnectionId>),
) {
    if let Some((connection, _)) = open.take() {
        set_current(None);
        handle.lock().disconnect(connection);
    }
}

/// The control point's writes: BlueZ hands each central's writes over on a socket of their
/// own (acquired at its first write, closed when it disconnects); each packet goes, in order,
/// to the link engine as the subscribed central's.
async fn receive_control_point(
    handle: SimHandle,
    current: Arc<Mutex<Option<ConnectionId>>>,
    mut control: CharacteristicControl,
    packet_size: usize,
) {
    let mut reading: Option<JoinHandle<()>> = None;
    while let Some(event) = control.next().await {
        let CharacteristicControlEvent::Write(request) = event else {
            continue;
        };
        let reader = match request.accept() {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(%error, "BLE: could not accept the control point's writes");
                continue;
            }
        };
        tracing::info!(central = %reader.device_address(), "BLE central writes the control point");
        // One central at a time: a new socket means the previous central is gone.
        if let Some(previous) = reading.take() {
            previous.abort();
        }
        reading = Some(tokio::spawn(read_packets(
            handle.clone(),
            current.clone(),
            reader,
            packet_size,
        )));
    }
    if let Some(reading) = reading {
        reading.abort();
    }
}

async fn read_packets(
    handle: SimHandle,
    current: Arc<Mutex<Option<ConnectionId>>>,
    reader: CharacteristicReader,
    packet_size: usize,
) {
    loop {
        match reader.recv().await {
            // End of stream: BlueZ closed the socket (the central disconnected).
            Ok(packet) if packet.is_empty() => break,
            Ok(packet) => {
                let connection = *current.lock().unwrap_or_else(|p| p.into_inner());
                // Other lengths are not packets (§2.1); nor is anything before a subscription.
                if let Some(connection) = connection
                    && packet.len() == packet_size
                {
                    // The device's work (its cryptography: hundreds of milliseconds in a
                    // debug build under emulation) runs off the runtime's two workers, as the
                    // USB gadget's reader thread does: on a worker, with the ticker blocked on
                    // the core's lock on the other, no worker was left for bluer's D-Bus
                    // connection (the notifications) meanwhile. Awaited: packets stay in order.
                    let handle = handle.clone();
                    let received = tokio::task::spawn_blocking(move || {
                        handle.receive(connection, packet, handle.link_now_ms());
                    })
                    .await;
                    if received.is_err() {
                        break;
                    }
                }
            }
            Err(error) => {
                tracing::info!(%error, "BLE control point socket closed");
                break;
            }
        }
    }
}
