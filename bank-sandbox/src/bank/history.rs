//! The customer's payment history (`GET /v1/payments`): every payment of the logged-in
//! customer, newest first, paged by a cursor, with the bank's outcome and the journal entry
//! that moved the money. A statement, not a new source of truth: it reads the payments and
//! the journal as the payment flow wrote them.

use firmware_protocol::message::BankResult as Verdict;
use serde::Serialize;
use sqlx::Row;

use super::Bank;
use crate::error::{BankError, BankResult};
use crate::util::now_ms;

/// Payments per page when the caller does not say.
pub const DEFAULT_PAGE: u32 = 20;
/// The most a page may hold (a statement is read page by page, not in one answer).
pub const MAX_PAGE: u32 = 100;

/// One payment as the customer's statement shows it.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    /// Bank transaction id.
    pub transaction_id: String,
    /// `device` (the customer's app prepared it) or `confirmation` (a shop asked).
    pub kind: String,
    /// When the bank prepared it (Unix ms).
    pub created_at: i64,
    /// When it was decided (Unix ms), if it was.
    pub decided_at: Option<i64>,
    /// The customer's account debited (or to be).
    pub payer_account: String,
    /// Who was paid.
    pub payee_account: String,
    /// Their name as the PIN pad showed it.
    pub payee_name: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Digits after the decimal point (the account's currency exponent).
    pub exponent: i64,
    /// The customer's reference.
    pub reference: String,
    /// `approved`, `declined`, `prepared` (still open), `pending_confirmation` or `expired`
    /// (never approved in time).
    pub status: String,
    /// The bank's verdict (`approved`, `pin_incorrect`, `insufficient_funds`, ...), once
    /// decided.
    pub result: Option<&'static str>,
    /// The journal entry that moved the money: only an approved payment has one.
    pub journal_reference: Option<String>,
}

/// One page of the history.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryPage {
    /// Newest first.
    pub payments: Vec<HistoryEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<String>,
}

/// Where a page starts: below this (created_at, transaction_id) pair.
struct Cursor {
    created_at: i64,
    transaction_id: String,
}

impl Cursor {
    fn of(entry: &HistoryEntry) -> String {
        format!("{}.{}", entry.created_at, entry.transaction_id)
    }

    fn parse(text: &str) -> BankResult<Self> {
        let refused = || BankError::invalid("before: not a cursor from an earlier page");
        let (at, id) = text.split_once('.').ok_or_else(refused)?;
        let created_at = at.parse::<i64>().map_err(|_| refused())?;
        if id.is_empty() {
            return Err(refused());
        }
        Ok(Cursor {
            created_at,
            transaction_id: id.to_owned(),
        })
    }
}

// Both orders are total (transaction ids are unique), so a page boundary never drops or
// repeats a payment made in the same millisecond.
const HISTORY: &str = "SELECT p.transaction_id, p.kind, p.created_at, p.decided_at, p.expires_at, \
     p.payer_account, p.payee_account, p.payee_name, p.amount_minor, p.currency, p.exponent, \
     p.reference, p.status, p.result, j.transaction_id AS journal_reference \
     FROM payments p LEFT JOIN journal j ON j.transaction_id = p.transaction_id \
     WHERE p.customer_id = ? AND (p.created_at < ? OR (p.created_at = ? AND p.transaction_id < ?)) \
     ORDER BY p.created_at DESC, p.transaction_id DESC LIMIT ?";

impl Bank {
    /// One page of `customer_id`'s payments, newest first: `limit` of them (1 to
    /// [`MAX_PAGE`]) older than the cursor `before` from an earlier page.
    pub async fn payment_history(
        &self,
        customer_id: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> BankResult<HistoryPage> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(BankError::invalid(format!(
                "limit: between 1 and {MAX_PAGE}"
            )));
        }
        let cursor = match before {
            Some(text) => Cursor::parse(text)?,
            None => Cursor {
                created_at: i64::MAX,
                transaction_id: String::new(),
            },
        };
        // One more row than asked tells whether an older page exists.
        let rows = sqlx::query(&self.store.q(HISTORY))
            .bind(customer_id)
            .bind(cursor.created_at)
            .bind(cursor.created_at)
            .bind(cursor.transaction_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(self.store.reader())
            .await?;
        let now = now_ms();
        let mut payments = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            let status: String = row.try_get("status")?;
            let expired = matches!(status.as_str(), "prepared" | "pending_confirmation")
                && row.try_get::<i64, _>("expires_at")? <= now;
            payments.push(HistoryEntry {
                transaction_id: row.try_get("transaction_id")?,
                kind: row.try_get("kind")?,
                created_at: row.try_get("created_at")?,
                decided_at: row.try_get("decided_at")?,
                payer_account: row.try_get("payer_account")?,
                payee_account: row.try_get("payee_account")?,
                payee_name: row.try_get("payee_name")?,
                amount_minor: row.try_get("amount_minor")?,
                currency: row.try_get("currency")?,
                exponent: row.try_get("exponent")?,
                reference: row.try_get("reference")?,
                status: if expired { "expired".into() } else { status },
                result: row
                    .try_get::<Option<i64>, _>("result")?
                    .and_then(|r| u8::try_from(r).ok())
                    .and_then(Verdict::from_wire)
                    .map(Verdict::as_str),
                journal_reference: row.try_get("journal_reference")?,
            });
        }
        let next_before = (rows.len() > limit as usize)
            .then(|| payments.last().map(Cursor::of))
            .flatten();
        Ok(HistoryPage {
            payments,
            next_before,
        })
    }
}
