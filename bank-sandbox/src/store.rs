//! The store: SQLite (a file, created and migrated on first start) or PostgreSQL, through
//! sqlx's `Any` driver so one set of queries serves both.
//!
//! Queries are written with `?` placeholders and translated to `$1, $2, …` for PostgreSQL.
//! SQLite allows one writer at a time, so writes go through a pool of one connection (no
//! `SQLITE_BUSY` under load) while reads use several; PostgreSQL uses one pool for both.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL (use sqlite://PATH or postgres://...)")]
    UnsupportedUrl,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A group commit failed: the write was not made.
    #[error("the write transaction did not commit")]
    CommitFailed,
    /// The group-commit writer thread could not start.
    #[error("cannot start the group-commit writer: {0}")]
    WriterThread(std::io::Error),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A future borrowing a connection, as [`Store::write`] jobs return.
pub type ConnFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// What the group-commit writer calls once the batch's commit is known: `true` if committed.
type Reply = Box<dyn FnOnce(bool) + Send>;
/// A job for the group-commit writer: runs in a savepoint, says whether it succeeded.
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> ConnFuture<'c, (bool, Reply)> + Send>;

/// Most jobs one group commit takes.
const MAX_BATCH: usize = 256;

/// Most reader connections on SQLite: each is a thread of its own in sqlx, and on a small
/// machine more threads than cores only add context switches.
const SQLITE_MAX_READERS: u32 = 4;

/// How the group commit has batched so far (SQLite).
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    commits: AtomicU64,
    jobs: AtomicU64,
    largest: AtomicU64,
}

impl GroupCommitStats {
    fn record(&self, jobs: usize) {
        let jobs = jobs as u64;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(jobs, Ordering::Relaxed);
        self.largest.fetch_max(jobs, Ordering::Relaxed);
    }

    /// Transactions committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Write jobs they carried.
    pub fn jobs(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// Most jobs in one commit.
    pub fn largest(&self) -> u64 {
        self.largest.load(Ordering::Relaxed)
    }
}

/// Connection pools and the SQL dialect.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    write: AnyPool,
    read: AnyPool,
    batcher: Option<mpsc::UnboundedSender<Job>>,
    stats: Arc<GroupCommitStats>,
}

/// Helps type inference of [`Store::write`] closures (higher-ranked over the connection).
pub fn job<T, F>(f: F) -> F
where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> ConnFuture<'c, T>,
{
    f
}

/// The group-commit writer (SQLite): takes every job waiting, runs each after a savepoint
/// (a failing job is rolled back to it alone) inside one transaction, commits once, then
/// answers them all. One fsync serves the batch, and no job is answered before its writes
/// are durable.
async fn group_commit(
    pool: AnyPool,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    stats: Arc<GroupCommitStats>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let mut replies = Vec::with_capacity(size);
        let committed = async {
            let mut conn = pool.acquire().await?;
            let mut tx = conn.begin().await?;
            // One savepoint marks where the current job started. Each statement is a round
            // trip to the connection's thread, so moving the mark past a finished job
            // (release, set again) is one multi-statement call, not two.
            tx.execute("SAVEPOINT job").await?;
            for job in batch {
                let (ok, reply) = job(&mut tx).await;
                replies.push(reply);
                if ok {
                    tx.execute("RELEASE job; SAVEPOINT job").await?;
                } else {
                    // Undoes this job's writes; the mark stays for the next job.
                    tx.execute("ROLLBACK TO job").await?;
                }
            }
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if let Err(e) = &committed {
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

/// Runs the group commit on a thread of its own with a single-threaded runtime. The writer
/// is the one serial part of the store: each of its statements is a round trip to the
/// connection's thread, and on the server's runtime every one of those waits behind the
/// HTTP tasks ready at the time, which under load makes each batch several times longer.
fn spawn_group_commit(
    pool: AnyPool,
    jobs: mpsc::UnboundedReceiver<Job>,
    stats: Arc<GroupCommitStats>,
) -> Result<(), StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StoreError::WriterThread)?;
    std::thread::Builder::new()
        .name("group-commit".into())
        // Ends when every sender (every clone of the store) is gone.
        .spawn(move || runtime.block_on(group_commit(pool, jobs, stats)))
        .map_err(StoreError::WriterThread)?;
    Ok(())
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Environment variable choosing SQLite's `synchronous` setting: `FULL` (default: a commit
/// is fsynced before the answer goes out, so it survives power loss) or `NORMAL` (WAL
/// commits survive a killed process but may be lost on power failure).
pub const SQLITE_SYNCHRONOUS_ENV: &str = "PINBRIDGE_SQLITE_SYNCHRONOUS";

/// SQLite durability and concurrency settings, applied to every connection: WAL, the
/// `synchronous` level, a busy timeout for the readers.
fn sqlite_pragmas() -> String {
    let synchronous = match std::env::var(SQLITE_SYNCHRONOUS_ENV) {
        Ok(value) if value.eq_ignore_ascii_case("normal") => "NORMAL",
        _ => "FULL",
    };
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
    )
}

impl Store {
    /// Connects (creating an SQLite file if missing) and applies the migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let store = match backend {
            Backend::Sqlite => {
                let url = sqlite_url_with_create(url);
                let options = AnyConnectOptions::from_str(&url)?;
                let pragmas: std::sync::Arc<str> = sqlite_pragmas().into();
                let pool = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(Duration::from_secs(30))
                        // No ping on every acquire: it is one more round trip to the
                        // connection's thread per query, and a local file does not drop.
                        .test_before_acquire(false)
                        .after_connect({
                            let pragmas = pragmas.clone();
                            move |conn, _meta| {
                                let pragmas = pragmas.clone();
                                Box::pin(async move {
                                    conn.execute(&*pragmas).await?;
                                    Ok(())
                                })
                            }
                        })
                };
                let write = pool(1).connect_with(options.clone()).await?;
                let read = pool(max_connections.clamp(1, SQLITE_MAX_READERS))
                    .connect_with(options)
                    .await?;
                let (sender, receiver) = mpsc::unbounded_channel();
                let stats = Arc::new(GroupCommitStats::default());
                spawn_group_commit(write.clone(), receiver, stats.clone())?;
                Self {
                    backend,
                    write,
                    read,
                    batcher: Some(sender),
                    stats,
                }
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(30))
                    // A dropped connection fails its query and leaves the pool; a ping
                    // before every query would double the round trips to the server.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Self {
                    backend,
                    write: pool.clone(),
                    read: pool,
                    batcher: None,
                    stats: Arc::default(),
                }
            }
        };
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&store.write).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&store.write).await?,
        }
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How the SQLite group commit has batched (all zero on PostgreSQL).
    pub fn group_commit_stats(&self) -> &GroupCommitStats {
        &self.stats
    }

    /// The pool for writes (and reads that must see the latest writes in a transaction).
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// The pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.write.begin().await?)
    }

    /// Runs `f` in a write transaction and returns its result once committed. An `Err` from
    /// `f` rolls its writes back. On SQLite the transaction is shared with other concurrent
    /// writes (group commit, each in its own savepoint); on PostgreSQL it is its own.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> ConnFuture<'c, Result<T, E>> + Send + 'static,
    {
        let Some(batcher) = &self.batcher else {
            let mut tx = self.write.begin().await.map_err(StoreError::from)?;
            let value = f(&mut tx).await?;
            tx.commit().await.map_err(StoreError::from)?;
            return Ok(value);
        };
        let (sender, receiver) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                let ok = result.is_ok();
                let reply: Reply = Box::new(move |committed| {
                    let answer = match result {
                        Ok(_) if !committed => Err(E::from(StoreError::CommitFailed)),
                        other => other,
                    };
                    let _ = sender.send(answer);
                });
                (ok, reply)
            })
        });
        batcher
            .send(job)
            .map_err(|_| E::from(StoreError::CommitFailed))?;
        receiver
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::CommitFailed)))
    }

    /// `sql` in this backend's placeholder syntax.
    pub fn q<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        match self.backend {
            Backend::Sqlite => Cow::Borrowed(sql),
            Backend::Postgres => Cow::Owned(numbered_placeholders(sql)),
        }
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// `sqlite://path` with `mode=rwc` so a missing file is created.
fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Rewrites `?` placeholders (outside string literals) as `$1, $2, …`.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut in_literal = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_literal = !in_literal;
                out.push(c);
            }
            '?' if !in_literal => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2"
        );
    }

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db"),
            "sqlite://a.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_with_create("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(sqlite_url_with_create("sqlite::memory:"), "sqlite::memory:");
    }
}
