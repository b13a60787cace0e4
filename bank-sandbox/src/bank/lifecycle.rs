//! A device's life after issue, the bank's side (CN101093566A): the customer's own loss
//! report with no device and no session, and the ForgetHosts command handed to the device at
//! login until a login completes.

use sqlx::Row;
use zeroize::Zeroizing;

use super::{Bank, CommandKind};
use crate::error::{BankError, BankResult};
use crate::util;

/// Domain tag of the stored loss-report code hash.
const LOSS_CODE_TAG: &[u8] = b"PinBridge/bank/loss-report-code\0";

/// A fresh loss-report code: 80 random bits as 20 hex digits in groups of four
/// (`3F9A-…`). Guessing is online only (the source throttle of device logins applies).
pub(crate) fn new_loss_report_code() -> BankResult<Zeroizing<String>> {
    let bytes = Zeroizing::new(util::random_bytes::<10>()?);
    let digits = Zeroizing::new(hex::encode_upper(bytes.as_slice()));
    let groups: Vec<&str> = digits
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    Ok(Zeroizing::new(groups.join("-")))
}

/// SHA-256 of the code as typed, without separators and case: what the bank keeps.
pub(crate) fn loss_code_hash(code: &str) -> [u8; 32] {
    let normalised = Zeroizing::new(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect::<String>(),
    );
    let mut input = Zeroizing::new(LOSS_CODE_TAG.to_vec());
    input.extend_from_slice(normalised.as_bytes());
    util::sha256(&input)
}

impl Bank {
    /// The customer reports their PIN pad lost, with the loss-report code they got at
    /// enrolment (no device, no session). The bank locks the device and revokes it: logins
    /// are refused from now on, and the signed Wipe goes to any app the device is connected
    /// to, and to the device at its next login attempt.
    pub async fn report_lost(
        &self,
        serial: &str,
        customer_id: &str,
        code: &str,
    ) -> BankResult<serde_json::Value> {
        let refused = || {
            BankError::new(
                axum::http::StatusCode::FORBIDDEN,
                "loss_report_refused",
                "no device with that serial is bound to that customer with that loss-report code",
            )
        };
        let row = sqlx::query(&self.store.q(
            "SELECT loss_code_hash FROM bindings WHERE device_serial = ? AND customer_id = ? \
             AND status = 'active'",
        ))
        .bind(serial)
        .bind(customer_id)
        .fetch_optional(self.store.reader())
        .await?;
        // The hash is computed whether or not a binding was found: the same work either way.
        let offered = loss_code_hash(code);
        let stored: Option<Vec<u8>> = match row {
            Some(row) => row.try_get("loss_code_hash")?,
            None => None,
        };
        let Some(stored) = stored else {
            return Err(refused());
        };
        if !crate::hsm::same_bytes(&stored, &offered) {
            return Err(refused());
        }
        // Locked at the bank at once (no login, whatever happens next), and the signed Wipe
        // queued: pushed to any app the device is connected to now, handed to the device at
        // its next login attempt otherwise. A Wipe locks the device's payment functions for
        // good, so no separate device Lock is sent (an app stops watching after a lock, and
        // the Wipe must not wait behind it).
        sqlx::query(
            &self
                .store
                .q("UPDATE devices SET locked_by_bank = 1 WHERE serial = ?"),
        )
        .bind(serial)
        .execute(self.store.writer())
        .await?;
        let who = format!("customer {customer_id}");
        let wipe = self
            .issue_command(serial, CommandKind::Wipe, "Reported lost", &who)
            .await?;
        tracing::info!(serial, customer_id, "device reported lost by the customer");
        Ok(serde_json::json!({
            "serial": serial,
            "state": "revoked",
            "bank_command": wipe["bank_command"],
        }))
    }

    /// The pending ForgetHosts command of a device, if staff issued one that no completed
    /// login has followed yet: the login hands it to the device first.
    pub(crate) async fn pending_forget_hosts(&self, serial: &str) -> BankResult<Option<String>> {
        let pending: i64 = sqlx::query(
            &self
                .store
                .q("SELECT forget_hosts_pending FROM devices WHERE serial = ?"),
        )
        .bind(serial)
        .fetch_optional(self.store.reader())
        .await?
        .map(|row| row.try_get("forget_hosts_pending"))
        .transpose()?
        .unwrap_or(0);
        if pending == 0 {
            return Ok(None);
        }
        self.latest_command(serial, "forget_hosts").await
    }

    /// A login completed that began after the ForgetHosts was issued: our app relayed it
    /// first (the device forgot its hosts, or had already), so it is no longer handed out.
    pub(crate) async fn forget_hosts_delivered(
        &self,
        serial: &str,
        login_began_at: i64,
    ) -> BankResult<()> {
        sqlx::query(&self.store.q(
            "UPDATE devices SET forget_hosts_pending = 0 WHERE serial = ? \
             AND forget_hosts_pending > 0 AND forget_hosts_pending <= ?",
        ))
        .bind(serial)
        .bind(login_began_at)
        .execute(self.store.writer())
        .await?;
        Ok(())
    }
}
