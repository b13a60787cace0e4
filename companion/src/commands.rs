//! The `pinbridge` subcommands over the library's flows: devices, pair, login, pay, confirm,
//! staff and logs. Connection settings come from flags or the environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use companion::bank::{BankClient, BankSettings, BearerToken};
use companion::devices::{DeviceManager, DiscoveryConfig};
use companion::error::ErrorKind;
use companion::flows::{self, FlowEvent, PaymentOrder};
use companion::input;
use companion::keystore::{KeyStore, PairedHost};
use companion::session::Session;
use companion::transport::Transport;
use companion::transport::sim::SimTransport;
use firmware_protocol::message::{Lifecycle, LockState};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cli_session::{self, LoggedIn};

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

/// Branch staff credentials. The password comes from `--staff-password-file`, else
/// `PINBRIDGE_STAFF_PASSWORD`, else a prompt on the terminal (no echo); never from the command
/// line, which every user of the machine sees in the process list.
#[derive(Debug, Clone, Args)]
pub struct StaffLogin {
    /// Staff user name.
    #[arg(long, env = "PINBRIDGE_STAFF_USER")]
    pub staff_user: String,
    /// A file whose first line is the staff password (keep it 0600).
    #[arg(long, value_name = "FILE")]
    pub staff_password_file: Option<PathBuf>,
    /// Refused: a password on the command line shows in the process list.
    #[arg(long = "staff-password", hide = true, value_name = "REFUSED")]
    pub refused_staff_password: Option<String>,
}

/// The environment variable a staff password may come from.
const STAFF_PASSWORD_ENV: &str = "PINBRIDGE_STAFF_PASSWORD";

/// The staff password, from the file, the environment or the terminal (see [`StaffLogin`]).
fn staff_password(login: &StaffLogin) -> Result<Zeroizing<String>, CliError> {
    if login.refused_staff_password.is_some() {
        return Err(CliError::input(format!(
            "--staff-password is refused: a password on the command line shows in the process \
             list of every user of this machine. Use --staff-password-file FILE, set \
             {STAFF_PASSWORD_ENV}, or run on a terminal to be asked for it"
        )));
    }
    if let Some(path) = &login.staff_password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?,
        );
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(CliError::input(format!(
                "{}: the first line (the staff password) is empty",
                path.display()
            )));
        }
        return Ok(Zeroizing::new(password.to_owned()));
    }
    if let Ok(password) = std::env::var(STAFF_PASSWORD_ENV)
        && !password.is_empty()
    {
        return Ok(Zeroizing::new(password));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rpassword::prompt_password(format!("Staff password for {}: ", login.staff_user))
            .map(Zeroizing::new)
            .map_err(|e| {
                CliError::input(format!(
                    "cannot read the staff password from the terminal: {e}"
                ))
            });
    }
    Err(CliError::new(
        ErrorKind::StaffAuthRequired,
        format!(
            "no staff password: give --staff-password-file FILE or set {STAFF_PASSWORD_ENV} \
             (not on a terminal, so there is no prompt)"
        ),
    ))
}

/// Staff operations.
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Initialise the connected PIN pad at the bank (installs its key-block protection key).
    Init(StaffLogin),
    /// Enrol a customer on the connected PIN pad (PIN chosen on the keypad) and bind it.
    Enrol {
        #[command(flatten)]
        login: StaffLogin,
        /// The customer id.
        #[arg(long)]
        customer: String,
    },
    /// Bind a customer to a replacement PIN pad after a revoke (same as enrol).
    Bind {
        #[command(flatten)]
        login: StaffLogin,
        /// The customer id.
        #[arg(long)]
        customer: String,
    },
    /// Make a PIN pad forget every computer paired with it (a lost or stolen PC), by serial
    /// (no device needed: it gets the signed order through any app it is connected to, or at
    /// its next login).
    Unpair {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Computer lost")]
        reason: String,
    },
    /// Move a customer from a lost PIN pad (by serial, not here) to the one connected: the
    /// old one is revoked, the connected one enrolled (PIN on its keypad) and bound.
    Rebind {
        #[command(flatten)]
        login: StaffLogin,
        /// The serial of the PIN pad being replaced.
        #[arg(long)]
        from: String,
        /// The customer id.
        #[arg(long)]
        customer: String,
    },
    /// Revoke a lost or stolen PIN pad (its wipe is relayed if it is connected).
    Revoke {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Reported lost")]
        reason: String,
        /// Also relay the signed wipe to the connected PIN pad.
        #[arg(long)]
        relay: bool,
    },
    /// Lock a PIN pad's payment functions at the bank by serial (no device needed here: a
    /// watcher it is connected to relays the signed lock).
    Lock {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Reported lost")]
        reason: String,
    },
    /// Unlock a PIN pad the bank locked (also lifts a login throttle), by serial.
    Unlock {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long, default_value = "Customer verified")]
        reason: String,
    },
    /// A PIN pad's record at the bank by serial (no PIN pad needed): state, bank lock,
    /// customer, and its latest signed commands with what the device answered to each (as
    /// the app that relayed it reported).
    Device {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
    },
    /// The bank's intrusion reports (KCV mismatches, refused key blocks), newest first.
    Intrusions {
        #[command(flatten)]
        login: StaffLogin,
        /// Only this device's.
        #[arg(long)]
        serial: Option<String>,
    },
    /// Operator reset of a tampered PIN pad (then initialise and enrol again).
    ResetTamper {
        #[command(flatten)]
        login: StaffLogin,
        /// Device serial.
        #[arg(long)]
        serial: String,
    },
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

/// How long a command waits for its PIN pad to be plugged in.
const DEVICE_WAIT: Duration = Duration::from_secs(30);

pub(crate) async fn open_device(connection: &Connection) -> Result<Session, CliError> {
    let wanted = connection.device.clone().ok_or_else(|| {
        CliError::input(
            "no PIN pad: give --device (e.g. sim:127.0.0.1:7000) or set PINBRIDGE_DEVICE",
        )
    })?;
    let mut kind = "sim";
    let transport: Box<dyn Transport> = if let Some(address) = wanted.strip_prefix("sim:") {
        let address = address
            .parse()
            .map_err(|e| CliError::input(format!("--device {wanted}: not HOST:PORT ({e})")))?;
        Box::new(
            SimTransport::connect(address)
                .await
                .map_err(CliError::from)?,
        )
    } else {
        // A PIN pad being plugged in (or back in) is waited for, as hardware wallets' tools do.
        let mut config = DiscoveryConfig::for_device(&wanted);
        config.ble_adapter = connection.ble_adapter.clone();
        let manager = DeviceManager::with_platform_sources(&config);
        let info = manager
            .wait_for_matching(&wanted, DEVICE_WAIT, Duration::from_millis(250), || {
                eprintln!(
                    "pinbridge: waiting for the PIN pad {wanted}: plug it in (up to {} s)",
                    DEVICE_WAIT.as_secs()
                );
            })
            .await
            .map_err(CliError::from)?;
        kind = info.identity.kind().short_name();
        manager.open(info.id()).await.map_err(CliError::from)?
    };
    let session = Session::open(transport).await.map_err(CliError::from)?;
    // The transport in its own field: diagnostics list the transports seen from the log.
    tracing::info!(target: "companion::devices", transport = kind, device = %wanted, "PIN pad opened");
    // Ctrl-C while the PIN pad waits for the user cancels the request on the device too, so
    // it does not stay on a PIN prompt nobody will answer.
    let cancel = session.cancel_handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("pinbridge: cancelling on the PIN pad");
            cancel.cancel();
            // A second Ctrl-C quits at once, as without this handler.
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    Ok(session)
}

/// Prints events as they come (text mode) and keeps them (JSON result, event log). While the
/// PIN pad waits for the customer, a spinner on stderr counts down the time left to act
/// (reset by each key, as the device's own timer is) and says Ctrl-C cancels.
pub(crate) struct Reporter {
    json: bool,
    pub(crate) events: Vec<Value>,
    /// Each event is written as it happens: a command killed mid-flow leaves them all.
    log: companion::logfile::LogFile,
    waiting: Option<indicatif::ProgressBar>,
}

/// How long the PIN pad gives the customer (the reference device's default; PROTOCOL.md
/// carries no per-device value), for the countdown.
const USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// `1:58`.
fn minutes_seconds(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn waiting_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    let left = |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(
            w,
            "{}",
            minutes_seconds(USER_TIMEOUT.saturating_sub(state.elapsed()))
        );
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg}: {left} left to act on the PIN pad (Ctrl-C cancels)",
    ) {
        bar.set_style(style.with_key("left", left));
    }
    bar.set_message("Waiting for you on the PIN pad");
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

impl Reporter {
    pub(crate) fn new(json: bool, _connection: &Connection) -> Self {
        Self {
            json,
            events: Vec::new(),
            log: companion::logfile::LogFile::at_default_dir(),
            waiting: None,
        }
    }

    pub(crate) fn sink(&mut self) -> impl FnMut(FlowEvent) + Send + '_ {
        move |event: FlowEvent| {
            // Logged before it is shown: whatever kills the process next, an event the user
            // saw is in the log. A log that cannot be written must not stop a payment.
            let _ = self.log.append(companion::logfile::LogRecord::flow_event(
                event.to_string(),
                serde_json::to_value(&event).unwrap_or(Value::Null),
            ));
            if !self.json {
                match &event {
                    FlowEvent::WaitingForUser | FlowEvent::PinEntry { .. }
                        if self.waiting.is_none() =>
                    {
                        // A wait on the customer begins: say how long they have, once, in the
                        // transcript too (the spinner is drawn only on a terminal).
                        crate::emit(&format!(
                            "{event}  ({} to act; Ctrl-C cancels)",
                            minutes_seconds(USER_TIMEOUT)
                        ));
                        let bar = waiting_bar();
                        if let FlowEvent::PinEntry { dots, .. } = &event {
                            bar.set_message(format!("PIN {dots}"));
                        }
                        self.waiting = Some(bar);
                    }
                    FlowEvent::WaitingForUser => {
                        if let Some(bar) = &self.waiting {
                            bar.reset_elapsed();
                        }
                    }
                    FlowEvent::PinEntry { dots, .. } => {
                        let bar = self.waiting.get_or_insert_with(waiting_bar);
                        // Each key restarts the device's timer: restart the countdown too.
                        bar.reset_elapsed();
                        bar.set_message(format!("PIN {dots}"));
                        bar.suspend(|| crate::emit(&event.to_string()));
                    }
                    _ => {
                        if let Some(bar) = self.waiting.take() {
                            bar.finish_and_clear();
                        }
                        crate::emit(&event.to_string());
                    }
                }
            }
            let value = serde_json::to_value(&event).unwrap_or(Value::Null);
            self.events.push(value);
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        // A command that ends (or fails) while the PIN pad waits leaves no spinner behind.
        if let Some(bar) = self.waiting.take() {
            bar.finish_and_clear();
        }
    }
}

pub(crate) async fn staff_token(
    bank: &BankClient,
    login: &StaffLogin,
) -> Result<BearerToken, CliError> {
    let password = staff_password(login)?;
    bank.staff_login(&login.staff_user, &password)
        .await
        .map_err(CliError::from)
}

/// `pinbridge devices`.
pub async fn devices(connection: &Connection) -> CommandResult {
    let list = device_list(connection).await;
    Ok(json!({"devices": list}))
}

/// Every PIN pad present now, as `pinbridge devices` lists them.
pub(crate) async fn device_list(connection: &Connection) -> Vec<Value> {
    // Every transport, and the sim link when one is named.
    let mut config = DiscoveryConfig::for_device(connection.device.as_deref().unwrap_or(""));
    config.usb = true;
    config.ble = true;
    config.ble_adapter = connection.ble_adapter.clone();
    let manager = DeviceManager::with_platform_sources(&config);
    let found = manager.refresh().await;
    let list: Vec<Value> = found
        .iter()
        .map(|d| {
            json!({
                "transport": d.identity.kind().short_name(),
                "address": d.identity.id.address,
                "serial": d.identity.serial,
                "name": d.identity.name,
                "state": format!("{:?}", d.state),
            })
        })
        .collect();
    list
}

pub(crate) async fn paired_host(
    store: &KeyStore,
    session: &mut Session,
) -> Result<PairedHost, CliError> {
    let serial = flows::device_serial(session)
        .await
        .map_err(CliError::from)?;
    store.find(&serial).map_err(CliError::from)?.ok_or_else(|| {
        CliError::new(
            ErrorKind::NotPaired,
            format!("this computer is not paired with PIN pad {serial}; run `pinbridge pair`"),
        )
    })
}

/// `pinbridge pair`.
pub async fn pair(connection: &Connection, json: bool, host_name: &str) -> CommandResult {
    let mut session = open_device(connection).await?;
    let store = KeyStore::new_interactive(state_dir(connection));
    let mut reporter = Reporter::new(json, connection);
    let host = flows::pair(&mut session, host_name, &mut reporter.sink())
        .await
        .map_err(CliError::from)?;
    store.save(&host).map_err(CliError::from)?;
    Ok(
        json!({"paired": host.serial, "hostId": hex::encode(host.host_id.as_bytes()), "events": reporter.events}),
    )
}

/// Host counters one command may use before it saves again.
const COUNTER_RESERVE: u64 = 1 << 16;

/// Write-ahead for the host counter: before a command sends anything, the key store already
/// says the next counter is `COUNTER_RESERVE` further on. A command killed mid-way (Ctrl-C
/// twice, a closed terminal, `kill -9`) leaves that reserved value, above every counter it can
/// have used, so the next command is never refused "replayed host counter"; one that ends
/// normally saves the exact counter. Skipped counters cost nothing (u64).
pub(crate) fn reserve_counters(store: &KeyStore, host: &PairedHost) -> Result<(), CliError> {
    let mut reserved = host.clone();
    reserved.next_counter = host.next_counter.saturating_add(COUNTER_RESERVE);
    store.save(&reserved).map_err(CliError::from)
}

/// `pinbridge login`: logs in with the PIN pad, or finds the stored session still good; the
/// session is kept for the next commands until it expires or `pinbridge logout`.
pub async fn login(connection: &Connection, json: bool) -> CommandResult {
    let mut reporter = Reporter::new(json, connection);
    let LoggedIn {
        store,
        host,
        login,
        reused,
        ..
    } = cli_session::logged_in(connection, &mut reporter).await?;
    store.save(&host).map_err(CliError::from)?;
    Ok(json!({
        "loggedIn": true,
        "customerId": login.customer_id,
        "serial": login.serial,
        "session": if reused { "kept from an earlier command" } else { "new" },
        "events": reporter.events,
    }))
}

/// `pinbridge logout`.
pub async fn logout(connection: &Connection) -> CommandResult {
    cli_session::logout(connection).await
}

/// `pinbridge pay`.
pub async fn pay(
    connection: &Connection,
    json: bool,
    to: &str,
    payee_name: &str,
    amount: &str,
    currency: &str,
    reference: &str,
) -> CommandResult {
    // Everything typed is checked before the device or the bank is contacted.
    let currency = input::Currency::parse(currency)?;
    let amount_minor = input::parse_amount(amount, currency, &input_locale())?;
    let payee_account = input::parse_account(to)?;
    let payee_name = input::parse_payee_name(payee_name)?;
    let mut reporter = Reporter::new(json, connection);
    let LoggedIn {
        mut session,
        client,
        store,
        mut host,
        mut login,
        reused,
    } = cli_session::logged_in(connection, &mut reporter).await?;
    let mut order = PaymentOrder {
        payee_account: payee_account.as_str().to_owned(),
        payee_name,
        amount_minor,
        currency: currency.code().to_owned(),
        reference: reference.to_owned(),
        idempotency_key: idempotency_key()?,
    };
    let mut result = flows::pay(
        &mut session,
        &client,
        &login,
        &mut host,
        &order,
        &mut reporter.sink(),
    )
    .await;
    // The stored session ended under us (the PIN pad restarted or another login replaced its
    // keys, the bank revoked the token): refused before any PIN prompt, so nothing was
    // approved. Log in afresh and pay once more, as a new payment (the first was prepared
    // under the old session's keys and lapses unapproved).
    if reused && result.as_ref().is_err_and(cli_session::session_gone) {
        cli_session::forget(connection);
        login = cli_session::fresh_login(&mut session, &client, &store, &mut host, &mut reporter)
            .await?;
        cli_session::keep(connection, &client, &login);
        order.idempotency_key = idempotency_key()?;
        result = flows::pay(
            &mut session,
            &client,
            &login,
            &mut host,
            &order,
            &mut reporter.sink(),
        )
        .await;
    }
    if result.as_ref().is_err_and(cli_session::session_gone) {
        cli_session::forget(connection);
    }
    store.save(&host).map_err(CliError::from)?;
    let outcome = result.map_err(CliError::from)?;
    if !outcome.approved() {
        let (code, advice) = pin_advice(&outcome.bank_result, outcome.pin_tries_left);
        // The PIN is blocked: the session can pay nothing more; the next command meets the
        // bank's refusal at login ("call your bank") instead of a kept session.
        if code == "pin_blocked" {
            cli_session::end(connection, &mut session, &client, login).await;
        }
        return Err(CliError {
            kind: ErrorKind::BankRejected,
            code,
            message: format!(
                "payment {} not approved{advice}: bank {}, PIN pad {} ({})",
                outcome.transaction_id,
                outcome.bank_result,
                outcome.device_result,
                outcome.display_text
            ),
        });
    }
    Ok(json!({"payment": outcome, "events": reporter.events}))
}

/// A fresh key that makes a retried prepare return the same payment.
fn idempotency_key() -> Result<String, CliError> {
    let mut key = [0u8; 8];
    getrandom::fill(&mut key).map_err(|e| {
        CliError::new(
            ErrorKind::Internal,
            format!("no randomness from the OS: {e}"),
        )
    })?;
    Ok(hex::encode(key))
}

/// What a declined payment tells the customer about their PIN, from the bank's verdict and
/// `pin_tries_left`: the error code and words (" - wrong PIN, 2 tries left").
pub(crate) fn pin_advice(bank_result: &str, tries_left: Option<i64>) -> (&'static str, String) {
    match (bank_result, tries_left) {
        ("pin_incorrect", Some(n)) if n <= 0 => (
            "pin_blocked",
            " - wrong PIN, PIN blocked: call your bank".into(),
        ),
        ("pin_incorrect", Some(1)) => ("pin_incorrect", " - wrong PIN, 1 try left".into()),
        ("pin_incorrect", Some(n)) => ("pin_incorrect", format!(" - wrong PIN, {n} tries left")),
        ("pin_incorrect", None) => ("pin_incorrect", " - wrong PIN".into()),
        ("pin_blocked" | "account_blocked", _) => {
            ("pin_blocked", " - blocked: call your bank".into())
        }
        _ => ("not_approved", String::new()),
    }
}

/// `pinbridge confirm [--watch]`.
pub async fn confirm(connection: &Connection, json: bool, watch: bool) -> CommandResult {
    let mut reporter = Reporter::new(json, connection);
    let LoggedIn {
        mut session,
        client,
        store,
        mut host,
        login,
        ..
    } = cli_session::logged_in(connection, &mut reporter).await?;
    let mut decided = Vec::new();
    if !watch {
        let result = flows::confirm_pending(
            &mut session,
            &client,
            &login,
            &mut host,
            &mut reporter.sink(),
        )
        .await;
        if result.as_ref().is_err_and(cli_session::session_gone) {
            cli_session::forget(connection);
        }
        store.save(&host).map_err(CliError::from)?;
        decided = result.map_err(CliError::from)?;
        return Ok(json!({"confirmations": decided, "events": reporter.events}));
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = {
        let client = client.clone();
        let token = login.token.clone();
        tokio::spawn(async move {
            client
                .watch_events(&token, &mut |event| tx.send(event).is_ok())
                .await
        })
    };
    let mut commands = Vec::new();
    while let Some(event) = rx.recv().await {
        match event.event.as_str() {
            "ready" if !json => {
                crate::emit("watching for bank events (Ctrl-C to stop)");
            }
            // Staff revoked, locked or unlocked a device: the connected one acts on it now.
            "bank_command" => {
                let result = flows::apply_bank_command(
                    &mut session,
                    &login.serial,
                    &event.data,
                    Some(&client),
                    &mut reporter.sink(),
                )
                .await;
                match result {
                    Ok(Some(status)) => {
                        commands.push(json!({
                            "serial": login.serial,
                            "command": event.data["command"],
                            "lifecycle": status.lifecycle.as_str(),
                            "lock": status.lock.as_str(),
                        }));
                        // Wiped or locked: the bank ended this session; nothing more to watch.
                        if status.lifecycle == Lifecycle::Revoked
                            || status.lock != LockState::Unlocked
                        {
                            watcher.abort();
                            return Ok(json!({
                                "confirmations": decided,
                                "bankCommands": commands,
                                "events": reporter.events,
                            }));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("pinbridge confirm: bank command: {e}"),
                }
            }
            "confirmation"
                if event.data["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("pending")) =>
            {
                let result = flows::confirm_one(
                    &mut session,
                    &client,
                    &login,
                    &mut host,
                    &event.data,
                    &mut reporter.sink(),
                )
                .await;
                // Still watching: keep counters reserved ahead (write-ahead, see reserve_counters).
                reserve_counters(&store, &host)?;
                match result {
                    Ok(answer) => decided.push(answer),
                    Err(e) => eprintln!("pinbridge confirm: {e}"),
                }
            }
            _ => {}
        }
    }
    match watcher.await {
        Ok(Err(e)) => Err(e.into()),
        _ => Ok(
            json!({"confirmations": decided, "bankCommands": commands, "events": reporter.events}),
        ),
    }
}

/// A device serial as a URL path or query part (the library's rule, shared with the app).
pub(crate) fn serial_part(serial: &str) -> Result<&str, CliError> {
    flows::remote::serial_part(serial).map_err(CliError::input)
}

/// Staff: a signed lock or unlock for a device, by serial (no device needed: the bank pushes
/// it to the customer's watching app, and hands it out at the device's next login).
async fn staff_device_command(
    client: &BankClient,
    login: &StaffLogin,
    serial: &str,
    command: &str,
    reason: &str,
) -> CommandResult {
    let token = staff_token(client, login).await?;
    let answer =
        flows::remote::device_command(client, &token, serial_part(serial)?, command, reason)
            .await
            .map_err(CliError::from)?;
    Ok(json!({"serial": serial, "command": command, "issued": answer["command"]}))
}

/// `pinbridge staff ...`.
pub async fn staff(connection: &Connection, json: bool, command: StaffCommand) -> CommandResult {
    let client = bank(connection)?;
    let mut reporter = Reporter::new(json, connection);
    match command {
        StaffCommand::Init(login) => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            let serial = flows::initialise(&mut session, &client, &token, &mut reporter.sink())
                .await
                .map_err(CliError::from)?;
            Ok(json!({"initialised": serial, "events": reporter.events}))
        }
        StaffCommand::Enrol { login, customer } | StaffCommand::Bind { login, customer } => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            let serial = flows::device_serial(&mut session)
                .await
                .map_err(CliError::from)?;
            let enrolment = flows::enrol(
                &mut session,
                &client,
                &token,
                &serial,
                &customer,
                &mut reporter.sink(),
            )
            .await
            .map_err(CliError::from)?;
            Ok(crate::lifecycle::enrolled(
                json!({"bound": serial, "customerId": customer, "events": reporter.events}),
                &enrolment,
            ))
        }
        StaffCommand::Unpair {
            login,
            serial,
            reason,
        } => crate::lifecycle::unpair(connection, &login, &serial, &reason).await,
        StaffCommand::Rebind {
            login,
            from,
            customer,
        } => crate::lifecycle::rebind(connection, json, &login, &from, &customer).await,
        StaffCommand::Revoke {
            login,
            serial,
            reason,
            relay,
        } => {
            let token = staff_token(&client, &login).await?;
            let mut session = if relay {
                Some(open_device(connection).await?)
            } else {
                None
            };
            flows::revoke(
                session.as_mut(),
                &client,
                &token,
                &serial,
                &reason,
                &mut reporter.sink(),
            )
            .await
            .map_err(CliError::from)?;
            Ok(json!({"revoked": serial, "events": reporter.events}))
        }
        StaffCommand::Lock {
            login,
            serial,
            reason,
        } => staff_device_command(&client, &login, &serial, "lock", &reason).await,
        StaffCommand::Unlock {
            login,
            serial,
            reason,
        } => staff_device_command(&client, &login, &serial, "unlock", &reason).await,
        StaffCommand::Device { login, serial } => {
            crate::lifecycle::device_record(&client, &login, &serial).await
        }
        StaffCommand::Intrusions { login, serial } => {
            let token = staff_token(&client, &login).await?;
            let path = match &serial {
                Some(serial) => format!("/v1/intrusion-reports?serial={}", serial_part(serial)?),
                None => "/v1/intrusion-reports".to_owned(),
            };
            let answer = client
                .get(&path, Some(&token))
                .await
                .map_err(CliError::from)?;
            Ok(answer)
        }
        StaffCommand::ResetTamper { login, serial } => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            flows::operator_reset(&mut session, &client, &token, &serial, &mut reporter.sink())
                .await
                .map_err(CliError::from)?;
            Ok(json!({"reset": serial, "events": reporter.events}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_pin_says_how_many_tries_are_left_then_blocked() {
        assert_eq!(
            pin_advice("pin_incorrect", Some(2)),
            ("pin_incorrect", " - wrong PIN, 2 tries left".to_owned())
        );
        assert_eq!(
            pin_advice("pin_incorrect", Some(1)).1,
            " - wrong PIN, 1 try left"
        );
        assert_eq!(pin_advice("pin_incorrect", Some(0)).0, "pin_blocked");
        assert_eq!(pin_advice("account_blocked", None).0, "pin_blocked");
        assert_eq!(pin_advice("insufficient_funds", None).0, "not_approved");
    }
}
