//! The public state of the device ([`Snapshot`]): what the control API and tests see,
//! never a key or a digit.

use firmware_protocol::message::{Lifecycle, LockState};

use super::{Device, Operation};

/// What [`Device::snapshot`] tells: the public state, for the control API and tests.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Device serial.
    pub serial: String,
    /// `manufactured`, `initialised`, `bound` or `revoked`.
    pub lifecycle: &'static str,
    /// The sticky tamper flag.
    pub tampered: bool,
    /// `unlocked`, `locked_inactivity` or `locked_by_bank`.
    pub lock: &'static str,
    /// `off`, `safe` or `danger`.
    pub indicator: &'static str,
    /// Paired hosts.
    pub paired_hosts: usize,
    /// Session keys loaded.
    pub session_active: bool,
    /// Last accepted bank sequence.
    pub bank_sequence: u64,
    /// A request is waiting for the user.
    pub busy: bool,
    /// What the pending request waits for: `pin`, `confirm` or none.
    pub waiting_for: Option<&'static str>,
    /// PIN digits entered so far (a count).
    pub pin_digits_entered: Option<u8>,
    /// The prompt on the screen, if any: a number new for every prompt shown since power-on
    /// (a scripted user presses for the prompt it saw, [`crate::sim::SimHandle::press_for`]).
    pub prompt_id: Option<u64>,
    /// The firmware measured at start-up matches the reference.
    pub integrity_ok: bool,
    /// SHA-256 of the firmware as measured, hex.
    pub firmware_hash: String,
    /// The display language setting (`en`, `zh-CN`).
    pub display_language: &'static str,
}

fn lifecycle_name(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Manufactured => "manufactured",
        Lifecycle::Initialised => "initialised",
        Lifecycle::Bound => "bound",
        Lifecycle::Revoked => "revoked",
    }
}

fn lock_name(lock: LockState) -> &'static str {
    match lock {
        LockState::Unlocked => "unlocked",
        LockState::LockedInactivity => "locked_inactivity",
        LockState::LockedByBank => "locked_by_bank",
        LockState::LockedPowerOff => "locked_power_off",
        LockState::LockedIdentity => "locked_identity",
    }
}

impl Device {
    /// The public state.
    pub fn snapshot(&self) -> Snapshot {
        let (waiting_for, pin_digits_entered) =
            match self.volatile.running.as_ref().map(|r| &r.operation) {
                Some(Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. }) => {
                    (Some("pin"), Some(entry.entered()))
                }
                Some(Operation::ChangePin(change)) => (Some("pin"), Some(change.entry.entered())),
                Some(
                    Operation::ConfirmPairing { .. }
                    | Operation::SignConfirmation { .. }
                    | Operation::Wipe,
                ) => (Some("confirm"), None),
                None => (None, None),
            };
        Snapshot {
            serial: self.serial.clone(),
            lifecycle: lifecycle_name(self.lifecycle),
            tampered: self.tampered,
            lock: lock_name(self.lock),
            indicator: crate::hardware::indicator_name(self.indicator),
            paired_hosts: self.hosts.len(),
            session_active: self.volatile.session.is_some(),
            bank_sequence: self.bank_sequence,
            busy: self.volatile.running.is_some(),
            waiting_for,
            pin_digits_entered,
            prompt_id: self.volatile.running.as_ref().map(|r| r.prompt_id),
            integrity_ok: self.integrity_ok(),
            firmware_hash: hex::encode(self.measured_firmware_hash),
            display_language: self.language.tag(),
        }
    }
}
