//! The write of a prepared payment: the binding's next bank payment counter, the
//! ApprovePayment MACed with it, and the payment row.
//!
//! On PostgreSQL the usual prepare is one statement (data-modifying CTEs, standard
//! PostgreSQL): the bank MACs the request with the counter it expects (the one after the
//! last this process issued for the session), and the statement advances the counter only
//! from the value before that one and inserts the payment only if it did. When the
//! expectation was wrong (another process prepared for the session, a PIN change used a
//! counter, the session's first payment), nothing was written and the statement said the
//! counter it found: the bank MACs again with the next one, once; after that, or when a
//! check refused, the step-by-step path decides and says why. Each statement is a round
//! trip on the group commit's connection, so this takes a payment from three to two.

use firmware_protocol::crypto::keys::MacKey;
use firmware_protocol::message::{ApprovePayment, MacTag, PaymentDetails, Request, SessionId};

use super::{IDEMPOTENCY_RACE, currency_mismatch, payee_currency, session_ended};
use crate::bank::{encode_request, encoded_bytes, seal_refused};
use crate::error::{BankError, BankResult};
use crate::store::{BulkStep, SqlValue, StoreError, WriteRow, WriteTx};
use crate::util::now_ms;

/// What a prepare writes, besides the counter.
pub(super) struct NewPayment {
    pub transaction_id: String,
    pub customer_id: String,
    pub binding_id: String,
    pub session_id: SessionId,
    pub response_key: MacKey,
    pub idempotency_key: String,
    pub details: PaymentDetails,
    pub expires_at: i64,
}

/// The prepared payment as written: its counter, the encoded request (hex) and the request.
pub(super) type Prepared = (i64, String, ApprovePayment);

/// The prepare's share of the batch's bulk statement (PostgreSQL, the counter expected),
/// with the request MACed with that counter (made here, before the writer runs it).
pub(super) struct BulkPrepare {
    pub step: BulkStep,
    pub expected: Prepared,
}

impl NewPayment {
    /// The ApprovePayment with `counter`, MACed under the session response key, and its
    /// encoding (hex).
    fn request(&self, counter: i64) -> BankResult<(ApprovePayment, String)> {
        let mut approve = ApprovePayment {
            session_id: self.session_id,
            payment: self.details.clone(),
            counter: u64::try_from(counter)
                .map_err(|_| BankError::internal(&"negative counter"))?,
            bank_mac: MacTag([0; 16]),
        };
        approve
            .seal_bank_mac(&self.response_key)
            .map_err(seal_refused)?;
        let encoded = encode_request(Request::ApprovePayment(approve.clone()))?;
        Ok((approve, encoded))
    }

    /// The bulk step of a prepare expecting the counter after `last` ([`PREPARE_BULK`]).
    pub(super) fn bulk(&self, last: i64) -> BankResult<BulkPrepare> {
        let expected = last.saturating_add(1);
        let (approve, encoded) = self.request(expected)?;
        let keys = vec![
            format!("binding:{}", self.binding_id),
            format!("key:{}\0{}", self.customer_id, self.idempotency_key),
        ];
        let step = BulkStep::new(
            PREPARE_BULK,
            self.values(expected, &encoded)?,
            keys,
            // The counter step and the insert happen together or not at all (an insert
            // that fails fails the statement).
            |_| true,
        );
        Ok(BulkPrepare {
            step,
            expected: (expected, encoded, approve),
        })
    }

    /// The payment row's values in [`INSERT`]'s order ($13 the counter).
    fn values(&self, counter: i64, encoded: &str) -> BankResult<Vec<SqlValue>> {
        let details = &self.details;
        Ok(vec![
            self.transaction_id.as_str().into(),
            self.customer_id.as_str().into(),
            self.binding_id.as_str().into(),
            hex::encode(self.session_id.0).into(),
            self.idempotency_key.as_str().into(),
            details.payer_account.as_str().into(),
            details.payee_account.as_str().into(),
            details.payee_name.as_str().into(),
            (details.amount_minor as i64).into(),
            details.currency.as_str().into(),
            i64::from(details.currency_exponent).into(),
            details.reference.as_str().into(),
            counter.into(),
            encoded_bytes(encoded)?.into(),
            now_ms().into(),
            self.expires_at.into(),
        ])
    }
}

fn insert_error(e: StoreError) -> BankError {
    if e.is_unique_violation() {
        BankError::conflict(IDEMPOTENCY_RACE, "prepared concurrently")
    } else {
        e.into()
    }
}

/// Writes a prepared payment in `conn`. `last_counter`: the counter this process last
/// issued for the session, if any (PostgreSQL tries the one after it in one statement).
/// `bulk`: what the batch's bulk statement did for it (the expectation and the job's row).
pub(super) async fn write_prepared(
    conn: &mut WriteTx,
    payment: &NewPayment,
    last_counter: Option<i64>,
    bulk: Option<(Prepared, WriteRow)>,
) -> BankResult<Prepared> {
    if conn.is_postgres()
        && let Some(last) = last_counter
    {
        let mut expected = last.saturating_add(1);
        let mut tries = 2;
        if let Some((prepared, row)) = bulk {
            // The bulk statement was the first try.
            if row.int(1)? == 1 {
                return Ok(prepared);
            }
            tries = match row.int(2) {
                Ok(found) if found != expected - 1 => {
                    expected = found.saturating_add(1);
                    1
                }
                _ => 0,
            };
        }
        for _ in 0..tries {
            let (approve, encoded) = payment.request(expected)?;
            let row = conn
                .fetch_optional(PREPARE_POSTGRES, payment.values(expected, &encoded)?)
                .await
                .map_err(insert_error)?
                .ok_or_else(|| BankError::internal(&"prepare returned no row"))?;
            if row.int(0)? == 1 {
                return Ok((expected, encoded, approve));
            }
            match row.int(1) {
                // Another counter than expected: MAC with the one after it.
                Ok(found) if found != expected - 1 => expected = found.saturating_add(1),
                // The counter was right, a check refused (or no binding): said below.
                _ => break,
            }
        }
    }
    step_by_step(conn, payment).await
}

/// The prepare as two statements (SQLite, and PostgreSQL when the one statement did not
/// write): the counter step (which also checks the binding, the session and the payee's
/// currency), then the payment row.
async fn step_by_step(conn: &mut WriteTx, payment: &NewPayment) -> BankResult<Prepared> {
    let details = &payment.details;
    let counter = match conn
        .fetch_optional(
            COUNTER,
            vec![
                payment.binding_id.as_str().into(),
                details.payee_account.as_str().into(),
                details.currency.as_str().into(),
                hex::encode(payment.session_id.0).into(),
                now_ms().into(),
            ],
        )
        .await?
    {
        Some(row) => row.int(0)?,
        None => {
            let (payee, currency) = (&details.payee_account, details.currency.as_str());
            return Err(match payee_currency(conn, payee, currency).await? {
                Some(held) => currency_mismatch(payee, &held, currency),
                None => session_ended(),
            });
        }
    };
    let (approve, encoded) = payment.request(counter)?;
    conn.execute(INSERT, payment.values(counter, &encoded)?)
        .await
        .map_err(insert_error)?;
    Ok((counter, encoded, approve))
}

/// The counter step: the payee's currency is checked in the same statement (an account of
/// this bank held in another currency could not be credited), and the session must be
/// active (another bank process may have ended it).
const COUNTER: &str = "UPDATE bindings SET payment_counter = payment_counter + 1 WHERE binding_id = ? \
     AND status = 'active' AND NOT EXISTS (SELECT 1 FROM accounts \
     WHERE account_number = ? AND currency <> ?) AND EXISTS (SELECT 1 FROM sessions \
     WHERE session_id = ? AND stage = 'active' AND expires_at > ?) RETURNING payment_counter";

const INSERT: &str = "INSERT INTO payments (transaction_id, kind, customer_id, binding_id, session_id, \
     idempotency_key, payer_account, payee_account, payee_name, amount_minor, currency, exponent, \
     reference, bank_counter, request, status, created_by, created_at, expires_at) \
     VALUES (?, 'device', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'prepared', 'customer', ?, ?)";

/// [`COUNTER`] and [`INSERT`] in one statement, with the counter expected ($13, the
/// request MACed with it in $14): the counter advances only from the one before it, and the
/// row is inserted only if it did. Answers whether the row was inserted and the counter as
/// the statement found it (all parts of a statement see the same snapshot, so the SELECT
/// reads the value before the UPDATE).
const PREPARE_POSTGRES: &str = "WITH counter AS (\
     UPDATE bindings SET payment_counter = $13 WHERE binding_id = $3 AND payment_counter = $13 - 1 \
     AND status = 'active' AND NOT EXISTS (SELECT 1 FROM accounts \
     WHERE account_number = $7 AND currency <> $10) AND EXISTS (SELECT 1 FROM sessions \
     WHERE session_id = $4 AND stage = 'active' AND expires_at > $15) RETURNING 1), \
     inserted AS (INSERT INTO payments (transaction_id, kind, customer_id, binding_id, session_id, \
     idempotency_key, payer_account, payee_account, payee_name, amount_minor, currency, exponent, \
     reference, bank_counter, request, status, created_by, created_at, expires_at) \
     SELECT $1, 'device', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'prepared', \
     'customer', $15, $16 FROM counter RETURNING 1) \
     SELECT (SELECT COUNT(*) FROM inserted), (SELECT payment_counter FROM bindings WHERE binding_id = $3)";

/// [`PREPARE_POSTGRES`] for a batch of prepares, over arrays ($1 the jobs' ordinals, then the
/// values in [`INSERT`]'s order): one row per job, its ordinal, whether it was written and
/// the counter as the statement found it. A key used before is found here (not written, the
/// job's own path then says so) rather than failing the statement; a concurrent use still
/// fails it, and the batch runs again job by job. `binding_id = ANY($4)` and
/// `account_number = ANY($8)` repeat the joins' keys as index conditions: the group commit
/// runs generic plans, and without them the plan read all of `bindings` (13,350 sequential
/// scans of its 1,000 rows in a 20 s run at 1,000 payments/s) and hashed all of `accounts`
/// per batch (0.19 of a batch's 0.28 ms).
const PREPARE_BULK: &str = "WITH input AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], \
     $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::text[], \
     $12::int8[], $13::text[], $14::int8[], $15::bytea[], $16::int8[], $17::int8[]) AS i(ord, \
     transaction_id, customer_id, binding_id, session_id, idempotency_key, payer_account, payee_account, \
     payee_name, amount_minor, currency, exponent, reference, bank_counter, request, created_at, expires_at)), \
     counter AS (UPDATE bindings b SET payment_counter = i.bank_counter FROM input i \
     WHERE b.binding_id = ANY($4) AND b.binding_id = i.binding_id AND b.payment_counter = i.bank_counter - 1 AND b.status = 'active' \
     AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_number = ANY($8) \
     AND a.account_number = i.payee_account AND a.currency <> i.currency) \
     AND EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = i.session_id AND s.stage = 'active' \
     AND s.expires_at > i.created_at) \
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.customer_id = i.customer_id \
     AND p.idempotency_key = i.idempotency_key) RETURNING i.ord), \
     inserted AS (INSERT INTO payments (transaction_id, kind, customer_id, binding_id, session_id, \
     idempotency_key, payer_account, payee_account, payee_name, amount_minor, currency, exponent, \
     reference, bank_counter, request, status, created_by, created_at, expires_at) \
     SELECT i.transaction_id, 'device', i.customer_id, i.binding_id, i.session_id, i.idempotency_key, \
     i.payer_account, i.payee_account, i.payee_name, i.amount_minor, i.currency, i.exponent, i.reference, \
     i.bank_counter, i.request, 'prepared', 'customer', i.created_at, i.expires_at \
     FROM input i JOIN counter c ON c.ord = i.ord RETURNING 1) \
     SELECT i.ord, CASE WHEN c.ord IS NULL THEN 0 ELSE 1 END, b.payment_counter FROM input i \
     LEFT JOIN counter c ON c.ord = i.ord LEFT JOIN bindings b ON b.binding_id = i.binding_id AND b.binding_id = ANY($4)";
