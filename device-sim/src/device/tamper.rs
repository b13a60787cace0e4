//! Tamper (CN103106582A) and the T2 lock: the tamper switch wipes keys and payment data at
//! once and leaves the sticky TAMPERED state, until an operator-signed reset.

use firmware_protocol::crypto::host_auth::HostVerifier;
use firmware_protocol::message::{
    Indicator, Lifecycle, LockState, OperatorReset, Response, StatusCode,
};

use super::{Device, Refusal, Step, refuse};
use crate::hardware::{EventKind, Hardware};

impl Device {
    /// Tamper switch and T2 lock. Returns the answer of a request aborted by tamper.
    pub(super) fn sense<H: Hardware>(&mut self, hw: &mut H) -> Option<Vec<u8>> {
        if hw.tamper_switch_open() && !self.tampered {
            return self.trip_tamper(hw);
        }
        self.timer_rules(hw);
        if self.volatile.running.is_none()
            && self.can_self_lock()
            && hw.now_ms().saturating_sub(self.last_bank_contact_ms) > self.lock_after_ms
        {
            self.lock_payments(LockState::LockedInactivity, hw);
            hw.record(EventKind::State {
                change: "locked: no bank contact within T2".into(),
            });
            self.persist(hw);
        }
        None
    }

    /// Tamper: wipe keys and payment data at once, danger, sticky flag (CN103106582A).
    pub(super) fn trip_tamper<H: Hardware>(&mut self, hw: &mut H) -> Option<Vec<u8>> {
        let aborted = self
            .volatile
            .running
            .take()
            .map(|running| running.request_id);
        self.tampered = true;
        self.wipe_bank_data();
        self.lifecycle = Lifecycle::Manufactured;
        self.lock = LockState::Unlocked;
        self.set_indicator(Indicator::Danger, hw);
        self.volatile.banner = vec![self.say(super::texts::Text::TamperWiped)];
        self.volatile.banner_until_ms = None;
        hw.record(EventKind::Tamper);
        self.persist(hw);
        self.refresh_display(hw);
        aborted.map(|request_id| {
            self.error_answer(
                request_id,
                &refuse(
                    StatusCode::Tampered,
                    "tamper switch opened during the request",
                ),
                hw,
            )
        })
    }

    /// Bank keys, binding, pairings, session, payment data.
    pub(super) fn wipe_bank_data(&mut self) {
        self.kbpk = None;
        self.binding = None;
        self.hosts = HostVerifier::new();
        self.host_names.clear();
        self.volatile.session = None;
        self.volatile.pending_payment = None;
        self.volatile.pending_pin_change = None;
        self.volatile.pairing = None;
        self.last_payment_counter = 0;
        self.device_counter = 0;
        self.activation_record = None;
    }

    pub(super) fn operator_reset<H: Hardware>(
        &mut self,
        request: OperatorReset,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.check_bank_signed(self.bank_operator_key.as_ref(), &request)?;
        if hw.tamper_switch_open() {
            return Err(refuse(
                StatusCode::WrongState,
                "the tamper switch is still open: close the case first",
            ));
        }
        self.wipe_bank_data();
        self.tampered = false;
        self.lifecycle = Lifecycle::Manufactured;
        self.lock = LockState::Unlocked;
        self.bank_sequence = request.sequence;
        self.set_indicator(Indicator::Off, hw);
        self.outcome(
            vec![self.say(super::texts::Text::ResetByOperator(&request.operator_id))],
            hw,
        );
        hw.record(EventKind::State {
            change: format!("operator reset by {}", request.operator_id),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Status(self.status(hw.now_ms()))))
    }
}
