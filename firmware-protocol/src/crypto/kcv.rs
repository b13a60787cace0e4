//! Key check values: a short, public fingerprint of a key, so two parties can confirm they
//! hold the same key without showing it.
//!
//! ANSI X9.24-1:2017 (7.7.2 and Annex A) defines two methods. TDES may use either; AES must
//! use CMAC:
//! - [`KcvMethod::Ecb`]: encrypt one all-zero block under the key, keep the leftmost 3 bytes.
//!   The standard method for TDES; for AES it is the legacy method some older systems still
//!   show, and is used only when asked for explicitly.
//! - [`KcvMethod::Cmac`]: CMAC (NIST SP 800-38B) under the key over one all-zero block
//!   (16 bytes for AES, 8 for TDES), keep the leftmost 5 bytes. The standard method for AES.

use core::fmt;
use subtle::ConstantTimeEq;

use super::keys::{KeyAlgorithm, KeyMaterial};
use super::primitives::BlockCipher;

/// The fewest leftmost bytes of a check value [`verify`] compares.
pub const MIN_VERIFY_LEN: usize = 3;

/// How a check value is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KcvMethod {
    /// Encrypt an all-zero block, keep 3 bytes. Standard for TDES, legacy for AES.
    Ecb,
    /// CMAC over an all-zero block, keep 5 bytes. Standard for AES (X9.24-1:2017 A.3).
    Cmac,
}

impl KcvMethod {
    /// The method X9.24-1:2017 prescribes by default: ECB for TDES, CMAC for AES.
    pub const fn standard_for(algorithm: KeyAlgorithm) -> Self {
        match algorithm {
            KeyAlgorithm::Tdes => KcvMethod::Ecb,
            KeyAlgorithm::Aes => KcvMethod::Cmac,
        }
    }

    /// Length of the check value in bytes: 3 for ECB, 5 for CMAC.
    pub const fn kcv_len(self) -> usize {
        match self {
            KcvMethod::Ecb => 3,
            KcvMethod::Cmac => 5,
        }
    }
}

impl fmt::Display for KcvMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KcvMethod::Ecb => "ECB",
            KcvMethod::Cmac => "CMAC",
        })
    }
}

/// A key check value: 3 (ECB) or 5 (CMAC) bytes. Public by design; `Display` prints
/// upper-case hex, as HSMs and key ceremonies show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kcv {
    method: KcvMethod,
    bytes: [u8; 5],
}

impl Kcv {
    /// The check value bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.method.kcv_len()]
    }

    /// The method that produced it.
    pub fn method(&self) -> KcvMethod {
        self.method
    }
}

impl fmt::Display for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// Why a check value did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KcvError {
    /// The expected check value has a length the method cannot produce.
    #[error("an expected {method} check value must be {min} to {max} bytes, got {len}")]
    ExpectedLength {
        /// The method.
        method: KcvMethod,
        /// Length given.
        len: usize,
        /// Fewest bytes compared.
        min: usize,
        /// The method's full length.
        max: usize,
    },
    /// The key does not have this check value.
    #[error("key check value mismatch")]
    Mismatch,
}

/// Computes the check value of `key` by `method`. The cipher is the key's own: DES, TDES or
/// AES by its algorithm and length.
pub fn compute(key: &KeyMaterial, method: KcvMethod) -> Kcv {
    let cipher = BlockCipher::new(key);
    let zero_block = [0u8; 16];
    let zero_block = &zero_block[..cipher.block_size()];
    let mut bytes = [0u8; 5];
    match method {
        KcvMethod::Ecb => {
            let mut block = [0u8; 16];
            let block = &mut block[..cipher.block_size()];
            // One whole block of the cipher's own size: always aligned.
            if cipher.ecb_encrypt(block).is_ok() {
                bytes[..3].copy_from_slice(&block[..3]);
            }
        }
        KcvMethod::Cmac => bytes.copy_from_slice(&cipher.cmac(zero_block)[..5]),
    }
    Kcv { method, bytes }
}

/// Checks that `key` has the check value `expected`, in constant time.
///
/// `expected` may be the full check value or its leftmost bytes, from [`MIN_VERIFY_LEN`] (3)
/// up to [`KcvMethod::kcv_len`]: some systems show only 3 bytes of a CMAC check value.
pub fn verify(key: &KeyMaterial, method: KcvMethod, expected: &[u8]) -> Result<(), KcvError> {
    let max = method.kcv_len();
    if !(MIN_VERIFY_LEN..=max).contains(&expected.len()) {
        return Err(KcvError::ExpectedLength {
            method,
            len: expected.len(),
            min: MIN_VERIFY_LEN,
            max,
        });
    }
    let kcv = compute(key, method);
    let leftmost = kcv
        .as_bytes()
        .get(..expected.len())
        .ok_or(KcvError::Mismatch)?;
    if bool::from(leftmost.ct_eq(expected)) {
        Ok(())
    } else {
        Err(KcvError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn standard_methods_and_lengths() {
        assert_eq!(KcvMethod::standard_for(KeyAlgorithm::Tdes), KcvMethod::Ecb);
        assert_eq!(KcvMethod::standard_for(KeyAlgorithm::Aes), KcvMethod::Cmac);
        let aes = KeyMaterial::new(KeyAlgorithm::Aes, &[0; 16]).unwrap();
        let kcv = compute(&aes, KcvMethod::Cmac);
        assert_eq!(kcv.as_bytes().len(), 5);
        assert_eq!(kcv.to_string().len(), 10);
        assert_eq!(compute(&aes, KcvMethod::Ecb).as_bytes().len(), 3);
    }

    #[test]
    fn verify_length_rules() {
        let key = KeyMaterial::new(KeyAlgorithm::Aes, &[0; 16]).unwrap();
        let kcv = compute(&key, KcvMethod::Cmac);
        assert_eq!(verify(&key, KcvMethod::Cmac, kcv.as_bytes()), Ok(()));
        assert_eq!(verify(&key, KcvMethod::Cmac, &kcv.as_bytes()[..3]), Ok(()));
        assert_eq!(
            verify(&key, KcvMethod::Cmac, &kcv.as_bytes()[..2]),
            Err(KcvError::ExpectedLength {
                method: KcvMethod::Cmac,
                len: 2,
                min: 3,
                max: 5
            })
        );
        assert!(matches!(
            verify(&key, KcvMethod::Ecb, kcv.as_bytes()),
            Err(KcvError::ExpectedLength { len: 5, max: 3, .. })
        ));
        let other = KeyMaterial::new(KeyAlgorithm::Aes, &[1; 16]).unwrap();
        assert_eq!(
            verify(&other, KcvMethod::Cmac, kcv.as_bytes()),
            Err(KcvError::Mismatch)
        );
    }
}
