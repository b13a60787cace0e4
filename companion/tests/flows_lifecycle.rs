//! Out-of-band confirmation over server-sent events, revoke, and operator tamper reset,
//! through the library's flows against an in-process bank and PIN pad.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use std::time::Duration;

use companion::flows::{self, FlowError};
use firmware_protocol::message::StatusCode;
use flows_support::World;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_pushed_by_the_bank_is_signed_on_the_device() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    let login = world.login(&mut host).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = {
        let client = world.client.clone();
        let token = login.token.clone();
        tokio::spawn(async move {
            client
                .watch_events(&token, &mut |event| tx.send(event).is_ok())
                .await
        })
    };
    let terminal = world
        .client
        .staff_login("terminal", "terminal-password")
        .await
        .unwrap();
    let created = world
        .client
        .post(
            "/v1/confirmations",
            Some(&terminal),
            &json!({
                "customer_id": "alice",
                "payee_account": "FR7630006000011234567890189",
                "payee_name": "Web Shop",
                "amount_minor": 4_200,
                "currency": "EUR",
                "reference": "basket 7",
                "idempotency_key": "basket-7",
            }),
        )
        .await
        .unwrap();
    let transaction = created["transaction_id"].as_str().unwrap().to_owned();
    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event in time")
            .expect("stream open");
        if event.event == "confirmation" && event.data["transaction_id"] == transaction {
            break event;
        }
    };
    let mut sink = world.sink();
    let answer = flows::confirm_one(
        &mut world.session,
        &world.client,
        &login,
        &mut host,
        &event.data,
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(answer["status"], "approved", "{answer}");
    assert_eq!(world.journal_entries(&transaction).await, 1);
    watcher.abort();
}

/// The customer declines one of two confirmations on the keypad: the decline reaches the
/// bank (declined, not pending), and the other confirmation is still asked and paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_confirmation_is_posted_and_the_others_go_on() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    let mut sink = world.sink();
    let login = flows::login(&mut world.session, &world.client, &mut host, &mut sink)
        .await
        .unwrap();
    let terminal = world
        .client
        .staff_login("terminal", "terminal-password")
        .await
        .unwrap();
    let mut created = Vec::new();
    for basket in ["basket-21", "basket-22"] {
        let answer = world
            .client
            .post(
                "/v1/confirmations",
                Some(&terminal),
                &json!({
                    "customer_id": "alice",
                    "payee_account": "FR7630006000011234567890189",
                    "payee_name": "Web Shop",
                    "amount_minor": 1_500,
                    "currency": "EUR",
                    "reference": basket,
                    "idempotency_key": basket,
                }),
            )
            .await
            .unwrap();
        created.push(answer["transaction_id"].as_str().unwrap().to_owned());
    }
    world.decline.store(1, std::sync::atomic::Ordering::SeqCst);
    let results = flows::confirm_pending(
        &mut world.session,
        &world.client,
        &login,
        &mut host,
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["declined", "approved"], "{results:?}");
    for (answer, transaction) in results.iter().zip(&created) {
        assert_eq!(answer["transaction_id"], transaction.as_str(), "{answer}");
        let view = world
            .client
            .get(&format!("/v1/confirmations/{transaction}"), Some(&terminal))
            .await
            .unwrap();
        assert_eq!(view["status"], answer["status"], "{view}");
    }
    assert_eq!(world.journal_entries(&created[0]).await, 0);
    assert_eq!(world.journal_entries(&created[1]).await, 1);
    // Nothing is pending any more: the decline is not offered again.
    let pending = world
        .client
        .get("/v1/session/confirmations", Some(&login.token))
        .await
        .unwrap();
    assert_eq!(pending["confirmations"], json!([]), "{pending}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_wiped_and_refused() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    let serial = flows::device_serial(&mut world.session).await.unwrap();
    let mut sink = world.sink();
    flows::revoke(
        Some(&mut world.session),
        &world.client,
        &world.teller,
        &serial,
        "lost on the train",
        &mut sink,
    )
    .await
    .unwrap();
    assert_eq!(world.device.view().state.lifecycle, "revoked");
    let error = flows::login(&mut world.session, &world.client, &mut host, &mut sink)
        .await
        .unwrap_err();
    match error {
        FlowError::Bank(e) => assert_eq!(e.code(), Some("device_revoked"), "{e}"),
        other => panic!("expected device_revoked, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reset_recovers_a_tampered_device_for_re_provisioning() {
    let mut world = World::start().await;
    let _host = world.provision_and_pair().await;
    let serial = flows::device_serial(&mut world.session).await.unwrap();
    world.device.set_tamper(true);
    let mut sink = world.sink();
    // While the case is open the reset is refused.
    let error = flows::operator_reset(
        &mut world.session,
        &world.client,
        &world.operator,
        &serial,
        &mut sink,
    )
    .await
    .unwrap_err();
    match &error {
        FlowError::Device(e) => assert_eq!(e.status(), Some(StatusCode::WrongState), "{e}"),
        other => panic!("expected WrongState, got {other}"),
    }
    world.device.set_tamper(false);
    flows::operator_reset(
        &mut world.session,
        &world.client,
        &world.operator,
        &serial,
        &mut sink,
    )
    .await
    .unwrap();
    // Back to Manufactured: initialise and enrol again, pair again, and pay.
    let mut host = world.provision_and_pair().await;
    let login = world.login(&mut host).await;
    let outcome = flows::pay(
        &mut world.session,
        &world.client,
        &login,
        &mut host,
        &flows_support::order(100),
        &mut sink,
    )
    .await
    .unwrap();
    assert!(outcome.approved(), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_locked_for_inactivity_is_unlocked_by_the_bank_at_login() {
    let mut world = World::start().await;
    let mut host = world.provision_and_pair().await;
    // 31 days without bank contact: the device locks itself (T2, 30 days by default).
    world.device.advance_clock(31 * 24 * 3600 * 1000);
    let _ = flows::device_serial(&mut world.session).await.unwrap();
    assert_ne!(world.device.view().state.lock, "unlocked");
    let login = world.login(&mut host).await;
    assert_eq!(login.customer_id, "alice");
    assert_eq!(world.device.view().state.lock, "unlocked");
}
