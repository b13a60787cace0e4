//! Device registry, bank initialisation (KCV confirmation), enrolment and binding, signed
//! bank commands (lock, unlock, wipe), revocation and operator reset.

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey};
use firmware_protocol::crypto::keys::{KeyBlockProtectionKey, PinKey};
use firmware_protocol::crypto::pairing::{derive_initialisation_kek, initialisation_context};
use firmware_protocol::crypto::tr31::KeyUsageCode;
use firmware_protocol::message::{
    BankCommand, BankCommandKind, EcPublicKey, EcdsaSignature, Enrol, GetInfo, Info, Initialise,
    OperatorReset, Request, limits,
};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::{Bank, BankEvent, device_answer, encode_request, now_seconds};
use crate::certificate::DeviceCertificate;
use crate::error::{BankError, BankResult};
use crate::hsm::{BlockUsage, generate_key, same_bytes};
use crate::util::{self, now_ms};

/// A device as the registry shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceView {
    /// Serial.
    pub serial: String,
    /// `registered`, `initialising`, `initialised`, `bound` or `revoked`.
    pub state: String,
    /// Locked by a bank command.
    pub locked_by_bank: bool,
    /// Last bank sequence used in a signed command.
    pub last_sequence: i64,
    /// Reported firmware version.
    pub firmware_version: String,
    /// Reported firmware hash (hex).
    pub firmware_hash: String,
    /// Bound customer, if any.
    pub customer_id: Option<String>,
    /// Its latest signed commands, newest first, with what the relaying app reported.
    pub commands: Vec<super::CommandRecord>,
}

/// A signed bank command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Lock payment functions.
    Lock,
    /// Lift a lock.
    Unlock,
    /// Wipe the device (it becomes Revoked).
    Wipe,
    /// Forget every paired computer (a lost or stolen PC); handed to the device at every
    /// login until one completes.
    ForgetHosts,
    /// Drop the session keys (logout); issued by `Bank::logout`, not by staff.
    EndSession,
}

impl CommandKind {
    fn wire(self) -> BankCommandKind {
        match self {
            CommandKind::Lock => BankCommandKind::Lock,
            CommandKind::Unlock => BankCommandKind::Unlock,
            CommandKind::Wipe => BankCommandKind::Wipe,
            CommandKind::ForgetHosts => BankCommandKind::ForgetHosts,
            CommandKind::EndSession => BankCommandKind::EndSession,
        }
    }

    /// The wire value's name (`forget_hosts`), as the API and the event stream spell it.
    fn name(self) -> &'static str {
        self.wire().as_str()
    }
}

pub(crate) struct DeviceRow {
    pub serial: String,
    pub attestation_public_key: Vec<u8>,
    pub certificate: Vec<u8>,
    pub state: String,
    pub locked_by_bank: bool,
    pub kbpk: Option<String>,
    pub pending_kcv: Option<Vec<u8>>,
    pub throttled_until: i64,
}

const DEVICE_COLUMNS: &str = "serial, attestation_public_key, certificate, state, locked_by_bank, \
     kbpk, pending_kcv, throttled_until";

fn device_from_row(row: &sqlx::any::AnyRow) -> BankResult<DeviceRow> {
    Ok(DeviceRow {
        serial: row.try_get("serial")?,
        attestation_public_key: row.try_get("attestation_public_key")?,
        certificate: row.try_get("certificate")?,
        state: row.try_get("state")?,
        locked_by_bank: row.try_get::<i64, _>("locked_by_bank")? != 0,
        kbpk: row.try_get("kbpk")?,
        pending_kcv: row.try_get("pending_kcv")?,
        throttled_until: row.try_get("throttled_until")?,
    })
}

fn validate_serial(serial: &str) -> BankResult<()> {
    limits::SERIAL
        .check("serial", serial.len())
        .map_err(|e| BankError::invalid(e.to_string()))
}

impl Bank {
    pub(crate) async fn device(&self, serial: &str) -> BankResult<DeviceRow> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE serial = ?");
        let row = sqlx::query(&self.store.q(&sql))
            .bind(serial)
            .fetch_optional(self.store.writer())
            .await?
            .ok_or_else(|| {
                BankError::not_found(
                    "unknown_device",
                    format!("no device {serial} is registered"),
                )
            })?;
        device_from_row(&row)
    }

    pub(crate) async fn trusted_cas(&self) -> BankResult<Vec<EcdsaVerifyingKey>> {
        let rows = sqlx::query("SELECT public_key FROM trusted_cas")
            .fetch_all(self.store.reader())
            .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let bytes: Vec<u8> = row.try_get("public_key")?;
            if let Ok(key) = EcdsaVerifyingKey::from_sec1_bytes(&bytes) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Adds a CA whose device certificates the bank trusts.
    pub async fn trust_ca(&self, public_key: &[u8], label: &str) -> BankResult<String> {
        let key = EcdsaVerifyingKey::from_sec1_bytes(public_key)
            .map_err(|e| BankError::invalid(format!("CA public key: {e}")))?;
        let key_id = hex::encode(crate::certificate::key_id(&key));
        let existing = sqlx::query(
            &self
                .store
                .q("SELECT key_id FROM trusted_cas WHERE key_id = ?"),
        )
        .bind(key_id.clone())
        .fetch_optional(self.store.writer())
        .await?;
        if existing.is_none() {
            sqlx::query(&self.store.q(
                "INSERT INTO trusted_cas (key_id, public_key, label, created_at) VALUES (?, ?, ?, ?)",
            ))
            .bind(key_id.clone())
            .bind(key.to_sec1_bytes().to_vec())
            .bind(label)
            .bind(now_ms())
            .execute(self.store.writer())
            .await?;
        }
        Ok(key_id)
    }

    /// Allows a firmware or app build hash at login.
    pub async fn allow_hash(&self, kind: &str, hash: &[u8], label: &str) -> BankResult<()> {
        if !matches!(kind, "firmware" | "app") {
            return Err(BankError::invalid("kind must be \"firmware\" or \"app\""));
        }
        if hash.len() != 32 {
            return Err(BankError::invalid("a hash is 32 bytes (SHA-256)"));
        }
        let existing = sqlx::query(
            &self
                .store
                .q("SELECT kind FROM allowed_hashes WHERE kind = ? AND hash = ?"),
        )
        .bind(kind)
        .bind(hash.to_vec())
        .fetch_optional(self.store.writer())
        .await?;
        if existing.is_none() {
            sqlx::query(&self.store.q(
                "INSERT INTO allowed_hashes (kind, hash, label, created_at) VALUES (?, ?, ?, ?)",
            ))
            .bind(kind)
            .bind(hash.to_vec())
            .bind(label)
            .bind(now_ms())
            .execute(self.store.writer())
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn hash_allowed(&self, kind: &str, hash: &[u8]) -> BankResult<bool> {
        Ok(sqlx::query(
            &self
                .store
                .q("SELECT kind FROM allowed_hashes WHERE kind = ? AND hash = ?"),
        )
        .bind(kind)
        .bind(hash.to_vec())
        .fetch_optional(self.store.reader())
        .await?
        .is_some())
    }

    /// Checks the device's certificate against the trusted CAs and what it presented.
    async fn check_certificate(&self, info: &Info) -> BankResult<DeviceCertificate> {
        let refuse = |e: crate::certificate::CertificateError| {
            BankError::rejected("device_not_trusted", format!("device certificate: {e}"))
        };
        let certificate = DeviceCertificate::decode(&info.certificate).map_err(refuse)?;
        certificate
            .verify(&self.trusted_cas().await?, now_seconds())
            .map_err(refuse)?;
        certificate
            .matches(&info.serial, info.attestation_public_key.as_bytes())
            .map_err(refuse)?;
        Ok(certificate)
    }

    async fn allocate_sequence(
        &self,
        tx: &mut Transaction<'static, Any>,
        serial: &str,
    ) -> BankResult<u64> {
        let q = self.store.q(
            "UPDATE devices SET last_sequence = last_sequence + 1, updated_at = ? WHERE serial = ? \
             RETURNING last_sequence",
        );
        let row = sqlx::query(&q)
            .bind(now_ms())
            .bind(serial)
            .fetch_one(&mut **tx)
            .await?;
        let sequence: i64 = row.try_get(0)?;
        u64::try_from(sequence).map_err(|_| BankError::internal(&"negative sequence"))
    }

    async fn record_command(
        &self,
        tx: &mut Transaction<'static, Any>,
        serial: &str,
        sequence: u64,
        kind: &str,
        message_hex: &str,
        issued_by: &str,
    ) -> BankResult<()> {
        sqlx::query(&self.store.q(
            "INSERT INTO device_commands (serial, sequence, kind, message, issued_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(serial)
        .bind(sequence as i64)
        .bind(kind)
        .bind(super::encoded_bytes(message_hex)?)
        .bind(issued_by)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Teller, step 1 of bank initialisation: checks the device's certificate, registers it,
    /// and returns the signed Initialise request carrying a fresh KBPK under the ECDH KEK.
    pub async fn begin_initialisation(
        &self,
        info_hex: &str,
        staff: &str,
    ) -> BankResult<serde_json::Value> {
        let info = device_answer::<GetInfo>(info_hex, "info")?;
        let certificate = self.check_certificate(&info).await?;
        let attestation = certificate.attestation_public_key;
        let serial = info.serial.clone();
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let existing = sqlx::query(&self.store.q(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE serial = ?"
        )))
        .bind(serial.clone())
        .fetch_optional(&mut *tx)
        .await?;
        match existing {
            None => {
                sqlx::query(&self.store.q(
                    "INSERT INTO devices (serial, attestation_public_key, certificate, firmware_version, \
                     firmware_hash, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'registered', ?, ?)",
                ))
                .bind(serial.clone())
                .bind(info.attestation_public_key.as_bytes().to_vec())
                .bind(info.certificate.clone())
                .bind(info.firmware_version.clone())
                .bind(info.firmware_hash.as_bytes().to_vec())
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            Some(row) => {
                let device = device_from_row(&row)?;
                if device.attestation_public_key != info.attestation_public_key.as_bytes() {
                    return Err(BankError::conflict(
                        "device_identity_changed",
                        "a device with this serial is registered with another attestation key",
                    ));
                }
                match device.state.as_str() {
                    "registered" | "initialising" => {}
                    "revoked" => {
                        return Err(BankError::conflict(
                            "device_revoked",
                            "the device is revoked; an operator reset comes first",
                        ));
                    }
                    other => {
                        return Err(BankError::conflict(
                            "wrong_state",
                            format!("the device is {other}, not awaiting initialisation"),
                        ));
                    }
                }
            }
        }
        let sequence = self.allocate_sequence(&mut tx, &serial).await?;
        let kbpk: KeyBlockProtectionKey = generate_key()?;
        let bank_ephemeral = util::with_rng(EcdsaSigningKey::generate)?;
        let kek = derive_initialisation_kek(
            &bank_ephemeral,
            &attestation,
            &initialisation_context(&serial, sequence),
        );
        let wrapped = self.hsm.wrap_for_device(&kek, &kbpk, BlockUsage::KBPK)?;
        let kcv = wrapped.kcv.as_bytes().to_vec();
        let mut request = Initialise {
            device_serial: serial.clone(),
            sequence,
            bank_public_key: EcPublicKey::from(&bank_ephemeral.verifying_key()),
            kbpk: wrapped,
            signature: EcdsaSignature::from_array([0; 64]),
        };
        request.signature = self.hsm.sign_management(
            Initialise::SIGNATURE_DOMAIN,
            &request
                .signed_bytes()
                .map_err(|e| BankError::internal(&e))?,
        );
        let encoded = encode_request(Request::Initialise(request))?;
        let sealed = self.hsm.seal(&kbpk, KeyUsageCode::K1)?;
        sqlx::query(&self.store.q(
            "UPDATE devices SET state = 'initialising', pending_kbpk = ?, pending_kcv = ?, \
             firmware_version = ?, firmware_hash = ?, updated_at = ? WHERE serial = ?",
        ))
        .bind(sealed.0)
        .bind(kcv.clone())
        .bind(info.firmware_version.clone())
        .bind(info.firmware_hash.as_bytes().to_vec())
        .bind(now)
        .bind(serial.clone())
        .execute(&mut *tx)
        .await?;
        self.record_command(&mut tx, &serial, sequence, "initialise", &encoded, staff)
            .await?;
        tx.commit().await?;
        tracing::info!(serial, sequence, staff, "initialisation started");
        Ok(serde_json::json!({
            "serial": serial,
            "sequence": sequence,
            "initialise": encoded,
            "kbpk_kcv": hex::encode(kcv),
        }))
    }

    /// Teller, step 2: compares the KCV the device computed with the bank's. On a match the
    /// KBPK becomes the device's; on a mismatch nothing is installed (`kcv_mismatch`).
    pub async fn complete_initialisation(
        &self,
        serial: &str,
        initialised_hex: &str,
    ) -> BankResult<serde_json::Value> {
        let device = self.device(serial).await?;
        if device.state != "initialising" {
            return Err(BankError::conflict(
                "wrong_state",
                format!("the device is {}, not initialising", device.state),
            ));
        }
        let kcv = device_answer::<Initialise>(initialised_hex, "initialised")?.kcv;
        let expected = device.pending_kcv.unwrap_or_default();
        if !same_bytes(kcv.as_bytes(), &expected) {
            tracing::warn!(serial, "initialisation KCV mismatch");
            sqlx::query(
                &self.store.q(
                    "INSERT INTO intrusion_reports (serial, detail, created_at) VALUES (?, ?, ?)",
                ),
            )
            .bind(serial)
            .bind("initialisation KCV mismatch")
            .bind(now_ms())
            .execute(self.store.writer())
            .await?;
            return Err(BankError::rejected(
                "kcv_mismatch",
                "the device's key check value differs from the bank's: the key was not installed",
            )
            .with("expected_kcv", hex::encode(&expected))
            .with("device_kcv", hex::encode(kcv.as_bytes())));
        }
        sqlx::query(&self.store.q(
            "UPDATE devices SET state = 'initialised', kbpk = pending_kbpk, pending_kbpk = NULL, \
             pending_kcv = NULL, updated_at = ? WHERE serial = ? AND state = 'initialising'",
        ))
        .bind(now_ms())
        .bind(serial)
        .execute(self.store.writer())
        .await?;
        tracing::info!(serial, "device initialised");
        Ok(serde_json::json!({ "serial": serial, "state": "initialised" }))
    }

    /// Creates a customer.
    pub async fn create_customer(
        &self,
        customer_id: &str,
        name: &str,
        pin_account_number: &str,
    ) -> BankResult<()> {
        limits::CUSTOMER_ID
            .check("customer_id", customer_id.len())
            .map_err(|e| BankError::invalid(e.to_string()))?;
        if firmware_protocol::crypto::pinblock::Pan::new(pin_account_number).is_err()
            || limits::PIN_ACCOUNT
                .check("pin_account_number", pin_account_number.len())
                .is_err()
        {
            return Err(BankError::invalid(
                "pin_account_number must be 12 to 19 digits",
            ));
        }
        let result = sqlx::query(&self.store.q(
            "INSERT INTO customers (customer_id, name, pin_account_number, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(customer_id)
        .bind(name)
        .bind(pin_account_number)
        .bind(now_ms())
        .execute(self.store.writer())
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(BankError::conflict(
                "customer_exists",
                format!("customer {customer_id} exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens an account (customer `None`: an account of another bank, a payee only).
    pub async fn create_account(
        &self,
        account_number: &str,
        customer_id: Option<&str>,
        name: &str,
        currency: &str,
        exponent: u8,
        balance_minor: i64,
    ) -> BankResult<()> {
        limits::ACCOUNT
            .check("account_number", account_number.len())
            .map_err(|e| BankError::invalid(e.to_string()))?;
        firmware_protocol::message::CurrencyCode::new(currency)
            .map_err(|e| BankError::invalid(e.to_string()))?;
        if exponent > limits::MAX_CURRENCY_EXPONENT || balance_minor < 0 {
            return Err(BankError::invalid(
                "exponent 0..=4 and a non-negative balance",
            ));
        }
        let result = sqlx::query(&self.store.q(
            "INSERT INTO accounts (account_number, customer_id, name, currency, exponent, balance_minor, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(account_number)
        .bind(customer_id.map(str::to_owned))
        .bind(name)
        .bind(currency)
        .bind(i64::from(exponent))
        .bind(balance_minor)
        .bind(now_ms())
        .execute(self.store.writer())
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(BankError::conflict(
                "account_exists",
                format!("account {account_number} exists"),
            )),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(BankError::not_found("unknown_customer", "no such customer"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Teller: binds an initialised device to a customer and returns the signed Enrol
    /// request (a fresh enrolment PIN key under the device KBPK). A customer with an active
    /// binding must have the old device revoked first.
    pub async fn begin_enrolment(
        &self,
        serial: &str,
        customer_id: &str,
        pin_length_min: u8,
        pin_length_max: u8,
        staff: &str,
    ) -> BankResult<serde_json::Value> {
        validate_serial(serial)?;
        if pin_length_min < limits::MIN_PIN_DIGITS
            || pin_length_max > limits::MAX_PIN_DIGITS
            || pin_length_min > pin_length_max
        {
            return Err(BankError::invalid(
                "PIN length policy must be 4 <= min <= max <= 12",
            ));
        }
        let device = self.device(serial).await?;
        match device.state.as_str() {
            "initialised" => {}
            "revoked" => {
                return Err(BankError::conflict(
                    "device_revoked",
                    "the device is revoked",
                ));
            }
            other => {
                return Err(BankError::conflict(
                    "wrong_state",
                    format!("the device is {other}; enrolment needs an initialised device"),
                ));
            }
        }
        let customer = sqlx::query(
            &self
                .store
                .q("SELECT pin_account_number FROM customers WHERE customer_id = ?"),
        )
        .bind(customer_id)
        .fetch_optional(self.store.writer())
        .await?
        .ok_or_else(|| {
            BankError::not_found("unknown_customer", format!("no customer {customer_id}"))
        })?;
        let pan: String = customer.try_get("pin_account_number")?;
        let active =
            sqlx::query(&self.store.q(
                "SELECT device_serial FROM bindings WHERE customer_id = ? AND status = 'active'",
            ))
            .bind(customer_id)
            .fetch_optional(self.store.writer())
            .await?;
        if let Some(row) = active {
            let other: String = row.try_get("device_serial")?;
            return Err(BankError::conflict(
                "customer_already_bound",
                format!("customer {customer_id} is bound to device {other}; revoke it first"),
            ));
        }
        let kbpk: KeyBlockProtectionKey = self.open_key(device.kbpk)?;
        let pin_key: PinKey = generate_key()?;
        let wrapped = self
            .hsm
            .wrap_for_device(&kbpk, &pin_key, BlockUsage::DEVICE_PIN)?;
        let binding_id = util::random_id("B-")?;
        let mut tx = self.store.begin().await?;
        // A pending enrolment that never completed is replaced.
        sqlx::query(&self.store.q(
            "UPDATE bindings SET status = 'abandoned', ended_at = ? WHERE device_serial = ? AND status = 'pending'",
        ))
        .bind(now_ms())
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        let sequence = self.allocate_sequence(&mut tx, serial).await?;
        let mut request = Enrol {
            device_serial: serial.to_owned(),
            sequence,
            customer_id: customer_id.to_owned(),
            pin_account_number: pan.clone(),
            pin_length_min,
            pin_length_max,
            pin_key: wrapped,
            signature: EcdsaSignature::from_array([0; 64]),
        };
        request.signature = self.hsm.sign_management(
            Enrol::SIGNATURE_DOMAIN,
            &request
                .signed_bytes()
                .map_err(|e| BankError::internal(&e))?,
        );
        let encoded = encode_request(Request::Enrol(request))?;
        sqlx::query(&self.store.q(
            "INSERT INTO bindings (binding_id, device_serial, customer_id, pin_account_number, status, \
             enrol_pin_key, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        ))
        .bind(binding_id.clone())
        .bind(serial)
        .bind(customer_id)
        .bind(pan)
        .bind(self.hsm.seal(&pin_key, KeyUsageCode::P0)?.0)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        self.record_command(&mut tx, serial, sequence, "enrol", &encoded, staff)
            .await?;
        tx.commit().await?;
        tracing::info!(serial, customer_id, staff, "enrolment started");
        Ok(serde_json::json!({
            "serial": serial,
            "binding_id": binding_id,
            "sequence": sequence,
            "enrol": encoded,
        }))
    }

    /// Teller: turns the device's Enrolled PIN block into a PIN verification value (in the
    /// HSM) and activates the binding.
    pub async fn complete_enrolment(
        &self,
        serial: &str,
        enrolled_hex: &str,
    ) -> BankResult<serde_json::Value> {
        let pin_block = device_answer::<Enrol>(enrolled_hex, "enrolled")?.pin_block;
        let row = sqlx::query(&self.store.q(
            "SELECT binding_id, customer_id, pin_account_number, enrol_pin_key FROM bindings \
             WHERE device_serial = ? AND status = 'pending'",
        ))
        .bind(serial)
        .fetch_optional(self.store.writer())
        .await?
        .ok_or_else(|| {
            BankError::conflict("wrong_state", "no enrolment is pending for this device")
        })?;
        let binding_id: String = row.try_get("binding_id")?;
        let customer_id: String = row.try_get("customer_id")?;
        let pan: String = row.try_get("pin_account_number")?;
        let pin_key: PinKey = self.open_key(row.try_get("enrol_pin_key")?)?;
        let pvv = self
            .hsm
            .pin_verification_value(&pin_key, &pin_block, &pan, binding_id.as_bytes())
            .map_err(|_| {
                BankError::rejected(
                    "invalid_pin_block",
                    "the enrolment PIN block did not decipher into a PIN",
                )
            })?;
        let now = now_ms();
        let loss_code = super::lifecycle::new_loss_report_code()?;
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(&self.store.q(
            "UPDATE bindings SET status = 'active', pvv = ?, enrol_pin_key = NULL, loss_code_hash = ? \
             WHERE binding_id = ? AND status = 'pending'",
        ))
        .bind(pvv.0.to_vec())
        .bind(super::lifecycle::loss_code_hash(&loss_code).to_vec())
        .bind(binding_id.clone())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(BankError::conflict(
                "wrong_state",
                "the enrolment was completed or replaced",
            ));
        }
        sqlx::query(
            &self
                .store
                .q("UPDATE devices SET state = 'bound', updated_at = ? WHERE serial = ?"),
        )
        .bind(now)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(serial, customer_id, "device bound");
        Ok(serde_json::json!({
            "serial": serial,
            "binding_id": binding_id,
            "customer_id": customer_id,
            "state": "bound",
            // Shown once, for the customer to keep apart from the PIN pad: it reports the
            // device lost with no device and no session.
            "loss_report_code": loss_code.as_str(),
        }))
    }

    pub(crate) async fn signed_command(
        &self,
        tx: &mut Transaction<'static, Any>,
        serial: &str,
        kind: CommandKind,
        reason: &str,
        staff: &str,
    ) -> BankResult<String> {
        limits::COMMAND_REASON
            .check("reason", reason.len())
            .map_err(|e| BankError::invalid(e.to_string()))?;
        let sequence = self.allocate_sequence(tx, serial).await?;
        let mut command = BankCommand {
            device_serial: serial.to_owned(),
            sequence,
            command: kind.wire(),
            reason: reason.to_owned(),
            signature: EcdsaSignature::from_array([0; 64]),
        };
        command.signature = self.hsm.sign_management(
            BankCommand::SIGNATURE_DOMAIN,
            &command
                .signed_bytes()
                .map_err(|e| BankError::invalid(e.to_string()))?,
        );
        let encoded = encode_request(Request::BankCommand(command))?;
        self.record_command(tx, serial, sequence, kind.name(), &encoded, staff)
            .await?;
        Ok(encoded)
    }

    /// Issues a signed lock, unlock or wipe for a device (wipe = revoke). The command is
    /// also pushed to the bound customer's app.
    pub async fn issue_command(
        &self,
        serial: &str,
        kind: CommandKind,
        reason: &str,
        staff: &str,
    ) -> BankResult<serde_json::Value> {
        let device = self.device(serial).await?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let customer =
            sqlx::query(&self.store.q(
                "SELECT customer_id FROM bindings WHERE device_serial = ? AND status = 'active'",
            ))
            .bind(serial)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<String, _>("customer_id"))
            .transpose()?;
        let encoded = self
            .signed_command(&mut tx, serial, kind, reason, staff)
            .await?;
        match kind {
            CommandKind::Lock => {
                sqlx::query(
                    &self
                        .store
                        .q("UPDATE devices SET locked_by_bank = 1 WHERE serial = ?"),
                )
                .bind(serial)
                .execute(&mut *tx)
                .await?;
            }
            CommandKind::Unlock => {
                sqlx::query(&self.store.q(
                    "UPDATE devices SET locked_by_bank = 0, failed_logins = 0, throttled_until = 0 WHERE serial = ?",
                ))
                .bind(serial)
                .execute(&mut *tx)
                .await?;
            }
            // A logout's business: nothing changes in the registry.
            CommandKind::EndSession => {}
            CommandKind::ForgetHosts => {
                sqlx::query(
                    &self
                        .store
                        .q("UPDATE devices SET forget_hosts_pending = ? WHERE serial = ?"),
                )
                .bind(now)
                .bind(serial)
                .execute(&mut *tx)
                .await?;
            }
            CommandKind::Wipe => {
                sqlx::query(&self.store.q(
                    "UPDATE devices SET state = 'revoked', kbpk = NULL, pending_kbpk = NULL, updated_at = ? WHERE serial = ?",
                ))
                .bind(now)
                .bind(serial)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&self.store.q(
                    "UPDATE bindings SET status = 'ended', ended_at = ? WHERE device_serial = ? AND status IN ('active', 'pending')",
                ))
                .bind(now)
                .bind(serial)
                .execute(&mut *tx)
                .await?;
            }
        }
        if matches!(
            kind,
            CommandKind::Lock | CommandKind::Wipe | CommandKind::ForgetHosts
        ) {
            sqlx::query(
                &self
                    .store
                    .q("UPDATE sessions SET expires_at = 0 WHERE device_serial = ?"),
            )
            .bind(serial)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if matches!(
            kind,
            CommandKind::Lock | CommandKind::Wipe | CommandKind::ForgetHosts
        ) {
            self.forget_device_sessions(serial);
        }
        if let Some(customer) = customer {
            self.publish(
                &customer,
                BankEvent {
                    event: "bank_command",
                    data: serde_json::json!({
                        "serial": serial,
                        "command": kind,
                        "bank_command": encoded,
                    }),
                },
            );
        }
        tracing::info!(
            serial = device.serial,
            command = kind.name(),
            staff,
            "bank command issued"
        );
        Ok(serde_json::json!({
            "serial": serial,
            "command": kind,
            "bank_command": encoded,
        }))
    }

    /// Intrusion reports (newest first, at most 500), of one device or of all.
    pub async fn intrusion_reports(&self, serial: Option<&str>) -> BankResult<serde_json::Value> {
        let rows = match serial {
            Some(serial) => {
                sqlx::query(&self.store.q(
                    "SELECT serial, detail, created_at FROM intrusion_reports WHERE serial = ? \
                     ORDER BY created_at DESC LIMIT 500",
                ))
                .bind(serial)
                .fetch_all(self.store.reader())
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT serial, detail, created_at FROM intrusion_reports \
                     ORDER BY created_at DESC LIMIT 500",
                )
                .fetch_all(self.store.reader())
                .await?
            }
        };
        let reports = rows
            .iter()
            .map(|row| {
                Ok(serde_json::json!({
                    "serial": row.try_get::<String, _>("serial")?,
                    "detail": row.try_get::<String, _>("detail")?,
                    "created_at": row.try_get::<i64, _>("created_at")?,
                }))
            })
            .collect::<BankResult<Vec<_>>>()?;
        Ok(serde_json::json!({ "reports": reports }))
    }

    /// The latest signed command of `kind` for a device, to hand to the device again.
    pub(crate) async fn latest_command(
        &self,
        serial: &str,
        kind: &str,
    ) -> BankResult<Option<String>> {
        let row = sqlx::query(&self.store.q(
            "SELECT message FROM device_commands WHERE serial = ? AND kind = ? ORDER BY sequence DESC LIMIT 1",
        ))
        .bind(serial)
        .bind(kind)
        .fetch_optional(self.store.reader())
        .await?;
        Ok(row
            .map(|r| r.try_get::<Vec<u8>, _>("message"))
            .transpose()?
            .map(hex::encode))
    }

    /// Operator: an operator-signed reset token for a (tampered) device. The registry
    /// returns it to `registered`: it must be initialised and enrolled again.
    pub async fn operator_reset(
        &self,
        serial: &str,
        operator: &str,
    ) -> BankResult<serde_json::Value> {
        self.device(serial).await?;
        limits::OPERATOR_ID
            .check("operator_id", operator.len())
            .map_err(|e| BankError::invalid(e.to_string()))?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let sequence = self.allocate_sequence(&mut tx, serial).await?;
        let mut reset = OperatorReset {
            device_serial: serial.to_owned(),
            sequence,
            operator_id: operator.to_owned(),
            signature: EcdsaSignature::from_array([0; 64]),
        };
        reset.signature = self.hsm.sign_operator(
            &reset
                .signed_bytes()
                .map_err(|e| BankError::invalid(e.to_string()))?,
        );
        let encoded = encode_request(Request::OperatorReset(reset))?;
        self.record_command(
            &mut tx,
            serial,
            sequence,
            "operator_reset",
            &encoded,
            operator,
        )
        .await?;
        sqlx::query(&self.store.q(
            "UPDATE devices SET state = 'registered', kbpk = NULL, pending_kbpk = NULL, pending_kcv = NULL, \
             locked_by_bank = 0, failed_logins = 0, throttled_until = 0, updated_at = ? WHERE serial = ?",
        ))
        .bind(now)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.store.q(
            "UPDATE bindings SET status = 'ended', ended_at = ? WHERE device_serial = ? AND status IN ('active', 'pending')",
        ))
        .bind(now)
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            &self
                .store
                .q("UPDATE sessions SET expires_at = 0 WHERE device_serial = ?"),
        )
        .bind(serial)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.forget_device_sessions(serial);
        tracing::info!(serial, operator, "operator reset issued");
        Ok(serde_json::json!({
            "serial": serial,
            "sequence": sequence,
            "operator_reset": encoded,
            "state": "registered",
        }))
    }

    /// The registry's view of a device.
    pub async fn device_view(&self, serial: &str) -> BankResult<DeviceView> {
        let row = sqlx::query(&self.store.q(
            "SELECT serial, state, locked_by_bank, last_sequence, firmware_version, firmware_hash FROM devices WHERE serial = ?",
        ))
        .bind(serial)
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| BankError::not_found("unknown_device", format!("no device {serial}")))?;
        let customer =
            sqlx::query(&self.store.q(
                "SELECT customer_id FROM bindings WHERE device_serial = ? AND status = 'active'",
            ))
            .bind(serial)
            .fetch_optional(self.store.reader())
            .await?
            .map(|r| r.try_get::<String, _>("customer_id"))
            .transpose()?;
        Ok(DeviceView {
            serial: row.try_get("serial")?,
            state: row.try_get("state")?,
            locked_by_bank: row.try_get::<i64, _>("locked_by_bank")? != 0,
            last_sequence: row.try_get("last_sequence")?,
            firmware_version: row.try_get("firmware_version")?,
            firmware_hash: hex::encode(row.try_get::<Vec<u8>, _>("firmware_hash")?),
            customer_id: customer,
            commands: self.command_records(serial).await?,
        })
    }
}
