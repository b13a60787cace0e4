//! The issuing CA that certifies devices at manufacture, and its key file.
//!
//! The certificate itself (layout, issuing, decoding, checking) is
//! `firmware_protocol::crypto::certificate`, shared with the sandbox bank so both ends read
//! one definition (PROTOCOL.md §4.5); it is re-exported here. What stays is what needs the
//! file system: the CA key file `pinpad-sim ca new` writes.

use std::fmt;
use std::path::Path;

pub use firmware_protocol::crypto::certificate::{
    CertificateError, DeviceCertificate, FIXED_LEN, FORMAT_VERSION, KEY_ID_LEN, MAGIC,
    MAX_SERIAL_LEN, key_id,
};
use firmware_protocol::crypto::ecdsa::{EcdsaError, EcdsaSigningKey, EcdsaVerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Why a CA key or CA key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CaKeyError {
    /// The secret scalar is not a valid P-256 key.
    #[error("CA key: {0}")]
    Key(#[from] EcdsaError),
    /// The CA file could not be read, or is not a CA key file.
    #[error("CA key file {path}: {reason}")]
    File {
        /// The file (empty when parsing text that came from elsewhere).
        path: String,
        /// What went wrong.
        reason: String,
    },
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
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, CaKeyError> {
        Ok(Self {
            signing_key: EcdsaSigningKey::from_bytes(bytes)?,
        })
    }

    /// Issues a device certificate for `serial` and its attestation key, valid from
    /// `not_before` to `not_after` inclusive (Unix seconds).
    pub fn issue(
        &self,
        serial: &str,
        attestation_public_key: &EcdsaVerifyingKey,
        not_before: u64,
        not_after: u64,
    ) -> Result<DeviceCertificate, CertificateError> {
        DeviceCertificate::issue(
            &self.signing_key,
            serial,
            attestation_public_key,
            not_before,
            not_after,
        )
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
    pub fn from_file_text(text: &str) -> Result<Self, CaKeyError> {
        let bad = |reason: &str| CaKeyError::File {
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
    pub fn load(path: &Path) -> Result<Self, CaKeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| CaKeyError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?);
        Self::from_file_text(&text).map_err(|e| match e {
            CaKeyError::File { reason, .. } => CaKeyError::File {
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
    fn the_ca_issues_certificates_the_shared_decoder_verifies() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let ca = CaKey::generate(&mut rng);
        let device = EcdsaSigningKey::generate(&mut rng);
        let certificate = ca
            .issue("PP-0001", &device.verifying_key(), 100, 200)
            .unwrap();
        let decoded = DeviceCertificate::decode(&certificate.to_bytes()).unwrap();
        assert_eq!(decoded, certificate);
        decoded.verify_signature(&ca.public_key()).unwrap();
        let other_ca = CaKey::generate(&mut rng);
        assert!(matches!(
            decoded.verify_signature(&other_ca.public_key()),
            Err(CertificateError::UnknownIssuer { .. })
        ));
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
