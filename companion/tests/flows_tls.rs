//! The bank client over HTTPS: with the bank's CA pinned it reaches the bank; pinned to
//! another CA it is refused (the system's roots are not consulted). Certificates are made at
//! test time with the `openssl` command, as bank-sandbox's own TLS test does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bank_sandbox::bank::BankConfig;
use companion::bank::{BankClient, BankError, BankSettings};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn new_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_reaches_the_bank_only_with_its_ca_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    new_ca(d, "bank-ca");
    new_ca(d, "other-ca");
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "bank-ca.pem",
            "-CAkey",
            "bank-ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
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
        let (cert, key, handle) = (d.join("server.pem"), d.join("server.key"), handle.clone());
        tokio::spawn(async move {
            bank_sandbox::server::serve_tls(listener, Arc::new(bank), &cert, &key, handle).await
        })
    };

    let pinned = BankClient::new(&BankSettings {
        url: url.clone(),
        ca_pem: Some(std::fs::read(d.join("bank-ca.pem")).unwrap()),
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
        ca_pem: Some(std::fs::read(d.join("other-ca.pem")).unwrap()),
    })
    .unwrap();
    let error = wrong
        .staff_login("teller", "teller-password")
        .await
        .unwrap_err();
    assert!(matches!(error, BankError::Unreachable { .. }), "{error}");
    handle.shutdown();
    server.abort();
}
