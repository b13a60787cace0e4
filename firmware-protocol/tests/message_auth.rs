//! MAC and signature inputs (PROTOCOL.md §3.6): the host cannot change a covered field
//! without changing the input, inputs of different payloads never collide, and each input is
//! exactly `tag || 00 || covered body`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure report

mod message_support;

use firmware_protocol::message::auth::domain;
use firmware_protocol::message::*;
use message_support::*;
use proptest::prelude::*;

/// The body bytes of a request (the encoding minus the 7-byte header).
fn body(request: Request) -> Vec<u8> {
    request.encode(0).unwrap()[HEADER_LEN..].to_vec()
}

fn response_body(response: Response) -> Vec<u8> {
    response.encode(0).unwrap()[HEADER_LEN..].to_vec()
}

fn tagged(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out = tag.to_vec();
    out.push(0);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn approve(
    session: SessionId,
    payment: PaymentDetails,
    counter: u64,
    mac: MacTag,
) -> ApprovePayment {
    ApprovePayment {
        session_id: session,
        payment,
        counter,
        bank_mac: mac,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any change a relaying host makes to what the device shows or to the counter changes
    /// both the bank's and the device's MAC input; the bank's own MAC is outside its input.
    #[test]
    fn payment_mac_inputs_cover_every_payment_field(
        session in session_id(),
        original in payment(),
        tampered in payment(),
        counter in any::<u64>(),
        other_counter in any::<u64>(),
        bank_mac in mac(),
        other_mac in mac(),
        pin in pin_block(),
    ) {
        let a = approve(session, original.clone(), counter, bank_mac);
        let b = approve(session, tampered.clone(), other_counter, bank_mac);
        let approved = PaymentApproved { pin_block: pin, device_counter: 1, mac: MacTag([0; 16]) };
        let changed = original != tampered || counter != other_counter;
        prop_assert_eq!(a.mac_input().unwrap() != b.mac_input().unwrap(), changed);
        prop_assert_eq!(approved.mac_input(&a).unwrap() != approved.mac_input(&b).unwrap(), changed);
        // The authenticator itself is not part of the bank's input...
        let a_other_mac = approve(session, original.clone(), counter, other_mac);
        prop_assert_eq!(a.mac_input().unwrap(), a_other_mac.mac_input().unwrap());
        // ...and the input is tag, NUL, body without the trailing 16-byte MAC.
        let full = body(Request::ApprovePayment(a.clone()));
        prop_assert_eq!(a.mac_input().unwrap(), tagged(domain::APPROVE_PAYMENT, &[&full[..full.len() - 16]]));
        // The device MAC covers the whole request (bank MAC included) and its own fields.
        let response = response_body(Response::PaymentApproved(approved));
        prop_assert_eq!(
            approved.mac_input(&a).unwrap(),
            tagged(domain::PAYMENT_APPROVED, &[&full, &response[..response.len() - 16]])
        );
    }

    #[test]
    fn confirmation_signature_covers_the_whole_request(payment in payment(), nonce in nonce(), other in nonce()) {
        let request = SignConfirmation { payment: payment.clone(), nonce };
        prop_assert_eq!(
            request.signed_bytes().unwrap(),
            tagged(domain::CONFIRMATION, &[&body(Request::SignConfirmation(request.clone()))])
        );
        let replayed = SignConfirmation { payment, nonce: other };
        prop_assert_eq!(request.signed_bytes().unwrap() == replayed.signed_bytes().unwrap(), nonce == other);
    }

    #[test]
    fn challenge_mac_binds_both_nonces_and_the_session(
        session in session_id(), bank_nonce in nonce(), device_nonce in nonce(), tag in mac(),
    ) {
        let challenge = BankChallenge { session_id: session, bank_nonce };
        let answer = ChallengeResponse { device_nonce, mac: tag };
        let mut expected_tail = session.0.to_vec();
        expected_tail.extend_from_slice(&bank_nonce.0);
        expected_tail.extend_from_slice(&device_nonce.0);
        prop_assert_eq!(answer.mac_input(&challenge).unwrap(), tagged(domain::CHALLENGE_RESPONSE, &[&expected_tail]));
    }

    #[test]
    fn signed_bank_commands_cover_serial_sequence_and_command(
        serial in text(limits::SERIAL),
        sequence in any::<u64>(),
        command in prop::sample::select(BankCommandKind::ALL),
        reason in text(limits::COMMAND_REASON),
        sig in signature(),
    ) {
        let signed = BankCommand { device_serial: serial.clone(), sequence, command, reason: reason.clone(), signature: sig };
        let full = body(Request::BankCommand(signed.clone()));
        prop_assert_eq!(signed.signed_bytes().unwrap(), tagged(domain::BANK_COMMAND, &[&full[..full.len() - 64]]));
        let next = BankCommand { sequence: sequence.wrapping_add(1), ..signed.clone() };
        prop_assert_ne!(signed.signed_bytes().unwrap(), next.signed_bytes().unwrap());
        // Another device: the first character replaced (never longer, always different).
        let mut chars = serial.chars();
        let first = chars.next().expect("serials are non-empty");
        let other_serial = format!("{}{}", if first == 'X' { 'Y' } else { 'X' }, chars.as_str());
        let other_device = BankCommand { device_serial: other_serial, ..signed.clone() };
        prop_assert_ne!(signed.signed_bytes().unwrap(), other_device.signed_bytes().unwrap());
    }

    #[test]
    fn bank_response_mac_covers_result_counter_and_transaction(
        session in session_id(),
        tx in text(limits::TRANSACTION_ID),
        counter in any::<u64>(),
        result in prop::sample::select(BankResult::ALL),
        other_result in prop::sample::select(BankResult::ALL),
        tag in mac(),
    ) {
        let genuine = VerifyBankResponse { session_id: session, bank_transaction_id: tx.clone(), device_counter: counter, result, bank_mac: tag };
        let flipped = VerifyBankResponse { result: other_result, ..genuine.clone() };
        prop_assert_eq!(genuine.mac_input().unwrap() == flipped.mac_input().unwrap(), result == other_result);
        let full = body(Request::VerifyBankResponse(genuine.clone()));
        prop_assert_eq!(genuine.mac_input().unwrap(), tagged(domain::BANK_RESPONSE, &[&full[..full.len() - 16]]));
    }
}

#[test]
fn domain_tags_are_distinct_ascii_and_prefix_free() {
    for (i, a) in domain::ALL.iter().enumerate() {
        assert!(a.iter().all(|b| b.is_ascii_graphic()), "{a:?}");
        // Message-layer tags are PinBridge/1/...; the host MAC tag is crypto::host_auth's.
        assert!(a.starts_with(b"PinBridge/"));
        for b in &domain::ALL[i + 1..] {
            let (mut a0, mut b0) = (a.to_vec(), b.to_vec());
            a0.push(0);
            b0.push(0);
            assert!(
                !a0.starts_with(&b0) && !b0.starts_with(&a0),
                "{a:?} / {b:?}"
            );
        }
    }
    assert_eq!(domain::ALL.len(), 15);
}

/// The same body bytes under two different purposes never give the same input: an operator
/// reset token cannot pass as a bank command and so on.
#[test]
fn same_fields_under_different_purposes_give_different_inputs() {
    let sig = EcdsaSignature::from_array([0; 64]);
    let reset = OperatorReset {
        device_serial: "PB1".into(),
        sequence: 9,
        operator_id: "op".into(),
        signature: sig,
    };
    let command = BankCommand {
        device_serial: "PB1".into(),
        sequence: 9,
        command: BankCommandKind::Unlock,
        reason: String::new(),
        signature: sig,
    };
    let reset_input = reset.signed_bytes().unwrap();
    let command_input = command.signed_bytes().unwrap();
    assert_ne!(reset_input, command_input);
    assert!(reset_input.starts_with(b"PinBridge/1/operator-reset\0"));
    assert!(command_input.starts_with(b"PinBridge/1/bank-command\0"));
}

#[test]
fn integrity_signature_covers_the_bank_nonce() {
    let report = IntegrityReport {
        device_serial: "PB1".into(),
        firmware_version: "1.0".into(),
        firmware_hash: Sha256Digest([7; 32]),
        signature: EcdsaSignature::from_array([0; 64]),
    };
    let a = report
        .signed_bytes(&GetIntegrityReport {
            nonce: Nonce([1; 16]),
        })
        .unwrap();
    let b = report
        .signed_bytes(&GetIntegrityReport {
            nonce: Nonce([2; 16]),
        })
        .unwrap();
    assert_ne!(a, b);
    let mut expected = b"PinBridge/1/integrity-report\0".to_vec();
    expected.extend_from_slice(&[1; 16]);
    expected.extend_from_slice(&[0, 3, b'P', b'B', b'1', 0, 3, b'1', b'.', b'0']);
    expected.extend_from_slice(&[7; 32]);
    assert_eq!(a, expected);
}
