//! Killing the server with SIGKILL in the middle of a load run loses no acknowledged payment
//! and duplicates none; the bank starts again on the same SQLite file and keeps working.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bank_sandbox::load::{LoadArgs, run_with};
use bank_sandbox::store::Store;
use sqlx::Row;

const BIN: &str = env!("CARGO_BIN_EXE_bank-sandbox");

fn start_server(database: &str, key: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--database",
            database,
            "--listen",
            "127.0.0.1:0",
            "--master-key-file",
        ])
        .arg(key)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start bank-sandbox serve");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("server output").expect("read stderr");
        if let Some(url) = line.strip_prefix("bank-sandbox: listening on ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn load_args(url: &str, prefix: &str, sessions: usize, payments: usize) -> LoadArgs {
    LoadArgs {
        prefix: Some(prefix.into()),
        ..LoadArgs::closed_loop(url, sessions, payments)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_load_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("bank.db").display());
    let key = dir.path().join("master.key");
    let seeded = Command::new(BIN)
        .args(["seed", "--database", &database, "--master-key-file"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&seeded.stdout).unwrap();
    assert_eq!(summary["customers"][0]["customer_id"], "alice");

    let (mut server, url) = start_server(&database, &key);
    let acks = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn(run_with(load_args(&url, "K", 8, 100_000), acks.clone()));
    let started = Instant::now();
    while acks.lock().unwrap().len() < 60 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "load made no progress"
        );
        assert!(!load.is_finished(), "load ended early: {:?}", load.await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().unwrap(); // SIGKILL on Unix: no shutdown, no flush.
    server.wait().unwrap();
    let report = load.await.unwrap().unwrap();
    assert!(
        report.errors > 0,
        "the kill interrupted the run: {report:?}"
    );
    let acked = acks.lock().unwrap().clone();
    assert!(acked.len() >= 60);

    // Every acknowledged payment is in the journal exactly once, and the balances match the
    // journal: nothing lost, nothing doubled, no half-written payment.
    let store = Store::open(&database, 2).await.unwrap();
    let mut journal: HashMap<String, (String, i64)> = HashMap::new();
    for row in sqlx::query("SELECT transaction_id, payer_account, amount_minor FROM journal")
        .fetch_all(store.reader())
        .await
        .unwrap()
    {
        let previous = journal.insert(
            row.try_get("transaction_id").unwrap(),
            (
                row.try_get("payer_account").unwrap(),
                row.try_get("amount_minor").unwrap(),
            ),
        );
        assert!(previous.is_none(), "duplicate journal entry");
    }
    for ack in &acked {
        let entry = journal
            .get(&ack.transaction_id)
            .unwrap_or_else(|| panic!("acknowledged payment {} lost", ack.transaction_id));
        assert_eq!(entry.1, ack.amount_minor);
    }
    let approved: i64 = sqlx::query("SELECT COUNT(*) AS n FROM payments WHERE status = 'approved'")
        .fetch_one(store.reader())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(
        approved as usize,
        journal.len(),
        "journal and payment states agree"
    );
    for row in sqlx::query(
        "SELECT account_number, balance_minor FROM accounts WHERE account_number LIKE 'KA%'",
    )
    .fetch_all(store.reader())
    .await
    .unwrap()
    {
        let account: String = row.try_get("account_number").unwrap();
        let balance: i64 = row.try_get("balance_minor").unwrap();
        let spent: i64 = journal
            .values()
            .filter(|(payer, _)| *payer == account)
            .map(|(_, a)| a)
            .sum();
        assert_eq!(balance, 1_000_000_000_000 - spent, "{account}");
    }
    store.close().await;

    // The bank starts again on the same file and keeps working.
    let (mut server, url) = start_server(&database, &key);
    let report = run_with(load_args(&url, "R", 2, 3), Arc::new(Mutex::new(Vec::new())))
        .await
        .unwrap();
    assert_eq!(report.payments, 6, "{report:?}");
    assert_eq!(report.errors, 0);
    server.kill().unwrap();
    server.wait().unwrap();
}
