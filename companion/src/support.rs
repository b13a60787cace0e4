//! `pinbridge logs export` and `pinbridge diagnostics`: what a user sends to support, from
//! the log file the CLI and the app write ([`companion::logfile`]), never with a secret in it.

use std::path::{Path, PathBuf};

use clap::Args;
use companion::diagnostics::{self, Facts};
use companion::keystore::KeyStore;
use companion::logfile::{FileLayer, LogFile};
use serde_json::json;

use companion::error::ErrorKind;

use crate::commands::{CliError, CommandResult, Connection, device_list, state_dir};
use companion::private_file;

/// `pinbridge diagnostics` options.
#[derive(Debug, Clone, Args)]
pub struct DiagnosticsArgs {
    /// Write the bundle to this file (0600) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How many of the last flow events to include.
    #[arg(long, default_value_t = diagnostics::DEFAULT_EVENTS)]
    pub events: usize,
}

/// Every companion event from INFO up goes to the log file too (the CLI prints nothing of
/// tracing on the terminal: its output is the command's).
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(FileLayer::new(LogFile::at_default_dir()));
    // Only fails when a subscriber is already set, which leaves that one in charge.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

fn write_out(file: &Path, body: &str) -> Result<(), CliError> {
    use std::io::Write;
    private_file::open(file, private_file::Open::Truncate)
        .and_then(|mut f| f.write_all(body.as_bytes()))
        .map_err(|e| CliError::input(format!("{}: {e}", file.display())))
}

/// `pinbridge logs export`: every record of the log, redacted, as text lines.
pub fn logs_export(out: Option<&Path>) -> CommandResult {
    let log = LogFile::at_default_dir();
    let (text, redactions) = log.export_text();
    let lines: Vec<&str> = text.lines().collect();
    match out {
        Some(file) => {
            write_out(file, &text)?;
            Ok(json!({
                "exported": lines.len(),
                "redactions": redactions,
                "to": file.display().to_string(),
            }))
        }
        None => Ok(json!({"exported": lines.len(), "lines": lines})),
    }
}

/// `pinbridge diagnostics`: the support bundle (companion::diagnostics).
pub async fn diagnostics(connection: &Connection, args: &DiagnosticsArgs) -> CommandResult {
    let devices = device_list(connection).await;
    let facts = Facts {
        program: "pinbridge".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        bank_url: connection.bank_url.clone(),
        key_protection: KeyStore::new(state_dir(connection)).protection(),
        devices,
    };
    let (bundle, redactions) =
        diagnostics::collect(&facts, &LogFile::at_default_dir(), args.events);
    match &args.out {
        Some(file) => {
            let text = serde_json::to_string_pretty(&bundle)
                .map_err(|e| CliError::new(ErrorKind::Internal, e.to_string()))?;
            write_out(file, &text)?;
            Ok(json!({"diagnostics": file.display().to_string(), "redactions": redactions}))
        }
        None => Ok(json!({"diagnostics": bundle})),
    }
}
