//! The host link machine driven by a hostile or broken device and an erratic caller: arbitrary
//! packets, well-formed frames (including correct INIT answers, so the request paths are
//! reachable), send / cancel / resync at any moment, and time jumps.
//! Invariants: no panic; every packet the host sends is exactly one MTU and decodes as a
//! well-formed frame; an answer only ends a request that was in progress; the timer never
//! stays in the past after `handle_timeout` (a driver would spin).
#![no_main]

use std::collections::BTreeMap;

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, ErrorCode, Frame, HostEvent, HostLink, HostLinkConfig,
    InitResponse, KeepaliveStatus, Mtu, PROTOCOL_VERSION, Reassembler, ReassemblerConfig,
    ReassemblyEvent, Role,
};
use libfuzzer_sys::fuzz_target;

/// What the device side sees of the host's packets: one reassembler per channel.
#[derive(Default)]
struct Observer {
    reassemblers: BTreeMap<ChannelId, Reassembler>,
    last_init: Option<(ChannelId, [u8; 8])>,
}

impl Observer {
    fn take(&mut self, host: &mut HostLink, now: u64) {
        let mtu = host.mtu();
        while let Some(packet) = host.poll_transmit() {
            assert_eq!(packet.len(), mtu.get(), "every packet is one MTU");
            let channel = ChannelId(u32::from_be_bytes([
                packet[0], packet[1], packet[2], packet[3],
            ]));
            let reassembler = self.reassemblers.entry(channel).or_insert_with(|| {
                let mut r = Reassembler::new(ReassemblerConfig::new(mtu, Role::Device));
                let _ = r.open_channel(channel);
                r
            });
            match reassembler.push(&packet, now) {
                ReassemblyEvent::Complete(frame) => {
                    if let Body::InitRequest { nonce } = frame.body {
                        self.last_init = Some((frame.channel, nonce));
                    }
                }
                ReassemblyEvent::Pending => {}
                other => panic!("the host sent a malformed packet: {other:?}"),
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
    let mut host = HostLink::new(HostLinkConfig::new(mtu), u64::from(*seed));
    let mut observer = Observer::default();
    let mut now = 0u64;
    let mut in_request = false;
    host.open(now);
    let mut ops = rest;
    while let [op, arg, tail @ ..] = ops {
        let (chunk, next) = tail.split_at(tail.len().min(usize::from(*arg % 80)));
        ops = next;
        let channel = host.channel();
        match op % 9 {
            // Raw bytes, possibly of the wrong size.
            0 => host.handle_packet(now, chunk),
            // Raw bytes on our channel.
            1 => {
                let mut packet = vec![0u8; mtu.get()];
                packet[..4].copy_from_slice(&channel.to_bytes());
                let n = chunk.len().min(mtu.get() - 4);
                packet[4..4 + n].copy_from_slice(&chunk[..n]);
                host.handle_packet(now, &packet);
            }
            // A well-formed frame on our channel.
            2 => {
                let body = match arg % 6 {
                    0 => Body::Ack {
                        seq: chunk.first().copied().unwrap_or(0),
                    },
                    1 => Body::Nack {
                        reason: ErrorCode::CrcMismatch,
                    },
                    2 => Body::Msg {
                        seq: chunk.first().copied().unwrap_or(0),
                        message: chunk.to_vec(),
                    },
                    3 => Body::Keepalive(KeepaliveStatus::AwaitingUser),
                    4 => Body::Error(match chunk.first().copied().unwrap_or(0) % 4 {
                        0 => ErrorCode::ChannelBusy,
                        1 => ErrorCode::InvalidChannel,
                        2 => ErrorCode::Cancelled,
                        _ => ErrorCode::Other,
                    }),
                    _ => Body::Keepalive(KeepaliveStatus::Processing),
                };
                if let Ok(packets) = Frame::new(channel, body).to_packets(mtu) {
                    for packet in packets {
                        host.handle_packet(now, &packet);
                    }
                }
            }
            // The device answers the last INIT it saw, assigning a channel from the input.
            3 => {
                if let Some((on, nonce)) = observer.last_init {
                    let id = u32::from_be_bytes([1, 0, 0, arg | 1]);
                    let assigned = if on.is_broadcast() { ChannelId(id) } else { on };
                    let answer = Body::InitResponse(InitResponse {
                        nonce,
                        channel: assigned,
                        version: PROTOCOL_VERSION,
                        capabilities: Capabilities::KEYPAD,
                        mtu,
                    });
                    if let Ok(packets) = Frame::new(on, answer).to_packets(mtu) {
                        for packet in packets {
                            host.handle_packet(now, &packet);
                        }
                    }
                }
            }
            4 => {
                let ready = host.is_ready();
                let sent = host.send(now, chunk.to_vec());
                assert_eq!(
                    sent.is_ok(),
                    ready,
                    "send works exactly when the link is ready"
                );
                in_request |= sent.is_ok();
            }
            5 => {
                assert_eq!(host.cancel(now), in_request);
            }
            6 => host.resync(now),
            // Time passes, up to just past the next timer.
            _ => {
                let step = u64::from(*arg) * 16;
                now = match host.poll_timeout() {
                    Some(due) if due <= now.saturating_add(step) => due.max(now),
                    _ => now.saturating_add(step),
                };
                host.handle_timeout(now);
                if let Some(due) = host.poll_timeout() {
                    assert!(due > now, "a timer stayed in the past: {due} <= {now}");
                }
            }
        }
        observer.take(&mut host, now);
        while let Some(event) = host.poll_event() {
            match event {
                HostEvent::Answer(_) | HostEvent::Failed(_) => {
                    assert!(in_request, "a request ended that was never sent");
                    in_request = false;
                }
                HostEvent::Ready { channel, .. } => {
                    assert!(channel.is_assignable());
                    in_request = false;
                }
                HostEvent::InitFailed(_) | HostEvent::Progress(_) => {}
            }
        }
        if !host.request_in_progress() {
            in_request = false;
        }
    }
});
