use std::collections::BTreeSet;
use std::sync::Mutex;

use super::*;
use crate::transport::TransportKind;

fn characteristic(uuid: Uuid, properties: CharPropFlags) -> Characteristic {
    Characteristic {
        uuid,
        service_uuid: SERVICE_UUID,
        properties,
        descriptors: BTreeSet::new(),
    }
}

fn pinbridge_service() -> Vec<Characteristic> {
    vec![
        characteristic(
            CONTROL_POINT_UUID,
            CharPropFlags::WRITE | CharPropFlags::WRITE_WITHOUT_RESPONSE,
        ),
        characteristic(STATUS_UUID, CharPropFlags::NOTIFY),
        characteristic(CONTROL_POINT_LENGTH_UUID, CharPropFlags::READ),
        characteristic(SERVICE_REVISION_UUID, CharPropFlags::READ),
    ]
}

#[test]
fn finds_the_four_characteristics_and_prefers_write_without_response() {
    let mut all = pinbridge_service();
    // A battery service beside ours changes nothing.
    all.push(Characteristic {
        uuid: Uuid::from_u128(0x2a19),
        service_uuid: Uuid::from_u128(0x180f),
        properties: CharPropFlags::READ,
        descriptors: BTreeSet::new(),
    });
    let gatt = find_pinbridge_characteristics(&all, "pad").unwrap();
    assert_eq!(gatt.control_point.uuid, CONTROL_POINT_UUID);
    assert_eq!(gatt.write_type, WriteType::WithoutResponse);
    assert_eq!(gatt.status.uuid, STATUS_UUID);
    assert_eq!(gatt.control_point_length.uuid, CONTROL_POINT_LENGTH_UUID);
    assert_eq!(
        gatt.service_revision.map(|c| c.uuid),
        Some(SERVICE_REVISION_UUID)
    );
}

#[test]
fn falls_back_to_write_with_response_and_tolerates_no_revision() {
    let all = vec![
        characteristic(CONTROL_POINT_UUID, CharPropFlags::WRITE),
        characteristic(STATUS_UUID, CharPropFlags::NOTIFY),
        characteristic(CONTROL_POINT_LENGTH_UUID, CharPropFlags::READ),
    ];
    let gatt = find_pinbridge_characteristics(&all, "pad").unwrap();
    assert_eq!(gatt.write_type, WriteType::WithResponse);
    assert_eq!(gatt.service_revision, None);
}

#[test]
fn missing_service_or_properties_are_named() {
    let other_service: Vec<_> = pinbridge_service()
        .into_iter()
        .map(|mut c| {
            c.service_uuid = Uuid::from_u128(0xfffd);
            c
        })
        .collect();
    assert!(matches!(
        find_pinbridge_characteristics(&other_service, "pad"),
        Err(BleError::ServiceMissing { .. })
    ));

    let mut no_notify = pinbridge_service();
    no_notify[1].properties = CharPropFlags::READ;
    let error = find_pinbridge_characteristics(&no_notify, "pad").unwrap_err();
    assert_eq!(
        error.to_string(),
        "pad's PinBridge service has no status characteristic that can notify"
    );

    let mut read_only_control_point = pinbridge_service();
    read_only_control_point[0].properties = CharPropFlags::READ;
    assert!(matches!(
        find_pinbridge_characteristics(&read_only_control_point, "pad"),
        Err(BleError::CharacteristicMissing {
            characteristic: "control point",
            ..
        })
    ));

    let without_length: Vec<_> = pinbridge_service()
        .into_iter()
        .filter(|c| c.uuid != CONTROL_POINT_LENGTH_UUID)
        .collect();
    assert!(matches!(
        find_pinbridge_characteristics(&without_length, "pad"),
        Err(BleError::CharacteristicMissing {
            characteristic: "control-point length",
            ..
        })
    ));
}

#[test]
fn control_point_length_is_a_big_endian_u16_from_20_to_512() {
    assert_eq!(parse_control_point_length(&[0, 20], "d").unwrap(), Mtu::MIN);
    assert_eq!(
        parse_control_point_length(&[0, 244], "d").unwrap().get(),
        244
    );
    assert_eq!(parse_control_point_length(&[2, 0], "d").unwrap(), Mtu::MAX);
    for bad in [&[0, 19][..], &[2, 1], &[20], &[0, 0, 20], &[]] {
        let error = parse_control_point_length(bad, "d").unwrap_err();
        assert!(matches!(error, BleError::BadControlPointLength { .. }));
        assert!(error.is_permanent());
    }
}

#[test]
fn the_service_is_not_fido_s_and_the_uuids_are_distinct() {
    let fido = Uuid::from_u128(0x0000_fffd_0000_1000_8000_0080_5f9b_34fb);
    let all = [
        SERVICE_UUID,
        CONTROL_POINT_UUID,
        STATUS_UUID,
        CONTROL_POINT_LENGTH_UUID,
        SERVICE_REVISION_UUID,
    ];
    assert!(!all.contains(&fido));
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
    assert_eq!(
        SERVICE_UUID.to_string(),
        "bd7f0001-ff8f-4abd-a281-9ad14d64c6a9"
    );
}

/// A peripheral in memory: records control-point writes, notifies what the test pushes.
#[derive(Debug)]
struct FakePeripheral {
    characteristics: Vec<Characteristic>,
    length: Vec<u8>,
    connect_failures: Mutex<u32>,
    connects: Mutex<u32>,
    writes: Mutex<Vec<(Vec<u8>, WriteType)>>,
    notify: Mutex<Option<mpsc::UnboundedSender<GattEvent>>>,
    disconnects: tokio::sync::watch::Sender<u32>,
}

impl FakePeripheral {
    fn new(length: u16) -> Arc<Self> {
        Arc::new(FakePeripheral {
            characteristics: pinbridge_service(),
            length: length.to_be_bytes().to_vec(),
            connect_failures: Mutex::new(0),
            connects: Mutex::new(0),
            writes: Mutex::new(Vec::new()),
            notify: Mutex::new(None),
            disconnects: tokio::sync::watch::Sender::new(0),
        })
    }

    fn send(&self, event: GattEvent) {
        let notify = self.notify.lock().unwrap();
        notify.as_ref().unwrap().send(event).unwrap();
    }

    fn notify_status(&self, value: Vec<u8>) {
        self.send(GattEvent::Notification {
            characteristic: STATUS_UUID,
            value,
        });
    }
}

#[async_trait]
impl GattLink for FakePeripheral {
    fn identity(&self) -> DeviceIdentity {
        DeviceIdentity::new(TransportKind::Ble, "AA:BB")
    }

    async fn connect(&self) -> Result<(), BleError> {
        *self.connects.lock().unwrap() += 1;
        let mut failures = self.connect_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(BleError::Timeout {
                device: "ble:AA:BB".into(),
                operation: BleOperation::Connect,
            });
        }
        Ok(())
    }

    async fn characteristics(&self) -> Result<Vec<Characteristic>, BleError> {
        Ok(self.characteristics.clone())
    }

    async fn read(&self, characteristic: &Characteristic) -> Result<Vec<u8>, BleError> {
        assert_eq!(characteristic.uuid, CONTROL_POINT_LENGTH_UUID);
        Ok(self.length.clone())
    }

    async fn write(
        &self,
        characteristic: &Characteristic,
        value: &[u8],
        write_type: WriteType,
    ) -> Result<(), BleError> {
        assert_eq!(characteristic.uuid, CONTROL_POINT_UUID);
        self.writes
            .lock()
            .unwrap()
            .push((value.to_vec(), write_type));
        Ok(())
    }

    async fn subscribe(&self, characteristic: &Characteristic) -> Result<GattEvents, BleError> {
        assert_eq!(characteristic.uuid, STATUS_UUID);
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.notify.lock().unwrap() = Some(sender);
        Ok(Box::pin(tokio_stream_from(receiver)))
    }

    async fn disconnect(&self) -> Result<(), BleError> {
        self.disconnects.send_modify(|n| *n += 1);
        Ok(())
    }
}

fn tokio_stream_from(
    mut receiver: mpsc::UnboundedReceiver<GattEvent>,
) -> impl Stream<Item = GattEvent> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

const WAIT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn packets_are_control_point_writes_and_status_notifications() {
    let peripheral = FakePeripheral::new(20);
    let mut transport = BleTransport::open_with(peripheral.clone()).await.unwrap();
    assert_eq!(transport.mtu(), Mtu::MIN);
    assert_eq!(transport.identity().id.to_string(), "ble:AA:BB");

    transport.send_packet(&[1; 20]).await.unwrap();
    assert_eq!(
        peripheral.writes.lock().unwrap().as_slice(),
        &[(vec![1; 20], WriteType::WithoutResponse)]
    );
    assert!(matches!(
        transport.send_packet(&[1; 64]).await,
        Err(TransportError::WrongPacketSize {
            expected: 20,
            actual: 64
        })
    ));

    // Another characteristic's notification and a wrong-sized status are not packets.
    peripheral.send(GattEvent::Notification {
        characteristic: SERVICE_REVISION_UUID,
        value: vec![9; 20],
    });
    peripheral.notify_status(vec![2; 19]);
    peripheral.notify_status(vec![3; 20]);
    assert_eq!(
        transport.receive_packet(WAIT).await.unwrap(),
        Some(vec![3; 20])
    );
}

#[tokio::test]
async fn the_control_point_length_sets_the_mtu() {
    let transport = BleTransport::open_with(FakePeripheral::new(244))
        .await
        .unwrap();
    assert_eq!(transport.mtu(), Mtu::BLE_TYPICAL);
    let error = BleTransport::open_with(FakePeripheral::new(19))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        TransportError::Ble(BleError::BadControlPointLength { .. })
    ));
}

#[tokio::test]
async fn a_drop_is_reported_then_reconnect_retries_and_resubscribes() {
    let peripheral = FakePeripheral::new(20);
    let mut transport = BleTransport::open_with(peripheral.clone()).await.unwrap();
    transport.set_reconnect_policy(ReconnectPolicy {
        initial_delay: Duration::from_millis(1),
        multiplier: 2,
        max_delay: Duration::from_millis(4),
        max_attempts: 5,
    });
    peripheral.send(GattEvent::Disconnected);
    let error = transport.receive_packet(WAIT).await.unwrap_err();
    assert!(error.is_disconnect(), "{error}");
    assert!(error.to_string().contains("out of range"), "{error}");

    *peripheral.connect_failures.lock().unwrap() = 2;
    transport.reconnect().await.unwrap();
    assert_eq!(*peripheral.connects.lock().unwrap(), 1 + 3);
    peripheral.notify_status(vec![4; 20]);
    assert_eq!(
        transport.receive_packet(WAIT).await.unwrap(),
        Some(vec![4; 20])
    );
}

#[tokio::test]
async fn close_disconnects_and_refuses_further_use() {
    let mut transport = BleTransport::open_with(FakePeripheral::new(20))
        .await
        .unwrap();
    transport.close().await.unwrap();
    assert!(matches!(
        transport.receive_packet(WAIT).await,
        Err(TransportError::Closed { .. })
    ));
}

#[tokio::test]
async fn dropping_a_connected_transport_disconnects_the_link() {
    // BlueZ keeps a link up after the program that made it exits: a CLI command that just
    // drops its transport left the PIN pad connected to nobody.
    let peripheral = FakePeripheral::new(20);
    let mut disconnects = peripheral.disconnects.subscribe();
    let transport = BleTransport::open_with(peripheral.clone()).await.unwrap();
    drop(transport);
    finish_disconnects(WAIT).await;
    let waited = tokio::time::timeout(WAIT, disconnects.wait_for(|n| *n == 1))
        .await
        .is_ok_and(|seen| seen.is_ok());
    assert!(waited, "no disconnect after the drop");

    // Closed first: the drop does not disconnect a second time.
    let mut transport = BleTransport::open_with(peripheral.clone()).await.unwrap();
    transport.close().await.unwrap();
    drop(transport);
    finish_disconnects(WAIT).await;
    assert_eq!(*peripheral.disconnects.borrow(), 2);
}

#[test]
fn the_serial_is_read_from_the_advertised_name() {
    assert_eq!(
        serial_from_name("PinBridge PB-42").as_deref(),
        Some("PB-42")
    );
    assert_eq!(serial_from_name("PinBridge "), None);
    assert_eq!(serial_from_name("Headphones"), None);
}
