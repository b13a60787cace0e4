//! The exact bytes every MAC and signature in the protocol covers, so the device, the bank
//! and the host compute the same input from the same message.
//!
//! One rule for all of them (PROTOCOL.md §3.6):
//!
//! - An authenticator made by the bank, the operator or the host is the *last* field of its
//!   request. It covers `tag || 0x00 || request body without the authenticator`.
//! - An authenticator made by the device is the last field of its response. It covers
//!   `tag || 0x00 || request body (whole) || response body without the authenticator`, so
//!   it binds the answer to the exact question.
//!
//! `tag` is a domain-separation string from [`domain`], different for every payload, so a
//! MAC or signature made for one purpose never verifies as another. Bodies are the message
//! encodings (header excluded); because the encoding is canonical, re-encoding a decoded
//! message gives the bytes that were received.

use alloc::vec::Vec;

use super::codec::Writer;
use super::owner::{ChangePin, DeviceWiped, PinChangeEntered, VerifyPinChange, WipeDevice};
use super::request::{
    ApprovePayment, BankChallenge, BankCommand, Enrol, GetIntegrityReport, HostVerified,
    Initialise, OperatorReset, SignConfirmation, VerifyBankResponse,
};
use super::response::{ChallengeResponse, IntegrityReport, PaymentApproved};
use super::types::{EcdsaSignature, MacTag};
use super::{Body, MessageError, Request, WireBody, decode};
use crate::crypto::ecdsa::SignatureDomain;
use crate::crypto::keys::MacKey;
use crate::crypto::mac::{self, MacAlgorithm, MacError};

/// Domain-separation tags: ASCII, followed on the wire of every MAC/signature input by one
/// `0x00` byte. No tag is a prefix of another once the `0x00` is appended.
pub mod domain {
    /// `HostVerified.mac`, by the paired host under its host-verification key.
    pub const HOST_VERIFIED: &[u8] = crate::crypto::host_auth::REQUEST_MAC_TAG.as_bytes();
    /// `Initialise.signature`, by the bank management key.
    pub const INITIALISE: &[u8] = b"PinBridge/1/initialise";
    /// `Enrol.signature`, by the bank management key.
    pub const ENROL: &[u8] = b"PinBridge/1/enrol";
    /// `OperatorReset.signature`, by the bank operator key.
    pub const OPERATOR_RESET: &[u8] = b"PinBridge/1/operator-reset";
    /// `BankCommand.signature`, by the bank management key.
    pub const BANK_COMMAND: &[u8] = b"PinBridge/1/bank-command";
    /// `ApprovePayment.bank_mac`, by the bank under the session response key.
    pub const APPROVE_PAYMENT: &[u8] = b"PinBridge/1/approve-payment";
    /// `VerifyBankResponse.bank_mac`, by the bank under the session response key.
    pub const BANK_RESPONSE: &[u8] = b"PinBridge/1/bank-response";
    /// `ChallengeResponse.mac`, by the device under the session MAC key.
    pub const CHALLENGE_RESPONSE: &[u8] = b"PinBridge/1/challenge-response";
    /// `PaymentApproved.mac`, by the device under the session MAC key.
    pub const PAYMENT_APPROVED: &[u8] = b"PinBridge/1/payment-approved";
    /// `IntegrityReport.signature`, by the device attestation key.
    pub const INTEGRITY_REPORT: &[u8] = b"PinBridge/1/integrity-report";
    /// `ConfirmationSignature.signature`, by the device attestation key.
    pub const CONFIRMATION: &[u8] = b"PinBridge/1/confirmation";
    /// `ChangePin.bank_mac`, by the bank under the session response key.
    pub const CHANGE_PIN: &[u8] = b"PinBridge/1/change-pin";
    /// `PinChangeEntered.mac`, by the device under the session MAC key.
    pub const PIN_CHANGE_ENTERED: &[u8] = b"PinBridge/1/pin-change-entered";
    /// `VerifyPinChange.bank_mac`, by the bank under the session response key.
    pub const PIN_CHANGE_RESULT: &[u8] = b"PinBridge/1/pin-change-result";
    /// `DeviceWiped.signature`, by the device attestation key.
    pub const DEVICE_WIPED: &[u8] = b"PinBridge/1/device-wiped";

    /// All tags, for tests that check they are distinct.
    pub const ALL: &[&[u8]] = &[
        HOST_VERIFIED,
        INITIALISE,
        ENROL,
        OPERATOR_RESET,
        BANK_COMMAND,
        APPROVE_PAYMENT,
        BANK_RESPONSE,
        CHALLENGE_RESPONSE,
        PAYMENT_APPROVED,
        INTEGRITY_REPORT,
        CONFIRMATION,
        CHANGE_PIN,
        PIN_CHANGE_ENTERED,
        PIN_CHANGE_RESULT,
        DEVICE_WIPED,
    ];
}

/// The ECDSA domain (PROTOCOL.md §4.4) each signed payload is signed in. The signature covers
/// `domain label || 0x00 || signed_bytes()`, so the complete signed message of, say, an
/// Initialise is `Initialise::SIGNATURE_DOMAIN.signed_bytes(&initialise.signed_bytes()?)`.
impl Initialise {
    /// Bank management key, domain `bank-command`.
    pub const SIGNATURE_DOMAIN: SignatureDomain = SignatureDomain::BankCommand;
}
impl Enrol {
    /// Bank management key, domain `bank-command`.
    pub const SIGNATURE_DOMAIN: SignatureDomain = SignatureDomain::BankCommand;
}
impl BankCommand {
    /// Bank management key, domain `bank-command`.
    pub const SIGNATURE_DOMAIN: SignatureDomain = SignatureDomain::BankCommand;
}
impl OperatorReset {
    /// Bank operator key, domain `operator-reset`.
    pub const SIGNATURE_DOMAIN: SignatureDomain = SignatureDomain::OperatorReset;
}
impl IntegrityReport {
    /// Device attestation key, domain `device-attestation`.
    pub const SIGNATURE_DOMAIN: SignatureDomain = SignatureDomain::DeviceAttestation;
}
impl DeviceWiped {
    /// Device attestation key, domain `device-attestation` (the tag tells it from an
    /// integrity report).
    pub const SIGNATURE_DOMAIN: SignatureDomain = SignatureDomain::DeviceAttestation;
}
impl SignConfirmation {
    /// Device attestation key, domain `oob-confirmation` (the signature is the
    /// ConfirmationSignature answer).
    pub const SIGNATURE_DOMAIN: SignatureDomain = SignatureDomain::OutOfBandConfirmation;
}

impl Request {
    /// The ECDSA domain of a bank- or operator-signed request (Initialise, Enrol,
    /// BankCommand, OperatorReset); `None` for every other request.
    pub fn signature_domain(&self) -> Option<SignatureDomain> {
        match self {
            Request::Initialise(_) => Some(Initialise::SIGNATURE_DOMAIN),
            Request::Enrol(_) => Some(Enrol::SIGNATURE_DOMAIN),
            Request::BankCommand(_) => Some(BankCommand::SIGNATURE_DOMAIN),
            Request::OperatorReset(_) => Some(OperatorReset::SIGNATURE_DOMAIN),
            _ => None,
        }
    }
}

impl MacTag {
    /// The AES-CMAC of `input` under `key`, all 16 bytes: how every `mac` field of the
    /// protocol is made (PROTOCOL.md §3.6). A key that is not AES is refused.
    pub fn aes_cmac(key: &MacKey, input: &[u8]) -> Result<Self, MacError> {
        let full = mac::compute(key, MacAlgorithm::AesCmac, input)?;
        let mut tag = [0u8; Self::LEN];
        // AES-CMAC is one AES block, always 16 bytes; `get` keeps a surprise from panicking.
        tag.copy_from_slice(full.get(..Self::LEN).ok_or(MacError::Mismatch)?);
        Ok(Self(tag))
    }

    /// Whether this is the AES-CMAC of `input` under `key`: all 16 bytes compared in constant
    /// time (no truncation). False for a key that is not AES.
    pub fn verifies(&self, key: &MacKey, input: &[u8]) -> bool {
        mac::verify(key, MacAlgorithm::AesCmac, input, &self.0).is_ok()
    }
}

/// Why an authenticator could not be made: the message does not encode, or the key is not an
/// AES key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The message does not encode.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The key cannot make an AES-CMAC.
    #[error(transparent)]
    Mac(#[from] MacError),
}

/// Making and checking the `bank_mac` of the payloads the bank MACs under the session response
/// key: the AES-CMAC of `mac_input()` (PROTOCOL.md §3.6). The one definition the bank, the
/// device and every test device use.
macro_rules! bank_mac {
    ($($payload:ty),+ $(,)?) => {$(
        impl $payload {
            /// Sets `bank_mac` to the AES-CMAC of [`Self::mac_input`] under `response_key`.
            pub fn seal_bank_mac(&mut self, response_key: &MacKey) -> Result<(), SealError> {
                self.bank_mac = MacTag::aes_cmac(response_key, &self.mac_input()?)?;
                Ok(())
            }

            /// Whether `bank_mac` is the AES-CMAC of [`Self::mac_input`] under
            /// `response_key` (all 16 bytes, constant time); false if the message does not
            /// encode or the key is not AES.
            pub fn bank_mac_verifies(&self, response_key: &MacKey) -> bool {
                self.mac_input()
                    .is_ok_and(|input| self.bank_mac.verifies(response_key, &input))
            }
        }
    )+};
}
bank_mac!(
    ApprovePayment,
    VerifyBankResponse,
    ChangePin,
    VerifyPinChange
);

/// Making and checking the `mac` of the device's answers under the session MAC key: the
/// AES-CMAC of `mac_input(request)`, which binds the answer to the exact question.
macro_rules! device_mac {
    ($($payload:ty => $request:ty),+ $(,)?) => {$(
        impl $payload {
            /// Sets `mac` to the AES-CMAC of [`Self::mac_input`] under the session `mac_key`.
            pub fn seal_mac(&mut self, mac_key: &MacKey, request: &$request) -> Result<(), SealError> {
                self.mac = MacTag::aes_cmac(mac_key, &self.mac_input(request)?)?;
                Ok(())
            }

            /// Whether `mac` is the AES-CMAC of [`Self::mac_input`] under `mac_key` (all 16
            /// bytes, constant time); false if the message does not encode or the key is not
            /// AES.
            pub fn mac_verifies(&self, mac_key: &MacKey, request: &$request) -> bool {
                self.mac_input(request)
                    .is_ok_and(|input| self.mac.verifies(mac_key, &input))
            }
        }
    )+};
}
device_mac!(
    ChallengeResponse => BankChallenge,
    PaymentApproved => ApprovePayment,
    PinChangeEntered => ChangePin,
);

fn body_of(body: &impl WireBody) -> Result<Vec<u8>, MessageError> {
    let mut w = Writer::new();
    body.write(&mut w)?;
    Ok(w.into_bytes())
}

/// `body` without its last `authenticator_len` bytes: every authenticator is a fixed-size
/// last field.
fn body_without_authenticator(
    body: &impl WireBody,
    authenticator_len: usize,
) -> Result<Vec<u8>, MessageError> {
    let mut bytes = body_of(body)?;
    bytes.truncate(bytes.len().saturating_sub(authenticator_len));
    Ok(bytes)
}

fn tagged(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let len = tag.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut input = Vec::with_capacity(len);
    input.extend_from_slice(tag);
    input.push(0x00);
    for part in parts {
        input.extend_from_slice(part);
    }
    input
}

fn signed_request(
    tag: &[u8],
    request: &impl WireBody,
    authenticator_len: usize,
) -> Result<Vec<u8>, MessageError> {
    Ok(tagged(
        tag,
        &[&body_without_authenticator(request, authenticator_len)?],
    ))
}

fn device_answer(
    tag: &[u8],
    request: &impl WireBody,
    response: &impl WireBody,
    authenticator_len: usize,
) -> Result<Vec<u8>, MessageError> {
    Ok(tagged(
        tag,
        &[
            &body_of(request)?,
            &body_without_authenticator(response, authenticator_len)?,
        ],
    ))
}

impl HostVerified {
    /// The bytes the host MACs, as `crypto::host_auth` defines them (the one definition):
    /// `"PinBridge/v1/host-auth/request" 00 || host_id || counter (u64) || inner length (u64)
    /// || inner`.
    pub fn mac_input(&self) -> Result<Vec<u8>, MessageError> {
        Ok(crate::crypto::host_auth::host_request_mac_input(
            &self.host_id,
            self.counter,
            &self.inner,
        ))
    }

    /// Wraps `inner` (encoded with `request_id`, which the envelope must carry too) for the
    /// paired host `signer`: its next counter and its MAC over [`HostVerified::mac_input`].
    /// The counter advances even if the caller then drops the envelope, so a counter is never
    /// offered twice.
    pub fn sign(
        request_id: u32,
        inner: &Request,
        signer: &mut crate::crypto::host_auth::HostSigner,
    ) -> Result<Self, MessageError> {
        if matches!(inner, Request::HostVerified(_)) {
            return Err(MessageError::NestedEnvelope);
        }
        let inner = inner.encode(request_id)?;
        let auth = signer
            .sign(&inner)
            .map_err(|_| MessageError::HostCounterExhausted)?;
        Ok(Self {
            host_id: auth.host_id,
            counter: auth.counter,
            inner,
            mac: MacTag(auth.mac),
        })
    }

    /// Decodes the inner request, for a device that has already checked the host id, the
    /// counter and the MAC (verify, then parse). Refuses an inner message that is not a
    /// request, is another envelope, or carries another request id than the envelope's.
    pub fn open(&self, outer_request_id: u32) -> Result<Request, MessageError> {
        let message = decode(&self.inner)?;
        let request = match message.body {
            Body::Request(request) => request,
            Body::Response(response) => {
                return Err(MessageError::ExpectedRequest {
                    message_type: response.message_type(),
                });
            }
        };
        if matches!(request, Request::HostVerified(_)) {
            return Err(MessageError::NestedEnvelope);
        }
        if message.request_id != outer_request_id {
            return Err(MessageError::EnvelopeRequestIdMismatch {
                outer: outer_request_id,
                inner: message.request_id,
            });
        }
        Ok(request)
    }
}

impl Initialise {
    /// The bytes the bank management key signs (ECDSA P-256 with SHA-256).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::INITIALISE, self, EcdsaSignature::LEN)
    }
}

impl Enrol {
    /// The bytes the bank management key signs (ECDSA P-256 with SHA-256).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::ENROL, self, EcdsaSignature::LEN)
    }
}

impl OperatorReset {
    /// The bytes the bank operator key signs (ECDSA P-256 with SHA-256).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::OPERATOR_RESET, self, EcdsaSignature::LEN)
    }
}

impl BankCommand {
    /// The bytes the bank management key signs (ECDSA P-256 with SHA-256).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::BANK_COMMAND, self, EcdsaSignature::LEN)
    }
}

impl ApprovePayment {
    /// The bytes the bank MACs under the session response key: the session id, the whole
    /// canonical payment and the bank counter.
    pub fn mac_input(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::APPROVE_PAYMENT, self, MacTag::LEN)
    }
}

impl VerifyBankResponse {
    /// The bytes the bank MACs under the session response key: session id, transaction id,
    /// device counter and verdict.
    pub fn mac_input(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::BANK_RESPONSE, self, MacTag::LEN)
    }
}

impl SignConfirmation {
    /// The bytes the device's attestation key signs (ECDSA P-256 with SHA-256) once the user
    /// approved: the whole request. The response adds nothing to cover.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::CONFIRMATION, self, 0)
    }
}

impl ChallengeResponse {
    /// The bytes the device MACs under the session MAC key: the challenge (session id, bank
    /// nonce) and the device nonce.
    pub fn mac_input(&self, request: &BankChallenge) -> Result<Vec<u8>, MessageError> {
        device_answer(domain::CHALLENGE_RESPONSE, request, self, MacTag::LEN)
    }
}

impl PaymentApproved {
    /// The bytes the device MACs under the session MAC key: the whole payment request (bank
    /// MAC included), the PIN block and the device counter.
    pub fn mac_input(&self, request: &ApprovePayment) -> Result<Vec<u8>, MessageError> {
        device_answer(domain::PAYMENT_APPROVED, request, self, MacTag::LEN)
    }
}

impl IntegrityReport {
    /// The bytes the attestation key signs (ECDSA P-256 with SHA-256): the bank's nonce,
    /// serial, firmware version and firmware hash.
    pub fn signed_bytes(&self, request: &GetIntegrityReport) -> Result<Vec<u8>, MessageError> {
        device_answer(domain::INTEGRITY_REPORT, request, self, EcdsaSignature::LEN)
    }
}

impl ChangePin {
    /// The bytes the bank MACs under the session response key: session id, bank counter and
    /// the new PIN's length policy.
    pub fn mac_input(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::CHANGE_PIN, self, MacTag::LEN)
    }
}

impl PinChangeEntered {
    /// The bytes the device MACs under the session MAC key: the whole `ChangePin` (bank MAC
    /// included), both PIN blocks and the device counter.
    pub fn mac_input(&self, request: &ChangePin) -> Result<Vec<u8>, MessageError> {
        device_answer(domain::PIN_CHANGE_ENTERED, request, self, MacTag::LEN)
    }
}

impl VerifyPinChange {
    /// The bytes the bank MACs under the session response key: session id, device counter,
    /// verdict and tries left.
    pub fn mac_input(&self) -> Result<Vec<u8>, MessageError> {
        signed_request(domain::PIN_CHANGE_RESULT, self, MacTag::LEN)
    }
}

impl DeviceWiped {
    /// The bytes the attestation key signs (ECDSA P-256 with SHA-256): the (empty)
    /// `WipeDevice` body, serial and bank sequence.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, MessageError> {
        device_answer(domain::DEVICE_WIPED, &WipeDevice, self, EcdsaSignature::LEN)
    }
}
