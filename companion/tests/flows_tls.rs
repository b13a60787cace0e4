//! The bank client over HTTPS: with the bank's CA pinned it reaches the bank; pinned to
//! another CA it is refused (the system's roots are not consulted). The certificates are the
//! sandbox bank's own (`bank_sandbox::tls`, what `bank-sandbox tls-init` writes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bank_sandbox::bank::BankConfig;
use bank_sandbox::tls::SandboxTls;
use companion::bank::{BankClient, BankError, BankSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_reaches_the_bank_only_with_its_ca_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = ["127.0.0.1".to_owned(), "localhost".to_owned()];
    let files = SandboxTls::generate(&hosts, 2)
        .unwrap()
        .write_to(&d.join("tls"))
        .unwrap();
    // Another CA that signs a certificate for the same names: pinning it must not reach the bank.
    let other_ca = SandboxTls::generate(&hosts, 2).unwrap().ca_pem;
    let database = format!("sqlite://{}", d.join("bank.db").display());
    let bank =
        bank_sandbox::server::open_bank(&database, &d.join("master.key"), BankConfig::default())
            .await
            .unwrap();
    bank_sandbox::seed::seed(&bank).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let handle = axum_server::Handle::new();
    let server = {
        let (cert, key, handle) = (files.certificate.clone(), files.key.clone(), handle.clone());
        tokio::spawn(async move {
            bank_sandbox::server::serve_tls(listener, Arc::new(bank), &cert, &key, handle).await
        })
    };

    let pinned = BankClient::new(&BankSettings {
        url: url.clone(),
        ca_pem: Some(std::fs::read(&files.ca).unwrap()),
    })
    .unwrap();
    let mut token = None;
    for _ in 0..50 {
        match pinned.staff_login("teller", "teller-password").await {
            Ok(t) => {
                token = Some(t);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(token.is_some(), "the pinned client never reached the bank");

    let wrong = BankClient::new(&BankSettings {
        url,
        ca_pem: Some(other_ca.into_bytes()),
    })
    .unwrap();
    let error = wrong
        .staff_login("teller", "teller-password")
        .await
        .unwrap_err();
    // Classified where it is born (the TLS handshake's error), not found in text.
    assert!(
        matches!(error, BankError::UntrustedCertificate { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("the bank's certificate is not signed by the pinned CA"),
        "{error}"
    );
    handle.shutdown();
    server.abort();
}
