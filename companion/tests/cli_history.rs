//! `pinbridge history` against an in-process sandbox bank and mock PIN pad: after a payment,
//! the history is an aligned table (no JSON-like lines) with the masked account, the amount as
//! the PIN pad writes it and the journal reference; `--json` gives the app's records;
//! `--receipt` one payment's receipt.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use flows_support::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_the_payment_with_its_journal_reference() {
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    world.run_cli(state.path(), &["staff", "init"]).await;
    world
        .run_cli(state.path(), &["staff", "enrol", "--customer", "alice"])
        .await;
    world
        .run_cli(state.path(), &["pair", "--name", "CLI-TEST"])
        .await;
    let paid = world
        .run_cli(
            state.path(),
            &[
                "--json",
                "pay",
                "--to",
                "FR7630006000011234567890189",
                "--payee-name",
                "Shop SARL",
                "--amount",
                "1234.5",
                "--currency",
                "EUR",
            ],
        )
        .await;
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    let transaction = paid["payment"]["transactionId"]
        .as_str()
        .unwrap()
        .to_owned();

    let text = world.run_cli(state.path(), &["history"]).await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let header = text
        .lines()
        .find(|l| l.starts_with("DATE (UTC)"))
        .unwrap_or_else(|| panic!("no table header: {text}"));
    assert!(header.contains("JOURNAL REF"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("Shop SARL"))
        .unwrap_or_else(|| panic!("no payment row: {text}"));
    assert!(
        row.contains("\u{2022}\u{2022}\u{2022}\u{2022} 0189"),
        "{row}"
    );
    assert!(row.contains("EUR 1,234.50"), "{row}");
    assert!(row.contains("approved"), "{row}");
    assert!(row.ends_with(&transaction), "{row}");
    assert!(!text.contains("{\""), "no JSON in human output: {text}");

    let json = world.run_cli(state.path(), &["--json", "history"]).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        json["payments"][0]["paymentId"],
        transaction.as_str(),
        "{json}"
    );
    assert_eq!(json["payments"][0]["outcome"], "approved", "{json}");
    assert_eq!(
        json["payments"][0]["journalReference"],
        transaction.as_str()
    );
    assert!(json["nextBefore"].is_null(), "{json}");

    let receipt = world
        .run_cli(state.path(), &["history", "--receipt", &transaction])
        .await;
    let receipt = String::from_utf8_lossy(&receipt.stdout).into_owned();
    assert!(
        receipt
            .lines()
            .any(|l| l.starts_with("Amount") && l.ends_with("EUR 1,234.50")),
        "{receipt}"
    );
}
