//! Opening a bank from a database URL and a master key, and serving it over HTTP or HTTPS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::bank::{Bank, BankConfig};
use crate::error::{BankError, BankResult};
use crate::hsm::MasterKey;
use crate::store::Store;

/// Opens (creating and migrating if needed) the store at `database` and the bank over it.
/// The master key comes from `PINBRIDGE_BANK_MASTER_KEY` or `master_key_file`, which is
/// created with a fresh key if it does not exist.
pub async fn open_bank(
    database: &str,
    master_key_file: &Path,
    config: BankConfig,
) -> anyhow::Result<Bank> {
    open_bank_with(database, master_key_file, config, DEFAULT_MAX_CONNECTIONS).await
}

/// Database connections [`open_bank`] allows (PostgreSQL pool; SQLite readers are capped
/// lower, see [`crate::store`]).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// [`open_bank`] with a given connection limit.
pub async fn open_bank_with(
    database: &str,
    master_key_file: &Path,
    config: BankConfig,
    max_connections: u32,
) -> anyhow::Result<Bank> {
    let store = Store::open(database, max_connections).await?;
    let master = MasterKey::load(master_key_file, true)?;
    Ok(Bank::open(store, master, config).await?)
}

/// The default master key file for a database URL: beside an SQLite file, else in the
/// current directory.
pub fn default_master_key_file(database: &str) -> PathBuf {
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p));
    match path {
        Some(p) if !p.is_empty() && !p.contains(":memory:") => {
            PathBuf::from(format!("{p}.master-key"))
        }
        _ => PathBuf::from("bank-sandbox.master-key"),
    }
}

/// Serves `bank` on an already bound listener (plain HTTP) until `shutdown` completes.
pub async fn serve_plain(
    listener: TcpListener,
    bank: Arc<Bank>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Answers are small and written once; no Nagle delay waiting for the client's ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    axum::serve(listener, crate::api::router(bank))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `bank` over TLS (rustls, ring provider) with a PEM certificate chain and key, on
/// an already bound listener.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    bank: Arc<Bank>,
    certificate: &Path,
    key: &Path,
    handle: axum_server::Handle,
) -> BankResult<()> {
    // Installing twice is harmless (the second call reports the first provider).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(certificate, key)
        .await
        .map_err(|e| BankError::invalid(format!("TLS certificate or key: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| BankError::internal(&e))?;
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(crate::api::router(bank).into_make_service())
        .await
        .map_err(|e| BankError::internal(&e))
}
