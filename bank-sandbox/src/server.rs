//! Opening a bank from a database URL and a master key, and serving it over HTTP or HTTPS.

use std::net::SocketAddr;
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
    open_bank_with(
        database,
        master_key_file,
        config,
        DEFAULT_MAX_CONNECTIONS,
        crate::store::DEFAULT_COMMIT_WORKERS,
    )
    .await
}

/// Database connections [`open_bank`] allows (PostgreSQL pool; SQLite readers are capped
/// lower, see [`crate::store`]).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// [`open_bank`] with a given connection limit and PostgreSQL group-commit workers.
pub async fn open_bank_with(
    database: &str,
    master_key_file: &Path,
    config: BankConfig,
    max_connections: u32,
    commit_workers: usize,
) -> anyhow::Result<Bank> {
    private_sqlite_file(database)?;
    let store = Store::open_with_workers(database, max_connections, commit_workers).await?;
    let master = MasterKey::load(master_key_file, true)?;
    Ok(Bank::open(store, master, config).await?)
}

/// The file of an `sqlite:` URL (none for `:memory:` and other databases).
fn sqlite_path(database: &str) -> Option<PathBuf> {
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// The SQLite database holds staff password hashes, PIN verification values and wrapped
/// keys: its file is created 0600 before SQLite opens it (SQLite gives the `-wal` and `-shm`
/// files the database file's mode), and an existing file, WAL or shared-memory file that is
/// readable by others is narrowed to 0600.
fn private_sqlite_file(database: &str) -> std::io::Result<()> {
    let Some(path) = sqlite_path(database) else {
        return Ok(());
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            let file = PathBuf::from(name);
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                tracing::warn!(file = %file.display(), "database file was readable by others; now 0600");
            }
        }
    }
    Ok(())
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
    // The peer address feeds the per-source throttles.
    let app = crate::api::router(bank).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
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
        .serve(crate::api::router(bank).into_make_service_with_connect_info::<SocketAddr>())
        .await
        .map_err(|e| BankError::internal(&e))
}
