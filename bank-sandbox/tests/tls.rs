//! `serve --tls-cert --tls-key`: HTTPS with rustls, and a client that pins the bank's CA
//! (and trusts nothing else) reaches it, while one without that CA is refused. The CA and the
//! server certificate come from `bank-sandbox tls-init`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bank-sandbox");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = Command::new(BIN)
        .args(["tls-init", "--days", "2", "--out"])
        .arg(d)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "tls-init: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let files: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(files["key"], d.join("server.key").display().to_string());

    let database = format!("sqlite://{}", d.join("bank.db").display());
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--database",
            &database,
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
        ])
        .arg(d.join("server.pem"))
        .arg("--tls-key")
        .arg(d.join("server.key"))
        .arg("--master-key-file")
        .arg(d.join("master.key"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(url) = line.strip_prefix("bank-sandbox: listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let ca = reqwest::Certificate::from_pem(&std::fs::read(d.join("ca.pem")).unwrap()).unwrap();
    let pinned = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let mut reached = None;
    for _ in 0..50 {
        match pinned.get(format!("{url}/health")).send().await {
            Ok(response) => {
                reached = Some(response.status());
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(reached, Some(reqwest::StatusCode::OK));

    let unpinned = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(unpinned.get(format!("{url}/health")).send().await.is_err());
    child.kill().unwrap();
    child.wait().unwrap();
}
