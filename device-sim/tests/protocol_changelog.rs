//! The device-side entries of PROTOCOL.md §7 (changelog): behaviour the protocol text and
//! the simulator disagreed on, settled in the text and pinned here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::hardware::KeyPress;
use firmware_protocol::crypto::pairing::HostPairing;
use firmware_protocol::message::{
    Cancel, EcPublicKey, GetStatus, Nonce, PairBegin, PairConfirm, Request, Response, Sha256Digest,
    StatusCode,
};
use support::{Rig, response, status_of};

/// §6.2: the pairing prompt has one refusal key. The device cannot tell "the codes differ"
/// from "I do not want to pair", so Cancel on the keypad is `UserCancelled`, like every other
/// prompt (it was `PairingCodeMismatch`).
#[test]
fn keypad_cancel_at_the_pairing_code_is_user_cancelled() {
    let mut rig = Rig::new();
    rig.initialise();
    let host = HostPairing::start(&mut rig.host_rng);
    let begin = PairBegin {
        host_public_key: EcPublicKey::from(host.public_key()),
        host_commitment: Sha256Digest(*host.commitment().as_bytes()),
        host_name: "LAPTOP-ALICE".into(),
    };
    assert!(matches!(
        rig.request(Request::PairBegin(begin)),
        Response::PairChallenge(_)
    ));
    let (id, started) = rig.start(Request::PairConfirm(PairConfirm {
        host_nonce: Nonce(*host.nonce().as_bytes()),
    }));
    assert!(started.is_pending(), "the device waits for the user");

    // The code is on the screen; the user presses Cancel.
    let outcome = rig.keys(&[KeyPress::Cancel]);
    assert!(!outcome.is_pending());
    let (answer_id, answer) = response(outcome.answer().expect("an answer"));
    assert_eq!(answer_id, id);
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    match rig.request(Request::GetStatus(GetStatus)) {
        Response::Status(status) => assert_eq!(status.paired_hosts, 0),
        other => panic!("GetStatus answered {other:?}"),
    }
}

/// §3.4, §3.8: a message-layer Cancel that finds nothing in progress (always the case over
/// the link of §2) is answered CancelResult with `cancelled` false, never Busy.
#[test]
fn cancel_with_nothing_in_progress_is_cancel_result_false() {
    let mut rig = Rig::new();
    match rig.request(Request::Cancel(Cancel {
        target_request_id: 7,
    })) {
        Response::CancelResult(result) => {
            assert_eq!(result.target_request_id, 7);
            assert!(!result.cancelled);
        }
        other => panic!("Cancel answered {other:?}"),
    }
}

/// §3.5: the Error to an undecodable message carries bytes 3..6 as its request id when at
/// least 7 bytes arrived, else 0, in a version 1 header.
#[test]
fn an_undecodable_message_is_answered_with_its_request_id_or_zero() {
    let mut rig = Rig::new();
    let outcome = rig.raw(&[0x02, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78]);
    let bytes = outcome.answer().unwrap().to_vec();
    assert_eq!(bytes[0], 0x01, "version 1 header");
    let (id, answer) = response(&bytes);
    assert_eq!(id, 0x1234_5678);
    assert_eq!(status_of(&answer), StatusCode::UnsupportedVersion);

    let outcome = rig.raw(&[0x01, 0x00, 0x01, 0x12]);
    let (id, answer) = response(outcome.answer().unwrap());
    assert_eq!(id, 0);
    assert_eq!(status_of(&answer), StatusCode::MalformedMessage);
}
