//! Reassembler behaviour: interleaving, every fault path, timeouts, memory bound, channel table
//! and the device's one-transaction-at-a-time rule.

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use firmware_protocol::link::{
    Body, ChannelId, Command, ErrorCode, Frame, KeepaliveStatus, LinkError, MAX_OPEN_CHANNELS, Mtu,
    REASSEMBLY_TIMEOUT_MS, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};

const A: ChannelId = ChannelId(0x0A0A_0A0A);
const B: ChannelId = ChannelId(0x0B0B_0B0B);

fn reassembler(role: Role, mtu: Mtu, open: &[ChannelId]) -> Reassembler {
    let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, role));
    for &channel in open {
        reassembler.open_channel(channel).expect("assignable");
    }
    reassembler
}

fn msg(channel: ChannelId, seq: u8, len: usize) -> Frame {
    Frame::new(
        channel,
        Body::Msg {
            seq,
            message: (0..len).map(|i| (i * 7 + usize::from(seq)) as u8).collect(),
        },
    )
}

fn packets(frame: &Frame, mtu: Mtu) -> Vec<Vec<u8>> {
    frame.to_packets(mtu).expect("packetize")
}

fn push_all(reassembler: &mut Reassembler, packets: &[Vec<u8>], now_ms: u64) -> ReassemblyEvent {
    let mut last = ReassemblyEvent::Pending;
    for (i, packet) in packets.iter().enumerate() {
        assert_eq!(
            last,
            ReassemblyEvent::Pending,
            "early event before packet {i}"
        );
        last = reassembler.push(packet, now_ms);
    }
    last
}

fn rejected_with(event: &ReassemblyEvent) -> (ChannelId, ErrorCode) {
    match event {
        ReassemblyEvent::Reject { channel, error } => (*channel, error.code()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn interleaved_channels_each_complete() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A, B]);
    let (fa, fb) = (msg(A, 0, 300), msg(B, 0, 200));
    let (pa, pb) = (packets(&fa, mtu), packets(&fb, mtu));
    assert!(pa.len() > 3 && pb.len() > 3);
    let mut complete = Vec::new();
    for i in 0..pa.len().max(pb.len()) {
        for p in [pa.get(i), pb.get(i)].into_iter().flatten() {
            match device.push(p, 10) {
                ReassemblyEvent::Pending => {}
                ReassemblyEvent::Complete(frame) => complete.push(frame),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(complete, vec![fb, fa]);
    assert_eq!(device.partial_count(), 0);
}

#[test]
fn packets_of_the_wrong_size_or_on_channel_zero_are_ignored() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    let mut packet = packets(&Frame::new(A, Body::Ping(vec![1])), mtu).remove(0);
    packet.push(0);
    assert_eq!(
        device.push(&packet, 0),
        ReassemblyEvent::Ignored(LinkError::WrongPacketSize {
            expected: 64,
            actual: 65
        })
    );
    assert!(matches!(
        device.push(&[0u8; 3], 0),
        ReassemblyEvent::Ignored(LinkError::WrongPacketSize { actual: 3, .. })
    ));
    let mut zero = vec![0u8; 64];
    zero[4] = Command::Ping.byte();
    assert_eq!(
        device.push(&zero, 0),
        ReassemblyEvent::Ignored(LinkError::ReservedChannel)
    );
}

#[test]
fn unknown_channel_is_refused_once_by_a_device_and_ignored_by_a_host() {
    let mtu = Mtu::MIN;
    let stranger = ChannelId(0x1234_5678);
    let frame = msg(stranger, 0, 40);
    let ps = packets(&frame, mtu);
    let mut device = reassembler(Role::Device, mtu, &[A]);
    assert_eq!(
        rejected_with(&device.push(&ps[0], 0)),
        (stranger, ErrorCode::InvalidChannel)
    );
    // Continuations of the refused message do not trigger more replies.
    for p in &ps[1..] {
        assert!(matches!(
            device.push(p, 0),
            ReassemblyEvent::Ignored(LinkError::UnknownChannel { .. })
        ));
    }
    let mut host = reassembler(Role::Host, mtu, &[A]);
    assert!(matches!(
        host.push(&ps[0], 0),
        ReassemblyEvent::Ignored(LinkError::UnknownChannel { .. })
    ));
}

#[test]
fn stray_continuation_is_ignored() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    let ps = packets(&msg(A, 0, 200), mtu);
    assert_eq!(
        device.push(&ps[2], 0),
        ReassemblyEvent::Ignored(LinkError::UnexpectedContinuation { sequence: 1 })
    );
}

#[test]
fn sequence_gap_and_repeat_are_nacked_and_drop_the_message() {
    let mtu = Mtu::USB;
    let ps = packets(&msg(A, 0, 250), mtu);
    assert!(ps.len() >= 4);

    let mut device = reassembler(Role::Device, mtu, &[A]);
    assert_eq!(device.push(&ps[0], 0), ReassemblyEvent::Pending);
    let gap = device.push(&ps[2], 0);
    assert_eq!(
        gap,
        ReassemblyEvent::Reject {
            channel: A,
            error: LinkError::InvalidSequence {
                expected: 0,
                actual: 1
            }
        }
    );
    assert_eq!(
        gap.reply(),
        Some(Frame::new(
            A,
            Body::Nack {
                reason: ErrorCode::InvalidSequence
            }
        ))
    );
    assert_eq!(device.partial_count(), 0);
    assert!(matches!(
        device.push(&ps[3], 0),
        ReassemblyEvent::Ignored(LinkError::UnexpectedContinuation { .. })
    ));

    let mut device = reassembler(Role::Device, mtu, &[A]);
    device.push(&ps[0], 0);
    device.push(&ps[1], 0);
    assert_eq!(
        rejected_with(&device.push(&ps[1], 0)),
        (A, ErrorCode::InvalidSequence)
    );
}

#[test]
fn crc_mismatch_is_nacked_by_both_roles() {
    let mtu = Mtu::USB;
    let mut ps = packets(&msg(A, 3, 20), mtu);
    ps[0][9] ^= 0x40;
    for role in [Role::Device, Role::Host] {
        let mut r = reassembler(role, mtu, &[A]);
        let event = r.push(&ps[0], 0);
        assert!(matches!(
            event,
            ReassemblyEvent::Reject {
                channel: A,
                error: LinkError::CrcMismatch { .. }
            }
        ));
        assert_eq!(
            event.reply().map(|f| f.body),
            Some(Body::Nack {
                reason: ErrorCode::CrcMismatch
            })
        );
    }
}

#[test]
fn a_changed_channel_byte_breaks_the_crc() {
    // The CRC covers the channel: a message moved to another open channel is refused.
    let mtu = Mtu::USB;
    let mut ps = packets(&Frame::new(A, Body::Ping(vec![9; 10])), mtu);
    ps[0][..4].copy_from_slice(&B.to_bytes());
    let mut device = reassembler(Role::Device, mtu, &[A, B]);
    assert_eq!(
        rejected_with(&device.push(&ps[0], 0)),
        (B, ErrorCode::CrcMismatch)
    );
}

#[test]
fn nonzero_padding_is_refused() {
    let mtu = Mtu::MIN;
    // Padding in the last continuation packet.
    let mut ps = packets(&msg(A, 0, 20), mtu);
    let last = ps.last_mut().expect("packets");
    *last.last_mut().expect("bytes") = 1;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    assert_eq!(
        push_all(&mut device, &ps, 0),
        ReassemblyEvent::Reject {
            channel: A,
            error: LinkError::NonZeroPadding
        }
    );
}

#[test]
fn packets_further_apart_than_the_timeout_fail_the_message() {
    let mtu = Mtu::USB;
    let ps = packets(&msg(A, 0, 100), mtu);
    assert_eq!(ps.len(), 2);

    let mut device = reassembler(Role::Device, mtu, &[A]);
    device.push(&ps[0], 1_000);
    assert!(matches!(
        device.push(&ps[1], 1_000 + REASSEMBLY_TIMEOUT_MS),
        ReassemblyEvent::Complete(_)
    ));

    let mut device = reassembler(Role::Device, mtu, &[A]);
    device.push(&ps[0], 1_000);
    let late = device.push(&ps[1], 1_001 + REASSEMBLY_TIMEOUT_MS);
    assert_eq!(
        late,
        ReassemblyEvent::Reject {
            channel: A,
            error: LinkError::MessageTimeout {
                idle_ms: REASSEMBLY_TIMEOUT_MS + 1
            }
        }
    );
    assert_eq!(
        late.reply().map(|f| f.body),
        Some(Body::Nack {
            reason: ErrorCode::MessageTimeout
        })
    );
}

#[test]
fn expire_reports_silent_partials() {
    let mtu = Mtu::MIN;
    let mut device = reassembler(Role::Device, mtu, &[A, B]);
    device.push(&packets(&msg(A, 0, 50), mtu)[0], 0);
    device.push(&packets(&msg(B, 0, 50), mtu)[0], 2_000);
    assert!(device.expire(REASSEMBLY_TIMEOUT_MS).is_empty());
    let expired = device.expire(REASSEMBLY_TIMEOUT_MS + 1);
    assert_eq!(expired.len(), 1);
    assert_eq!(rejected_with(&expired[0]), (A, ErrorCode::MessageTimeout));
    assert_eq!(device.partial_count(), 1);
    assert_eq!(device.expire(10_000).len(), 1);
    assert_eq!(device.partial_count(), 0);
}

#[test]
fn partial_messages_are_bounded() {
    let mtu = Mtu::USB;
    let channels: Vec<ChannelId> = (1..=4).map(ChannelId).collect();
    let mut config = ReassemblerConfig::new(mtu, Role::Device);
    config.max_partial_messages = 2;
    let mut device = Reassembler::new(config);
    for &c in &channels {
        device.open_channel(c).expect("open");
    }
    let first: Vec<Vec<u8>> = channels
        .iter()
        .map(|&c| packets(&msg(c, 0, 4000), mtu).remove(0))
        .collect();
    assert_eq!(device.push(&first[0], 0), ReassemblyEvent::Pending);
    assert_eq!(device.push(&first[1], 0), ReassemblyEvent::Pending);
    assert_eq!(
        device.push(&first[2], 0),
        ReassemblyEvent::Reject {
            channel: channels[2],
            error: LinkError::TooManyPartialMessages { max: 2 }
        }
    );
    assert_eq!(device.partial_count(), 2);
    assert!(device.buffered_bytes() <= 2 * (mtu.max_payload_len() + 4));
    // Stale partials make room.
    assert_eq!(
        device.push(&first[3], REASSEMBLY_TIMEOUT_MS + 1),
        ReassemblyEvent::Pending
    );
    assert_eq!(device.partial_count(), 1);
}

#[test]
fn oversized_length_is_refused_before_allocating() {
    let mtu = Mtu::MIN;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    let mut packet = vec![0u8; 20];
    packet[..4].copy_from_slice(&A.to_bytes());
    packet[4] = Command::Msg.byte();
    packet[5..7].copy_from_slice(&1930u16.to_be_bytes());
    assert_eq!(
        device.push(&packet, 0),
        ReassemblyEvent::Reject {
            channel: A,
            error: LinkError::MessageTooLarge {
                len: 1930,
                max: 1929
            }
        }
    );
    assert_eq!(device.buffered_bytes(), 0);
    packet[5..7].copy_from_slice(&1929u16.to_be_bytes());
    assert_eq!(device.push(&packet, 0), ReassemblyEvent::Pending);
    assert_eq!(device.buffered_bytes(), 1933);
}

#[test]
fn a_new_init_packet_restarts_the_channel() {
    // How retransmission and cancellation work: the sender starts over.
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    let frame = msg(A, 0, 300);
    let ps = packets(&frame, mtu);
    device.push(&ps[0], 0);
    device.push(&ps[1], 0);
    assert_eq!(
        push_all(&mut device, &ps, 5),
        ReassemblyEvent::Complete(frame)
    );

    let mut device = reassembler(Role::Device, mtu, &[A]);
    device.push(&ps[0], 0);
    let cancel = Frame::new(A, Body::Cancel);
    assert_eq!(
        device.push(&packets(&cancel, mtu)[0], 0),
        ReassemblyEvent::Complete(cancel)
    );
    assert_eq!(device.partial_count(), 0);
}

#[test]
fn device_is_busy_for_other_channels_during_a_transaction() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A, B]);
    device.begin_transaction(A);
    assert_eq!(device.transaction_owner(), Some(A));

    let ping_b = packets(&Frame::new(B, Body::Ping(vec![1, 2])), mtu);
    let busy = device.push(&ping_b[0], 0);
    assert_eq!(
        busy,
        ReassemblyEvent::Reject {
            channel: B,
            error: LinkError::ChannelBusy { owner: A }
        }
    );
    assert_eq!(
        busy.reply(),
        Some(Frame::new(B, Body::Error(ErrorCode::ChannelBusy)))
    );
    for work in [
        Body::Wink,
        Body::InitRequest { nonce: [1; 8] },
        Body::Msg {
            seq: 0,
            message: vec![],
        },
    ] {
        let p = packets(&Frame::new(B, work), mtu);
        assert_eq!(
            rejected_with(&device.push(&p[0], 0)),
            (B, ErrorCode::ChannelBusy)
        );
    }
    // Delivery bookkeeping and cancellation still reach the device.
    for passes in [Body::Ack { seq: 4 }, Body::Cancel] {
        let frame = Frame::new(B, passes);
        assert_eq!(
            device.push(&packets(&frame, mtu)[0], 0),
            ReassemblyEvent::Complete(frame)
        );
    }
    // The owner and broadcast INIT are served.
    let ping_a = Frame::new(A, Body::Ping(vec![3]));
    assert_eq!(
        device.push(&packets(&ping_a, mtu)[0], 0),
        ReassemblyEvent::Complete(ping_a)
    );
    let init = Frame::new(ChannelId::BROADCAST, Body::InitRequest { nonce: [7; 8] });
    assert_eq!(
        device.push(&packets(&init, mtu)[0], 0),
        ReassemblyEvent::Complete(init)
    );
    device.end_transaction();
    assert!(matches!(
        device.push(&ping_b[0], 0),
        ReassemblyEvent::Complete(_)
    ));
}

#[test]
fn busy_is_also_checked_when_a_message_completes() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A, B]);
    let ps = packets(&msg(B, 0, 200), mtu);
    device.push(&ps[0], 0);
    device.begin_transaction(A);
    assert_eq!(
        push_all(&mut device, &ps[1..], 0),
        ReassemblyEvent::Reject {
            channel: B,
            error: LinkError::ChannelBusy { owner: A }
        }
    );
}

#[test]
fn commands_for_the_other_direction_are_refused() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    let keepalive = Frame::new(A, Body::Keepalive(KeepaliveStatus::Processing));
    assert_eq!(
        device.push(&packets(&keepalive, mtu)[0], 0),
        ReassemblyEvent::Reject {
            channel: A,
            error: LinkError::CommandNotAccepted {
                command: Command::Keepalive,
                receiver: Role::Device
            }
        }
    );
    let mut host = reassembler(Role::Host, mtu, &[A]);
    assert!(matches!(
        host.push(&packets(&Frame::new(A, Body::Cancel), mtu)[0], 0),
        ReassemblyEvent::Ignored(LinkError::CommandNotAccepted { .. })
    ));
}

#[test]
fn unknown_command_byte_is_refused() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    let mut packet = packets(&Frame::new(A, Body::Wink), mtu).remove(0);
    packet[4] = 0xA0;
    assert_eq!(
        device.push(&packet, 0),
        ReassemblyEvent::Reject {
            channel: A,
            error: LinkError::UnknownCommand { byte: 0xA0 }
        }
    );
}

#[test]
fn malformed_bodies_are_refused_after_the_crc_check() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    let mut host = reassembler(Role::Host, mtu, &[A]);
    // The command byte is covered by the CRC: relabelling a PING as INIT is caught as damage.
    let mut relabelled = packets(&Frame::new(A, Body::Ping(vec![0; 8])), mtu).remove(0);
    relabelled[4] = Command::Init.byte();
    assert!(matches!(
        device.push(&relabelled, 0),
        ReassemblyEvent::Reject {
            error: LinkError::CrcMismatch { .. },
            ..
        }
    ));
    // Intact but malformed: an INIT of response length sent to a device.
    assert_eq!(
        device.push(&raw_packet(A, Command::Init, &[0; 16], mtu), 0),
        ReassemblyEvent::Reject {
            channel: A,
            error: LinkError::InvalidPayloadLength {
                command: Command::Init,
                len: 16
            }
        }
    );
    // Hosts stay silent about non-transient faults.
    assert_eq!(
        host.push(&raw_packet(A, Command::Msg, &[], mtu), 0),
        ReassemblyEvent::Ignored(LinkError::InvalidPayloadLength {
            command: Command::Msg,
            len: 0
        })
    );
}

/// A single-packet message with any command byte and payload and a correct CRC, built by
/// hand (CRC-32/ISO-HDLC over the 7 header bytes and the payload) rather than by the crate.
fn raw_packet(channel: ChannelId, command: Command, payload: &[u8], mtu: Mtu) -> Vec<u8> {
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut packet = vec![0u8; mtu.get()];
    packet[..4].copy_from_slice(&channel.to_bytes());
    packet[4] = command.byte();
    packet[5..7].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    packet[7..7 + payload.len()].copy_from_slice(payload);
    let sum = crc.checksum(&packet[..7 + payload.len()]);
    packet[7 + payload.len()..11 + payload.len()].copy_from_slice(&sum.to_be_bytes());
    packet
}

#[test]
fn broadcast_channel_rules() {
    let mtu = Mtu::MIN;
    let mut device = reassembler(Role::Device, mtu, &[]);
    let ping = raw_packet(ChannelId::BROADCAST, Command::Ping, &[], mtu);
    assert_eq!(
        device.push(&ping, 0),
        ReassemblyEvent::Reject {
            channel: ChannelId::BROADCAST,
            error: LinkError::BroadcastNotAllowed {
                command: Command::Ping
            }
        }
    );
    // Damage on broadcast: silence, the INIT sender retries.
    let mut init = raw_packet(ChannelId::BROADCAST, Command::Init, &[5; 8], mtu);
    init[8] ^= 1;
    assert!(matches!(
        device.push(&init, 0),
        ReassemblyEvent::Ignored(LinkError::CrcMismatch { .. })
    ));

    // A host reassembles a two-packet INIT response at MTU 20.
    let mut host = reassembler(Role::Host, mtu, &[]);
    let response = Frame::new(
        ChannelId::BROADCAST,
        Body::InitResponse(firmware_protocol::link::InitResponse {
            nonce: [5; 8],
            channel: A,
            version: 1,
            capabilities: firmware_protocol::link::Capabilities::KEYPAD,
            mtu,
        }),
    );
    let ps = packets(&response, mtu);
    assert_eq!(ps.len(), 2);
    assert_eq!(
        push_all(&mut host, &ps, 0),
        ReassemblyEvent::Complete(response)
    );
}

#[test]
fn channel_allocation_skips_reserved_and_open_ids() {
    let mut device = reassembler(Role::Device, Mtu::USB, &[ChannelId(1)]);
    assert_eq!(device.allocate_channel(0), ChannelId(2));
    assert_eq!(device.allocate_channel(u32::MAX), ChannelId(3));
    assert_eq!(device.allocate_channel(0x5000), ChannelId(0x5000));
    for c in [1, 2, 3, 0x5000] {
        assert!(device.is_open(ChannelId(c)));
    }
    assert!(device.open_channel(ChannelId::BROADCAST).is_err());
    assert!(device.open_channel(ChannelId::RESERVED).is_err());
}

#[test]
fn least_recently_used_channel_is_closed_but_never_the_owner() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[]);
    let first = device.allocate_channel(100);
    let second = device.allocate_channel(200);
    device.begin_transaction(first);
    for i in 0..MAX_OPEN_CHANNELS as u32 - 2 {
        device.allocate_channel(1000 + i);
    }
    assert!(device.is_open(first) && device.is_open(second));
    let newest = device.allocate_channel(5000);
    assert!(device.is_open(first), "the transaction owner stays open");
    assert!(!device.is_open(second));
    assert!(device.is_open(newest));

    // Traffic refreshes a channel: after a message from `third`, it outlives its peers.
    let third = ChannelId(1000);
    let ack = Frame::new(third, Body::Ack { seq: 0 });
    assert!(matches!(
        device.push(&packets(&ack, mtu)[0], 0),
        ReassemblyEvent::Complete(_)
    ));
    device.allocate_channel(6000);
    assert!(device.is_open(third));
    assert!(!device.is_open(ChannelId(1001)));
}

#[test]
fn closing_the_owner_ends_the_transaction() {
    let mtu = Mtu::USB;
    let mut device = reassembler(Role::Device, mtu, &[A]);
    device.push(&packets(&msg(A, 0, 300), mtu)[0], 0);
    device.begin_transaction(A);
    device.close_channel(A);
    assert_eq!(device.transaction_owner(), None);
    assert_eq!(device.partial_count(), 0);
    assert!(!device.is_open(A));
}
