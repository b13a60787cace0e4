//! The persisted part of the device: what the secure store keeps across restarts.
//!
//! JSON, binary fields in lowercase hex. The file holds the device's secrets (attestation key,
//! key-block protection key, host pairing keys) in clear: it stands for the secure element of
//! a real PIN pad. Keep it private (it is written with mode 0600).

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Version of the layout below.
pub const STATE_FORMAT: u32 = 1;

/// The binding made by Enrol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub struct StoredBinding {
    /// Bank customer id.
    pub customer_id: String,
    /// PAN field of every PIN block.
    pub pin_account_number: String,
    /// Fewest PIN digits.
    pub pin_length_min: u8,
    /// Most PIN digits.
    pub pin_length_max: u8,
}

/// A paired host's display name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub struct StoredHostName {
    /// Host id, hex.
    pub host_id: String,
    /// Name from PairBegin.
    pub name: String,
}

/// Everything the device keeps across restarts. Secret fields are zeroized on drop and left
/// out of `Debug`.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct StoredState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Device serial.
    pub serial: String,
    /// Firmware version text.
    pub firmware_version: String,
    /// Reference firmware hash recorded at manufacture, hex.
    pub firmware_hash: String,
    /// Attestation secret scalar, hex (secret).
    pub attestation_key: String,
    /// CA certificate, hex.
    pub certificate: String,
    /// Bank management public key (Initialise, Enrol, BankCommand), hex, if installed.
    pub bank_management_key: Option<String>,
    /// Bank operator public key (OperatorReset), hex, if installed.
    pub bank_operator_key: Option<String>,
    /// T2: lock after this many seconds without a successful bank contact.
    pub lock_after_seconds: u64,
    /// How long the user has to act on a prompt, seconds.
    pub user_timeout_seconds: u64,
    /// Last accepted bank sequence (survives wipe, tamper and reset).
    pub bank_sequence: u64,
    /// The sticky tamper flag.
    pub tampered: bool,
    /// 0 Manufactured, 1 Initialised, 2 Bound, 3 Revoked.
    pub lifecycle: u8,
    /// 0 Unlocked, 1 LockedInactivity, 2 LockedByBank, 3 LockedPowerOff, 4 LockedIdentity.
    pub lock: u8,
    /// Key-block protection key, AES, hex (secret).
    pub kbpk: Option<String>,
    /// The binding.
    pub binding: Option<StoredBinding>,
    /// Host verifier state (`PBHV` layout of `crypto::host_auth`), hex (secret).
    pub hosts: String,
    /// Host names.
    pub host_names: Vec<StoredHostName>,
    /// Last accepted ApprovePayment.counter.
    pub last_payment_counter: u64,
    /// Last PaymentApproved.device_counter issued.
    pub device_counter: u64,
    /// Device clock of the last successful bank contact, ms.
    pub last_bank_contact_ms: u64,
    /// T1, seconds (0: no power-off lock). Absent in older stores: no T1 lock.
    #[serde(default)]
    pub power_off_lock_seconds: u64,
    /// T, seconds.
    #[serde(default = "reference_t")]
    pub identity_wipe_seconds: u64,
    /// The activation record (§6.11), hex, if bound.
    #[serde(default)]
    pub activation_record: Option<String>,
    /// Device clock when the current lock was taken, ms.
    #[serde(default)]
    pub locked_since_ms: u64,
    /// Device clock when the device last recorded it was running, ms.
    #[serde(default)]
    pub last_alive_ms: Option<u64>,
    /// The display language setting (`en`, `zh-CN`); absent in older stores: `en`.
    #[serde(default)]
    pub display_language: String,
}

fn reference_t() -> u64 {
    firmware_protocol::lifecycle::REFERENCE_T_SECONDS
}

impl std::fmt::Debug for StoredState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredState")
            .field("format", &self.format)
            .field("serial", &self.serial)
            .field("lifecycle", &self.lifecycle)
            .field("tampered", &self.tampered)
            .field("lock", &self.lock)
            .field("bank_sequence", &self.bank_sequence)
            .finish_non_exhaustive()
    }
}
