//! Set-based steps of the PostgreSQL group commit: jobs of one batch that run the same
//! statement send one row of parameters each, and the batch runs the statement once over
//! arrays of them (`unnest`), so a batch of N payments costs a few statements, not N, in
//! parse/bind/execute, executor start-up and subtransactions on the backend.
//!
//! The contract: the statement takes `$1` the jobs' ordinals (`int8[]`), then one array per
//! value in the order the jobs give them, and returns one row per ordinal with the ordinal
//! first. A job's row must say whether the statement wrote for it completely or not at all;
//! [`BulkStep::valid`] checks that, and any row that fails it (or an error of the
//! statement) rolls the whole batch back and runs it again job by job, each after a
//! savepoint, as before. The job then gets no row and takes its own path, which also says
//! why it failed. A job whose rows could clash with an earlier job's in the same statement
//! (`keys`: one UPDATE ... FROM changes a row once, whichever input row matched) runs on its
//! own after the statement.

use std::collections::HashSet;

use tokio_postgres::types::{ToSql, Type};

use super::{SqlValue, StoreError, WriteRow};

/// A job's share of a statement run once for the batch.
#[derive(Debug)]
pub struct BulkStep {
    pub(super) sql: &'static str,
    pub(super) values: Vec<SqlValue>,
    pub(super) keys: Vec<String>,
    pub(super) valid: fn(&WriteRow) -> bool,
}

impl BulkStep {
    /// `values`: this job's row; `keys`: what may appear in one job of the statement only
    /// (the first also orders the rows, so concurrent batches lock rows in one order);
    /// `valid`: whether a returned row is all or nothing.
    pub fn new(
        sql: &'static str,
        values: Vec<SqlValue>,
        keys: Vec<String>,
        valid: fn(&WriteRow) -> bool,
    ) -> Self {
        Self {
            sql,
            values,
            keys,
            valid,
        }
    }
}

/// The jobs (indexes in the batch) of one bulk statement.
pub(super) struct Group {
    pub sql: &'static str,
    pub jobs: Vec<usize>,
    keys: HashSet<String>,
}

/// Groups the batch's bulk steps by statement; a job with a key taken in its group is left
/// out (it runs alone). Each group's jobs are ordered by their first key.
pub(super) fn groups(steps: &[Option<&BulkStep>]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let Some(step) = step else { continue };
        let group = match groups.iter().position(|g| g.sql == step.sql) {
            Some(at) => &mut groups[at],
            None => {
                groups.push(Group {
                    sql: step.sql,
                    jobs: Vec::new(),
                    keys: HashSet::new(),
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        if step.keys.iter().any(|k| group.keys.contains(k)) {
            continue;
        }
        group.keys.extend(step.keys.iter().cloned());
        group.jobs.push(index);
    }
    for group in &mut groups {
        group
            .jobs
            .sort_by(|a, b| first_key(steps[*a]).cmp(first_key(steps[*b])));
    }
    groups
}

fn first_key(step: Option<&BulkStep>) -> &str {
    step.and_then(|s| s.keys.first()).map_or("", String::as_str)
}

/// One parameter array.
#[derive(Debug)]
pub(super) enum Column {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Blob(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn new(like: &SqlValue, capacity: usize) -> Self {
        match like {
            SqlValue::Int(_) => Self::Int(Vec::with_capacity(capacity)),
            SqlValue::Blob(_) => Self::Blob(Vec::with_capacity(capacity)),
            SqlValue::Text(_) | SqlValue::Null => Self::Text(Vec::with_capacity(capacity)),
        }
    }

    pub fn pg_type(&self) -> Type {
        match self {
            Self::Int(_) => Type::INT8_ARRAY,
            Self::Text(_) => Type::TEXT_ARRAY,
            Self::Blob(_) => Type::BYTEA_ARRAY,
        }
    }

    fn push(&mut self, value: SqlValue) -> Result<(), StoreError> {
        match (self, value) {
            (Self::Int(v), SqlValue::Int(x)) => v.push(Some(x)),
            (Self::Int(v), SqlValue::Null) => v.push(None),
            (Self::Text(v), SqlValue::Text(x)) => v.push(Some(x)),
            (Self::Text(v), SqlValue::Null) => v.push(None),
            (Self::Blob(v), SqlValue::Blob(x)) => v.push(Some(x)),
            (Self::Blob(v), SqlValue::Null) => v.push(None),
            _ => return Err(StoreError::BulkMismatch),
        }
        Ok(())
    }

    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Int(v) => v,
            Self::Text(v) => v,
            Self::Blob(v) => v,
        }
    }
}

/// The group's parameters: the ordinals (indexes in the batch), then one array per value.
pub(super) fn columns(
    group: &Group,
    steps: &mut [Option<BulkStep>],
) -> Result<Vec<Column>, StoreError> {
    let n = group.jobs.len();
    let mut ordinals = Vec::with_capacity(n);
    let mut columns: Vec<Column> = Vec::new();
    for &index in &group.jobs {
        let values = steps
            .get_mut(index)
            .and_then(Option::as_mut)
            .map(|s| std::mem::take(&mut s.values))
            .ok_or(StoreError::BulkMismatch)?;
        if columns.is_empty() {
            columns = values.iter().map(|v| Column::new(v, n)).collect();
        }
        if values.len() != columns.len() {
            return Err(StoreError::BulkMismatch);
        }
        ordinals.push(Some(
            i64::try_from(index).map_err(|_| StoreError::BulkMismatch)?,
        ));
        for (column, value) in columns.iter_mut().zip(values) {
            column.push(value)?;
        }
    }
    let mut all = Vec::with_capacity(columns.len() + 1);
    all.push(Column::Int(ordinals));
    all.extend(columns);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(sql: &'static str, keys: &[&str]) -> BulkStep {
        BulkStep::new(
            sql,
            vec![SqlValue::Int(1)],
            keys.iter().map(|k| (*k).to_owned()).collect(),
            |_| true,
        )
    }

    #[test]
    fn clashing_jobs_are_left_out_and_groups_are_ordered_by_key() {
        let steps = [
            step("A", &["p2", "b1"]),
            step("A", &["p1", "b2"]),
            step("B", &["p2"]),
            step("A", &["p3", "b1"]),
        ];
        let refs: Vec<Option<&BulkStep>> = steps.iter().map(Some).collect();
        let groups = groups(&refs);
        assert_eq!(groups.len(), 2);
        // Job 3 shares b1 with job 0: alone. Ordered by the first key.
        assert_eq!(groups[0].jobs, vec![1, 0]);
        assert_eq!(groups[1].jobs, vec![2]);
    }
}
