//! Store tests on SQLite and PostgreSQL: migrations on first open (and idempotent reopen),
//! and `Store::write`: a failing write rolls back alone while concurrent ones commit (the
//! SQLite group commit runs them in one transaction, each in its own savepoint), its
//! credits too (applied at the end of the batch).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bank_sandbox::error::BankError;
use bank_sandbox::store::{BulkStep, Store, WriteRow, bulk_job, job};
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

/// How a job of [`every_way_a_job_ends_is_kept_apart`] ends.
fn job_kind(i: i64) -> i64 {
    i % 5
}

/// Jobs that end every way a job can, run concurrently so that they share batches: written
/// and succeeded (0), refused by the database (1: a taken key), failed before writing
/// anything (2), written and then failed (3), succeeded without writing (4). Only the first
/// kind's rows are stored. On PostgreSQL the savepoint steps go out with the next job's
/// statement, so a job that writes nothing must leave the previous job's step as it was.
async fn every_way_a_job_ends_is_kept_apart(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = url(db, &dir).await else {
        return;
    };
    let store = Store::open(&url, 4).await.unwrap();
    sqlx::query(
        &store.q("INSERT INTO bank_keys (name, key_block, created_at) VALUES ('taken', 'k', -1)"),
    )
    .execute(store.writer())
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(job(move |conn| {
                    Box::pin(async move {
                        let name = match job_kind(i) {
                            1 => "taken".to_owned(),
                            2 => return Err(BankError::conflict("early", "before any write")),
                            4 => return Ok(i),
                            _ => format!("K{i}"),
                        };
                        conn.execute(INSERT, vec![name.into(), i.into()]).await?;
                        if job_kind(i) == 3 {
                            return Err(BankError::conflict("late", "after a write"));
                        }
                        Ok::<_, BankError>(i)
                    })
                }))
                .await
        }));
    }
    for (i, task) in (0..).zip(tasks) {
        let result = task.await.unwrap().map_err(|e| e.code);
        match job_kind(i) {
            0 | 4 => assert_eq!(result, Ok(i)),
            1 => assert!(result.is_err(), "job {i}: a taken key"),
            2 => assert_eq!(result, Err("early")),
            _ => assert_eq!(result, Err("late")),
        }
    }
    let rows = sqlx::query("SELECT created_at FROM bank_keys WHERE created_at >= 0")
        .fetch_all(store.reader())
        .await
        .unwrap();
    let mut stored: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("created_at").unwrap())
        .collect();
    stored.sort();
    let expected: Vec<i64> = (0..200).filter(|i| job_kind(*i) == 0).collect();
    assert_eq!(
        stored, expected,
        "exactly the written and succeeded jobs' rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_way_a_job_ends() {
    every_way_a_job_ends_is_kept_apart(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_way_a_job_ends() {
    every_way_a_job_ends_is_kept_apart(Db::Postgres).await;
}

/// A job after a failed one in the same batch runs a statement the connection has not
/// prepared yet (its first use, or a new plan after its tenth run): PostgreSQL refuses to
/// prepare in the transaction the failure aborted, so the failed job's rollback must go out
/// first. Job 0 holds the worker while the failing job and the next are queued, so both
/// share the next batch, in that order.
async fn first_use_after_a_failed_job(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = url(db, &dir).await else {
        return;
    };
    let store = Store::open(&url, 2).await.unwrap();
    sqlx::query(
        &store.q("INSERT INTO bank_keys (name, key_block, created_at) VALUES ('taken', 'k', -1)"),
    )
    .execute(store.writer())
    .await
    .unwrap();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    let holder = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .write(job(move |_| {
                    Box::pin(async move {
                        let _ = started.send(());
                        let _ = gate.await;
                        Ok::<_, BankError>(())
                    })
                }))
                .await
        }
    });
    running.await.unwrap();
    let failing = store.write(job(|conn| {
        Box::pin(async move {
            conn.execute(INSERT, vec!["taken".into(), 1.into()]).await?;
            Ok::<_, BankError>(())
        })
    }));
    let next = store.write(job(|conn| {
        Box::pin(async move {
            // Another statement than INSERT: prepared here for the first time.
            conn.execute(
                "INSERT INTO bank_keys (name, key_block, created_at) VALUES (?, 'next', ?)",
                vec!["after".into(), 2.into()],
            )
            .await?;
            Ok::<_, BankError>(())
        })
    }));
    // `join!` polls in order: both writes are queued before the holder lets the worker go.
    let (failed, next, ()) = tokio::join!(failing, next, async {
        let _ = release.send(());
    });
    holder.await.unwrap().unwrap();
    assert!(failed.is_err(), "a taken key");
    assert_eq!(next.map_err(|e| e.code), Ok(()), "the job after it");
    let after: i64 = sqlx::query(&store.q("SELECT created_at FROM bank_keys WHERE name = 'after'"))
        .fetch_one(store.reader())
        .await
        .unwrap()
        .try_get("created_at")
        .unwrap();
    assert_eq!(after, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_first_use_after_a_failed_job() {
    first_use_after_a_failed_job(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_first_use_after_a_failed_job() {
    first_use_after_a_failed_job(Db::Postgres).await;
}

/// The PostgreSQL group commit outlives its connections: when the server ends them (a
/// restart, an administrator), the batch on a dead connection fails as a whole (nothing of
/// it stored, its callers told) and the next batches run on new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_group_commit_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = url(Db::Postgres, &dir).await else {
        return;
    };
    // Two workers: each connection ended must be replaced.
    let store = Store::open_with_workers(&url, 2, 2).await.unwrap();
    let write = |i: i64| {
        let store = store.clone();
        async move {
            store
                .write(job(move |conn| {
                    Box::pin(async move {
                        conn.execute(INSERT, vec![format!("R{i}").into(), i.into()])
                            .await?;
                        Ok::<_, BankError>(i)
                    })
                }))
                .await
        }
    };
    assert_eq!(write(0).await.map_err(|e| e.code), Ok(0));
    let ended: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'bank-sandbox group commit') t",
    )
    .fetch_one(store.reader())
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert!(
        ended >= 2,
        "the group commit's connections are named ({ended} found)"
    );
    let mut stored = vec![0];
    let mut ok_in_a_row = 0;
    for i in 1..100 {
        match write(i).await {
            Ok(_) => {
                stored.push(i);
                ok_in_a_row += 1;
                if ok_in_a_row == 5 {
                    break;
                }
            }
            Err(e) => {
                assert_eq!(e.code, "internal_error", "{e:?}");
                ok_in_a_row = 0;
            }
        }
    }
    assert_eq!(ok_in_a_row, 5, "writes succeed again on new connections");
    let rows = sqlx::query("SELECT created_at FROM bank_keys ORDER BY created_at")
        .fetch_all(store.reader())
        .await
        .unwrap();
    let found: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("created_at").unwrap())
        .collect();
    assert_eq!(found, stored, "exactly the acknowledged writes are stored");
}

/// SQLite's checkpoints run beside the writer, not inside its commits: under a steady
/// stream of commits the log must still restart from its beginning (a checkpoint that
/// never finds the whole log copied lets it grow without bound: one such attempt grew it
/// past a gigabyte in ten seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_stays_bounded_under_steady_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), 2)
        .await
        .unwrap();
    // About 60 MiB of rows, in batches of up to 64 concurrent writes.
    let blob = "x".repeat(3000);
    for round in 0..313i64 {
        let mut tasks = Vec::new();
        for i in 0..64i64 {
            let (store, blob) = (store.clone(), blob.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .write(job(move |conn| {
                        Box::pin(async move {
                            conn.execute(
                                "INSERT INTO bank_keys (name, key_block, created_at) VALUES (?, ?, 0)",
                                vec![format!("W{round}-{i}").into(), blob.into()],
                            )
                            .await?;
                            Ok::<_, BankError>(())
                        })
                    }))
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }
    let log = std::fs::metadata(dir.path().join("s.db-wal"))
        .unwrap()
        .len();
    assert!(
        log < 24 << 20,
        "the log restarts: {} MiB after about 60 MiB of commits",
        log >> 20
    );
}

/// A bulk statement that fails (here a division by zero for one job's value) is rolled back
/// with its batch, which runs again job by job: every job then takes its own path (no row),
/// and nothing the failed statement wrote stays. One that writes part of a job's step
/// (refused by the step's check) is rolled back the same way.
async fn a_failed_bulk_statement_runs_its_batch_job_by_job(refuse: fn(&WriteRow) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = url(Db::Postgres, &dir).await else {
        return;
    };
    let store = Store::open(&url, 4).await.unwrap();
    const BULK: &str = "WITH input AS (SELECT * FROM unnest($1::int8[], $2::int8[]) AS i(ord, v)), \
         ins AS (INSERT INTO bank_keys (name, key_block, created_at) \
         SELECT 'bulk' || i.v, 'k', 100 / (i.v - 13) FROM input i RETURNING 1) \
         SELECT i.ord, i.v FROM input i";
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let step = BulkStep::new(BULK, vec![i.into()], vec![format!("k{i}")], refuse);
            store
                .write_bulk(
                    Some(step),
                    bulk_job(move |conn, row| {
                        Box::pin(async move {
                            if let Some(row) = row {
                                assert_eq!(row.int(1)?, i);
                                return Ok::<_, BankError>(true);
                            }
                            conn.execute(INSERT, vec![format!("alone{i}").into(), i.into()])
                                .await?;
                            Ok(false)
                        })
                    }),
                )
                .await
        }));
    }
    let mut alone = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if !task.await.unwrap().unwrap() {
            alone.push(i as i64);
        }
    }
    let stats = store.group_commit_stats();
    assert!(stats.reruns() >= 1);
    assert!(alone.contains(&13), "{alone:?}");
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM bank_keys ORDER BY created_at")
        .fetch_all(store.reader())
        .await
        .unwrap();
    // One row per job: from the bulk statement, or from its own path when its batch ran again.
    assert_eq!(names.len(), 40, "{names:?}");
    for i in 0..40i64 {
        let expected = if alone.contains(&i) {
            format!("alone{i}")
        } else {
            format!("bulk{i}")
        };
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failed_bulk_statement_reruns_job_by_job() {
    a_failed_bulk_statement_runs_its_batch_job_by_job(|_| true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_half_done_bulk_row_reruns_job_by_job() {
    // Job 7's row is refused too (as a decision that advanced the counter but was not stored).
    a_failed_bulk_statement_runs_its_batch_job_by_job(|row| row.int(1).ok() != Some(7)).await;
}

/// A payment's decision changes its status: an index holding every payment's status moves
/// the payment's entry at each decision (two more leaf pages written per payment, in the log
/// and again in the file). Only the customer's pending confirmations are looked up by
/// status, so the status is indexed for those rows alone (that their lookup uses the index
/// is checked on the bank's own query, in `bank/confirm.rs`).
#[tokio::test]
async fn sqlite_status_is_indexed_only_for_pending_confirmations() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(Db::Sqlite, &dir).await.unwrap(), 2)
        .await
        .unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'payments' \
         AND sql IS NOT NULL",
    )
    .fetch_all(store.reader())
    .await
    .unwrap();
    let with_status: Vec<&String> = indexes.iter().filter(|s| s.contains("status")).collect();
    assert!(!with_status.is_empty(), "{indexes:?}");
    for sql in with_status {
        assert!(
            sql.contains("WHERE status = 'pending_confirmation'"),
            "an index of every payment's status: {sql}"
        );
    }
}
