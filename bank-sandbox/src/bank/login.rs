//! Login (CN102004977A steps 101-106): device validation, integrity report against the
//! allow-lists, session keys as TR-31 blocks with KCVs, challenge/response, session token.
//! Failed logins count per device; too many in a row throttle it.

use std::sync::Arc;

use axum::http::StatusCode;
use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;
use firmware_protocol::crypto::keys::{KeyBlockProtectionKey, MacKey, PinKey};
use firmware_protocol::crypto::tr31::KeyUsageCode;
use firmware_protocol::message::{
    self, Answer, BankChallenge, Command, GetInfo, GetIntegrityReport, LoadSessionKeys, Nonce,
    Request, SessionId, StatusCode as DeviceStatus,
};
use serde::Serialize;
use sqlx::Row;

use super::{
    ActiveSession, Bank, BindingPin, device_answer, device_refused, device_response,
    encode_request, unexpected_answer,
};
use crate::error::{BankError, BankResult};
use crate::hsm::{BlockUsage, generate_key};
use crate::util::{self, now_ms, sha256};

/// What a successful login returns.
#[derive(Clone, Debug, Serialize)]
pub struct LoginComplete {
    /// Bearer token for the session's API calls (64 hex digits); the bank keeps its hash.
    pub session_token: String,
    /// The protocol session id (hex).
    pub session_id: String,
    /// Customer.
    pub customer_id: String,
    /// Device serial.
    pub serial: String,
    /// Session end (Unix ms).
    pub expires_at: i64,
}

/// An integrity report whose signature verified.
struct VerifiedReport {
    firmware_hash: [u8; 32],
    app_hash: Vec<u8>,
}

struct LoginRow {
    device_serial: String,
    binding_id: String,
    customer_id: String,
    stage: String,
    integrity_nonce: Vec<u8>,
    pin_key: Option<String>,
    mac_key: Option<String>,
    response_key: Option<String>,
    load_keys: Option<Vec<u8>>,
    bank_challenge: Option<Vec<u8>>,
    challenge_expires_at: Option<i64>,
    expires_at: i64,
    created_at: i64,
    /// The binding's bank payment counter when the row was read: the first prepare of the
    /// session expects the one after it (a stale value costs that prepare one more try).
    payment_counter: Option<i64>,
    /// The binding's PIN facts (set once it is active; a PIN change makes every process
    /// drop its sessions of the device, which read them again).
    pin_account_number: Option<String>,
    pvv: Option<Vec<u8>>,
}

fn hex_field(text: &str, field: &str) -> BankResult<Vec<u8>> {
    hex::decode(text.trim()).map_err(|_| BankError::invalid(format!("{field}: not hexadecimal")))
}

impl Bank {
    async fn login_failed(&self, serial: &str, session_id: Option<&str>) -> BankResult<()> {
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let row = sqlx::query(&self.store.q(
            "UPDATE devices SET failed_logins = failed_logins + 1 WHERE serial = ? RETURNING failed_logins",
        ))
        .bind(serial)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let failures: i64 = row.try_get(0)?;
            if failures >= self.config.throttle_after_failures {
                sqlx::query(&self.store.q(
                    "UPDATE devices SET failed_logins = 0, throttled_until = ? WHERE serial = ?",
                ))
                .bind(now + self.config.throttle_ms)
                .bind(serial)
                .execute(&mut *tx)
                .await?;
                tracing::warn!(serial, "device throttled after repeated failed logins");
            }
        }
        if let Some(id) = session_id {
            sqlx::query(
                &self
                    .store
                    .q("UPDATE sessions SET stage = 'failed' WHERE session_id = ?"),
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts a refusal against the device, which locks its customer out after
    /// `throttle_after_failures` in a row: only failures the device itself was proven to make
    /// (its signed report with hashes off the allow-list, its refusal of the keys, a wrong
    /// challenge MAC after its report verified). A malformed request (400) or a forged one
    /// (`device_not_trusted`, an integrity report that does not verify) can come from anyone
    /// who has read the device's public Info; those the API counts per source address
    /// ([`crate::throttle`]).
    async fn counted<T>(
        &self,
        serial: &str,
        session_id: Option<&str>,
        result: BankResult<T>,
    ) -> BankResult<T> {
        if let Err(error) = &result
            && error.status != StatusCode::INTERNAL_SERVER_ERROR
            && error.status != StatusCode::BAD_REQUEST
        {
            self.login_failed(serial, session_id).await?;
        }
        result
    }

    /// Step 1: the device's Info. Checks the device is registered with this attestation
    /// key, bound, not revoked, locked or throttled; returns a GetIntegrityReport with a
    /// fresh nonce.
    pub async fn login_begin(&self, info_hex: &str) -> BankResult<serde_json::Value> {
        let info = device_answer::<GetInfo>(info_hex, "info")?;
        let device = self.device(&info.serial).await?;
        let now = now_ms();
        if device.throttled_until > now {
            return Err(BankError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login_throttled",
                "too many failed logins for this device; try again later",
            )
            .with("retry_after_ms", device.throttled_until - now));
        }
        let serial = device.serial.clone();
        // Not counted against the device: anyone can send altered Info bytes.
        (|| {
            if device.attestation_public_key != info.attestation_public_key.as_bytes() {
                return Err(BankError::rejected(
                    "device_not_trusted",
                    "the device's attestation key is not the registered one",
                ));
            }
            if device.certificate != info.certificate {
                return Err(BankError::rejected(
                    "device_not_trusted",
                    "the device's certificate is not the registered one",
                ));
            }
            Ok(())
        })()?;
        match device.state.as_str() {
            "bound" => {}
            "revoked" => {
                let mut error = BankError::new(
                    StatusCode::FORBIDDEN,
                    "device_revoked",
                    "the device is revoked",
                );
                if let Some(wipe) = self.latest_command(&serial, "wipe").await? {
                    error = error.with("bank_command", wipe);
                }
                return Err(error);
            }
            other => {
                return Err(BankError::new(
                    StatusCode::FORBIDDEN,
                    "device_not_bound",
                    format!("the device is {other}, not bound to a customer"),
                ));
            }
        }
        if device.locked_by_bank {
            let mut error = BankError::new(
                StatusCode::FORBIDDEN,
                "device_locked",
                "the bank locked this device",
            );
            if let Some(lock) = self.latest_command(&serial, "lock").await? {
                error = error.with("bank_command", lock);
            }
            return Err(error);
        }
        let binding = sqlx::query(&self.store.q(
            "SELECT binding_id, customer_id, pin_locked FROM bindings WHERE device_serial = ? AND status = 'active'",
        ))
        .bind(serial.clone())
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| BankError::new(StatusCode::FORBIDDEN, "device_not_bound", "no active binding"))?;
        if binding.try_get::<i64, _>("pin_locked")? != 0 {
            return Err(BankError::new(
                StatusCode::LOCKED,
                "pin_locked",
                "too many wrong PINs: the binding is locked; a teller must re-enrol the customer",
            ));
        }
        let session_id = util::random_bytes::<16>()?;
        let session_hex = hex::encode(session_id);
        let nonce = Nonce(util::random_bytes::<16>()?);
        sqlx::query(&self.store.q(
            "INSERT INTO sessions (session_id, device_serial, binding_id, customer_id, stage, integrity_nonce, \
             created_at, expires_at) VALUES (?, ?, ?, ?, 'integrity', ?, ?, ?)",
        ))
        .bind(session_hex.clone())
        .bind(serial.clone())
        .bind(binding.try_get::<String, _>("binding_id")?)
        .bind(binding.try_get::<String, _>("customer_id")?)
        .bind(nonce.0.to_vec())
        .bind(now)
        .bind(now + self.config.login_ttl_ms)
        .execute(self.store.writer())
        .await?;
        let mut begun = serde_json::json!({
            "login_id": session_hex,
            "get_integrity_report": encode_request(Request::GetIntegrityReport(GetIntegrityReport { nonce }))?,
        });
        // Staff made the device forget its paired computers: the app relays that first.
        if let Some(forget) = self.pending_forget_hosts(&serial).await? {
            begun["bank_command"] = serde_json::Value::String(forget);
        }
        Ok(begun)
    }

    async fn login_row(&self, login_id: &str, stage: &str) -> BankResult<LoginRow> {
        let row = sqlx::query(&self.store.q(
            "SELECT s.device_serial, s.binding_id, s.customer_id, s.stage, s.integrity_nonce, s.pin_key, s.mac_key, \
             s.response_key, s.load_keys, s.bank_challenge, s.challenge_expires_at, s.expires_at, s.created_at, \
             b.payment_counter, b.pin_account_number, b.pvv FROM sessions s LEFT JOIN bindings b ON b.binding_id = s.binding_id \
             WHERE s.session_id = ?",
        ))
        .bind(login_id)
        .fetch_optional(self.store.writer())
        .await?
        .ok_or_else(|| BankError::not_found("unknown_login", "no such login"))?;
        let login = LoginRow {
            device_serial: row.try_get("device_serial")?,
            binding_id: row.try_get("binding_id")?,
            customer_id: row.try_get("customer_id")?,
            stage: row.try_get("stage")?,
            integrity_nonce: row.try_get("integrity_nonce")?,
            pin_key: row.try_get("pin_key")?,
            mac_key: row.try_get("mac_key")?,
            response_key: row.try_get("response_key")?,
            load_keys: row.try_get("load_keys")?,
            bank_challenge: row.try_get("bank_challenge")?,
            challenge_expires_at: row.try_get("challenge_expires_at")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            payment_counter: row.try_get("payment_counter")?,
            pin_account_number: row.try_get("pin_account_number")?,
            pvv: row.try_get("pvv")?,
        };
        if login.stage != stage {
            return Err(BankError::conflict(
                "wrong_login_step",
                format!("this login is at step {}, not {stage}", login.stage),
            ));
        }
        if login.expires_at < now_ms() {
            return Err(BankError::conflict(
                "login_expired",
                "the login took too long; start again",
            ));
        }
        Ok(login)
    }

    /// Step 2: the signed integrity report and the app's build hash. Checks the signature
    /// (attestation key, over the bank's nonce) and both allow-lists, saying which failed;
    /// then generates the session keys and returns LoadSessionKeys.
    pub async fn login_integrity(
        &self,
        login_id: &str,
        report_hex: &str,
        app_hash_hex: &str,
    ) -> BankResult<serde_json::Value> {
        let login = self.login_row(login_id, "integrity").await?;
        let serial = login.device_serial.clone();
        // A report that does not verify is nobody's proven failure; hashes off the
        // allow-lists in a report the device signed are the device's.
        let report = self.verify_report(&login, report_hex, app_hash_hex).await?;
        let checked = self.check_allow_lists(&report).await;
        self.counted(&serial, Some(login_id), checked).await?;

        let device = self.device(&serial).await?;
        let kbpk: KeyBlockProtectionKey = self.open_key(device.kbpk)?;
        let pin_key: PinKey = generate_key()?;
        let mac_key: MacKey = generate_key()?;
        let response_key: MacKey = generate_key()?;
        let session_bytes: [u8; 16] = hex::decode(login_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| BankError::internal(&"session id"))?;
        let request = LoadSessionKeys {
            session_id: SessionId(session_bytes),
            pin_key: self
                .hsm
                .wrap_for_device(&kbpk, &pin_key, BlockUsage::DEVICE_PIN)?,
            mac_key: self
                .hsm
                .wrap_for_device(&kbpk, &mac_key, BlockUsage::DEVICE_MAC)?,
            response_key: self.hsm.wrap_for_device(
                &kbpk,
                &response_key,
                BlockUsage::DEVICE_RESPONSE,
            )?,
        };
        let encoded = encode_request(Request::LoadSessionKeys(request))?;
        sqlx::query(&self.store.q(
            "UPDATE sessions SET stage = 'keys', pin_key = ?, mac_key = ?, response_key = ?, load_keys = ? \
             WHERE session_id = ? AND stage = 'integrity'",
        ))
        .bind(self.hsm.seal(&pin_key, KeyUsageCode::P0)?.0)
        .bind(self.hsm.seal(&mac_key, KeyUsageCode::M6)?.0)
        .bind(self.hsm.seal(&response_key, KeyUsageCode::M6)?.0)
        .bind(super::encoded_bytes(&encoded)?)
        .bind(login_id)
        .execute(self.store.writer())
        .await?;
        Ok(serde_json::json!({ "load_session_keys": encoded }))
    }

    /// Decodes the integrity report and checks its signature (the device's attestation key,
    /// over the bank's nonce) and the app hash's form.
    async fn verify_report(
        &self,
        login: &LoginRow,
        report_hex: &str,
        app_hash_hex: &str,
    ) -> BankResult<VerifiedReport> {
        let report = device_answer::<GetIntegrityReport>(report_hex, "integrity_report")?;
        let app_hash = hex_field(app_hash_hex, "app_hash")?;
        if app_hash.len() != 32 {
            return Err(BankError::invalid("app_hash: 32 bytes (SHA-256)"));
        }
        if report.device_serial != login.device_serial {
            return Err(BankError::rejected(
                "integrity_report_invalid",
                "the integrity report names another device",
            ));
        }
        let nonce: [u8; 16] = login
            .integrity_nonce
            .as_slice()
            .try_into()
            .map_err(|_| BankError::internal(&"stored nonce"))?;
        let signed = report
            .signed_bytes(&GetIntegrityReport {
                nonce: Nonce(nonce),
            })
            .map_err(|e| BankError::invalid(e.to_string()))?;
        let device = self.device(&login.device_serial).await?;
        let attestation = EcdsaVerifyingKey::from_sec1_bytes(&device.attestation_public_key)
            .map_err(|e| BankError::internal(&e))?;
        attestation
            .verify(
                message::IntegrityReport::SIGNATURE_DOMAIN,
                &signed,
                &report.signature,
            )
            .map_err(|_| {
                BankError::rejected(
                    "integrity_report_invalid",
                    "the integrity report's signature does not verify with the device's attestation key",
                )
            })?;
        Ok(VerifiedReport {
            firmware_hash: *report.firmware_hash.as_bytes(),
            app_hash,
        })
    }

    /// Both hashes of a verified report against the allow-lists, saying which failed.
    async fn check_allow_lists(&self, report: &VerifiedReport) -> BankResult<()> {
        let app_hash = &report.app_hash;
        let firmware_ok = self.hash_allowed("firmware", &report.firmware_hash).await?;
        let app_ok = self.hash_allowed("app", app_hash).await?;
        let mut failed = Vec::new();
        if !firmware_ok {
            failed.push("firmware_hash");
        }
        if !app_ok {
            failed.push("app_hash");
        }
        let code = match (firmware_ok, app_ok) {
            (true, true) => return Ok(()),
            (false, true) => "firmware_hash_not_allowed",
            (true, false) => "app_hash_not_allowed",
            (false, false) => "firmware_and_app_hash_not_allowed",
        };
        Err(BankError::new(
            StatusCode::FORBIDDEN,
            code,
            format!(
                "integrity check failed: {} not on the allow-list",
                failed.join(" and ")
            ),
        )
        .with("failed", failed)
        .with("firmware_hash", hex::encode(report.firmware_hash))
        .with("app_hash", hex::encode(app_hash)))
    }

    /// Step 3: the device's answer to LoadSessionKeys. KeysLoaded → BankChallenge. A
    /// refusal (KCV mismatch, bad block: an intrusion on the device side) ends the login.
    /// An inactivity lock gets a signed Unlock to relay first, then the same keys again.
    pub async fn login_keys(
        &self,
        login_id: &str,
        answer_hex: &str,
    ) -> BankResult<serde_json::Value> {
        let login = self.login_row(login_id, "keys").await?;
        let serial = login.device_serial.clone();
        let answer = device_response(answer_hex, "keys_loaded")?;
        let loaded = match LoadSessionKeys::answer(answer) {
            Answer::Done(loaded) => loaded,
            Answer::Refused(e) if e.status == DeviceStatus::Locked => {
                // The device locked itself (T2 without bank contact). It has just proven
                // itself with a fresh signed integrity report, so the bank lifts the lock.
                let mut tx = self.store.begin().await?;
                let unlock = self
                    .signed_command(
                        &mut tx,
                        &serial,
                        super::CommandKind::Unlock,
                        "Bank contact restored",
                        "login",
                    )
                    .await?;
                tx.commit().await?;
                return Err(BankError::conflict(
                    "device_locked_inactivity",
                    "the device locked itself; relay bank_command, then load_session_keys again",
                )
                .with("bank_command", unlock)
                .with(
                    "load_session_keys",
                    hex::encode(login.load_keys.unwrap_or_default()),
                ));
            }
            Answer::Refused(e)
                if matches!(
                    e.status,
                    DeviceStatus::IdentityMismatch | DeviceStatus::LockedByBank
                ) =>
            {
                return Err(self
                    .staff_only_lock(&serial, e.status, login.load_keys.unwrap_or_default())
                    .await?);
            }
            Answer::Refused(e) => {
                let refused = device_refused(&e);
                if matches!(
                    e.status,
                    DeviceStatus::KcvMismatch
                        | DeviceStatus::KeyBlockRejected
                        | DeviceStatus::WrongKeyUsage
                        | DeviceStatus::KeysNotDistinct
                ) {
                    sqlx::query(&self.store.q(
                        "INSERT INTO intrusion_reports (serial, detail, created_at) VALUES (?, ?, ?)",
                    ))
                    .bind(serial.clone())
                    .bind(format!("session keys refused: {:?}", e.status))
                    .bind(now_ms())
                    .execute(self.store.writer())
                    .await?;
                }
                return self.counted(&serial, Some(login_id), Err(refused)).await;
            }
            Answer::Unexpected(unexpected) => {
                return Err(unexpected_answer("keys_loaded", unexpected));
            }
        };
        if hex::encode(loaded.session_id.0) != login_id {
            return self
                .counted(
                    &serial,
                    Some(login_id),
                    Err(BankError::rejected(
                        "session_mismatch",
                        "the device loaded another session",
                    )),
                )
                .await;
        }
        let challenge = BankChallenge {
            session_id: loaded.session_id,
            bank_nonce: Nonce(util::random_bytes::<16>()?),
        };
        let encoded = encode_request(Request::BankChallenge(challenge))?;
        sqlx::query(&self.store.q(
            "UPDATE sessions SET stage = 'challenge', bank_challenge = ?, challenge_expires_at = ? \
             WHERE session_id = ? AND stage = 'keys'",
        ))
        .bind(super::encoded_bytes(&encoded)?)
        .bind(now_ms() + self.config.challenge_ttl_ms)
        .bind(login_id)
        .execute(self.store.writer())
        .await?;
        Ok(serde_json::json!({ "bank_challenge": encoded }))
    }

    /// The device refused the session keys under a lock only staff lift (PROTOCOL.md
    /// §6.11): a bank lock, or its activation record no longer matching (a secure store on
    /// another board). A staff Unlock issued after the device last reported the lock is handed
    /// over to relay (`device_unlock_pending`, then the same keys again); otherwise the lock
    /// is reported: an intrusion report, and a refusal naming the lock.
    async fn staff_only_lock(
        &self,
        serial: &str,
        status: DeviceStatus,
        load_keys: Vec<u8>,
    ) -> BankResult<BankError> {
        let what = match status {
            DeviceStatus::IdentityMismatch => "identity mismatch: payments locked on the device",
            _ => "locked by the bank on the device",
        };
        let last_report: Option<i64> = sqlx::query(&self.store.q(
            "SELECT MAX(created_at) AS at FROM intrusion_reports WHERE serial = ? AND detail = ?",
        ))
        .bind(serial)
        .bind(what)
        .fetch_one(self.store.reader())
        .await?
        .try_get("at")?;
        let last_lock: Option<i64> = sqlx::query(&self.store.q(
            "SELECT MAX(created_at) AS at FROM device_commands WHERE serial = ? AND kind = 'lock'",
        ))
        .bind(serial)
        .fetch_one(self.store.reader())
        .await?
        .try_get("at")?;
        // The Unlock must be newer than what staff knew of the lock: the device's report of
        // it, or (a bank lock) the lock command itself.
        let lock_known_at = last_report.max(last_lock);
        let unlock = sqlx::query(&self.store.q(
            "SELECT message, created_at FROM device_commands WHERE serial = ? AND kind = 'unlock' \
             ORDER BY sequence DESC LIMIT 1",
        ))
        .bind(serial)
        .fetch_optional(self.store.reader())
        .await?;
        let locked_now = self.device(serial).await?.locked_by_bank;
        // The report is written either way: a handed-over Unlock is used once, so a device
        // that locks itself again later is not handed the same (stale) Unlock.
        sqlx::query(
            &self
                .store
                .q("INSERT INTO intrusion_reports (serial, detail, created_at) VALUES (?, ?, ?)"),
        )
        .bind(serial)
        .bind(what)
        .bind(now_ms())
        .execute(self.store.writer())
        .await?;
        if let Some(row) = unlock
            && !locked_now
            && lock_known_at
                .is_some_and(|at| row.try_get::<i64, _>("created_at").is_ok_and(|c| c > at))
        {
            let message: Vec<u8> = row.try_get("message")?;
            return Ok(BankError::conflict(
                "device_unlock_pending",
                "staff unlocked the device; relay bank_command, then load_session_keys again",
            )
            .with("bank_command", hex::encode(message))
            .with("load_session_keys", hex::encode(load_keys)));
        }
        Ok(match status {
            DeviceStatus::IdentityMismatch => BankError::new(
                StatusCode::FORBIDDEN,
                "device_identity_mismatch",
                "the PIN pad's identifiers differ from those it was activated with (its secure \
                 store may have been moved to another board): its payments are locked. The \
                 customer must have it checked at the branch, where staff unlock it",
            ),
            _ => BankError::new(
                StatusCode::FORBIDDEN,
                "device_locked",
                "the PIN pad is locked by the bank; staff must unlock it",
            ),
        })
    }

    /// Step 4: the ChallengeResponse. Checks the deadline and the MAC (session MAC key over
    /// both nonces); on success the session is active and a token is issued.
    pub async fn login_challenge(
        &self,
        login_id: &str,
        answer_hex: &str,
    ) -> BankResult<LoginComplete> {
        let login = self.login_row(login_id, "challenge").await?;
        let serial = login.device_serial.clone();
        let result = self.check_challenge(&login, answer_hex).await;
        self.counted(&serial, Some(login_id), result).await?;

        let token = util::random_bytes::<32>()?;
        let token_hash = sha256(&token);
        let now = now_ms();
        let expires_at = now + self.config.session_ttl_ms;
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(&self.store.q(
            "UPDATE sessions SET stage = 'active', token_hash = ?, expires_at = ? WHERE session_id = ? AND stage = 'challenge'",
        ))
        .bind(token_hash.to_vec())
        .bind(expires_at)
        .bind(login_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(BankError::conflict(
                "wrong_login_step",
                "the login was completed already",
            ));
        }
        sqlx::query(
            &self
                .store
                .q("UPDATE devices SET failed_logins = 0 WHERE serial = ?"),
        )
        .bind(serial.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.forget_hosts_delivered(&serial, login.created_at)
            .await?;
        self.open_session(login_id, &login, expires_at, token_hash)
            .await?;
        tracing::info!(serial, customer = login.customer_id, "login complete");
        Ok(LoginComplete {
            session_token: hex::encode(token),
            session_id: login_id.to_owned(),
            customer_id: login.customer_id,
            serial,
            expires_at,
        })
    }

    async fn check_challenge(&self, login: &LoginRow, answer_hex: &str) -> BankResult<()> {
        let response = device_answer::<BankChallenge>(answer_hex, "challenge_response")?;
        if login.challenge_expires_at.unwrap_or(0) < now_ms() {
            return Err(BankError::rejected(
                "challenge_expired",
                "the device answered the challenge too late; log in again",
            ));
        }
        let challenge = match login.bank_challenge.as_deref().map(message::decode_request) {
            Some(Ok((_, Request::BankChallenge(c)))) => c,
            _ => return Err(BankError::internal(&"stored challenge")),
        };
        let mac_key: MacKey = self.open_key(login.mac_key.clone())?;
        if !response.mac_verifies(&mac_key, &challenge) {
            return Err(BankError::rejected(
                "bad_mac",
                "the challenge response MAC does not verify under the session MAC key",
            ));
        }
        Ok(())
    }

    /// The session with its keys opened and the customer's payer accounts read, cached
    /// under its token in this process.
    async fn open_session(
        &self,
        login_id: &str,
        login: &LoginRow,
        expires_at: i64,
        token_hash: [u8; 32],
    ) -> BankResult<Arc<ActiveSession>> {
        let session = Arc::new(self.activate(login_id, login, expires_at)?);
        self.preload_payer_accounts(&session).await?;
        self.cache_session(token_hash, session.clone());
        Ok(session)
    }

    fn activate(
        &self,
        login_id: &str,
        login: &LoginRow,
        expires_at: i64,
    ) -> BankResult<ActiveSession> {
        let session_id: [u8; 16] = hex::decode(login_id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| BankError::internal(&"session id"))?;
        Ok(ActiveSession {
            session_id: SessionId(session_id),
            device_serial: login.device_serial.clone(),
            binding_id: login.binding_id.clone(),
            customer_id: login.customer_id.clone(),
            pin_key: self.open_key(login.pin_key.clone())?,
            mac_key: self.open_key(login.mac_key.clone())?,
            response_key: self.open_key(login.response_key.clone())?,
            expires_at,
            binding_pin: match (&login.pin_account_number, &login.pvv) {
                // Read with the session: its first approval does not wait for it.
                (Some(pin_account_number), Some(pvv)) => std::sync::OnceLock::from(BindingPin {
                    pin_account_number: pin_account_number.clone(),
                    pvv: pvv.clone(),
                }),
                _ => std::sync::OnceLock::new(),
            },
            last_prepared: std::sync::Mutex::new(None),
            payer_accounts: std::sync::Mutex::new(Vec::new()),
            last_counter: std::sync::atomic::AtomicI64::new(login.payment_counter.unwrap_or(-1)),
        })
    }

    /// Ends a customer session (`POST /v1/logout`): the stored session is marked `ended`
    /// (its token is refused from now on, in every bank process) and the opened keys leave
    /// this process's cache.
    /// A signed EndSession is returned for the app to relay, so the device drops its session
    /// keys too (PROTOCOL.md §3.4 BankCommand `5`).
    pub(crate) async fn logout(&self, token_hex: &str) -> BankResult<String> {
        let session = self.session(token_hex).await?;
        let login_id = hex::encode(session.session_id.0);
        let mut tx = self.store.begin().await?;
        sqlx::query(&self.store.q(
            "UPDATE sessions SET stage = 'ended', expires_at = ? WHERE session_id = ? AND stage = 'active'",
        ))
        .bind(now_ms())
        .bind(login_id)
        .execute(&mut *tx)
        .await?;
        let end = self
            .signed_command(
                &mut tx,
                &session.device_serial,
                super::CommandKind::EndSession,
                "",
                "logout",
            )
            .await?;
        tx.commit().await?;
        self.forget_device_sessions(&session.device_serial);
        tracing::info!(serial = session.device_serial, "session ended by logout");
        Ok(end)
    }

    /// The session behind a bearer token (memory first, then the store).
    pub(crate) async fn session(&self, token_hex: &str) -> BankResult<Arc<ActiveSession>> {
        let token = hex::decode(token_hex.trim())
            .map_err(|_| BankError::unauthorized("session token: not hexadecimal"))?;
        let token_hash = sha256(&token);
        let now = now_ms();
        if let Some(session) = self.cached_session(&token_hash) {
            if session.expires_at > now {
                return Ok(session);
            }
            return Err(BankError::unauthorized("the session expired; log in again"));
        }
        let row = sqlx::query(
            &self
                .store
                .q("SELECT session_id FROM sessions WHERE token_hash = ? AND stage = 'active'"),
        )
        .bind(token_hash.to_vec())
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| BankError::unauthorized("unknown session token"))?;
        let login_id: String = row.try_get("session_id")?;
        let login = self
            .login_row(&login_id, "active")
            .await
            .map_err(|_| BankError::unauthorized("the session expired; log in again"))?;
        self.open_session(&login_id, &login, login.expires_at, token_hash)
            .await
    }
}
