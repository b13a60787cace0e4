//! HTTP handler of the customer's payment history: the session bearer, like payments; the
//! customer is the session's, never a parameter, so no one reads another customer's statement.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::{Json, bearer, ok};
use crate::bank::Bank;
use crate::error::{BankError, BankResult};

#[derive(Deserialize)]
pub(super) struct Page {
    limit: Option<u32>,
    before: Option<String>,
}

pub(super) async fn payment_history(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    // The bank's own refusal shape for a bad query, not axum's plain-text one.
    let Query(page) = page.map_err(|e| BankError::invalid(format!("query: {}", e.body_text())))?;
    let history = bank
        .payment_history(&session.customer_id, page.limit, page.before.as_deref())
        .await?;
    ok(serde_json::to_value(history).map_err(|e| BankError::internal(&e))?)
}
