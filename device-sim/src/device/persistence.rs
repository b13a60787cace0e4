//! The device's persistence: restoring from the secure store at power-on and writing the
//! persistent state ([`StoredState`]) after every change that must survive a restart.

use super::stored::{STATE_FORMAT, StoredBinding, StoredHostName, StoredState};
use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey};
use firmware_protocol::crypto::host_auth::HostVerifier;
use firmware_protocol::crypto::keys::{KeyAlgorithm, KeyBlockProtectionKey};
use firmware_protocol::message::{HostId, Indicator, Lifecycle, LockState, StatusCode};
use zeroize::Zeroizing;

use super::{
    Binding, DEFAULT_LINK_MTU, Device, DeviceError, Refusal, Volatile, firmware_image_hash, refuse,
};
use crate::hardware::{EventKind, Hardware};

impl Device {
    /// Restores a device from its secure store (a restart). Volatile state (session keys,
    /// a pairing or payment in progress) is gone; the indicator reads danger if tampered,
    /// else off. The firmware is measured again (genuine image).
    pub fn restore(state: &[u8]) -> Result<Self, DeviceError> {
        let bad = |what: &str| DeviceError::State(what.into());
        let stored: StoredState =
            serde_json::from_slice(state).map_err(|e| bad(&format!("not a device state: {e}")))?;
        if stored.format != STATE_FORMAT {
            return Err(bad(&format!(
                "state format {} not supported",
                stored.format
            )));
        }
        let hex32 = |text: &str, what: &str| -> Result<[u8; 32], DeviceError> {
            let bytes = Zeroizing::new(hex::decode(text).map_err(|_| bad(what))?);
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad(what))
        };
        let public_key = |text: &Option<String>, what: &str| -> Result<_, DeviceError> {
            text.as_ref()
                .map(|t| {
                    let bytes = hex::decode(t).map_err(|_| bad(what))?;
                    EcdsaVerifyingKey::from_sec1_bytes(&bytes).map_err(|_| bad(what))
                })
                .transpose()
        };
        let attestation_secret = Zeroizing::new(hex32(&stored.attestation_key, "attestation_key")?);
        let attestation = EcdsaSigningKey::from_bytes(attestation_secret.as_slice())
            .map_err(|_| bad("attestation_key"))?;
        let kbpk = match &stored.kbpk {
            Some(text) => {
                let bytes = Zeroizing::new(hex::decode(text).map_err(|_| bad("kbpk"))?);
                Some(
                    KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &bytes)
                        .map_err(|_| bad("kbpk"))?,
                )
            }
            None => None,
        };
        let hosts_bytes = Zeroizing::new(hex::decode(&stored.hosts).map_err(|_| bad("hosts"))?);
        let hosts = HostVerifier::from_bytes(&hosts_bytes).map_err(|_| bad("hosts"))?;
        let mut host_names = Vec::new();
        for entry in &stored.host_names {
            let id = hex::decode(&entry.host_id).map_err(|_| bad("host_names"))?;
            let id: [u8; 8] = id.as_slice().try_into().map_err(|_| bad("host_names"))?;
            host_names.push((HostId::from_array(id), entry.name.clone()));
        }
        let lifecycle = Lifecycle::from_wire(stored.lifecycle).ok_or_else(|| bad("lifecycle"))?;
        let lock = LockState::from_wire(stored.lock).ok_or_else(|| bad("lock"))?;
        let reference = hex32(&stored.firmware_hash, "firmware_hash")?;
        let certificate = hex::decode(&stored.certificate).map_err(|_| bad("certificate"))?;
        Ok(Self {
            serial: stored.serial.clone(),
            firmware_version: stored.firmware_version.clone(),
            firmware_reference_hash: reference,
            measured_firmware_hash: firmware_image_hash(&stored.firmware_version),
            attestation,
            certificate,
            bank_management_key: public_key(&stored.bank_management_key, "bank_management_key")?,
            bank_operator_key: public_key(&stored.bank_operator_key, "bank_operator_key")?,
            lock_after_ms: stored.lock_after_seconds.saturating_mul(1000),
            power_off_lock_ms: stored.power_off_lock_seconds.saturating_mul(1000),
            identity_wipe_ms: stored.identity_wipe_seconds.saturating_mul(1000),
            user_timeout_ms: stored.user_timeout_seconds.saturating_mul(1000),
            // A store from before the setting, or with a language this build lacks: English.
            language: stored.display_language.parse().unwrap_or_default(),
            link_mtu: DEFAULT_LINK_MTU,
            bank_sequence: stored.bank_sequence,
            tampered: stored.tampered,
            lifecycle,
            lock,
            kbpk,
            binding: stored.binding.as_ref().map(|b| Binding {
                customer_id: b.customer_id.clone(),
                pin_account_number: b.pin_account_number.clone(),
                pin_length_min: b.pin_length_min,
                pin_length_max: b.pin_length_max,
            }),
            hosts,
            host_names,
            last_payment_counter: stored.last_payment_counter,
            device_counter: stored.device_counter,
            last_bank_contact_ms: stored.last_bank_contact_ms,
            activation_record: match &stored.activation_record {
                Some(text) => Some(firmware_protocol::lifecycle::ActivationRecord(hex32(
                    text,
                    "activation_record",
                )?)),
                None => None,
            },
            locked_since_ms: stored.locked_since_ms,
            // A store from before the alive record: the power-off time is unknown, so T1
            // cannot be applied this once (saturating: "off for 0 ms").
            last_alive_ms: stored.last_alive_ms.unwrap_or(u64::MAX),
            indicator: if stored.tampered {
                Indicator::Danger
            } else {
                Indicator::Off
            },
            volatile: Volatile::default(),
        })
    }

    /// The secure-store bytes of the persistent state (JSON; holds secrets).
    pub fn stored_state(&self) -> Zeroizing<Vec<u8>> {
        let stored = StoredState {
            format: STATE_FORMAT,
            serial: self.serial.clone(),
            firmware_version: self.firmware_version.clone(),
            firmware_hash: hex::encode(self.firmware_reference_hash),
            attestation_key: hex::encode(*self.attestation.reveal_bytes()),
            certificate: hex::encode(&self.certificate),
            bank_management_key: self
                .bank_management_key
                .map(|k| hex::encode(k.to_sec1_bytes())),
            bank_operator_key: self
                .bank_operator_key
                .map(|k| hex::encode(k.to_sec1_bytes())),
            lock_after_seconds: self.lock_after_ms / 1000,
            power_off_lock_seconds: self.power_off_lock_ms / 1000,
            identity_wipe_seconds: self.identity_wipe_ms / 1000,
            user_timeout_seconds: self.user_timeout_ms / 1000,
            display_language: self.language.tag().into(),
            bank_sequence: self.bank_sequence,
            tampered: self.tampered,
            lifecycle: self.lifecycle.to_wire(),
            lock: self.lock.to_wire(),
            kbpk: self
                .kbpk
                .as_ref()
                .map(|k| hex::encode(k.material().reveal_bytes())),
            binding: self.binding.as_ref().map(|b| StoredBinding {
                customer_id: b.customer_id.clone(),
                pin_account_number: b.pin_account_number.clone(),
                pin_length_min: b.pin_length_min,
                pin_length_max: b.pin_length_max,
            }),
            hosts: hex::encode(&*self.hosts.to_bytes()),
            host_names: self
                .host_names
                .iter()
                .map(|(id, name)| StoredHostName {
                    host_id: hex::encode(id.as_bytes()),
                    name: name.clone(),
                })
                .collect(),
            last_payment_counter: self.last_payment_counter,
            device_counter: self.device_counter,
            last_bank_contact_ms: self.last_bank_contact_ms,
            activation_record: self.activation_record.map(|r| hex::encode(r.0)),
            locked_since_ms: self.locked_since_ms,
            last_alive_ms: Some(self.last_alive_ms),
        };
        Zeroizing::new(serde_json::to_vec_pretty(&stored).unwrap_or_default())
    }

    /// Writes the persistent state to the secure store.
    pub fn save<H: Hardware>(&self, hw: &mut H) -> Result<(), DeviceError> {
        hw.persist(&self.stored_state())?;
        Ok(())
    }

    pub(super) fn persist<H: Hardware>(&mut self, hw: &mut H) -> bool {
        match hw.persist(&self.stored_state()) {
            Ok(()) => true,
            Err(error) => {
                hw.record(EventKind::State {
                    change: format!("secure store write failed: {error}"),
                });
                false
            }
        }
    }

    pub(super) fn persist_or_refuse<H: Hardware>(&mut self, hw: &mut H) -> Result<(), Refusal> {
        if self.persist(hw) {
            Ok(())
        } else {
            Err(refuse(
                StatusCode::InternalError,
                "secure store write failed",
            ))
        }
    }
}
