//! SQLite checkpoints off the commit path.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that takes the log past a thousand
//! pages: it copies the log's pages into the database file and fsyncs it, and the batch
//! being committed (and every job queued behind it) waits for that. At 5,000 payments/s
//! that was the tail: p99 294 ms against 12.4 ms at 4,000/s (2026-12-04).
//!
//! Here a thread of its own copies the log into the database (a passive checkpoint on its
//! own connection, alongside the writer) shortly after commits. A passive checkpoint never
//! catches up with a writer that keeps committing, and the log restarts from its beginning
//! only once every page in it was copied, so when the log is long the writer finishes the
//! job itself between two batches: what is left is what was committed since the last
//! background pass, a few batches' pages, and its next transaction restarts the log.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::StoreError;

/// Log pages past which the writer finishes a checkpoint (SQLite's automatic threshold).
const FINISH_AFTER_PAGES: i64 = 1000;

/// How long the background thread lets commits gather before a pass.
const PASS_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct Shared {
    /// Commits since the last pass.
    committed: Mutex<bool>,
    wake: Condvar,
    /// The log is long and mostly copied: the writer should finish the checkpoint.
    finish: AtomicBool,
}

/// The writer's side of the background checkpoints.
#[derive(Debug, Clone)]
pub(super) struct Checkpoints {
    shared: Arc<Shared>,
}

/// `(busy, pages in the log, pages copied)` of a passive checkpoint.
fn passive(connection: &rusqlite::Connection) -> rusqlite::Result<(i64, i64, i64)> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
}

impl Checkpoints {
    /// Turns the writer's automatic checkpoints off and starts the background thread on a
    /// connection of its own (`pragmas`: the store's, so its fsyncs are the writer's).
    pub(super) fn start(
        writer: &rusqlite::Connection,
        path: &Path,
        pragmas: &str,
    ) -> Result<Self, StoreError> {
        let connection = rusqlite::Connection::open(path)?;
        connection.execute_batch(pragmas)?;
        writer.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let shared = Arc::new(Shared::default());
        let background = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                // Ends when the writer (the only other holder) is gone.
                while let Some(shared) = background.upgrade() {
                    {
                        let committed = shared.committed.lock().unwrap_or_else(|p| p.into_inner());
                        let (mut committed, _) = shared
                            .wake
                            .wait_timeout_while(committed, Duration::from_secs(1), |c| !*c)
                            .unwrap_or_else(|p| p.into_inner());
                        if !*committed {
                            continue;
                        }
                        *committed = false;
                    }
                    std::thread::sleep(PASS_INTERVAL);
                    match passive(&connection) {
                        Ok((_, log, _)) if log >= FINISH_AFTER_PAGES => {
                            shared.finish.store(true, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "background checkpoint"),
                    }
                }
            })
            .map_err(StoreError::WriterThread)?;
        Ok(Self { shared })
    }

    /// A batch committed.
    pub(super) fn committed(&self) {
        let mut committed = self
            .shared
            .committed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !*committed {
            *committed = true;
            self.shared.wake.notify_one();
        }
    }

    /// Between batches: when the log is long, copies the rest of it on the writer's
    /// connection (the background pass copied the bulk), so that the next transaction
    /// restarts the log.
    pub(super) fn between_batches(&self, writer: &rusqlite::Connection) {
        if self.shared.finish.swap(false, Ordering::Relaxed)
            && let Err(e) = passive(writer)
        {
            tracing::warn!(error = %e, "checkpoint between batches");
        }
    }
}
