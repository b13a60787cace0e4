//! The customer's payment history (`GET /v1/payments`): newest first, each payment's outcome
//! and journal entry, paged by a cursor, the session's customer only; on SQLite and (with
//! PINBRIDGE_PG_URL) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bank_sandbox::bank::BankConfig;
use reqwest::StatusCode;
use serde_json::Value;
use support::{Db, TestBank};

const PIN: &str = "4321";

async fn bank(db: Db) -> Option<TestBank> {
    TestBank::start(db, BankConfig::default()).await
}

fn ids(page: &Value) -> Vec<String> {
    page["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["transaction_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn statement_with_outcomes_and_journal(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-H001", 61, "alice", PIN).await;
    let token = t.login(&mut device).await;

    let (status, approved) = t.pay(&token, &mut device, 12_345, PIN).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["result"], "approved");
    let (status, declined) = t.pay(&token, &mut device, 500, "9999").await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    assert_eq!(declined["result"], "pin_incorrect");
    // Prepared and never sent to the PIN pad: still open, no verdict, no journal entry.
    let open = t.prepare(&token, 700, "never-sent").await;

    let (status, page) = t.get("/v1/payments", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let payments = page["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 3, "{page}");
    assert!(page["next_before"].is_null(), "{page}");
    // Newest first.
    assert_eq!(payments[0]["transaction_id"], open["transaction_id"]);
    assert_eq!(payments[0]["status"], "prepared");
    assert!(payments[0]["result"].is_null());
    assert!(payments[0]["journal_reference"].is_null());
    assert!(payments[0]["decided_at"].is_null());

    assert_eq!(payments[1]["transaction_id"], declined["transaction_id"]);
    assert_eq!(payments[1]["status"], "declined");
    assert_eq!(payments[1]["result"], "pin_incorrect");
    assert!(payments[1]["journal_reference"].is_null());

    let paid = &payments[2];
    assert_eq!(paid["transaction_id"], approved["transaction_id"]);
    assert_eq!(paid["status"], "approved");
    assert_eq!(paid["result"], "approved");
    assert_eq!(paid["kind"], "device");
    assert_eq!(paid["amount_minor"], 12_345);
    assert_eq!(paid["currency"], "EUR");
    assert_eq!(paid["exponent"], 2);
    assert_eq!(paid["payee_name"], "Shop SARL");
    assert_eq!(paid["payee_account"], "FR7630006000011234567890189");
    assert_eq!(paid["reference"], "order 42");
    assert!(!paid["payer_account"].as_str().unwrap().is_empty());
    // The journal entry that moved the money.
    let reference = paid["journal_reference"].as_str().unwrap();
    assert_eq!(t.journal_count(reference).await, 1);
    assert!(paid["decided_at"].as_i64().unwrap() >= paid["created_at"].as_i64().unwrap());
}

async fn pages_by_cursor_without_gaps_or_repeats(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-H002", 62, "alice", PIN).await;
    let token = t.login(&mut device).await;
    for i in 0..5 {
        t.prepare(&token, 100 + i, &format!("page-{i}")).await;
    }
    let (_, all) = t.get("/v1/payments?limit=100", Some(&token)).await;
    let all = ids(&all);
    assert_eq!(all.len(), 5);

    let mut seen = Vec::new();
    let mut path = "/v1/payments?limit=2".to_owned();
    loop {
        let (status, page) = t.get(&path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let got = ids(&page);
        assert!(got.len() <= 2, "{page}");
        seen.extend(got);
        match page["next_before"].as_str() {
            Some(cursor) => path = format!("/v1/payments?limit=2&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, all, "pages, joined, are the whole history in order");
}

async fn only_the_sessions_customer_and_bad_queries_refused(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut alice = t.provision("PP-H003", 63, "alice", PIN).await;
    let alice_token = t.login(&mut alice).await;
    t.prepare(&alice_token, 900, "alice-1").await;
    let mut bob = t.provision("PP-H004", 64, "bob", PIN).await;
    let bob_token = t.login(&mut bob).await;

    let (status, page) = t.get("/v1/payments", Some(&bob_token)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["payments"].as_array().unwrap().len(), 0, "{page}");

    let (status, body) = t.get("/v1/payments", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "before=nonsense",
        "before=12.",
    ] {
        let (status, body) = t
            .get(&format!("/v1/payments?{query}"), Some(&alice_token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "invalid_request", "{query}: {body}");
    }
}

macro_rules! on_both_databases {
    ($($flow:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $flow() {
                    super::$flow(super::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $flow() {
                    super::$flow(super::Db::Postgres).await;
                }
            )*
        }
    };
}

on_both_databases!(
    statement_with_outcomes_and_journal,
    pages_by_cursor_without_gaps_or_repeats,
    only_the_sessions_customer_and_bad_queries_refused,
);
