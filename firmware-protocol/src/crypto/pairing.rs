//! P-256 key agreement: pairing a host (the companion app) with a device, and the bank's
//! initialisation key-encryption key.
//!
//! # Pairing
//!
//! ECDH P-256 with ephemeral keys on both sides, confirmed by a person comparing a 6-digit code
//! that both sides display (the shape of Bluetooth LE Secure Connections numeric comparison).
//! Because a 6-digit code can be brute-forced by a man in the middle who chooses his key or
//! nonce *after* seeing the other side's, the host commits to its key and nonce first and reveals
//! the nonce last:
//!
//! 1. host -> device (PairBegin): host public key, [`HostCommitment`] =
//!    SHA-256(`"PinBridge/v1/pairing/host-commitment"` || 0x00 || host public || host nonce).
//! 2. device -> host (PairChallenge): device public key, device nonce.
//! 3. host: computes the [`PairingOutcome`] and shows the code.
//!    host -> device (PairConfirm): host nonce.
//! 4. device: checks the commitment, computes the outcome, shows the code; the user confirms on
//!    the device keypad; the device answers with [`PairingOutcome::device_confirmation`], which
//!    the host checks before it stores the host pairing key.
//!
//! A man in the middle must fix his key and nonce towards each side before he learns the nonce
//! that randomises that side's code, so each attempt succeeds with probability about 10^-6.
//!
//! Derivations (all byte strings concatenated, public keys SEC1 uncompressed, 65 bytes):
//!
//! - `transcript_hash` = SHA-256(`"PinBridge/v1/pairing/transcript"` || 0x00 || host public ||
//!   device public || host nonce || device nonce)
//! - `shared` = X coordinate of the ECDH point, 32 bytes big-endian
//! - HKDF-SHA256 with salt = `transcript_hash`, IKM = `shared`, then Expand with info:
//!   - `"PinBridge/v1/pairing/host-pairing-key"`, 32 bytes: the [`HostPairingKey`]
//!   - `"PinBridge/v1/pairing/comparison-code"`, 8 bytes: u64 big-endian mod 10^6, the
//!     [`ComparisonCode`]
//!   - `"PinBridge/v1/pairing/device-confirmation"`, 16 bytes: the device's confirmation tag
//! - `host_id` = first 8 bytes of SHA-256(`"PinBridge/v1/pairing/host-id"` || 0x00 ||
//!   `transcript_hash`); public, it names the pairing in every host-verified request.
//!
//! # Initialisation KEK
//!
//! [`derive_initialisation_kek`]: static-ephemeral ECDH between the device's attestation key
//! and a bank key, HKDF-SHA256 (no salt, IKM = shared X, info =
//! `"PinBridge/v1/init/kbpk"` || 0x00 || context) to a 32-byte AES-256
//! [`KeyBlockProtectionKey`] that wraps the TR-31 block carrying the device's first KBPK;
//! the context is [`initialisation_context`] (serial and bank sequence of the Initialise).

use alloc::vec::Vec;
use core::fmt;
use hkdf::Hkdf;
use p256::elliptic_curve::Generate;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::ecdsa::{
    EcdsaSigningKey, EcdsaVerifyingKey, P256PublicKey, PublicKeyError, SECRET_KEY_LEN,
};
use super::keys::{KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial};

/// Length of a pairing nonce.
pub const NONCE_LEN: usize = 16;
/// Length of the host's commitment (SHA-256).
pub const COMMITMENT_LEN: usize = 32;
/// Length of the transcript hash (SHA-256).
pub const TRANSCRIPT_HASH_LEN: usize = 32;
/// Length of a host id.
pub const HOST_ID_LEN: usize = 8;
/// Length of the host pairing key.
pub const HOST_PAIRING_KEY_LEN: usize = 32;
/// Length of the device's key-confirmation tag.
pub const DEVICE_CONFIRMATION_LEN: usize = 16;
/// Number of decimal digits in the comparison code.
pub const COMPARISON_CODE_DIGITS: usize = 6;

/// Hash tag of the host's commitment.
pub const COMMITMENT_TAG: &str = "PinBridge/v1/pairing/host-commitment";
/// Hash tag of the transcript.
pub const TRANSCRIPT_TAG: &str = "PinBridge/v1/pairing/transcript";
/// Hash tag of the host id.
pub const HOST_ID_TAG: &str = "PinBridge/v1/pairing/host-id";
/// HKDF info of the host pairing key.
pub const HOST_PAIRING_KEY_INFO: &str = "PinBridge/v1/pairing/host-pairing-key";
/// HKDF info of the comparison code.
pub const COMPARISON_CODE_INFO: &str = "PinBridge/v1/pairing/comparison-code";
/// HKDF info of the device's confirmation tag.
pub const DEVICE_CONFIRMATION_INFO: &str = "PinBridge/v1/pairing/device-confirmation";
/// HKDF info prefix of the initialisation KEK (followed by 0x00 and the caller's context).
pub const INITIALISATION_KEK_INFO: &str = "PinBridge/v1/init/kbpk";

const CODE_MODULUS: u64 = 1_000_000;

/// Why a pairing step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// The peer's public key is malformed.
    #[error("invalid pairing public key: {0}")]
    InvalidPublicKey(#[from] PublicKeyError),
    /// A fixed secret (tests, vectors) that is not a scalar in `[1, n-1]`.
    #[error("a P-256 secret key is a 32-byte scalar between 1 and n-1")]
    InvalidSecretKey,
    /// A nonce that is not 16 bytes.
    #[error("a pairing nonce is {NONCE_LEN} bytes, got {len}")]
    InvalidNonceLength {
        /// Length given.
        len: usize,
    },
    /// A commitment that is not 32 bytes.
    #[error("a host commitment is {COMMITMENT_LEN} bytes, got {len}")]
    InvalidCommitmentLength {
        /// Length given.
        len: usize,
    },
    /// The host's revealed nonce (or its key) does not match its commitment: a man in the
    /// middle or a broken host. The device must abandon this pairing.
    #[error("the host's nonce does not match its commitment")]
    CommitmentMismatch,
    /// The device's confirmation tag is wrong: the two sides did not derive the same keys.
    #[error("the device's confirmation does not match: the sides derived different keys")]
    ConfirmationMismatch,
    /// A host id that is not 8 bytes.
    #[error("a host id is {HOST_ID_LEN} bytes, got {len}")]
    InvalidHostIdLength {
        /// Length given.
        len: usize,
    },
    /// A host pairing key that is not 32 bytes.
    #[error("a host pairing key is {HOST_PAIRING_KEY_LEN} bytes, got {len}")]
    InvalidHostPairingKeyLength {
        /// Length given.
        len: usize,
    },
}

/// SHA-256(`tag` || 0x00 || parts...). The NUL keeps the tags prefix-free.
fn tagged_hash(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tag.as_bytes());
    hasher.update([0x00]);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The peer's ephemeral key in a pairing: a [`P256PublicKey`], the protocol's one public-key
/// type.
pub type PairingPublicKey = P256PublicKey;

/// A 16-byte pairing nonce (public once revealed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairingNonce([u8; NONCE_LEN]);

impl PairingNonce {
    /// A fresh random nonce.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut bytes = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps 16 bytes.
    pub const fn from_array(bytes: [u8; NONCE_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads 16 bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PairingError> {
        <[u8; NONCE_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| PairingError::InvalidNonceLength { len: bytes.len() })
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; NONCE_LEN] {
        &self.0
    }
}

/// The host's commitment to its public key and nonce, sent before it sees the device's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCommitment([u8; COMMITMENT_LEN]);

impl HostCommitment {
    /// Computes the commitment of a host public key and nonce.
    pub fn compute(host_public: &PairingPublicKey, host_nonce: &PairingNonce) -> Self {
        Self(tagged_hash(
            COMMITMENT_TAG,
            &[host_public.as_bytes(), host_nonce.as_bytes()],
        ))
    }

    /// Wraps 32 bytes.
    pub const fn from_array(bytes: [u8; COMMITMENT_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads 32 bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PairingError> {
        <[u8; COMMITMENT_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| PairingError::InvalidCommitmentLength { len: bytes.len() })
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; COMMITMENT_LEN] {
        &self.0
    }
}

/// The public values both sides hash: who said what, in a fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairingTranscript {
    /// The host's ephemeral public key.
    pub host_public: PairingPublicKey,
    /// The device's ephemeral public key.
    pub device_public: PairingPublicKey,
    /// The host's nonce.
    pub host_nonce: PairingNonce,
    /// The device's nonce.
    pub device_nonce: PairingNonce,
}

impl PairingTranscript {
    /// SHA-256(`TRANSCRIPT_TAG` || 0x00 || host public || device public || host nonce ||
    /// device nonce).
    pub fn hash(&self) -> [u8; TRANSCRIPT_HASH_LEN] {
        tagged_hash(
            TRANSCRIPT_TAG,
            &[
                self.host_public.as_bytes(),
                self.device_public.as_bytes(),
                self.host_nonce.as_bytes(),
                self.device_nonce.as_bytes(),
            ],
        )
    }
}

/// The 6-digit code both sides display for the user to compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ComparisonCode(u32);

impl ComparisonCode {
    /// The code as a number below 1 000 000.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// The six ASCII digits, zero-padded, most significant first (for a device display).
    pub fn digits(self) -> [u8; COMPARISON_CODE_DIGITS] {
        let mut out = [b'0'; COMPARISON_CODE_DIGITS];
        let mut rest = self.0;
        for digit in out.iter_mut().rev() {
            // `rest % 10` is below 10, so the cast cannot truncate.
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out
    }
}

impl fmt::Display for ComparisonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// The public 8-byte name of a pairing, carried in every host-verified request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId([u8; HOST_ID_LEN]);

impl HostId {
    /// Wraps 8 bytes.
    pub const fn from_array(bytes: [u8; HOST_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads 8 bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, PairingError> {
        <[u8; HOST_ID_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| PairingError::InvalidHostIdLength { len: bytes.len() })
    }

    /// The 8 bytes.
    pub const fn as_bytes(&self) -> &[u8; HOST_ID_LEN] {
        &self.0
    }

    /// First 8 bytes of SHA-256(`HOST_ID_TAG` || 0x00 || transcript hash).
    pub fn from_transcript_hash(transcript_hash: &[u8; TRANSCRIPT_HASH_LEN]) -> Self {
        let digest = tagged_hash(HOST_ID_TAG, &[transcript_hash]);
        let mut id = [0u8; HOST_ID_LEN];
        id.copy_from_slice(&digest[..HOST_ID_LEN]);
        Self(id)
    }
}

impl fmt::Debug for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostId({})", hex::encode(self.0))
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The 32-byte secret both sides keep after pairing; every host-verification key is derived
/// from it. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HostPairingKey([u8; HOST_PAIRING_KEY_LEN]);

impl HostPairingKey {
    /// A key loaded from a secure store.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PairingError> {
        <[u8; HOST_PAIRING_KEY_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| PairingError::InvalidHostPairingKeyLength { len: bytes.len() })
    }

    /// The secret bytes, for a secure store only. Named loudly so every disclosure shows.
    pub fn reveal_bytes(&self) -> &[u8; HOST_PAIRING_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for HostPairingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostPairingKey(<redacted>)")
    }
}

impl PartialEq for HostPairingKey {
    /// Constant-time, so tests and callers comparing keys leak nothing by timing.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for HostPairingKey {}

/// Everything a completed pairing yields; identical on both sides.
#[derive(Clone, Debug)]
pub struct PairingOutcome {
    transcript_hash: [u8; TRANSCRIPT_HASH_LEN],
    comparison_code: ComparisonCode,
    host_id: HostId,
    host_pairing_key: HostPairingKey,
    device_confirmation: [u8; DEVICE_CONFIRMATION_LEN],
}

impl PairingOutcome {
    fn derive(shared_x: &[u8], transcript: &PairingTranscript) -> Self {
        let transcript_hash = transcript.hash();
        let hkdf = Hkdf::<Sha256>::new(Some(&transcript_hash), shared_x);

        let mut key = HostPairingKey([0u8; HOST_PAIRING_KEY_LEN]);
        let mut code = [0u8; 8];
        let mut device_confirmation = [0u8; DEVICE_CONFIRMATION_LEN];
        // Every length is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        let _ = hkdf.expand(HOST_PAIRING_KEY_INFO.as_bytes(), &mut key.0);
        let _ = hkdf.expand(COMPARISON_CODE_INFO.as_bytes(), &mut code);
        let _ = hkdf.expand(
            DEVICE_CONFIRMATION_INFO.as_bytes(),
            &mut device_confirmation,
        );

        // 10^6 / 2^64 bias: negligible. The remainder is below 10^6, so it fits in a u32.
        let code = (u64::from_be_bytes(code) % CODE_MODULUS) as u32;
        Self {
            transcript_hash,
            comparison_code: ComparisonCode(code),
            host_id: HostId::from_transcript_hash(&transcript_hash),
            host_pairing_key: key,
            device_confirmation,
        }
    }

    /// SHA-256 over the transcript, the HKDF salt.
    pub fn transcript_hash(&self) -> &[u8; TRANSCRIPT_HASH_LEN] {
        &self.transcript_hash
    }

    /// The 6-digit code to display.
    pub fn comparison_code(&self) -> ComparisonCode {
        self.comparison_code
    }

    /// The public name of this pairing.
    pub fn host_id(&self) -> HostId {
        self.host_id
    }

    /// The shared secret to store (the host encrypted at rest, the device in its secure store).
    pub fn host_pairing_key(&self) -> &HostPairingKey {
        &self.host_pairing_key
    }

    /// The tag the device sends once the user has confirmed the code on the device.
    pub fn device_confirmation(&self) -> &[u8; DEVICE_CONFIRMATION_LEN] {
        &self.device_confirmation
    }

    /// Host side: checks the device's confirmation tag in constant time. Store the host
    /// pairing key only after this succeeds.
    pub fn check_device_confirmation(&self, received: &[u8]) -> Result<(), PairingError> {
        if bool::from(self.device_confirmation.as_slice().ct_eq(received)) {
            Ok(())
        } else {
            Err(PairingError::ConfirmationMismatch)
        }
    }
}

/// An ephemeral P-256 key pair; the scalar is zeroized on drop (by `p256`).
struct EphemeralKeyPair {
    secret: p256::SecretKey,
    public: PairingPublicKey,
}

impl EphemeralKeyPair {
    fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        Self::from_secret(p256::SecretKey::generate_from_rng(rng))
    }

    fn from_secret_bytes(bytes: &[u8; SECRET_KEY_LEN]) -> Result<Self, PairingError> {
        p256::SecretKey::from_slice(bytes)
            .map(Self::from_secret)
            .map_err(|_| PairingError::InvalidSecretKey)
    }

    fn from_secret(secret: p256::SecretKey) -> Self {
        let public = PairingPublicKey::from_point(secret.public_key());
        Self { secret, public }
    }

    fn shared_x(&self, peer: &PairingPublicKey) -> Zeroizing<[u8; 32]> {
        let shared = self.secret.diffie_hellman(&peer.to_public_key());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(shared.raw_secret_bytes().as_slice());
        out
    }
}

/// The host's side of a pairing, from PairBegin to the outcome.
pub struct HostPairing {
    keys: EphemeralKeyPair,
    nonce: PairingNonce,
}

impl HostPairing {
    /// Fresh ephemeral key and nonce.
    pub fn start(rng: &mut impl rand_core::CryptoRng) -> Self {
        let keys = EphemeralKeyPair::generate(rng);
        let nonce = PairingNonce::generate(rng);
        Self { keys, nonce }
    }

    /// A pairing from a fixed secret scalar and nonce: for known-answer tests only, never in a
    /// real pairing (the key must be fresh each time).
    pub fn from_fixed(
        secret: &[u8; SECRET_KEY_LEN],
        nonce: PairingNonce,
    ) -> Result<Self, PairingError> {
        Ok(Self {
            keys: EphemeralKeyPair::from_secret_bytes(secret)?,
            nonce,
        })
    }

    /// The host's public key (PairBegin).
    pub fn public_key(&self) -> &PairingPublicKey {
        &self.keys.public
    }

    /// The commitment (PairBegin).
    pub fn commitment(&self) -> HostCommitment {
        HostCommitment::compute(&self.keys.public, &self.nonce)
    }

    /// The nonce, revealed only after the device's challenge has arrived (PairConfirm).
    pub fn nonce(&self) -> &PairingNonce {
        &self.nonce
    }

    /// Derives the outcome from the device's PairChallenge. Read [`Self::nonce`] first: this
    /// consumes the ephemeral key.
    pub fn finish(
        self,
        device_public: &PairingPublicKey,
        device_nonce: &PairingNonce,
    ) -> PairingOutcome {
        let transcript = PairingTranscript {
            host_public: self.keys.public,
            device_public: *device_public,
            host_nonce: self.nonce,
            device_nonce: *device_nonce,
        };
        PairingOutcome::derive(self.keys.shared_x(device_public).as_slice(), &transcript)
    }
}

impl fmt::Debug for HostPairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostPairing")
            .field("public_key", &self.keys.public)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The device's side of a pairing, from PairBegin to the outcome.
pub struct DevicePairing {
    keys: EphemeralKeyPair,
    nonce: PairingNonce,
    host_public: PairingPublicKey,
    host_commitment: HostCommitment,
}

impl DevicePairing {
    /// Answers a PairBegin with a fresh ephemeral key and nonce.
    pub fn respond(
        rng: &mut impl rand_core::CryptoRng,
        host_public: PairingPublicKey,
        host_commitment: HostCommitment,
    ) -> Self {
        let keys = EphemeralKeyPair::generate(rng);
        let nonce = PairingNonce::generate(rng);
        Self {
            keys,
            nonce,
            host_public,
            host_commitment,
        }
    }

    /// A pairing from a fixed secret scalar and nonce: for known-answer tests only.
    pub fn from_fixed(
        secret: &[u8; SECRET_KEY_LEN],
        nonce: PairingNonce,
        host_public: PairingPublicKey,
        host_commitment: HostCommitment,
    ) -> Result<Self, PairingError> {
        Ok(Self {
            keys: EphemeralKeyPair::from_secret_bytes(secret)?,
            nonce,
            host_public,
            host_commitment,
        })
    }

    /// The device's public key (PairChallenge).
    pub fn public_key(&self) -> &PairingPublicKey {
        &self.keys.public
    }

    /// The device's nonce (PairChallenge).
    pub fn nonce(&self) -> &PairingNonce {
        &self.nonce
    }

    /// Checks the host's revealed nonce (PairConfirm) against its commitment and derives the
    /// outcome. On [`PairingError::CommitmentMismatch`] the pairing is over: the state is
    /// consumed either way.
    pub fn finish(self, host_nonce: &PairingNonce) -> Result<PairingOutcome, PairingError> {
        let expected = HostCommitment::compute(&self.host_public, host_nonce);
        if !bool::from(expected.0.ct_eq(&self.host_commitment.0)) {
            return Err(PairingError::CommitmentMismatch);
        }
        let transcript = PairingTranscript {
            host_public: self.host_public,
            device_public: self.keys.public,
            host_nonce: *host_nonce,
            device_nonce: self.nonce,
        };
        Ok(PairingOutcome::derive(
            self.keys.shared_x(&self.host_public).as_slice(),
            &transcript,
        ))
    }
}

impl fmt::Debug for DevicePairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevicePairing")
            .field("public_key", &self.keys.public)
            .field("host_public", &self.host_public)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The `context` of [`derive_initialisation_kek`] for an Initialise (PROTOCOL.md §4.3): the
/// first two fields of the Initialise body exactly as encoded, `serial length (u16 BE) ||
/// serial (UTF-8) || sequence (u64 BE)`. The bank sequence is fresh for every signed command,
/// so a KEK never serves two initialisations. A serial is at most 32 bytes on the wire; a
/// longer one (never valid) has its length saturated rather than wrapped.
pub fn initialisation_context(device_serial: &str, sequence: u64) -> Vec<u8> {
    let serial = device_serial.as_bytes();
    let len = u16::try_from(serial.len()).unwrap_or(u16::MAX);
    let mut context = Vec::with_capacity(2 + serial.len() + 8);
    context.extend_from_slice(&len.to_be_bytes());
    context.extend_from_slice(serial);
    context.extend_from_slice(&sequence.to_be_bytes());
    context
}

/// The key-encryption key for bank initialisation (DESIGN.md §3): ECDH between `own_secret`
/// and `peer_public`, then HKDF-SHA256 with no salt, IKM = the shared X coordinate and info =
/// `"PinBridge/v1/init/kbpk"` || 0x00 || `context`, to 32 bytes: an AES-256 key-block
/// protection key for the TR-31 block that carries the device's first KBPK.
///
/// The device passes its attestation key and the bank's public key; the bank passes its key
/// (fresh per initialisation) and the attestation public key from the device certificate. Both
/// must pass the same `context`: the protocol's is [`initialisation_context`].
pub fn derive_initialisation_kek(
    own_secret: &EcdsaSigningKey,
    peer_public: &EcdsaVerifyingKey,
    context: &[u8],
) -> KeyBlockProtectionKey {
    let shared = p256::ecdh::diffie_hellman(
        own_secret.as_nonzero_scalar(),
        peer_public.to_public_key().as_affine(),
    );
    let hkdf = Hkdf::<Sha256>::new(None, shared.raw_secret_bytes().as_slice());
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is within HKDF-SHA256's limit, so expand cannot fail.
    let _ = hkdf.expand_multi_info(
        &[INITIALISATION_KEK_INFO.as_bytes(), &[0x00], context],
        okm.as_mut_slice(),
    );
    KeyBlockProtectionKey::from_material(aes256_material(&okm))
}

/// AES-256 key material from 32 derived bytes.
#[allow(clippy::expect_used)] // The length is fixed by the type: 32 is always an AES length.
pub(super) fn aes256_material(bytes: &[u8; 32]) -> KeyMaterial {
    KeyMaterial::new(KeyAlgorithm::Aes, bytes).expect("32 bytes is an AES-256 key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array32(hex_str: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&hex::decode(hex_str).unwrap());
        out
    }

    #[test]
    fn ecdh_shared_x_matches_rfc5903_section_8_1() {
        let i = EphemeralKeyPair::from_secret_bytes(&array32(
            "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
        ))
        .unwrap();
        let r = EphemeralKeyPair::from_secret_bytes(&array32(
            "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
        ))
        .unwrap();
        let expected = "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de";
        assert_eq!(hex::encode(i.shared_x(&r.public).as_slice()), expected);
        assert_eq!(hex::encode(r.shared_x(&i.public).as_slice()), expected);
    }

    #[test]
    fn comparison_code_is_zero_padded() {
        assert_eq!(ComparisonCode(42).digits(), *b"000042");
        assert_eq!(alloc::format!("{}", ComparisonCode(42)), "000042");
        assert_eq!(ComparisonCode(999_999).digits(), *b"999999");
    }
}
