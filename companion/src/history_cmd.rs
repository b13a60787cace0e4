//! `pinbridge history`: the customer's payments as the bank keeps them, over the app's own
//! history core (`companion::app::fetch_history`): the same masking, amounts and outcomes as
//! the desktop app's History screen.

use clap::Args;
use companion::app::{HistoryOutcome, OutcomeReason, PaymentHistory, PaymentRecord, fetch_history};
use serde_json::json;

use crate::cli_session::{self, LoggedIn};
use crate::commands::{CliError, CommandResult, Connection, Reporter};

/// `pinbridge history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The older page: the cursor the previous page printed.
    #[arg(long)]
    pub before: Option<String>,
    /// One payment's receipt, by its payment id (searched in the newest pages).
    #[arg(long)]
    pub receipt: Option<String>,
}

/// Pages searched for `--receipt` before giving up (a receipt is for a recent payment).
const RECEIPT_PAGES: usize = 10;

/// `pinbridge history`.
pub async fn history(connection: &Connection, json: bool, args: &HistoryArgs) -> CommandResult {
    let mut reporter = Reporter::new(json, connection);
    // The kept session (no PIN pad login when one still holds), as for every bank command.
    let LoggedIn {
        client,
        store,
        host,
        login,
        ..
    } = cli_session::logged_in(connection, &mut reporter).await?;
    store.save(&host).map_err(CliError::from)?;
    let result = match &args.receipt {
        None => fetch_history(&client, &login.token, args.before.as_deref())
            .await
            .map(|page| (page, None)),
        Some(id) => find(&client, &login.token, id).await,
    };
    if result
        .as_ref()
        .is_err_and(|error| error.kind() == companion::error::ErrorKind::NotLoggedIn)
    {
        cli_session::forget(connection);
    }
    let (page, found) = result.map_err(CliError::from)?;
    match (&args.receipt, found) {
        (Some(id), None) => Err(CliError::new(
            companion::error::ErrorKind::NotFound,
            format!("no payment {id} among your latest payments"),
        )),
        (Some(_), Some(record)) if json => Ok(json!({ "receipt": record })),
        (Some(_), Some(record)) => Ok(json!({ "lines": receipt_lines(&record) })),
        (None, _) if json => Ok(json!({
            "payments": page.payments,
            "nextBefore": page.next_before,
        })),
        (None, _) => Ok(json!({ "lines": table_lines(&page) })),
    }
}

async fn find(
    client: &companion::bank::BankClient,
    token: &companion::bank::BearerToken,
    id: &str,
) -> Result<(PaymentHistory, Option<PaymentRecord>), companion::bank::BankError> {
    let mut before: Option<String> = None;
    for _ in 0..RECEIPT_PAGES {
        let page = fetch_history(client, token, before.as_deref()).await?;
        if let Some(record) = page.payments.iter().find(|p| p.payment_id == id) {
            let record = record.clone();
            return Ok((page, Some(record)));
        }
        match page.next_before.clone() {
            Some(next) => before = Some(next),
            None => return Ok((page, None)),
        }
    }
    Ok((
        PaymentHistory {
            payments: Vec::new(),
            next_before: None,
        },
        None,
    ))
}

/// The outcome in words, as the app's result screen says it.
pub fn outcome_words(record: &PaymentRecord) -> &'static str {
    match (record.outcome, record.reason) {
        (HistoryOutcome::Approved, _) => "approved",
        (HistoryOutcome::Declined, OutcomeReason::WrongPin) => "declined: wrong PIN",
        (HistoryOutcome::Declined, OutcomeReason::PinBlocked) => "declined: PIN blocked",
        (HistoryOutcome::Declined, OutcomeReason::InsufficientFunds) => {
            "declined: not enough money"
        }
        (HistoryOutcome::Declined, OutcomeReason::UserRejected) => "declined on the PIN pad",
        (HistoryOutcome::Declined, _) => "declined",
        (HistoryOutcome::Open, _) => "not approved yet",
        (HistoryOutcome::Expired, _) => "expired, nothing paid",
    }
}

/// `2026-12-05T03:10:13Z` -> `2026-12-05 03:10` (UTC, as the header says).
fn short_date(iso: &str) -> String {
    iso.get(..16)
        .map_or_else(|| iso.to_owned(), |d| d.replace('T', " "))
}

/// The page as an aligned table (amounts right-aligned), then how to get the older page.
pub fn table_lines(page: &PaymentHistory) -> Vec<String> {
    if page.payments.is_empty() {
        return vec!["No payments yet.".to_owned()];
    }
    let header = [
        "DATE (UTC)",
        "PAYEE",
        "ACCOUNT",
        "AMOUNT",
        "OUTCOME",
        "JOURNAL REF",
    ];
    let rows: Vec<[String; 6]> = page
        .payments
        .iter()
        .map(|p| {
            [
                short_date(&p.date),
                p.payee_name.clone(),
                p.payee_account.clone(),
                p.amount_text.clone(),
                outcome_words(p).to_owned(),
                p.journal_reference.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 3 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    if let Some(next) = &page.next_before {
        out.push(format!("Older payments: pinbridge history --before {next}"));
    }
    out
}

/// One payment's receipt as aligned `label  value` lines.
pub fn receipt_lines(p: &PaymentRecord) -> Vec<String> {
    let rows = [
        ("Payment", p.payment_id.clone()),
        ("Date (UTC)", short_date(&p.date)),
        (
            "Decided (UTC)",
            p.decided_at.as_deref().map_or("-".into(), short_date),
        ),
        ("Paid to", p.payee_name.clone()),
        ("Their account", p.payee_account.clone()),
        ("From account", p.from_account.clone()),
        ("Amount", p.amount_text.clone()),
        (
            "Reference",
            if p.reference.is_empty() {
                "-".into()
            } else {
                p.reference.clone()
            },
        ),
        ("Outcome", outcome_words(p).to_owned()),
        (
            "Journal ref",
            p.journal_reference.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(l, v)| format!("{l:<width$}  {v}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use companion::app::PaymentOrigin;

    fn record(id: &str, amount: &str, outcome: HistoryOutcome, journal: bool) -> PaymentRecord {
        PaymentRecord {
            payment_id: id.into(),
            date: "2026-12-05T03:10:13Z".into(),
            decided_at: None,
            payee_name: "Zhang San".into(),
            payee_account: "\u{2022}\u{2022}\u{2022}\u{2022} 0189".into(),
            from_account: "\u{2022}\u{2022}\u{2022}\u{2022} 1234".into(),
            amount_minor: "0".into(),
            currency: "CNY".into(),
            amount_text: amount.into(),
            reference: String::new(),
            outcome,
            reason: if outcome == HistoryOutcome::Declined {
                OutcomeReason::WrongPin
            } else {
                OutcomeReason::None
            },
            journal_reference: journal.then(|| id.to_owned()),
            origin: PaymentOrigin::App,
        }
    }

    #[test]
    fn the_history_is_an_aligned_table_with_amounts_right_aligned() {
        let page = PaymentHistory {
            payments: vec![
                record("tx-1", "CNY 1,234.50", HistoryOutcome::Approved, true),
                record("tx-22", "CNY 5.00", HistoryOutcome::Declined, false),
            ],
            next_before: Some("17.tx-22".into()),
        };
        let lines = table_lines(&page);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("DATE (UTC)"), "{lines:#?}");
        // Right-aligned: both amounts end in the same column.
        let end = |l: &str, a: &str| l.find(a).map(|i| i + a.len());
        assert_eq!(end(&lines[1], "1,234.50"), end(&lines[2], "5.00"));
        assert!(lines[1].contains("approved") && lines[1].contains("tx-1"));
        assert!(lines[2].contains("declined: wrong PIN"));
        assert!(
            !lines.iter().any(|l| l.contains('{')),
            "no JSON: {lines:#?}"
        );
        assert_eq!(
            lines[3],
            "Older payments: pinbridge history --before 17.tx-22"
        );
        let receipt = receipt_lines(&page.payments[0]);
        assert!(
            receipt
                .iter()
                .any(|l| l.starts_with("Journal ref") && l.ends_with("tx-1"))
        );
        assert_eq!(
            table_lines(&PaymentHistory {
                payments: vec![],
                next_before: None
            }),
            vec!["No payments yet."]
        );
    }
}
