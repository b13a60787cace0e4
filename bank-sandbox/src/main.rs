//! `bank-sandbox`: serve the sandbox bank, seed demo data, run the load generator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bank_sandbox::bank::{BankConfig, Role};
use bank_sandbox::server::{
    DEFAULT_MAX_CONNECTIONS, default_master_key_file, open_bank_with, serve_plain, serve_tls,
};
use bank_sandbox::store::DEFAULT_COMMIT_WORKERS;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bank-sandbox",
    version,
    about = "The PinBridge sandbox bank: HTTP API, soft HSM, store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct StoreArgs {
    /// Database URL: sqlite://FILE (created and migrated on first start) or postgres://...
    #[arg(
        long,
        default_value = "sqlite://bank-sandbox.db",
        env = "PINBRIDGE_BANK_DATABASE"
    )]
    database: String,
    /// Master key file (64 hex digits; created if missing). PINBRIDGE_BANK_MASTER_KEY overrides it.
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// Most database connections (the PostgreSQL pool; SQLite readers are capped at 4).
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS, env = "PINBRIDGE_BANK_MAX_CONNECTIONS")]
    max_connections: u32,
    /// PostgreSQL group-commit workers, each a connection running batches of writes in one
    /// transaction (more answer sooner at low rates, cost more CPU at high ones).
    #[arg(long, default_value_t = DEFAULT_COMMIT_WORKERS, env = "PINBRIDGE_BANK_COMMIT_WORKERS")]
    commit_workers: usize,
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<bank_sandbox::Bank> {
        let key = self
            .master_key_file
            .clone()
            .unwrap_or_else(|| default_master_key_file(&self.database));
        open_bank_with(
            &self.database,
            &key,
            BankConfig::default(),
            self.max_connections,
            self.commit_workers,
        )
        .await
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// PEM certificate chain for HTTPS (with --tls-key); plain HTTP without it.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for HTTPS.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Trust a device-issuing CA (SEC1 public key, hex). Repeatable.
        #[arg(long)]
        trust_ca: Vec<String>,
        /// Allow a firmware hash at login (hex SHA-256). Repeatable.
        #[arg(long)]
        allow_firmware: Vec<String>,
        /// Allow an app build hash at login (hex SHA-256). Repeatable.
        #[arg(long)]
        allow_app: Vec<String>,
    },
    /// Create demo staff, customers and accounts (idempotent); prints them as JSON.
    Seed {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add a staff account.
    AddStaff {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "PINBRIDGE_STAFF_PASSWORD")]
        password: String,
        /// teller, operator, terminal or admin.
        #[arg(long)]
        role: String,
    },
    /// Print the bank's public keys (management and operator) for device manufacture.
    Keys {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make a sandbox TLS CA and a server certificate it signs: writes ca.pem (what the app
    /// pins), server.pem and server.key (for `serve --tls-cert/--tls-key`) into --out.
    TlsInit {
        /// Directory for the three files (created if missing; existing files are replaced).
        #[arg(long)]
        out: PathBuf,
        /// Host name or IP address the server certificate is for. Repeatable.
        #[arg(long = "host", default_values_t = ["127.0.0.1".to_owned(), "localhost".to_owned()])]
        hosts: Vec<String>,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Run the load generator against a running bank.
    Load(bank_sandbox::load::LoadArgs),
}

fn hex32(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(text.trim()).with_context(|| format!("{what}: not hexadecimal"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The load generator gets a runtime of its own size so it does not take the server's
    // cores; everything else runs on the default multi-threaded runtime.
    let runtime = match &cli.command {
        Command::Load(args) if args.client_threads <= 1 => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        }
        Command::Load(args) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve {
            store,
            listen,
            tls_cert,
            tls_key,
            trust_ca,
            allow_firmware,
            allow_app,
        } => {
            let bank = store.open().await?;
            for ca in &trust_ca {
                bank.trust_ca(&hex32(ca, "--trust-ca")?, "command line")
                    .await?;
            }
            for hash in &allow_firmware {
                bank.allow_hash(
                    "firmware",
                    &hex32(hash, "--allow-firmware")?,
                    "command line",
                )
                .await?;
            }
            for hash in &allow_app {
                bank.allow_hash("app", &hex32(hash, "--allow-app")?, "command line")
                    .await?;
            }
            let bank = Arc::new(bank);
            match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => {
                    let handle = axum_server::Handle::new();
                    let stopper = handle.clone();
                    tokio::spawn(async move {
                        shutdown_signal().await;
                        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                    });
                    let listener = std::net::TcpListener::bind(listen)
                        .with_context(|| format!("cannot listen on {listen}"))?;
                    let local = listener.local_addr()?;
                    tracing::info!(%local, "serving HTTPS");
                    eprintln!("bank-sandbox: listening on https://{local}");
                    serve_tls(listener, bank.clone(), &cert, &key, handle).await?;
                }
                _ => {
                    let listener = tokio::net::TcpListener::bind(listen)
                        .await
                        .with_context(|| format!("cannot listen on {listen}"))?;
                    let local = listener.local_addr()?;
                    tracing::info!(%local, "serving HTTP");
                    eprintln!("bank-sandbox: listening on http://{local}");
                    serve_plain(listener, bank.clone(), shutdown_signal()).await?;
                }
            }
            let stats = bank.store().group_commit_stats();
            if stats.commits() > 0 {
                eprintln!(
                    "bank-sandbox: group commit: {} write jobs in {} commits ({:.1} per commit, largest {}; \
                     {} in bulk statements, {} batches run again job by job)",
                    stats.jobs(),
                    stats.commits(),
                    stats.jobs() as f64 / stats.commits() as f64,
                    stats.largest(),
                    stats.bulk_rows(),
                    stats.reruns()
                );
            }
            bank.store().close().await;
        }
        Command::Seed { store } => {
            let bank = store.open().await?;
            let summary = bank_sandbox::seed::seed(&bank).await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            bank.store().close().await;
        }
        Command::AddStaff {
            store,
            username,
            password,
            role,
        } => {
            let role = Role::parse(&role).context("role: teller, operator, terminal or admin")?;
            let bank = store.open().await?;
            bank.create_staff(&username, &password, role).await?;
            bank.store().close().await;
        }
        Command::Keys { store } => {
            let bank = store.open().await?;
            println!(
                "{}",
                serde_json::json!({
                    "management_public_key": hex::encode(bank.management_public_key().to_sec1_bytes()),
                    "operator_public_key": hex::encode(bank.operator_public_key().to_sec1_bytes()),
                })
            );
            bank.store().close().await;
        }
        Command::TlsInit { out, hosts, days } => {
            let files = bank_sandbox::tls::SandboxTls::generate(&hosts, days)?.write_to(&out)?;
            println!("{}", serde_json::to_string_pretty(&files)?);
        }
        Command::Load(args) => {
            let report = bank_sandbox::load::run(args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}
