//! Arbitrary packets into the reassembler, as a hostile or broken peer would send them.
//! Invariants: no panic; memory held never exceeds the cap; every completed frame decodes and
//! re-encodes to packets the reassembler accepts again.
#![no_main]

use firmware_protocol::link::{
    ChannelId, MAX_PAYLOAD_LEN, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mtu_pick, role_pick, rest @ ..] = data else {
        return;
    };
    // Weight the MTUs the transports use, then any in range.
    let mtu = match mtu_pick % 4 {
        0 => Mtu::USB,
        1 => Mtu::BLE_MIN,
        2 => Mtu::BLE_TYPICAL,
        _ => match Mtu::new(20 + usize::from(*mtu_pick)) {
            Ok(mtu) => mtu,
            Err(_) => return,
        },
    };
    let role = if role_pick & 1 == 0 { Role::Device } else { Role::Host };
    let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, role));
    // Channels a real session would have open, so continuation paths are reachable.
    for id in [1u32, 2, 0x0102_0304] {
        let _ = reassembler.open_channel(ChannelId(id));
    }
    let cap = 4 * (MAX_PAYLOAD_LEN + 4) + mtu.get();
    let mut now_ms = 0u64;
    for packet in rest.chunks(mtu.get()) {
        // The last byte of each packet also steps the clock, so timeouts are explored.
        now_ms += u64::from(*packet.last().unwrap_or(&0)) * 16;
        if let ReassemblyEvent::Complete(frame) = reassembler.push(packet, now_ms) {
            if let Ok(packets) = frame.to_packets(mtu) {
                let mut again = Reassembler::new(ReassemblerConfig::new(mtu, role));
                let _ = again.open_channel(frame.channel);
                let mut completed = false;
                for p in &packets {
                    if let ReassemblyEvent::Complete(back) = again.push(p, now_ms) {
                        assert_eq!(back, frame);
                        completed = true;
                    }
                }
                assert!(completed, "a decoded frame must survive its own packetization");
            }
        }
        assert!(reassembler.buffered_bytes() <= cap);
        let _ = reassembler.expire(now_ms);
    }
});
