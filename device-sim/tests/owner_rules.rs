//! The owner's operations on the device (PROTOCOL.md §6.12, §6.13), driven through the
//! protocol: change the PIN on the keypad (current, new, new again; bank-verified, bound to
//! the session and its counters) and the owner's wipe back to the factory state with a
//! signed receipt. Every outcome writes its own screen; keys with no prompt count for nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::hardware::KeyPress;
use firmware_protocol::message::{
    BankCommandKind, BankResult, ChangePin, DeviceWiped, GetStatus, Indicator, Lifecycle, MacTag,
    PinChangeEntered, PinChangeResult, Request, Response, Status, StatusCode, VerifyPinChange,
    WipeDevice,
};
use support::{PIN, Rig, SERIAL, response, status_of};

const NEW_PIN: &str = "7391";

fn status(rig: &mut Rig) -> Status {
    match rig.request(Request::GetStatus(GetStatus)) {
        Response::Status(status) => status,
        other => panic!("GetStatus answered {other:?}"),
    }
}

fn shows(rig: &Rig, text: &str) -> bool {
    rig.hw.display().iter().any(|line| line.contains(text))
}

/// The bank's ChangePin for the current session, with its next counter (shared with payments).
fn change_pin(rig: &mut Rig) -> ChangePin {
    rig.bank.payment_counter += 1;
    let mut request = ChangePin {
        session_id: rig.bank.session().id,
        counter: rig.bank.payment_counter,
        pin_length_min: 4,
        pin_length_max: 6,
        bank_mac: MacTag([0; 16]),
    };
    request
        .seal_bank_mac(&rig.bank.session().response_key)
        .unwrap();
    request
}

fn verdict(rig: &Rig, device_counter: u64, result: PinChangeResult, tries: u8) -> VerifyPinChange {
    let mut request = VerifyPinChange {
        session_id: rig.bank.session().id,
        device_counter,
        result,
        pin_tries_left: tries,
        bank_mac: MacTag([0; 16]),
    };
    request
        .seal_bank_mac(&rig.bank.session().response_key)
        .unwrap();
    request
}

/// Starts a PIN change and types the three entries; returns the request and the answer.
fn change(rig: &mut Rig, current: &str, new: &str, again: &str) -> (ChangePin, Response) {
    let request = change_pin(rig);
    let (id, outcome) = rig.start_hv(Request::ChangePin(request.clone()));
    assert!(
        outcome.is_pending(),
        "asks for the current PIN: {outcome:?}"
    );
    assert!(
        shows(rig, "Enter your current PIN"),
        "{:?}",
        rig.hw.display()
    );
    assert!(rig.type_pin(current).is_pending());
    assert!(
        shows(rig, "Choose a new PIN (4-6 digits)"),
        "{:?}",
        rig.hw.display()
    );
    assert!(rig.type_pin(new).is_pending());
    assert!(
        shows(rig, "Enter the new PIN again"),
        "{:?}",
        rig.hw.display()
    );
    let outcome = rig.type_pin(again);
    assert!(!outcome.is_pending());
    let (answer_id, answer) = response(outcome.answer().expect("an answer"));
    assert_eq!(answer_id, id);
    (request, answer)
}

fn entered(rig: &mut Rig, current: &str, new: &str) -> (ChangePin, PinChangeEntered) {
    match change(rig, current, new, new) {
        (request, Response::PinChangeEntered(entered)) => (request, entered),
        (_, other) => panic!("ChangePin answered {other:?}"),
    }
}

#[test]
fn a_pin_change_sends_both_pins_enciphered_under_the_session_and_shows_the_verdict() {
    let mut rig = Rig::ready();
    let (request, answer) = entered(&mut rig, PIN, NEW_PIN);
    assert!(shows(&rig, "Sent to your bank"));
    // The bank can check the MAC over the very request it made, and decipher both PINs.
    assert!(answer.mac_verifies(&rig.bank.session().mac_key, &request));
    assert_eq!(answer.device_counter, 1, "one more than the device's last");
    let pin_key = &rig.bank.session().pin_key;
    assert_eq!(rig.bank.reveal_pin(pin_key, &answer.old_pin_block), PIN);
    assert_eq!(rig.bank.reveal_pin(pin_key, &answer.new_pin_block), NEW_PIN);

    let changed = verdict(&rig, answer.device_counter, PinChangeResult::Changed, 0);
    match rig.request_hv(Request::VerifyPinChange(changed)) {
        Response::IndicatorSet(set) => {
            assert_eq!(set.result, BankResult::Approved);
            assert_eq!(set.indicator, Indicator::Safe);
            assert_eq!(set.display_text, "PIN changed");
        }
        other => panic!("VerifyPinChange answered {other:?}"),
    }
    assert!(shows(&rig, "PIN changed"));
    // The logout the app relays right after (a bank EndSession with no reason) leaves the
    // outcome on the screen.
    let end = rig.bank.command(SERIAL, BankCommandKind::EndSession, "");
    assert!(matches!(
        rig.request(Request::BankCommand(end)),
        Response::Status(_)
    ));
    assert!(shows(&rig, "PIN changed"), "{:?}", rig.hw.display());
    rig.login();
    // The same verdict again matches nothing pending.
    let again = verdict(&rig, answer.device_counter, PinChangeResult::Changed, 0);
    assert_eq!(
        status_of(&rig.request_hv(Request::VerifyPinChange(again))),
        StatusCode::TransactionMismatch
    );
    // Counters are shared with payments: the next payment's approval counts on.
    assert_eq!(rig.approved("TX-AFTER").device_counter, 2);
}

#[test]
fn a_wrong_current_pin_verdict_shows_the_tries_left_and_a_blocked_one_says_so() {
    let mut rig = Rig::ready();
    let (_, answer) = entered(&mut rig, "9999", NEW_PIN);
    let wrong = verdict(
        &rig,
        answer.device_counter,
        PinChangeResult::OldPinIncorrect,
        2,
    );
    match rig.request_hv(Request::VerifyPinChange(wrong)) {
        Response::IndicatorSet(set) => {
            assert_eq!(set.result, BankResult::PinIncorrect);
            assert_eq!(set.display_text, "Wrong PIN: not changed, 2 tries left");
        }
        other => panic!("VerifyPinChange answered {other:?}"),
    }
    assert!(shows(&rig, "Wrong PIN: not changed, 2 tries left"));

    let (_, answer) = entered(&mut rig, "9999", NEW_PIN);
    let blocked = verdict(&rig, answer.device_counter, PinChangeResult::PinBlocked, 0);
    match rig.request_hv(Request::VerifyPinChange(blocked)) {
        Response::IndicatorSet(set) => assert_eq!(set.result, BankResult::AccountBlocked),
        other => panic!("VerifyPinChange answered {other:?}"),
    }
    assert!(shows(&rig, "PIN blocked: contact your bank"));
}

#[test]
fn two_different_new_pins_are_refused_on_the_device_and_nothing_goes_to_the_bank() {
    let mut rig = Rig::ready();
    let (_, answer) = change(&mut rig, PIN, NEW_PIN, "7392");
    assert_eq!(status_of(&answer), StatusCode::PinMismatch);
    assert!(
        shows(&rig, "PINs differ: PIN not changed"),
        "{:?}",
        rig.hw.display()
    );
    // Nothing is pending: no verdict can be shown for it.
    let unasked = verdict(&rig, 1, PinChangeResult::Changed, 0);
    assert_eq!(
        status_of(&rig.request_hv(Request::VerifyPinChange(unasked))),
        StatusCode::TransactionMismatch
    );
    // A new PIN shorter than the bank allows is refused at its first entry (longer cannot be
    // typed: digits past the maximum are not taken).
    let request = change_pin(&mut rig);
    let (_, outcome) = rig.start_hv(Request::ChangePin(request));
    assert!(rig.type_pin(PIN).is_pending());
    let outcome_after = rig.type_pin("123");
    assert!(outcome.is_pending());
    let (_, answer) = response(outcome_after.answer().expect("an answer"));
    assert_eq!(status_of(&answer), StatusCode::PinPolicy);
    assert!(shows(&rig, "PIN length not allowed: PIN not changed"));
}

#[test]
fn cancel_on_the_keypad_and_the_user_timeout_each_have_their_screen() {
    let mut rig = Rig::ready();
    let request = change_pin(&mut rig);
    let (_, outcome) = rig.start_hv(Request::ChangePin(request));
    assert!(outcome.is_pending());
    assert!(rig.type_pin(PIN).is_pending());
    let outcome = rig.keys(&[KeyPress::Cancel]);
    let (_, answer) = response(outcome.answer().expect("an answer"));
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    assert!(shows(&rig, "Cancelled: PIN not changed"));

    let request = change_pin(&mut rig);
    let (_, outcome) = rig.start_hv(Request::ChangePin(request));
    assert!(outcome.is_pending());
    rig.device.expire_user_prompt();
    let outcome = rig.device.poll(&mut rig.hw);
    let (_, answer) = response(outcome.answer().expect("an answer"));
    assert_eq!(status_of(&answer), StatusCode::UserTimeout);
    assert!(shows(&rig, "Timed out: PIN not changed"));
}

#[test]
fn keys_pressed_with_no_prompt_or_ahead_of_the_next_prompt_count_for_nothing() {
    let mut rig = Rig::ready();
    // Typed while nothing is asked: discarded.
    rig.hw.press(KeyPress::digits("55").unwrap());
    let _ = rig.device.poll(&mut rig.hw);
    let request = change_pin(&mut rig);
    let (id, _) = rig.start_hv(Request::ChangePin(request));
    // The current PIN, OK, and the new PIN typed ahead in one burst: the new-PIN prompt
    // starts empty, the digits typed before it appeared do not count.
    let mut burst = KeyPress::digits(PIN).unwrap();
    burst.push(KeyPress::Enter);
    burst.extend(KeyPress::digits(NEW_PIN).unwrap());
    assert!(rig.keys(&burst).is_pending());
    assert_eq!(rig.device.snapshot().pin_digits_entered, Some(0));
    assert!(rig.type_pin(NEW_PIN).is_pending());
    let outcome = rig.type_pin(NEW_PIN);
    let (answer_id, answer) = response(outcome.answer().expect("an answer"));
    assert_eq!(answer_id, id);
    let Response::PinChangeEntered(entered) = answer else {
        panic!("answered {answer:?}");
    };
    let pin_key = &rig.bank.session().pin_key;
    assert_eq!(rig.bank.reveal_pin(pin_key, &entered.old_pin_block), PIN);
}

#[test]
fn a_pin_change_is_bound_to_the_paired_host_the_session_and_the_bank_counter() {
    let mut rig = Rig::ready();
    // Bare (no host verification): refused.
    let request = change_pin(&mut rig);
    assert_eq!(
        status_of(&rig.request(Request::ChangePin(request.clone()))),
        StatusCode::NotPaired
    );
    // Used once, then replayed: the counter is spent.
    let (_, outcome) = rig.start_hv(Request::ChangePin(request.clone()));
    assert!(outcome.is_pending());
    let outcome = rig.keys(&[KeyPress::Cancel]);
    assert!(outcome.answer().is_some());
    assert_eq!(
        status_of(&rig.request_hv(Request::ChangePin(request.clone()))),
        StatusCode::StaleBankCounter
    );
    // Another session's: refused.
    let mut other = change_pin(&mut rig);
    other.session_id.0[0] ^= 1;
    assert_eq!(
        status_of(&rig.request_hv(Request::ChangePin(other))),
        StatusCode::SessionMismatch
    );
    // A forged bank MAC (the PC made it up): an intrusion, indicator at danger.
    let mut forged = change_pin(&mut rig);
    forged.pin_length_min = 5;
    let answer = rig.request_hv(Request::ChangePin(forged));
    assert_eq!(status_of(&answer), StatusCode::BadBankMac);
    assert_eq!(rig.hw.indicator(), Indicator::Danger);
}

#[test]
fn a_forged_pin_change_verdict_is_an_intrusion() {
    let mut rig = Rig::ready();
    let (_, answer) = entered(&mut rig, PIN, NEW_PIN);
    let mut forged = verdict(
        &rig,
        answer.device_counter,
        PinChangeResult::OldPinIncorrect,
        2,
    );
    forged.result = PinChangeResult::Changed;
    let refused = rig.request_hv(Request::VerifyPinChange(forged));
    assert_eq!(status_of(&refused), StatusCode::BadBankMac);
    assert_eq!(rig.hw.indicator(), Indicator::Danger);
    assert!(shows(&rig, "WARNING: forged bank response"));
}

#[test]
fn the_owner_wipes_the_device_after_confirming_on_the_keypad() {
    let mut rig = Rig::ready();
    let before = status(&mut rig);
    // X keeps everything.
    let (_, outcome) = rig.start(Request::WipeDevice(WipeDevice));
    assert!(outcome.is_pending());
    assert!(shows(&rig, "Wipe this PIN pad?"), "{:?}", rig.hw.display());
    assert_eq!(rig.device.snapshot().waiting_for, Some("confirm"));
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    assert!(shows(&rig, "Cancelled: not wiped"));
    assert_eq!(status(&mut rig).lifecycle, Lifecycle::Bound);
    // A digit is no answer; OK wipes.
    let (id, _) = rig.start(Request::WipeDevice(WipeDevice));
    assert!(rig.keys(&[KeyPress::Digit(1)]).is_pending());
    let (answer_id, answer) = response(rig.keys(&[KeyPress::Enter]).answer().unwrap());
    assert_eq!(answer_id, id);
    let Response::DeviceWiped(receipt) = answer else {
        panic!("WipeDevice answered {answer:?}");
    };
    assert_eq!(receipt.device_serial, SERIAL);
    assert_eq!(receipt.bank_sequence, before.bank_sequence);
    rig.device
        .attestation_public_key()
        .verify(
            DeviceWiped::SIGNATURE_DOMAIN,
            &receipt.signed_bytes().unwrap(),
            &receipt.signature,
        )
        .expect("the receipt verifies under the attestation key");
    let after = status(&mut rig);
    assert_eq!(after.lifecycle, Lifecycle::Manufactured);
    assert_eq!((after.paired_hosts, after.session_active), (0, false));
    assert_eq!(after.bank_sequence, before.bank_sequence, "kept: no replay");
    assert!(shows(&rig, "Not initialised"));
    assert!(shows(&rig, "Wiped: keys and pairings erased"));
    // Stored that way: a restart does not bring anything back.
    rig.restart();
    assert_eq!(status(&mut rig).lifecycle, Lifecycle::Manufactured);
    // The old host is gone; the old enrolment cannot be replayed; the bank can start again.
    let payment = rig.bank.payment(100, "TX-GONE");
    assert_eq!(
        status_of(&rig.request_hv(Request::ApprovePayment(payment))),
        StatusCode::UnknownHost
    );
    assert!(matches!(rig.initialise(), Response::Initialised(_)));
    assert!(matches!(rig.enrol("2468"), Response::Enrolled(_)));
}

#[test]
fn a_wipe_times_out_with_its_screen_and_is_refused_where_there_is_nothing_to_wipe() {
    let mut rig = Rig::ready();
    let (_, outcome) = rig.start(Request::WipeDevice(WipeDevice));
    assert!(outcome.is_pending());
    rig.device.expire_user_prompt();
    let (_, answer) = response(rig.device.poll(&mut rig.hw).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserTimeout);
    assert!(shows(&rig, "Timed out: not wiped"));
    assert_eq!(status(&mut rig).lifecycle, Lifecycle::Bound);

    // Never initialised: nothing to wipe.
    let mut fresh = Rig::new();
    assert_eq!(
        status_of(&fresh.request(Request::WipeDevice(WipeDevice))),
        StatusCode::NotInitialised
    );
    // Tampered: the sticky state is the operator's to clear, not the owner's.
    rig.hw.set_tamper_switch(true);
    let _ = rig.device.poll(&mut rig.hw);
    assert_eq!(
        status_of(&rig.request(Request::WipeDevice(WipeDevice))),
        StatusCode::Tampered
    );
}
