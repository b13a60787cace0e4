//! Store tests on SQLite and PostgreSQL: migrations on first open (and idempotent reopen),
//! and `Store::write`: a failing write rolls back alone while concurrent ones commit (the
//! SQLite group commit runs them in one transaction, each in its own savepoint), its
//! credits too (applied at the end of the batch).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bank_sandbox::error::BankError;
use bank_sandbox::store::{Store, job};
use sqlx::Row;
use support::Db;

async fn url(db: Db, dir: &tempfile::TempDir) -> Option<String> {
    match db {
        Db::Sqlite => Some(format!("sqlite://{}", dir.path().join("s.db").display())),
        Db::Postgres => Some(support::fresh_postgres_database(&support::postgres_url()?).await),
    }
}

/// A table that references nothing (the journal's rows must point at a payment and an account).
const INSERT: &str = "INSERT INTO bank_keys (name, key_block, created_at) VALUES (?, 'k', ?)";

async fn concurrent_writes_commit_or_roll_back_alone(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = url(db, &dir).await else {
        return;
    };
    let store = Store::open(&url, 4).await.unwrap();
    // An account without a customer (as a payee of another bank's customer would be).
    sqlx::query(&store.q(
        "INSERT INTO accounts (account_number, name, currency, exponent, balance_minor, created_at) \
         VALUES ('SHOP', 'shop', 'EUR', 2, 0, 0)",
    ))
    .execute(store.writer())
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(job(move |conn| {
                    Box::pin(async move {
                        conn.execute(INSERT, vec![format!("T{i}").into(), i.into()])
                            .await?;
                        // Applied at the end of the batch, only if this job succeeds; a
                        // credit in another currency than the account's changes nothing.
                        conn.credit_at_commit("SHOP", "EUR", i);
                        conn.credit_at_commit("SHOP", "USD", 1_000);
                        if i % 3 == 0 {
                            return Err(BankError::conflict("test", "rolled back on purpose"));
                        }
                        Ok::<_, BankError>(i)
                    })
                }))
                .await
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(i) => committed.push(i),
            Err(e) => assert_eq!(e.code, "test"),
        }
    }
    assert_eq!(committed.len(), 26);
    let rows = sqlx::query("SELECT created_at FROM bank_keys ORDER BY created_at")
        .fetch_all(store.reader())
        .await
        .unwrap();
    let mut stored: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("created_at").unwrap())
        .collect();
    stored.sort();
    committed.sort();
    assert_eq!(
        stored, committed,
        "exactly the successful writes are stored"
    );
    let balance: i64 =
        sqlx::query("SELECT balance_minor FROM accounts WHERE account_number = 'SHOP'")
            .fetch_one(store.reader())
            .await
            .unwrap()
            .try_get("balance_minor")
            .unwrap();
    assert_eq!(
        balance,
        committed.iter().sum::<i64>(),
        "exactly the successful jobs' credits are applied"
    );
    // A second entry under a stored key is told apart from other failures (the payments'
    // idempotency and exactly-once journal rely on it), and leaves nothing behind.
    let duplicate = store
        .write(job(|conn| {
            Box::pin(async move {
                conn.execute(INSERT, vec!["T1".into(), 1000i64.into()])
                    .await
                    .map_err(|e| {
                        if e.is_unique_violation() {
                            BankError::conflict("duplicate", "the key is taken")
                        } else {
                            e.into()
                        }
                    })
            })
        }))
        .await;
    assert_eq!(duplicate.map_err(|e| e.code), Err("duplicate"));
    store.close().await;
    // Reopening runs the migrations again without harm and sees the data.
    let store = Store::open(&url, 2).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM bank_keys")
        .fetch_one(store.reader())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(n, 26);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writes() {
    concurrent_writes_commit_or_roll_back_alone(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writes() {
    concurrent_writes_commit_or_roll_back_alone(Db::Postgres).await;
}
