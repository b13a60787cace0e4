//! `pinbridge pin change` and `pinbridge device wipe`: the customer's own operations on their
//! PIN pad (PROTOCOL.md §6.12, §6.13). Every PIN is typed on the PIN pad's keypad; this
//! program only relays enciphered, MACed or signed bytes.

use clap::{Args, Subcommand};
use companion::flows;
use companion::keystore::KeyStore;
use serde_json::json;

use crate::cli_session::{self, LoggedIn};
use crate::commands::{
    CliError, CommandResult, Connection, Reporter, bank, open_device, pin_advice, state_dir,
};

/// `pinbridge pin ...`.
#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Change your PIN on the PIN pad: log in, then type the current PIN, the new PIN and the
    /// new PIN again on its keypad. The bank checks the current PIN (a wrong one counts toward
    /// blocking, as in a payment).
    Change,
}

/// `pinbridge device wipe`.
#[derive(Debug, Args)]
pub struct WipeArgs {
    /// Do not tell the bank (the binding then stays there until you report the PIN pad lost
    /// or hand the printed receipt to the bank).
    #[arg(long)]
    pub offline: bool,
}

/// `pinbridge pin change`.
pub async fn pin(connection: &Connection, json_output: bool, command: PinCommand) -> CommandResult {
    match command {
        PinCommand::Change => change(connection, json_output).await,
    }
}

async fn change(connection: &Connection, json_output: bool) -> CommandResult {
    let mut reporter = Reporter::new(json_output, connection);
    let LoggedIn {
        mut session,
        client,
        store,
        mut host,
        login,
        ..
    } = cli_session::logged_in(connection, &mut reporter).await?;
    let result = flows::pin::change_pin(
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
    let outcome = result.map_err(CliError::from)?;
    if !outcome.changed() {
        let (code, advice) = match outcome.bank_result.as_str() {
            "old_pin_incorrect" => pin_advice("pin_incorrect", outcome.pin_tries_left),
            "pin_blocked" => pin_advice("pin_blocked", None),
            _ => ("not_changed", String::new()),
        };
        if code == "pin_blocked" {
            cli_session::end(connection, &mut session, &client, login).await;
        }
        return Err(CliError {
            kind: companion::error::ErrorKind::BankRejected,
            code,
            message: format!(
                "PIN not changed{advice}: bank {}, PIN pad {} ({})",
                outcome.bank_result, outcome.device_result, outcome.display_text
            ),
        });
    }
    Ok(json!({
        "pinChange": outcome,
        "events": reporter.events,
        "lines": ["PIN changed: use the new PIN from now on."],
    }))
}

/// `pinbridge device wipe`.
pub async fn wipe(connection: &Connection, json_output: bool, args: &WipeArgs) -> CommandResult {
    let mut reporter = Reporter::new(json_output, connection);
    // A bank that cannot be configured is no reason not to wipe: the receipt is printed.
    let client = if args.offline {
        None
    } else {
        bank(connection).ok()
    };
    let mut session = open_device(connection).await?;
    let outcome = flows::pin::wipe_device(&mut session, client.as_ref(), &mut reporter.sink())
        .await
        .map_err(CliError::from)?;
    let _ = session.close().await;
    // This computer's pairing with the PIN pad is worthless now: forget it.
    let store = KeyStore::new_interactive(state_dir(connection));
    let forgot = store.remove(&outcome.serial).unwrap_or(false);
    let told = if outcome.bank_notified {
        "the bank ended its binding"
    } else {
        "the bank was NOT told: keep the receipt below, or report the PIN pad lost"
    };
    Ok(json!({
        "wiped": outcome.serial,
        "bankNotified": outcome.bank_notified,
        "bank": outcome.bank,
        "receipt": outcome.receipt,
        "pairingForgotten": forgot,
        "events": reporter.events,
        "lines": [format!(
            "{} is wiped: keys, pairings and payment data erased, back to the factory state; {told}.",
            outcome.serial
        )],
    }))
}
