//! The simulator served over TCP, driven by a real host made from firmware-protocol's link
//! layer (`device_sim::client::LinkClient`): channels, busy rule, keepalives, cancel, faults.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use device_sim::client::{AfterKeepalive, ClientError, LinkClient};
use device_sim::hardware::KeyPress;
use device_sim::server::ServedDevice;
use device_sim::sim::{Faults, SimCore, SimHandle};
use firmware_protocol::crypto::host_auth::HostSigner;
use firmware_protocol::link::{Body, ChannelId, ErrorCode, Frame, KeepaliveStatus, Mtu};
use firmware_protocol::message::{
    GetInfo, GetStatus, HostVerified, Request, Response, StatusCode, decode_response,
};
use support::{Bank, PIN, Rig};

struct Served {
    runtime: tokio::runtime::Runtime,
    device: Option<ServedDevice>,
    bank: Bank,
    host: HostSigner,
    next_id: u32,
}

impl Served {
    /// A bound, paired, logged-in device served on a free loopback port.
    fn ready() -> Self {
        let rig = Rig::ready();
        let Rig {
            device,
            hw,
            bank,
            host,
            ..
        } = rig;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let device = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ServedDevice::spawn(SimHandle::new(SimCore::new(device, hw, Mtu::SIM)), listener)
                .unwrap()
        });
        Self {
            runtime,
            device: Some(device),
            bank,
            host: host.unwrap(),
            next_id: 1000,
        }
    }

    fn handle(&self) -> SimHandle {
        self.device.as_ref().unwrap().handle.clone()
    }

    fn client(&self) -> LinkClient {
        let mut client = LinkClient::connect(self.device.as_ref().unwrap().address).unwrap();
        client.init().unwrap();
        client
    }

    fn bytes(&mut self, request: Request, verified: bool) -> (u32, Vec<u8>) {
        self.next_id += 1;
        let id = self.next_id;
        let request = if verified {
            Request::HostVerified(HostVerified::sign(id, &request, &mut self.host).unwrap())
        } else {
            request
        };
        (id, request.encode(id).unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let device = self.device.take();
        let _guard = self.runtime.enter();
        drop(device);
    }
}

fn answer(bytes: &[u8], id: u32) -> Response {
    let (answer_id, response) = decode_response(bytes).unwrap();
    assert_eq!(answer_id, id);
    response
}

#[test]
fn a_payment_over_tcp_with_keepalives_that_count_digits() {
    let mut served = Served::ready();
    let mut client = served.client();
    let (id, info) = served.bytes(Request::GetInfo(GetInfo), false);
    assert!(matches!(
        answer(&client.request(&info).unwrap(), id),
        Response::Info(_)
    ));

    let payment = served.bank.payment(4_200, "TX-TCP-1");
    let (id, bytes) = served.bytes(Request::ApprovePayment(payment.clone()), true);
    let handle = served.handle();
    let keys = KeyPress::digits(PIN).unwrap();
    let mut pressed = 0;
    let response = client
        .request_with(&bytes, |status| {
            if let KeepaliveStatus::PinEntry(progress) = status
                && usize::from(progress.entered()) == pressed
            {
                match keys.get(pressed) {
                    Some(key) => handle.press(&[*key]),
                    None if pressed == keys.len() => handle.press(&[KeyPress::Enter]),
                    None => {}
                }
                pressed += 1;
            }
            AfterKeepalive::Wait
        })
        .unwrap();
    let approved = match answer(&response, id) {
        Response::PaymentApproved(approved) => approved,
        other => panic!("{other:?}"),
    };
    let session = served.bank.session();
    assert_eq!(
        served
            .bank
            .reveal_pin(&session.pin_key, &approved.pin_block),
        PIN
    );
    let counts: Vec<u8> = client
        .keepalives
        .iter()
        .filter_map(|k| match k {
            KeepaliveStatus::PinEntry(p) => Some(p.entered()),
            _ => None,
        })
        .collect();
    let mut distinct = counts.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [0, 1, 2, 3, 4],
        "one keepalive per digit, a count only"
    );
}

#[test]
fn a_second_host_gets_channel_busy_while_the_first_owns_a_transaction() {
    let mut served = Served::ready();
    let mut first = served.client();
    let mut second = served.client();
    assert_ne!(first.channel(), second.channel());
    let handle = served.handle();

    let payment = served.bank.payment(100, "TX-BUSY");
    let (id, bytes) = served.bytes(Request::ApprovePayment(payment), true);
    let (status_id, status) = served.bytes(Request::GetStatus(GetStatus), false);
    let mut second_result = None;
    let response = first
        .request_with(&bytes, |keepalive| {
            if second_result.is_none() {
                second_result = Some(second.request(&status));
                handle.type_pin(PIN).unwrap();
            }
            let _ = keepalive;
            AfterKeepalive::Wait
        })
        .unwrap();
    assert!(matches!(
        answer(&response, id),
        Response::PaymentApproved(_)
    ));
    match second_result.unwrap() {
        Err(ClientError::Device(ErrorCode::ChannelBusy)) => {}
        other => panic!("the second host must get CHANNEL_BUSY, got {other:?}"),
    }
    // Once the transaction is over (the first host's ACK may still be in flight on its own
    // connection) the second host is served when it retries.
    let _ = status_id;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status_id2, status2) = served.bytes(Request::GetStatus(GetStatus), false);
        match second.request(&status2) {
            Ok(bytes) => {
                assert!(matches!(answer(&bytes, status_id2), Response::Status(_)));
                break;
            }
            Err(ClientError::Device(ErrorCode::ChannelBusy)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[test]
fn cancel_aborts_the_pin_entry_and_frees_the_device() {
    let mut served = Served::ready();
    let mut client = served.client();
    let payment = served.bank.payment(100, "TX-CANCEL");
    let (_, bytes) = served.bytes(Request::ApprovePayment(payment), true);
    let result = client.request_with(&bytes, |_| AfterKeepalive::Cancel);
    assert!(
        matches!(result, Err(ClientError::Device(ErrorCode::Cancelled))),
        "{result:?}"
    );
    assert!(!served.handle().view().state.busy);
    let (id, status) = served.bytes(Request::GetStatus(GetStatus), false);
    assert!(matches!(
        answer(&client.request(&status).unwrap(), id),
        Response::Status(_)
    ));
}

#[test]
fn tamper_mid_payment_over_tcp_answers_tampered() {
    let mut served = Served::ready();
    let mut client = served.client();
    let handle = served.handle();
    let payment = served.bank.payment(100, "TX-TAMPER");
    let (id, bytes) = served.bytes(Request::ApprovePayment(payment), true);
    let mut typed = false;
    let response = client
        .request_with(&bytes, |status| {
            match status {
                KeepaliveStatus::PinEntry(p) if p.entered() == 0 && !typed => {
                    handle.press(&[KeyPress::Digit(1), KeyPress::Digit(2)]);
                    typed = true;
                }
                KeepaliveStatus::PinEntry(p) if p.entered() == 2 => handle.set_tamper(true),
                _ => {}
            }
            AfterKeepalive::Wait
        })
        .unwrap();
    match answer(&response, id) {
        Response::Error(error) => assert_eq!(error.status, StatusCode::Tampered),
        other => panic!("{other:?}"),
    }
    let view = served.handle().view();
    assert!(view.state.tampered);
    assert_eq!(view.state.indicator, "danger");
}

#[test]
fn lost_and_corrupted_packets_are_recovered_by_retransmission() {
    let mut served = Served::ready();
    let mut client = served.client();
    for faults in [
        Faults {
            drop_nth: Some(1),
            ..Faults::default()
        },
        Faults {
            corrupt_nth: Some(1),
            ..Faults::default()
        },
        Faults {
            drop_nth: Some(1),
            direction: device_sim::sim::Direction::In,
            ..Faults::default()
        },
        Faults {
            drop_every: Some(3),
            ..Faults::default()
        },
    ] {
        served.handle().set_faults(faults.clone());
        let (id, status) = served.bytes(Request::GetStatus(GetStatus), false);
        let response = client
            .request(&status)
            .unwrap_or_else(|e| panic!("{faults:?}: {e}"));
        assert!(
            matches!(answer(&response, id), Response::Status(_)),
            "{faults:?}"
        );
    }
    let log = serde_json::to_string(&served.handle().events(0)).unwrap();
    assert!(log.contains("fault: dropped packet"));
    assert!(log.contains("fault: corrupted packet"));
}

#[test]
fn injected_busy_delay_disconnect_and_slow_user() {
    let mut served = Served::ready();
    let mut client = served.client();
    let handle = served.handle();

    handle.set_faults(Faults {
        busy_next: 1,
        ..Faults::default()
    });
    let (_, status) = served.bytes(Request::GetStatus(GetStatus), false);
    assert!(matches!(
        client.request(&status),
        Err(ClientError::Device(ErrorCode::ChannelBusy))
    ));

    handle.set_faults(Faults {
        delay_ms: 150,
        ..Faults::default()
    });
    let (id, status) = served.bytes(Request::GetStatus(GetStatus), false);
    let started = Instant::now();
    assert!(matches!(
        answer(&client.request(&status).unwrap(), id),
        Response::Status(_)
    ));
    assert!(started.elapsed() >= Duration::from_millis(150));

    handle.set_faults(Faults {
        user_too_slow: true,
        ..Faults::default()
    });
    let payment = served.bank.payment(100, "TX-SLOW");
    let (id, bytes) = served.bytes(Request::ApprovePayment(payment), true);
    match answer(&client.request(&bytes).unwrap(), id) {
        Response::Error(error) => assert_eq!(error.status, StatusCode::UserTimeout),
        other => panic!("{other:?}"),
    }

    handle.set_faults(Faults {
        disconnect_after: Some(1),
        ..Faults::default()
    });
    let (_, status) = served.bytes(Request::GetStatus(GetStatus), false);
    assert!(matches!(client.request(&status), Err(ClientError::Io(_))));
    let deadline = Instant::now() + Duration::from_secs(2);
    while handle.view().connections > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(handle.view().connections, 0);
    // A new connection works.
    handle.set_faults(Faults::default());
    let mut again = served.client();
    let (id, status) = served.bytes(Request::GetStatus(GetStatus), false);
    assert!(matches!(
        answer(&again.request(&status).unwrap(), id),
        Response::Status(_)
    ));
}

#[test]
fn channel_rules_unknown_channel_broadcast_misuse_and_ping() {
    let served = Served::ready();
    let mut client = served.client();
    // PING echoes.
    let channel = client.channel();
    client
        .send_frame(&Frame::new(channel, Body::Ping(vec![1, 2, 3])))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut pong = None;
    while pong.is_none() && Instant::now() < deadline {
        pong = client.next_frame().unwrap();
    }
    assert_eq!(pong.unwrap().body, Body::Ping(vec![1, 2, 3]));
    // A channel the device never opened is refused with INVALID_CHANNEL, and a non-INIT
    // command on broadcast too (read raw: the host's own reassembler ignores both).
    let expected = |channel: ChannelId| {
        Frame::new(channel, Body::Error(ErrorCode::InvalidChannel))
            .to_packets(Mtu::SIM)
            .unwrap()
    };
    for channel in [ChannelId(0x0102_0304), ChannelId::BROADCAST] {
        // The packetizer refuses WINK on broadcast, so the channel bytes are set by hand.
        let mut packet = Frame::new(ChannelId(1), Body::Wink)
            .to_packets(Mtu::SIM)
            .unwrap()
            .remove(0);
        packet[..4].copy_from_slice(&channel.to_bytes());
        client.send_raw(&packet).unwrap();
        let mut refusal = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        while refusal.is_none() && Instant::now() < deadline {
            refusal = client.next_packet().unwrap();
        }
        assert_eq!(vec![refusal.unwrap()], expected(channel), "{channel:?}");
    }
}

#[test]
fn a_scenario_types_the_pin_and_another_tampers_mid_payment() {
    use device_sim::scenario::Scenario;

    let mut served = Served::ready();
    let mut client = served.client();
    let typist =
        Scenario::parse("[[device]]\n[[device.step]]\non = \"pin\"\npin = \"1234\"\n").unwrap();
    {
        let _guard = served.runtime.enter();
        typist.spawn(vec![served.handle()]).unwrap();
    }
    let payment = served.bank.payment(700, "TX-SCRIPTED");
    let (id, bytes) = served.bytes(Request::ApprovePayment(payment), true);
    assert!(matches!(
        answer(&client.request(&bytes).unwrap(), id),
        Response::PaymentApproved(_)
    ));

    let mut served = Served::ready();
    let mut client = served.client();
    let tamperer = Scenario::parse(
        "[[device]]\n[[device.step]]\non = \"pin\"\ndigits = \"12\"\n\
         [[device.step]]\non = \"pin\"\ndigits_entered = 2\nafter_ms = 50\ntamper = true\n",
    )
    .unwrap();
    {
        let _guard = served.runtime.enter();
        tamperer.spawn(vec![served.handle()]).unwrap();
    }
    let payment = served.bank.payment(700, "TX-TAMPERED");
    let (id, bytes) = served.bytes(Request::ApprovePayment(payment), true);
    match answer(&client.request(&bytes).unwrap(), id) {
        Response::Error(error) => assert_eq!(error.status, StatusCode::Tampered),
        other => panic!("{other:?}"),
    }
    let seen: Vec<u8> = client
        .keepalives
        .iter()
        .filter_map(|k| match k {
            KeepaliveStatus::PinEntry(p) => Some(p.entered()),
            _ => None,
        })
        .collect();
    assert!(
        seen.contains(&2),
        "two digits were typed before the tamper: {seen:?}"
    );
    assert!(
        served
            .handle()
            .display()
            .iter()
            .any(|l| l.contains("TAMPERED"))
    );
}

#[test]
fn keepalives_repeat_while_waiting_and_init_on_the_channel_resynchronises() {
    let mut served = Served::ready();
    let mut client = served.client();
    let payment = served.bank.payment(100, "TX-RESYNC");
    let (_, bytes) = served.bytes(Request::ApprovePayment(payment), true);
    let channel = client.channel();
    // Send the request, then just listen for a second without typing.
    let mut sender = firmware_protocol::link::ReliableSender::new(channel, Mtu::SIM);
    sender.send(bytes).unwrap();
    if let firmware_protocol::link::SenderAction::Transmit(frame) = sender.poll(0) {
        client.send_frame(&frame).unwrap();
    }
    let started = Instant::now();
    let mut keepalives = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        if let Some(Frame {
            body: Body::Keepalive(KeepaliveStatus::PinEntry(p)),
            ..
        }) = client.next_frame().unwrap()
        {
            assert_eq!(p.entered(), 0);
            keepalives += 1;
        }
    }
    assert!(
        keepalives >= 3,
        "a keepalive at least every 250 ms, got {keepalives}"
    );
    assert!(served.handle().view().state.busy);

    // INIT on the open channel aborts the transaction and keeps the channel.
    let nonce = [9u8; 8];
    client
        .send_frame(&Frame::new(channel, Body::InitRequest { nonce }))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        assert!(Instant::now() < deadline, "no INIT answer on the channel");
        if let Some(Frame {
            channel: on,
            body: Body::InitResponse(answer),
        }) = client.next_frame().unwrap()
        {
            assert_eq!(
                (on, answer.channel, answer.nonce),
                (channel, channel, nonce)
            );
            break;
        }
    }
    assert!(
        !served.handle().view().state.busy,
        "the pending payment was aborted"
    );
}
