//! What a device did with a signed bank command (lock, unlock, wipe, forget hosts, end
//! session), as the app that relayed it reports: stored per command and shown to staff with
//! the device's record.
//!
//! What this is worth: the device answers a BankCommand with its Status, which nothing signs
//! or MACs (PROTOCOL.md §3.4), so a report is the relaying app's word. The bank checks what it
//! can: the report quotes the exact signed command the bank issued for that serial (so it is
//! about a real command, from someone who was handed it), the device's answer decodes, and an
//! "applied" claim is consistent (the state the command asks for, a bank sequence at least
//! the command's). It never changes the registry on a report: a wiped or locked device is
//! already refused at the bank, whatever is reported. docs/SECURITY.md says the same.

use firmware_protocol::message::{self, Request, Response};
use serde::Serialize;
use sqlx::Row;

use super::Bank;
use crate::error::{BankError, BankResult};
use crate::util::now_ms;

/// Commands shown per device, newest first.
const SHOWN: i64 = 20;

/// A device's answer to a command, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommandResult {
    /// `applied` (the state the command asks for), `not_applied` (the device answered with
    /// another state) or `refused` (the device answered with an Error).
    pub outcome: String,
    /// The device's lifecycle in its answer (`bound`, `revoked`, ...), if it sent a Status.
    pub lifecycle: Option<String>,
    /// The device's lock in its answer (`unlocked`, `locked_by_bank`, ...).
    pub lock: Option<String>,
    /// The device's refusal (`StaleBankCounter`, `BadSignature`, ...), if it refused.
    pub device_error: Option<String>,
    /// When the latest report came (ms since the epoch).
    pub reported_at: i64,
    /// How many reports were kept for this command (the latest is shown; an `applied` one is
    /// not replaced by a later refusal: a command relayed again is refused as stale).
    pub reports: i64,
    /// Always `app_report`: the device does not sign its answer to a bank command.
    pub evidence: &'static str,
}

/// A signed command issued for a device, with what was reported about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommandRecord {
    /// Its bank sequence.
    pub sequence: i64,
    /// `lock`, `unlock`, `wipe`, `forget_hosts`, `end_session`, `operator_reset`, ...
    pub command: String,
    /// Who issued it (staff user, `login`, `customer ...`).
    pub issued_by: String,
    /// When (ms since the epoch).
    pub issued_at: i64,
    /// The latest report, if any came.
    pub result: Option<CommandResult>,
}

/// `LockedByBank` -> `locked_by_bank`, as the rest of the API names states.
fn snake(debug: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl Bank {
    /// Records what the device answered to one of its bank commands (see the module
    /// documentation for what the bank can check). `bank_command`: the signed command as the
    /// bank issued it (hex); `device_answer`: the device's whole answer message (hex), a
    /// Status or an Error.
    pub async fn record_command_result(
        &self,
        serial: &str,
        bank_command: &str,
        device_answer: &str,
    ) -> BankResult<serde_json::Value> {
        let command = hex::decode(bank_command.trim())
            .map_err(|_| BankError::invalid("bank_command: not hexadecimal"))?;
        // The command as the device saw it: the request id in its header is the app's to
        // change (nothing signs it), so the body is compared, not the whole message.
        let (_, request) = message::decode_request(&command)
            .map_err(|e| BankError::invalid(format!("bank_command: not a device request: {e}")))?;
        let Request::BankCommand(sent) = request else {
            return Err(BankError::invalid("bank_command: not a BankCommand"));
        };
        let unknown = || {
            BankError::not_found(
                "unknown_command",
                format!("this bank issued no such command for {serial}"),
            )
        };
        if sent.device_serial != serial {
            return Err(unknown());
        }
        let sequence = i64::try_from(sent.sequence).map_err(|_| unknown())?;
        let row = sqlx::query(
            &self
                .store
                .q("SELECT kind, message FROM device_commands WHERE serial = ? AND sequence = ?"),
        )
        .bind(serial)
        .bind(sequence)
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(unknown)?;
        let kind: String = row.try_get("kind")?;
        let stored: Vec<u8> = row.try_get("message")?;
        let same = match message::decode_request(&stored) {
            Ok((_, Request::BankCommand(issued))) => issued == sent,
            _ => false,
        };
        if !same {
            return Err(unknown());
        }
        let answer = hex::decode(device_answer.trim())
            .map_err(|_| BankError::invalid("device_answer: not hexadecimal"))?;
        let (_, response) = message::decode_response(&answer).map_err(|e| {
            BankError::invalid(format!("device_answer: not a device response: {e}"))
        })?;
        let (outcome, lifecycle, lock, device_error) = match &response {
            Response::Status(status) => {
                let applied =
                    status.shows_in_force(sent.command) && status.bank_sequence >= sent.sequence;
                (
                    if applied { "applied" } else { "not_applied" },
                    Some(snake(&format!("{:?}", status.lifecycle))),
                    Some(snake(&format!("{:?}", status.lock))),
                    None,
                )
            }
            Response::Error(error) => ("refused", None, None, Some(format!("{:?}", error.status))),
            other => {
                return Err(BankError::invalid(format!(
                    "device_answer: a BankCommand is answered with Status or Error, not {}",
                    other.name()
                )));
            }
        };
        let now = now_ms();
        sqlx::query(&self.store.q(
            "INSERT INTO device_command_results \
             (serial, sequence, outcome, lifecycle, device_lock, device_error, device_answer, reported_at, reports) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) \
             ON CONFLICT (serial, sequence) DO UPDATE SET outcome = excluded.outcome, \
             lifecycle = excluded.lifecycle, device_lock = excluded.device_lock, \
             device_error = excluded.device_error, device_answer = excluded.device_answer, \
             reported_at = excluded.reported_at, \
             reports = device_command_results.reports + 1 \
             WHERE device_command_results.outcome <> 'applied' OR excluded.outcome = 'applied'",
        ))
        .bind(serial)
        .bind(sequence)
        .bind(outcome)
        .bind(lifecycle.clone())
        .bind(lock.clone())
        .bind(device_error.clone())
        .bind(answer)
        .bind(now)
        .execute(self.store.writer())
        .await?;
        tracing::info!(
            serial,
            sequence,
            command = kind,
            outcome,
            "bank command result reported"
        );
        Ok(serde_json::json!({
            "serial": serial,
            "sequence": sequence,
            "command": kind,
            "outcome": outcome,
            "lifecycle": lifecycle,
            "lock": lock,
            "device_error": device_error,
            "evidence": "app_report",
        }))
    }

    /// The device's latest signed commands (newest first) with what was reported about each.
    pub(crate) async fn command_records(&self, serial: &str) -> BankResult<Vec<CommandRecord>> {
        let rows = sqlx::query(&self.store.q(
            "SELECT c.sequence, c.kind, c.issued_by, c.created_at, r.outcome, r.lifecycle, \
             r.device_lock, r.device_error, r.reported_at, r.reports \
             FROM device_commands c LEFT JOIN device_command_results r \
             ON r.serial = c.serial AND r.sequence = c.sequence \
             WHERE c.serial = ? ORDER BY c.sequence DESC LIMIT ?",
        ))
        .bind(serial)
        .bind(SHOWN)
        .fetch_all(self.store.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let outcome: Option<String> = row.try_get("outcome")?;
                let result = match outcome {
                    Some(outcome) => Some(CommandResult {
                        outcome,
                        lifecycle: row.try_get("lifecycle")?,
                        lock: row.try_get("device_lock")?,
                        device_error: row.try_get("device_error")?,
                        reported_at: row.try_get("reported_at")?,
                        reports: row.try_get("reports")?,
                        evidence: "app_report",
                    }),
                    None => None,
                };
                Ok(CommandRecord {
                    sequence: row.try_get("sequence")?,
                    command: row.try_get("kind")?,
                    issued_by: row.try_get("issued_by")?,
                    issued_at: row.try_get("created_at")?,
                    result,
                })
            })
            .collect()
    }
}
