//! The keypad and the screen as a real PIN pad has them (issue 17 item 1): a key counts only
//! for a prompt that was on the screen when it was pressed, keys pressed with no prompt up are
//! discarded, every outcome writes its own screen, and the idle screen is neutral.
//! (Kept apart from device_rules.rs, which is past the size a file should have.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::device::{OUTCOME_SCREEN_MS, Outcome, Progress};
use device_sim::hardware::{EventKind, KeyPress};
use device_sim::sim::{SimCore, SimHandle};
use firmware_protocol::crypto::pairing::HostPairing;
use firmware_protocol::link::Mtu;
use firmware_protocol::message::{
    BankResult, Cancel, EcPublicKey, Nonce, PairBegin, PairConfirm, Request, Response,
    Sha256Digest, SignConfirmation, StatusCode,
};
use support::{PIN, Rig, SERIAL, response, status_of};

fn pin_keys(pin: &str) -> Vec<KeyPress> {
    let mut keys = KeyPress::digits(pin).unwrap();
    keys.push(KeyPress::Enter);
    keys
}

fn shown(rig: &Rig) -> String {
    rig.hw.display().join("\n")
}

fn idle_screen() -> Vec<String> {
    vec![format!("PinBridge {SERIAL}"), "Ready".to_string()]
}

// ---- keys with no prompt up -----------------------------------------------------------------

#[test]
fn keys_pressed_while_idle_are_discarded_and_the_next_payment_waits_for_its_pin() {
    let mut rig = Rig::ready();
    // The customer types a PIN and OK on the idle pad; the device polls and sees no prompt.
    let outcome = rig.keys(&pin_keys(PIN));
    assert!(outcome.answers.is_empty());
    assert_eq!(rig.hw.queued_keys(), 0, "idle keys are not kept");
    assert!(
        rig.hw.events().iter().any(|e| e.kind
            == EventKind::KeysDiscarded {
                count: PIN.len() + 1
            }),
        "the discard is logged"
    );

    let payment = rig.bank.payment(100, "TX-1");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    let outcome = rig.device.poll(&mut rig.hw);
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 0, max: 6 }),
        "the payment waits for a PIN typed at its own prompt"
    );
    assert!(outcome.answers.is_empty());
    // Typed now, with the payment on the screen, the PIN counts.
    let (_, answer) = response(rig.type_pin(PIN).answer().unwrap());
    assert!(matches!(answer, Response::PaymentApproved(_)), "{answer:?}");
}

#[test]
fn keys_pressed_before_the_prompt_was_displayed_are_never_taken_for_it() {
    let mut rig = Rig::ready();
    // Pressed, but the device has not polled yet when the payment arrives: the keys predate
    // the payment's screen.
    rig.hw.press(pin_keys(PIN));
    let payment = rig.bank.payment(100, "TX-1");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    assert!(shown(&rig).contains("EUR 1.00"), "{}", shown(&rig));
    let outcome = rig.device.poll(&mut rig.hw);
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 0, max: 6 })
    );
    assert_eq!(rig.hw.queued_keys(), 0);
}

/// PairBegin and PairConfirm from a new host named `name`; the confirm's outcome.
fn begin_pairing(rig: &mut Rig, name: &str) -> Outcome {
    let host = HostPairing::start(&mut rig.host_rng);
    let begin = PairBegin {
        host_public_key: EcPublicKey::from(host.public_key()),
        host_commitment: Sha256Digest(*host.commitment().as_bytes()),
        host_name: name.into(),
    };
    assert!(matches!(
        rig.request(Request::PairBegin(begin)),
        Response::PairChallenge(_)
    ));
    let (_, outcome) = rig.start(Request::PairConfirm(PairConfirm {
        host_nonce: Nonce(*host.nonce().as_bytes()),
    }));
    outcome
}

#[test]
fn a_pairing_is_not_confirmed_by_an_ok_pressed_before_its_code_was_shown() {
    let mut rig = Rig::new();
    rig.initialise();
    rig.enrol(PIN);
    // OK pressed ahead of the comparison code, not yet read when the pairing starts.
    rig.hw.press([KeyPress::Enter]);
    assert!(begin_pairing(&mut rig, "LAPTOP-ALICE").is_pending());
    let outcome = rig.device.poll(&mut rig.hw);
    assert_eq!(outcome.progress, Some(Progress::AwaitingUser));
    assert!(outcome.answers.is_empty(), "the early OK confirmed nothing");
}

#[test]
fn the_second_pin_entry_of_an_enrolment_does_not_take_keys_typed_ahead() {
    let mut rig = Rig::new();
    rig.initialise();
    let request = rig.bank.enrol(SERIAL);
    let (_, outcome) = rig.start(Request::Enrol(request));
    assert!(outcome.is_pending());
    let first_prompt = rig.device.snapshot().prompt_id;
    // The PIN, OK, and the PIN again with OK all at once: the second half was pressed before
    // "Enter the same PIN again" was on the screen.
    let mut keys = pin_keys(PIN);
    keys.extend(pin_keys(PIN));
    let outcome = rig.keys(&keys);
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 0, max: 6 })
    );
    assert!(shown(&rig).contains("Enter the same PIN again"));
    assert_ne!(
        rig.device.snapshot().prompt_id,
        first_prompt,
        "a new prompt"
    );
    let (_, answer) = response(rig.type_pin(PIN).answer().unwrap());
    assert!(matches!(answer, Response::Enrolled(_)), "{answer:?}");
}

#[test]
fn keys_survive_no_disconnect_tamper_or_reset_because_idle_keys_are_never_kept() {
    let mut rig = Rig::ready();
    rig.hw.press(pin_keys(PIN));
    rig.device.poll(&mut rig.hw);
    rig.restart();
    rig.login();
    let payment = rig.bank.payment(100, "TX-1");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    assert!(rig.device.poll(&mut rig.hw).is_pending());
}

// ---- the prompt a key is meant for ------------------------------------------------------------

#[test]
fn each_prompt_has_its_own_id_and_a_press_meant_for_another_prompt_is_dropped() {
    let mut rig = Rig::ready();
    assert_eq!(rig.device.snapshot().prompt_id, None, "idle: no prompt");
    let payment = rig.bank.payment(100, "TX-1");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    let first = rig.device.snapshot().prompt_id.expect("a prompt is up");
    rig.type_pin(PIN);
    let payment = rig.bank.payment(100, "TX-2");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    let second = rig.device.snapshot().prompt_id.expect("a prompt is up");
    assert!(second > first);

    // Through the simulator's control: a scripted user who saw the first prompt presses for
    // it; the second prompt does not take those keys.
    let Rig { device, hw, .. } = rig;
    let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
    assert!(handle.press_for(first, &pin_keys(PIN)).is_err());
    assert_eq!(handle.lock().hw.queued_keys(), 0);
    assert!(handle.press_for(second, &[KeyPress::Digit(1)]).is_ok());
    assert_eq!(handle.lock().hw.queued_keys(), 1);
}

#[test]
fn a_key_pressed_through_the_simulator_while_idle_is_discarded_at_once() {
    let rig = Rig::ready();
    let Rig { device, hw, .. } = rig;
    let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
    handle.press(&pin_keys(PIN));
    assert_eq!(handle.lock().hw.queued_keys(), 0);
    assert_eq!(handle.view().state.prompt_id, None);
}

// ---- every outcome writes its own screen --------------------------------------------------

#[test]
fn a_cancelled_payment_says_cancelled_not_an_earlier_outcome() {
    let mut rig = Rig::ready();
    let approved = rig.approved("TX-1");
    let verdict = rig
        .bank
        .verdict("TX-1", approved.device_counter, BankResult::Approved);
    rig.request_hv(Request::VerifyBankResponse(verdict));
    assert!(shown(&rig).contains("Approved"));

    let payment = rig.bank.payment(100, "TX-2");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    assert!(!shown(&rig).contains("Approved"), "{}", shown(&rig));
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    let screen = shown(&rig);
    assert!(screen.contains("Cancelled: not paid"), "{screen}");
    assert!(!screen.contains("Approved"), "{screen}");
}

#[test]
fn a_declined_payment_shows_the_reason_and_a_timeout_says_timed_out() {
    let mut rig = Rig::ready();
    let approved = rig.approved("TX-1");
    let verdict = rig
        .bank
        .verdict("TX-1", approved.device_counter, BankResult::PinIncorrect);
    rig.request_hv(Request::VerifyBankResponse(verdict));
    assert!(
        shown(&rig).contains("Declined: wrong PIN"),
        "{}",
        shown(&rig)
    );

    let payment = rig.bank.payment(100, "TX-2");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    rig.hw.advance_clock(121_000);
    let (_, answer) = response(rig.device.poll(&mut rig.hw).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserTimeout);
    let screen = shown(&rig);
    assert!(screen.contains("Timed out: not paid"), "{screen}");
    assert!(!screen.contains("Declined"), "{screen}");
}

#[test]
fn a_rejected_confirmation_says_rejected_not_payment_confirmed() {
    let mut rig = Rig::ready();
    let request = SignConfirmation {
        payment: rig.bank.payment_details(50_000, "OOB-1"),
        nonce: Nonce([0x5A; 16]),
    };
    let (_, outcome) = rig.start_hv(Request::SignConfirmation(request.clone()));
    assert!(outcome.is_pending());
    rig.keys(&[KeyPress::Enter]);
    assert!(shown(&rig).contains("Payment confirmed"));

    let (_, outcome) = rig.start_hv(Request::SignConfirmation(request));
    assert!(outcome.is_pending());
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    let screen = shown(&rig);
    assert!(screen.contains("Rejected: not confirmed"), "{screen}");
    assert!(!screen.contains("Payment confirmed"), "{screen}");
}

#[test]
fn a_payment_cancelled_by_the_computer_says_so_on_the_device() {
    let mut rig = Rig::ready();
    let payment = rig.bank.payment(100, "TX-1");
    let (id, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    rig.start(Request::Cancel(Cancel {
        target_request_id: id,
    }));
    let screen = shown(&rig);
    assert!(screen.contains("Cancelled by the computer"), "{screen}");
    assert!(
        !screen.contains("EUR 1.00"),
        "the payment is gone: {screen}"
    );
}

#[test]
fn a_refused_pairing_says_not_paired() {
    let mut rig = Rig::new();
    rig.initialise();
    rig.enrol(PIN);
    assert!(matches!(rig.pair(), Response::PairResult(_)));
    assert!(shown(&rig).contains("Paired with"));
    // A second host whose code the user says differs (one refusal key: UserCancelled).
    assert!(begin_pairing(&mut rig, "LAPTOP-BOB").is_pending());
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    let screen = rig.hw.display().join("\n");
    assert!(screen.contains("Cancelled: not paired"), "{screen}");
    assert!(!screen.contains("Paired with"), "{screen}");
}

// ---- the idle screen --------------------------------------------------------------------------

#[test]
fn an_outcome_stays_a_while_then_the_idle_screen_is_neutral() {
    let mut rig = Rig::ready();
    let approved = rig.approved("TX-1");
    let verdict = rig
        .bank
        .verdict("TX-1", approved.device_counter, BankResult::Approved);
    rig.request_hv(Request::VerifyBankResponse(verdict));
    assert!(shown(&rig).contains("Approved"));
    rig.hw.advance_clock(OUTCOME_SCREEN_MS - 1);
    rig.device.poll(&mut rig.hw);
    assert!(shown(&rig).contains("Approved"), "still shown");
    rig.hw.advance_clock(1);
    rig.device.poll(&mut rig.hw);
    assert_eq!(rig.hw.display(), idle_screen().as_slice());
}

#[test]
fn a_new_prompt_never_shows_the_previous_outcome() {
    let mut rig = Rig::ready();
    let approved = rig.approved("TX-1");
    let verdict = rig
        .bank
        .verdict("TX-1", approved.device_counter, BankResult::Declined);
    rig.request_hv(Request::VerifyBankResponse(verdict));
    let request = SignConfirmation {
        payment: rig.bank.payment_details(50_000, "OOB-1"),
        nonce: Nonce([0x5A; 16]),
    };
    let (_, outcome) = rig.start_hv(Request::SignConfirmation(request));
    assert!(outcome.is_pending());
    let screen = shown(&rig);
    assert!(!screen.contains("Declined"), "{screen}");
    assert!(screen.contains("Confirm payment"), "{screen}");
}
