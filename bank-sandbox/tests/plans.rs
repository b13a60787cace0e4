//! How PostgreSQL runs the group commit's bulk prepare, from `pg_stat_statements` (which
//! scripts/postgres.sh loads): planned once, not per batch (a custom plan per batch cost the
//! backend 0.38 ms against 0.14 ms of running it), and planned again at its tenth run, when
//! `payments` has grown: in the load test the plan made on the empty table hashed all of
//! `payments` for the idempotency check in every batch. Blocks read per run tell a scan of
//! the grown table from index lookups (here, with one customer, even the first plan looks
//! rows up by index: the plan counts pin the replanning).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bank_sandbox::bank::BankConfig;
use reqwest::StatusCode;
use sqlx::Connection;
use sqlx::Row;
use support::TestBank;

const PIN: &str = "4321";
/// Rows added to `payments` after the statement was first planned: a scan of them reads
/// well over a thousand blocks (half-full pages), index lookups a few dozen.
const FILL: i64 = 20_000;

/// `(calls, plans, shared blocks hit)` of the batch prepare since the last reset.
async fn prepare_stats(t: &TestBank) -> (i64, i64, i64) {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(calls), 0)::int8 AS calls, COALESCE(SUM(plans), 0)::int8 AS plans, \
         COALESCE(SUM(shared_blks_hit + shared_blks_read), 0)::int8 AS blocks \
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND query LIKE 'WITH input AS (SELECT * FROM unnest($1::int8[], $2::text[]%'",
    )
    .fetch_one(t.bank.store().reader())
    .await
    .unwrap();
    (
        row.try_get("calls").unwrap(),
        row.try_get("plans").unwrap(),
        row.try_get("blocks").unwrap(),
    )
}

async fn reset_stats(t: &TestBank) {
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(t.bank.store().reader())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bulk_prepare_is_planned_once_and_again_as_payments_grow() {
    let Some(base) = support::postgres_url() else {
        return;
    };
    let database = support::fresh_postgres_database(&base).await;
    // Planning counted for this database's connections only (the bank's, opened below).
    let mut admin = sqlx::AnyConnection::connect(&database).await.unwrap();
    let name: String = sqlx::query("SELECT current_database()::text")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    for sql in [
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements".to_owned(),
        format!("ALTER DATABASE {name} SET pg_stat_statements.track_planning = on"),
    ] {
        sqlx::query(&sql)
            .execute(&mut admin)
            .await
            .expect("the test cluster loads pg_stat_statements (scripts/postgres.sh)");
    }
    let t = TestBank::start_on(
        tempfile::tempdir().unwrap(),
        database,
        BankConfig::default(),
    )
    .await;
    let pool = t.bank.store().reader();

    let mut device = t.provision("PP-PLAN-1", 61, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let mut pay = async |n: usize| {
        for _ in 0..n {
            let (status, body) = t.pay(&token, &mut device, 100, PIN).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["result"], "approved", "{body}");
        }
    };
    reset_stats(&t).await;
    // Planned once, on a nearly empty table.
    pay(3).await;
    let (calls, plans, _) = prepare_stats(&t).await;
    assert_eq!(
        calls, 3,
        "every prepare, the session's first too, ran as the batch statement"
    );
    assert_eq!(plans, 1, "one plan for {calls} runs");

    let template: String = sqlx::query("SELECT transaction_id FROM payments LIMIT 1")
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    sqlx::query(
        "INSERT INTO payments (transaction_id, kind, customer_id, binding_id, session_id, \
         idempotency_key, payer_account, payee_account, payee_name, amount_minor, currency, exponent, \
         reference, bank_counter, request, status, created_by, created_at, expires_at) \
         SELECT 'TX-FILL-' || g, kind, customer_id, binding_id, session_id, 'fill-' || g, payer_account, \
         payee_account, payee_name, amount_minor, currency, exponent, reference, bank_counter, request, \
         'declined', created_by, created_at, expires_at FROM payments, generate_series(1, $1) g \
         WHERE transaction_id = $2",
    )
    .bind(FILL)
    .bind(template)
    .execute(pool)
    .await
    .unwrap();

    // The tenth run prepares the statement again, on the grown table.
    pay(9).await;
    let (calls, plans, _) = prepare_stats(&t).await;
    assert_eq!((calls, plans), (12, 2), "planned again at the tenth run");
    reset_stats(&t).await;
    pay(5).await;
    let (calls, plans, blocks) = prepare_stats(&t).await;
    assert_eq!(calls, 5);
    assert_eq!(plans, 0, "the batch prepare reuses its plan ({calls} runs)");
    assert!(
        blocks < 100 * calls,
        "{blocks} blocks in {calls} runs: the plan reads all of payments"
    );
}
