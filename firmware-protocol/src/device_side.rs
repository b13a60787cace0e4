//! The PIN pad's side of the bank-protected payloads (PROTOCOL.md §3.6, §4.3): unwrap the
//! key-block protection key from `Initialise`, unwrap typed keys from key blocks, load the
//! session keys of `LoadSessionKeys`, and build the answers the bank checks (`ChallengeResponse`,
//! `PaymentApproved`, `IntegrityReport`, `ConfirmationSignature`).
//!
//! One home for these rules: the simulated PIN pad, the bank's load generator and every test
//! device call them, so no two devices can disagree on what the bank sent or how to answer it.
//! What a device *does* with the result (state, screens, indicator, counters it persists) is
//! its own business and stays out of here.

use crate::crypto::ecdsa::{EcdsaSigningKey, P256PublicKey, PublicKeyError};
use crate::crypto::kcv::{self, KcvError, KcvMethod};
use crate::crypto::keys::{
    Key, KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial, MacKey, PinKey, Usage,
};
use crate::crypto::pairing::{derive_initialisation_kek, initialisation_context};
use crate::crypto::pinblock::{self, Pan, Pin, PinBlockError};
use crate::crypto::tr31::{self, Tr31Error};
use crate::message::{
    ApprovePayment, BankChallenge, ChallengeResponse, ChangePin, ConfirmationSignature,
    EcdsaSignature, GetIntegrityReport, Initialise, IntegrityReport, Kcv, LoadSessionKeys, MacTag,
    MessageError, Nonce, PaymentApproved, PinBlock, PinBlockFormat, PinChangeEntered, SealError,
    SessionId, Sha256Digest, SignConfirmation, StatusCode,
};
use alloc::string::String;
use core::fmt;
use subtle::ConstantTimeEq;

/// Why a device refuses a bank payload, or could not build its answer. Each maps to the
/// status the device answers with ([`PayloadError::status_code`]); `what` names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// `Initialise.bank_public_key` is not a P-256 point.
    #[error("bank_public_key: {0}")]
    BankPublicKey(PublicKeyError),
    /// The key block does not unwrap (format, MAC, length) under the protection key.
    #[error("{what}: {source}")]
    KeyBlock {
        /// The field.
        what: &'static str,
        /// What TR-31 found.
        source: Tr31Error,
    },
    /// The key block unwrapped, but is not for the usage the field asks for.
    #[error("{what}: {source}")]
    Usage {
        /// The field.
        what: &'static str,
        /// What TR-31 found.
        source: Tr31Error,
    },
    /// A key that is not AES: a PinBridge device takes AES keys only.
    #[error("{what}: this device takes AES keys only")]
    NotAes {
        /// The field.
        what: &'static str,
    },
    /// The key's check value is not the one the bank sent.
    #[error("{what}: {source}")]
    Kcv {
        /// The field.
        what: &'static str,
        /// How it differs.
        source: KcvError,
    },
    /// Two of the session's PIN, MAC and response keys are the same key.
    #[error("PIN, MAC and response keys must all differ")]
    KeysNotDistinct,
    /// A message did not encode (an internal fault of the answer being built).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A MAC could not be made.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The PIN block could not be made.
    #[error(transparent)]
    PinBlock(#[from] PinBlockError),
}

impl PayloadError {
    /// The status a device answers this refusal with (PROTOCOL.md §3.5).
    pub fn status_code(&self) -> StatusCode {
        match self {
            PayloadError::BankPublicKey(_) => StatusCode::MalformedMessage,
            PayloadError::KeyBlock { .. } => StatusCode::KeyBlockRejected,
            PayloadError::Usage {
                source: Tr31Error::WrongUsage { .. } | Tr31Error::ModeOfUseNotAllowed { .. },
                ..
            } => StatusCode::WrongKeyUsage,
            PayloadError::Usage { .. } => StatusCode::KeyBlockRejected,
            PayloadError::NotAes { .. } => StatusCode::UnsupportedKeyAlgorithm,
            PayloadError::Kcv { .. } => StatusCode::KcvMismatch,
            PayloadError::KeysNotDistinct => StatusCode::KeysNotDistinct,
            PayloadError::Message(_) | PayloadError::Seal(_) | PayloadError::PinBlock(_) => {
                StatusCode::InternalError
            }
        }
    }
}

/// Unwraps the key of `wrapped` under `kbpk` as a key of usage `U`, in this order: the key
/// block (refused: `KeyBlockRejected`), its usage (`WrongKeyUsage`), AES only
/// (`UnsupportedKeyAlgorithm`), the check value the bank sent (`KcvMismatch`). `what` names the
/// field in the error.
pub fn unwrap_key<U: Usage>(
    kbpk: &KeyBlockProtectionKey,
    wrapped: &crate::message::WrappedKey,
    what: &'static str,
) -> Result<Key<U>, PayloadError> {
    let unwrapped = tr31::unwrap(kbpk, wrapped.key_block.as_str())
        .map_err(|source| PayloadError::KeyBlock { what, source })?;
    let key = unwrapped
        .into_key::<U>()
        .map_err(|source| PayloadError::Usage { what, source })?;
    if key.algorithm() != KeyAlgorithm::Aes {
        return Err(PayloadError::NotAes { what });
    }
    let method = KcvMethod::standard_for(key.algorithm());
    kcv::verify(key.material(), method, wrapped.kcv.as_bytes())
        .map_err(|source| PayloadError::Kcv { what, source })?;
    Ok(key)
}

/// The key-block protection key of an `Initialise` (PROTOCOL.md §4.3): the KEK is derived by
/// ECDH between the device's attestation key and `bank_public_key`, with the context
/// [`initialisation_context`] of the request's serial and sequence; the KBPK is unwrapped under
/// it like any key ([`unwrap_key`]). The caller has checked the bank's signature, the serial
/// and the sequence first.
pub fn unwrap_kbpk(
    attestation: &EcdsaSigningKey,
    request: &Initialise,
) -> Result<KeyBlockProtectionKey, PayloadError> {
    let bank_public =
        P256PublicKey::try_from(&request.bank_public_key).map_err(PayloadError::BankPublicKey)?;
    let kek = derive_initialisation_kek(
        attestation,
        &bank_public,
        &initialisation_context(&request.device_serial, request.sequence),
    );
    unwrap_key(&kek, &request.kbpk, "kbpk")
}

/// The check value a device answers for `material` (`Initialised.kcv`): the standard method of
/// its algorithm (CMAC for AES).
pub fn kcv_of(material: &KeyMaterial) -> Result<Kcv, PayloadError> {
    let value = kcv::compute(material, KcvMethod::standard_for(material.algorithm()));
    Ok(Kcv::new(value.as_bytes())?)
}

/// An ISO 9564 format 4 PIN block of `pin` for `pan` under `pin_key`, as every PIN block a
/// PinBridge device sends (`Enrolled`, `PaymentApproved`, `PinChangeEntered`).
pub fn iso4_pin_block(
    pin_key: &PinKey,
    pin: &Pin,
    pan: &Pan,
    rng: &mut (impl rand_core::CryptoRng + ?Sized),
) -> Result<PinBlock, PayloadError> {
    let block =
        pinblock::encrypt_pin(pinblock::PinBlockFormat::Iso4, pin, Some(pan), pin_key, rng)?;
    Ok(PinBlock::new(PinBlockFormat::Iso4, block.as_bytes())?)
}

/// The session keys of a `LoadSessionKeys`, typed: PIN key (usage `P0`), MAC key (the device's
/// MACs) and response key (the bank's MACs). Zeroized on drop with their keys.
pub struct SessionKeys {
    /// The session they belong to.
    pub id: SessionId,
    /// Enciphers the PIN blocks.
    pub pin_key: PinKey,
    /// MACs the device's answers.
    pub mac_key: MacKey,
    /// Checks the bank's MACs.
    pub response_key: MacKey,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Unwraps all three keys under `kbpk` ([`unwrap_key`], PIN, MAC, response in that order)
    /// and checks they are pairwise distinct (`KeysNotDistinct`). All or nothing
    /// (CN102004977A step 104): on any error the caller keeps its old keys.
    pub fn unwrap(
        kbpk: &KeyBlockProtectionKey,
        request: &LoadSessionKeys,
    ) -> Result<Self, PayloadError> {
        let pin_key: PinKey = unwrap_key(kbpk, &request.pin_key, "pin_key")?;
        let mac_key: MacKey = unwrap_key(kbpk, &request.mac_key, "mac_key")?;
        let response_key: MacKey = unwrap_key(kbpk, &request.response_key, "response_key")?;
        let same =
            |a: &KeyMaterial, b: &KeyMaterial| bool::from(a.reveal_bytes().ct_eq(b.reveal_bytes()));
        if same(pin_key.material(), mac_key.material())
            || same(pin_key.material(), response_key.material())
            || same(mac_key.material(), response_key.material())
        {
            return Err(PayloadError::KeysNotDistinct);
        }
        Ok(Self {
            id: request.session_id,
            pin_key,
            mac_key,
            response_key,
        })
    }

    /// The answer to the bank's challenge: `device_nonce` (fresh, from the device's RNG) and
    /// the MAC under the session MAC key.
    pub fn challenge_response(
        &self,
        challenge: &BankChallenge,
        device_nonce: Nonce,
    ) -> Result<ChallengeResponse, PayloadError> {
        let mut response = ChallengeResponse {
            device_nonce,
            mac: MacTag([0; MacTag::LEN]),
        };
        response.seal_mac(&self.mac_key, challenge)?;
        Ok(response)
    }

    /// The payment approval once the customer entered `pin`: the PIN block under the session
    /// PIN key ([`iso4_pin_block`]), the device counter, and the MAC under the session MAC key
    /// over the whole request and the answer. The caller has checked the session, the bank
    /// counter and the bank MAC ([`ApprovePayment::bank_mac_verifies`]) before showing the
    /// payment.
    pub fn approve_payment(
        &self,
        request: &ApprovePayment,
        pin: &Pin,
        pan: &Pan,
        device_counter: u64,
        rng: &mut (impl rand_core::CryptoRng + ?Sized),
    ) -> Result<PaymentApproved, PayloadError> {
        let mut approved = PaymentApproved {
            pin_block: iso4_pin_block(&self.pin_key, pin, pan, rng)?,
            device_counter,
            mac: MacTag([0; MacTag::LEN]),
        };
        approved.seal_mac(&self.mac_key, request)?;
        Ok(approved)
    }

    /// The answer to the owner's `ChangePin` once the three PIN entries are done: the current
    /// and the new PIN's blocks under the session PIN key, the device counter, and the MAC under
    /// the session MAC key. The caller has checked the request as for a payment.
    pub fn pin_change_entered(
        &self,
        request: &ChangePin,
        current: &Pin,
        new: &Pin,
        pan: &Pan,
        device_counter: u64,
        rng: &mut (impl rand_core::CryptoRng + ?Sized),
    ) -> Result<PinChangeEntered, PayloadError> {
        let mut entered = PinChangeEntered {
            old_pin_block: iso4_pin_block(&self.pin_key, current, pan, rng)?,
            new_pin_block: iso4_pin_block(&self.pin_key, new, pan, rng)?,
            device_counter,
            mac: MacTag([0; MacTag::LEN]),
        };
        entered.seal_mac(&self.mac_key, request)?;
        Ok(entered)
    }
}

/// The device's signed integrity report for `request` (the bank's nonce): serial, firmware
/// version and the measured firmware hash, signed by the attestation key in
/// [`IntegrityReport::SIGNATURE_DOMAIN`].
pub fn integrity_report(
    attestation: &EcdsaSigningKey,
    request: &GetIntegrityReport,
    device_serial: String,
    firmware_version: String,
    firmware_hash: [u8; 32],
) -> Result<IntegrityReport, PayloadError> {
    let mut report = IntegrityReport {
        device_serial,
        firmware_version,
        firmware_hash: Sha256Digest(firmware_hash),
        signature: EcdsaSignature::from_array([0; 64]),
    };
    let signed = report.signed_bytes(request)?;
    report.signature = attestation.sign(IntegrityReport::SIGNATURE_DOMAIN, &signed);
    Ok(report)
}

/// The signature of an out-of-band confirmation the user approved on the device, by the
/// attestation key in [`SignConfirmation::SIGNATURE_DOMAIN`].
pub fn confirmation_signature(
    attestation: &EcdsaSigningKey,
    request: &SignConfirmation,
) -> Result<ConfirmationSignature, PayloadError> {
    let signed = request.signed_bytes()?;
    Ok(ConfirmationSignature {
        signature: attestation.sign(SignConfirmation::SIGNATURE_DOMAIN, &signed),
    })
}
