//! The `pinbridge` subcommands over the library's flows: devices, pair, login, pay, confirm,
//! staff and logs. Connection settings come from flags or the environment. One file per
//! concern: opening the PIN pad and the session commands (`device`), the progress shown while
//! the PIN pad waits (`progress`), payments and confirmations (`payment`), staff (`staff`);
//! here what they share: the connection, the error type, the bank client, the state directory.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use companion::bank::{BankClient, BankSettings};
use companion::error::ErrorKind;
use companion::flows;
use companion::input;
use serde_json::Value;

mod device;
mod payment;
mod progress;
mod staff;

pub(crate) use device::{device_list, open_device, paired_host, reserve_counters};
pub use device::{devices, login, logout, pair};
pub(crate) use payment::pin_advice;
pub use payment::{confirm, pay};
pub(crate) use progress::Reporter;
pub use staff::{StaffCommand, StaffLogin, staff};
pub(crate) use staff::{serial_part, staff_token};

/// Where the bank, the device and the companion's state are.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Bank base URL (https with --bank-ca; plain http only on loopback).
    #[arg(long, env = "PINBRIDGE_BANK_URL", global = true)]
    pub bank_url: Option<String>,
    /// PEM file of the CA that issued the bank's TLS certificate (pinned).
    #[arg(long, env = "PINBRIDGE_BANK_CA", global = true)]
    pub bank_ca: Option<PathBuf>,
    /// The PIN pad: `sim:127.0.0.1:7000`, or a serial/address `pinbridge devices` lists.
    #[arg(long, env = "PINBRIDGE_DEVICE", global = true)]
    pub device: Option<String>,
    /// The Bluetooth adapter to scan from (`hci1`); default: the one not advertising.
    #[arg(long, env = "PINBRIDGE_BLE_ADAPTER", global = true)]
    pub ble_adapter: Option<String>,
    /// Directory for the encrypted pairing keys and the event log.
    #[arg(long, env = "PINBRIDGE_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

/// Log operations.
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Export the event log with anything secret-looking redacted.
    Export {
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A command's failure: the kind the desktop app reports for the same failure
/// (`companion::error::ErrorKind`, decided where the error was born), a stable code for
/// scripts (the kind's name, or a finer one such as `invalid_amount` or `pin_incorrect`), and
/// the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The app's error kind.
    pub kind: ErrorKind,
    /// Machine code: the kind's name unless a finer one was given.
    pub code: &'static str,
    /// What happened, in words.
    pub message: String,
}

impl CliError {
    /// A failure of `kind`, coded by the kind's name.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CliError {
            kind,
            code: kind.as_str(),
            message: message.into(),
        }
    }

    /// Something typed on the command line is wrong.
    pub fn input(message: impl Into<String>) -> Self {
        CliError::new(ErrorKind::InvalidInput, message)
    }
}

impl From<input::InputError> for CliError {
    fn from(error: input::InputError) -> Self {
        CliError {
            kind: ErrorKind::InvalidInput,
            code: error.code(),
            message: error.to_string(),
        }
    }
}

/// Each typed error carries its kind: the CLI reports what the app reports.
macro_rules! classified {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for CliError {
            fn from(error: $error) -> Self {
                CliError::new(error.kind(), error.to_string())
            }
        })*
    };
}

classified!(
    flows::FlowError,
    companion::session::SessionError,
    companion::bank::BankError,
    companion::devices::DeviceError,
    companion::integrity::GenuineCheckError,
);

impl From<companion::keystore::KeyStoreError> for CliError {
    fn from(error: companion::keystore::KeyStoreError) -> Self {
        CliError {
            kind: error.kind(),
            code: error.code(),
            message: error.to_string(),
        }
    }
}

impl From<companion::transport::TransportError> for CliError {
    fn from(error: companion::transport::TransportError) -> Self {
        companion::session::SessionError::from(error).into()
    }
}

/// A command's result, or its failure.
pub type CommandResult = Result<Value, CliError>;

/// The locale numbers are typed in: `LC_ALL`, then `LC_NUMERIC`, then `LANG` (as the C
/// library reads them); `en` when none is set or it is `C`/`POSIX`.
pub fn input_locale() -> String {
    ["LC_ALL", "LC_NUMERIC", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .filter(|value| value != "C" && value != "POSIX" && !value.starts_with("C."))
        .unwrap_or_else(|| "en".into())
}

pub(crate) fn state_dir(connection: &Connection) -> PathBuf {
    if let Some(dir) = &connection.state_dir {
        return dir.clone();
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(data).join("pinbridge");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/share/pinbridge");
    }
    PathBuf::from(".pinbridge")
}

pub(crate) fn bank(connection: &Connection) -> Result<BankClient, CliError> {
    let url = connection
        .bank_url
        .clone()
        .ok_or_else(|| CliError::input("no bank URL: give --bank-url or set PINBRIDGE_BANK_URL"))?;
    let ca_pem = match &connection.bank_ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| CliError::input(format!("--bank-ca {}: {e}", path.display())))?,
        ),
        None => None,
    };
    BankClient::new(&BankSettings { url, ca_pem }).map_err(CliError::from)
}
