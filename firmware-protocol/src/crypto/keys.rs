//! Typed secret keys.
//!
//! Every key carries its algorithm (TDES or AES, checked against its length) and, in its
//! type, the one purpose it may serve. A [`MacKey`] cannot be passed where a [`PinKey`] is
//! expected, and a key unwrapped from a TR-31 block becomes a typed key only if the block's
//! usage header says it may (see [`crate::crypto::tr31`]).
//!
//! Key bytes are zeroized on drop and never printed by `Debug`.

use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The block cipher family a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// DES family: 8 bytes (single-length DES, legacy MAC only), 16 (2-key TDES) or 24
    /// (3-key TDES).
    Tdes,
    /// AES: 16, 24 or 32 bytes.
    Aes,
}

impl KeyAlgorithm {
    /// Cipher block size in bytes.
    pub const fn block_size(self) -> usize {
        match self {
            KeyAlgorithm::Tdes => 8,
            KeyAlgorithm::Aes => 16,
        }
    }

    /// Whether `len` is a valid key length for this algorithm.
    pub const fn accepts_length(self, len: usize) -> bool {
        match self {
            KeyAlgorithm::Tdes => matches!(len, 8 | 16 | 24),
            KeyAlgorithm::Aes => matches!(len, 16 | 24 | 32),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::Tdes => "TDES",
            KeyAlgorithm::Aes => "AES",
        })
    }
}

/// Why raw bytes could not become a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The length does not fit the algorithm.
    #[error("a {algorithm} key cannot be {len} bytes long (TDES: 8, 16 or 24; AES: 16, 24 or 32)")]
    InvalidLength {
        /// The algorithm asked for.
        algorithm: KeyAlgorithm,
        /// The length given.
        len: usize,
    },
    /// A key of one usage was offered where another is required.
    #[error("key usage mismatch: expected {expected}, the key is for {actual}")]
    WrongUsage {
        /// Usage the caller needs.
        expected: KeyUsage,
        /// Usage the key carries.
        actual: KeyUsage,
    },
}

/// The purpose of a key, as the TR-31 key usage header states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    /// Base derivation key for DUKPT (TR-31 `B0`).
    Bdk,
    /// DUKPT initial key, IPEK / IK (TR-31 `B1`).
    DukptInitialKey,
    /// Key-block protection key, the KBPK a TR-31 block is wrapped under (TR-31 `K1`).
    KeyBlockProtection,
    /// Generic key-encryption key (TR-31 `K0`).
    KeyEncryption,
    /// PIN encryption key (TR-31 `P0`).
    PinEncryption,
    /// MAC generation / verification (TR-31 `M0`..`M8`; the MAC algorithm is in the code).
    Mac,
    /// Data encryption (TR-31 `D0`).
    DataEncryption,
    /// PIN verification (TR-31 `V0`..`V2`), used by the bank's HSM only.
    PinVerification,
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyUsage::Bdk => "DUKPT base derivation",
            KeyUsage::DukptInitialKey => "DUKPT initial key",
            KeyUsage::KeyBlockProtection => "key-block protection",
            KeyUsage::KeyEncryption => "key encryption",
            KeyUsage::PinEncryption => "PIN encryption",
            KeyUsage::Mac => "MAC",
            KeyUsage::DataEncryption => "data encryption",
            KeyUsage::PinVerification => "PIN verification",
        })
    }
}

/// Untyped key bytes with their algorithm. Only the modules of this crate turn material into
/// typed keys; outside callers go through [`Key::new`] or a TR-31 unwrap.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial {
    #[zeroize(skip)]
    algorithm: KeyAlgorithm,
    bytes: Vec<u8>,
}

impl KeyMaterial {
    /// Checks the length against the algorithm.
    pub fn new(algorithm: KeyAlgorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        if !algorithm.accepts_length(bytes.len()) {
            return Err(KeyError::InvalidLength {
                algorithm,
                len: bytes.len(),
            });
        }
        Ok(Self {
            algorithm,
            bytes: bytes.to_vec(),
        })
    }

    /// The cipher family.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Key length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true for a constructed key; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The secret bytes. Named loudly so every disclosure is visible in review: only the
    /// cipher code in this crate and the operator's crypto tool (which prints a key the
    /// operator asked to unwrap) call it.
    pub fn reveal_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A zeroizing copy of the bytes.
    pub fn to_zeroizing(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.bytes.clone())
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyMaterial({}-{}, <redacted>)",
            self.algorithm,
            self.bytes.len() * 8
        )
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Marker for a key purpose; implemented by the zero-sized types in this module only.
pub trait Usage: sealed::Sealed {
    /// The run-time usage this marker stands for.
    const USAGE: KeyUsage;
}

macro_rules! usage_marker {
    ($(#[$doc:meta])* $name:ident => $usage:ident, $alias:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl Usage for $name {
            const USAGE: KeyUsage = KeyUsage::$usage;
        }
        $(#[$doc])*
        pub type $alias = Key<$name>;
    };
}

usage_marker!(
    /// PIN encryption.
    PinEncryption => PinEncryption, PinKey
);
usage_marker!(
    /// MAC generation and verification.
    Mac => Mac, MacKey
);
usage_marker!(
    /// Data encryption.
    DataEncryption => DataEncryption, DataKey
);
usage_marker!(
    /// Key-block protection (TR-31 KBPK).
    KeyBlockProtection => KeyBlockProtection, KeyBlockProtectionKey
);
usage_marker!(
    /// Generic key encryption (KEK).
    KeyEncryption => KeyEncryption, KeyEncryptionKey
);
usage_marker!(
    /// DUKPT base derivation key.
    Bdk => Bdk, BaseDerivationKey
);
usage_marker!(
    /// DUKPT initial key (IPEK for TDES, IK for AES).
    DukptInitialKey => DukptInitialKey, DukptInitialKeyKey
);
usage_marker!(
    /// PIN verification (bank HSM only).
    PinVerification => PinVerification, PinVerificationKey
);

/// A secret key that may serve only the purpose `U`.
pub struct Key<U: Usage> {
    material: KeyMaterial,
    _usage: PhantomData<U>,
}

impl<U: Usage> Key<U> {
    /// A key of this usage from raw bytes (an operator's or test's clear key).
    pub fn new(algorithm: KeyAlgorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        Ok(Self::from_material(KeyMaterial::new(algorithm, bytes)?))
    }

    /// Gives material a usage. Callers that hold material of unknown purpose (a TR-31
    /// unwrap) must check the usage first: see [`crate::crypto::tr31`].
    pub(crate) fn from_material(material: KeyMaterial) -> Self {
        Self {
            material,
            _usage: PhantomData,
        }
    }

    /// The material, for the cipher code.
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// The cipher family.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.material.algorithm
    }

    /// The usage this key carries.
    pub fn usage(&self) -> KeyUsage {
        U::USAGE
    }

    /// Drops the usage, for wrapping the key into a TR-31 block.
    pub fn into_material(self) -> KeyMaterial {
        self.material.clone()
    }
}

impl<U: Usage> Clone for Key<U> {
    fn clone(&self) -> Self {
        Self::from_material(self.material.clone())
    }
}

impl<U: Usage> fmt::Debug for Key<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Key<{}>({}-{}, <redacted>)",
            U::USAGE,
            self.material.algorithm,
            self.material.len() * 8
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn lengths_are_checked_per_algorithm() {
        assert!(PinKey::new(KeyAlgorithm::Aes, &[0; 16]).is_ok());
        assert!(PinKey::new(KeyAlgorithm::Aes, &[0; 32]).is_ok());
        assert_eq!(
            PinKey::new(KeyAlgorithm::Aes, &[0; 8]).unwrap_err(),
            KeyError::InvalidLength {
                algorithm: KeyAlgorithm::Aes,
                len: 8
            }
        );
        assert!(MacKey::new(KeyAlgorithm::Tdes, &[0; 16]).is_ok());
        assert!(MacKey::new(KeyAlgorithm::Tdes, &[0; 12]).is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = MacKey::new(KeyAlgorithm::Aes, &[0xAB; 16]).unwrap();
        let shown = format!("{key:?} {:?}", key.material());
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(key.usage(), KeyUsage::Mac);
    }
}
