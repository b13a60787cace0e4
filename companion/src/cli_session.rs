//! The command line's bank session, kept between commands (issue 17 item 6): after a login the
//! token, its expiry, the bank and the PIN pad and customer it belongs to are stored in the
//! state directory (`session.json`, 0600 like the pairing store, written atomically), so the
//! next `pay`, `confirm` or `pin change` reuses it instead of running the whole login again.
//! The PIN pad keeps the session keys that login loaded; `pinbridge logout` ends the session
//! at both ends and deletes the file.
//!
//! The file holds a bearer token, so it is read into zeroized memory, never printed (the
//! session's `Debug` redacts the token) and never logged. It holds no PIN and no key: the PIN
//! never reaches this computer, and the session keys live in the PIN pad only.
//!
//! A stored session is used only while all of these hold, checked before anything is sent:
//! same bank URL; same PIN pad (its serial, as paired); not within a minute of its expiry; the
//! PIN pad says it holds session keys (Status); the bank still accepts the token (a revoked or
//! expired one is refused). Otherwise the file is deleted and the command logs in afresh with
//! the PIN pad, as before.

use std::path::PathBuf;

use companion::bank::{BankClient, BearerToken};
use companion::flows::{self, BankSession, FlowError};
use companion::keystore::{KeyStore, PairedHost};
use companion::private_file;
use companion::session::Session;
use firmware_protocol::message::{GetStatus, LockState, StatusCode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::commands::{
    CliError, Connection, Reporter, bank, open_device, paired_host, reserve_counters, state_dir,
};

const FILE_NAME: &str = "session.json";

/// A session this close to its end is not reused: the command started on it could outlive it.
const EXPIRY_MARGIN_MS: i64 = 60_000;

/// The file's layout version; another one is not read (a fresh login replaces it).
const VERSION: u8 = 1;

#[derive(Serialize)]
struct Writing<'a> {
    version: u8,
    bank_url: &'a str,
    serial: &'a str,
    customer_id: &'a str,
    session_id: &'a str,
    expires_at_ms: i64,
    token: &'a str,
}

/// No `Debug`: it holds the token.
#[derive(Deserialize)]
struct Reading {
    version: u8,
    bank_url: String,
    serial: String,
    customer_id: String,
    session_id: String,
    expires_at_ms: i64,
    token: String,
}

fn path(connection: &Connection) -> PathBuf {
    state_dir(connection).join(FILE_NAME)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The stored session for `bank_url`, if the file is there, readable and for that bank.
fn load(connection: &Connection, bank_url: &str) -> Option<BankSession> {
    let bytes = Zeroizing::new(std::fs::read(path(connection)).ok()?);
    let Ok(read) = serde_json::from_slice::<Reading>(&bytes) else {
        forget(connection);
        return None;
    };
    if read.version != VERSION || read.bank_url != bank_url {
        forget(connection);
        return None;
    }
    Some(BankSession {
        // Moved, not copied: the token's buffer is zeroized when the session is dropped.
        token: BearerToken::new(read.token),
        session_id: read.session_id,
        customer_id: read.customer_id,
        serial: read.serial,
        expires_at_ms: Some(read.expires_at_ms),
    })
}

/// Stores `login` for the next command. A session without an expiry is not stored (nothing
/// would say when to stop reusing it).
pub(crate) fn keep(connection: &Connection, client: &BankClient, login: &BankSession) {
    let Some(expires_at_ms) = login.expires_at_ms else {
        forget(connection);
        return;
    };
    let writing = Writing {
        version: VERSION,
        bank_url: client.url(),
        serial: &login.serial,
        customer_id: &login.customer_id,
        session_id: &login.session_id,
        expires_at_ms,
        token: login.token.reveal(),
    };
    let stored = serde_json::to_vec(&writing)
        .map(Zeroizing::new)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            private_file::create_dir(&state_dir(connection))?;
            private_file::write_atomic(&path(connection), &bytes)
        });
    // Not fatal: the work is done; the next command logs in again.
    if let Err(error) = stored {
        eprintln!("pinbridge: could not keep the session for the next command: {error}");
    }
}

/// Deletes the stored session (if any).
pub(crate) fn forget(connection: &Connection) {
    let file = path(connection);
    if let Err(error) = std::fs::remove_file(&file)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("pinbridge: could not delete {}: {error}", file.display());
    }
}

/// A logged-in command's tools: the PIN pad, the bank, the pairing store and pairing, and the
/// bank session (stored or fresh).
pub(crate) struct LoggedIn {
    pub(crate) session: Session,
    pub(crate) client: BankClient,
    pub(crate) store: KeyStore,
    pub(crate) host: PairedHost,
    pub(crate) login: BankSession,
    /// The session came from the file (no login ran).
    pub(crate) reused: bool,
}

/// The stored session if it still holds (see the module comment), else a fresh login.
pub(crate) async fn logged_in(
    connection: &Connection,
    reporter: &mut Reporter,
) -> Result<LoggedIn, CliError> {
    let client = bank(connection)?;
    let mut session = open_device(connection).await?;
    let store = KeyStore::new_interactive(state_dir(connection));
    let mut host = paired_host(&store, &mut session).await?;
    reserve_counters(&store, &host)?;
    if let Some(stored) = load(connection, client.url())
        && still_good(&stored, &mut session, &client, &host).await
    {
        return Ok(LoggedIn {
            session,
            client,
            store,
            host,
            login: stored,
            reused: true,
        });
    }
    forget(connection);
    let login = fresh_login(&mut session, &client, &store, &mut host, reporter).await?;
    keep(connection, &client, &login);
    Ok(LoggedIn {
        session,
        client,
        store,
        host,
        login,
        reused: false,
    })
}

/// The whole login with the PIN pad.
pub(crate) async fn fresh_login(
    session: &mut Session,
    client: &BankClient,
    store: &KeyStore,
    host: &mut PairedHost,
    reporter: &mut Reporter,
) -> Result<BankSession, CliError> {
    let result = flows::login(session, client, host, &mut reporter.sink()).await;
    // The host counter moved whatever happened: persist it (reserved ahead again, the command
    // goes on to use more) before reporting.
    reserve_counters(store, host)?;
    result.map_err(CliError::from)
}

async fn still_good(
    stored: &BankSession,
    session: &mut Session,
    client: &BankClient,
    host: &PairedHost,
) -> bool {
    if stored.serial != host.serial
        || stored
            .expires_at_ms
            .is_none_or(|end| end <= now_ms().saturating_add(EXPIRY_MARGIN_MS))
    {
        return false;
    }
    let device_has_keys = session.ask(GetStatus).await.is_ok_and(|status| {
        status.session_active && !status.tampered && status.lock == LockState::Unlocked
    });
    device_has_keys && client.accounts(&stored.token).await.is_ok()
}

/// Whether `error` says the session ended under the command (the PIN pad lost its keys or
/// holds another session's, or the bank refused the token), before anything was approved: the
/// command may log in afresh and try once more.
pub(crate) fn session_gone(error: &FlowError) -> bool {
    match error {
        FlowError::Device(device) => matches!(
            device.status(),
            Some(StatusCode::NoSession | StatusCode::SessionMismatch)
        ),
        FlowError::Bank(bank) => bank.kind() == companion::error::ErrorKind::NotLoggedIn,
        _ => false,
    }
}

/// Ends `login` at both ends now (the bank revokes the token, the PIN pad drops its keys) and
/// forgets it: a session that can do nothing more (the PIN just blocked) is not kept.
pub(crate) async fn end(
    connection: &Connection,
    session: &mut Session,
    client: &BankClient,
    login: BankSession,
) {
    forget(connection);
    let mut quiet = |_: flows::FlowEvent| {};
    if let Err(error) = flows::logout_device(session, client, login, &mut quiet).await {
        eprintln!("pinbridge: could not end the session: {error}");
    }
}

/// `pinbridge logout`: ends the stored session at the bank (the token is revoked) and, when
/// the PIN pad is here, on the PIN pad (the bank's signed EndSession), then deletes the file.
pub(crate) async fn logout(connection: &Connection) -> Result<serde_json::Value, CliError> {
    let client = bank(connection)?;
    let Some(stored) = load(connection, client.url()) else {
        forget(connection);
        return Ok(serde_json::json!({"loggedOut": false, "reason": "no stored session"}));
    };
    forget(connection);
    let serial = stored.serial.clone();
    let device = match open_device(connection).await {
        Ok(mut session) => {
            let mut quiet = |_: flows::FlowEvent| {};
            flows::logout_device(&mut session, &client, stored, &mut quiet)
                .await
                .map(|_| "session keys dropped")
                .map_err(CliError::from)
        }
        // Without the PIN pad the bank still revokes the token; the PIN pad drops its keys at
        // its next login or restart.
        Err(_) => client
            .logout(&stored.token)
            .await
            .map(|_| "not connected: its keys go at its next login")
            .map_err(CliError::from),
    };
    match device {
        Ok(device) => Ok(serde_json::json!({
            "loggedOut": true,
            "serial": serial,
            "pinPad": device,
        })),
        // Already ended at the bank (expired, revoked): nothing left to end there.
        Err(error) if error.kind == companion::error::ErrorKind::NotLoggedIn => Ok(
            serde_json::json!({"loggedOut": true, "serial": serial, "pinPad": "session had already ended"}),
        ),
        Err(error) => Err(error),
    }
}
