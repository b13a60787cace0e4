//! Pairing with a host (PROTOCOL.md §4.1) and host verification of every later request
//! (§4.2): PairBegin, PairConfirm with the code confirmed on the keypad, Unpair, and opening
//! the host-verified envelope.

use firmware_protocol::crypto::host_auth::{HostAuthError, MAX_PAIRED_HOSTS};
use firmware_protocol::crypto::pairing::{
    DevicePairing, HostCommitment, PairingNonce, PairingOutcome, PairingPublicKey,
};
use firmware_protocol::message::{
    EcPublicKey, HostId, HostVerified, Indicator, MacTag, Nonce, PairBegin, PairChallenge,
    PairConfirm, PairResult, Request, Response, StatusCode,
};

use super::texts::Text;
use super::{Device, Operation, Refusal, Step, internal, refuse};
use crate::hardware::{EventKind, Hardware};

pub(super) struct PendingPairing {
    pub(super) pairing: DevicePairing,
    pub(super) host_name: String,
}

impl Device {
    pub(super) fn open_envelope<H: Hardware>(
        &mut self,
        request_id: u32,
        envelope: &HostVerified,
        hw: &mut H,
    ) -> Result<Request, Refusal> {
        let host_id = envelope.host_id;
        match self
            .hosts
            .verify(&host_id, envelope.counter, &envelope.inner, &envelope.mac.0)
        {
            Ok(()) => {}
            Err(HostAuthError::UnknownHost { .. }) => {
                return Err(refuse(StatusCode::UnknownHost, "host id not paired"));
            }
            Err(HostAuthError::BadMac) => {
                self.set_indicator(Indicator::Danger, hw);
                hw.record(EventKind::Intrusion {
                    what: "BadHostMac".into(),
                });
                return Err(refuse(StatusCode::BadHostMac, "host MAC does not verify"));
            }
            Err(HostAuthError::Replay { last, got }) => {
                return Err(refuse(
                    StatusCode::ReplayedCounter,
                    format!("counter {got} is not above the last accepted {last}"),
                ));
            }
            Err(other) => return Err(internal(other)),
        }
        // The counter is now consumed: persist before acting, so a restart cannot reopen it.
        self.persist_or_refuse(hw)?;
        envelope
            .open(request_id)
            .map_err(|e| refuse(e.status_code(), e.to_string()))
    }

    pub(super) fn pair_begin<H: Hardware>(
        &mut self,
        request: PairBegin,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        if self.hosts.len() >= MAX_PAIRED_HOSTS {
            return Err(refuse(
                StatusCode::PairingTableFull,
                format!("{MAX_PAIRED_HOSTS} hosts are paired; unpair one first"),
            ));
        }
        let host_public = PairingPublicKey::try_from(&request.host_public_key).map_err(|e| {
            refuse(
                StatusCode::MalformedMessage,
                format!("host_public_key: {e}"),
            )
        })?;
        let commitment = HostCommitment::from_slice(request.host_commitment.as_bytes())
            .map_err(|e| refuse(StatusCode::MalformedMessage, e.to_string()))?;
        let pairing = DevicePairing::respond(hw.rng(), host_public, commitment);
        let challenge = PairChallenge {
            device_public_key: EcPublicKey::from(pairing.public_key()),
            device_nonce: Nonce(*pairing.nonce().as_bytes()),
        };
        self.outcome(vec![self.say(Text::PairingWith(&request.host_name))], hw);
        self.volatile.pairing = Some(PendingPairing {
            pairing,
            host_name: request.host_name,
        });
        Ok(Step::Respond(Response::PairChallenge(challenge)))
    }

    pub(super) fn pair_confirm<H: Hardware>(
        &mut self,
        request_id: u32,
        request: PairConfirm,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let pending = self.volatile.pairing.take().ok_or_else(|| {
            refuse(
                StatusCode::WrongState,
                "no pairing in progress (PairBegin first)",
            )
        })?;
        let outcome = pending
            .pairing
            .finish(&PairingNonce::from_array(request.host_nonce.0))
            .map_err(|e| {
                refuse(
                    StatusCode::PairingConfirmationFailed,
                    format!("host nonce does not match its commitment: {e}"),
                )
            })?;
        if self.hosts.is_paired(&outcome.host_id()) {
            return Err(refuse(StatusCode::WrongState, "host already paired"));
        }
        let code = outcome.comparison_code().to_string();
        let prompt = vec![
            self.say(Text::PairWith(&pending.host_name)),
            self.say(Text::PairingCode(&code)),
            self.say(Text::SameCode),
            self.say(Text::KeysPair),
        ];
        self.start(
            request_id,
            Operation::ConfirmPairing {
                outcome: Box::new(outcome),
                host_name: pending.host_name,
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    pub(super) fn unpair<H: Hardware>(
        &mut self,
        host_id: HostId,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        if !self.hosts.remove_host(&host_id) {
            return Err(refuse(StatusCode::UnknownHost, "that host is not paired"));
        }
        self.host_names.retain(|(id, _)| *id != host_id);
        hw.record(EventKind::State {
            change: format!("host {} unpaired", hex::encode(host_id.as_bytes())),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::Status(self.status(hw.now_ms()))))
    }

    pub(super) fn finish_pairing<H: Hardware>(
        &mut self,
        outcome: &PairingOutcome,
        host_name: &str,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        self.hosts
            .add_host(outcome.host_id(), outcome.host_pairing_key().clone())
            .map_err(|e| match e {
                HostAuthError::TooManyHosts { .. } => {
                    refuse(StatusCode::PairingTableFull, e.to_string())
                }
                other => refuse(StatusCode::WrongState, other.to_string()),
            })?;
        let host_id = outcome.host_id();
        self.host_names.push((host_id, host_name.to_string()));
        self.outcome(vec![self.say(Text::PairedWith(host_name))], hw);
        hw.record(EventKind::State {
            change: format!("host {} paired", hex::encode(host_id.as_bytes())),
        });
        self.persist_or_refuse(hw)?;
        Ok(Response::PairResult(PairResult {
            host_id,
            device_confirmation: MacTag(*outcome.device_confirmation()),
        }))
    }
}
