//! Golden vectors in tests/vectors/link.json (computed by the independent Python
//! implementation tests/vectors/check_link.py): packetize -> exact packets, reassemble ->
//! exact frame, faulty packets -> exact reply.

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, Command, ErrorCode, Frame, InitResponse, KeepaliveStatus, Mtu,
    PinProgress, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use serde_json::Value;

fn vectors() -> Value {
    let text = include_str!("vectors/link.json");
    serde_json::from_str(text).expect("link.json parses")
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} in {value}"))
}

fn bytes(value: &Value, key: &str) -> Vec<u8> {
    hex::decode(text(value, key)).expect("hex")
}

fn channel(value: &Value, key: &str) -> ChannelId {
    ChannelId(u32::from_str_radix(text(value, key), 16).expect("channel hex"))
}

fn packets(value: &Value, key: &str) -> Vec<Vec<u8>> {
    value[key]
        .as_array()
        .expect("packet list")
        .iter()
        .map(|p| hex::decode(p.as_str().expect("packet hex")).expect("hex"))
        .collect()
}

fn error_code(name: &str) -> ErrorCode {
    match name {
        "INVALID_COMMAND" => ErrorCode::InvalidCommand,
        "INVALID_PARAMETER" => ErrorCode::InvalidParameter,
        "INVALID_LENGTH" => ErrorCode::InvalidLength,
        "INVALID_SEQUENCE" => ErrorCode::InvalidSequence,
        "MESSAGE_TIMEOUT" => ErrorCode::MessageTimeout,
        "CHANNEL_BUSY" => ErrorCode::ChannelBusy,
        "INVALID_CHANNEL" => ErrorCode::InvalidChannel,
        "CRC_MISMATCH" => ErrorCode::CrcMismatch,
        "MESSAGE_TOO_LARGE" => ErrorCode::MessageTooLarge,
        "CANCELLED" => ErrorCode::Cancelled,
        "OTHER" => ErrorCode::Other,
        other => panic!("unknown error code name {other}"),
    }
}

fn command(name: &str) -> Command {
    match name {
        "PING" => Command::Ping,
        "MSG" => Command::Msg,
        "ACK" => Command::Ack,
        "NACK" => Command::Nack,
        "INIT" => Command::Init,
        "WINK" => Command::Wink,
        "CANCEL" => Command::Cancel,
        "KEEPALIVE" => Command::Keepalive,
        "ERROR" => Command::Error,
        other => panic!("unknown command name {other}"),
    }
}

fn receiver(vector: &Value) -> Role {
    match text(vector, "direction") {
        "to_device" => Role::Device,
        "to_host" => Role::Host,
        other => panic!("direction {other}"),
    }
}

/// The typed body a control vector describes, built without the crate's decoder.
fn described_body(body: &Value) -> Body {
    let u8_field = |key: &str| u8::try_from(body[key].as_u64().expect("number")).expect("u8");
    let nonce = || -> [u8; 8] { bytes(body, "nonce").try_into().expect("8-byte nonce") };
    match text(body, "type") {
        "init_request" => Body::InitRequest { nonce: nonce() },
        "init_response" => Body::InitResponse(InitResponse {
            nonce: nonce(),
            channel: channel(body, "channel"),
            version: u8_field("version"),
            capabilities: Capabilities(u8_field("capabilities")),
            mtu: Mtu::new(body["mtu"].as_u64().expect("mtu") as usize).expect("mtu"),
        }),
        "ack" => Body::Ack {
            seq: u8_field("seq"),
        },
        "nack" => Body::Nack {
            reason: error_code(text(body, "code")),
        },
        "error" => Body::Error(error_code(text(body, "code"))),
        "cancel" => Body::Cancel,
        "wink" => Body::Wink,
        "keepalive" => Body::Keepalive(match text(body, "status") {
            "processing" => KeepaliveStatus::Processing,
            "awaiting_user" => KeepaliveStatus::AwaitingUser,
            "pin_entry" => KeepaliveStatus::PinEntry(
                PinProgress::new(u8_field("entered"), u8_field("max")).expect("valid progress"),
            ),
            other => panic!("keepalive status {other}"),
        }),
        other => panic!("body type {other}"),
    }
}

fn expected_frame(vector: &Value) -> Frame {
    let payload = bytes(vector, "payload");
    let command = command(text(vector, "command"));
    let body = if vector.get("body").is_some() {
        described_body(&vector["body"])
    } else {
        match command {
            Command::Ping => Body::Ping(payload.clone()),
            Command::Msg => Body::Msg {
                seq: payload[0],
                message: payload[1..].to_vec(),
            },
            other => panic!("vector without body description for {other:?}"),
        }
    };
    assert_eq!(body.encode_payload(), payload, "{}", vector["name"]);
    Frame::new(channel(vector, "channel"), body)
}

fn reassembler_for(vector: &Value, mtu: Mtu, role: Role) -> Reassembler {
    let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, role));
    let channel = channel(vector, "channel");
    if !channel.is_broadcast() {
        reassembler.open_channel(channel).expect("open");
    }
    reassembler
}

#[test]
fn message_vectors_packetize_to_the_exact_packets() {
    let vectors = vectors();
    let messages = vectors["messages"].as_array().expect("messages");
    assert!(messages.len() >= 40);
    for vector in messages {
        let mtu = Mtu::new(vector["mtu"].as_u64().expect("mtu") as usize).expect("mtu");
        let frame = expected_frame(vector);
        assert_eq!(
            frame.body.command().byte(),
            u8::from_str_radix(text(vector, "command_byte"), 16).expect("hex")
        );
        let produced = frame.to_packets(mtu).expect("packetize");
        assert_eq!(
            produced,
            packets(vector, "packets"),
            "{} at MTU {}",
            vector["name"],
            mtu.get()
        );
        // The CRC sits big-endian right after the payload in the message stream.
        let payload_len = bytes(vector, "payload").len();
        let stream: Vec<u8> = produced
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p[if i == 0 { 7 } else { 5 }..].to_vec())
            .collect();
        assert_eq!(
            hex::encode(&stream[payload_len..payload_len + 4]),
            text(vector, "crc")
        );
    }
}

#[test]
fn message_vectors_reassemble_to_the_exact_frame() {
    let vectors = vectors();
    for vector in vectors["messages"].as_array().expect("messages") {
        let mtu = Mtu::new(vector["mtu"].as_u64().expect("mtu") as usize).expect("mtu");
        let mut reassembler = reassembler_for(vector, mtu, receiver(vector));
        let packets = packets(vector, "packets");
        let last = packets.len() - 1;
        for (i, packet) in packets.iter().enumerate() {
            let event = reassembler.push(packet, 1000 + i as u64);
            if i < last {
                assert_eq!(event, ReassemblyEvent::Pending, "{}", vector["name"]);
            } else {
                assert_eq!(
                    event,
                    ReassemblyEvent::Complete(expected_frame(vector)),
                    "{} at MTU {}",
                    vector["name"],
                    mtu.get()
                );
            }
        }
        assert_eq!(reassembler.partial_count(), 0);
    }
}

#[test]
fn vectors_cover_the_required_sizes_at_each_mtu() {
    let vectors = vectors();
    let messages = vectors["messages"].as_array().expect("messages");
    for mtu in [20usize, 64, 244] {
        let at_mtu: Vec<&Value> = messages
            .iter()
            .filter(|v| v["mtu"].as_u64() == Some(mtu as u64))
            .collect();
        let lens: Vec<usize> = at_mtu.iter().map(|v| bytes(v, "payload").len()).collect();
        let max = Mtu::new(mtu).expect("mtu").max_payload_len();
        for required in [0, 1, mtu - 11, max] {
            assert!(
                lens.contains(&required),
                "MTU {mtu} lacks a {required}-byte payload"
            );
        }
        assert!(
            at_mtu
                .iter()
                .any(|v| v["packets"].as_array().expect("packets").len() >= 3),
            "MTU {mtu} lacks a message spanning several continuations"
        );
    }
    assert_eq!(Mtu::new(20).expect("mtu").max_payload_len(), 1929);
}

#[test]
fn fault_vectors_produce_the_exact_reply() {
    let vectors = vectors();
    let faults = vectors["faults"].as_array().expect("faults");
    assert!(faults.len() >= 8);
    for vector in faults {
        let mtu = Mtu::new(vector["mtu"].as_u64().expect("mtu") as usize).expect("mtu");
        assert_eq!(text(vector, "receiver"), "device");
        let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, Role::Device));
        for open in vector["open_channels"].as_array().expect("channels") {
            let id = u32::from_str_radix(open.as_str().expect("hex"), 16).expect("hex");
            reassembler.open_channel(ChannelId(id)).expect("open");
        }
        if let Some(owner) = vector["transaction_owner"].as_str() {
            reassembler.begin_transaction(ChannelId(u32::from_str_radix(owner, 16).expect("hex")));
        }
        let input = packets(vector, "packets");
        let mut events: Vec<ReassemblyEvent> = input
            .iter()
            .map(|packet| reassembler.push(packet, 500))
            .collect();
        let last = events.pop().expect("at least one packet");
        assert!(
            events.iter().all(|e| *e == ReassemblyEvent::Pending),
            "{}: {events:?}",
            vector["name"]
        );
        let ReassemblyEvent::Reject { channel: at, error } = &last else {
            panic!("{}: expected a rejection, got {last:?}", vector["name"]);
        };
        assert_eq!(*at, channel(vector, "reply_channel"), "{}", vector["name"]);
        assert_eq!(error.code(), error_code(text(vector, "reply_code")));
        let reply = last.reply().expect("reply frame");
        assert_eq!(reply.body.command(), command(text(vector, "reply_command")));
        assert_eq!(
            reply.to_packets(mtu).expect("packetize reply"),
            packets(vector, "reply_packets"),
            "{}",
            vector["name"]
        );
        assert_eq!(reassembler.partial_count(), 0, "{}", vector["name"]);
    }
}
