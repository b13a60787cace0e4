//! The login session (CN102004977A 101-106): the session keys of LoadSessionKeys (all three
//! or none) and the answer to the bank's challenge.

use firmware_protocol::crypto::keys::{KeyMaterial, MacKey, PinKey};
use firmware_protocol::message::{
    BankChallenge, ChallengeResponse, KeysLoaded, LoadSessionKeys, MacTag, Nonce, Response,
    SessionId, StatusCode,
};
use rand_core::Rng;
use subtle::ConstantTimeEq;

use super::{Device, Refusal, Step, check_kcv, internal, refuse, require_aes, unwrap_typed};
use crate::hardware::Hardware;

/// Session keys from LoadSessionKeys. Volatile: a restart ends the session.
pub(super) struct Session {
    pub(super) id: SessionId,
    pub(super) pin_key: PinKey,
    pub(super) mac_key: MacKey,
    pub(super) response_key: MacKey,
}

pub(super) fn cmac(key: &MacKey, input: &[u8]) -> Result<MacTag, Refusal> {
    MacTag::aes_cmac(key, input).map_err(internal)
}

impl Device {
    pub(super) fn load_session_keys<H: Hardware>(
        &mut self,
        request: LoadSessionKeys,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let session = self
            .unwrap_session(&request)
            .map_err(|r| self.intrusion(r, hw))?;
        self.session = Some(session);
        self.pending_payment = None;
        self.pending_pin_change = None;
        self.bank_contact(hw);
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::KeysLoaded(KeysLoaded {
            session_id: request.session_id,
        })))
    }

    /// All three keys or none (CN102004977A step 104): any failure leaves the old ones.
    pub(super) fn unwrap_session(&self, request: &LoadSessionKeys) -> Result<Session, Refusal> {
        let kbpk = self
            .kbpk
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotInitialised, "no key-block protection key"))?;
        let pin_key: PinKey = unwrap_typed(kbpk, &request.pin_key.key_block, "pin_key")?;
        require_aes(pin_key.material(), "pin_key")?;
        check_kcv(pin_key.material(), &request.pin_key.kcv, "pin_key")?;
        let mac_key: MacKey = unwrap_typed(kbpk, &request.mac_key.key_block, "mac_key")?;
        require_aes(mac_key.material(), "mac_key")?;
        check_kcv(mac_key.material(), &request.mac_key.kcv, "mac_key")?;
        let response_key: MacKey =
            unwrap_typed(kbpk, &request.response_key.key_block, "response_key")?;
        require_aes(response_key.material(), "response_key")?;
        check_kcv(
            response_key.material(),
            &request.response_key.kcv,
            "response_key",
        )?;
        let same =
            |a: &KeyMaterial, b: &KeyMaterial| bool::from(a.reveal_bytes().ct_eq(b.reveal_bytes()));
        if same(pin_key.material(), mac_key.material())
            || same(pin_key.material(), response_key.material())
            || same(mac_key.material(), response_key.material())
        {
            return Err(refuse(
                StatusCode::KeysNotDistinct,
                "PIN, MAC and response keys must all differ",
            ));
        }
        Ok(Session {
            id: request.session_id,
            pin_key,
            mac_key,
            response_key,
        })
    }

    pub(super) fn session_for(&self, session_id: &SessionId) -> Result<&Session, Refusal> {
        let session = self
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

    pub(super) fn bank_challenge<H: Hardware>(
        &mut self,
        request: BankChallenge,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let mut nonce = [0u8; 16];
        hw.rng().fill_bytes(&mut nonce);
        let session = self.session_for(&request.session_id)?;
        let mut response = ChallengeResponse {
            device_nonce: Nonce(nonce),
            mac: MacTag([0; 16]),
        };
        let input = response.mac_input(&request).map_err(internal)?;
        response.mac = cmac(&session.mac_key, &input)?;
        Ok(Step::Respond(Response::ChallengeResponse(response)))
    }
}
