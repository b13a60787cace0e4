//! The payment history through the app core (`AppCore::payment_history`), fed by the sandbox
//! bank's `GET /v1/payments`: an approved and a declined payment, newest first, each with its
//! outcome, masked accounts, the PIN pad's amount format and (approved only) the journal
//! reference the payment's result gave; none without a login.

// Test harness: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_support;
mod flows_support;

use app_support::{progress, start};
use companion::app::{HistoryOutcome, Outcome, OutcomeReason, PaymentOrigin};
use companion::error::ErrorKind;
use flows_support::WRONG_PIN;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_shows_each_payment_with_its_outcome_and_journal_reference() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let paid = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let paid = h
        .core
        .payment_approve(&paid.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(paid.outcome, Outcome::Approved, "{paid:?}");
    *h.world.pin.lock().unwrap() = WRONG_PIN;
    let declined = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let declined = h
        .core
        .payment_approve(&declined.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(declined.reason, OutcomeReason::WrongPin, "{declined:?}");

    let history = h
        .core
        .payment_history(&session.session_id, None)
        .await
        .unwrap();
    assert_eq!(history.payments.len(), 2, "{history:?}");
    assert_eq!(history.next_before, None);
    let [newest, oldest] = [&history.payments[0], &history.payments[1]];
    assert_eq!(newest.payment_id, declined.payment_id);
    assert_eq!(newest.outcome, HistoryOutcome::Declined);
    assert_eq!(newest.reason, OutcomeReason::WrongPin);
    assert_eq!(newest.journal_reference, None);

    assert_eq!(oldest.payment_id, paid.payment_id);
    assert_eq!(oldest.outcome, HistoryOutcome::Approved);
    assert_eq!(oldest.journal_reference, paid.bank_reference);
    assert_eq!(oldest.payee_name, "Shop SARL");
    assert_eq!(
        oldest.payee_account,
        "\u{2022}\u{2022}\u{2022}\u{2022} 0189"
    );
    assert!(oldest.from_account.starts_with('\u{2022}'), "{oldest:?}");
    assert_eq!(oldest.amount_minor, "1250");
    assert_eq!(oldest.amount_text, "EUR 12.50");
    assert_eq!(oldest.reference, "core test");
    assert_eq!(oldest.origin, PaymentOrigin::App);
    assert!(
        oldest.date.ends_with('Z') && oldest.decided_at.is_some(),
        "{oldest:?}"
    );

    let refused = h
        .core
        .payment_history("no-such-session", None)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotLoggedIn);
}
