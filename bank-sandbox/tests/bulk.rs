//! Payments at once from several devices keep every job-by-job outcome while PostgreSQL's
//! group commit runs each batch's prepares and decisions as one statement each: six
//! customers paying at once, one approval sent twice at once (the copy clashes with the
//! original in a batch and runs on its own), one idempotency key prepared twice at once, a
//! payment the balance does not cover. Money and journal agree
//! with the answers, and on PostgreSQL the bulk statements did the work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use bank_sandbox::bank::BankConfig;
use reqwest::StatusCode;
use serde_json::json;
use support::{Db, TestBank};

const PIN: &str = "4321";
const DEVICES: usize = 6;
const PAYMENTS: u64 = 8;

async fn concurrent_payments_keep_their_outcomes(db: Db) {
    let Some(t) = TestBank::start(db, BankConfig::default()).await else {
        return;
    };
    let t = Arc::new(t);
    const BALANCE: i64 = 1_000_000;
    let mut devices = Vec::new();
    for d in 0..DEVICES {
        let customer = format!("bulk{d}");
        let (status, body) = t
            .post(
                "/v1/customers",
                Some(&t.teller),
                json!({"customer_id": customer, "name": "Bulk", "pin_account_number": format!("49{d:014}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = t
            .post(
                &format!("/v1/customers/{customer}/accounts"),
                Some(&t.teller),
                json!({"account_number": format!("BULK-{d}"), "name": "bulk", "currency": "EUR",
                       "exponent": 2, "balance_minor": BALANCE}),
            )
            .await;
        assert!(status.is_success(), "{body}");
        let seed = 40 + u8::try_from(d).unwrap();
        let mut device = t
            .provision(&format!("PP-BULK-{d}"), seed, &customer, PIN)
            .await;
        let token = t.login(&mut device).await;
        devices.push((d, device, token));
    }
    let mut tasks = Vec::new();
    for (d, mut device, token) in devices {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut paid = Vec::new();
            for _ in 0..PAYMENTS {
                let amount = 100 + d as u64;
                let (status, body) = t.pay(&token, &mut device, amount, PIN).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body["result"], "approved", "{body}");
                assert_eq!(body["replayed"], false, "{body}");
                paid.push(body["transaction_id"].as_str().unwrap().to_owned());
            }
            (d, device, token, paid)
        }));
    }
    let mut devices = Vec::new();
    for task in tasks {
        let (d, device, token, paid) = task.await.unwrap();
        for transaction in &paid {
            assert_eq!(t.journal_count(transaction).await, 1, "{transaction}");
        }
        let spent = (100 + d as i64) * PAYMENTS as i64;
        assert_eq!(t.balance(&format!("bulk{d}")).await, BALANCE - spent);
        devices.push((d, device, token));
    }

    // One approval twice at once: one decision, the copy gets it (replayed), one entry.
    let (_, device, token) = &mut devices[0];
    let prepared = t.prepare(token, 77, "twice").await;
    let transaction = prepared["transaction_id"].as_str().unwrap().to_owned();
    let approval = device
        .approve(prepared["approve_payment"].as_str().unwrap(), PIN)
        .unwrap();
    let ((s1, first), (s2, second)) = tokio::join!(
        t.submit(token, &transaction, &approval),
        t.submit(token, &transaction, &approval)
    );
    assert_eq!(
        (s1, s2),
        (StatusCode::OK, StatusCode::OK),
        "{first} {second}"
    );
    assert_eq!(
        first["verify_bank_response"],
        second["verify_bank_response"]
    );
    assert_eq!(first["result"], "approved");
    let replayed = [&first, &second]
        .iter()
        .filter(|b| b["replayed"] == true)
        .count();
    assert_eq!(replayed, 1, "{first} {second}");
    assert_eq!(t.journal_count(&transaction).await, 1);
    assert_eq!(
        t.balance("bulk0").await,
        BALANCE - 100 * PAYMENTS as i64 - 77
    );

    // One idempotency key prepared twice at once: one payment.
    let (a, b) = tokio::join!(
        t.prepare(token, 55, "same-key"),
        t.prepare(token, 55, "same-key")
    );
    assert_eq!(a["transaction_id"], b["transaction_id"], "{a} {b}");
    assert_eq!(a["approve_payment"], b["approve_payment"], "{a} {b}");

    // More than the balance: declined, nothing moved or journaled.
    let (_, device, token) = &mut devices[1];
    let balance = t.balance("bulk1").await;
    let (status, body) = t
        .pay(token, device, u64::try_from(balance).unwrap() + 1, PIN)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "insufficient_funds", "{body}");
    assert_eq!(t.balance("bulk1").await, balance);
    let transaction = body["transaction_id"].as_str().unwrap();
    assert_eq!(t.journal_count(transaction).await, 0);

    let stats = t.bank.store().group_commit_stats();
    match db {
        // Every payment's prepare (after the session's first) and decision had a bulk row,
        // but the ones that shared a batch with another of their payer or binding.
        Db::Postgres => assert!(
            stats.bulk_rows() >= DEVICES as u64 * PAYMENTS,
            "{} bulk rows of {} jobs",
            stats.bulk_rows(),
            stats.jobs()
        ),
        Db::Sqlite => assert_eq!(stats.bulk_rows(), 0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_payments() {
    concurrent_payments_keep_their_outcomes(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_payments() {
    concurrent_payments_keep_their_outcomes(Db::Postgres).await;
}
