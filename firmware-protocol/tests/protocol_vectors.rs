//! Link and message layers together: every golden message in a MSG frame, as the exact
//! packets at MTU 20, 64 and 244 (tests/vectors/message_packets.json, built by an independent
//! Python packetizer). Checked both ways: message -> packets, and packets -> message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use firmware_protocol::link::{
    Body, ChannelId, Frame, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use firmware_protocol::message::Message;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/message_packets.json"
    );
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    document["vectors"].as_array().unwrap().clone()
}

fn hex_field(vector: &Value, field: &str) -> Vec<u8> {
    hex::decode(vector[field].as_str().unwrap()).unwrap()
}

#[test]
fn every_message_at_every_mtu_packetizes_to_the_golden_packets() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 35 * 3, "every golden message at three MTUs");
    for vector in &vectors {
        let mtu = Mtu::new(vector["mtu"].as_u64().unwrap() as usize).unwrap();
        let channel =
            ChannelId(u32::from_str_radix(vector["channel"].as_str().unwrap(), 16).unwrap());
        let message = Message::decode(&hex_field(vector, "message")).unwrap();
        let frame = Frame::new(
            channel,
            Body::Msg {
                seq: vector["sequence"].as_u64().unwrap() as u8,
                message: message.encode().unwrap(),
            },
        );
        let expected: Vec<Vec<u8>> = vector["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| hex::decode(p.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(
            frame.to_packets(mtu).unwrap(),
            expected,
            "{} at MTU {}",
            vector["name"],
            mtu.get()
        );
    }
}

#[test]
fn every_golden_packet_sequence_reassembles_to_its_message() {
    for vector in vectors() {
        let mtu = Mtu::new(vector["mtu"].as_u64().unwrap() as usize).unwrap();
        let channel =
            ChannelId(u32::from_str_radix(vector["channel"].as_str().unwrap(), 16).unwrap());
        // Requests travel to the device, responses to the host.
        let role = if vector["direction"] == "request" {
            Role::Device
        } else {
            Role::Host
        };
        let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, role));
        reassembler.open_channel(channel).unwrap();
        let packets = vector["packets"].as_array().unwrap();
        let mut completed = None;
        for (index, packet) in packets.iter().enumerate() {
            let packet = hex::decode(packet.as_str().unwrap()).unwrap();
            match reassembler.push(&packet, index as u64) {
                ReassemblyEvent::Complete(frame) => completed = Some(frame),
                ReassemblyEvent::Pending => {}
                other => panic!("{}: unexpected {other:?}", vector["name"]),
            }
        }
        let frame = completed.unwrap_or_else(|| panic!("{} did not complete", vector["name"]));
        assert_eq!(frame.channel, channel);
        let Body::Msg { message, .. } = frame.body else {
            panic!("{}: not a MSG frame", vector["name"]);
        };
        assert_eq!(message, hex_field(&vector, "message"), "{}", vector["name"]);
        assert!(Message::decode(&message).is_ok(), "{}", vector["name"]);
    }
}
