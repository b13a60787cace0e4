//! The host link machine on a fake clock: INIT retries, retransmission, keepalive progress,
//! idle timeout, cancel, busy, reassembly expiry. No runtime, no sleeps: time is a number.

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, ErrorCode, Frame, HostEvent, HostLink, HostLinkConfig,
    InitFailure, InitResponse, KeepaliveStatus, LinkError, Mtu, PROTOCOL_VERSION, PinProgress,
    Reassembler, ReassemblerConfig, ReassemblyEvent, RequestFailure, Role,
};

const MTU: Mtu = Mtu::USB;
const CH: ChannelId = ChannelId(0x1a2b_3c4d);

/// What the device would see: the host's packets decoded by a device-side reassembler.
struct Wire {
    device: Reassembler,
}

impl Wire {
    fn new() -> Self {
        let mut device = Reassembler::new(ReassemblerConfig::new(MTU, Role::Device));
        device.open_channel(CH).unwrap();
        Wire { device }
    }

    /// Every frame the host wants sent now.
    fn frames(&mut self, host: &mut HostLink, now: u64) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(packet) = host.poll_transmit() {
            assert_eq!(packet.len(), MTU.get());
            match self.device.push(&packet, now) {
                ReassemblyEvent::Complete(frame) => frames.push(frame),
                ReassemblyEvent::Pending => {}
                other => panic!("host sent a bad packet: {other:?}"),
            }
        }
        frames
    }
}

fn events(host: &mut HostLink) -> Vec<HostEvent> {
    std::iter::from_fn(|| host.poll_event()).collect()
}

fn deliver(host: &mut HostLink, now: u64, frame: Frame) {
    for packet in frame.to_packets(MTU).unwrap() {
        host.handle_packet(now, &packet);
    }
}

fn init_answer(nonce: [u8; 8], channel: ChannelId) -> Body {
    Body::InitResponse(InitResponse {
        nonce,
        channel,
        version: PROTOCOL_VERSION,
        capabilities: Capabilities::KEYPAD,
        mtu: MTU,
    })
}

fn nonce_of(frame: &Frame) -> [u8; 8] {
    match frame.body {
        Body::InitRequest { nonce } => nonce,
        ref other => panic!("expected INIT, got {other:?}"),
    }
}

/// A host with channel `CH` open at time 0.
fn ready_host() -> (HostLink, Wire) {
    let mut wire = Wire::new();
    let mut host = HostLink::new(HostLinkConfig::new(MTU), 7);
    host.open(0);
    let init = wire.frames(&mut host, 0);
    assert_eq!(init.len(), 1);
    assert_eq!(init[0].channel, ChannelId::BROADCAST);
    deliver(
        &mut host,
        5,
        Frame::new(ChannelId::BROADCAST, init_answer(nonce_of(&init[0]), CH)),
    );
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Ready {
            channel: CH,
            capabilities: Capabilities::KEYPAD
        }]
    );
    assert!(host.is_ready());
    (host, wire)
}

#[test]
fn init_is_resent_every_second_then_the_device_is_unreachable() {
    let mut wire = Wire::new();
    let mut host = HostLink::new(HostLinkConfig::new(MTU), 1);
    assert_eq!(host.poll_timeout(), None);
    assert_eq!(host.send(0, vec![1]), Err(LinkError::NoChannel));
    host.open(0);
    let first = wire.frames(&mut host, 0);
    let nonce = nonce_of(&first[0]);
    for attempt in 1..5u64 {
        assert_eq!(host.poll_timeout(), Some(attempt * 1000));
        host.handle_timeout(attempt * 1000 - 1);
        assert!(
            wire.frames(&mut host, 0).is_empty(),
            "not before the timeout"
        );
        host.handle_timeout(attempt * 1000);
        let again = wire.frames(&mut host, attempt * 1000);
        assert_eq!(again.len(), 1);
        assert_eq!(nonce_of(&again[0]), nonce, "retries repeat the nonce");
    }
    host.handle_timeout(5000);
    assert_eq!(
        events(&mut host),
        vec![HostEvent::InitFailed(InitFailure::NoAnswer {
            attempts: 5,
            timeout_ms: 1000
        })]
    );
    assert!(!host.is_ready());
}

#[test]
fn another_hosts_init_answer_is_not_taken() {
    let mut wire = Wire::new();
    let mut host = HostLink::new(HostLinkConfig::new(MTU), 2);
    host.open(0);
    let nonce = nonce_of(&wire.frames(&mut host, 0)[0]);
    let mut other = nonce;
    other[0] ^= 1;
    deliver(
        &mut host,
        1,
        Frame::new(ChannelId::BROADCAST, init_answer(other, ChannelId(9))),
    );
    assert!(events(&mut host).is_empty());
    let mut answer = init_answer(nonce, CH);
    if let Body::InitResponse(response) = &mut answer {
        response.mtu = Mtu::BLE_MIN;
    }
    deliver(&mut host, 2, Frame::new(ChannelId::BROADCAST, answer));
    assert_eq!(
        events(&mut host),
        vec![HostEvent::InitFailed(InitFailure::MtuMismatch {
            host: MTU,
            device: Mtu::BLE_MIN
        })]
    );
}

#[test]
fn an_unacknowledged_request_is_retransmitted_after_the_ack_timeout_then_resynced() {
    let (mut host, mut wire) = ready_host();
    assert_eq!(host.send(100, b"hi".to_vec()), Ok(0));
    let sent = wire.frames(&mut host, 100);
    assert_eq!(
        sent,
        vec![Frame::new(
            CH,
            Body::Msg {
                seq: 0,
                message: b"hi".to_vec()
            }
        )]
    );
    // One packet: 200 ms + 20 ms.
    let mut now = 100;
    for _ in 0..5 {
        assert_eq!(host.poll_timeout(), Some(now + 220));
        host.handle_timeout(now + 219);
        assert!(wire.frames(&mut host, now).is_empty());
        now += 220;
        host.handle_timeout(now);
        assert_eq!(
            wire.frames(&mut host, now),
            sent,
            "same MSG, same sequence number"
        );
    }
    now += 220;
    host.handle_timeout(now);
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Failed(RequestFailure::DeliveryFailed {
            transmissions: 6
        })]
    );
    let resync = wire.frames(&mut host, now);
    assert_eq!(resync.len(), 1);
    assert_eq!(resync[0].channel, CH, "INIT on the channel: a resync");
    assert!(host.is_initialising());
    assert_eq!(host.send(now, vec![1]), Err(LinkError::NoChannel));
    deliver(
        &mut host,
        now + 1,
        Frame::new(CH, init_answer(nonce_of(&resync[0]), CH)),
    );
    assert!(matches!(events(&mut host)[..], [HostEvent::Ready { .. }]));
    assert_eq!(
        host.send(now + 2, vec![1]),
        Ok(0),
        "sequence numbers start again"
    );
}

#[test]
fn nack_resends_at_once_and_an_answer_stands_in_for_a_lost_ack() {
    let (mut host, mut wire) = ready_host();
    host.send(0, b"req".to_vec()).unwrap();
    let sent = wire.frames(&mut host, 0);
    deliver(
        &mut host,
        10,
        Frame::new(
            CH,
            Body::Nack {
                reason: ErrorCode::CrcMismatch,
            },
        ),
    );
    assert_eq!(wire.frames(&mut host, 10), sent);
    // The ACK is lost; the answer arrives.
    deliver(
        &mut host,
        20,
        Frame::new(
            CH,
            Body::Msg {
                seq: 0,
                message: b"ans".to_vec(),
            },
        ),
    );
    assert_eq!(
        wire.frames(&mut host, 20),
        vec![Frame::new(CH, Body::Ack { seq: 0 })]
    );
    assert_eq!(events(&mut host), vec![HostEvent::Answer(b"ans".to_vec())]);
    assert!(host.is_ready());
    // The answer's retransmission is acknowledged again but not delivered twice.
    deliver(
        &mut host,
        30,
        Frame::new(
            CH,
            Body::Msg {
                seq: 0,
                message: b"ans".to_vec(),
            },
        ),
    );
    assert_eq!(
        wire.frames(&mut host, 30),
        vec![Frame::new(CH, Body::Ack { seq: 0 })]
    );
    assert!(events(&mut host).is_empty());
    assert_eq!(
        host.send(40, vec![2]),
        Ok(1),
        "the request's number was consumed"
    );
}

#[test]
fn keepalives_become_progress_once_per_change_and_keep_the_request_alive() {
    let (mut host, mut wire) = ready_host();
    host.send(0, b"pin".to_vec()).unwrap();
    wire.frames(&mut host, 0);
    deliver(&mut host, 10, Frame::new(CH, Body::Ack { seq: 0 }));
    assert!(host.is_delivered());
    assert_eq!(
        host.poll_timeout(),
        Some(10 + 3000),
        "idle timeout from the last packet"
    );
    let digits = |n| KeepaliveStatus::PinEntry(PinProgress::new(n, 4).unwrap());
    let mut now = 10;
    for status in [
        KeepaliveStatus::AwaitingUser,
        KeepaliveStatus::AwaitingUser,
        digits(1),
        digits(1),
        digits(2),
    ] {
        now += 2500;
        deliver(&mut host, now, Frame::new(CH, Body::Keepalive(status)));
        host.handle_timeout(now);
    }
    assert_eq!(
        events(&mut host),
        vec![
            HostEvent::Progress(KeepaliveStatus::AwaitingUser),
            HostEvent::Progress(digits(1)),
            HostEvent::Progress(digits(2)),
        ],
        "12.5 s of keepalives 2.5 s apart: alive, each change reported once"
    );
    assert_eq!(host.poll_timeout(), Some(now + 3000));
    host.handle_timeout(now + 3000);
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Failed(RequestFailure::DeviceSilent {
            idle_ms: 3000
        })]
    );
    let resync = wire.frames(&mut host, now + 3000);
    assert!(matches!(
        resync[..],
        [Frame {
            channel: CH,
            body: Body::InitRequest { .. }
        }]
    ));
}

#[test]
fn busy_leaves_the_sequence_number_free_and_invalid_channel_reallocates() {
    let (mut host, mut wire) = ready_host();
    host.send(0, b"a".to_vec()).unwrap();
    wire.frames(&mut host, 0);
    deliver(
        &mut host,
        5,
        Frame::new(CH, Body::Error(ErrorCode::ChannelBusy)),
    );
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Failed(RequestFailure::Busy)]
    );
    assert!(host.is_ready(), "busy needs no resync");
    assert_eq!(host.poll_timeout(), None, "idle between requests");
    assert_eq!(host.send(400, b"a".to_vec()), Ok(0), "same sequence number");
    wire.frames(&mut host, 400);
    deliver(
        &mut host,
        405,
        Frame::new(CH, Body::Error(ErrorCode::InvalidChannel)),
    );
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Failed(RequestFailure::ChannelInvalid)]
    );
    let init = wire.frames(&mut host, 405);
    assert_eq!(init[0].channel, ChannelId::BROADCAST, "a new channel");
    deliver(
        &mut host,
        406,
        Frame::new(CH, Body::Error(ErrorCode::Other)),
    );
    assert!(
        events(&mut host).is_empty(),
        "nothing but the INIT answer counts now"
    );
}

#[test]
fn cancel_is_repeated_until_confirmed() {
    let (mut host, mut wire) = ready_host();
    host.send(0, b"pay".to_vec()).unwrap();
    wire.frames(&mut host, 0);
    deliver(&mut host, 5, Frame::new(CH, Body::Ack { seq: 0 }));
    assert!(host.cancel(100));
    assert_eq!(
        wire.frames(&mut host, 100),
        vec![Frame::new(CH, Body::Cancel)]
    );
    assert_eq!(host.poll_timeout(), Some(300));
    host.handle_timeout(300);
    assert_eq!(
        wire.frames(&mut host, 300),
        vec![Frame::new(CH, Body::Cancel)]
    );
    deliver(
        &mut host,
        350,
        Frame::new(CH, Body::Error(ErrorCode::Cancelled)),
    );
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Failed(RequestFailure::Cancelled {
            confirmed: true
        })]
    );
    assert!(
        host.is_ready(),
        "a confirmed cancel of a delivered request needs no resync"
    );
    assert!(!host.cancel(400), "nothing left to cancel");
}

#[test]
fn an_unconfirmed_cancel_ends_in_a_resync() {
    let (mut host, mut wire) = ready_host();
    host.send(0, b"pay".to_vec()).unwrap();
    wire.frames(&mut host, 0);
    host.cancel(50);
    let mut cancels = 0;
    let mut now = 50;
    while !host.is_initialising() {
        cancels += wire
            .frames(&mut host, now)
            .iter()
            .filter(|f| f.body == Body::Cancel)
            .count();
        now = host.poll_timeout().unwrap();
        assert!(
            now <= 1050,
            "no retransmission of the request while cancelling"
        );
        host.handle_timeout(now);
    }
    assert_eq!(now, 1050);
    assert_eq!(cancels, 5, "at 50, 250, 450, 650, 850 ms");
    assert_eq!(
        events(&mut host),
        vec![HostEvent::Failed(RequestFailure::Cancelled {
            confirmed: false
        })]
    );
}

#[test]
fn a_partial_frame_expires_with_a_nack() {
    let (mut host, mut wire) = ready_host();
    let answer = Frame::new(
        CH,
        Body::Msg {
            seq: 0,
            message: vec![0x55; 100],
        },
    );
    let packets = answer.to_packets(MTU).unwrap();
    host.handle_packet(10, &packets[0]);
    // Nothing else is pending: the next timer is the reassembly timeout, 3000 ms after the
    // frame's last packet.
    assert_eq!(host.poll_timeout(), Some(3011));
    host.handle_timeout(3010);
    assert!(wire.frames(&mut host, 3010).is_empty());
    host.handle_timeout(3011);
    assert_eq!(
        wire.frames(&mut host, 3011),
        vec![Frame::new(
            CH,
            Body::Nack {
                reason: ErrorCode::MessageTimeout
            }
        )]
    );
    assert_eq!(host.poll_timeout(), None);
}
