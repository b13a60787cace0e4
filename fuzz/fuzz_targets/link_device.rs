//! The device link machine facing hostile hosts on several connections and an erratic message
//! layer: arbitrary packets, well-formed frames on channels it allocated, answers, progress,
//! refusals and disconnects at any moment, and time jumps.
//! Invariants: no panic; every packet it sends is exactly one MTU and decodes as a well-formed
//! frame; at most one transaction, owned by an open channel; the timer never stays in the past
//! after `handle_timeout`.
#![no_main]

use std::collections::BTreeMap;

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, DeviceEvent, DeviceLink, DeviceLinkConfig, ErrorCode, Frame,
    KeepaliveStatus, Mtu, PinProgress, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Observer {
    reassemblers: BTreeMap<ChannelId, Reassembler>,
    channels: Vec<ChannelId>,
}

impl Observer {
    fn take(&mut self, device: &mut DeviceLink, now: u64) {
        let mtu = device.mtu();
        while let Some(transmit) = device.poll_transmit() {
            let packet = transmit.packet;
            assert_eq!(packet.len(), mtu.get(), "every packet is one MTU");
            let channel = ChannelId(u32::from_be_bytes([
                packet[0], packet[1], packet[2], packet[3],
            ]));
            let reassembler = self.reassemblers.entry(channel).or_insert_with(|| {
                let mut r = Reassembler::new(ReassemblerConfig::new(mtu, Role::Host));
                let _ = r.open_channel(channel);
                r
            });
            match reassembler.push(&packet, now) {
                ReassemblyEvent::Complete(frame) => {
                    if let Body::InitResponse(answer) = frame.body {
                        assert!(answer.channel.is_assignable());
                        if !self.channels.contains(&answer.channel) {
                            self.channels.push(answer.channel);
                        }
                    }
                }
                ReassemblyEvent::Pending => {}
                other => panic!("the device sent a malformed packet: {other:?}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [mtu_pick, seed, rest @ ..] = data else {
        return;
    };
    let mtu = match mtu_pick % 3 {
        0 => Mtu::USB,
        1 => Mtu::BLE_MIN,
        _ => Mtu::BLE_TYPICAL,
    };
    let mut device = DeviceLink::new(
        DeviceLinkConfig::new(mtu, Capabilities::KEYPAD),
        u64::from(*seed),
    );
    let mut observer = Observer::default();
    let mut now = 0u64;
    let mut ops = rest;
    while let [op, arg, tail @ ..] = ops {
        let (chunk, next) = tail.split_at(tail.len().min(usize::from(*arg % 80)));
        ops = next;
        let from = u64::from(arg % 3);
        let channel = match observer.channels.as_slice() {
            [] => ChannelId::BROADCAST,
            channels => channels[usize::from(*arg) % channels.len()],
        };
        match op % 9 {
            0 => device.handle_packet(now, from, chunk),
            // A well-formed frame on an allocated channel (or INIT on broadcast).
            1 | 2 => {
                let seq = chunk.first().copied().unwrap_or(0);
                let body = match chunk.get(1).copied().unwrap_or(0) % 7 {
                    0 => Body::InitRequest { nonce: [seq; 8] },
                    1 => Body::Msg {
                        seq,
                        message: chunk.to_vec(),
                    },
                    2 => Body::Ack { seq },
                    3 => Body::Nack {
                        reason: ErrorCode::CrcMismatch,
                    },
                    4 => Body::Cancel,
                    5 => Body::Ping(chunk.to_vec()),
                    _ => Body::Wink,
                };
                let channel = if op % 9 == 1 {
                    ChannelId::BROADCAST
                } else {
                    channel
                };
                let channel = if matches!(body, Body::InitRequest { .. }) || !channel.is_broadcast()
                {
                    channel
                } else {
                    continue;
                };
                if let Ok(packets) = Frame::new(channel, body).to_packets(mtu) {
                    for packet in packets {
                        device.handle_packet(now, from, &packet);
                    }
                }
            }
            3 => {
                let _ = device.answer(now, chunk.to_vec());
            }
            4 => {
                let status = match PinProgress::new(arg % 13, 12) {
                    Ok(progress) if arg & 0x80 != 0 => KeepaliveStatus::PinEntry(progress),
                    _ => KeepaliveStatus::AwaitingUser,
                };
                device.set_progress(now, status);
            }
            5 => device.refuse(ErrorCode::ChannelBusy),
            6 => device.disconnected(from),
            _ => {
                let step = u64::from(*arg) * 16;
                now = match device.poll_timeout() {
                    Some(due) if due <= now.saturating_add(step) => due.max(now),
                    _ => now.saturating_add(step),
                };
                device.handle_timeout(now);
                if let Some(due) = device.poll_timeout() {
                    assert!(due > now, "a timer stayed in the past: {due} <= {now}");
                }
            }
        }
        observer.take(&mut device, now);
        while let Some(event) = device.poll_event() {
            if let DeviceEvent::Request { channel, .. } = event {
                assert!(channel.is_assignable());
            }
        }
        assert!(device.channel_count() <= 16, "at most 16 open channels");
    }
});
