//! Opening the PIN pad (a simulator address, or a USB/Bluetooth device waited for) and the
//! commands about it and its session: devices, pair, login, logout.

use std::time::Duration;

use companion::devices::{DeviceManager, DiscoveryConfig};
use companion::error::ErrorKind;
use companion::flows;
use companion::keystore::{KeyStore, PairedHost};
use companion::session::Session;
use companion::transport::Transport;
use companion::transport::sim::SimTransport;
use serde_json::{Value, json};

use super::{CliError, CommandResult, Connection, Reporter, state_dir};
use crate::cli_session::{self, LoggedIn};

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
