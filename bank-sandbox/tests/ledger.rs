//! The ledger's edges (issue 14, items 3 and 4), over real HTTP on SQLite and PostgreSQL:
//! a payment to an internal account held in another currency is refused before any debit,
//! and the schema's foreign keys refuse rows that point at nothing (an account for a
//! customer that does not exist is `unknown_customer` 404, and stays absent).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bank_sandbox::bank::BankConfig;
use reqwest::StatusCode;
use serde_json::json;
use support::{Db, TestBank};

const PIN: &str = "4321";

async fn bank(db: Db) -> Option<TestBank> {
    TestBank::start(db, BankConfig::default()).await
}

/// Balances of every account, by number (through the database: also accounts of nobody).
async fn balances(t: &TestBank) -> Vec<(String, i64)> {
    let store = t.bank.store();
    let rows =
        sqlx::query("SELECT account_number, balance_minor FROM accounts ORDER BY account_number")
            .fetch_all(store.reader())
            .await
            .unwrap();
    rows.iter()
        .map(|r| {
            (
                sqlx::Row::try_get(r, "account_number").unwrap(),
                sqlx::Row::try_get(r, "balance_minor").unwrap(),
            )
        })
        .collect()
}

async fn count(t: &TestBank, sql: &str) -> i64 {
    let row = sqlx::query(sql)
        .fetch_one(t.bank.store().reader())
        .await
        .unwrap();
    sqlx::Row::try_get(&row, 0).unwrap()
}

async fn currency_mismatch_is_refused_before_any_debit(db: Db) {
    let Some(t) = bank(db).await else { return };
    // Bob also holds a dollar account at this bank.
    let (status, body) = t
        .post(
            "/v1/customers/bob/accounts",
            Some(&t.teller),
            json!({"account_number": "US-BOB-1", "name": "Bob USD", "currency": "USD",
                   "exponent": 2, "balance_minor": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut device = t.provision("PP-0301", 31, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let before = balances(&t).await;

    // Alice pays euros into Bob's dollar account: refused when the payment is prepared,
    // in the JSON error shape, naming both currencies; nothing is prepared or debited.
    let (status, body) = t
        .post(
            "/v1/payments",
            Some(&token),
            json!({"payee_account": "US-BOB-1", "payee_name": "Bob", "amount_minor": 1_000,
                   "currency": "EUR", "idempotency_key": "fx-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "currency_mismatch", "{body}");
    assert_eq!(body["payee_currency"], "USD", "{body}");
    assert!(body["message"].as_str().unwrap().contains("USD"), "{body}");
    assert_eq!(balances(&t).await, before);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM payments").await, 0);
    assert_eq!(count(&t, "SELECT COUNT(*) FROM journal").await, 0);

    // The same payee in its own currency is fine as far as currency goes (Alice has no
    // dollar account to pay from: unknown_account), and a euro payment elsewhere still works.
    let (status, body) = t
        .post(
            "/v1/payments",
            Some(&token),
            json!({"payee_account": "US-BOB-1", "payee_name": "Bob", "amount_minor": 1_000,
                   "currency": "USD", "idempotency_key": "fx-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "unknown_account", "{body}");
    let (status, body) = t.pay(&token, &mut device, 700, PIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "approved");

    // An out-of-band confirmation to the dollar account is refused when the terminal
    // creates it, before the customer is asked.
    let (status, body) = t
        .post(
            "/v1/confirmations",
            Some(&t.terminal),
            json!({"customer_id": "alice", "payee_account": "US-BOB-1",
                   "payee_name": "Bob", "amount_minor": 500, "currency": "EUR",
                   "idempotency_key": "fx-3"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "currency_mismatch", "{body}");
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM payments WHERE payee_account = 'US-BOB-1'"
        )
        .await,
        0
    );
}

async fn foreign_keys_refuse_dangling_rows(db: Db) {
    let Some(t) = bank(db).await else { return };
    // An account for a customer that does not exist: 404 unknown_customer, nothing stored,
    // and a customer created later under that id owns no balance.
    let (status, body) = t
        .post(
            "/v1/customers/nobody/accounts",
            Some(&t.teller),
            json!({"account_number": "GHOST-1", "name": "Ghost", "currency": "EUR",
                   "exponent": 2, "balance_minor": 5_000_000}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "unknown_customer", "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM accounts WHERE account_number = 'GHOST-1'"
        )
        .await,
        0
    );
    let (status, body) = t
        .post(
            "/v1/customers",
            Some(&t.teller),
            json!({"customer_id": "nobody", "name": "No Body",
                   "pin_account_number": "4000001111111111"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = t
        .get("/v1/customers/nobody/accounts", Some(&t.teller))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accounts"], json!([]), "{body}");

    // The schema itself refuses rows that point at nothing (whatever code writes them).
    let store = t.bank.store();
    for sql in [
        "INSERT INTO bindings (binding_id, device_serial, customer_id, pin_account_number, status, created_at) \
         VALUES ('B-X', 'NO-DEVICE', 'alice', '4000001234567899', 'pending', 0)",
        "INSERT INTO payments (transaction_id, kind, customer_id, binding_id, idempotency_key, payer_account, \
         payee_account, payee_name, amount_minor, currency, exponent, reference, request, status, created_by, \
         created_at, expires_at) VALUES ('TX-X', 'device', 'alice', 'NO-BINDING', 'k', 'DE89370400440532013000', \
         'P', 'P', 1, 'EUR', 2, '', '', 'prepared', 'customer', 0, 0)",
        "INSERT INTO journal (transaction_id, payer_account, payee_account, amount_minor, currency, created_at) \
         VALUES ('NO-PAYMENT', 'DE89370400440532013000', 'P', 1, 'EUR', 0)",
        "INSERT INTO device_commands (serial, sequence, kind, message, issued_by, created_at) \
         VALUES ('NO-DEVICE', 1, 'lock', '', 'teller', 0)",
    ] {
        let error = sqlx::query(sql)
            .execute(store.writer())
            .await
            .expect_err(sql);
        let is_fk = matches!(&error, sqlx::Error::Database(e) if e.is_foreign_key_violation());
        assert!(is_fk, "{sql}: {error}");
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
    currency_mismatch_is_refused_before_any_debit,
    foreign_keys_refuse_dangling_rows,
);
