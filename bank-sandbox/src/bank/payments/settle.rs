//! The PostgreSQL settlement of a device payment in one statement (data-modifying CTEs).

use firmware_protocol::message::BankResult as Verdict;

use super::{Transfer, already_journaled};
use crate::bank::encoded_bytes;
use crate::error::{BankError, BankResult};
use crate::store::{BulkStep, SqlValue, WriteRow, WriteTx};
use crate::util::now_ms;

/// The counter step of a decision made in the settlement statement: the binding whose
/// device counter advances and the session that must still be active.
pub(super) struct Advance<'a> {
    pub binding_id: &'a str,
    pub session_hex: &'a str,
}

/// The money side and the decision of a device payment whose PIN verified, as one
/// PostgreSQL statement (data-modifying CTEs, standard PostgreSQL): debit the payer if the
/// balance covers it; only then write the journal entry; store the decision with the
/// response for the verdict it reached (`responses`: approved, insufficient funds). The
/// payee (if it is an account of this bank) is credited at the end of the batch, in the same
/// transaction ([`WriteTx::credit_at_commit`]): most payments credit the same few accounts.
///
/// With `advance`, the statement also advances the device counter, checks that the session
/// is active and that the binding has no wrong PIN counted and is not PIN-locked, and does
/// the rest only then: the usual decision in one round trip. `None`: that check did not
/// pass and nothing was written (the caller takes the step-by-step path, which tells why).
pub(super) async fn settle_in_one_statement(
    conn: &mut WriteTx,
    advance: Option<Advance<'_>>,
    transfer: &Transfer<'_>,
    device_counter: i64,
    approval: Vec<u8>,
    responses: (&str, &str),
) -> BankResult<Option<Verdict>> {
    let mut params = settle_values(transfer, device_counter, approval, responses)?;
    let sql = match &advance {
        Some(advance) => {
            params.push(advance.binding_id.into());
            params.push(advance.session_hex.into());
            ADVANCE_AND_SETTLE_POSTGRES
        }
        None => SETTLE_POSTGRES,
    };
    let row = conn
        .fetch_optional(sql, params)
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                already_journaled()
            } else {
                e.into()
            }
        })?
        .ok_or_else(|| BankError::internal(&"settlement returned no row"))?;
    settled(conn, &row, 0, advance.is_some(), transfer)
}

/// What a settlement row says (columns from `at`: debited, decided, advanced if
/// `advanced_column`); credits the payee at the batch's end when approved.
fn settled(
    conn: &mut WriteTx,
    row: &WriteRow,
    at: usize,
    advanced_column: bool,
    transfer: &Transfer<'_>,
) -> BankResult<Option<Verdict>> {
    if advanced_column && row.int(at + 2)? != 1 {
        return Ok(None);
    }
    if row.int(at + 1)? != 1 {
        return Err(BankError::conflict(
            "payment_already_decided",
            "the payment was decided concurrently",
        ));
    }
    if row.int(at)? != 1 {
        return Ok(Some(Verdict::InsufficientFunds));
    }
    conn.credit_at_commit(transfer.payee, transfer.currency, transfer.amount);
    Ok(Some(Verdict::Approved))
}

/// The decision's parameters both settle statements start with ($1-$12).
fn settle_values(
    transfer: &Transfer<'_>,
    device_counter: i64,
    approval: Vec<u8>,
    responses: (&str, &str),
) -> BankResult<Vec<SqlValue>> {
    Ok(vec![
        transfer.amount.into(),
        transfer.payer.into(),
        transfer.payee.into(),
        transfer.currency.into(),
        transfer.transaction_id.into(),
        now_ms().into(),
        i64::from(Verdict::Approved.to_wire()).into(),
        i64::from(Verdict::InsufficientFunds.to_wire()).into(),
        device_counter.into(),
        approval.into(),
        encoded_bytes(responses.0)?.into(),
        encoded_bytes(responses.1)?.into(),
    ])
}

/// The share of a decision whose PIN verified in the batch's [`SETTLE_BULK`] (PostgreSQL):
/// [`ADVANCE_AND_SETTLE_POSTGRES`] for many payments in one statement.
pub(super) fn settle_bulk(
    advance: &Advance<'_>,
    transfer: &Transfer<'_>,
    device_counter: i64,
    approval: Vec<u8>,
    responses: (&str, &str),
) -> BankResult<BulkStep> {
    let mut values = settle_values(transfer, device_counter, approval, responses)?;
    values.extend([advance.binding_id.into(), advance.session_hex.into()]);
    // The payer first: batches on two connections debit accounts in one order.
    let keys = vec![
        format!("payer:{}", transfer.payer),
        format!("binding:{}", advance.binding_id),
        format!("payment:{}", transfer.transaction_id),
    ];
    // All or nothing: a counter advanced (and maybe a debit) without the decision stored
    // must be undone, which only the job-by-job run can do for one job alone.
    Ok(BulkStep::new(
        SETTLE_BULK,
        values,
        keys,
        |row| matches!((row.int(2), row.int(3)), (Ok(decided), Ok(advanced)) if decided == advanced),
    ))
}

/// The job's row of [`SETTLE_BULK`]: the verdict, or `None` if the counter step did not pass
/// and nothing was written (the step-by-step path says why).
pub(super) fn settled_in_bulk(
    conn: &mut WriteTx,
    row: &WriteRow,
    transfer: &Transfer<'_>,
) -> BankResult<Option<Verdict>> {
    settled(conn, row, 1, true, transfer)
}

/// [`settle_in_one_statement`]'s SQL: $1 amount, $2 payer, $3 payee, $4 currency,
/// $5 transaction id, $6 now, $7/$8 approved/insufficient-funds wire codes, $9 device
/// counter, $10 approval, $11/$12 the responses. PostgreSQL runs every data-modifying CTE
/// to completion whether or not the final SELECT reads it.
const SETTLE_POSTGRES: &str = "WITH debit AS (\
     UPDATE accounts SET balance_minor = balance_minor - $1 \
     WHERE account_number = $2 AND balance_minor >= $1 RETURNING account_number), \
     entry AS (INSERT INTO journal (transaction_id, payer_account, payee_account, amount_minor, currency, created_at) \
     SELECT $5, $2, $3, $1, $4, $6 FROM debit RETURNING 1), \
     decide AS (UPDATE payments SET \
     status = CASE WHEN EXISTS (SELECT 1 FROM debit) THEN 'approved' ELSE 'declined' END, \
     result = CASE WHEN EXISTS (SELECT 1 FROM debit) THEN $7 ELSE $8 END, \
     device_counter = $9, approval = $10, \
     response = CASE WHEN EXISTS (SELECT 1 FROM debit) THEN $11 ELSE $12 END, \
     decided_at = $6 WHERE transaction_id = $5 AND status = 'prepared' RETURNING 1) \
     SELECT (SELECT COUNT(*) FROM debit), (SELECT COUNT(*) FROM decide)";

/// [`SETTLE_POSTGRES`] after the counter step ($13 binding, $14 session): the debit and the
/// decision happen only if the counter advanced.
const ADVANCE_AND_SETTLE_POSTGRES: &str = "WITH advance AS (\
     UPDATE bindings SET device_counter = $9 WHERE binding_id = $13 AND device_counter < $9 \
     AND pin_locked = 0 AND wrong_pin_count = 0 AND EXISTS (SELECT 1 FROM sessions \
     WHERE session_id = $14 AND stage = 'active' AND expires_at > $6) RETURNING 1), \
     debit AS (UPDATE accounts SET balance_minor = balance_minor - $1 \
     WHERE account_number = $2 AND balance_minor >= $1 AND EXISTS (SELECT 1 FROM advance) \
     RETURNING account_number), \
     entry AS (INSERT INTO journal (transaction_id, payer_account, payee_account, amount_minor, currency, created_at) \
     SELECT $5, $2, $3, $1, $4, $6 FROM debit RETURNING 1), \
     decide AS (UPDATE payments SET \
     status = CASE WHEN EXISTS (SELECT 1 FROM debit) THEN 'approved' ELSE 'declined' END, \
     result = CASE WHEN EXISTS (SELECT 1 FROM debit) THEN $7 ELSE $8 END, \
     device_counter = $9, approval = $10, \
     response = CASE WHEN EXISTS (SELECT 1 FROM debit) THEN $11 ELSE $12 END, \
     decided_at = $6 WHERE transaction_id = $5 AND status = 'prepared' \
     AND EXISTS (SELECT 1 FROM advance) RETURNING 1) \
     SELECT (SELECT COUNT(*) FROM debit), (SELECT COUNT(*) FROM decide), (SELECT COUNT(*) FROM advance)";

/// [`ADVANCE_AND_SETTLE_POSTGRES`] over arrays ($1 the jobs' ordinals, then its parameters
/// $1-$14 in order, each an array): one row per job, its ordinal, debited, decided, advanced.
/// `binding_id = ANY($14)`: the join key as an index condition (see `PREPARE_BULK`).
const SETTLE_BULK: &str = "WITH input AS (SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], \
     $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::bytea[], \
     $12::bytea[], $13::bytea[], $14::text[], $15::text[]) AS i(ord, amount, payer, payee, currency, \
     transaction_id, now, approved, short, device_counter, approval, response_ok, response_short, \
     binding_id, session_id)), \
     advance AS (UPDATE bindings b SET device_counter = i.device_counter FROM input i \
     WHERE b.binding_id = ANY($14) AND b.binding_id = i.binding_id AND b.device_counter < i.device_counter AND b.pin_locked = 0 \
     AND b.wrong_pin_count = 0 AND EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = i.session_id \
     AND s.stage = 'active' AND s.expires_at > i.now) RETURNING i.ord), \
     debit AS (UPDATE accounts a SET balance_minor = a.balance_minor - i.amount \
     FROM input i JOIN advance v ON v.ord = i.ord \
     WHERE a.account_number = i.payer AND a.balance_minor >= i.amount RETURNING i.ord), \
     entry AS (INSERT INTO journal (transaction_id, payer_account, payee_account, amount_minor, currency, created_at) \
     SELECT i.transaction_id, i.payer, i.payee, i.amount, i.currency, i.now FROM input i \
     JOIN debit d ON d.ord = i.ord RETURNING 1), \
     decide AS (UPDATE payments p SET \
     status = CASE WHEN d.ord IS NOT NULL THEN 'approved' ELSE 'declined' END, \
     result = CASE WHEN d.ord IS NOT NULL THEN i.approved ELSE i.short END, \
     device_counter = i.device_counter, approval = i.approval, \
     response = CASE WHEN d.ord IS NOT NULL THEN i.response_ok ELSE i.response_short END, \
     decided_at = i.now FROM input i JOIN advance v ON v.ord = i.ord LEFT JOIN debit d ON d.ord = i.ord \
     WHERE p.transaction_id = i.transaction_id AND p.status = 'prepared' RETURNING i.ord) \
     SELECT i.ord, CASE WHEN d.ord IS NULL THEN 0 ELSE 1 END, CASE WHEN e.ord IS NULL THEN 0 ELSE 1 END, \
     CASE WHEN v.ord IS NULL THEN 0 ELSE 1 END FROM input i LEFT JOIN debit d ON d.ord = i.ord \
     LEFT JOIN decide e ON e.ord = i.ord LEFT JOIN advance v ON v.ord = i.ord";
