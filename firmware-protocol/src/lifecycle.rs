//! The device's life after issue (CN101093566A, PROTOCOL.md §6.11): the activation record a
//! device compares before every payment, and the reference timers of its locks.
//!
//! The rules are pure: the device passes its identifiers and clock in.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Reference T2: lock after this long without a successful bank contact (30 days).
pub const REFERENCE_T2_SECONDS: u64 = 30 * 24 * 3600;
/// Reference T1: a device powered off for longer than this locks at power-on (7 days).
pub const REFERENCE_T1_SECONDS: u64 = 7 * 24 * 3600;
/// Reference T: an identity lock held this long deletes the payment data (1 hour, the
/// patent's example).
pub const REFERENCE_T_SECONDS: u64 = 3600;
/// How often a running device records that it is alive (the start of a power-off is known
/// to within this much).
pub const ALIVE_RECORD_INTERVAL_SECONDS: u64 = 60;

const ACTIVATION_TAG: &[u8] = b"PinBridge/v1/activation-record";

/// The activation record: a tagged SHA-256 of the identifiers a device had when payments
/// were enabled for it (Enrol). Nothing secret: the identifiers are not secret either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivationRecord(pub [u8; 32]);

/// The identifiers an activation record covers.
#[derive(Clone, Copy, Debug)]
pub struct Identifiers<'a> {
    /// The board's hardware identifier (the MCU's unique id): not in the secure store, so
    /// a store moved to another board no longer matches.
    pub board_id: &'a [u8],
    /// Device serial.
    pub serial: &'a str,
    /// The customer the device is bound to.
    pub customer_id: &'a str,
    /// The binding's PIN account number.
    pub pin_account_number: &'a str,
}

impl ActivationRecord {
    /// `SHA-256("PinBridge/v1/activation-record" ‖ 00 ‖ field…)`, each field a `u16` BE
    /// length then its bytes, in the order of [`Identifiers`].
    pub fn compute(ids: &Identifiers<'_>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(ACTIVATION_TAG);
        hasher.update([0x00]);
        for field in [
            ids.board_id,
            ids.serial.as_bytes(),
            ids.customer_id.as_bytes(),
            ids.pin_account_number.as_bytes(),
        ] {
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            hasher.update(len.to_be_bytes());
            hasher.update(&field[..usize::from(len).min(field.len())]);
        }
        Self(hasher.finalize().into())
    }

    /// Whether `current` identifiers still give this record (constant time).
    pub fn matches(&self, current: &Identifiers<'_>) -> bool {
        bool::from(self.0.ct_eq(&Self::compute(current).0))
    }
}

/// T1 rule: whether a device last seen alive at `last_alive_ms` and powered on at `now_ms`
/// was off for longer than `t1_ms`.
pub fn powered_off_too_long(last_alive_ms: u64, now_ms: u64, t1_ms: u64) -> bool {
    now_ms.saturating_sub(last_alive_ms) > t1_ms
}

/// T rule: whether an identity lock taken at `locked_since_ms` has been held longer than
/// `t_ms` at `now_ms`.
pub fn identity_lock_expired(locked_since_ms: u64, now_ms: u64, t_ms: u64) -> bool {
    now_ms.saturating_sub(locked_since_ms) > t_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(board: &'a [u8], customer: &'a str) -> Identifiers<'a> {
        Identifiers {
            board_id: board,
            serial: "PB-1",
            customer_id: customer,
            pin_account_number: "400000123456",
        }
    }

    #[test]
    fn a_record_matches_its_identifiers_and_nothing_else() {
        let record = ActivationRecord::compute(&ids(b"board-a", "alice"));
        assert!(record.matches(&ids(b"board-a", "alice")));
        assert!(!record.matches(&ids(b"board-b", "alice")));
        assert!(!record.matches(&ids(b"board-a", "bob")));
        // Length prefixes: moving a byte from one field to the next changes the record.
        let shifted = Identifiers {
            board_id: b"board-aP",
            serial: "B-1",
            ..ids(b"", "alice")
        };
        assert!(!record.matches(&shifted));
    }

    #[test]
    fn timers_are_strictly_longer_than() {
        assert!(!powered_off_too_long(1_000, 1_000 + 500, 500));
        assert!(powered_off_too_long(1_000, 1_000 + 501, 500));
        assert!(!identity_lock_expired(0, 10, 10));
        assert!(identity_lock_expired(0, 11, 10));
    }
}
