//! The rules of CN101093566A on the device (PROTOCOL.md §6.11), driven through the protocol:
//! the activation record compared before every payment, the identity lock and the deletion
//! of payment data after T, the T1 power-off lock, bank-verified unlock, and the bank's
//! order to forget every paired computer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::device::Manufacture;
use device_sim::hardware::EventKind;
use firmware_protocol::message::Nonce;
use firmware_protocol::message::{
    BankCommandKind, GetStatus, Lifecycle, LockState, Request, Response, SignConfirmation, Status,
    StatusCode,
};
use support::{PIN, Rig, SERIAL, status_of};

fn status(rig: &mut Rig) -> Status {
    match rig.request(Request::GetStatus(GetStatus)) {
        Response::Status(status) => status,
        other => panic!("GetStatus answered {other:?}"),
    }
}

/// Initialised, enrolled, paired and logged in, manufactured with `adjust`.
fn ready_with(adjust: impl FnOnce(&mut Manufacture)) -> Rig {
    let mut rig = Rig::with_settings(adjust);
    assert!(matches!(rig.initialise(), Response::Initialised(_)));
    assert!(matches!(rig.enrol(PIN), Response::Enrolled(_)));
    assert!(matches!(rig.pair(), Response::PairResult(_)));
    rig.login();
    rig
}

fn unlock(rig: &mut Rig) -> Status {
    let unlock = rig
        .bank
        .command(SERIAL, BankCommandKind::Unlock, "Verified");
    match rig.request(Request::BankCommand(unlock)) {
        Response::Status(status) => status,
        other => panic!("Unlock answered {other:?}"),
    }
}

#[test]
fn a_store_on_another_board_locks_payments_until_the_bank_unlocks_the_genuine_board() {
    let mut rig = Rig::ready();
    rig.approved("TX-1");
    // The secure store's contents now run on another board (a clone, or a moved chip).
    rig.hw.set_board_id(b"another board".to_vec());
    let payment = rig.bank.payment(100, "TX-2");
    assert_eq!(
        status_of(&rig.request_hv(Request::ApprovePayment(payment))),
        StatusCode::IdentityMismatch
    );
    let locked = status(&mut rig);
    assert_eq!(locked.lock, LockState::LockedIdentity);
    assert!(!locked.session_active, "the session keys are dropped");
    assert!(rig.hw.events().iter().any(|e| e.kind
        == EventKind::Intrusion {
            what: "IdentityMismatch".into()
        }));
    assert!(rig.hw.display().iter().any(|l| l.contains("identity")));
    // Locked: no session can be loaded and no confirmation signed, even on the right board.
    let (keys, _) = rig.bank.session_keys();
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(keys))),
        StatusCode::IdentityMismatch
    );
    // Survives a restart.
    rig.restart();
    assert_eq!(status(&mut rig).lock, LockState::LockedIdentity);

    // The bank unlocks; on the clone the next payment locks again at once.
    assert_eq!(unlock(&mut rig).lock, LockState::Unlocked);
    rig.login();
    let confirmation = SignConfirmation {
        payment: rig.bank.payment_details(100, "TX-3"),
        nonce: Nonce([7; 16]),
    };
    assert_eq!(
        status_of(&rig.request_hv(Request::SignConfirmation(confirmation))),
        StatusCode::IdentityMismatch
    );
    assert_eq!(status(&mut rig).lock, LockState::LockedIdentity);

    // Back on its own board and unlocked by the bank, the device pays again.
    rig.hw
        .set_board_id(device_sim::hardware::DEFAULT_BOARD_ID.to_vec());
    assert_eq!(unlock(&mut rig).lock, LockState::Unlocked);
    rig.login();
    rig.approved("TX-4");
}

#[test]
fn an_identity_lock_held_longer_than_t_deletes_the_payment_data() {
    let mut rig = ready_with(|settings| settings.identity_wipe_seconds = 600);
    rig.hw.set_board_id(b"another board".to_vec());
    let payment = rig.bank.payment(100, "TX-1");
    assert_eq!(
        status_of(&rig.request_hv(Request::ApprovePayment(payment))),
        StatusCode::IdentityMismatch
    );
    rig.hw.advance_clock(600_000);
    let held = status(&mut rig);
    assert_eq!(
        (held.lifecycle, held.lock),
        (Lifecycle::Bound, LockState::LockedIdentity)
    );
    rig.hw.advance_clock(1);
    let _ = rig.device.poll(&mut rig.hw);
    let deleted = status(&mut rig);
    assert_eq!(deleted.lifecycle, Lifecycle::Revoked);
    assert_eq!((deleted.paired_hosts, deleted.session_active), (0, false));
    assert!(rig.hw.display().iter().any(|l| l == "Payment data deleted"));
    // Gone from the secure store too: a restart does not bring the binding back.
    rig.restart();
    assert_eq!(status(&mut rig).lifecycle, Lifecycle::Revoked);
    // Only an operator reset (then initialise and enrol again) revives it.
    let reset = rig.bank.operator_reset(SERIAL);
    assert!(matches!(
        rig.request(Request::OperatorReset(reset)),
        Response::Status(s) if s.lifecycle == Lifecycle::Manufactured
    ));
}

#[test]
fn a_device_off_for_longer_than_t1_locks_at_power_on_and_only_a_bank_unlock_lifts_it() {
    let mut rig = ready_with(|settings| settings.power_off_lock_seconds = 3600);
    // Running for two hours (the alive record follows), then off for exactly T1: no lock.
    for _ in 0..4 {
        rig.hw.advance_clock(1_800_000);
        let _ = rig.device.poll(&mut rig.hw);
    }
    rig.hw.advance_clock(3_600_000);
    rig.restart();
    assert_eq!(status(&mut rig).lock, LockState::Unlocked);
    // Off for longer than T1: locked at power-on.
    rig.hw.advance_clock(3_600_001);
    rig.restart();
    let locked = status(&mut rig);
    assert_eq!(locked.lock, LockState::LockedPowerOff);
    assert_eq!(locked.locks_in_seconds, None);
    let (keys, _) = rig.bank.session_keys();
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(keys))),
        StatusCode::Locked
    );
    // Not lifted by a restart, only by the bank.
    rig.restart();
    assert_eq!(status(&mut rig).lock, LockState::LockedPowerOff);
    assert_eq!(unlock(&mut rig).lock, LockState::Unlocked);
    rig.login();
    rig.approved("TX-1");
}

#[test]
fn t1_does_not_lock_a_device_that_was_never_issued() {
    let mut rig = Rig::with_settings(|settings| settings.power_off_lock_seconds = 60);
    rig.hw.advance_clock(3_600_000);
    rig.restart();
    assert_eq!(status(&mut rig).lock, LockState::Unlocked);
}

#[test]
fn the_bank_can_make_the_device_forget_every_paired_computer() {
    let mut rig = Rig::ready();
    let forget = rig
        .bank
        .command(SERIAL, BankCommandKind::ForgetHosts, "Computer stolen");
    let after = match rig.request(Request::BankCommand(forget)) {
        Response::Status(status) => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(after.paired_hosts, 0);
    assert!(!after.session_active);
    assert_eq!(
        (after.lifecycle, after.lock),
        (Lifecycle::Bound, LockState::Unlocked)
    );
    // The lost computer's envelopes are refused; a computer paired again works.
    let (keys, _) = rig.bank.session_keys();
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(keys))),
        StatusCode::UnknownHost
    );
    assert!(matches!(rig.pair(), Response::PairResult(_)));
    rig.login();
    rig.approved("TX-1");
}

#[test]
fn a_bank_end_session_drops_the_session_keys_and_nothing_else() {
    let mut rig = Rig::ready();
    let end = rig.bank.command(SERIAL, BankCommandKind::EndSession, "");
    let after = match rig.request(Request::BankCommand(end)) {
        Response::Status(status) => status,
        other => panic!("{other:?}"),
    };
    assert!(!after.session_active);
    assert_eq!(
        (after.lifecycle, after.lock, after.paired_hosts),
        (Lifecycle::Bound, LockState::Unlocked, 1)
    );
    let challenge = rig.bank.challenge();
    assert_eq!(
        status_of(&rig.request_hv(Request::BankChallenge(challenge))),
        StatusCode::NoSession
    );
    rig.login();
    rig.approved("TX-1");
}
