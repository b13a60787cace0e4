//! `pinbridge pay` and `pinbridge confirm`: a payment approved on the PIN pad, and the
//! confirmations the bank asks for (once, or watched).

use companion::error::ErrorKind;
use companion::flows::{self, PaymentOrder};
use companion::input;
use firmware_protocol::message::{Lifecycle, LockState};
use serde_json::json;

use super::{CliError, CommandResult, Connection, Reporter, input_locale, reserve_counters};
use crate::cli_session::{self, LoggedIn};

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
