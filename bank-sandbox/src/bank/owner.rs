//! The customer's own operations on their PIN pad, the bank's side (issue 14 item 7,
//! PROTOCOL.md §6.12, §6.13).
//!
//! Change PIN: the bank prepares a `ChangePin` for the logged-in device (session response
//! key, next bank counter from the binding's payment counter), then decides the device's
//! `PinChangeEntered`: its MAC under the session MAC key over the very request the bank made,
//! its device counter (the binding's, shared with payments: a replay is refused), the current
//! PIN in the HSM with the same wrong-PIN counter and lock as payments, and only then the new
//! PIN's verification value. The verdict goes back MACed in `VerifyPinChange`.
//!
//! Wipe: the device's receipt (`DeviceWiped`, signed by its attestation key) ends the binding
//! at the bank, like a loss report but with proof the keys are gone, and returns the device to
//! `registered` so staff can initialise it again for its next owner.

use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;
use firmware_protocol::message::{
    self, Answer, ChangePin, Command, DeviceWiped, MacTag, PinChangeResult, Request,
    VerifyPinChange, WipeDevice,
};
use serde::Serialize;
use sqlx::Row;

use super::{ActiveSession, Bank, device_refused, encode_request, seal_refused, unexpected_answer};
use crate::error::{BankError, BankResult};
use crate::util::{self, now_ms};

/// A prepared PIN change.
#[derive(Clone, Debug, Serialize)]
pub struct PreparedPinChange {
    /// The bank's id for it.
    pub change_id: String,
    /// The ChangePin request for the device (hex).
    pub change_pin: String,
    /// The bank counter in it.
    pub counter: i64,
}

/// The bank's verdict on a PIN change.
#[derive(Clone, Debug, Serialize)]
pub struct PinChangeDecision {
    /// The bank's id for the change.
    pub change_id: String,
    /// `changed`, `old_pin_incorrect`, `pin_blocked`, `declined` or `system_error`.
    pub result: &'static str,
    /// The VerifyPinChange request for the device (hex).
    pub verify_pin_change: String,
    /// Whether this answer repeats an earlier decision (a retry of the same answer).
    pub replayed: bool,
    /// PIN tries left before the binding locks (after a wrong current PIN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_tries_left: Option<i64>,
}

fn bad_request(what: &str, e: impl std::fmt::Display) -> BankError {
    BankError::invalid(format!("{what}: {e}"))
}

impl Bank {
    /// The latest bank-signed message of `kind` recorded for a device (initialise, enrol).
    async fn latest_recorded(
        &self,
        serial: &str,
        kind: &str,
    ) -> BankResult<Option<(u64, Vec<u8>)>> {
        let row = sqlx::query(&self.store.q(
            "SELECT sequence, message FROM device_commands WHERE serial = ? AND kind = ? \
             ORDER BY sequence DESC LIMIT 1",
        ))
        .bind(serial)
        .bind(kind)
        .fetch_optional(self.store.reader())
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let sequence: i64 = row.try_get("sequence")?;
                Ok(Some((sequence.max(0) as u64, row.try_get("message")?)))
            }
        }
    }

    /// The PIN lengths the binding was enrolled with: a new PIN follows the same policy.
    async fn binding_pin_policy(&self, serial: &str) -> BankResult<(u8, u8)> {
        let enrol = self.latest_recorded(serial, "enrol").await?;
        match enrol.map(|(_, bytes)| message::decode_request(&bytes)) {
            Some(Ok((_, Request::Enrol(enrol)))) => {
                Ok((enrol.pin_length_min, enrol.pin_length_max))
            }
            _ => Ok((4, 6)),
        }
    }

    /// Prepares a PIN change for the logged-in device: the ChangePin request, MACed under
    /// the session response key with the next bank counter.
    pub(crate) async fn prepare_pin_change(
        &self,
        session: &ActiveSession,
    ) -> BankResult<PreparedPinChange> {
        let (pin_length_min, pin_length_max) =
            self.binding_pin_policy(&session.device_serial).await?;
        let change_id = util::random_id("PC-")?;
        let session_hex = hex::encode(session.session_id.0);
        let mut tx = self.store.begin().await?;
        let counter: i64 = sqlx::query(&self.store.q(
            "UPDATE bindings SET payment_counter = payment_counter + 1 WHERE binding_id = ? \
             AND status = 'active' AND pin_locked = 0 AND EXISTS (SELECT 1 FROM sessions \
             WHERE session_id = ? AND stage = 'active' AND expires_at > ?) RETURNING payment_counter",
        ))
        .bind(session.binding_id.clone())
        .bind(session_hex.clone())
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            BankError::conflict(
                "pin_change_refused",
                "no PIN change for this session: it ended, or the PIN is blocked",
            )
        })?
        .try_get(0)?;
        let mut request = ChangePin {
            session_id: session.session_id,
            counter: counter.max(0) as u64,
            pin_length_min,
            pin_length_max,
            bank_mac: MacTag([0; 16]),
        };
        request
            .seal_bank_mac(&session.response_key)
            .map_err(seal_refused)?;
        let encoded = encode_request(Request::ChangePin(request))?;
        sqlx::query(&self.store.q(
            "INSERT INTO pin_changes (change_id, binding_id, session_id, bank_counter, request, status, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, 'prepared', ?, ?)",
        ))
        .bind(change_id.clone())
        .bind(session.binding_id.clone())
        .bind(session_hex)
        .bind(counter)
        .bind(super::encoded_bytes(&encoded)?)
        .bind(now_ms())
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PreparedPinChange {
            change_id,
            change_pin: encoded,
            counter,
        })
    }

    /// Decides the device's answer to a prepared PIN change, exactly once.
    pub(crate) async fn decide_pin_change(
        &self,
        session: &ActiveSession,
        change_id: &str,
        answer_hex: &str,
    ) -> BankResult<PinChangeDecision> {
        let answer_bytes = hex::decode(answer_hex.trim())
            .map_err(|_| BankError::invalid("pin_change_entered: not hexadecimal"))?;
        let answer_hash = util::sha256(&answer_bytes).to_vec();
        let row = sqlx::query(&self.store.q(
            "SELECT binding_id, session_id, status, request, answer_hash, response FROM pin_changes \
             WHERE change_id = ?",
        ))
        .bind(change_id)
        .fetch_optional(self.store.reader())
        .await?
        .filter(|row| {
            row.try_get::<String, _>("binding_id").ok().as_deref() == Some(&session.binding_id)
        })
        .ok_or_else(|| BankError::not_found("unknown_pin_change", "no such PIN change"))?;
        if row.try_get::<String, _>("session_id")? != hex::encode(session.session_id.0) {
            return Err(BankError::conflict(
                "session_mismatch",
                "the PIN change was prepared in another session",
            ));
        }
        let status: String = row.try_get("status")?;
        if status != "prepared" {
            // The same answer again gets the stored verdict; anything else is refused.
            let stored: Option<Vec<u8>> = row.try_get("answer_hash")?;
            let response: Option<Vec<u8>> = row.try_get("response")?;
            return match (stored, response) {
                (Some(stored), Some(response)) if crate::hsm::same_bytes(&stored, &answer_hash) => {
                    Ok(PinChangeDecision {
                        change_id: change_id.to_owned(),
                        result: stored_result_name(&status),
                        verify_pin_change: hex::encode(response),
                        replayed: true,
                        pin_tries_left: None,
                    })
                }
                _ => Err(BankError::conflict(
                    "pin_change_already_decided",
                    format!("the PIN change is already {status}"),
                )),
            };
        }
        let request = match message::decode_request(&row.try_get::<Vec<u8>, _>("request")?) {
            Ok((_, Request::ChangePin(request))) => request,
            _ => return Err(BankError::internal(&"stored ChangePin")),
        };
        let (_, answer) = message::decode_response(&answer_bytes)
            .map_err(|e| bad_request("pin_change_entered: not a device response", e))?;
        let entered = match ChangePin::answer(answer) {
            Answer::Done(entered) => entered,
            Answer::Refused(e) => {
                sqlx::query(&self.store.q(
                    "UPDATE pin_changes SET status = 'cancelled', decided_at = ? \
                     WHERE change_id = ? AND status = 'prepared'",
                ))
                .bind(now_ms())
                .bind(change_id)
                .execute(self.store.writer())
                .await?;
                return Err(device_refused(&e));
            }
            Answer::Unexpected(unexpected) => {
                return Err(unexpected_answer("pin_change_entered", unexpected));
            }
        };
        if !entered.mac_verifies(&session.mac_key, &request) {
            tracing::warn!(
                change_id,
                serial = session.device_serial,
                "PIN change MAC rejected"
            );
            return Err(BankError::rejected(
                "bad_mac",
                "the PIN change's MAC does not verify over the request the bank prepared",
            ));
        }
        let device_counter = i64::try_from(entered.device_counter)
            .map_err(|_| BankError::rejected("replayed_counter", "device counter out of range"))?;
        let binding = sqlx::query(
            &self
                .store
                .q("SELECT pin_account_number, pvv FROM bindings WHERE binding_id = ?"),
        )
        .bind(session.binding_id.clone())
        .fetch_one(self.store.reader())
        .await?;
        let pan: String = binding.try_get("pin_account_number")?;
        let pvv: Vec<u8> = binding
            .try_get::<Option<Vec<u8>>, _>("pvv")?
            .unwrap_or_default();
        let salt = session.binding_id.as_bytes();
        let current_ok =
            self.hsm
                .verify_pin(&session.pin_key, &entered.old_pin_block, &pan, salt, &pvv);
        // The new PIN's value is made only if the current one verified (no oracle on a new
        // PIN block without the PIN the bank knows).
        let new_pvv = if current_ok {
            self.hsm
                .pin_verification_value(&session.pin_key, &entered.new_pin_block, &pan, salt)
                .ok()
        } else {
            None
        };

        let mut tx = self.store.begin().await?;
        // The device counter advances (a replayed answer is refused) only while the session
        // is active; the PIN state is read in the same statement.
        let advanced = sqlx::query(&self.store.q(
            "UPDATE bindings SET device_counter = ? WHERE binding_id = ? AND device_counter < ? \
             AND EXISTS (SELECT 1 FROM sessions WHERE session_id = ? AND stage = 'active' \
             AND expires_at > ?) RETURNING pin_locked",
        ))
        .bind(device_counter)
        .bind(session.binding_id.clone())
        .bind(device_counter)
        .bind(hex::encode(session.session_id.0))
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            BankError::rejected(
                "replayed_counter",
                "the device counter is not greater than the last accepted, or the session ended",
            )
        })?;
        let pin_locked = advanced.try_get::<i64, _>(0)? != 0;
        let max_wrong_pins = self.config.max_wrong_pins;
        let mut pin_tries_left = None;
        let result = if pin_locked {
            PinChangeResult::PinBlocked
        } else if !current_ok {
            let wrong: i64 = sqlx::query(&self.store.q(
                "UPDATE bindings SET wrong_pin_count = wrong_pin_count + 1 WHERE binding_id = ? \
                 RETURNING wrong_pin_count",
            ))
            .bind(session.binding_id.clone())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            let tries = (max_wrong_pins - wrong).max(0);
            pin_tries_left = Some(tries);
            if wrong >= max_wrong_pins {
                sqlx::query(
                    &self
                        .store
                        .q("UPDATE bindings SET pin_locked = 1 WHERE binding_id = ?"),
                )
                .bind(session.binding_id.clone())
                .execute(&mut *tx)
                .await?;
                tracing::warn!(
                    serial = session.device_serial,
                    "binding locked after wrong PINs"
                );
                PinChangeResult::PinBlocked
            } else {
                PinChangeResult::OldPinIncorrect
            }
        } else if let Some(new_pvv) = &new_pvv {
            sqlx::query(
                &self
                    .store
                    .q("UPDATE bindings SET pvv = ?, wrong_pin_count = 0 WHERE binding_id = ?"),
            )
            .bind(new_pvv.0.to_vec())
            .bind(session.binding_id.clone())
            .execute(&mut *tx)
            .await?;
            PinChangeResult::Changed
        } else {
            // The current PIN verified but the new block did not decipher into a PIN.
            PinChangeResult::Declined
        };
        let tries_wire = u8::try_from(pin_tries_left.unwrap_or(0)).unwrap_or(u8::MAX);
        let mut verdict = VerifyPinChange {
            session_id: session.session_id,
            device_counter: entered.device_counter,
            result,
            pin_tries_left: tries_wire,
            bank_mac: MacTag([0; 16]),
        };
        verdict
            .seal_bank_mac(&session.response_key)
            .map_err(seal_refused)?;
        let encoded = encode_request(Request::VerifyPinChange(verdict))?;
        let decided = sqlx::query(&self.store.q(
            "UPDATE pin_changes SET status = ?, device_counter = ?, answer_hash = ?, response = ?, \
             decided_at = ? WHERE change_id = ? AND status = 'prepared'",
        ))
        .bind(result.as_str())
        .bind(device_counter)
        .bind(answer_hash)
        .bind(super::encoded_bytes(&encoded)?)
        .bind(now_ms())
        .bind(change_id)
        .execute(&mut *tx)
        .await?;
        if decided.rows_affected() != 1 {
            return Err(BankError::conflict(
                "pin_change_already_decided",
                "the PIN change was decided concurrently",
            ));
        }
        tx.commit().await?;
        if result == PinChangeResult::Changed {
            // Sessions cache the binding's PIN verification value (payments read it once per
            // session): every process drops its cached sessions of this device, so the next
            // payment checks the new PIN.
            self.forget_device_sessions(&session.device_serial);
        }
        tracing::info!(
            change_id,
            serial = session.device_serial,
            result = result.as_str(),
            "PIN change decided"
        );
        Ok(PinChangeDecision {
            change_id: change_id.to_owned(),
            result: result.as_str(),
            verify_pin_change: encoded,
            replayed: false,
            pin_tries_left,
        })
    }

    /// The device's wipe receipt: verified against its registered attestation key, then the
    /// binding ends and the device is `registered` again (kept `revoked` if it was).
    pub(crate) async fn device_wiped(
        &self,
        serial: &str,
        receipt_hex: &str,
    ) -> BankResult<serde_json::Value> {
        let bytes = hex::decode(receipt_hex.trim())
            .map_err(|_| BankError::invalid("device_wiped: not hexadecimal"))?;
        let (_, answer) = message::decode_response(&bytes)
            .map_err(|e| bad_request("device_wiped: not a device response", e))?;
        // A refusal is no receipt either: the wipe did not happen.
        let receipt =
            WipeDevice::expect(answer).map_err(|e| unexpected_answer("device_wiped", e))?;
        let refused = |why: &str| {
            BankError::rejected(
                "wipe_receipt_refused",
                format!("the wipe receipt is not accepted: {why}"),
            )
        };
        if receipt.device_serial != serial {
            return Err(refused("it names another device"));
        }
        let device = sqlx::query(
            &self
                .store
                .q("SELECT attestation_public_key, state FROM devices WHERE serial = ?"),
        )
        .bind(serial)
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| BankError::not_found("unknown_device", "no such device"))?;
        let key_bytes: Vec<u8> = device.try_get("attestation_public_key")?;
        let key =
            EcdsaVerifyingKey::from_sec1_bytes(&key_bytes).map_err(|e| BankError::internal(&e))?;
        let signed = receipt
            .signed_bytes()
            .map_err(|e| BankError::invalid(e.to_string()))?;
        if key
            .verify(DeviceWiped::SIGNATURE_DOMAIN, &signed, &receipt.signature)
            .is_err()
        {
            return Err(refused(
                "the signature does not verify under the device's key",
            ));
        }
        // A receipt from before the latest initialisation or enrolment is old news: it must
        // not end a binding made after it.
        let mut latest = 0;
        for kind in ["initialise", "enrol"] {
            if let Some((sequence, _)) = self.latest_recorded(serial, kind).await? {
                latest = latest.max(sequence);
            }
        }
        if receipt.bank_sequence < latest {
            return Err(BankError::conflict(
                "stale_wipe_receipt",
                format!(
                    "the receipt was made at bank sequence {}, before the device's latest \
                     initialisation or enrolment ({latest})",
                    receipt.bank_sequence
                ),
            ));
        }
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let ended = sqlx::query(&self.store.q(
            "UPDATE bindings SET status = 'ended', ended_at = ? WHERE device_serial = ? \
             AND status IN ('active', 'pending')",
        ))
        .bind(now)
        .bind(serial)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(&self.store.q(
            "UPDATE sessions SET stage = 'ended', expires_at = ? WHERE device_serial = ? AND stage = 'active'",
        ))
        .bind(now)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.store.q(
            "UPDATE devices SET state = 'registered', kbpk = NULL, pending_kbpk = NULL, \
             pending_kcv = NULL, updated_at = ? WHERE serial = ? AND state <> 'revoked'",
        ))
        .bind(now)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.forget_device_sessions(serial);
        let state: String =
            sqlx::query(&self.store.q("SELECT state FROM devices WHERE serial = ?"))
                .bind(serial)
                .fetch_one(self.store.reader())
                .await?
                .try_get("state")?;
        tracing::info!(serial, bindings_ended = ended, "device wiped by its owner");
        Ok(serde_json::json!({
            "serial": serial,
            "state": state,
            "binding_ended": ended > 0,
        }))
    }
}

/// The verdict a decided change was stored with (its `as_str` name); anything else reads as
/// a system error.
fn stored_result_name(status: &str) -> &'static str {
    status.parse::<PinChangeResult>().map_or(
        PinChangeResult::SystemError.as_str(),
        PinChangeResult::as_str,
    )
}
