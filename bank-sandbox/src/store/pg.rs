//! The PostgreSQL group commit: several workers, each running a batch of jobs in one
//! transaction on a pooled connection.

use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::mpsc;

use super::{GroupCommitStats, Job, PG_MAX_BATCH, Reply, StoreError, WriteInner, WriteTx};

/// Runs a PostgreSQL batch's jobs in `tx`, each after a savepoint; a failed job's writes
/// are rolled back to it. Then the successful jobs' credits are applied. An `Err` means a
/// savepoint step or a credit failed: the batch must not commit (jobs not run yet are
/// dropped, and their callers get `CommitFailed`).
async fn run_batch(
    tx: &mut WriteTx,
    batch: Vec<Job>,
    replies: &mut Vec<Reply>,
) -> Result<(), StoreError> {
    // The first savepoint came with BEGIN (see `pg_group_commit`).
    let mut step = None;
    for job in batch {
        if let Some(step) = step {
            tx.simple(step).await?;
        }
        let (ok, reply) = job(tx).await;
        tx.credits.job_done(ok);
        replies.push(reply);
        step = Some(if ok {
            "RELEASE job; SAVEPOINT job"
        } else {
            "ROLLBACK TO job; RELEASE job; SAVEPOINT job"
        });
    }
    // The last job's step: a failed job's writes are undone before the commit.
    if step.is_some_and(|step| step.starts_with("ROLLBACK")) {
        tx.simple("ROLLBACK TO job").await?;
    }
    tx.apply_credits().await
}

/// The group commit on PostgreSQL: the same contract as [`super::group_commit`] (each job after a
/// savepoint, one commit per batch, nobody answered before it), run by several workers at
/// once, each taking the jobs waiting when it is free and running them on a pooled
/// connection. `synchronous_commit` stays on: a commit returns once its WAL is flushed, and
/// concurrent commits share the flush (PostgreSQL's own group commit), so a batch of jobs
/// costs one commit round trip and, at most, one WAL flush. The savepoint steps are sent as
/// one simple-protocol message each ("BEGIN; SAVEPOINT job", "RELEASE job; SAVEPOINT job").
pub(super) async fn pg_group_commit(
    pool: AnyPool,
    jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    stats: Arc<GroupCommitStats>,
) {
    loop {
        let batch = {
            let mut queue = jobs.lock().await;
            let Some(first) = queue.recv().await else {
                return; // every sender (every clone of the store) is gone
            };
            let mut batch = vec![first];
            while batch.len() < PG_MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let size = batch.len();
        let mut replies = Vec::with_capacity(size);
        // BEGIN and the first job's savepoint in one message (one round trip less per batch).
        let mut committed = match pool.begin_with("BEGIN; SAVEPOINT job").await {
            Ok(tx) => Ok(WriteTx::new(WriteInner::Postgres(tx))),
            Err(e) => Err(StoreError::from(e)),
        };
        if let Ok(tx) = &mut committed
            && let Err(e) = run_batch(tx, batch, &mut replies).await
        {
            committed = Err(e);
        }
        let committed = match committed {
            Ok(tx) => match tx.inner {
                WriteInner::Postgres(tx) => tx.commit().await.map_err(StoreError::from),
                WriteInner::Sqlite(_) => Err(StoreError::CommitFailed),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &committed {
            // The transaction rolls back when dropped (the connection returns to the pool
            // clean, or is closed).
            tracing::error!(error = %e, "group commit failed; its jobs are answered with an error");
        }
        let ok = committed.is_ok();
        if ok {
            stats.record(size);
        }
        for reply in replies {
            reply(ok);
        }
    }
}
