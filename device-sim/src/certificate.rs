//! The issuing CA and the device certificate it signs at manufacture.
//!
//! PROTOCOL.md says only that `Info.certificate` is "the issuing CA's certificate for the
//! attestation key". The layout is the one the sandbox bank verifies (bank-sandbox README,
//! "Device certificate"), so a simulated device is accepted by it:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `PBDC` |
//! | 4 | 1 | format version `0x01` |
//! | 5 | 1 | serial length n, 1..=32 |
//! | 6 | n | serial, UTF-8 (the device's `Info.serial`) |
//! | 6+n | 65 | attestation public key, SEC1 uncompressed |
//! | 71+n | 8 | not before, u64 BE Unix seconds |
//! | 79+n | 8 | not after, u64 BE Unix seconds |
//! | 87+n | 8 | issuer key id: first 8 bytes of SHA-256 of the CA public key (SEC1, 65 bytes) |
//! | 95+n | 64 | signature `r || s` by the CA key, ECDSA P-256/SHA-256 in domain `DeviceCertificate` (`"PinBridge/v1/sig/device-certificate" 00 || bytes 0..95+n`) |
//!
//! Total 159 + n bytes; nothing may follow.

use std::fmt;
use std::path::Path;

use firmware_protocol::crypto::ecdsa::{
    EcdsaError, EcdsaSignature, EcdsaSigningKey, EcdsaVerifyingKey, PUBLIC_KEY_LEN, SIGNATURE_LEN,
    SignatureDomain,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The magic bytes that open a certificate.
pub const MAGIC: &[u8; 4] = b"PBDC";
/// Version byte of the layout above.
pub const CERTIFICATE_FORMAT: u8 = 1;
/// Longest serial.
pub const MAX_SERIAL_LEN: usize = 32;
/// Length of an issuer key id.
pub const KEY_ID_LEN: usize = 8;

/// Why a certificate or CA file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Not a certificate of this format (magic or version).
    #[error("not a PinBridge device certificate (magic or version)")]
    NotACertificate,
    /// Shorter or longer than its fields say.
    #[error("certificate is {len} bytes; its fields need {expected}")]
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes the fields need.
        expected: usize,
    },
    /// The serial is not 1..=32 bytes of UTF-8.
    #[error("certificate serial is not 1..=32 bytes of UTF-8")]
    Serial,
    /// Signed by another CA than the one given.
    #[error("certificate issuer {0} is not this CA")]
    UnknownIssuer(String),
    /// A key or the signature is malformed, or the signature does not verify.
    #[error("certificate signature or key: {0}")]
    Ecdsa(#[from] EcdsaError),
    /// The CA file could not be read or written.
    #[error("CA key file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// The key id of a CA public key: first 8 bytes of SHA-256 of its SEC1 encoding.
pub fn key_id(ca_public_key: &EcdsaVerifyingKey) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::digest(ca_public_key.to_sec1_bytes());
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// A decoded device certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// Device serial.
    pub serial: String,
    /// The device's attestation public key (SEC1 uncompressed).
    pub attestation_public_key: [u8; PUBLIC_KEY_LEN],
    /// Valid from, Unix seconds.
    pub not_before: u64,
    /// Valid until, Unix seconds.
    pub not_after: u64,
    /// Which CA signed it.
    pub issuer_key_id: [u8; KEY_ID_LEN],
    /// The CA's signature.
    pub signature: EcdsaSignature,
}

fn field<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], CertificateError> {
    bytes
        .get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(CertificateError::Length {
            len: bytes.len(),
            expected: at + N,
        })
}

impl DeviceCertificate {
    /// Issues a certificate for `serial` and `attestation_public_key`, valid from
    /// `not_before` to `not_after` (Unix seconds).
    pub fn issue(
        ca: &CaKey,
        serial: &str,
        attestation_public_key: &EcdsaVerifyingKey,
        not_before: u64,
        not_after: u64,
    ) -> Result<Self, CertificateError> {
        if serial.is_empty() || serial.len() > MAX_SERIAL_LEN {
            return Err(CertificateError::Serial);
        }
        let mut certificate = Self {
            serial: serial.into(),
            attestation_public_key: attestation_public_key.to_sec1_bytes(),
            not_before,
            not_after,
            issuer_key_id: key_id(&ca.public_key()),
            signature: EcdsaSignature::from_array([0; SIGNATURE_LEN]),
        };
        certificate.signature = ca
            .signing_key
            .sign(SignatureDomain::DeviceCertificate, &certificate.tbs());
        Ok(certificate)
    }

    /// Everything the signature covers.
    fn tbs(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(159 + self.serial.len());
        out.extend_from_slice(MAGIC);
        out.push(CERTIFICATE_FORMAT);
        // Serials are checked to be at most 32 bytes.
        out.push(u8::try_from(self.serial.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.serial.as_bytes());
        out.extend_from_slice(&self.attestation_public_key);
        out.extend_from_slice(&self.not_before.to_be_bytes());
        out.extend_from_slice(&self.not_after.to_be_bytes());
        out.extend_from_slice(&self.issuer_key_id);
        out
    }

    /// The wire bytes (`Info.certificate`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.tbs();
        out.extend_from_slice(self.signature.as_bytes());
        out
    }

    /// Decodes the wire bytes strictly, without checking the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        if bytes.get(..4) != Some(MAGIC.as_slice()) || bytes.get(4) != Some(&CERTIFICATE_FORMAT) {
            return Err(CertificateError::NotACertificate);
        }
        let n = usize::from(*bytes.get(5).ok_or(CertificateError::NotACertificate)?);
        if n == 0 || n > MAX_SERIAL_LEN {
            return Err(CertificateError::Serial);
        }
        let expected = 159 + n;
        if bytes.len() != expected {
            return Err(CertificateError::Length {
                len: bytes.len(),
                expected,
            });
        }
        let serial = bytes.get(6..6 + n).ok_or(CertificateError::Serial)?;
        let serial = std::str::from_utf8(serial).map_err(|_| CertificateError::Serial)?;
        Ok(Self {
            serial: serial.into(),
            attestation_public_key: field(bytes, 6 + n)?,
            not_before: u64::from_be_bytes(field(bytes, 71 + n)?),
            not_after: u64::from_be_bytes(field(bytes, 79 + n)?),
            issuer_key_id: field(bytes, 87 + n)?,
            signature: EcdsaSignature::from_array(field(bytes, 95 + n)?),
        })
    }

    /// Decodes and checks issuer and signature against `ca_public_key` (not the validity
    /// period: see [`DeviceCertificate::is_valid_at`]).
    pub fn verify(
        bytes: &[u8],
        ca_public_key: &EcdsaVerifyingKey,
    ) -> Result<Self, CertificateError> {
        let certificate = Self::from_bytes(bytes)?;
        if certificate.issuer_key_id != key_id(ca_public_key) {
            return Err(CertificateError::UnknownIssuer(hex::encode(
                certificate.issuer_key_id,
            )));
        }
        EcdsaVerifyingKey::from_sec1_bytes(&certificate.attestation_public_key)?;
        ca_public_key.verify(
            SignatureDomain::DeviceCertificate,
            &certificate.tbs(),
            &certificate.signature,
        )?;
        Ok(certificate)
    }

    /// Whether `now` (Unix seconds) is within the validity period.
    pub fn is_valid_at(&self, now: u64) -> bool {
        (self.not_before..=self.not_after).contains(&now)
    }
}

/// The issuing CA's key pair.
#[derive(Clone)]
pub struct CaKey {
    signing_key: EcdsaSigningKey,
}

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaKey({:?}, <redacted>)", self.public_key())
    }
}

/// The CA key file (JSON): what `pinpad-sim ca new` writes.
#[derive(Serialize, Deserialize, Zeroize)]
struct CaFile {
    kind: String,
    /// The public key, SEC1 uncompressed hex: what the bank trusts.
    public_key: String,
    /// The secret scalar, hex. Keep the file private.
    secret_key: String,
}

const CA_FILE_KIND: &str = "pinbridge-issuing-ca";

impl CaKey {
    /// A fresh CA key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        Self {
            signing_key: EcdsaSigningKey::generate(rng),
        }
    }

    /// From the 32-byte secret scalar.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        Ok(Self {
            signing_key: EcdsaSigningKey::from_bytes(bytes)?,
        })
    }

    /// The public key the bank trusts.
    pub fn public_key(&self) -> EcdsaVerifyingKey {
        self.signing_key.verifying_key()
    }

    /// The CA key file text (JSON, secret included).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut file = CaFile {
            kind: CA_FILE_KIND.into(),
            public_key: hex::encode(self.public_key().to_sec1_bytes()),
            secret_key: hex::encode(*self.signing_key.reveal_bytes()),
        };
        let text = serde_json::to_string_pretty(&file).unwrap_or_default();
        file.zeroize();
        Zeroizing::new(text + "\n")
    }

    /// Parses a CA key file.
    pub fn from_file_text(text: &str) -> Result<Self, CertificateError> {
        let bad = |reason: &str| CertificateError::CaFile {
            path: String::new(),
            reason: reason.into(),
        };
        let mut file: CaFile =
            serde_json::from_str(text).map_err(|_| bad("not a pinpad-sim CA key file (JSON)"))?;
        let result = (|| {
            if file.kind != CA_FILE_KIND {
                return Err(bad("not a pinpad-sim CA key file (kind)"));
            }
            let secret = Zeroizing::new(
                hex::decode(&file.secret_key).map_err(|_| bad("secret_key is not hex"))?,
            );
            let key = Self::from_secret_bytes(&secret)?;
            if hex::encode(key.public_key().to_sec1_bytes()) != file.public_key.to_lowercase() {
                return Err(bad("public_key does not match secret_key"));
            }
            Ok(key)
        })();
        file.zeroize();
        result
    }

    /// Reads a CA key file.
    pub fn load(path: &Path) -> Result<Self, CertificateError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            CertificateError::CaFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })?);
        Self::from_file_text(&text).map_err(|e| match e {
            CertificateError::CaFile { reason, .. } => CertificateError::CaFile {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn certificate_round_trip_and_verification() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let ca = CaKey::generate(&mut rng);
        let device = EcdsaSigningKey::generate(&mut rng);
        let certificate =
            DeviceCertificate::issue(&ca, "PP-0001", &device.verifying_key(), 100, 200).unwrap();
        let bytes = certificate.to_bytes();
        assert_eq!(bytes.len(), 159 + 7);
        assert_eq!(&bytes[..6], b"PBDC\x01\x07");
        assert!(certificate.is_valid_at(150) && !certificate.is_valid_at(201));
        assert_eq!(
            DeviceCertificate::verify(&bytes, &ca.public_key()).unwrap(),
            certificate
        );

        let other_ca = CaKey::generate(&mut rng);
        assert!(DeviceCertificate::verify(&bytes, &other_ca.public_key()).is_err());
        let mut forged = bytes.clone();
        forged[6] ^= 1; // the serial
        assert!(DeviceCertificate::verify(&forged, &ca.public_key()).is_err());
        assert!(DeviceCertificate::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(DeviceCertificate::from_bytes(&[]).is_err());
    }

    #[test]
    fn ca_file_round_trip_refuses_mismatched_public_key() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let ca = CaKey::generate(&mut rng);
        let text = ca.to_file_text();
        let back = CaKey::from_file_text(&text).unwrap();
        assert_eq!(back.public_key(), ca.public_key());
        let other = CaKey::generate(&mut rng);
        let mixed = text.replace(
            &hex::encode(ca.public_key().to_sec1_bytes()),
            &hex::encode(other.public_key().to_sec1_bytes()),
        );
        assert!(CaKey::from_file_text(&mixed).is_err());
        assert!(!format!("{ca:?}").contains(&text[text.find("secret_key").unwrap() + 14..][..16]));
    }
}
