//! The BLE transport end to end without a radio: a fake GATT peripheral (behind the public
//! `GattLink` seam) relays control-point writes and status notifications to the scripted
//! link-layer device, and loses some of them. The session's acknowledged delivery must still
//! get every request and answer through, at the BLE minimum packet size of 20 bytes.

// Test support outside #[test] functions: a broken fake should fail the test loudly.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{CharPropFlags, Characteristic, WriteType};
use common::{Plan, Step, echo, spawn_device};
use companion::session::{Session, SessionConfig};
use companion::transport::ble::{
    BleError, BleTransport, CONTROL_POINT_LENGTH_UUID, CONTROL_POINT_UUID, GattEvent, GattEvents,
    GattLink, SERVICE_UUID, STATUS_UUID,
};
use companion::transport::memory::MemoryTransport;
use companion::transport::{DeviceIdentity, Transport, TransportKind};
use firmware_protocol::link::{KeepaliveStatus, Mtu};
use firmware_protocol::message::{Ping, Pong, Request, Response};
use tokio::sync::mpsc;

/// Which writes and notifications the air loses, and how many went each way.
#[derive(Debug, Default)]
struct Air {
    lose_writes: Vec<usize>,
    lose_notifications: Vec<usize>,
    writes: Vec<Vec<u8>>,
    notifications: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct FakePeripheral {
    device_end: Arc<tokio::sync::Mutex<MemoryTransport>>,
    air: Arc<Mutex<Air>>,
    /// How late each notification reaches the program (a busy central's stack), in order.
    notify_delay: Duration,
}

fn characteristic(uuid: uuid::Uuid, properties: CharPropFlags) -> Characteristic {
    Characteristic {
        uuid,
        service_uuid: SERVICE_UUID,
        properties,
        descriptors: BTreeSet::new(),
    }
}

#[async_trait]
impl GattLink for FakePeripheral {
    fn identity(&self) -> DeviceIdentity {
        DeviceIdentity::new(TransportKind::Ble, "F0:0D")
    }

    async fn connect(&self) -> Result<(), BleError> {
        Ok(())
    }

    async fn characteristics(&self) -> Result<Vec<Characteristic>, BleError> {
        Ok(vec![
            characteristic(CONTROL_POINT_UUID, CharPropFlags::WRITE_WITHOUT_RESPONSE),
            characteristic(STATUS_UUID, CharPropFlags::NOTIFY),
            characteristic(CONTROL_POINT_LENGTH_UUID, CharPropFlags::READ),
        ])
    }

    async fn read(&self, _characteristic: &Characteristic) -> Result<Vec<u8>, BleError> {
        Ok(20u16.to_be_bytes().to_vec())
    }

    async fn write(
        &self,
        _characteristic: &Characteristic,
        value: &[u8],
        write_type: WriteType,
    ) -> Result<(), BleError> {
        assert_eq!(write_type, WriteType::WithoutResponse);
        let lost = {
            let mut air = self.air.lock().unwrap();
            let index = air.writes.len();
            air.writes.push(value.to_vec());
            air.lose_writes.contains(&index)
        };
        if !lost {
            let mut device_end = self.device_end.lock().await;
            device_end.send_packet(value).await.unwrap();
        }
        Ok(())
    }

    async fn subscribe(&self, _characteristic: &Characteristic) -> Result<GattEvents, BleError> {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let device_end = Arc::clone(&self.device_end);
        let air = Arc::clone(&self.air);
        let delay = self.notify_delay;
        tokio::spawn(async move {
            loop {
                // Short waits, so writes can take the lock in between.
                let received = device_end
                    .lock()
                    .await
                    .receive_packet(Duration::from_millis(5))
                    .await;
                match received {
                    Ok(Some(value)) => {
                        let lost = {
                            let mut air = air.lock().unwrap();
                            let index = air.notifications.len();
                            air.notifications.push(value.clone());
                            air.lose_notifications.contains(&index)
                        };
                        if !lost {
                            tokio::time::sleep(delay).await;
                            let _ = sender.send(GattEvent::Notification {
                                characteristic: STATUS_UUID,
                                value,
                            });
                        }
                    }
                    Ok(None) => tokio::task::yield_now().await,
                    Err(_) => {
                        let _ = sender.send(GattEvent::Disconnected);
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(futures::stream::poll_fn(move |cx| {
            receiver.poll_recv(cx)
        })))
    }

    async fn disconnect(&self) -> Result<(), BleError> {
        Ok(())
    }
}

/// A BLE transport to a scripted device whose radio link loses the given packets.
async fn lossy_ble(
    lose_writes: Vec<usize>,
    lose_notifications: Vec<usize>,
    script: impl FnMut(&Request) -> Plan + Send + 'static,
) -> (BleTransport, Arc<Mutex<Air>>, Arc<Mutex<common::DeviceLog>>) {
    fake_ble(lose_writes, lose_notifications, Duration::ZERO, script).await
}

async fn fake_ble(
    lose_writes: Vec<usize>,
    lose_notifications: Vec<usize>,
    notify_delay: Duration,
    script: impl FnMut(&Request) -> Plan + Send + 'static,
) -> (BleTransport, Arc<Mutex<Air>>, Arc<Mutex<common::DeviceLog>>) {
    let (bridge_end, device_end) = MemoryTransport::pair(Mtu::MIN, "radio");
    let (_device, log) = spawn_device(device_end, script);
    let air = Arc::new(Mutex::new(Air {
        lose_writes,
        lose_notifications,
        ..Air::default()
    }));
    let peripheral = FakePeripheral {
        device_end: Arc::new(tokio::sync::Mutex::new(bridge_end)),
        air: Arc::clone(&air),
        notify_delay,
    };
    let transport = BleTransport::open_with(Arc::new(peripheral)).await.unwrap();
    (transport, air, log)
}

fn config() -> SessionConfig {
    SessionConfig {
        init_timeout: Duration::from_millis(300),
        ..SessionConfig::default()
    }
}

fn ping(payload: Vec<u8>) -> Request {
    Request::Ping(Ping { payload })
}

fn pong(payload: Vec<u8>) -> Response {
    Response::Pong(Pong { payload })
}

#[tokio::test]
async fn a_session_runs_over_ble_at_twenty_byte_packets() {
    let (transport, air, log) = lossy_ble(vec![], vec![], |request| {
        let Request::Ping(ping) = request else {
            unreachable!()
        };
        Plan::steps(vec![
            Step::Keepalive(KeepaliveStatus::AwaitingUser),
            Step::Wait(Duration::from_millis(20)),
            Step::Respond(pong(ping.payload.clone())),
        ])
    })
    .await;
    assert_eq!(transport.mtu(), Mtu::MIN);
    let mut session = Session::open_with_config(Box::new(transport), config())
        .await
        .unwrap();
    let payload: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    assert_eq!(
        session.request(&ping(payload.clone())).await.unwrap(),
        pong(payload)
    );
    // INIT + a 23-packet request + the ACK of the answer, all 20-byte writes.
    let air = air.lock().unwrap();
    assert!(air.writes.iter().all(|w| w.len() == 20));
    assert_eq!(
        air.writes.len(),
        1 + Mtu::MIN.packet_count(1 + 7 + 2 + 300) + 1
    );
    assert_eq!(log.lock().unwrap().requests.len(), 1);
}

#[tokio::test]
async fn lost_writes_and_notifications_are_retransmitted_until_acknowledged() {
    // Writes: 0 INIT, then the request (2 packets at MTU 20 for a 5-byte ping): lose its last
    // packet. Notifications: 0-1 the INIT answer (16 bytes need 2 packets at MTU 20), 2 the ACK
    // of the retransmitted request, 3-4 the answer MSG: lose its first packet, so the device
    // must retransmit its answer too.
    let (transport, air, log) = lossy_ble(vec![2], vec![3], echo).await;
    let mut session = Session::open_with_config(Box::new(transport), config())
        .await
        .unwrap();
    assert_eq!(
        session.request(&ping(vec![1, 2, 3, 4, 5])).await.unwrap(),
        pong(vec![1, 2, 3, 4, 5])
    );
    let air = air.lock().unwrap();
    let request_inits = air.writes.iter().filter(|w| w[4] == 0x83).count();
    assert_eq!(request_inits, 2, "the host sent the request twice");
    let answer_inits = air.notifications.iter().filter(|n| n[4] == 0x83).count();
    assert_eq!(answer_inits, 2, "the device sent its answer twice");
    assert_eq!(air.notifications[2][4], 0x84, "notification 2 is the ACK");
    let log = log.lock().unwrap();
    assert_eq!(log.requests.len(), 1, "delivered to the message layer once");
}

#[tokio::test]
async fn a_slow_central_stack_does_not_make_the_session_resend_what_was_not_lost() {
    // Every notification reaches the program 400 ms after the device sent it, as through a
    // busy desktop's Bluetooth stack (PROTOCOL.md §2.1.1, "Timing"): nothing is lost. A
    // session opened with the defaults for a BLE transport waits for the ACK instead of
    // resending the request at §2.11's 220 ms (which it did before BLE had its own timer).
    let (transport, air, log) = fake_ble(vec![], vec![], Duration::from_millis(400), echo).await;
    assert_eq!(transport.kind(), TransportKind::Ble);
    let mut session = Session::open(Box::new(transport)).await.unwrap();
    assert_eq!(
        session.request(&ping(vec![7; 5])).await.unwrap(),
        pong(vec![7; 5])
    );
    let air = air.lock().unwrap();
    let request_inits = air.writes.iter().filter(|w| w[4] == 0x83).count();
    assert_eq!(request_inits, 1, "the request went once: {:?}", air.writes);
    assert_eq!(log.lock().unwrap().requests.len(), 1);
    assert_eq!(
        session.config().retransmit,
        firmware_protocol::link::RetransmitPolicy::BLE
    );
}
