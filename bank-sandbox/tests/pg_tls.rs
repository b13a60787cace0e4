//! The PostgreSQL store over TLS: a URL with `sslmode=require`, or `verify-full` with the
//! server's CA as `sslrootcert`, opens and its group-commit writes commit, every connection
//! (the pool's and the group commit's) encrypted. The server is the test cluster behind a
//! TLS-terminating proxy that refuses connections in the clear. (The group commit's
//! connections had no TLS: such a URL was refused at open.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bank_sandbox::error::BankError;
use bank_sandbox::store::{Store, job};
use bank_sandbox::tls::SandboxTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

#[derive(Default)]
struct Counts {
    encrypted: AtomicUsize,
    refused: AtomicUsize,
}

/// Listens on 127.0.0.1; answers an SSLRequest with `S`, ends TLS with the certificate of
/// `tls` and relays to `upstream`; closes any other connection (a startup in the clear).
async fn tls_proxy(upstream: String, tls: &SandboxTls) -> (SocketAddr, Arc<Counts>) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(tls.server_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(tls.server_key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let seen = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, upstream, counts) = (acceptor.clone(), upstream.clone(), seen.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 8];
                if client.read_exact(&mut first).await.is_err() {
                    return;
                }
                if first != SSL_REQUEST {
                    counts.refused.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if client.write_all(b"S").await.is_err() {
                    return;
                }
                let Ok(mut client) = acceptor.accept(client).await else {
                    return;
                };
                counts.encrypted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (address, counts)
}

/// `url` with its `host:port` replaced and `query` appended.
fn through(url: &str, host_port: &str, query: &str) -> (String, String) {
    let after_at = url.find('@').unwrap() + 1;
    let end = after_at + url[after_at..].find('/').unwrap();
    let upstream = url[after_at..end].to_owned();
    (
        format!("{}{host_port}{}?{query}", &url[..after_at], &url[end..]),
        upstream,
    )
}

/// Opens the store at `url`, commits a write through the group commit and reads it back.
async fn write_and_read(url: &str, name: &'static str) -> Result<(), String> {
    let store = Store::open(url, 2).await.map_err(|e| e.to_string())?;
    let name = store
        .write(job(move |conn| {
            Box::pin(async move {
                conn.execute(
                    "INSERT INTO bank_keys (name, key_block, created_at) VALUES (?, 'k', 1)",
                    vec![name.into()],
                )
                .await?;
                Ok::<_, BankError>(name)
            })
        }))
        .await
        .map_err(|e| e.to_string())?;
    let count: i64 = sqlx::query_scalar(&store.q("SELECT COUNT(*) FROM bank_keys WHERE name = ?"))
        .bind(name)
        .fetch_one(store.reader())
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    assert_eq!(count, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_and_verify_full_reach_the_group_commit_over_tls() {
    let Some(base) = support::postgres_url() else {
        return;
    };
    let tls = SandboxTls::generate(&["localhost".to_owned(), "127.0.0.1".to_owned()], 2).unwrap();
    let database = support::fresh_postgres_database(&base).await;
    let (_, upstream) = through(&database, "", "");
    let (proxy, counts) = tls_proxy(upstream, &tls).await;

    // require: encrypted, the certificate (of a CA nobody trusts) not checked.
    let (url, _) = through(&database, &proxy.to_string(), "sslmode=require");
    write_and_read(&url, "require").await.unwrap();
    let workers = bank_sandbox::store::DEFAULT_COMMIT_WORKERS;
    // The pool's connections and one per group-commit worker, none in the clear.
    assert!(
        counts.encrypted.load(Ordering::SeqCst) > workers,
        "{} TLS connections",
        counts.encrypted.load(Ordering::SeqCst)
    );
    assert_eq!(counts.refused.load(Ordering::SeqCst), 0);

    // verify-full with the CA as sslrootcert, by the name in the certificate.
    let dir = tempfile::tempdir().unwrap();
    let files = tls.write_to(dir.path()).unwrap();
    let query = format!("sslmode=verify-full&sslrootcert={}", files.ca.display());
    let (url, _) = through(&database, &format!("localhost:{}", proxy.port()), &query);
    write_and_read(&url, "verify-full")
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(counts.refused.load(Ordering::SeqCst), 0);

    // verify-full with another CA: refused, nothing in the clear.
    let other = SandboxTls::generate(&["localhost".to_owned()], 2).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other_files = other.write_to(other_dir.path()).unwrap();
    let query = format!(
        "sslmode=verify-full&sslrootcert={}",
        other_files.ca.display()
    );
    let (url, _) = through(&database, &format!("localhost:{}", proxy.port()), &query);
    assert!(
        write_and_read(&url, "other CA").await.is_err(),
        "an unknown CA was trusted"
    );

    // disable: in the clear, which this server refuses.
    let (url, _) = through(&database, &proxy.to_string(), "sslmode=disable");
    assert!(write_and_read(&url, "disable").await.is_err());
    assert!(counts.refused.load(Ordering::SeqCst) > 0);
}
