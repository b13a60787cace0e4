use std::sync::Mutex as StdMutex;

use firmware_protocol::link::Mtu;
use tokio::sync::mpsc;

use super::*;
use crate::transport::memory::MemoryTransport;

fn device(kind: TransportKind, address: &str, state: DeviceState) -> DeviceInfo {
    DeviceInfo::new(DeviceIdentity::new(kind, address), state)
}

fn with_serial(mut info: DeviceInfo, serial: &str) -> DeviceInfo {
    info.identity.serial = Some(serial.into());
    info
}

/// A source whose scan result the test sets; optionally with native change notifications.
#[derive(Debug)]
struct FakeSource {
    kind: TransportKind,
    scan: StdMutex<Result<Vec<DeviceInfo>, String>>,
    scans: StdMutex<u32>,
    changes: StdMutex<Option<mpsc::UnboundedReceiver<()>>>,
}

impl FakeSource {
    fn new(kind: TransportKind, devices: Vec<DeviceInfo>) -> Arc<Self> {
        Arc::new(FakeSource {
            kind,
            scan: StdMutex::new(Ok(devices)),
            scans: StdMutex::new(0),
            changes: StdMutex::new(None),
        })
    }

    fn set(&self, devices: Vec<DeviceInfo>) {
        *self.scan.lock().unwrap() = Ok(devices);
    }

    fn fail(&self, message: &str) {
        *self.scan.lock().unwrap() = Err(message.into());
    }
}

#[async_trait]
impl DeviceSource for FakeSource {
    fn kind(&self) -> TransportKind {
        self.kind
    }

    async fn scan(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        *self.scans.lock().unwrap() += 1;
        self.scan
            .lock()
            .unwrap()
            .clone()
            .map_err(|message| TransportError::Disconnected { device: message })
    }

    async fn open(&self, device: &DeviceInfo) -> Result<Box<dyn Transport>, TransportError> {
        let (host, _device) = MemoryTransport::pair(Mtu::USB, &device.id().address);
        Ok(Box::new(host))
    }

    async fn changes(&self) -> Option<ChangeStream> {
        let mut receiver = self.changes.lock().unwrap().take()?;
        Some(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed())
    }
}

fn drain(receiver: &mut broadcast::Receiver<DeviceEvent>) -> Vec<DeviceEvent> {
    std::iter::from_fn(|| receiver.try_recv().ok()).collect()
}

#[test]
fn diff_reports_arrivals_changes_and_departures() {
    let a = device(TransportKind::Usb, "1-1", DeviceState::Available);
    let b = device(TransportKind::Usb, "1-2", DeviceState::PermissionDenied);
    let c = device(TransportKind::Sim, "127.0.0.1:1", DeviceState::Available);
    let old: BTreeMap<_, _> = [a.clone(), b.clone()]
        .into_iter()
        .map(|d| (d.id().clone(), d))
        .collect();
    let b_fixed = DeviceInfo::new(b.identity.clone(), DeviceState::Available);
    let new: BTreeMap<_, _> = [b_fixed.clone(), c.clone()]
        .into_iter()
        .map(|d| (d.id().clone(), d))
        .collect();
    assert_eq!(
        diff_devices(&old, &new),
        [
            DeviceEvent::Changed(b_fixed),
            DeviceEvent::Arrived(c),
            DeviceEvent::Left(a.id().clone()),
        ]
    );
    assert!(diff_devices(&new, &new).is_empty());
}

#[tokio::test]
async fn lists_devices_of_every_transport_and_reports_changes_as_events() {
    let usb = FakeSource::new(
        TransportKind::Usb,
        vec![
            with_serial(
                device(TransportKind::Usb, "1-4", DeviceState::Available),
                "PB-1",
            ),
            device(TransportKind::Usb, "1-5", DeviceState::PermissionDenied),
        ],
    );
    let sim = FakeSource::new(
        TransportKind::Sim,
        vec![device(
            TransportKind::Sim,
            "127.0.0.1:7000",
            DeviceState::Available,
        )],
    );
    let manager = DeviceManager::new()
        .with_source(usb.clone())
        .with_source(sim.clone());
    let mut events = manager.subscribe();

    let listed = manager.refresh().await;
    let ids: Vec<String> = listed.iter().map(|d| d.id().to_string()).collect();
    assert_eq!(ids, ["usb:1-4", "usb:1-5", "sim:127.0.0.1:7000"]);
    assert_eq!(drain(&mut events).len(), 3);
    assert_eq!(
        listed[1].to_string(),
        "usb:1-5: permission denied (install packaging/linux/70-pinbridge.rules)"
    );

    // Unplug one, fix the other's permissions.
    usb.set(vec![device(
        TransportKind::Usb,
        "1-5",
        DeviceState::Available,
    )]);
    manager.refresh().await;
    assert_eq!(
        drain(&mut events),
        [
            DeviceEvent::Changed(device(TransportKind::Usb, "1-5", DeviceState::Available)),
            DeviceEvent::Left(DeviceId::new(TransportKind::Usb, "1-4")),
        ]
    );
    assert_eq!(manager.devices().len(), 2);
}

#[tokio::test]
async fn a_failing_source_keeps_its_devices_and_says_why() {
    let usb = FakeSource::new(
        TransportKind::Usb,
        vec![device(TransportKind::Usb, "1-4", DeviceState::Available)],
    );
    let sim = FakeSource::new(TransportKind::Sim, vec![]);
    let manager = DeviceManager::new()
        .with_source(usb.clone())
        .with_source(sim.clone());
    manager.refresh().await;
    let mut events = manager.subscribe();
    usb.fail("libusb gone");
    sim.set(vec![device(
        TransportKind::Sim,
        "127.0.0.1:1",
        DeviceState::Available,
    )]);
    manager.refresh().await;
    let events = drain(&mut events);
    assert!(matches!(
        &events[0],
        DeviceEvent::SourceFailed { kind: TransportKind::Usb, message } if message.contains("libusb gone")
    ));
    assert!(matches!(&events[1], DeviceEvent::Arrived(d) if d.id().kind == TransportKind::Sim));
    assert_eq!(manager.devices().len(), 2, "the USB device is still listed");
}

#[tokio::test]
async fn selecting_one_of_several_devices() {
    let usb = FakeSource::new(
        TransportKind::Usb,
        vec![
            with_serial(
                device(TransportKind::Usb, "1-4", DeviceState::Available),
                "PB-1",
            ),
            device(TransportKind::Usb, "1-5", DeviceState::InUse),
        ],
    );
    let sim = FakeSource::new(
        TransportKind::Sim,
        vec![device(
            TransportKind::Sim,
            "127.0.0.1:7000",
            DeviceState::Available,
        )],
    );
    let manager = DeviceManager::new()
        .with_source(usb.clone())
        .with_source(sim.clone());
    assert!(matches!(manager.select_only(), Err(DeviceError::NoDevices)));
    manager.refresh().await;
    assert!(matches!(
        manager.open_selected().await,
        Err(DeviceError::NoneSelected)
    ));

    // Two usable devices (the one in use does not count): the caller must choose.
    let error = manager.select_only().unwrap_err();
    assert_eq!(
        error.to_string(),
        "2 PIN pads found (usb:1-4, sim:127.0.0.1:7000); choose one"
    );

    let chosen = manager.select_matching("PB-1").unwrap();
    assert_eq!(chosen.id().to_string(), "usb:1-4");
    assert_eq!(manager.selected(), Some(chosen));
    let transport = manager.open_selected().await.unwrap();
    assert_eq!(transport.identity().id.address, "1-4");

    manager.select_matching("sim:127.0.0.1:7000").unwrap();
    assert_eq!(manager.selected().unwrap().id().kind, TransportKind::Sim);
    assert!(matches!(
        manager.select_matching("PB-404"),
        Err(DeviceError::NotFound { .. })
    ));

    // With the simulator gone, the one usable device is picked.
    sim.set(vec![]);
    manager.refresh().await;
    assert_eq!(
        manager.selected(),
        None,
        "the selection left with the device"
    );
    assert_eq!(manager.select_only().unwrap().id().address, "1-4");
}

#[tokio::test]
async fn opening_needs_a_listed_device_and_a_source_for_its_transport() {
    let usb = FakeSource::new(
        TransportKind::Usb,
        vec![device(TransportKind::Usb, "1-4", DeviceState::Available)],
    );
    let manager = DeviceManager::new().with_source(usb);
    manager.refresh().await;
    assert!(matches!(
        manager
            .open(&DeviceId::new(TransportKind::Usb, "9-9"))
            .await,
        Err(DeviceError::NotFound { .. })
    ));
    assert!(
        manager
            .open(&DeviceId::new(TransportKind::Usb, "1-4"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn watching_polls_sources_without_hotplug() {
    let sim = FakeSource::new(TransportKind::Sim, vec![]);
    let manager = DeviceManager::new().with_source(sim.clone());
    let mut events = manager.subscribe();
    let _watch = manager.watch(Duration::from_millis(20)).await;
    sim.set(vec![device(
        TransportKind::Sim,
        "127.0.0.1:7000",
        DeviceState::Available,
    )]);
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(event, DeviceEvent::Arrived(d) if d.id().address == "127.0.0.1:7000"));
}

#[tokio::test]
async fn watching_rescans_a_hotplug_source_when_it_reports_a_change() {
    let usb = FakeSource::new(TransportKind::Usb, vec![]);
    let (notify, receiver) = mpsc::unbounded_channel();
    *usb.changes.lock().unwrap() = Some(receiver);
    let manager = DeviceManager::new().with_source(usb.clone());
    let mut events = manager.subscribe();
    // A long poll interval: only the notification can explain a quick rescan.
    let watch = manager.watch(Duration::from_secs(3600)).await;
    usb.set(vec![device(
        TransportKind::Usb,
        "1-4",
        DeviceState::Available,
    )]);
    notify.send(()).unwrap();
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(event, DeviceEvent::Arrived(d) if d.id().address == "1-4"));
    assert_eq!(
        *usb.scans.lock().unwrap(),
        1,
        "hotplug sources are not polled"
    );
    drop(watch);
}

#[tokio::test]
async fn the_sim_source_probes_its_addresses() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let closed = {
        let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        probe.local_addr().unwrap()
    };
    let source = SimSource::new(vec![up, closed]);
    let devices = source.scan().await.unwrap();
    assert_eq!(devices[0].state, DeviceState::Available);
    assert_eq!(devices[1].state, DeviceState::Unreachable);
    // The listener stays open: dropping it would reset the connection still in its backlog.
    let transport = source.open(&devices[0]).await.unwrap();
    assert_eq!(transport.kind(), TransportKind::Sim);
    assert_eq!(transport.mtu(), Mtu::SIM);
    drop(listener);
}
