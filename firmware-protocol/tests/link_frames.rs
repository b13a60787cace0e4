//! Frame bodies, command and error tables, MTU geometry and the packetizer's refusals.

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, Command, ErrorCode, Frame, InitResponse, KeepaliveStatus,
    LinkError, MAX_PAYLOAD_LEN, Mtu, Packetizer, PinProgress, Role,
};

const A: ChannelId = ChannelId(0x0102_0304);

#[test]
fn mtu_range_and_geometry() {
    assert!(matches!(
        Mtu::new(19),
        Err(LinkError::InvalidMtu { mtu: 19 })
    ));
    assert!(matches!(
        Mtu::new(513),
        Err(LinkError::InvalidMtu { mtu: 513 })
    ));
    let usb = Mtu::new(64).expect("valid");
    assert_eq!((usb.init_data_len(), usb.continuation_data_len()), (57, 59));
    assert_eq!(usb.max_payload_len(), MAX_PAYLOAD_LEN);
    assert_eq!(Mtu::MIN.max_payload_len(), 1929);
    assert_eq!(Mtu::BLE_TYPICAL.max_payload_len(), MAX_PAYLOAD_LEN);
    // Stream = payload + 4-byte CRC.
    assert_eq!(usb.packet_count(53), 1);
    assert_eq!(usb.packet_count(54), 2);
    assert_eq!(usb.packet_count(53 + 59), 2);
    assert_eq!(usb.packet_count(53 + 59 + 1), 3);
    assert_eq!(Mtu::MIN.packet_count(1929), 129);
}

#[test]
fn command_table_round_trips_and_rejects_unknown_bytes() {
    let table = [
        (Command::Ping, 0x81),
        (Command::Msg, 0x83),
        (Command::Ack, 0x84),
        (Command::Nack, 0x85),
        (Command::Init, 0x86),
        (Command::Wink, 0x88),
        (Command::Cancel, 0x91),
        (Command::Keepalive, 0xBB),
        (Command::Error, 0xBF),
    ];
    for (command, byte) in table {
        assert_eq!(command.byte(), byte);
        assert_eq!(Command::from_byte(byte), Ok(command));
    }
    let known: Vec<u8> = table.iter().map(|(_, b)| *b).collect();
    for byte in 0..=255u8 {
        if !known.contains(&byte) {
            assert_eq!(
                Command::from_byte(byte),
                Err(LinkError::UnknownCommand { byte })
            );
        }
    }
}

#[test]
fn error_code_table_and_transience() {
    let table = [
        (ErrorCode::InvalidCommand, 0x01, false),
        (ErrorCode::InvalidParameter, 0x02, false),
        (ErrorCode::InvalidLength, 0x03, false),
        (ErrorCode::InvalidSequence, 0x04, true),
        (ErrorCode::MessageTimeout, 0x05, true),
        (ErrorCode::ChannelBusy, 0x06, false),
        (ErrorCode::InvalidChannel, 0x07, false),
        (ErrorCode::CrcMismatch, 0x08, true),
        (ErrorCode::MessageTooLarge, 0x09, false),
        (ErrorCode::Cancelled, 0x0A, false),
        (ErrorCode::Other, 0x7F, false),
    ];
    for (code, byte, transient) in table {
        assert_eq!(code.byte(), byte);
        assert_eq!(ErrorCode::from_byte(byte), Ok(code));
        assert_eq!(code.is_transient(), transient, "{code:?}");
    }
    assert_eq!(
        ErrorCode::from_byte(0x0B),
        Err(LinkError::UnknownErrorCode { byte: 0x0B })
    );
}

#[test]
fn bodies_round_trip_through_their_payloads() {
    let progress = PinProgress::new(4, 12).expect("valid");
    let response = InitResponse {
        nonce: *b"12345678",
        channel: A,
        version: 1,
        capabilities: Capabilities::WINK.union(Capabilities::DISPLAY),
        mtu: Mtu::BLE_TYPICAL,
    };
    let cases: Vec<(Body, Role, Vec<u8>)> = vec![
        (Body::Ping(vec![]), Role::Device, vec![]),
        (Body::Ping(vec![1, 2]), Role::Host, vec![1, 2]),
        (
            Body::Msg {
                seq: 9,
                message: vec![0xAA],
            },
            Role::Device,
            vec![9, 0xAA],
        ),
        (Body::Ack { seq: 255 }, Role::Host, vec![255]),
        (
            Body::Nack {
                reason: ErrorCode::MessageTimeout,
            },
            Role::Device,
            vec![5],
        ),
        (
            Body::InitRequest { nonce: [3; 8] },
            Role::Device,
            vec![3; 8],
        ),
        (
            Body::InitResponse(response),
            Role::Host,
            [b"12345678".as_slice(), &[1, 2, 3, 4, 1, 0x05, 0x00, 0xF4]].concat(),
        ),
        (Body::Wink, Role::Host, vec![]),
        (Body::Cancel, Role::Device, vec![]),
        (
            Body::Keepalive(KeepaliveStatus::Processing),
            Role::Host,
            vec![1],
        ),
        (
            Body::Keepalive(KeepaliveStatus::AwaitingUser),
            Role::Host,
            vec![2],
        ),
        (
            Body::Keepalive(KeepaliveStatus::PinEntry(progress)),
            Role::Host,
            vec![3, 4, 12],
        ),
        (Body::Error(ErrorCode::Cancelled), Role::Host, vec![0x0A]),
    ];
    for (body, receiver, payload) in cases {
        assert_eq!(body.encode_payload(), payload, "{body:?}");
        assert_eq!(body.payload_len(), payload.len());
        assert_eq!(
            Body::decode(body.command(), &payload, receiver),
            Ok(body.clone())
        );
    }
}

#[test]
fn malformed_payloads_are_rejected_with_specific_errors() {
    let wrong = |command, len| LinkError::InvalidPayloadLength { command, len };
    let cases: Vec<(Command, Vec<u8>, Role, LinkError)> = vec![
        (Command::Msg, vec![], Role::Device, wrong(Command::Msg, 0)),
        (Command::Ack, vec![], Role::Host, wrong(Command::Ack, 0)),
        (Command::Ack, vec![1, 2], Role::Host, wrong(Command::Ack, 2)),
        (
            Command::Nack,
            vec![8, 0],
            Role::Device,
            wrong(Command::Nack, 2),
        ),
        (
            Command::Nack,
            vec![6],
            Role::Device,
            LinkError::InvalidNackReason {
                reason: ErrorCode::ChannelBusy,
            },
        ),
        (
            Command::Nack,
            vec![0x42],
            Role::Device,
            LinkError::UnknownErrorCode { byte: 0x42 },
        ),
        (
            Command::Init,
            vec![0; 7],
            Role::Device,
            wrong(Command::Init, 7),
        ),
        (
            Command::Init,
            vec![0; 8],
            Role::Host,
            wrong(Command::Init, 8),
        ),
        (Command::Wink, vec![0], Role::Host, wrong(Command::Wink, 1)),
        (
            Command::Cancel,
            vec![0],
            Role::Device,
            wrong(Command::Cancel, 1),
        ),
        (
            Command::Keepalive,
            vec![],
            Role::Host,
            wrong(Command::Keepalive, 0),
        ),
        (
            Command::Keepalive,
            vec![1, 0],
            Role::Host,
            wrong(Command::Keepalive, 2),
        ),
        (
            Command::Keepalive,
            vec![3, 1],
            Role::Host,
            wrong(Command::Keepalive, 2),
        ),
        (
            Command::Keepalive,
            vec![4],
            Role::Host,
            LinkError::UnknownKeepaliveStatus { byte: 4 },
        ),
        (
            Command::Keepalive,
            vec![3, 5, 4],
            Role::Host,
            LinkError::InvalidPinProgress { entered: 5, max: 4 },
        ),
        (
            Command::Keepalive,
            vec![3, 0, 13],
            Role::Host,
            LinkError::InvalidPinProgress {
                entered: 0,
                max: 13,
            },
        ),
        (Command::Error, vec![], Role::Host, wrong(Command::Error, 0)),
        (
            Command::Error,
            vec![0],
            Role::Host,
            LinkError::UnknownErrorCode { byte: 0 },
        ),
    ];
    for (command, payload, receiver, expected) in cases {
        assert_eq!(
            Body::decode(command, &payload, receiver),
            Err(expected),
            "{command:?} {payload:?}"
        );
    }
}

#[test]
fn init_response_fields_are_validated() {
    let mut payload = vec![0u8; 16];
    payload[8..12].copy_from_slice(&[0xFF; 4]);
    payload[14..16].copy_from_slice(&64u16.to_be_bytes());
    assert_eq!(
        Body::decode(Command::Init, &payload, Role::Host),
        Err(LinkError::InvalidAssignedChannel {
            channel: ChannelId::BROADCAST
        })
    );
    payload[8..12].copy_from_slice(&[0, 0, 0, 1]);
    payload[14..16].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(
        Body::decode(Command::Init, &payload, Role::Host),
        Err(LinkError::InvalidMtu { mtu: 19 })
    );
    // Undefined capability bits are carried, not refused.
    payload[13] = 0x80;
    payload[14..16].copy_from_slice(&20u16.to_be_bytes());
    let Ok(Body::InitResponse(response)) = Body::decode(Command::Init, &payload, Role::Host) else {
        panic!("valid response");
    };
    assert!(!response.capabilities.contains(Capabilities::WINK));
    assert_eq!(response.capabilities, Capabilities(0x80));
}

#[test]
fn pin_progress_is_a_bounded_count() {
    assert!(PinProgress::new(0, 4).is_ok());
    assert!(PinProgress::new(12, 12).is_ok());
    assert!(PinProgress::new(0, 0).is_err());
    assert!(PinProgress::new(5, 4).is_err());
    assert!(PinProgress::new(0, 13).is_err());
}

#[test]
fn packetizer_refuses_what_cannot_be_sent() {
    let mtu = Mtu::MIN;
    assert_eq!(
        Packetizer::new(&Frame::new(ChannelId::RESERVED, Body::Wink), mtu).err(),
        Some(LinkError::ReservedChannel)
    );
    assert_eq!(
        Packetizer::new(&Frame::new(ChannelId::BROADCAST, Body::Wink), mtu).err(),
        Some(LinkError::BroadcastNotAllowed {
            command: Command::Wink
        })
    );
    let too_big = Frame::new(
        A,
        Body::Msg {
            seq: 0,
            message: vec![0; 1929],
        },
    );
    assert_eq!(
        Packetizer::new(&too_big, mtu).err(),
        Some(LinkError::MessageTooLarge {
            len: 1930,
            max: 1929
        })
    );
    assert_eq!(
        Packetizer::new(
            &Frame::new(
                A,
                Body::Nack {
                    reason: ErrorCode::Other
                }
            ),
            mtu
        )
        .err(),
        Some(LinkError::InvalidNackReason {
            reason: ErrorCode::Other
        })
    );
    let over_cap = Frame::new(A, Body::Ping(vec![0; MAX_PAYLOAD_LEN + 1]));
    assert!(matches!(
        Packetizer::new(&over_cap, Mtu::MAX).err(),
        Some(LinkError::MessageTooLarge {
            len: 4097,
            max: 4096
        })
    ));
}

#[test]
fn packetizer_reports_its_exact_length_and_packet_layout() {
    let mtu = Mtu::MIN;
    let frame = Frame::new(A, Body::Ping((0..40).collect()));
    let mut packetizer = Packetizer::new(&frame, mtu).expect("valid");
    assert_eq!(packetizer.len(), 4); // 44-byte stream: 13 + 15 + 15 + 1
    let init = packetizer.next().expect("init");
    assert_eq!(packetizer.len(), 3);
    assert_eq!(&init[..7], &[1, 2, 3, 4, 0x81, 0, 40]);
    assert_eq!(&init[7..], &(0..13).collect::<Vec<u8>>()[..]);
    let rest: Vec<Vec<u8>> = packetizer.collect();
    assert_eq!(rest.len(), 3);
    for (seq, packet) in rest.iter().enumerate() {
        assert_eq!(packet.len(), 20);
        assert_eq!(&packet[..5], &[1, 2, 3, 4, seq as u8]);
    }
    // Last packet: 1 CRC byte then zeros.
    assert!(rest[2][6..].iter().all(|&b| b == 0));
}
