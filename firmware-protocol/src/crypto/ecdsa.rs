//! ECDSA P-256 signatures: device attestation, device certificates, out-of-band payment
//! confirmations, bank-signed commands and operator reset tokens.
//!
//! Thin typed wrappers over `p256::ecdsa`. Wire formats are fixed-size and simple enough for a
//! C firmware: public keys are SEC1 uncompressed points (`04 || X || Y`, 65 bytes), signatures
//! are raw `r || s` (64 bytes, both big-endian), secret keys are 32-byte big-endian scalars.
//!
//! Every signature is made over `label || 0x00 || message` with SHA-256 (plain ECDSA-SHA256 of
//! that byte string), where `label` is fixed by the [`SignatureDomain`]. A signature made for one
//! purpose (say a firmware attestation) therefore never verifies as another (an operator reset
//! token), even over the same message bytes. Signing is deterministic (RFC 6979), so no RNG is
//! needed to sign and tests are reproducible.

use alloc::vec::Vec;
use core::fmt;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroizing;

use crate::message::EcPublicKey;

/// Length of a SEC1 uncompressed P-256 public key: `0x04 || X (32) || Y (32)`.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Length of a P-256 secret scalar, big-endian.
pub const SECRET_KEY_LEN: usize = 32;
/// Length of a raw `r || s` signature.
pub const SIGNATURE_LEN: usize = 64;

/// SEC1 tag of an uncompressed point.
const UNCOMPRESSED_TAG: u8 = 0x04;

/// Why bytes are not an acceptable P-256 public key. Shared by every module that takes a
/// peer's public key (pairing, ECDH key agreement, signature verification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    /// The SEC1 encoding of the point at infinity (the single byte `0x00`).
    #[error("the public key is the point at infinity")]
    Identity,
    /// Not 65 bytes long.
    #[error("a public key is {PUBLIC_KEY_LEN} bytes (SEC1 uncompressed), got {len}")]
    WrongLength {
        /// Length given.
        len: usize,
    },
    /// 65 bytes, but the first is not the uncompressed-point tag `0x04`.
    #[error("a public key starts with 0x04 (SEC1 uncompressed), got 0x{prefix:02x}")]
    NotUncompressed {
        /// The first byte given.
        prefix: u8,
    },
    /// The coordinates are out of range or do not satisfy the P-256 curve equation.
    #[error("the public key is not a point on the P-256 curve")]
    NotOnCurve,
}

/// Decodes a SEC1 uncompressed P-256 point, rejecting everything else with a typed error.
pub(crate) fn decode_public_key(bytes: &[u8]) -> Result<p256::PublicKey, PublicKeyError> {
    if bytes == [0x00] {
        return Err(PublicKeyError::Identity);
    }
    if bytes.len() != PUBLIC_KEY_LEN {
        return Err(PublicKeyError::WrongLength { len: bytes.len() });
    }
    match bytes.first() {
        Some(&UNCOMPRESSED_TAG) => {}
        Some(&prefix) => return Err(PublicKeyError::NotUncompressed { prefix }),
        None => return Err(PublicKeyError::WrongLength { len: 0 }),
    }
    // p256 checks each coordinate is below the field modulus and the point is on the curve.
    p256::PublicKey::from_sec1_bytes(bytes).map_err(|_| PublicKeyError::NotOnCurve)
}

/// Encodes a P-256 point as SEC1 uncompressed bytes.
pub(crate) fn encode_public_key(key: &p256::PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let point = key.to_sec1_point(false);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    // An uncompressed point of a valid (non-identity) key is always 65 bytes.
    if let Some(bytes) = point.as_bytes().get(..PUBLIC_KEY_LEN) {
        out.copy_from_slice(bytes);
    }
    out
}

/// What a signature is for. Each domain has a fixed label that is hashed in front of the
/// message, so a signature for one domain never verifies in another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureDomain {
    /// The issuing CA certifies a device's attestation public key and serial.
    DeviceCertificate,
    /// The device attests to facts about itself (firmware hash, integrity report) with its
    /// attestation key.
    DeviceAttestation,
    /// The device approves an out-of-band payment confirmation pushed by the bank.
    OutOfBandConfirmation,
    /// The bank commands the device (remote wipe, unlock after T2 lock).
    BankCommand,
    /// The bank's operator authorises a reset of a tampered device.
    OperatorReset,
}

impl SignatureDomain {
    /// Every domain, for tests and documentation.
    pub const ALL: [SignatureDomain; 5] = [
        SignatureDomain::DeviceCertificate,
        SignatureDomain::DeviceAttestation,
        SignatureDomain::OutOfBandConfirmation,
        SignatureDomain::BankCommand,
        SignatureDomain::OperatorReset,
    ];

    /// The ASCII label signed in front of the message (followed by one `0x00` byte).
    pub const fn label(self) -> &'static str {
        match self {
            SignatureDomain::DeviceCertificate => "PinBridge/v1/sig/device-certificate",
            SignatureDomain::DeviceAttestation => "PinBridge/v1/sig/device-attestation",
            SignatureDomain::OutOfBandConfirmation => "PinBridge/v1/sig/oob-confirmation",
            SignatureDomain::BankCommand => "PinBridge/v1/sig/bank-command",
            SignatureDomain::OperatorReset => "PinBridge/v1/sig/operator-reset",
        }
    }

    /// The exact bytes that are hashed and signed: `label || 0x00 || message`.
    pub fn signed_bytes(self, message: &[u8]) -> Vec<u8> {
        let label = self.label().as_bytes();
        let mut data = Vec::with_capacity(label.len() + 1 + message.len());
        data.extend_from_slice(label);
        data.push(0x00);
        data.extend_from_slice(message);
        data
    }
}

/// Why a key, signature or verification was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EcdsaError {
    /// Secret key bytes that are not 32 bytes or not a scalar in `[1, n-1]`.
    #[error("a P-256 secret key is a 32-byte scalar between 1 and n-1")]
    InvalidSecretKey,
    /// The public key is malformed.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(#[from] PublicKeyError),
    /// The signature is not 64 bytes.
    #[error("a signature is {SIGNATURE_LEN} bytes (r || s), got {len}")]
    InvalidSignatureLength {
        /// Length given.
        len: usize,
    },
    /// `r` or `s` is zero or not below the group order.
    #[error("signature scalars r and s must be between 1 and n-1")]
    InvalidSignatureScalars,
    /// Well-formed, but not a signature by this key over this message in this domain.
    #[error("the signature does not verify for this key, domain and message")]
    VerificationFailed,
}

/// A P-256 signing key (device attestation key, CA key, bank command key, operator key).
/// The scalar is zeroized on drop (by `p256`) and never printed.
#[derive(Clone)]
pub struct EcdsaSigningKey {
    inner: p256::ecdsa::SigningKey,
}

impl EcdsaSigningKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        Self {
            inner: p256::ecdsa::SigningKey::generate_from_rng(rng),
        }
    }

    /// A key from its 32-byte big-endian scalar (as kept in a secure store).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EcdsaError> {
        if bytes.len() != SECRET_KEY_LEN {
            return Err(EcdsaError::InvalidSecretKey);
        }
        p256::ecdsa::SigningKey::from_slice(bytes)
            .map(|inner| Self { inner })
            .map_err(|_| EcdsaError::InvalidSecretKey)
    }

    /// The 32-byte big-endian scalar, for the owner's secure store only.
    pub fn reveal_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        let scalar = Zeroizing::new(self.inner.to_bytes());
        out.copy_from_slice(scalar.as_slice());
        out
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> EcdsaVerifyingKey {
        P256PublicKey::from_point(p256::PublicKey::from(self.inner.verifying_key()))
    }

    /// Signs `label(domain) || 0x00 || message` with ECDSA-SHA256, RFC 6979 deterministic `k`.
    pub fn sign(&self, domain: SignatureDomain, message: &[u8]) -> EcdsaSignature {
        self.sign_exact(&domain.signed_bytes(message))
    }

    /// ECDSA-SHA256 over exactly `data`, without a domain label. Only for the published
    /// RFC 6979 known-answer test: protocol signatures always go through [`Self::sign`].
    fn sign_exact(&self, data: &[u8]) -> EcdsaSignature {
        let signature: p256::ecdsa::Signature = self.inner.sign(data);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(signature.to_bytes().as_slice());
        EcdsaSignature(out)
    }

    /// The scalar for ECDH (same key pair, as DESIGN.md's bank initialisation uses it).
    pub(crate) fn as_nonzero_scalar(&self) -> &p256::NonZeroScalar {
        self.inner.as_nonzero_scalar()
    }
}

impl fmt::Debug for EcdsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EcdsaSigningKey(P-256, <redacted>)")
    }
}

/// A P-256 public key, validated (a point on the curve, not the identity): the protocol's one
/// public-key type. It verifies [`EcdsaSignature`]s (attestation, CA, bank and operator keys)
/// and is the peer key of every ECDH (pairing, initialisation). On the wire it is the 65-byte
/// [`EcPublicKey`] field: `EcPublicKey::from(&key)` and `P256PublicKey::try_from(&field)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct P256PublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    inner: p256::ecdsa::VerifyingKey,
}

/// The key that verifies a signature: a [`P256PublicKey`].
pub type EcdsaVerifyingKey = P256PublicKey;

impl P256PublicKey {
    /// Decodes and validates a SEC1 uncompressed public key (65 bytes, `0x04 || X || Y`).
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, PublicKeyError> {
        Ok(Self::from_point(decode_public_key(bytes)?))
    }

    pub(crate) fn from_point(point: p256::PublicKey) -> Self {
        Self {
            bytes: encode_public_key(&point),
            inner: p256::ecdsa::VerifyingKey::from(point),
        }
    }

    /// The SEC1 uncompressed encoding.
    pub fn to_sec1_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.bytes
    }

    /// The 65 bytes on the wire.
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// Checks that `signature` is this key's signature over `message` in `domain`.
    pub fn verify(
        &self,
        domain: SignatureDomain,
        message: &[u8],
        signature: &EcdsaSignature,
    ) -> Result<(), EcdsaError> {
        self.verify_exact(&domain.signed_bytes(message), signature)
    }

    fn verify_exact(&self, data: &[u8], signature: &EcdsaSignature) -> Result<(), EcdsaError> {
        let signature = signature.to_p256()?;
        self.inner
            .verify(data, &signature)
            .map_err(|_| EcdsaError::VerificationFailed)
    }

    /// The point, for ECDH.
    pub(crate) fn to_public_key(self) -> p256::PublicKey {
        p256::PublicKey::from(self.inner)
    }
}

impl fmt::Debug for P256PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P256PublicKey({})", hex::encode(self.bytes))
    }
}

impl TryFrom<&EcPublicKey> for P256PublicKey {
    type Error = PublicKeyError;

    /// Validates the wire field: the prefix was checked when it was decoded, the point is
    /// checked here.
    fn try_from(field: &EcPublicKey) -> Result<Self, PublicKeyError> {
        Self::from_sec1_bytes(field.as_bytes())
    }
}

/// A raw `r || s` ECDSA P-256 signature. Construction checks only the length; the scalar
/// ranges are checked when it is verified (so any 64 bytes off the wire can be carried).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcdsaSignature([u8; SIGNATURE_LEN]);

impl EcdsaSignature {
    /// Wraps 64 bytes `r || s`.
    pub const fn from_array(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads 64 bytes `r || s` from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EcdsaError> {
        <[u8; SIGNATURE_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| EcdsaError::InvalidSignatureLength { len: bytes.len() })
    }

    /// The 64 bytes `r || s`.
    pub const fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }

    /// The 64 bytes `r || s`, borrowed.
    pub const fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    fn to_p256(self) -> Result<p256::ecdsa::Signature, EcdsaError> {
        p256::ecdsa::Signature::from_slice(&self.0).map_err(|_| EcdsaError::InvalidSignatureScalars)
    }
}

impl fmt::Debug for EcdsaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EcdsaSignature({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    // RFC 6979 appendix A.2.5: the P-256 key and its public point.
    const RFC6979_X: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
    const RFC6979_U: &str = "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6\
                             7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

    fn rfc6979_key() -> EcdsaSigningKey {
        EcdsaSigningKey::from_bytes(&hex::decode(RFC6979_X).unwrap()).unwrap()
    }

    #[test]
    fn rfc6979_a25_public_key() {
        assert_eq!(
            hex::encode(rfc6979_key().verifying_key().to_sec1_bytes()),
            RFC6979_U
        );
    }

    #[test]
    fn rfc6979_a25_sha256_signatures() {
        // RFC 6979 A.2.5, "With SHA-256": messages "sample" and "test".
        let key = rfc6979_key();
        let cases = [
            (
                "sample",
                "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716\
                 f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
            ),
            (
                "test",
                "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367\
                 019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
            ),
        ];
        for (message, expected) in cases {
            let signature = key.sign_exact(message.as_bytes());
            assert_eq!(hex::encode(signature.to_bytes()), expected, "{message}");
            key.verifying_key()
                .verify_exact(message.as_bytes(), &signature)
                .unwrap();
        }
    }

    #[test]
    fn debug_hides_the_secret_scalar() {
        let shown = format!("{:?}", rfc6979_key());
        assert!(!shown.to_lowercase().contains("c9afa9"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
