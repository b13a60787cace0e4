//! The rules of CN101093566A on the device (PROTOCOL.md §6.11): the activation record
//! compared before every payment, the identity lock and its deletion after T, the T1
//! power-off lock, and the record of being alive that T1 is measured from. The pure rules
//! live in `firmware_protocol::lifecycle`; this is where the device applies them.

use firmware_protocol::lifecycle::{
    ALIVE_RECORD_INTERVAL_SECONDS, ActivationRecord, Identifiers, identity_lock_expired,
    powered_off_too_long,
};
use firmware_protocol::message::{Lifecycle, LockState, StatusCode};

use super::{Device, Refusal, refuse};
use crate::hardware::{EventKind, Hardware};

impl Device {
    /// The activation record of the current binding on this board, if bound.
    fn current_record<H: Hardware>(&self, hw: &H) -> Option<ActivationRecord> {
        let binding = self.binding.as_ref()?;
        Some(ActivationRecord::compute(&Identifiers {
            board_id: &hw.board_id(),
            serial: &self.serial,
            customer_id: &binding.customer_id,
            pin_account_number: &binding.pin_account_number,
        }))
    }

    /// Enrol succeeded: payments are enabled for these identifiers (the activation record).
    pub(super) fn record_activation<H: Hardware>(&mut self, hw: &H) {
        self.activation_record = self.current_record(hw);
    }

    /// Before every payment (ApprovePayment, SignConfirmation): the identifiers now must
    /// give the activation record. A mismatch locks payment functions (`LockedIdentity`),
    /// drops the session, and is refused with `IdentityMismatch`.
    pub(super) fn check_activation<H: Hardware>(&mut self, hw: &mut H) -> Result<(), Refusal> {
        let genuine = match (&self.activation_record, self.current_record(hw)) {
            (Some(recorded), Some(current)) => bool::from(subtle::ConstantTimeEq::ct_eq(
                &recorded.0[..],
                &current.0[..],
            )),
            // Bound without a record (a store from before records existed, or a corrupt
            // one): nothing to vouch for these identifiers.
            _ => false,
        };
        if genuine {
            return Ok(());
        }
        self.lock_payments(LockState::LockedIdentity, hw);
        hw.record(EventKind::Intrusion {
            what: "IdentityMismatch".into(),
        });
        self.persist_or_refuse(hw)?;
        Err(refuse(
            StatusCode::IdentityMismatch,
            "the device's identifiers differ from its activation record: payments locked",
        ))
    }

    /// Takes a lock: payment functions off, session keys and the pending payment dropped.
    pub(super) fn lock_payments<H: Hardware>(&mut self, lock: LockState, hw: &mut H) {
        self.lock = lock;
        self.locked_since_ms = hw.now_ms();
        self.volatile.session = None;
        self.volatile.pending_payment = None;
    }

    /// At power-on: off for longer than T1 → `LockedPowerOff`, lifted only by a bank
    /// Unlock (the bank sends one after it verified the device at login).
    pub(super) fn power_on_rules<H: Hardware>(&mut self, hw: &mut H) {
        let now = hw.now_ms();
        if self.lifecycle == Lifecycle::Bound && self.activation_record.is_none() {
            // A binding from a firmware that kept no record: the identifiers it has now are
            // taken as the activation record (once; from then on they are compared).
            self.record_activation(hw);
            hw.record(EventKind::State {
                change: "activation record made for an existing binding".into(),
            });
        }
        if self.can_self_lock()
            && self.power_off_lock_ms > 0
            && powered_off_too_long(self.last_alive_ms, now, self.power_off_lock_ms)
        {
            self.lock_payments(LockState::LockedPowerOff, hw);
            hw.record(EventKind::State {
                change: "locked: powered off for longer than T1".into(),
            });
        }
        self.last_alive_ms = now;
        self.persist(hw);
    }

    /// While idle: an identity lock held longer than T deletes the payment data (→
    /// `Revoked`), and the alive record is refreshed every [`ALIVE_RECORD_INTERVAL_SECONDS`].
    pub(super) fn timer_rules<H: Hardware>(&mut self, hw: &mut H) {
        let now = hw.now_ms();
        if self.volatile.running.is_none()
            && self.lock == LockState::LockedIdentity
            && identity_lock_expired(self.locked_since_ms, now, self.identity_wipe_ms)
        {
            self.wipe_bank_data();
            self.lifecycle = Lifecycle::Revoked;
            self.lock = LockState::Unlocked;
            self.volatile.banner = vec![self.say(super::texts::Text::PaymentDataDeleted)];
            self.volatile.banner_until_ms = None;
            hw.record(EventKind::State {
                change: "payment data deleted: identity lock held longer than T".into(),
            });
            self.last_alive_ms = now;
            self.persist(hw);
            return;
        }
        if now.saturating_sub(self.last_alive_ms) >= ALIVE_RECORD_INTERVAL_SECONDS * 1000 {
            self.last_alive_ms = now;
            self.persist(hw);
        }
    }

    /// Whether the device may lock itself (T1, T2): issued, not tampered, not locked yet.
    pub(super) fn can_self_lock(&self) -> bool {
        !self.tampered
            && matches!(self.lifecycle, Lifecycle::Initialised | Lifecycle::Bound)
            && self.lock == LockState::Unlocked
    }
}
