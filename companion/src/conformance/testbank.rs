//! The conformance test bank: the bank-side signing keys of a *test* profile, with which the
//! kit acts as the bank (signs Initialise and OperatorReset, wraps keys, MACs payments).
//!
//! A production bank's keys never leave its HSM. For certification a vendor manufactures a
//! test unit whose trust anchors are this profile's public keys (as EMV test cards carry test
//! keys): `pinbridge conformance new-test-bank --out bank.json`, then
//! `pinpad-sim init --bank-keys bank.json` (the same file: the simulator reads the two public
//! keys and ignores the rest). The file holds private keys: written 0600.

use std::path::Path;

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The profile name in the file.
pub const PROFILE: &str = "pinbridge-conformance-test-bank";

/// Why a test bank file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TestBankError {
    /// Could not read or write the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a test bank file.
    #[error("{path}: not a conformance test bank file ({reason})")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct File {
    profile: String,
    management_public_key: String,
    operator_public_key: String,
    management_private_key: String,
    operator_private_key: String,
}

/// The test bank's management key (Initialise, Enrol, BankCommand) and operator key
/// (OperatorReset).
pub struct TestBank {
    /// Signs Initialise, Enrol and BankCommand.
    pub management: EcdsaSigningKey,
    /// Signs OperatorReset.
    pub operator: EcdsaSigningKey,
}

impl std::fmt::Debug for TestBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBank")
            .field("management", &self.management.verifying_key())
            .field("operator", &self.operator.verifying_key())
            .finish_non_exhaustive()
    }
}

impl TestBank {
    /// Fresh keys.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        TestBank {
            management: EcdsaSigningKey::generate(rng),
            operator: EcdsaSigningKey::generate(rng),
        }
    }

    /// Reads a test bank file.
    pub fn load(path: &Path) -> Result<Self, TestBankError> {
        let name = path.display().to_string();
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| TestBankError::Io {
                    path: name.clone(),
                    source,
                })?,
            );
        let invalid = |reason: String| TestBankError::Invalid {
            path: name.clone(),
            reason,
        };
        let file: File = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if file.profile != PROFILE {
            return Err(invalid(format!(
                "profile {:?}, not {PROFILE:?}",
                file.profile
            )));
        }
        let key = |hex_text: &str, what: &str| {
            let bytes = Zeroizing::new(
                hex::decode(hex_text).map_err(|_| invalid(format!("{what} is not hex")))?,
            );
            EcdsaSigningKey::from_bytes(&bytes)
                .map_err(|_| invalid(format!("{what} is not a P-256 private key")))
        };
        let bank = TestBank {
            management: key(&file.management_private_key, "management_private_key")?,
            operator: key(&file.operator_private_key, "operator_private_key")?,
        };
        let public = |key: &EcdsaVerifyingKey| hex::encode(key.to_sec1_bytes());
        if public(&bank.management.verifying_key()) != file.management_public_key
            || public(&bank.operator.verifying_key()) != file.operator_public_key
        {
            return Err(invalid(
                "a public key does not match its private key".into(),
            ));
        }
        Ok(bank)
    }

    /// Writes the file (0600 on Unix).
    pub fn save(&self, path: &Path) -> Result<(), TestBankError> {
        let public = |key: &EcdsaSigningKey| hex::encode(key.verifying_key().to_sec1_bytes());
        let secret = |key: &EcdsaSigningKey| hex::encode(key.reveal_bytes().as_slice());
        let file = File {
            profile: PROFILE.into(),
            management_public_key: public(&self.management),
            operator_public_key: public(&self.operator),
            management_private_key: secret(&self.management),
            operator_private_key: secret(&self.operator),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| {
            TestBankError::Invalid {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })?);
        let io = |source| TestBankError::Io {
            path: path.display().to_string(),
            source,
        };
        use std::io::Write;
        let mut out =
            crate::private_file::open(path, crate::private_file::Open::Truncate).map_err(io)?;
        out.write_all(text.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)
    }
}
