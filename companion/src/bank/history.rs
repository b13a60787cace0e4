//! `GET /v1/payments`: the logged-in customer's payments as the bank keeps them, one page at a
//! time (the sandbox bank README, "The API the companion calls").

use serde::Deserialize;

use super::{BankClient, BankError, BearerToken};

/// One payment as the bank's statement gives it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HistoryRecord {
    /// Bank transaction id.
    pub transaction_id: String,
    /// `device` (prepared by the customer's app) or `confirmation` (a shop asked).
    pub kind: String,
    /// When the bank prepared it (Unix ms).
    pub created_at: i64,
    /// When it was decided (Unix ms).
    pub decided_at: Option<i64>,
    /// The customer's account.
    pub payer_account: String,
    /// Who is paid.
    pub payee_account: String,
    /// Their name as the PIN pad showed it.
    pub payee_name: String,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// Digits after the decimal point.
    pub exponent: u8,
    /// The customer's reference.
    pub reference: String,
    /// `approved`, `declined`, `prepared`, `pending_confirmation`, `expired`.
    pub status: String,
    /// The bank's verdict once decided (`approved`, `pin_incorrect`, ...).
    pub result: Option<String>,
    /// The journal entry that moved the money (approved payments only).
    pub journal_reference: Option<String>,
}

/// One page, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HistoryPage {
    /// The payments.
    pub payments: Vec<HistoryRecord>,
    /// The cursor of the next (older) page, if there is one.
    pub next_before: Option<String>,
}

impl BankClient {
    /// The logged-in customer's payments, newest first: `limit` per page (the bank's default
    /// when `None`), older than `before` (a previous page's `next_before`).
    pub async fn payment_history(
        &self,
        token: &BearerToken,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<HistoryPage, BankError> {
        const PATH: &str = "/v1/payments";
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(before) = before {
            query.push(("before", before.to_owned()));
        }
        let request = self.http.get(format!("{}{PATH}", self.base)).query(&query);
        let value = self.send(PATH, request, Some(token)).await?;
        serde_json::from_value(value).map_err(|e| BankError::BadAnswer {
            what: PATH.into(),
            reason: e.to_string(),
        })
    }
}
