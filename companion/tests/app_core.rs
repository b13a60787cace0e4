//! The desktop app's core (`companion::app`) as plain async calls, without a window: pairing,
//! login, payment, reconnection, wrong PIN and tamper (harness: tests/app_support).

// Test harness: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_support;
mod flows_support;

use std::time::Duration;

use app_support::{DEVICE, progress, start};
use companion::app::{
    DeviceProgress, Indicator, LinkState, Outcome, OutcomeReason, StaffRole, TamperState,
};
use companion::error::ErrorKind;
use flows_support::WRONG_PIN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_login_and_pay_through_the_core() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let prepared = h
        .core
        .payment_prepare(h.payment(&session, "FR76 3000 6000 0112 3456 7890 189"))
        .await
        .unwrap();
    assert_eq!(prepared.payee_account, "FR7630006000011234567890189");
    let (sink, seen) = progress();
    let result = h
        .core
        .payment_approve(&prepared.payment_id, sink)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Approved, "{result:?}");
    assert_eq!(result.reason, OutcomeReason::None);
    // PIN entry was a count of digits, never the digits.
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|p| matches!(p, DeviceProgress::Pin { entered: 6, .. }))
    );
    let again = h
        .core
        .payment_approve(&prepared.payment_id, progress().0)
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_missing_prerequisites_have_their_kinds() {
    let h = start().await;
    h.core.connect(DEVICE).await.unwrap();
    let refused = h
        .core
        .login(DEVICE, "alice", progress().0)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotPaired);
    let none = h
        .core
        .staff_initialise(DEVICE, progress().0)
        .await
        .unwrap_err();
    assert_eq!(none.kind, ErrorKind::StaffAuthRequired);
    let wrong = h
        .core
        .staff_sign_in("teller", "not-the-password")
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ErrorKind::StaffAuthFailed);
    let missing = h.core.connect("usb:9-9").await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::DeviceNotFound);

    let session = h.pair_and_login().await;
    for (account, says) in [
        ("FR7630006000011234567890188", "check digits"),
        ("12", "not an account number"),
    ] {
        let error = h
            .core
            .payment_prepare(h.payment(&session, account))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput, "{error}");
        assert!(error.message.contains(says), "{says}: {error}");
    }
}

/// Issue 12 item 2: the app never reconnected after an unplug; it kept a dead session until
/// the user disconnected and connected by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_device_is_reconnected_on_replug_with_the_same_session() {
    let h = start().await;
    let _watch = tokio::spawn(h.core.clone().watch_devices(Duration::from_secs(3600)));
    let session = h.pair_and_login().await;
    let mut events = h.events.subscribe();

    h.plug.set(false);
    h.link(&mut events, LinkState::Reconnecting).await;
    let unplugged = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let error = h
        .core
        .payment_approve(&unplugged.payment_id, progress().0)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeviceDisconnected, "{error}");

    h.plug.set(true);
    h.link(&mut events, LinkState::Reconnected).await;
    let status = h.core.device_status(DEVICE).await.unwrap();
    assert!(status.connected && status.paired, "{status:?}");
    // The same customer session goes on: the payment prepared before the unplug is sent now.
    let result = h
        .core
        .payment_approve(&unplugged.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Approved, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_declined_by_the_bank_and_the_device_stays_safe() {
    let h = start().await;
    let session = h.pair_and_login().await;
    *h.world.pin.lock().unwrap() = WRONG_PIN;
    let prepared = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let result = h
        .core
        .payment_approve(&prepared.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Declined, "{result:?}");
    assert_eq!(result.reason, OutcomeReason::WrongPin);
    assert_eq!(result.indicator, Indicator::Safe);
    assert_eq!(result.bank_reference, None);
    assert_eq!(
        result.pin_tries_left,
        Some(2),
        "the sandbox bank allows three"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_count_down_the_tries_then_the_pin_is_blocked() {
    let h = start().await;
    let session = h.pair_and_login().await;
    *h.world.pin.lock().unwrap() = WRONG_PIN;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let prepared = h
            .core
            .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
            .await
            .unwrap();
        let result = h
            .core
            .payment_approve(&prepared.payment_id, progress().0)
            .await
            .unwrap();
        assert_eq!(result.outcome, Outcome::Declined, "{result:?}");
        seen.push((result.reason, result.pin_tries_left));
    }
    // The third wrong PIN blocks it, and so does any PIN after (the bank's account_blocked).
    assert_eq!(
        seen,
        [
            (OutcomeReason::WrongPin, Some(2)),
            (OutcomeReason::WrongPin, Some(1)),
            (OutcomeReason::PinBlocked, None),
            (OutcomeReason::PinBlocked, None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_device_refuses_in_danger_and_only_an_operator_resets_it() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let prepared = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    h.world.device.set_tamper(true);
    h.world.device.set_tamper(false);
    let result = h
        .core
        .payment_approve(&prepared.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Refused, "{result:?}");
    assert_eq!(result.reason, OutcomeReason::Tampered);
    assert_eq!(result.indicator, Indicator::Danger);
    let status = h.core.device_status(DEVICE).await.unwrap();
    assert_eq!(status.tamper, TamperState::Tampered);
    let refused = h
        .core
        .login(DEVICE, "alice", progress().0)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Tampered, "{refused}");

    let clerk = h
        .core
        .staff_sign_in("teller", "teller-password")
        .await
        .unwrap();
    assert_eq!(clerk.role, StaffRole::Clerk);
    let not_allowed = h.core.staff_tamper_reset(DEVICE).await.unwrap_err();
    assert_eq!(not_allowed.kind, ErrorKind::StaffNotAllowed);
    let operator = h
        .core
        .staff_sign_in("operator", "operator-password")
        .await
        .unwrap();
    assert_eq!(operator.role, StaffRole::Operator);
    let reset = h.core.staff_tamper_reset(DEVICE).await.unwrap();
    assert_eq!(reset.device.tamper, TamperState::Clear);
}

/// Issue 17 item 4: after a link fault (the simulator closes every host connection, as the
/// app's QA disconnect fault does) the payment failed, and every later one waited for an ACK
/// that never came until the customer disconnected and connected by hand. Now the core resets
/// the link by itself, the error says it was a disconnect and that nothing was paid, and the
/// next payment goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_disconnect_fault_the_next_payment_succeeds_without_a_manual_reconnect() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let mut events = h.events.subscribe();
    let first = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let mut faults = h.world.device.view().faults;
    faults.disconnect_after = Some(1);
    h.world.device.set_faults(faults);
    let error = h
        .core
        .payment_approve(&first.payment_id, progress().0)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeviceDisconnected, "{error}");
    assert_eq!(error.paid, Some(false), "{error:?}");
    assert!(error.message.contains("disconnect"), "{error}");
    assert!(error.message.contains("Nothing was paid"), "{error}");
    h.link(&mut events, LinkState::Reconnected).await;

    let second = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let result = h
        .core
        .payment_approve(&second.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Approved, "{result:?}");
}

/// Issue 17 item 3: a tampered device was offered the payment form and the bank prepared the
/// payment before the device refused. Now the core refuses before any bank call, with the
/// kind the screens explain (and the fix in the words).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_device_is_refused_before_the_bank_prepares_anything() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let before = h.payment_count().await;
    h.world.device.set_tamper(true);
    h.world.device.set_tamper(false);
    let error = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Tampered, "{error}");
    assert!(error.message.contains("operator reset"), "{error}");
    assert_eq!(
        h.payment_count().await,
        before,
        "the bank prepared a payment"
    );
}

/// The same for a device whose pairing with this computer is gone: "pair it", no bank call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaired_device_is_refused_before_the_bank_prepares_anything() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let before = h.payment_count().await;
    let keys = companion::keystore::KeyStore::in_memory(h.keys.path());
    keys.remove("PB-TEST-1").unwrap();
    let error = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotPaired, "{error}");
    assert!(error.message.contains("Pairing screen"), "{error}");
    assert_eq!(
        h.payment_count().await,
        before,
        "the bank prepared a payment"
    );
}

/// Issue 17 item 4: a QA delay fault (every packet from the PIN pad four seconds late) was
/// reported as a disconnect and the payments after it failed too. Now the error says it was a
/// delay (and that nothing was paid), and once the link is quick again the next payment goes
/// through with no manual reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_delay_fault_the_error_says_delay_and_the_next_payment_succeeds() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let first = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let mut faults = h.world.device.view().faults;
    faults.delay_ms = 4_000;
    h.world.device.set_faults(faults);
    let error = h
        .core
        .payment_approve(&first.payment_id, progress().0)
        .await
        .unwrap_err();
    h.world.device.set_faults(Default::default());
    assert!(error.message.contains("delay"), "{error}");
    assert!(!error.message.contains("disconnect"), "{error}");
    assert_ne!(error.kind, ErrorKind::DeviceDisconnected, "{error}");
    assert_eq!(error.paid, Some(false), "{error:?}");

    let second = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let result = h
        .core
        .payment_approve(&second.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Approved, "{result:?}");
}
