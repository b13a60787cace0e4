//! Hostile input: truncation at every position, trailing bytes, corrupted bytes, arbitrary
//! bytes. The decoder must answer each with a specific typed error and never panic, and any
//! input it accepts must re-encode to itself (the encoding is canonical).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure report

mod message_support;

use firmware_protocol::message::*;
use message_support::{message, request};
use proptest::prelude::*;

fn is_vendor(message: &Message) -> bool {
    matches!(
        message.body,
        Body::Request(Request::Vendor(_)) | Body::Response(Response::Vendor(_))
    )
}

/// Every input `decode` accepts must be the canonical encoding of what it decoded to.
fn assert_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = decode(bytes) {
        prop_assert_eq!(message.encode(), Ok(bytes.to_vec()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Cutting a message anywhere before its end is `Truncated` (vendor bodies excepted:
    /// their body is "the rest", so a shorter one is still a message).
    #[test]
    fn every_strict_prefix_is_truncated(value in message().prop_filter("not vendor", |m| !is_vendor(m))) {
        let bytes = value.encode().expect("in range");
        for cut in 0..bytes.len() {
            let result = decode(&bytes[..cut]);
            prop_assert!(
                matches!(result, Err(MessageError::Truncated { .. })),
                "cut at {} of {}: {:?}", cut, bytes.len(), result
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused(value in message().prop_filter("not vendor", |m| !is_vendor(m)), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = value.encode().expect("in range");
        if bytes.len() + extra.len() <= MAX_MESSAGE_LEN {
            bytes.extend_from_slice(&extra);
            prop_assert_eq!(
                decode(&bytes),
                Err(MessageError::TrailingBytes { message_type: value.body.message_type(), count: extra.len() })
            );
        }
    }

    /// Flipping any one byte of a valid message gives an error or another canonical message.
    #[test]
    fn single_byte_corruption_never_panics(value in message(), position in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let mut bytes = value.encode().expect("in range");
        let at = position.index(bytes.len());
        bytes[at] ^= xor;
        assert_canonical(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        assert_canonical(&bytes)?;
        let envelope = HostVerified { host_id: HostId::from_array([0; 8]), counter: 0, inner: bytes, mac: MacTag([0; 16]) };
        let _ = envelope.open(0);
    }

    /// Random bodies behind a valid header reach deep into every body decoder.
    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        message_type in prop::sample::select(KNOWN_TYPES),
        request_id in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = vec![PROTOCOL_VERSION];
        bytes.extend_from_slice(&message_type.to_be_bytes());
        bytes.extend_from_slice(&request_id.to_be_bytes());
        bytes.extend_from_slice(&body);
        assert_canonical(&bytes)?;
    }

    #[test]
    fn other_versions_are_refused_first(value in request(), version in any::<u8>().prop_filter("not 1", |v| *v != 1)) {
        let mut bytes = value.encode(3).expect("in range");
        bytes[0] = version;
        prop_assert_eq!(decode(&bytes), Err(MessageError::UnsupportedVersion { version }));
    }
}

const KNOWN_TYPES: &[u16] = &[
    message_type::GET_INFO,
    message_type::GET_STATUS,
    message_type::PING,
    message_type::CANCEL,
    message_type::PAIR_BEGIN,
    message_type::PAIR_CONFIRM,
    message_type::UNPAIR,
    message_type::HOST_VERIFIED,
    message_type::INITIALISE,
    message_type::ENROL,
    message_type::OPERATOR_RESET,
    message_type::BANK_COMMAND,
    message_type::GET_INTEGRITY_REPORT,
    message_type::LOAD_SESSION_KEYS,
    message_type::BANK_CHALLENGE,
    message_type::APPROVE_PAYMENT,
    message_type::VERIFY_BANK_RESPONSE,
    message_type::SIGN_CONFIRMATION,
    message_type::WIPE_DEVICE,
    message_type::CHANGE_PIN,
    message_type::VERIFY_PIN_CHANGE,
    message_type::ERROR,
    message_type::INFO,
    message_type::STATUS,
    message_type::PONG,
    message_type::CANCEL_RESULT,
    message_type::PAIR_CHALLENGE,
    message_type::PAIR_RESULT,
    message_type::INITIALISED,
    message_type::ENROLLED,
    message_type::INTEGRITY_REPORT,
    message_type::KEYS_LOADED,
    message_type::CHALLENGE_RESPONSE,
    message_type::PAYMENT_APPROVED,
    message_type::INDICATOR_SET,
    message_type::CONFIRMATION_SIGNATURE,
    message_type::DEVICE_WIPED,
    message_type::PIN_CHANGE_ENTERED,
];

fn header(message_type: u16) -> Vec<u8> {
    let mut bytes = vec![PROTOCOL_VERSION];
    bytes.extend_from_slice(&message_type.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 1]);
    bytes
}

#[test]
fn every_undefined_type_outside_the_vendor_ranges_is_unknown() {
    for code in 0..=u16::MAX {
        let result = decode(&header(code));
        let vendor = (0x7000..=0x7FFF).contains(&code) || code >= 0xF000;
        if vendor {
            assert!(result.is_ok(), "vendor 0x{code:04x}: {result:?}");
        } else if !KNOWN_TYPES.contains(&code) {
            assert_eq!(
                result,
                Err(MessageError::UnknownMessageType { message_type: code })
            );
        }
    }
}

#[test]
fn vendor_messages_take_the_rest_of_the_input() {
    let mut bytes = header(0x7ABC);
    bytes.extend_from_slice(b"anything");
    assert_eq!(
        decode_request(&bytes),
        Ok((
            1,
            Request::Vendor(Vendor {
                message_type: 0x7ABC,
                body: b"anything".to_vec()
            })
        ))
    );
    let mut bytes = header(0xF001);
    bytes.push(9);
    assert_eq!(
        decode_response(&bytes),
        Ok((
            1,
            Response::Vendor(Vendor {
                message_type: 0xF001,
                body: vec![9]
            })
        ))
    );
}

#[test]
fn over_long_input_is_refused_before_parsing() {
    let mut bytes = header(message_type::PING);
    bytes.resize(MAX_MESSAGE_LEN + 1, 0);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::MessageTooLong {
            len: 4096,
            max: 4095
        })
    );
}

#[test]
fn empty_input_is_truncated_at_the_version() {
    assert_eq!(
        decode(&[]),
        Err(MessageError::Truncated {
            field: "header.version",
            needed: 1,
            remaining: 0
        })
    );
}

#[test]
fn length_prefix_over_the_field_maximum_names_the_field() {
    let mut bytes = header(message_type::PING);
    bytes.extend_from_slice(&[0x04, 0x01]); // 1025 > 1024
    assert_eq!(
        decode(&bytes),
        Err(MessageError::LengthOutOfRange {
            field: "Ping.payload",
            len: 1025,
            min: 0,
            max: 1024
        })
    );
    // A 0xFFFF length with almost no input: refused by the limit, nothing allocated.
    let mut bytes = header(message_type::ERROR);
    bytes.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::LengthOutOfRange {
            field: "Error.detail",
            len: 0xFFFF,
            min: 0,
            max: 128
        })
    );
    // Under a minimum: an empty serial.
    let mut bytes = header(message_type::OPERATOR_RESET);
    bytes.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::LengthOutOfRange {
            field: "OperatorReset.device_serial",
            len: 0,
            min: 1,
            max: 32
        })
    );
}

#[test]
fn bad_enum_flag_and_text_values_name_their_field() {
    // Status: lifecycle 9.
    let mut bytes = header(message_type::STATUS);
    bytes.push(9);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::InvalidEnumValue {
            field: "Status.lifecycle",
            value: 9
        })
    );
    // Status: tampered flag 2.
    let mut bytes = header(message_type::STATUS);
    bytes.extend_from_slice(&[0, 2]);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::InvalidEnumValue {
            field: "Status.tampered",
            value: 2
        })
    );
    // Error: undefined status code 0x0099, and the forbidden Ok.
    let mut bytes = header(message_type::ERROR);
    bytes.extend_from_slice(&[0x00, 0x99]);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::InvalidEnumValue {
            field: "Error.status",
            value: 0x99
        })
    );
    let mut bytes = header(message_type::ERROR);
    bytes.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00]);
    assert!(matches!(
        decode(&bytes),
        Err(MessageError::InvalidValue {
            field: "Error.status",
            ..
        })
    ));
    // Error detail: invalid UTF-8, then a bidi override.
    let mut bytes = header(message_type::ERROR);
    bytes.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x02, 0xC3, 0x28]);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::InvalidUtf8 {
            field: "Error.detail"
        })
    );
    let mut bytes = header(message_type::ERROR);
    bytes.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x03, 0xE2, 0x80, 0xAE]);
    assert!(matches!(
        decode(&bytes),
        Err(MessageError::InvalidValue {
            field: "Error.detail",
            ..
        })
    ));
    // PairChallenge: compressed-point prefix.
    let mut bytes = header(message_type::PAIR_CHALLENGE);
    bytes.push(0x02);
    bytes.extend_from_slice(&[0; 64 + 16]);
    assert!(matches!(
        decode(&bytes),
        Err(MessageError::InvalidValue {
            field: "PairChallenge.device_public_key",
            ..
        })
    ));
    // Enrolled: a format 0 PIN block with non-zero padding.
    let mut bytes = header(message_type::ENROLLED);
    bytes.push(0);
    bytes.extend_from_slice(&[0xAA; 16]);
    assert!(matches!(
        decode(&bytes),
        Err(MessageError::InvalidValue {
            field: "Enrolled.pin_block",
            ..
        })
    ));
    // Enrolled: PIN block format 1 is not defined.
    let mut bytes = header(message_type::ENROLLED);
    bytes.push(1);
    bytes.extend_from_slice(&[0; 16]);
    assert_eq!(
        decode(&bytes),
        Err(MessageError::InvalidEnumValue {
            field: "Enrolled.pin_block_format",
            value: 1
        })
    );
}

#[test]
fn decode_errors_map_to_the_status_a_device_answers() {
    assert_eq!(
        MessageError::UnsupportedVersion { version: 2 }.status_code(),
        StatusCode::UnsupportedVersion
    );
    assert_eq!(
        MessageError::UnknownMessageType {
            message_type: 0x0999
        }
        .status_code(),
        StatusCode::UnknownMessage
    );
    assert_eq!(
        MessageError::Truncated {
            field: "x",
            needed: 1,
            remaining: 0
        }
        .status_code(),
        StatusCode::MalformedMessage
    );
    assert_eq!(
        MessageError::NestedEnvelope.status_code(),
        StatusCode::BadEnvelope
    );
}
