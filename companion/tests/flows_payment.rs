//! Flows end to end in process: companion library <-> sandbox bank (HTTP on loopback) and
//! mock PIN pad (sim link on loopback).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use companion::flows::{self, FlowError, FlowEvent};
use firmware_protocol::message::{Request, StatusCode, decode_request};
use flows_support::{PIN, WRONG_PIN, World, order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_payment_are_approved_and_journaled_once() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    let login = world.login(&mut host).await;
    assert_eq!(login.customer_id, "alice");
    let mut sink = world.sink();
    let outcome = flows::pay(
        &mut world.session,
        &world.client,
        &login,
        &mut host,
        &order(1234),
        &mut sink,
    )
    .await
    .unwrap();
    assert!(outcome.approved(), "{outcome:?}");
    assert_eq!(outcome.bank_result, "approved");
    assert_eq!(world.journal_entries(&outcome.transaction_id).await, 1);
    // The host counter moved past every envelope sent (login 2, payment 2).
    assert!(host.next_counter >= 5, "{}", host.next_counter);
    let events = world.events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, FlowEvent::PinEntry { entered: 6, .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, FlowEvent::ComparisonCode { .. }))
    );
    // No event carries the PIN, in ASCII or BCD.
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.contains(PIN), "{json}");
    // BCD: the digits packed two per byte.
    assert!(!json.as_bytes().windows(3).any(|w| w == [0x58, 0x39, 0x20]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_changed_in_transit_is_refused_and_nothing_is_journaled() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    let login = world.login(&mut host).await;
    let mut sink = world.sink();
    let mut prepared = flows::prepare_payment(&world.client, &login, &order(1234), &mut sink)
        .await
        .unwrap();
    // A compromised PC turns 12.34 into 9 999.00 before the device sees it.
    let (_, request) = decode_request(&prepared.approve_payment).unwrap();
    let Request::ApprovePayment(mut approve) = request else {
        panic!("the bank sent {request:?}");
    };
    approve.payment.amount_minor = 999_900;
    prepared.approve_payment = Request::ApprovePayment(approve).encode(0).unwrap();
    let error = flows::approve_and_submit(
        &mut world.session,
        &world.client,
        &login,
        &mut host,
        &prepared,
        &mut sink,
    )
    .await
    .unwrap_err();
    match &error {
        FlowError::Device(e) => assert_eq!(e.status(), Some(StatusCode::BadBankMac), "{e}"),
        other => panic!("expected the device to refuse the bank MAC, got {other}"),
    }
    assert_eq!(world.journal_entries(&prepared.transaction_id).await, 0);
    let status = world
        .client
        .get(
            &format!("/v1/payments/{}", prepared.transaction_id),
            Some(&login.token),
        )
        .await
        .unwrap();
    assert_ne!(status["result"], "approved", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_device_is_refused_with_a_clear_error() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    world.device.set_tamper(true);
    let mut sink = world.sink();
    let error = flows::login(&mut world.session, &world.client, &mut host, &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(error, FlowError::Tampered), "{error:?}");
    assert!(error.to_string().contains("TAMPERED"), "{error}");
    assert!(error.to_string().contains("operator reset"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_pins_block_the_account() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    let login = world.login(&mut host).await;
    *world.pin.lock().unwrap() = WRONG_PIN;
    let mut verdicts = Vec::new();
    for _ in 0..3 {
        let mut sink = world.sink();
        let outcome = flows::pay(
            &mut world.session,
            &world.client,
            &login,
            &mut host,
            &order(500),
            &mut sink,
        )
        .await
        .unwrap();
        assert!(!outcome.approved());
        assert_eq!(world.journal_entries(&outcome.transaction_id).await, 0);
        verdicts.push(outcome.bank_result);
    }
    assert_eq!(verdicts, ["pin_incorrect"; 3]);
    // Blocked: the right PIN no longer pays, and no longer logs in.
    *world.pin.lock().unwrap() = PIN;
    let mut sink = world.sink();
    let outcome = flows::pay(
        &mut world.session,
        &world.client,
        &login,
        &mut host,
        &order(500),
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(outcome.bank_result, "account_blocked", "{outcome:?}");
    assert!(!outcome.approved());
    assert_eq!(world.journal_entries(&outcome.transaction_id).await, 0);
    let mut sink = world.sink();
    let error = flows::login(&mut world.session, &world.client, &mut host, &mut sink)
        .await
        .unwrap_err();
    match error {
        FlowError::Bank(e) => assert_eq!(e.code(), Some("pin_locked"), "{e}"),
        other => panic!("expected pin_locked, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_restored_with_an_old_counter_resumes_above_the_device_s() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    let _ = world.login(&mut host).await;
    let used = host.next_counter;
    // The pairing file restored from a backup taken right after pairing.
    host.next_counter = 1;
    let login = world.login(&mut host).await;
    assert_eq!(login.customer_id, "alice");
    assert!(host.next_counter > used, "{} <= {used}", host.next_counter);
}
