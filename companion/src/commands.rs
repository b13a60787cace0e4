//! The `pinbridge` subcommands over the library's flows: devices, pair, login, pay, confirm,
//! staff and logs. Connection settings come from flags or the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use companion::bank::{BankClient, BankSettings, BearerToken};
use companion::devices::{DeviceManager, DiscoveryConfig};
use companion::flows::{self, FlowEvent, PaymentOrder};
use companion::keystore::{KeyStore, PairedHost};
use companion::redaction;
use companion::session::Session;
use companion::transport::Transport;
use companion::transport::sim::SimTransport;
use firmware_protocol::message::{Lifecycle, LockState};
use serde_json::{Value, json};
use zeroize::Zeroizing;

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
fn staff_password(login: &StaffLogin) -> Result<Zeroizing<String>, String> {
    if login.refused_staff_password.is_some() {
        return Err(format!(
            "--staff-password is refused: a password on the command line shows in the process \
             list of every user of this machine. Use --staff-password-file FILE, set \
             {STAFF_PASSWORD_ENV}, or run on a terminal to be asked for it"
        ));
    }
    if let Some(path) = &login.staff_password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(format!(
                "{}: the first line (the staff password) is empty",
                path.display()
            ));
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
            .map_err(|e| format!("cannot read the staff password from the terminal: {e}"));
    }
    Err(format!(
        "no staff password: give --staff-password-file FILE or set {STAFF_PASSWORD_ENV} (not on \
         a terminal, so there is no prompt)"
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

/// A command's failure, in words.
pub type CommandResult = Result<Value, String>;

fn state_dir(connection: &Connection) -> PathBuf {
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

fn bank(connection: &Connection) -> Result<BankClient, String> {
    let url = connection
        .bank_url
        .clone()
        .ok_or("no bank URL: give --bank-url or set PINBRIDGE_BANK_URL")?;
    let ca_pem = match &connection.bank_ca {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("--bank-ca {}: {e}", path.display()))?)
        }
        None => None,
    };
    BankClient::new(&BankSettings { url, ca_pem }).map_err(|e| e.to_string())
}

/// How long a command waits for its PIN pad to be plugged in.
const DEVICE_WAIT: Duration = Duration::from_secs(30);

async fn open_device(connection: &Connection) -> Result<Session, String> {
    let wanted = connection
        .device
        .clone()
        .ok_or("no PIN pad: give --device (e.g. sim:127.0.0.1:7000) or set PINBRIDGE_DEVICE")?;
    let transport: Box<dyn Transport> = if let Some(address) = wanted.strip_prefix("sim:") {
        let address = address
            .parse()
            .map_err(|e| format!("--device {wanted}: not HOST:PORT ({e})"))?;
        Box::new(
            SimTransport::connect(address)
                .await
                .map_err(|e| e.to_string())?,
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
            .map_err(|e| e.to_string())?;
        manager.open(info.id()).await.map_err(|e| e.to_string())?
    };
    let session = Session::open(transport).await.map_err(|e| e.to_string())?;
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

/// Prints events as they come (text mode) and keeps them (JSON result, event log).
struct Reporter {
    json: bool,
    events: Vec<Value>,
    log: Option<PathBuf>,
}

impl Reporter {
    fn new(json: bool, connection: &Connection) -> Self {
        let dir = state_dir(connection);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        let log = builder.create(&dir).ok().map(|()| dir.join("events.log"));
        Self {
            json,
            events: Vec::new(),
            log,
        }
    }

    fn sink(&mut self) -> impl FnMut(FlowEvent) + Send + '_ {
        move |event: FlowEvent| {
            if !self.json {
                println!("{event}");
            }
            let value = serde_json::to_value(&event).unwrap_or(Value::Null);
            if let Some(log) = &self.log {
                append_log(log, &value);
            }
            self.events.push(value);
        }
    }
}

/// Opens a file for the user's eyes only (0600 on Unix: the event log holds payees, amounts
/// and customer ids); an existing file readable by others is narrowed.
fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

fn append_log(path: &Path, event: &Value) {
    use std::io::Write;
    let line = json!({"at": unix_ms(), "event": event});
    if let Ok(mut file) = open_private(path, true) {
        let _ = writeln!(file, "{line}");
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn staff_token(bank: &BankClient, login: &StaffLogin) -> Result<BearerToken, String> {
    let password = staff_password(login)?;
    bank.staff_login(&login.staff_user, &password)
        .await
        .map_err(|e| e.to_string())
}

/// `pinbridge devices`.
pub async fn devices(connection: &Connection) -> CommandResult {
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
    Ok(json!({"devices": list}))
}

async fn paired_host(store: &KeyStore, session: &mut Session) -> Result<PairedHost, String> {
    let serial = flows::device_serial(session)
        .await
        .map_err(|e| e.to_string())?;
    store
        .find(&serial)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("this computer is not paired with PIN pad {serial}; run `pinbridge pair`")
        })
}

/// `pinbridge pair`.
pub async fn pair(connection: &Connection, json: bool, host_name: &str) -> CommandResult {
    let mut session = open_device(connection).await?;
    let store = KeyStore::new(state_dir(connection));
    let mut reporter = Reporter::new(json, connection);
    let host = flows::pair(&mut session, host_name, &mut reporter.sink())
        .await
        .map_err(|e| e.to_string())?;
    store.save(&host).map_err(|e| e.to_string())?;
    Ok(
        json!({"paired": host.serial, "hostId": hex::encode(host.host_id.as_bytes()), "events": reporter.events}),
    )
}

async fn login_with(
    connection: &Connection,
    reporter: &mut Reporter,
) -> Result<
    (
        Session,
        BankClient,
        KeyStore,
        PairedHost,
        flows::BankSession,
    ),
    String,
> {
    let client = bank(connection)?;
    let mut session = open_device(connection).await?;
    let store = KeyStore::new(state_dir(connection));
    let mut host = paired_host(&store, &mut session).await?;
    let result = flows::login(&mut session, &client, &mut host, &mut reporter.sink()).await;
    // The host counter moved whatever happened: persist it before reporting.
    store.save(&host).map_err(|e| e.to_string())?;
    let login = result.map_err(|e| e.to_string())?;
    Ok((session, client, store, host, login))
}

/// `pinbridge login`.
pub async fn login(connection: &Connection, json: bool) -> CommandResult {
    let mut reporter = Reporter::new(json, connection);
    let (_, client, _, _, login) = login_with(connection, &mut reporter).await?;
    let (customer_id, serial) = (login.customer_id.clone(), login.serial.clone());
    end_session(&client, login).await;
    Ok(
        json!({"loggedIn": true, "customerId": customer_id, "serial": serial, "events": reporter.events}),
    )
}

/// Ends the bank session a command opened (a command-line session lives as long as its
/// command): the bank revokes the token. A failure is reported, not fatal: the work is done,
/// and the token still expires at the bank.
async fn end_session(client: &BankClient, login: flows::BankSession) {
    if let Err(error) = flows::logout(client, login).await {
        eprintln!("pinbridge: could not end the bank session: {error}");
    }
}

/// Minor-unit exponent of an ISO 4217 currency (2 unless listed).
fn currency_exponent(currency: &str) -> u8 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "XAF" | "XOF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
        _ => 2,
    }
}

/// Parses `12.34` into minor units for `exponent`, refusing more decimals than it has.
pub fn parse_amount(text: &str, exponent: u8) -> Result<u64, String> {
    let bad = || format!("--amount {text}: not an amount with at most {exponent} decimals");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > usize::from(exponent)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let padded = format!("{whole}{fraction:0<width$}", width = usize::from(exponent));
    let amount: u64 = padded.parse().map_err(|_| bad())?;
    if amount == 0 {
        return Err(format!("--amount {text}: must be more than zero"));
    }
    Ok(amount)
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
    let currency = currency.to_ascii_uppercase();
    let amount_minor = parse_amount(amount, currency_exponent(&currency))?;
    let mut reporter = Reporter::new(json, connection);
    let (mut session, client, store, mut host, login) =
        login_with(connection, &mut reporter).await?;
    let mut key = [0u8; 8];
    getrandom::fill(&mut key).map_err(|e| e.to_string())?;
    let order = PaymentOrder {
        payee_account: to.to_owned(),
        payee_name: payee_name.to_owned(),
        amount_minor,
        currency,
        reference: reference.to_owned(),
        idempotency_key: hex::encode(key),
    };
    let result = flows::pay(
        &mut session,
        &client,
        &login,
        &mut host,
        &order,
        &mut reporter.sink(),
    )
    .await;
    end_session(&client, login).await;
    store.save(&host).map_err(|e| e.to_string())?;
    let outcome = result.map_err(|e| e.to_string())?;
    if !outcome.approved() {
        return Err(format!(
            "payment {} not approved: bank {}, PIN pad {} ({})",
            outcome.transaction_id,
            outcome.bank_result,
            outcome.device_result,
            outcome.display_text
        ));
    }
    Ok(json!({"payment": outcome, "events": reporter.events}))
}

/// `pinbridge confirm [--watch]`.
pub async fn confirm(connection: &Connection, json: bool, watch: bool) -> CommandResult {
    let mut reporter = Reporter::new(json, connection);
    let (mut session, client, store, mut host, login) =
        login_with(connection, &mut reporter).await?;
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
        end_session(&client, login).await;
        store.save(&host).map_err(|e| e.to_string())?;
        decided = result.map_err(|e| e.to_string())?;
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
                println!("watching for bank events (Ctrl-C to stop)");
            }
            // Staff revoked, locked or unlocked a device: the connected one acts on it now.
            "bank_command" => {
                let result = flows::apply_bank_command(
                    &mut session,
                    &login.serial,
                    &event.data,
                    &mut reporter.sink(),
                )
                .await;
                match result {
                    Ok(Some(status)) => {
                        commands.push(json!({
                            "serial": login.serial,
                            "command": event.data["command"],
                            "lifecycle": format!("{:?}", status.lifecycle),
                            "lock": format!("{:?}", status.lock),
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
                store.save(&host).map_err(|e| e.to_string())?;
                match result {
                    Ok(answer) => decided.push(answer),
                    Err(e) => eprintln!("pinbridge confirm: {e}"),
                }
            }
            _ => {}
        }
    }
    match watcher.await {
        Ok(Err(e)) => Err(e.to_string()),
        _ => Ok(
            json!({"confirmations": decided, "bankCommands": commands, "events": reporter.events}),
        ),
    }
}

/// A device serial as a URL path or query part (letters, digits, `-`, `_`, `.`).
fn serial_part(serial: &str) -> Result<&str, String> {
    if !serial.is_empty()
        && serial
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(serial)
    } else {
        Err(format!(
            "--serial {serial:?}: letters, digits, '-', '_' and '.' only"
        ))
    }
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
    let answer = client
        .post(
            &format!("/v1/devices/{}/commands", serial_part(serial)?),
            Some(&token),
            &json!({"command": command, "reason": reason}),
        )
        .await
        .map_err(|e| e.to_string())?;
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
                .map_err(|e| e.to_string())?;
            Ok(json!({"initialised": serial, "events": reporter.events}))
        }
        StaffCommand::Enrol { login, customer } | StaffCommand::Bind { login, customer } => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            let serial = flows::device_serial(&mut session)
                .await
                .map_err(|e| e.to_string())?;
            flows::enrol(
                &mut session,
                &client,
                &token,
                &serial,
                &customer,
                &mut reporter.sink(),
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(json!({"bound": serial, "customerId": customer, "events": reporter.events}))
        }
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
            .map_err(|e| e.to_string())?;
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
        StaffCommand::Intrusions { login, serial } => {
            let token = staff_token(&client, &login).await?;
            let path = match &serial {
                Some(serial) => format!("/v1/intrusion-reports?serial={}", serial_part(serial)?),
                None => "/v1/intrusion-reports".to_owned(),
            };
            let answer = client
                .get(&path, Some(&token))
                .await
                .map_err(|e| e.to_string())?;
            if !json {
                let reports = answer["reports"].as_array().cloned().unwrap_or_default();
                if reports.is_empty() {
                    println!("no intrusion reports");
                }
                for report in reports {
                    println!(
                        "{}  {}  {}",
                        report["created_at"],
                        report["serial"].as_str().unwrap_or("?"),
                        report["detail"].as_str().unwrap_or("?")
                    );
                }
            }
            Ok(answer)
        }
        StaffCommand::ResetTamper { login, serial } => {
            let token = staff_token(&client, &login).await?;
            let mut session = open_device(connection).await?;
            flows::operator_reset(&mut session, &client, &token, &serial, &mut reporter.sink())
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({"reset": serial, "events": reporter.events}))
        }
    }
}

/// `pinbridge logs export`.
pub fn logs_export(connection: &Connection, out: Option<&Path>) -> CommandResult {
    let path = state_dir(connection).join("events.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let redacted: Vec<String> = text
        .lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(mut value) => {
                redaction::redact_json(&mut value);
                value.to_string()
            }
            Err(_) => redaction::redact_hex_runs(line).0,
        })
        .collect();
    let body = redacted.join("\n");
    match out {
        Some(file) => {
            use std::io::Write;
            open_private(file, false)
                .and_then(|mut f| f.write_all(body.as_bytes()))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            Ok(json!({"exported": redacted.len(), "to": file.display().to_string()}))
        }
        None => Ok(json!({"exported": redacted.len(), "lines": redacted})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_minor_units() {
        assert_eq!(parse_amount("12.34", 2), Ok(1234));
        assert_eq!(parse_amount("12.3", 2), Ok(1230));
        assert_eq!(parse_amount("12", 2), Ok(1200));
        assert_eq!(parse_amount("7", 0), Ok(7));
        assert!(parse_amount("12.345", 2).is_err());
        assert!(parse_amount("-1", 2).is_err());
        assert!(parse_amount("1e3", 2).is_err());
        assert!(parse_amount("0.00", 2).is_err());
        assert!(parse_amount("12.", 2).is_err());
    }
}
