//! The ledger steps of a payment shared by its paths: debit, journal entry, stored
//! decision, and the checks and refusals around them (SQLite's step by step, the
//! confirmations' transfer, and the PostgreSQL paths' fallbacks).

use firmware_protocol::message::BankResult as Verdict;
use sqlx::{AnyConnection, Row};

use crate::error::{BankError, BankResult};
use crate::store::{SqlValue, Store, WriteTx};
use crate::util::now_ms;

/// The money side of a payment.
pub(crate) struct Transfer<'a> {
    pub transaction_id: &'a str,
    pub payer: &'a str,
    pub payee: &'a str,
    pub amount: i64,
    pub currency: &'a str,
}

/// A device payment's decision, as stored.
pub(super) struct Decision<'a> {
    pub transaction_id: &'a str,
    pub verdict: Verdict,
    pub device_counter: i64,
    pub approval: Vec<u8>,
    pub response: Vec<u8>,
}

/// Moves money and writes the journal entry in `conn`: debits the payer if the balance
/// covers it, credits the payee if it is an account of this bank. The journal's primary
/// key is the transaction id, so a second entry for one payment cannot exist.
pub(crate) async fn transfer(
    store: &Store,
    conn: &mut AnyConnection,
    transaction_id: &str,
    payer: &str,
    payee: &str,
    amount: i64,
    currency: &str,
) -> BankResult<Verdict> {
    // Refused before any debit: an account of this bank in another currency could not be
    // credited (the confirmation was checked when it was created; this holds whatever the
    // path).
    if let Some(held) = sqlx::query(&store.q(PAYEE_OTHER_CURRENCY))
        .bind(payee)
        .bind(currency)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Err(currency_mismatch(
            payee,
            &held.try_get::<String, _>(0)?,
            currency,
        ));
    }
    if !debit(store, conn, payer, amount).await? {
        return Ok(Verdict::InsufficientFunds);
    }
    let transfer = Transfer {
        transaction_id,
        payer,
        payee,
        amount,
        currency,
    };
    sqlx::query(&store.q(CREDIT))
        .bind(amount)
        .bind(payee)
        .bind(currency)
        .execute(&mut *conn)
        .await?;
    bind_journal(sqlx::query(&store.q(JOURNAL)), &transfer)
        .execute(&mut *conn)
        .await
        .map_err(journal_error)?;
    Ok(Verdict::Approved)
}

/// Debits `amount` from `payer` if the balance covers it; whether it did.
pub(super) async fn debit(
    store: &Store,
    conn: &mut AnyConnection,
    payer: &str,
    amount: i64,
) -> BankResult<bool> {
    let debited = sqlx::query(&store.q(DEBIT))
        .bind(amount)
        .bind(payer)
        .bind(amount)
        .execute(&mut *conn)
        .await?;
    Ok(debited.rows_affected() == 1)
}

pub(super) fn session_ended() -> BankError {
    BankError::unauthorized("the session ended or the device is no longer bound; log in again")
}

/// Whether the session is active (in the write transaction).
pub(super) async fn session_active(conn: &mut WriteTx, session_hex: &str) -> BankResult<bool> {
    Ok(conn
        .fetch_optional(
            "SELECT 1 FROM sessions WHERE session_id = ? AND stage = 'active' AND expires_at > ?",
            vec![session_hex.into(), now_ms().into()],
        )
        .await?
        .is_some())
}

/// The currency of an account of this bank, if `payee` is one held in another currency.
pub(super) const PAYEE_OTHER_CURRENCY: &str =
    "SELECT currency FROM accounts WHERE account_number = ? AND currency <> ?";

/// The refusal of a payment in `currency` to an account of this bank held in `held`.
pub(super) fn currency_mismatch(payee: &str, held: &str, currency: &str) -> BankError {
    BankError::rejected(
        "currency_mismatch",
        format!("the payee account {payee} is held in {held}; a payment in {currency} cannot be credited to it"),
    )
    .with("payee_currency", held.to_owned())
}

/// [`PAYEE_OTHER_CURRENCY`] in a write transaction.
pub(super) async fn payee_currency(
    conn: &mut WriteTx,
    payee: &str,
    currency: &str,
) -> BankResult<Option<String>> {
    match conn
        .fetch_optional(PAYEE_OTHER_CURRENCY, vec![payee.into(), currency.into()])
        .await?
    {
        Some(row) => Ok(Some(row.text(0)?)),
        None => Ok(None),
    }
}

pub(super) const DEBIT: &str = "UPDATE accounts SET balance_minor = balance_minor - ? WHERE account_number = ? AND balance_minor >= ?";
pub(super) const CREDIT: &str = "UPDATE accounts SET balance_minor = balance_minor + ? WHERE account_number = ? AND currency = ?";
pub(super) const JOURNAL: &str = "INSERT INTO journal (transaction_id, payer_account, payee_account, amount_minor, currency, created_at) \
     VALUES (?, ?, ?, ?, ?, ?)";
/// Claims a prepared payment for its decision; no row changed means it was decided already.
pub(super) const DECIDE: &str = "UPDATE payments SET status = ?, result = ?, device_counter = ?, approval = ?, response = ?, \
     decided_at = ? WHERE transaction_id = ? AND status = 'prepared'";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

pub(super) fn bind_journal<'q>(query: AnyQuery<'q>, transfer: &Transfer<'_>) -> AnyQuery<'q> {
    query
        .bind(transfer.transaction_id.to_owned())
        .bind(transfer.payer.to_owned())
        .bind(transfer.payee.to_owned())
        .bind(transfer.amount)
        .bind(transfer.currency.to_owned())
        .bind(now_ms())
}

pub(super) fn journal_values(transfer: &Transfer<'_>) -> Vec<SqlValue> {
    vec![
        transfer.transaction_id.into(),
        transfer.payer.into(),
        transfer.payee.into(),
        transfer.amount.into(),
        transfer.currency.into(),
        now_ms().into(),
    ]
}

pub(super) fn decision_values(decision: Decision<'_>) -> Vec<SqlValue> {
    let status = if decision.verdict == Verdict::Approved {
        "approved"
    } else {
        "declined"
    };
    vec![
        status.into(),
        i64::from(decision.verdict.to_wire()).into(),
        decision.device_counter.into(),
        decision.approval.into(),
        decision.response.into(),
        now_ms().into(),
        decision.transaction_id.into(),
    ]
}

pub(super) fn journal_error(e: sqlx::Error) -> BankError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => already_journaled(),
        other => other.into(),
    }
}

pub(super) fn already_journaled() -> BankError {
    BankError::conflict(
        "payment_already_decided",
        "the journal already has this transaction",
    )
}

/// Stores a device payment's decision; for an approved one (payer already debited) also
/// writes the journal entry and credits the payee (at the end of the batch).
pub(super) async fn record_decision(
    conn: &mut WriteTx,
    decision: Decision<'_>,
    transfer: &Transfer<'_>,
) -> BankResult<()> {
    if decision.verdict == Verdict::Approved {
        conn.credit_at_commit(transfer.payee, transfer.currency, transfer.amount);
        conn.execute(JOURNAL, journal_values(transfer))
            .await
            .map_err(|e| {
                if e.is_unique_violation() {
                    already_journaled()
                } else {
                    e.into()
                }
            })?;
    }
    if conn.execute(DECIDE, decision_values(decision)).await? != 1 {
        return Err(BankError::conflict(
            "payment_already_decided",
            "the payment was decided concurrently",
        ));
    }
    Ok(())
}
