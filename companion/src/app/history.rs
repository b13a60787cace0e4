//! The customer's payment history with receipts, as the app and `pinbridge history` show it:
//! the bank's statement (`BankClient::payment_history`), each payment's outcome in the same
//! words as a payment's result, accounts masked as a bank masks them, amounts as the PIN pad
//! writes them. One home for these rules, so the window and the command line agree.

use serde::Serialize;

use super::{AppCore, AppError, OutcomeReason};
use crate::bank::{BankClient, BankError, BearerToken, HistoryRecord};

/// Payments per page in the app and the CLI.
pub const HISTORY_PAGE: u32 = 20;

/// How a payment in the history ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum HistoryOutcome {
    /// Paid: the bank journaled it.
    Approved,
    /// The bank said no (the reason says why).
    Declined,
    /// Prepared, not approved on the PIN pad yet, and not expired.
    Open,
    /// Never approved on the PIN pad in time: nothing was paid.
    Expired,
}

/// Who started the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum PaymentOrigin {
    /// This app (or the CLI): the customer's own payment.
    App,
    /// A shop asked, the customer confirmed on the PIN pad.
    Confirmation,
}

/// One payment, as its receipt shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    /// The bank's transaction id.
    pub payment_id: String,
    /// When the bank prepared it (ISO-8601, UTC).
    pub date: String,
    /// When the bank decided it (ISO-8601, UTC).
    pub decided_at: Option<String>,
    /// Who was paid.
    pub payee_name: String,
    /// Their account, masked (`•••• 0189`).
    pub payee_account: String,
    /// The customer's account, masked.
    pub from_account: String,
    /// Minor units as a decimal string.
    pub amount_minor: String,
    /// ISO 4217.
    pub currency: String,
    /// As the PIN pad wrote it (`EUR 123.45`).
    pub amount_text: String,
    /// The customer's reference.
    pub reference: String,
    /// How it ended.
    pub outcome: HistoryOutcome,
    /// Why it was declined (`none` otherwise).
    pub reason: OutcomeReason,
    /// The bank's journal entry for the money moved (approved payments only).
    pub journal_reference: Option<String>,
    /// Who started it.
    pub origin: PaymentOrigin,
}

/// One page of the history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PaymentHistory {
    /// The payments.
    pub payments: Vec<PaymentRecord>,
    /// Pass back for the next (older) page; `null` on the last.
    pub next_before: Option<String>,
}

/// An account number as a statement shows it: the last four characters only.
pub fn mask_account(account: &str) -> String {
    let compact: Vec<char> = account.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() <= 4 {
        return compact.into_iter().collect();
    }
    let last: String = compact[compact.len() - 4..].iter().collect();
    format!("\u{2022}\u{2022}\u{2022}\u{2022} {last}")
}

fn iso_utc(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_ms.to_string())
}

/// The same words for a bank verdict as a payment's result uses.
fn reason_of(result: Option<&str>) -> OutcomeReason {
    match result {
        Some("pin_incorrect") => OutcomeReason::WrongPin,
        Some("pin_locked" | "pin_blocked" | "account_blocked") => OutcomeReason::PinBlocked,
        Some("insufficient_funds") => OutcomeReason::InsufficientFunds,
        Some("declined") => OutcomeReason::UserRejected,
        _ => OutcomeReason::None,
    }
}

impl PaymentRecord {
    /// The receipt of one of the bank's records.
    pub fn from_bank(record: &HistoryRecord) -> Self {
        let outcome = match record.status.as_str() {
            "approved" => HistoryOutcome::Approved,
            "declined" => HistoryOutcome::Declined,
            "expired" => HistoryOutcome::Expired,
            _ => HistoryOutcome::Open,
        };
        let reason = if outcome == HistoryOutcome::Declined {
            reason_of(record.result.as_deref())
        } else {
            OutcomeReason::None
        };
        let amount = u64::try_from(record.amount_minor).unwrap_or_default();
        PaymentRecord {
            payment_id: record.transaction_id.clone(),
            date: iso_utc(record.created_at),
            decided_at: record.decided_at.map(iso_utc),
            payee_name: record.payee_name.clone(),
            payee_account: mask_account(&record.payee_account),
            from_account: mask_account(&record.payer_account),
            amount_minor: record.amount_minor.to_string(),
            currency: record.currency.clone(),
            amount_text: firmware_protocol::display::format_money(
                &record.currency,
                amount,
                record.exponent,
            ),
            reference: record.reference.clone(),
            outcome,
            reason,
            // Only money that moved has a journal entry; anything else would be a bank bug,
            // and the receipt does not claim one.
            journal_reference: record
                .journal_reference
                .clone()
                .filter(|_| outcome == HistoryOutcome::Approved),
            origin: if record.kind == "confirmation" {
                PaymentOrigin::Confirmation
            } else {
                PaymentOrigin::App
            },
        }
    }
}

/// One page of the logged-in customer's history from `bank`: the app and the CLI both call it.
pub async fn fetch_history(
    bank: &BankClient,
    token: &BearerToken,
    before: Option<&str>,
) -> Result<PaymentHistory, BankError> {
    let page = bank
        .payment_history(token, Some(HISTORY_PAGE), before)
        .await?;
    Ok(PaymentHistory {
        payments: page.payments.iter().map(PaymentRecord::from_bank).collect(),
        next_before: page.next_before,
    })
}

impl AppCore {
    /// The logged-in customer's payments, newest first, a page at a time (`before`: the
    /// previous page's `nextBefore`).
    pub async fn payment_history(
        &self,
        session_id: &str,
        before: Option<&str>,
    ) -> Result<PaymentHistory, AppError> {
        let (token, bank) = {
            let tables = self.tables();
            let entry = tables
                .logins
                .get(session_id)
                .ok_or_else(|| AppError::NotLoggedIn("the session has ended; log in again"))?;
            (entry.login.token.clone(), entry.bank.clone())
        };
        let result = fetch_history(&bank, &token, before)
            .await
            .map_err(AppError::from);
        self.saw_bank(&result);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, result: Option<&str>, journal: Option<&str>) -> HistoryRecord {
        HistoryRecord {
            transaction_id: "tx-1".into(),
            kind: "device".into(),
            created_at: 1_764_900_000_000,
            decided_at: Some(1_764_900_001_000),
            payer_account: "6222021000001234".into(),
            payee_account: "FR7630006000011234567890189".into(),
            payee_name: "Shop SARL".into(),
            amount_minor: 123_450,
            currency: "EUR".into(),
            exponent: 2,
            reference: "order 42".into(),
            status: status.into(),
            result: result.map(str::to_owned),
            journal_reference: journal.map(str::to_owned),
        }
    }

    #[test]
    fn a_receipt_masks_accounts_and_writes_the_amount_as_the_pin_pad_does() {
        let r = PaymentRecord::from_bank(&record("approved", Some("approved"), Some("tx-1")));
        assert_eq!(r.payee_account, "\u{2022}\u{2022}\u{2022}\u{2022} 0189");
        assert_eq!(r.from_account, "\u{2022}\u{2022}\u{2022}\u{2022} 1234");
        assert_eq!(r.amount_text, "EUR 1,234.50");
        assert_eq!(r.amount_minor, "123450");
        assert_eq!(r.date, "2025-12-05T02:00:00Z");
        assert_eq!(r.outcome, HistoryOutcome::Approved);
        assert_eq!(r.journal_reference.as_deref(), Some("tx-1"));
        assert_eq!(mask_account("12"), "12");
    }

    #[test]
    fn each_outcome_has_the_words_of_a_payment_result() {
        let wrong = PaymentRecord::from_bank(&record("declined", Some("pin_incorrect"), None));
        assert_eq!(
            (wrong.outcome, wrong.reason),
            (HistoryOutcome::Declined, OutcomeReason::WrongPin)
        );
        let blocked = PaymentRecord::from_bank(&record("declined", Some("account_blocked"), None));
        assert_eq!(blocked.reason, OutcomeReason::PinBlocked);
        let open = PaymentRecord::from_bank(&record("prepared", None, None));
        assert_eq!(open.outcome, HistoryOutcome::Open);
        let expired = PaymentRecord::from_bank(&record("expired", None, None));
        assert_eq!(expired.outcome, HistoryOutcome::Expired);
        // A journal reference on a payment that did not move money is not shown.
        let odd = PaymentRecord::from_bank(&record("declined", Some("declined"), Some("tx-1")));
        assert_eq!(odd.journal_reference, None);
    }
}
