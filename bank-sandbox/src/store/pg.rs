//! The PostgreSQL group commit: several workers, each running a batch of jobs in one
//! transaction on a connection of its own.
//!
//! The workers speak to PostgreSQL through `tokio-postgres`, not sqlx: it pipelines
//! requests on one connection, so the batch's BEGIN goes out with its bulk statements, a
//! job's savepoint step with its next statement, and the credits with the COMMIT.
//! A batch's prepares and PIN-verified decisions are one statement each over arrays
//! ([`super::bulk`]): a batch of N payments' jobs costs a few statements instead of N
//! statements and N savepoints (each savepoint a subtransaction on the backend). Jobs that
//! cannot share a statement run one by one after it, each after a savepoint, as before.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::future::{join, join_all};
use tokio::sync::mpsc;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Row, Statement};

/// The group-commit connections' `application_name`.
const APPLICATION_NAME: &str = "bank-sandbox group commit";

use super::bulk::{self, BulkStep, Column};
use super::{
    CREDIT, GroupCommitStats, Job, PG_MAX_BATCH, Reply, SqlValue, StoreError, WriteInner, WriteRow,
    WriteTx, numbered_placeholders,
};

/// Where the batch's transaction stands in its savepoints, for the control message that
/// goes out with the next statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    /// No transaction yet: BEGIN and the first job's savepoint.
    Begin,
    /// In the transaction (after the batch's bulk statements), no savepoint yet.
    InTransaction,
    /// The last job wrote and succeeded: its savepoint is released, the next job's set.
    AfterOk,
    /// The last job wrote and failed: its writes are undone, the next job's mark set.
    AfterFailed,
    /// Sent: the running job is after its savepoint.
    Sent,
}

impl Mark {
    fn sql(self) -> Option<&'static str> {
        match self {
            Self::Begin => Some("BEGIN; SAVEPOINT job"),
            Self::InTransaction => Some("SAVEPOINT job"),
            Self::AfterOk => Some("RELEASE job; SAVEPOINT job"),
            Self::AfterFailed => Some("ROLLBACK TO job; RELEASE job; SAVEPOINT job"),
            Self::Sent => None,
        }
    }
}

/// A group-commit worker's connection: its prepared statements, and the savepoint step
/// not sent yet.
pub(super) struct PgConn {
    client: Client,
    /// Prepared per connection, keyed by the statement as the jobs write it (`?`).
    statements: HashMap<String, Prepared>,
    mark: Mark,
    /// A pipelined control message failed: the transaction is aborted, the batch must not
    /// commit.
    broken: bool,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("statements", &self.statements.len())
            .field("mark", &self.mark)
            .finish_non_exhaustive()
    }
}

/// A prepared statement and how often it ran.
struct Prepared {
    statement: Statement,
    runs: u64,
}

/// The runs after which a statement is prepared again. Its generic plan is made from the
/// tables' sizes when it is prepared: in a database that starts empty it would keep reading
/// a whole table (a hash join over all of `payments`, 4 ms a batch after 40,000 payments)
/// where an index lookup is right once the table has grown. PostgreSQL makes new plans when
/// autovacuum analyzes a table, a minute or more later; this follows the growth sooner.
const REPLAN_AFTER_RUNS: [u64; 5] = [10, 100, 1_000, 10_000, 100_000];

/// The parameter type PostgreSQL should infer (OID 0 in the Parse message): a NULL's.
fn unspecified() -> Type {
    Type::new("unspecified".into(), 0, Kind::Pseudo, "pg_catalog".into())
}

impl SqlValue {
    /// The type this value is sent as, when a statement is prepared with it.
    fn pg_type(&self) -> Type {
        match self {
            Self::Int(_) => Type::INT8,
            Self::Text(_) => Type::TEXT,
            Self::Blob(_) => Type::BYTEA,
            Self::Null => unspecified(),
        }
    }
}

impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        // The statement's parameter types come from the first values it was prepared with,
        // or PostgreSQL's inference for a NULL there: narrower integers are converted.
        match self {
            Self::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Self::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Self::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Self::Text(v) if <&str as ToSql>::accepts(ty) => v.as_str().to_sql(ty, out),
            Self::Blob(v) if <&[u8] as ToSql>::accepts(ty) => v.as_slice().to_sql(ty, out),
            Self::Null => Ok(IsNull::Yes),
            _ => Err(format!("a {self:?} cannot be sent as {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`.
        true
    }

    to_sql_checked!();
}

/// The integer in column `index` of a row (BIGINT, INTEGER or SMALLINT: `RETURNING 1` is
/// an INTEGER).
pub(super) fn int(row: &Row, index: usize) -> Result<i64, StoreError> {
    let column = row
        .columns()
        .get(index)
        .ok_or(StoreError::ColumnType(index))?;
    Ok(match *column.type_() {
        Type::INT8 => row.try_get::<_, i64>(index)?,
        Type::INT4 => i64::from(row.try_get::<_, i32>(index)?),
        Type::INT2 => i64::from(row.try_get::<_, i16>(index)?),
        _ => return Err(StoreError::ColumnType(index)),
    })
}

/// What a statement gives back.
enum Outcome {
    Rows(Vec<Row>),
    Changed(u64),
}

impl PgConn {
    /// Connects (the worker's connection task runs on the caller's runtime).
    pub(super) async fn connect(url: &str) -> Result<Self, StoreError> {
        let (mut config, tls) = super::pg_tls::config(url)?;
        // Named, so that an operator (and a test) can tell them in pg_stat_activity.
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        let (client, connection) = config.connect(tls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "group-commit connection to PostgreSQL ended");
            }
        });
        // The bulk statements name their join keys as index conditions (`= ANY($n)`), so
        // their generic plans are good; PostgreSQL's own choice kept planning the prepare's
        // afresh for each batch (a custom plan for the arrays' values: 0.38 ms of the
        // backend's CPU per batch, more than running it).
        client
            .batch_execute("SET plan_cache_mode = force_generic_plan")
            .await?;
        Ok(Self {
            client,
            statements: HashMap::new(),
            mark: Mark::Begin,
            broken: false,
        })
    }

    /// The statement prepared for `sql`, counting this run, unless it is due to be planned
    /// again; then (or when there is none) `Err` with the runs so far, this one included.
    fn prepared(&mut self, sql: &str) -> Result<Statement, u64> {
        let Some(prepared) = self.statements.get_mut(sql) else {
            return Err(1);
        };
        prepared.runs += 1;
        if REPLAN_AFTER_RUNS.contains(&prepared.runs) {
            return Err(prepared.runs);
        }
        Ok(prepared.statement.clone())
    }

    async fn statement(&mut self, sql: &str, params: &[SqlValue]) -> Result<Statement, StoreError> {
        let runs = match self.prepared(sql) {
            Ok(statement) => return Ok(statement),
            Err(runs) => runs,
        };
        let types: Vec<Type> = params.iter().map(SqlValue::pg_type).collect();
        self.prepare(sql, &numbered_placeholders(sql), &types, runs)
            .await
    }

    /// Prepares `text` (the statement `sql` as PostgreSQL reads it) and keeps it.
    async fn prepare(
        &mut self,
        sql: &str,
        text: &str,
        types: &[Type],
        runs: u64,
    ) -> Result<Statement, StoreError> {
        if self.mark == Mark::AfterFailed {
            // PostgreSQL refuses to prepare in a transaction a failed job aborted (a first
            // use, or a new plan, after it): its rollback goes out first, and the step
            // before the next job is then the one after a job that succeeded.
            if let Err(e) = self.client.batch_execute("ROLLBACK TO job").await {
                self.broken = true;
                return Err(e.into());
            }
            self.mark = Mark::AfterOk;
        }
        let statement = self.client.prepare_typed(text, types).await?;
        let prepared = Prepared {
            statement: statement.clone(),
            runs,
        };
        self.statements.insert(sql.to_owned(), prepared);
        Ok(statement)
    }

    /// Runs a job's statement, after the savepoint step not sent yet (in the same write).
    async fn run(
        &mut self,
        sql: &str,
        params: Vec<SqlValue>,
        rows: bool,
    ) -> Result<Outcome, StoreError> {
        if self.broken {
            return Err(StoreError::CommitFailed);
        }
        let statement = self.statement(sql, &params).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let client = &self.client;
        let work = async {
            if rows {
                client.query(&statement, &refs).await.map(Outcome::Rows)
            } else {
                client
                    .execute(&statement, &refs)
                    .await
                    .map(Outcome::Changed)
            }
        };
        let mark = std::mem::replace(&mut self.mark, Mark::Sent);
        let result = match mark.sql() {
            None => work.await,
            Some(control) => {
                // Requests go out in the order their futures are first polled, and `join`
                // polls the control message first.
                let (control, result) = join(client.batch_execute(control), work).await;
                if let Err(e) = control {
                    self.broken = true;
                    return Err(e.into());
                }
                result
            }
        };
        Ok(result?)
    }

    pub(super) async fn execute(
        &mut self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<u64, StoreError> {
        match self.run(sql, params, false).await? {
            Outcome::Changed(n) => Ok(n),
            Outcome::Rows(rows) => Ok(rows.len() as u64),
        }
    }

    pub(super) async fn fetch_optional(
        &mut self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Option<Row>, StoreError> {
        match self.run(sql, params, true).await? {
            Outcome::Rows(rows) => Ok(rows.into_iter().next()),
            Outcome::Changed(_) => Ok(None),
        }
    }

    /// A job finished: the step before the next one (sent with its first statement). A job
    /// that sent nothing needs none: the transaction is as it was before it.
    fn job_done(&mut self, ok: bool) {
        if self.mark == Mark::Sent {
            self.mark = if ok { Mark::AfterOk } else { Mark::AfterFailed };
        }
    }

    /// The batch's end: the last job's step if it failed, the credits and COMMIT, pipelined
    /// in one write. Every result is checked: PostgreSQL answers a COMMIT of an aborted
    /// transaction by rolling it back without an error.
    async fn commit(&mut self, credits: Vec<super::Credit>) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::CommitFailed);
        }
        let mark = std::mem::replace(&mut self.mark, Mark::Begin);
        let control = match mark {
            // Nothing was written: no transaction unless there are credits.
            Mark::Begin if credits.is_empty() => return Ok(()),
            Mark::Begin => Some("BEGIN"),
            // The last job's savepoint stays open: COMMIT commits it with the rest.
            Mark::AfterOk | Mark::Sent | Mark::InTransaction => None,
            Mark::AfterFailed => Some("ROLLBACK TO job"),
        };
        let params: Vec<Vec<SqlValue>> = credits
            .into_iter()
            .map(|c| vec![c.amount.into(), c.account.into(), c.currency.into()])
            .collect();
        let credit = match params.first() {
            Some(first) => Some(self.statement(CREDIT, first).await?),
            None => None,
        };
        let client = &self.client;
        let control = async {
            match control {
                Some(sql) => client.batch_execute(sql).await,
                None => Ok(()),
            }
        };
        let credits = join_all(params.iter().map(|params| {
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
            let credit = credit.clone();
            async move {
                match credit {
                    Some(statement) => client.execute(&statement, &refs).await.map(|_| ()),
                    None => Ok(()),
                }
            }
        }));
        let ((control, credits), commit) =
            join(join(control, credits), client.batch_execute("COMMIT")).await;
        control?;
        for credit in credits {
            credit?;
        }
        commit?;
        Ok(())
    }

    /// A prepared statement of the bulk steps (parameters: the arrays' types).
    async fn bulk_statement(
        &mut self,
        sql: &'static str,
        columns: &[Column],
    ) -> Result<Statement, StoreError> {
        let runs = match self.prepared(sql) {
            Ok(statement) => return Ok(statement),
            Err(runs) => runs,
        };
        let types: Vec<Type> = columns.iter().map(Column::pg_type).collect();
        self.prepare(sql, sql, &types, runs).await
    }

    /// Opens the batch's transaction and runs its bulk statements, pipelined in one write;
    /// the rows by job (`None`: not in a bulk statement). Nothing is sent when no job has a
    /// bulk step. An `Err` leaves an aborted or half-written transaction: the caller rolls
    /// it back and runs the batch job by job.
    async fn run_bulk(
        &mut self,
        steps: &mut [Option<BulkStep>],
    ) -> Result<Vec<Option<WriteRow>>, StoreError> {
        let mut rows: Vec<Option<WriteRow>> = steps.iter().map(|_| None).collect();
        let groups = {
            let refs: Vec<Option<&BulkStep>> = steps.iter().map(Option::as_ref).collect();
            bulk::groups(&refs)
        };
        if groups.is_empty() {
            return Ok(rows);
        }
        let mut prepared = Vec::with_capacity(groups.len());
        for group in &groups {
            let columns = bulk::columns(group, steps)?;
            let statement = self.bulk_statement(group.sql, &columns).await?;
            prepared.push((statement, columns));
        }
        self.mark = Mark::InTransaction;
        let client = &self.client;
        let queries = join_all(prepared.iter().map(|(statement, columns)| {
            let refs: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Column::as_sql).collect();
            async move { client.query(statement, &refs).await }
        }));
        let (begin, results) = join(client.batch_execute("BEGIN"), queries).await;
        begin?;
        for (group, result) in groups.iter().zip(results) {
            let mut answered = 0;
            for row in result? {
                let index = usize::try_from(int(&row, 0)?).map_err(|_| StoreError::BulkPartial)?;
                let valid = steps
                    .get(index)
                    .and_then(Option::as_ref)
                    .map(|step| step.valid)
                    .ok_or(StoreError::BulkPartial)?;
                let row = WriteRow::Pg(row);
                if !group.jobs.contains(&index) || !valid(&row) {
                    return Err(StoreError::BulkPartial);
                }
                rows[index] = Some(row);
                answered += 1;
            }
            if answered != group.jobs.len() {
                return Err(StoreError::BulkPartial);
            }
        }
        Ok(rows)
    }

    /// After a failed batch: no transaction is left open (there may be none: PostgreSQL
    /// only warns).
    async fn reset(&mut self) {
        self.mark = Mark::Begin;
        self.broken = false;
        if let Err(e) = self.client.batch_execute("ROLLBACK").await {
            tracing::warn!(error = %e, "rollback after a failed group commit");
        }
    }
}

/// Runs a batch's jobs in `tx`: first the bulk statements for the jobs that have a share
/// in one, then each job (with its row), after a savepoint if it sends a statement; a failed
/// job's writes are rolled back to it alone. A bulk statement that failed or wrote part of a
/// job's step is rolled back and the batch run job by job. An `Err` means the batch must not
/// commit (jobs not run yet are dropped, and their callers get `CommitFailed`).
async fn run_batch(
    tx: &mut WriteTx,
    batch: Vec<Job>,
    replies: &mut Vec<Reply>,
    stats: &GroupCommitStats,
) -> Result<(), StoreError> {
    let WriteInner::Postgres(conn) = &mut tx.inner else {
        return Err(StoreError::CommitFailed);
    };
    let (mut steps, runs): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.bulk, j.run)).unzip();
    let rows = match conn.run_bulk(&mut steps).await {
        Ok(rows) => {
            let ran = rows.iter().filter(|r| r.is_some()).count() as u64;
            stats.bulk_rows.fetch_add(ran, Ordering::Relaxed);
            rows
        }
        Err(e) => {
            tracing::debug!(error = %e, "bulk statement refused; the batch runs job by job");
            stats.reruns.fetch_add(1, Ordering::Relaxed);
            conn.reset().await;
            steps.iter().map(|_| None).collect()
        }
    };
    for (run, row) in runs.into_iter().zip(rows) {
        let (ok, reply) = run(tx, row).await;
        tx.credits.job_done(ok);
        replies.push(reply);
        let WriteInner::Postgres(conn) = &mut tx.inner else {
            return Err(StoreError::CommitFailed);
        };
        if conn.broken {
            return Err(StoreError::CommitFailed);
        }
        conn.job_done(ok);
    }
    let credits = tx.credits.take_batch();
    match &mut tx.inner {
        WriteInner::Postgres(conn) => conn.commit(credits).await,
        WriteInner::Sqlite(_) => Err(StoreError::CommitFailed),
    }
}

/// The group commit on PostgreSQL: the same contract as [`super::group_commit`] (each job
/// after a savepoint, one commit per batch, nobody answered before it), run by several
/// workers at once, each taking the jobs waiting when it is free and running them on a
/// connection of its own. `synchronous_commit` stays on: a commit returns once its WAL is
/// flushed, and concurrent commits share the flush (PostgreSQL's own group commit), so a
/// batch of jobs costs one commit and, at most, one WAL flush.
pub(super) async fn pg_group_commit(
    url: Arc<str>,
    conn: PgConn,
    jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    stats: Arc<GroupCommitStats>,
) {
    let mut tx = Some(WriteTx::new(WriteInner::Postgres(conn)));
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
        // A connection that ended (server restart, network) is replaced for the next batch.
        if let Some(WriteTx {
            inner: WriteInner::Postgres(conn),
            ..
        }) = &tx
            && conn.client.is_closed()
        {
            tx = None;
        }
        if tx.is_none() {
            match PgConn::connect(&url).await {
                Ok(conn) => tx = Some(WriteTx::new(WriteInner::Postgres(conn))),
                Err(e) => {
                    tracing::error!(error = %e, "group commit cannot connect to PostgreSQL");
                    drop(batch); // their callers get CommitFailed
                    continue;
                }
            }
        }
        let Some(tx) = tx.as_mut() else { continue };
        let mut replies = Vec::with_capacity(size);
        let committed = run_batch(tx, batch, &mut replies, &stats).await;
        if let Err(e) = &committed {
            tracing::error!(error = %e, "group commit failed; its jobs are answered with an error");
            tx.credits.take_batch();
            if let WriteInner::Postgres(conn) = &mut tx.inner {
                conn.reset().await;
            }
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
