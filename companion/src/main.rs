//! `pinbridge`: the PinBridge command line, over the same core the desktop app uses.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use companion::crypto_tool::{self, Output, ToolError};

mod cli_session;
mod commands;
#[cfg(feature = "embedded")]
mod demo;
mod history_cmd;
mod lifecycle;
mod owner;
mod support;

use commands::{Connection, LogsCommand, StaffCommand};

#[derive(Debug, Parser)]
#[command(name = "pinbridge", version, about = "Companion for secure PIN pads", long_about = None)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The embedded default: a sandbox bank and a mock PIN pad in this process; initialise,
    /// enrol, pair, log in and pay, step by step.
    Demo,
    /// List PIN pads on USB, BLE and the sim link (--device sim:HOST:PORT).
    Devices,
    /// Pair this computer with the PIN pad (compare the code, confirm on the keypad).
    Pair {
        /// The name the PIN pad shows for this computer.
        #[arg(long, default_value = "PINBRIDGE")]
        name: String,
    },
    /// Log in at the bank through the PIN pad. The session is kept (state directory, 0600)
    /// for the next commands until it expires or `pinbridge logout`.
    Login,
    /// End the kept session: the bank revokes the token, the PIN pad drops its session keys.
    Logout,
    /// Pay: the PIN pad shows the payment, the PIN is entered on its keypad.
    Pay {
        /// Payee account: an IBAN (checked) or a 16-19 digit domestic account number.
        #[arg(long)]
        to: String,
        /// Amount in your locale's notation (LC_ALL / LC_NUMERIC / LANG): 12.34, or 12,34
        /// where the comma is the decimal separator. Anything ambiguous is refused.
        #[arg(long)]
        amount: String,
        /// ISO 4217 currency code (its minor units set the decimals allowed).
        #[arg(long)]
        currency: String,
        /// Payee name, shown on the PIN pad (required: nothing is made up for it).
        #[arg(long)]
        payee_name: String,
        /// Reference.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Your payments as the bank keeps them: date, payee, masked account, amount, outcome and
    /// the bank's journal reference; `--receipt ID` for one payment's receipt.
    History(history_cmd::HistoryArgs),
    /// Confirm payments started elsewhere (pushed by the bank) on the PIN pad.
    Confirm {
        /// Keep watching for new confirmations.
        #[arg(long)]
        watch: bool,
    },
    /// Your PIN pad: its identity and state, wipe it, report it lost.
    #[command(subcommand)]
    Device(lifecycle::DeviceCommand),
    /// Your PIN: change it on the PIN pad's keypad (bank-verified).
    #[command(subcommand)]
    Pin(owner::PinCommand),
    /// Branch staff: initialise, enrol/bind, revoke, operator tamper reset.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// The companion's log file (shared with the desktop app).
    #[command(subcommand)]
    Logs(LogsCommand),
    /// A support bundle: versions, OS, transports, devices, last flow events; no secrets.
    Diagnostics(support::DiagnosticsArgs),
    /// The operator's crypto tool: check keys, PIN blocks, MACs and key blocks by hand.
    #[command(subcommand)]
    Crypto(CryptoCommand),
    /// Conformance kit for PIN pad vendors: checks --device against PROTOCOL.md, case by case.
    Conformance(companion::conformance::cli::ConformanceArgs),
}

#[derive(Debug, Subcommand)]
enum CryptoCommand {
    /// ISO 9564-1 PIN blocks.
    #[command(subcommand)]
    Pinblock(PinblockCommand),
    /// Compute a MAC.
    Mac(MacArgs),
    /// Compute a key check value.
    Kcv(KcvArgs),
    /// ANSI X9.143 / TR-31 key blocks.
    #[command(subcommand)]
    Tr31(Tr31Command),
    /// Derive a DUKPT working key from a BDK and a KSN.
    Dukpt(DukptArgs),
}

#[derive(Debug, Subcommand)]
enum PinblockCommand {
    /// Build a PIN block; enciphered when --key is given, clear otherwise.
    Encode {
        /// ISO 9564-1 format: 0, 1, 3 (TDES) or 4 (AES).
        #[arg(long)]
        format: u8,
        /// The PIN, 4 to 12 digits.
        #[arg(long)]
        pin: String,
        /// The primary account number (not used by format 1).
        #[arg(long)]
        pan: Option<String>,
        /// PIN encryption key (hex; TDES for formats 0/1/3, AES for format 4).
        #[arg(long)]
        key: Option<String>,
        /// Fill bytes (hex) instead of random fill, for reproducible blocks.
        #[arg(long)]
        fill: Option<String>,
    },
    /// Recover the PIN from a PIN block.
    Decode {
        /// ISO 9564-1 format: 0, 1, 3 or 4.
        #[arg(long)]
        format: u8,
        /// The primary account number (not used by format 1).
        #[arg(long)]
        pan: Option<String>,
        /// PIN encryption key (hex) when the block is enciphered.
        #[arg(long)]
        key: Option<String>,
        /// The PIN block in hex.
        block: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MacAlg {
    /// ISO 9797-1 MAC algorithm 1 (CBC-MAC).
    #[value(name = "iso9797-1")]
    Iso9797Alg1,
    /// ISO 9797-1 MAC algorithm 3 (retail MAC).
    #[value(name = "iso9797-3")]
    Iso9797Alg3,
    /// AES-CMAC (NIST SP 800-38B).
    AesCmac,
    /// TDES-CMAC (NIST SP 800-38B).
    TdesCmac,
}

#[derive(Debug, Args)]
struct MacArgs {
    #[arg(long, value_enum)]
    alg: MacAlg,
    /// ISO 9797-1 padding method (1 or 2); ignored by CMAC.
    #[arg(long, default_value_t = 1)]
    padding: u8,
    /// The key in hex.
    #[arg(long)]
    key: String,
    /// The data in hex.
    #[arg(long)]
    data: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyAlg {
    Aes,
    Tdes,
}

#[derive(Debug, Args)]
struct KcvArgs {
    /// The key in hex.
    #[arg(long)]
    key: String,
    /// Key algorithm; when absent, 8/24-byte keys are TDES and 32-byte keys AES, and a
    /// 16-byte key must be named.
    #[arg(long, value_enum)]
    alg: Option<KeyAlg>,
    /// Legacy AES KCV (ECB of zeros, 3 bytes) instead of the X9.24-1:2017 CMAC KCV.
    #[arg(long)]
    legacy_ecb: bool,
}

#[derive(Debug, Subcommand)]
enum Tr31Command {
    /// Wrap a key into a TR-31 key block.
    Wrap {
        /// Key-block protection key (hex): TDES for version B, AES for version D.
        #[arg(long)]
        kbpk: String,
        /// The header, e.g. D0000P0AE00E0000 (the length field is filled in).
        #[arg(long)]
        header: String,
        /// The key to wrap (hex).
        #[arg(long)]
        key: String,
        /// Padding bytes (hex) instead of random padding, for reproducible blocks.
        #[arg(long)]
        random: Option<String>,
    },
    /// Verify and unwrap a TR-31 key block.
    Unwrap {
        /// Key-block protection key (hex).
        #[arg(long)]
        kbpk: String,
        /// The key block.
        block: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DukptScheme {
    Aes,
    Tdes,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DukptUsage {
    Pin,
    Mac,
    Data,
}

#[derive(Debug, Args)]
struct DukptArgs {
    /// Base derivation key (hex).
    #[arg(long)]
    bdk: String,
    /// Key serial number (hex): 12 bytes for AES (initial key ID + counter), 10 for TDES.
    #[arg(long)]
    ksn: String,
    #[arg(long, value_enum, default_value_t = DukptScheme::Aes)]
    scheme: DukptScheme,
    #[arg(long, value_enum, default_value_t = DukptUsage::Pin)]
    usage: DukptUsage,
}

fn run_crypto(command: CryptoCommand) -> Result<Output, ToolError> {
    match command {
        CryptoCommand::Pinblock(PinblockCommand::Encode {
            format,
            pin,
            pan,
            key,
            fill,
        }) => crypto_tool::pinblock_encode(
            format,
            &pin,
            pan.as_deref(),
            key.as_deref(),
            fill.as_deref(),
        ),
        CryptoCommand::Pinblock(PinblockCommand::Decode {
            format,
            pan,
            key,
            block,
        }) => crypto_tool::pinblock_decode(format, pan.as_deref(), key.as_deref(), &block),
        CryptoCommand::Mac(args) => crypto_tool::mac(
            match args.alg {
                MacAlg::Iso9797Alg1 => crypto_tool::MacChoice::Iso9797Alg1,
                MacAlg::Iso9797Alg3 => crypto_tool::MacChoice::Iso9797Alg3,
                MacAlg::AesCmac => crypto_tool::MacChoice::AesCmac,
                MacAlg::TdesCmac => crypto_tool::MacChoice::TdesCmac,
            },
            args.padding,
            &args.key,
            &args.data,
        ),
        CryptoCommand::Kcv(args) => crypto_tool::kcv(
            &args.key,
            args.alg.map(|alg| match alg {
                KeyAlg::Aes => crypto_tool::AlgChoice::Aes,
                KeyAlg::Tdes => crypto_tool::AlgChoice::Tdes,
            }),
            args.legacy_ecb,
        ),
        CryptoCommand::Tr31(Tr31Command::Wrap {
            kbpk,
            header,
            key,
            random,
        }) => crypto_tool::tr31_wrap(&kbpk, &header, &key, random.as_deref()),
        CryptoCommand::Tr31(Tr31Command::Unwrap { kbpk, block }) => {
            crypto_tool::tr31_unwrap(&kbpk, &block)
        }
        CryptoCommand::Dukpt(args) => crypto_tool::dukpt(
            &args.bdk,
            &args.ksn,
            match args.scheme {
                DukptScheme::Aes => crypto_tool::AlgChoice::Aes,
                DukptScheme::Tdes => crypto_tool::AlgChoice::Tdes,
            },
            match args.usage {
                DukptUsage::Pin => crypto_tool::DukptChoice::Pin,
                DukptUsage::Mac => crypto_tool::DukptChoice::Mac,
                DukptUsage::Data => crypto_tool::DukptChoice::Data,
            },
        ),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

#[cfg(feature = "embedded")]
fn run_demo(json: bool) -> ExitCode {
    let result = runtime()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(demo::run(json)).map_err(|e| e.to_string()));
    match result {
        Ok(summary) => {
            if json {
                emit(&summary.to_string());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            if json {
                eprintln!("{}", serde_json::json!({"error": error}));
            } else {
                eprintln!("pinbridge demo: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "embedded"))]
fn run_demo(_json: bool) -> ExitCode {
    eprintln!("pinbridge demo: this build has no embedded bank and device (feature `embedded`)");
    ExitCode::FAILURE
}

fn run_flow_command(command: Command, connection: &Connection, json: bool) -> ExitCode {
    let result = match runtime() {
        Err(e) => Err(commands::CliError::new(
            companion::error::ErrorKind::Internal,
            format!("cannot start the async runtime: {e}"),
        )),
        Ok(rt) => rt.block_on(async {
            let result = match command {
                Command::Devices => commands::devices(connection).await,
                Command::Pair { name } => commands::pair(connection, json, &name).await,
                Command::Login => commands::login(connection, json).await,
                Command::Logout => commands::logout(connection).await,
                Command::Pay {
                    to,
                    amount,
                    currency,
                    payee_name,
                    reference,
                } => {
                    commands::pay(
                        connection,
                        json,
                        &to,
                        &payee_name,
                        &amount,
                        &currency,
                        &reference,
                    )
                    .await
                }
                Command::Confirm { watch } => commands::confirm(connection, json, watch).await,
                Command::History(args) => history_cmd::history(connection, json, &args).await,
                Command::Staff(staff) => commands::staff(connection, json, staff).await,
                Command::Device(device) => lifecycle::device(connection, json, device).await,
                Command::Pin(pin) => owner::pin(connection, json, pin).await,
                Command::Logs(LogsCommand::Export { out }) => support::logs_export(out.as_deref()),
                Command::Diagnostics(args) => support::diagnostics(connection, &args).await,
                Command::Demo | Command::Crypto(_) | Command::Conformance(_) => {
                    Err(commands::CliError::new(
                        companion::error::ErrorKind::Internal,
                        "not a flow command",
                    ))
                }
            };
            // The command's PIN pad connection was dropped with it: a BLE link is ended
            // before the program exits (BlueZ would keep it up for nobody).
            companion::transport::ble::finish_disconnects(Duration::from_secs(3)).await;
            result
        }),
    };
    match result {
        Ok(value) => {
            if json {
                emit(&value.to_string());
            } else {
                print_summary(&value);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({ "error": {
                        "kind": error.kind.as_str(),
                        "code": error.code,
                        "message": error.message,
                    } })
                );
            } else {
                eprintln!("pinbridge: {}: {}", error.kind.words(), error.message);
            }
            ExitCode::FAILURE
        }
    }
}

/// Text mode: the result without the event list (already printed live), as aligned text.
fn print_summary(value: &serde_json::Value) {
    for line in render_summary(value) {
        emit(&line);
    }
}

/// `transactionId` -> `transaction id`.
fn label(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else if c == '_' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// A value as a person reads it: strings unquoted, nothing as `-`, lists joined.
fn plain(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "none".into(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(_) => value.to_string(),
    }
}

/// The result as lines: `lines` first as they are, then `label  value` rows aligned, nested
/// objects as indented rows under their label, lists of objects as a table with a header.
fn render_summary(value: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let mut out = Vec::new();
    let Some(map) = value.as_object() else {
        out.push(plain(value));
        return out;
    };
    if let Some(lines) = map.get("lines").and_then(Value::as_array) {
        out.extend(
            lines
                .iter()
                .map(|l| l.as_str().unwrap_or_default().to_owned()),
        );
    }
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut tables: Vec<(String, &Vec<Value>)> = Vec::new();
    for (key, item) in map {
        if key == "events" || key == "lines" {
            continue;
        }
        match item {
            Value::Object(inner) => {
                rows.push((label(key), String::new()));
                for (k, v) in inner {
                    rows.push((format!("  {}", label(k)), plain(v)));
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                tables.push((label(key), items));
            }
            other => rows.push((label(key), plain(other))),
        }
    }
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (l, v) in rows {
        out.push(format!("{l:<width$}  {v}").trim_end().to_owned());
    }
    for (title, items) in tables {
        let mut columns: Vec<&str> = Vec::new();
        for item in items {
            for key in item.as_object().into_iter().flat_map(|o| o.keys()) {
                if !columns.contains(&key.as_str()) {
                    columns.push(key);
                }
            }
        }
        let cells: Vec<Vec<String>> = items
            .iter()
            .map(|item| columns.iter().map(|c| plain(&item[*c])).collect())
            .collect();
        let headers: Vec<String> = columns.iter().map(|c| label(c).to_uppercase()).collect();
        let widths: Vec<usize> = (0..columns.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([headers[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |row: &[String]| {
            row.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        out.push(format!("{title}:"));
        out.push(line(&headers));
        out.extend(cells.iter().map(|row| line(row)));
    }
    out
}

/// The library's line writer (a closed pipe ends the program quietly), as `crate::emit`.
pub(crate) use companion::output::emit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    support::init_logging();
    let json = cli.json;
    let connection = cli.connection;
    let crypto = match cli.command {
        Command::Demo => return run_demo(json),
        Command::Conformance(args) => {
            return companion::conformance::cli::main(
                args,
                connection.device,
                connection.ble_adapter,
                json,
            );
        }
        Command::Crypto(crypto) => crypto,
        other => return run_flow_command(other, &connection, json),
    };
    match run_crypto(crypto) {
        Ok(output) => {
            emit(&if json {
                output.to_json()
            } else {
                output.to_text()
            });
            ExitCode::SUCCESS
        }
        Err(error) => {
            if json {
                eprintln!("{}", crypto_tool::error_json(&error));
            } else {
                eprintln!("pinbridge: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_output_is_aligned_text_not_json() {
        let lines = render_summary(&json!({
            "devices": [
                {"transport": "sim", "address": "127.0.0.1:7000", "serial": null},
                {"transport": "usb", "address": "1-2", "serial": "PB-0001"},
            ],
            "events": [{"step": "x"}],
        }));
        assert_eq!(
            lines,
            [
                "devices:",
                "ADDRESS         SERIAL   TRANSPORT",
                "127.0.0.1:7000  -        sim",
                "1-2             PB-0001  usb",
            ]
        );
        let lines = render_summary(&json!({
            "loggedIn": true,
            "customerId": "alice",
            "payment": {"transactionId": "TX-1", "bankResult": "approved"},
        }));
        assert_eq!(
            lines,
            [
                "customer id       alice",
                "logged in         yes",
                "payment",
                "  bank result     approved",
                "  transaction id  TX-1",
            ]
        );
    }
}
