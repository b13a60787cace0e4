//! The issuing CA and the device certificate it signs at manufacture.
//!
//! PROTOCOL.md says only that `Info.certificate` is "the issuing CA's certificate for the
//! attestation key". This simulator fixes the bytes (README "Protocol decisions"):
//!
//! ```text
//! certificate = 0x01 (format version)
//!             | serial length (u16 BE) | serial (UTF-8, 1..=32 bytes)
//!             | attestation public key (65 bytes, SEC1 uncompressed)
//!             | signature (64 bytes, r || s)
//! signature   = ECDSA P-256/SHA-256 by the CA key over
//!               "PinBridge/v1/sig/device-certificate" 0x00 | every byte before the signature
//!               (crypto::ecdsa, SignatureDomain::DeviceCertificate)
//! ```

use std::fmt;
use std::path::Path;

use firmware_protocol::crypto::ecdsa::{
    EcdsaError, EcdsaSignature, EcdsaSigningKey, EcdsaVerifyingKey, PUBLIC_KEY_LEN, SIGNATURE_LEN,
    SignatureDomain,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Version byte of the certificate layout above.
pub const CERTIFICATE_FORMAT: u8 = 1;

/// Why a certificate or CA file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Shorter or longer than its fields say.
    #[error("certificate is {len} bytes; its fields need {expected}")]
    Length {
        /// Bytes given.
        len: usize,
        /// Bytes the fields need.
        expected: usize,
    },
    /// An unknown format version.
    #[error("certificate format {0} is not supported (this build reads format 1)")]
    Format(u8),
    /// The serial is not 1..=32 bytes of UTF-8.
    #[error("certificate serial is not 1..=32 bytes of UTF-8")]
    Serial,
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

/// A decoded device certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// Device serial number.
    pub serial: String,
    /// The device's attestation public key (SEC1 uncompressed).
    pub attestation_public_key: [u8; PUBLIC_KEY_LEN],
    /// The CA's signature.
    pub signature: EcdsaSignature,
}

impl DeviceCertificate {
    /// Issues a certificate for `serial` and `attestation_public_key`.
    pub fn issue(
        ca: &CaKey,
        serial: &str,
        attestation_public_key: &EcdsaVerifyingKey,
    ) -> Result<Self, CertificateError> {
        if serial.is_empty() || serial.len() > 32 {
            return Err(CertificateError::Serial);
        }
        let public = attestation_public_key.to_sec1_bytes();
        let signature = ca
            .signing_key
            .sign(SignatureDomain::DeviceCertificate, &tbs(serial, &public));
        Ok(Self {
            serial: serial.into(),
            attestation_public_key: public,
            signature,
        })
    }

    /// The wire bytes (`Info.certificate`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = tbs(&self.serial, &self.attestation_public_key);
        out.extend_from_slice(self.signature.as_bytes());
        out
    }

    /// Decodes the wire bytes without checking the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        let (&format, rest) = bytes.split_first().ok_or(CertificateError::Length {
            len: 0,
            expected: 3,
        })?;
        if format != CERTIFICATE_FORMAT {
            return Err(CertificateError::Format(format));
        }
        let (len_bytes, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(CertificateError::Length {
                len: bytes.len(),
                expected: 3,
            })?;
        let serial_len = usize::from(u16::from_be_bytes(*len_bytes));
        let expected = 3 + serial_len + PUBLIC_KEY_LEN + SIGNATURE_LEN;
        if bytes.len() != expected {
            return Err(CertificateError::Length {
                len: bytes.len(),
                expected,
            });
        }
        let (serial, rest) = rest.split_at(serial_len);
        let serial = std::str::from_utf8(serial).map_err(|_| CertificateError::Serial)?;
        if serial.is_empty() || serial.len() > 32 {
            return Err(CertificateError::Serial);
        }
        let (public, signature) = rest.split_at(PUBLIC_KEY_LEN);
        let mut attestation_public_key = [0u8; PUBLIC_KEY_LEN];
        attestation_public_key.copy_from_slice(public);
        Ok(Self {
            serial: serial.into(),
            attestation_public_key,
            signature: EcdsaSignature::from_slice(signature)?,
        })
    }

    /// Decodes and checks the CA's signature; returns the certificate.
    pub fn verify(
        bytes: &[u8],
        ca_public_key: &EcdsaVerifyingKey,
    ) -> Result<Self, CertificateError> {
        let certificate = Self::from_bytes(bytes)?;
        ca_public_key.verify(
            SignatureDomain::DeviceCertificate,
            &tbs(&certificate.serial, &certificate.attestation_public_key),
            &certificate.signature,
        )?;
        Ok(certificate)
    }
}

fn tbs(serial: &str, public: &[u8; PUBLIC_KEY_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + serial.len() + PUBLIC_KEY_LEN + SIGNATURE_LEN);
    out.push(CERTIFICATE_FORMAT);
    // Callers keep serials within 32 bytes.
    out.extend_from_slice(&(serial.len() as u16).to_be_bytes());
    out.extend_from_slice(serial.as_bytes());
    out.extend_from_slice(public);
    out
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
            DeviceCertificate::issue(&ca, "PP-0001", &device.verifying_key()).unwrap();
        let bytes = certificate.to_bytes();
        assert_eq!(bytes.len(), 3 + 7 + 65 + 64);
        assert_eq!(
            DeviceCertificate::verify(&bytes, &ca.public_key()).unwrap(),
            certificate
        );

        let other_ca = CaKey::generate(&mut rng);
        assert!(DeviceCertificate::verify(&bytes, &other_ca.public_key()).is_err());
        let mut forged = bytes.clone();
        forged[4] ^= 1; // the serial
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
