//! The device link machine on a fake clock, alone and facing the host machine: allocation,
//! resync, busy, keepalive timing, cancel, retransmission of answers, reassembly expiry.

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use firmware_protocol::link::{
    AbortReason, Body, Capabilities, ChannelId, ConnectionId, Destination, DeviceEvent, DeviceLink,
    DeviceLinkConfig, ErrorCode, Frame, HostEvent, HostLink, HostLinkConfig, InitResponse,
    KeepaliveStatus, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, RetransmitPolicy, Role,
};

const MTU: Mtu = Mtu::USB;

fn device() -> DeviceLink {
    DeviceLink::new(
        DeviceLinkConfig::new(MTU, Capabilities::KEYPAD.union(Capabilities::WINK)),
        42,
    )
}

/// What the hosts would see of the device's packets.
struct Hosts {
    reassembler: Reassembler,
}

impl Hosts {
    fn new() -> Self {
        Hosts {
            reassembler: Reassembler::new(ReassemblerConfig::new(MTU, Role::Host)),
        }
    }

    fn frames(&mut self, device: &mut DeviceLink, now: u64) -> Vec<(Destination, Frame)> {
        let mut out = Vec::new();
        while let Some(transmit) = device.poll_transmit() {
            match self.reassembler.push(&transmit.packet, now) {
                ReassemblyEvent::Complete(frame) => {
                    if let Body::InitResponse(answer) = frame.body {
                        self.reassembler.open_channel(answer.channel).unwrap();
                    }
                    out.push((transmit.to, frame));
                }
                ReassemblyEvent::Pending => {}
                other => panic!("device sent a bad packet: {other:?}"),
            }
        }
        out
    }
}

fn send(device: &mut DeviceLink, now: u64, from: ConnectionId, frame: Frame) {
    for packet in frame.to_packets(MTU).unwrap() {
        device.handle_packet(now, from, &packet);
    }
}

fn events(device: &mut DeviceLink) -> Vec<DeviceEvent> {
    std::iter::from_fn(|| device.poll_event()).collect()
}

fn msg(channel: ChannelId, seq: u8, message: &[u8]) -> Frame {
    Frame::new(
        channel,
        Body::Msg {
            seq,
            message: message.to_vec(),
        },
    )
}

/// Allocates a channel for connection `from`.
fn allocate(device: &mut DeviceLink, hosts: &mut Hosts, from: ConnectionId) -> ChannelId {
    let nonce = [from as u8; 8];
    send(
        device,
        0,
        from,
        Frame::new(ChannelId::BROADCAST, Body::InitRequest { nonce }),
    );
    let frames = hosts.frames(device, 0);
    let [
        (
            Destination::All,
            Frame {
                body: Body::InitResponse(answer),
                ..
            },
        ),
    ] = frames[..]
    else {
        panic!("expected one INIT answer to everyone, got {frames:?}");
    };
    assert_eq!(answer.nonce, nonce);
    assert!(answer.channel.is_assignable());
    answer.channel
}

#[test]
fn allocation_then_resync_restarts_sequence_numbers_and_aborts_the_request() {
    let (mut device, mut hosts) = (device(), Hosts::new());
    let channel = allocate(&mut device, &mut hosts, 1);
    assert_ne!(allocate(&mut device, &mut hosts, 2), channel);
    send(&mut device, 10, 1, msg(channel, 0, b"first"));
    assert_eq!(
        hosts.frames(&mut device, 10),
        vec![(
            Destination::Connection(1),
            Frame::new(channel, Body::Ack { seq: 0 })
        )]
    );
    assert_eq!(
        events(&mut device),
        vec![DeviceEvent::Request {
            channel,
            message: b"first".to_vec()
        }]
    );
    let nonce = [9; 8];
    send(
        &mut device,
        20,
        1,
        Frame::new(channel, Body::InitRequest { nonce }),
    );
    assert_eq!(
        events(&mut device),
        vec![DeviceEvent::Aborted {
            channel,
            reason: AbortReason::Resync
        }]
    );
    let frames = hosts.frames(&mut device, 20);
    assert!(matches!(
        frames[..],
        [(Destination::Connection(1), Frame { body: Body::InitResponse(InitResponse { channel: c, .. }), .. })] if c == channel
    ));
    assert_eq!(device.transaction_owner(), None);
    // Sequence 0 is new again.
    send(&mut device, 30, 1, msg(channel, 0, b"again"));
    assert_eq!(events(&mut device).len(), 1);
}

#[test]
fn another_channel_is_answered_busy_while_a_transaction_runs() {
    let (mut device, mut hosts) = (device(), Hosts::new());
    let owner = allocate(&mut device, &mut hosts, 1);
    let other = allocate(&mut device, &mut hosts, 2);
    send(&mut device, 0, 1, msg(owner, 0, b"pay"));
    hosts.frames(&mut device, 0);
    events(&mut device);
    send(&mut device, 5, 2, msg(other, 0, b"ping"));
    assert_eq!(
        hosts.frames(&mut device, 5),
        vec![(
            Destination::Connection(2),
            Frame::new(other, Body::Error(ErrorCode::ChannelBusy))
        )]
    );
    assert!(events(&mut device).is_empty());
    // The owner's second request before the answer: ACK, then busy.
    send(&mut device, 6, 1, msg(owner, 1, b"again"));
    let frames: Vec<Body> = hosts
        .frames(&mut device, 6)
        .into_iter()
        .map(|(_, f)| f.body)
        .collect();
    assert_eq!(
        frames,
        vec![Body::Ack { seq: 1 }, Body::Error(ErrorCode::ChannelBusy)]
    );
    // The message layer may refuse a request itself, which ends the transaction.
    device.answer(7, b"done".to_vec()).unwrap();
    hosts.frames(&mut device, 7);
    send(&mut device, 8, 1, Frame::new(owner, Body::Ack { seq: 0 }));
    send(&mut device, 9, 2, msg(other, 0, b"ping"));
    assert!(matches!(
        events(&mut device)[..],
        [DeviceEvent::Request { .. }]
    ));
    device.refuse(ErrorCode::ChannelBusy);
    let frames: Vec<Body> = hosts
        .frames(&mut device, 9)
        .into_iter()
        .map(|(_, f)| f.body)
        .collect();
    assert_eq!(
        frames,
        vec![Body::Ack { seq: 0 }, Body::Error(ErrorCode::ChannelBusy)]
    );
    assert_eq!(device.transaction_owner(), None);
}

#[test]
fn keepalives_go_out_at_each_change_and_every_200_ms() {
    let (mut device, mut hosts) = (device(), Hosts::new());
    let channel = allocate(&mut device, &mut hosts, 1);
    assert_eq!(device.poll_timeout(), None, "idle: no timer");
    send(&mut device, 1000, 1, msg(channel, 0, b"login"));
    hosts.frames(&mut device, 1000);
    // Before the message layer says anything, the link reports "processing".
    assert_eq!(device.poll_timeout(), Some(1200));
    device.handle_timeout(1200);
    let keepalive = |status| {
        vec![(
            Destination::Connection(1),
            Frame::new(channel, Body::Keepalive(status)),
        )]
    };
    assert_eq!(
        hosts.frames(&mut device, 1200),
        keepalive(KeepaliveStatus::Processing)
    );
    device.set_progress(1250, KeepaliveStatus::AwaitingUser);
    assert_eq!(
        hosts.frames(&mut device, 1250),
        keepalive(KeepaliveStatus::AwaitingUser)
    );
    device.set_progress(1300, KeepaliveStatus::AwaitingUser);
    assert!(
        hosts.frames(&mut device, 1300).is_empty(),
        "no change, not due"
    );
    assert_eq!(device.poll_timeout(), Some(1450));
    device.handle_timeout(1449);
    assert!(hosts.frames(&mut device, 1449).is_empty());
    device.handle_timeout(1450);
    assert_eq!(
        hosts.frames(&mut device, 1450),
        keepalive(KeepaliveStatus::AwaitingUser)
    );
    // The answer stops keepalives; its retransmission timer takes over.
    device.answer(1500, b"ok".to_vec()).unwrap();
    assert_eq!(
        hosts.frames(&mut device, 1500),
        vec![(Destination::Connection(1), msg(channel, 0, b"ok"))]
    );
    assert_eq!(device.poll_timeout(), Some(1720));
    device.handle_timeout(1720);
    assert_eq!(
        hosts.frames(&mut device, 1720),
        vec![(Destination::Connection(1), msg(channel, 0, b"ok"))]
    );
    send(
        &mut device,
        1730,
        1,
        Frame::new(channel, Body::Ack { seq: 0 }),
    );
    assert_eq!(device.transaction_owner(), None);
    assert_eq!(device.poll_timeout(), None);
}

#[test]
fn cancel_aborts_only_the_owners_request_before_its_answer() {
    let (mut device, mut hosts) = (device(), Hosts::new());
    let owner = allocate(&mut device, &mut hosts, 1);
    let other = allocate(&mut device, &mut hosts, 2);
    send(&mut device, 0, 1, msg(owner, 0, b"pin"));
    hosts.frames(&mut device, 0);
    events(&mut device);
    send(&mut device, 10, 2, Frame::new(other, Body::Cancel));
    assert!(
        hosts.frames(&mut device, 10).is_empty(),
        "a non-owner's CANCEL is ignored"
    );
    send(&mut device, 20, 1, Frame::new(owner, Body::Cancel));
    assert_eq!(
        events(&mut device),
        vec![DeviceEvent::Aborted {
            channel: owner,
            reason: AbortReason::Cancelled
        }]
    );
    assert_eq!(
        hosts.frames(&mut device, 20),
        vec![(
            Destination::Connection(1),
            Frame::new(owner, Body::Error(ErrorCode::Cancelled))
        )]
    );
    assert!(device.answer(30, b"late".to_vec()).is_ok());
    assert!(
        hosts.frames(&mut device, 30).is_empty(),
        "no answer to a cancelled request"
    );
    // After the answer went out, CANCEL changes nothing.
    send(&mut device, 40, 1, msg(owner, 1, b"next"));
    device.answer(41, b"answer".to_vec()).unwrap();
    hosts.frames(&mut device, 41);
    send(&mut device, 50, 1, Frame::new(owner, Body::Cancel));
    assert!(hosts.frames(&mut device, 50).is_empty());
}

#[test]
fn a_partial_request_expires_with_a_nack_and_a_disconnect_aborts() {
    let (mut device, mut hosts) = (device(), Hosts::new());
    let channel = allocate(&mut device, &mut hosts, 1);
    let packets = msg(channel, 0, &[7; 100]).to_packets(MTU).unwrap();
    device.handle_packet(100, 1, &packets[0]);
    assert_eq!(device.poll_timeout(), Some(3101));
    device.handle_timeout(3100);
    assert!(hosts.frames(&mut device, 3100).is_empty());
    device.handle_timeout(3101);
    assert_eq!(
        hosts.frames(&mut device, 3101),
        vec![(
            Destination::Connection(1),
            Frame::new(
                channel,
                Body::Nack {
                    reason: ErrorCode::MessageTimeout
                }
            )
        )]
    );
    send(&mut device, 3200, 1, msg(channel, 0, &[7; 100]));
    assert_eq!(events(&mut device).len(), 1);
    device.disconnected(1);
    assert_eq!(
        events(&mut device),
        vec![DeviceEvent::Aborted {
            channel,
            reason: AbortReason::Disconnected
        }]
    );
    assert_eq!(device.channel_count(), 0);
}

/// Both machines over a link that drops chosen packets, on one fake clock: the rules of each
/// end recover every loss without help from the drivers.
#[test]
fn host_and_device_machines_recover_lost_packets_between_them() {
    let mut host = HostLink::new(HostLinkConfig::new(MTU), 3);
    let mut device = device();
    let mut now = 0u64;
    let mut sent = 0usize;
    // Host-to-device packets 2 (the first request) and 4 (its retransmission's ACK... any
    // packet) are lost, and so is device-to-host packet 3.
    let lost_up = [2usize, 4];
    let lost_down = [3usize];
    let mut received = 0usize;
    let mut answers = Vec::new();
    host.open(now);
    for round in 0..200 {
        while let Some(packet) = host.poll_transmit() {
            sent += 1;
            if !lost_up.contains(&sent) {
                device.handle_packet(now, 1, &packet);
            }
        }
        while let Some(event) = device.poll_event() {
            if let DeviceEvent::Request { message, .. } = event {
                let mut answer = message.clone();
                answer.reverse();
                device.answer(now, answer).unwrap();
            }
        }
        while let Some(transmit) = device.poll_transmit() {
            received += 1;
            if !lost_down.contains(&received) {
                host.handle_packet(now, &transmit.packet);
            }
        }
        while let Some(event) = host.poll_event() {
            match event {
                HostEvent::Ready { .. } => {}
                HostEvent::Answer(answer) => answers.push(answer),
                other => panic!("round {round}: {other:?}"),
            }
        }
        if host.is_ready() {
            if answers.len() == 3 {
                break;
            }
            host.send(now, vec![answers.len() as u8, 1, 2]).unwrap();
            continue;
        }
        let next = [host.poll_timeout(), device.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("something is pending");
        now = now.max(next);
        host.handle_timeout(now);
        device.handle_timeout(now);
    }
    assert_eq!(answers, vec![vec![2, 1, 0], vec![2, 1, 1], vec![2, 1, 2]]);
    assert!(
        now < 2000,
        "recovered by retransmission, not by timeouts: {now} ms"
    );
}

#[test]
fn a_device_on_bluetooth_retransmits_its_answer_on_the_ble_timer() {
    // §2.1.1, "Timing": a BLE device's ACK round trip goes through two host stacks; it waits
    // 1000 ms + 20 ms per packet before resending, where USB waits 200 ms + 20 ms.
    let (mut device, mut hosts) = (device(), Hosts::new());
    device.set_retransmit(RetransmitPolicy::BLE);
    assert_eq!(device.retransmit(), RetransmitPolicy::BLE);
    let channel = allocate(&mut device, &mut hosts, 1);
    send(&mut device, 1000, 1, msg(channel, 0, b"status"));
    hosts.frames(&mut device, 1000);
    device.answer(1100, b"ok".to_vec()).unwrap();
    assert_eq!(
        hosts.frames(&mut device, 1100),
        vec![(Destination::Connection(1), msg(channel, 0, b"ok"))]
    );
    assert_eq!(device.poll_timeout(), Some(1100 + 1020));
    device.handle_timeout(1320);
    assert!(
        hosts.frames(&mut device, 1320).is_empty(),
        "no resend on the USB timer"
    );
    // The host's late ACK still ends the transaction: nothing was given up.
    send(
        &mut device,
        1900,
        1,
        Frame::new(channel, Body::Ack { seq: 0 }),
    );
    assert_eq!(device.transaction_owner(), None);
}

#[test]
fn a_new_request_after_the_device_gave_up_on_its_answer_is_that_answers_ack_and_is_answered() {
    // §2.9.3: the host's ACK of an answer can be lost after every retransmission (BLE under
    // load, 2026-12-05). The host had the answer: its next request proves it. The device
    // used to take that request, run it, and then find its sender waiting for an INIT: the
    // command ran and its answer could never be sent.
    let (mut device, mut hosts) = (device(), Hosts::new());
    let channel = allocate(&mut device, &mut hosts, 1);
    send(&mut device, 1000, 1, msg(channel, 0, b"first"));
    hosts.frames(&mut device, 1000);
    events(&mut device);
    device.answer(1000, b"one".to_vec()).unwrap();
    let mut now = 1000;
    let mut sends = hosts.frames(&mut device, now).len();
    while let Some(at) = device.poll_timeout() {
        now = at;
        device.handle_timeout(now);
        sends += hosts.frames(&mut device, now).len();
        if device.transaction_owner().is_none() {
            break;
        }
    }
    assert_eq!(
        sends, 6,
        "one send and five retransmissions, then it gives up"
    );
    assert_eq!(device.transaction_owner(), None);

    send(&mut device, now + 10, 1, msg(channel, 1, b"second"));
    let acked = hosts.frames(&mut device, now + 10);
    assert_eq!(
        acked,
        vec![(
            Destination::Connection(1),
            Frame::new(channel, Body::Ack { seq: 1 })
        )]
    );
    assert!(matches!(
        &events(&mut device)[..],
        [DeviceEvent::Request { message, .. }] if message == b"second"
    ));
    device
        .answer(now + 20, b"two".to_vec())
        .expect("the answer to the new request goes out");
    // The given-up answer was delivered after all: the next answer takes the next number.
    assert_eq!(
        hosts.frames(&mut device, now + 20),
        vec![(Destination::Connection(1), msg(channel, 1, b"two"))]
    );
}
