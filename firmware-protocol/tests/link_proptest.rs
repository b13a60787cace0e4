//! Property tests: packetize/reassemble round trips at random MTUs, payloads and channel
//! interleavings; arbitrary packets never panic the reassembler nor exceed its memory bound.

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use firmware_protocol::link::{
    Body, ChannelId, Command, Frame, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use proptest::prelude::*;

fn mtu() -> impl Strategy<Value = Mtu> {
    prop_oneof![Just(20usize), Just(64usize), Just(244usize), 20usize..=512]
        .prop_map(|n| Mtu::new(n).expect("in range"))
}

/// Up to 4 messages on distinct channels, each MSG or PING, with payloads up to the MTU's max,
/// plus a schedule deciding which channel's next packet goes out at each step.
fn scenario() -> impl Strategy<Value = (Mtu, Vec<Frame>, Vec<usize>)> {
    mtu().prop_flat_map(|mtu| {
        let max = mtu.max_payload_len();
        let frame = (
            any::<bool>(),
            any::<u8>(),
            prop_oneof![
                4 => proptest::collection::vec(any::<u8>(), 0..200),
                1 => proptest::collection::vec(any::<u8>(), 0..max),
            ],
        );
        (
            Just(mtu),
            proptest::collection::vec(frame, 1..=4),
            proptest::collection::vec(any::<usize>(), 0..600),
        )
            .prop_map(|(mtu, specs, schedule)| {
                let frames = specs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (is_msg, seq, mut data))| {
                        let channel = ChannelId(0x1000 + i as u32);
                        let body = if is_msg {
                            data.truncate(mtu.max_payload_len() - 1);
                            Body::Msg { seq, message: data }
                        } else {
                            Body::Ping(data)
                        };
                        Frame::new(channel, body)
                    })
                    .collect();
                (mtu, frames, schedule)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_under_any_interleaving((mtu, frames, schedule) in scenario()) {
        let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> = frames
            .iter()
            .map(|f| f.to_packets(mtu).expect("packetize").into())
            .collect();
        for (frame, queue) in frames.iter().zip(&queues) {
            prop_assert_eq!(queue.len(), mtu.packet_count(frame.body.payload_len()));
            prop_assert!(queue.iter().all(|p| p.len() == mtu.get()));
        }
        let mut config = ReassemblerConfig::new(mtu, Role::Device);
        config.max_partial_messages = frames.len();
        let mut device = Reassembler::new(config);
        for frame in &frames {
            device.open_channel(frame.channel).expect("open");
        }
        let mut completed = Vec::new();
        let mut now = 0u64;
        let mut step = 0usize;
        while queues.iter().any(|q| !q.is_empty()) {
            let nonempty: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
            let pick = nonempty[schedule.get(step).copied().unwrap_or(0) % nonempty.len()];
            step += 1;
            now += 1;
            let packet = queues[pick].pop_front().expect("nonempty");
            match device.push(&packet, now) {
                ReassemblyEvent::Pending => {}
                ReassemblyEvent::Complete(frame) => completed.push(frame),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        completed.sort_by_key(|f| f.channel);
        prop_assert_eq!(completed, frames);
        prop_assert_eq!(device.partial_count(), 0);
    }

    #[test]
    fn arbitrary_packets_never_panic_and_stay_bounded(
        mtu in mtu(),
        max_partial in 1usize..4,
        packets in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..600), 0u64..5000),
            1..80,
        ),
    ) {
        let mut config = ReassemblerConfig::new(mtu, Role::Device);
        config.max_partial_messages = max_partial;
        let channels = [ChannelId(1), ChannelId(2), ChannelId(3)];
        let mut device = Reassembler::new(config);
        let mut host = Reassembler::new(ReassemblerConfig { role: Role::Host, ..config });
        for c in channels {
            device.open_channel(c).expect("open");
            host.open_channel(c).expect("open");
        }
        let bound = max_partial * (mtu.max_payload_len() + 4);
        let mut now = 0u64;
        for (channel_pick, kind, size_pick, len, mut data, dt) in packets {
            // Mostly well-sized packets on known channels, with plausible headers, so the
            // deeper paths are reached; sometimes anything at all.
            let channel = match channel_pick % 6 {
                0..=2 => channels[usize::from(channel_pick % 3)],
                3 => ChannelId::BROADCAST,
                4 => ChannelId(u32::from(channel_pick) << 8),
                _ => ChannelId::RESERVED,
            };
            let size = if size_pick < 240 { mtu.get() } else { usize::from(size_pick) * 3 };
            let mut packet = channel.to_bytes().to_vec();
            packet.push(if kind < 0x40 { kind & 0x03 } else { kind });
            if kind >= 0x80 {
                packet.extend_from_slice(&(len % 2500).to_be_bytes());
            }
            data.resize(size.saturating_sub(packet.len()), 0);
            packet.extend_from_slice(&data);
            packet.truncate(size);
            now += dt;
            for r in [&mut device, &mut host] {
                let event = r.push(&packet, now);
                if let Some(reply) = event.reply() {
                    // Every answer is itself sendable.
                    prop_assert!(reply.to_packets(mtu).is_ok());
                    prop_assert!(matches!(reply.body.command(), Command::Error | Command::Nack));
                }
                prop_assert!(r.partial_count() <= max_partial);
                prop_assert!(r.buffered_bytes() <= bound);
                if dt > 4000 {
                    r.expire(now);
                }
            }
        }
    }

    #[test]
    fn body_decoding_never_panics(command in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..40), host in any::<bool>()) {
        if let Ok(command) = Command::from_byte(command) {
            let role = if host { Role::Host } else { Role::Device };
            if let Ok(body) = Body::decode(command, &payload, role) {
                // Whatever decodes re-encodes to the same bytes.
                prop_assert_eq!(body.encode_payload(), payload);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Genuine packet streams, mutated (bit flips, drops, repeats, swaps): the reassembler
    /// either completes an intact frame or reports a fault, and never delivers a corrupted one.
    #[test]
    fn mutated_streams_never_yield_corrupted_frames(
        (mtu, frames, _schedule) in scenario(),
        mutations in proptest::collection::vec((0u8..4, any::<usize>(), any::<usize>(), any::<u8>()), 0..6),
    ) {
        let mut stream: Vec<Vec<u8>> = frames
            .iter()
            .flat_map(|f| f.to_packets(mtu).expect("packetize"))
            .collect();
        for (kind, a, b, bit) in mutations {
            let n = stream.len();
            if n == 0 {
                break;
            }
            let (i, j) = (a % n, b % n);
            match kind {
                0 => {
                    let len = stream[i].len();
                    stream[i][j % len] ^= 1 << (bit % 8);
                }
                1 => {
                    stream.remove(i);
                }
                2 => {
                    let copy = stream[i].clone();
                    stream.insert(j % (n + 1), copy);
                }
                _ => stream.swap(i, j),
            }
        }
        let mut config = ReassemblerConfig::new(mtu, Role::Device);
        config.max_partial_messages = 4;
        let mut device = Reassembler::new(config);
        for frame in &frames {
            device.open_channel(frame.channel).expect("open");
        }
        for packet in &stream {
            if let ReassemblyEvent::Complete(frame) = device.push(packet, 0) {
                // A bit flip could only slip through as a CRC collision; with at most a few
                // single-bit flips CRC-32 detects them all.
                prop_assert!(frames.contains(&frame), "corrupted frame delivered: {:?}", frame);
            }
        }
    }
}
