//! The store: SQLite (a file, created and migrated on first start) or PostgreSQL, through
//! sqlx's `Any` driver so one set of queries serves both.
//!
//! Queries are written with `?` placeholders and translated to `$1, $2, …` for PostgreSQL.
//! SQLite allows one writer at a time. The hot writes ([`Store::write`]: payments) go
//! through a group-commit writer with a connection of its own (rusqlite, in-process on the
//! writer's thread); the other writes through a pool of one connection whose transactions
//! begin IMMEDIATE, so the two writers wait for each other through the busy timeout instead
//! of failing. Reads use several connections. PostgreSQL uses one pool for everything, and
//! its hot writes go through a group commit too (one worker per core, each batch one
//! transaction on the worker's own connection, through `tokio-postgres`, which pipelines:
//! see [`pg`]).

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

use crate::credits::{Credit, Credits};

mod bulk;
mod checkpoint;
mod pg;
mod pg_tls;

pub use bulk::BulkStep;

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
    /// A PostgreSQL group-commit connection failed.
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The TLS set-up the URL asks for (sslmode, sslrootcert) cannot be made.
    #[error("database TLS: {0}")]
    Tls(String),
    /// The SQLite group-commit writer's connection failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A returned column did not have the type asked for.
    #[error("column {0} of a returned row has another type")]
    ColumnType(usize),
    /// A batch's bulk statement got values of another type than the statement's.
    #[error("a bulk step's values do not match its statement")]
    BulkMismatch,
    /// A bulk statement wrote part of a job's step: the batch is run again job by job.
    #[error("a bulk statement left a job's step half done")]
    BulkPartial,
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

/// A future borrowing a write transaction, as [`Store::write`] jobs return.
pub type ConnFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// What the group-commit writer calls once the batch's commit is known: `true` if committed.
type Reply = Box<dyn FnOnce(bool) + Send>;
/// What a job runs: in a savepoint (if it sends a statement), with its row of the batch's
/// bulk statement if it had one and it ran; says whether it succeeded.
type JobRun = Box<
    dyn for<'c> FnOnce(&'c mut WriteTx, Option<WriteRow>) -> ConnFuture<'c, (bool, Reply)> + Send,
>;

/// A job for the group-commit writer.
struct Job {
    /// Its share of a statement run once for the batch (PostgreSQL; see [`bulk`]).
    bulk: Option<BulkStep>,
    run: JobRun,
}

/// Most jobs one group commit takes.
const MAX_BATCH: usize = 256;

/// Most jobs one PostgreSQL group commit takes. A job's statements are round trips on the
/// batch's connection and its row locks are held until the batch commits, so batches stay
/// short; several batches run at once (one per core), each on a connection of its own.
const PG_MAX_BATCH: usize = 64;

/// PostgreSQL group-commit workers of a bank process. One: a batch's statements cost
/// PostgreSQL about as much for one job as for ten, and a second worker halves the batches.
/// At 3,000 payments/s on two cores one worker used 17.7 CPU-seconds of the machine per 14 s
/// run where two used 21.3, with the same median; two answer sooner at low rates (1,000/s:
/// p50 2.3 against 3.8 ms) or where fsync is slow, hence `--commit-workers`.
pub const DEFAULT_COMMIT_WORKERS: usize = 1;

/// Most reader connections on SQLite: each is a thread of its own in sqlx, and on a small
/// machine more threads than cores only add context switches.
const SQLITE_MAX_READERS: u32 = 4;

/// Prepared statements the SQLite writer keeps (the write jobs use a dozen).
const SQLITE_WRITER_STATEMENTS: usize = 64;

/// Page cache of the SQLite writer, KiB (SQLite's default is 2 MiB). Payments and journal
/// entries are keyed by random transaction ids, so each batch touches pages all over those
/// B-trees; with the default cache most of them are read back from the file on every batch.
const SQLITE_WRITER_CACHE_KIB: i64 = 64 * 1024;

/// How the group commit has batched so far.
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    commits: AtomicU64,
    jobs: AtomicU64,
    largest: AtomicU64,
    bulk_rows: AtomicU64,
    reruns: AtomicU64,
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

    /// Jobs whose step a batch's bulk statement ran (PostgreSQL).
    pub fn bulk_rows(&self) -> u64 {
        self.bulk_rows.load(Ordering::Relaxed)
    }

    /// Batches whose bulk statements were rolled back and that ran again job by job.
    pub fn reruns(&self) -> u64 {
        self.reruns.load(Ordering::Relaxed)
    }
}

/// Connection pools and the SQL dialect.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    write: AnyPool,
    read: AnyPool,
    batcher: mpsc::UnboundedSender<Job>,
    stats: Arc<GroupCommitStats>,
    /// The server URL (PostgreSQL), for connections outside the pool (LISTEN).
    url: Option<Arc<str>>,
}

/// Helps type inference of [`Store::write`] closures (higher-ranked over the transaction).
pub fn job<T, F>(f: F) -> F
where
    F: for<'c> FnOnce(&'c mut WriteTx) -> ConnFuture<'c, T>,
{
    f
}

/// Helps type inference of [`Store::write_bulk`] closures.
pub fn bulk_job<T, F>(f: F) -> F
where
    F: for<'c> FnOnce(&'c mut WriteTx, Option<WriteRow>) -> ConnFuture<'c, T>,
{
    f
}

/// A parameter or column value of a [`WriteTx`] statement.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    /// INTEGER / BIGINT.
    Int(i64),
    /// TEXT.
    Text(String),
    /// BLOB / BYTEA.
    Blob(Vec<u8>),
    /// NULL.
    Null,
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(value: Vec<u8>) -> Self {
        Self::Blob(value)
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Int(v) => ValueRef::Integer(*v),
            Self::Text(v) => ValueRef::Text(v.as_bytes()),
            Self::Blob(v) => ValueRef::Blob(v),
            Self::Null => ValueRef::Null,
        }))
    }
}

/// A row a [`WriteTx`] statement returned.
pub enum WriteRow {
    /// Read from SQLite.
    Sqlite(Vec<SqlValue>),
    /// Read from PostgreSQL.
    Pg(tokio_postgres::Row),
}

impl std::fmt::Debug for WriteRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(values) => f.debug_tuple("WriteRow").field(values).finish(),
            Self::Pg(_) => f.write_str("WriteRow(..)"),
        }
    }
}

impl WriteRow {
    /// The integer in column `index`.
    pub fn int(&self, index: usize) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(values) => match values.get(index) {
                Some(SqlValue::Int(v)) => Ok(*v),
                _ => Err(StoreError::ColumnType(index)),
            },
            Self::Pg(row) => pg::int(row, index),
        }
    }

    /// The text in column `index`.
    pub fn text(&self, index: usize) -> Result<String, StoreError> {
        match self {
            Self::Sqlite(values) => match values.get(index) {
                Some(SqlValue::Text(v)) => Ok(v.clone()),
                _ => Err(StoreError::ColumnType(index)),
            },
            Self::Pg(row) => Ok(row.try_get::<_, String>(index)?),
        }
    }
}

/// The transaction a [`Store::write`] job runs in. On SQLite it is the group-commit
/// writer's own connection, used in-process on the writer's thread (each statement is a
/// call, not a message to a connection thread); on PostgreSQL a transaction on a
/// group-commit worker's connection.
/// Statements use `?` placeholders on both.
pub struct WriteTx {
    inner: WriteInner,
    /// Credits applied at the end of the batch (see [`crate::credits`]).
    credits: Credits,
}

enum WriteInner {
    Sqlite(rusqlite::Connection),
    Postgres(pg::PgConn),
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            WriteInner::Sqlite(_) => "WriteTx(SQLite)",
            WriteInner::Postgres(_) => "WriteTx(PostgreSQL)",
        })
    }
}

/// Credits an account of this bank held in the currency (no row: not one of ours).
const CREDIT: &str = "UPDATE accounts SET balance_minor = balance_minor + ? WHERE account_number = ? AND currency = ?";

impl WriteTx {
    /// Whether this is a PostgreSQL transaction (where a step may be one statement with
    /// data-modifying CTEs, which SQLite does not have).
    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, WriteInner::Postgres(_))
    }

    fn new(inner: WriteInner) -> Self {
        Self {
            inner,
            credits: Credits::default(),
        }
    }

    /// Credits `amount` to `account` if it is an account of this bank held in `currency`
    /// (else nothing), at the end of the batch and in its transaction, if this job
    /// succeeds. Summed per account: a row many payments credit changes once per batch.
    pub fn credit_at_commit(&mut self, account: &str, currency: &str, amount: i64) {
        self.credits.add(Credit {
            account: account.to_owned(),
            currency: currency.to_owned(),
            amount,
        });
    }

    /// Applies the batch's credits (before its commit; SQLite: PostgreSQL pipelines them
    /// with its COMMIT). An `Err` means the batch must not commit.
    async fn apply_credits(&mut self) -> Result<(), StoreError> {
        for credit in self.credits.take_batch() {
            self.execute(
                CREDIT,
                vec![
                    credit.amount.into(),
                    credit.account.into(),
                    credit.currency.into(),
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// Runs a statement; the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<u64, StoreError> {
        match &mut self.inner {
            WriteInner::Sqlite(conn) => {
                let changed = conn
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params.iter()))?;
                Ok(changed as u64)
            }
            WriteInner::Postgres(conn) => conn.execute(sql, params).await,
        }
    }

    /// Runs a statement that returns at most one row (`... RETURNING`); the row, if any.
    pub async fn fetch_optional(
        &mut self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Option<WriteRow>, StoreError> {
        match &mut self.inner {
            WriteInner::Sqlite(conn) => {
                let mut statement = conn.prepare_cached(sql)?;
                let columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(params.iter()))?;
                let Some(row) = rows.next()? else {
                    return Ok(None);
                };
                let mut values = Vec::with_capacity(columns);
                for index in 0..columns {
                    use rusqlite::types::ValueRef;
                    values.push(match row.get_ref(index)? {
                        ValueRef::Integer(v) => SqlValue::Int(v),
                        ValueRef::Text(v) => {
                            SqlValue::Text(String::from_utf8_lossy(v).into_owned())
                        }
                        ValueRef::Blob(v) => SqlValue::Blob(v.to_vec()),
                        ValueRef::Null | ValueRef::Real(_) => SqlValue::Null,
                    });
                }
                // Runs the statement to its end (a RETURNING statement's changes are
                // complete only then).
                while rows.next()?.is_some() {}
                Ok(Some(WriteRow::Sqlite(values)))
            }
            WriteInner::Postgres(conn) => {
                Ok(conn.fetch_optional(sql, params).await?.map(WriteRow::Pg))
            }
        }
    }
}

/// The group-commit writer (SQLite): takes every job waiting, runs each after a savepoint
/// (a failing job is rolled back to it alone) inside one transaction, commits once, then
/// answers them all. One fsync serves the batch, and no job is answered before its writes
/// are durable. Runs on a thread of its own: the jobs' statements are plain calls into
/// SQLite there, and the thread's small runtime only drives the jobs' futures (which do
/// not wait on anything else) and the queue.
fn group_commit(
    connection: rusqlite::Connection,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    stats: Arc<GroupCommitStats>,
    runtime: tokio::runtime::Runtime,
    checkpoints: checkpoint::Checkpoints,
) {
    let mut tx = WriteTx::new(WriteInner::Sqlite(connection));
    let batch_sql = |tx: &WriteTx, sql: &str| match &tx.inner {
        WriteInner::Sqlite(conn) => conn.execute_batch(sql).map_err(StoreError::from),
        WriteInner::Postgres(_) => Err(StoreError::CommitFailed),
    };
    while let Some(first) = runtime.block_on(jobs.recv()) {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let mut replies = Vec::with_capacity(size);
        // IMMEDIATE: the write lock is taken now (waiting out other writers through the busy
        // timeout), not on the first write, where a stale snapshot could not be upgraded.
        let mut committed = batch_sql(&tx, "BEGIN IMMEDIATE; SAVEPOINT job");
        if committed.is_ok() {
            for job in batch {
                let (ok, reply) = runtime.block_on((job.run)(&mut tx, None));
                tx.credits.job_done(ok);
                replies.push(reply);
                // Moves the mark past a finished job, or undoes a failed job's writes
                // (the mark stays for the next job).
                let step = if ok {
                    "RELEASE job; SAVEPOINT job"
                } else {
                    "ROLLBACK TO job"
                };
                if let Err(e) = batch_sql(&tx, step) {
                    committed = Err(e);
                    break;
                }
            }
        }
        if committed.is_ok() {
            committed = runtime.block_on(tx.apply_credits());
        } else {
            // Not applied: the batch's writes are rolled back below.
            tx.credits.take_batch();
        }
        if committed.is_ok() {
            committed = batch_sql(&tx, "COMMIT");
        }
        if let Err(e) = &committed {
            tracing::error!(error = %e, "group commit failed; its jobs are answered with an error");
            // Leaves no transaction open for the next batch (none may be open: ignored).
            let _ = batch_sql(&tx, "ROLLBACK");
        }
        let ok = committed.is_ok();
        if ok {
            stats.record(size);
        }
        for reply in replies {
            reply(ok);
        }
        if ok {
            checkpoints.committed();
        }
        if let WriteInner::Sqlite(conn) = &tx.inner {
            checkpoints.between_batches(conn);
        }
    }
}

/// Opens the writer's own connection to the SQLite file and starts the group commit on a
/// thread of its own, and the checkpoints beside it ([`checkpoint`]).
fn spawn_group_commit(
    path: &std::path::Path,
    pragmas: &str,
    jobs: mpsc::UnboundedReceiver<Job>,
    stats: Arc<GroupCommitStats>,
) -> Result<(), StoreError> {
    let connection = rusqlite::Connection::open(path)?;
    connection.execute_batch(pragmas)?;
    connection.execute_batch(&format!("PRAGMA cache_size = -{SQLITE_WRITER_CACHE_KIB};"))?;
    connection.set_prepared_statement_cache_capacity(SQLITE_WRITER_STATEMENTS);
    let checkpoints = checkpoint::Checkpoints::start(&connection, path, pragmas)?;
    // No I/O driver: its wake-ups go through an eventfd and epoll, a condition variable is
    // cheaper, and the writer waits on nothing but its queue and its jobs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(StoreError::WriterThread)?;
    std::thread::Builder::new()
        .name("group-commit".into())
        // Ends when every sender (every clone of the store) is gone.
        .spawn(move || group_commit(connection, jobs, stats, runtime, checkpoints))
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

impl StoreError {
    /// Whether a unique index or primary key refused the write.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(db)) => db.is_unique_violation(),
            Self::Postgres(e) => {
                e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }
}

impl Store {
    /// Connects (creating an SQLite file if missing) and applies the migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::open_with_workers(url, max_connections, DEFAULT_COMMIT_WORKERS).await
    }

    /// [`Self::open`] with `commit_workers` PostgreSQL group-commit workers, each with a
    /// connection of its own (SQLite has one writer).
    pub async fn open_with_workers(
        url: &str,
        max_connections: u32,
        commit_workers: usize,
    ) -> Result<Self, StoreError> {
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
                let path = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?
                    .get_filename()
                    .to_owned();
                spawn_group_commit(&path, &pragmas, receiver, stats.clone())?;
                Self {
                    backend,
                    write,
                    read,
                    batcher: sender,
                    stats,
                    url: None,
                }
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)?;
                let workers = commit_workers.max(1);
                let pool = AnyPoolOptions::new()
                    // Reads and the other writes (the workers have connections of their own).
                    .max_connections(max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(30))
                    // A dropped connection fails its query and leaves the pool; a ping
                    // before every query would double the round trips to the server.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                let (sender, receiver) = mpsc::unbounded_channel();
                let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
                let stats = Arc::new(GroupCommitStats::default());
                let url: Arc<str> = url.into();
                for _ in 0..workers {
                    // Connected now: a server the writes cannot reach fails the open, not
                    // the first payment.
                    let conn = pg::PgConn::connect(&url).await?;
                    tokio::spawn(pg::pg_group_commit(
                        url.clone(),
                        conn,
                        receiver.clone(),
                        stats.clone(),
                    ));
                }
                Self {
                    backend,
                    write: pool.clone(),
                    read: pool,
                    batcher: sender,
                    stats,
                    url: Some(url),
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

    /// The PostgreSQL server URL (None on SQLite).
    pub fn postgres_url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// How the group commit has batched.
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
        match self.backend {
            // The group-commit writer has a connection of its own: taking the write lock at
            // the start waits for it through the busy timeout, where a deferred transaction
            // that read first could not upgrade its stale snapshot (SQLITE_BUSY at once).
            Backend::Sqlite => Ok(self.write.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => Ok(self.write.begin().await?),
        }
    }

    /// Runs `f` in a write transaction and returns its result once committed. An `Err` from
    /// `f` rolls its writes back. The transaction is shared with other concurrent writes
    /// (group commit, each in its own savepoint): on SQLite one writer thread, on PostgreSQL
    /// one worker per core.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut WriteTx) -> ConnFuture<'c, Result<T, E>> + Send + 'static,
    {
        self.write_bulk(None, move |conn, _| f(conn)).await
    }

    /// [`Self::write`] with a share of a statement the PostgreSQL group commit runs once for
    /// the batch (see [`BulkStep`]); `f` gets the job's row of it, or `None` when it did not
    /// run for this job (SQLite, a clash with another job, a batch run again job by job):
    /// then `f` does the step itself.
    pub async fn write_bulk<T, E, F>(&self, bulk: Option<BulkStep>, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut WriteTx, Option<WriteRow>) -> ConnFuture<'c, Result<T, E>>
            + Send
            + 'static,
    {
        let (sender, receiver) = oneshot::channel::<Result<T, E>>();
        let bulk = bulk.filter(|_| self.backend == Backend::Postgres);
        let run: JobRun = Box::new(move |conn, row| {
            Box::pin(async move {
                let result = f(conn, row).await;
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
        self.batcher
            .send(Job { bulk, run })
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
