//! The login session (CN102004977A 101-106): the session keys of LoadSessionKeys (all three
//! or none), the answer to the bank's challenge, and the checks every bank request under the
//! session passes before it reaches the screen.

use firmware_protocol::crypto::keys::MacKey;
use firmware_protocol::crypto::pinblock::Pan;
use firmware_protocol::device_side::SessionKeys;
use firmware_protocol::message::{
    BankChallenge, KeysLoaded, LoadSessionKeys, Nonce, Response, SessionId, StatusCode,
};
use rand_core::Rng;

use super::{Device, Refusal, Step, internal, payload_refusal, refuse};
use crate::hardware::Hardware;

impl Device {
    pub(super) fn load_session_keys<H: Hardware>(
        &mut self,
        request: LoadSessionKeys,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let session = self
            .unwrap_session(&request)
            .map_err(|r| self.intrusion(r, hw))?;
        self.volatile.session = Some(session);
        self.volatile.pending_payment = None;
        self.volatile.pending_pin_change = None;
        self.bank_contact(hw);
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::KeysLoaded(KeysLoaded {
            session_id: request.session_id,
        })))
    }

    /// All three keys or none (CN102004977A step 104): any failure leaves the old ones.
    fn unwrap_session(&self, request: &LoadSessionKeys) -> Result<SessionKeys, Refusal> {
        let kbpk = self
            .kbpk
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotInitialised, "no key-block protection key"))?;
        SessionKeys::unwrap(kbpk, request).map_err(payload_refusal)
    }

    pub(super) fn session_for(&self, session_id: &SessionId) -> Result<&SessionKeys, Refusal> {
        let session = self
            .volatile
            .session
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NoSession, "no session keys loaded"))?;
        if session.id != *session_id {
            return Err(refuse(
                StatusCode::SessionMismatch,
                "not the current session",
            ));
        }
        Ok(session)
    }

    /// The binding's PAN and the session keys, for a PIN just entered under the session
    /// (a payment, a PIN change): the session may have ended while the user typed.
    pub(super) fn pin_session(&self) -> Result<(Pan, &SessionKeys), Refusal> {
        let binding = self
            .binding
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotBound, "no binding"))?;
        let pan = Pan::new(&binding.pin_account_number).map_err(internal)?;
        let session = self
            .volatile
            .session
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NoSession, "session ended during PIN entry"))?;
        Ok((pan, session))
    }

    /// What a bank request the user is about to see passes first (ApprovePayment,
    /// ChangePin): the session, a bank counter above the last accepted one, and the bank MAC
    /// under the session response key (`bank_mac_verifies`); a forged MAC is an intrusion.
    /// The caller consumes the counter once it starts the prompt.
    pub(super) fn accept_bank_request<H: Hardware>(
        &mut self,
        session_id: &SessionId,
        counter: u64,
        bank_mac_verifies: impl FnOnce(&MacKey) -> bool,
        what: &str,
        hw: &mut H,
    ) -> Result<(), Refusal> {
        let session = self.session_for(session_id)?;
        if counter <= self.last_payment_counter {
            return Err(refuse(
                StatusCode::StaleBankCounter,
                format!(
                    "bank counter {counter} on the {what} is not above the last accepted {}",
                    self.last_payment_counter
                ),
            ));
        }
        if !bank_mac_verifies(&session.response_key) {
            let refusal = refuse(
                StatusCode::BadBankMac,
                format!("bank MAC on the {what} does not verify"),
            );
            return Err(self.intrusion(refusal, hw));
        }
        Ok(())
    }

    /// The bank's verdict on what the device sent (VerifyBankResponse, VerifyPinChange): the
    /// session and the bank MAC under the response key; a forged verdict is an intrusion, and
    /// the screen says so.
    pub(super) fn accept_bank_verdict<H: Hardware>(
        &mut self,
        session_id: &SessionId,
        bank_mac_verifies: impl FnOnce(&MacKey) -> bool,
        forged: &'static str,
        hw: &mut H,
    ) -> Result<(), Refusal> {
        let session = self.session_for(session_id)?;
        if !bank_mac_verifies(&session.response_key) {
            self.outcome(vec![self.say(super::texts::Text::ForgedResponse)], hw);
            let refusal = refuse(StatusCode::BadBankMac, forged);
            return Err(self.intrusion(refusal, hw));
        }
        Ok(())
    }

    pub(super) fn bank_challenge<H: Hardware>(
        &mut self,
        request: BankChallenge,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let mut nonce = [0u8; 16];
        hw.rng().fill_bytes(&mut nonce);
        let session = self.session_for(&request.session_id)?;
        let response = session
            .challenge_response(&request, Nonce(nonce))
            .map_err(payload_refusal)?;
        Ok(Step::Respond(Response::ChallengeResponse(response)))
    }
}
