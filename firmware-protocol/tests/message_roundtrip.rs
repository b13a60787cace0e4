//! Property tests: every message type round-trips, the encoding is canonical, and the
//! encoder refuses what the decoder would refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure report

mod message_support;

use firmware_protocol::crypto::host_auth::{HostMacKey, HostSigner, host_request_mac};
use firmware_protocol::crypto::pairing::{HostId as CryptoHostId, HostPairingKey};
use firmware_protocol::message::*;
use message_support::{message, request, response};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_round_trips(request_id in any::<u32>(), value in request()) {
        let bytes = value.encode(request_id).expect("generated values are in range");
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(bytes[0], PROTOCOL_VERSION);
        prop_assert_eq!(u16::from_be_bytes([bytes[1], bytes[2]]), value.message_type());
        prop_assert_eq!(u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]), request_id);
        prop_assert_eq!(decode_request(&bytes), Ok((request_id, value)));
    }

    #[test]
    fn every_response_round_trips(request_id in any::<u32>(), value in response()) {
        let bytes = value.encode(request_id).expect("generated values are in range");
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(decode_response(&bytes), Ok((request_id, value)));
    }

    #[test]
    fn message_wrapper_round_trips(value in message()) {
        let bytes = value.encode().expect("in range");
        prop_assert_eq!(Message::decode(&bytes), Ok(value));
    }

    /// A request is never mistaken for a response or the other way round.
    #[test]
    fn direction_is_checked(request_id in any::<u32>(), req in request(), resp in response()) {
        let req_bytes = req.encode(request_id).expect("in range");
        let resp_bytes = resp.encode(request_id).expect("in range");
        prop_assert_eq!(
            decode_response(&req_bytes),
            Err(MessageError::ExpectedResponse { message_type: req.message_type() })
        );
        prop_assert_eq!(
            decode_request(&resp_bytes),
            Err(MessageError::ExpectedRequest { message_type: resp.message_type() })
        );
    }

    /// A host-verified envelope built by `sign` carries the signer's counter and its MAC over
    /// exactly tag, NUL, host id, counter, inner length, inner; and opens to the same request.
    #[test]
    fn signed_envelopes_open_to_their_request(
        request_id in any::<u32>(),
        host in message_support::host_id(),
        counter in 1..u64::MAX,
        key_bytes in any::<[u8; 32]>(),
        inner in request().prop_filter("fits in an envelope, not nested", |r| {
            !matches!(r, Request::HostVerified(_))
                && r.encode(0).map(|b| b.len() <= limits::ENVELOPE_INNER.max).unwrap_or(false)
        }),
    ) {
        let pairing_key = HostPairingKey::from_bytes(&key_bytes).expect("32 bytes");
        let crypto_host = host;
        let mut signer = HostSigner::resume(crypto_host, &pairing_key, counter);
        let envelope = HostVerified::sign(request_id, &inner, &mut signer).expect("fits");
        prop_assert_eq!(envelope.host_id, host);
        prop_assert_eq!(envelope.counter, counter);
        prop_assert_eq!(signer.next_counter(), Some(counter + 1));
        let mut expected = b"PinBridge/v1/host-auth/request\0".to_vec();
        expected.extend_from_slice(host.as_bytes());
        expected.extend_from_slice(&counter.to_be_bytes());
        expected.extend_from_slice(&(envelope.inner.len() as u64).to_be_bytes());
        expected.extend_from_slice(&envelope.inner);
        prop_assert_eq!(envelope.mac_input(), Ok(expected));
        let mac = host_request_mac(&HostMacKey::derive(&pairing_key), &crypto_host, counter, &envelope.inner);
        prop_assert_eq!(envelope.mac, MacTag(mac));
        prop_assert_eq!(envelope.open(request_id), Ok(inner.clone()));
        let wrapped = Request::HostVerified(envelope).encode(request_id).expect("fits");
        let (_, decoded) = decode_request(&wrapped).expect("decodes");
        prop_assert_eq!(
            match decoded { Request::HostVerified(e) => e.open(request_id), _ => Err(MessageError::NestedEnvelope) },
            Ok(inner)
        );
    }
}

fn test_signer(next_counter: u64) -> HostSigner {
    let pairing_key = HostPairingKey::from_bytes(&[7; 32]).unwrap();
    HostSigner::resume(CryptoHostId::from_array([1; 8]), &pairing_key, next_counter)
}

#[test]
fn envelope_open_refuses_mismatched_ids_nesting_and_responses() {
    let inner = Request::GetStatus(GetStatus);
    let mut signer = test_signer(9);
    let envelope = HostVerified::sign(5, &inner, &mut signer).unwrap();
    assert_eq!(
        envelope.open(6),
        Err(MessageError::EnvelopeRequestIdMismatch { outer: 6, inner: 5 })
    );
    assert_eq!(
        HostVerified::sign(5, &Request::HostVerified(envelope.clone()), &mut signer),
        Err(MessageError::NestedEnvelope)
    );
    assert_eq!(
        HostVerified::sign(5, &inner, &mut test_signer(u64::MAX)).map(|e| e.counter),
        Ok(u64::MAX),
        "the last counter is still usable"
    );
    let mut spent = test_signer(u64::MAX);
    HostVerified::sign(5, &inner, &mut spent).unwrap();
    assert_eq!(
        HostVerified::sign(5, &inner, &mut spent),
        Err(MessageError::HostCounterExhausted)
    );
    let nested = HostVerified {
        inner: Request::HostVerified(envelope.clone()).encode(5).unwrap(),
        ..envelope.clone()
    };
    assert_eq!(nested.open(5), Err(MessageError::NestedEnvelope));
    let response_inside = HostVerified {
        inner: Response::KeysLoaded(KeysLoaded {
            session_id: SessionId([0; 16]),
        })
        .encode(5)
        .unwrap(),
        ..envelope
    };
    assert_eq!(
        response_inside.open(5),
        Err(MessageError::ExpectedRequest {
            message_type: message_type::KEYS_LOADED
        })
    );
}

#[test]
fn host_verification_is_required_exactly_for_session_payment_and_unpair() {
    let required = [
        message_type::UNPAIR,
        message_type::LOAD_SESSION_KEYS,
        message_type::BANK_CHALLENGE,
        message_type::APPROVE_PAYMENT,
        message_type::VERIFY_BANK_RESPONSE,
        message_type::SIGN_CONFIRMATION,
        message_type::CHANGE_PIN,
        message_type::VERIFY_PIN_CHANGE,
    ];
    // WipeDevice is not among them: the owner's keypad confirmation is the consent (§3.7).
    assert!(!requires_host_verification(message_type::WIPE_DEVICE));
    for code in 0..=message_type::VENDOR_REQUEST_LAST {
        assert_eq!(
            requires_host_verification(code),
            required.contains(&code),
            "0x{code:04x}"
        );
    }
    assert!(
        Request::BankChallenge(BankChallenge {
            session_id: SessionId([0; 16]),
            bank_nonce: Nonce([0; 16])
        })
        .requires_host_verification()
    );
    assert!(!Request::GetInfo(GetInfo).requires_host_verification());
}

#[test]
fn encoder_refuses_out_of_range_values() {
    let too_long_name = Request::PairBegin(PairBegin {
        host_public_key: EcPublicKey::new([4; 65]).unwrap(),
        host_commitment: Sha256Digest([0; 32]),
        host_name: "x".repeat(33),
    });
    assert_eq!(
        too_long_name.encode(1),
        Err(MessageError::LengthOutOfRange {
            field: "PairBegin.host_name",
            len: 33,
            min: 0,
            max: 32
        })
    );
    let ok_status = Response::Error(ErrorResponse {
        status: StatusCode::Ok,
        indicator: Indicator::Off,
        detail: String::new(),
    });
    assert!(matches!(
        ok_status.encode(1),
        Err(MessageError::InvalidValue {
            field: "Error.status",
            ..
        })
    ));
    let wrong_range = Request::Vendor(Vendor {
        message_type: 0xF000,
        body: vec![],
    });
    assert!(matches!(
        wrong_range.encode(1),
        Err(MessageError::InvalidValue {
            field: "Vendor.message_type",
            ..
        })
    ));
    let spoofing = Response::IndicatorSet(IndicatorSet {
        indicator: Indicator::Safe,
        result: BankResult::Approved,
        display_text: "Approved\u{202E}".into(),
    });
    assert!(matches!(
        spoofing.encode(1),
        Err(MessageError::InvalidValue {
            field: "IndicatorSet.display_text",
            ..
        })
    ));
    let oversized = Request::Vendor(Vendor {
        message_type: 0x7000,
        body: vec![0; 4089],
    });
    assert_eq!(
        oversized.encode(1),
        Err(MessageError::LengthOutOfRange {
            field: "Vendor.body",
            len: 4089,
            min: 0,
            max: 4088
        })
    );
    let bad_pan = Request::Enrol(Enrol {
        device_serial: "PB1".into(),
        sequence: 1,
        customer_id: "C".into(),
        pin_account_number: "12345678901A".into(),
        pin_length_min: 4,
        pin_length_max: 6,
        pin_key: WrappedKey {
            key_block: KeyBlock::new("D0000P0AE00E0000").unwrap(),
            kcv: Kcv::new(&[1, 2, 3]).unwrap(),
        },
        signature: EcdsaSignature::from_array([0; 64]),
    });
    assert!(matches!(
        bad_pan.encode(1),
        Err(MessageError::InvalidValue {
            field: "Enrol.pin_account_number",
            ..
        })
    ));
}

#[test]
fn validated_field_types_refuse_bad_values() {
    let mut compressed = [0u8; 65];
    compressed[0] = 0x02;
    assert!(EcPublicKey::new(compressed).is_err());
    assert!(CurrencyCode::new("eur").is_err());
    assert!(CurrencyCode::new("EURO").is_err());
    assert_eq!(CurrencyCode::new("EUR").unwrap().as_str(), "EUR");
    assert!(Kcv::new(&[1, 2]).is_err());
    assert!(Kcv::new(&[0; 17]).is_err());
    assert!(KeyBlock::new("short").is_err());
    assert!(KeyBlock::new("D0112P0AE00E0000\u{7f}").is_err());
    assert!(PinBlock::new(PinBlockFormat::Iso4, &[0; 8]).is_err());
    let iso0 = PinBlock::new(PinBlockFormat::Iso0, &[7; 8]).unwrap();
    assert_eq!(iso0.enciphered(), &[7; 8]);
    assert_eq!(&iso0.wire_block()[8..], &[0; 8]);
}
