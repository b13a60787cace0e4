//! The device-side entries of PROTOCOL.md §7 (changelog): behaviour the protocol text and
//! the simulator disagreed on, settled in the text and pinned here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::hardware::KeyPress;
use firmware_protocol::crypto::pairing::HostPairing;
use firmware_protocol::message::{
    EcPublicKey, GetStatus, Nonce, PairBegin, PairConfirm, Request, Response, Sha256Digest,
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
        host_public_key: EcPublicKey::new(*host.public_key().as_bytes()).unwrap(),
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
