//! Message authentication codes: ISO/IEC 9797-1 MAC algorithms 1 (CBC-MAC) and 3 (the
//! ANSI X9.19 retail MAC) with padding methods 1 and 2, and CMAC (NIST SP 800-38B) over AES
//! or TDES.
//!
//! [`compute`] returns the full MAC (one cipher block); [`verify`] accepts the full MAC or its
//! leftmost bytes, down to [`MIN_VERIFY_LEN`], and compares in constant time.
//!
//! Every algorithm streams the message through one cipher instance: the block-aligned bulk of
//! the message is MACed in place and only the padded final block is built on the stack, so a
//! MAC costs the block encryptions it needs and nothing per block besides.

use alloc::vec::Vec;
use core::fmt;
use subtle::ConstantTimeEq;

use super::keys::{KeyAlgorithm, MacKey};
use super::primitives::{self, BlockCipher, BlockError, RetailMacError};

/// The shortest truncated MAC [`verify`] accepts, in bytes. ISO/IEC 9797-1 lets a MAC be
/// truncated to its leftmost bits; payment messages commonly carry 4 bytes (32 bits) and
/// nothing shorter is accepted here.
pub const MIN_VERIFY_LEN: usize = 4;

/// ISO/IEC 9797-1 padding method for MAC algorithms 1 and 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Method 1: append zero bytes up to a whole block; nothing when the message is already
    /// aligned, and one zero block for an empty message.
    Method1,
    /// Method 2: append `0x80`, then zero bytes up to a whole block (always at least one byte
    /// is added, so an aligned message gains a whole block).
    Method2,
}

impl Padding {
    /// The padding method by its ISO/IEC 9797-1 number (1 or 2), as an operator types it.
    pub fn from_number(number: u8) -> Result<Self, MacError> {
        match number {
            1 => Ok(Padding::Method1),
            2 => Ok(Padding::Method2),
            _ => Err(MacError::UnsupportedPadding { number }),
        }
    }
}

/// A MAC algorithm, with its padding where the algorithm takes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// ISO/IEC 9797-1 MAC algorithm 1: CBC-MAC with a zero IV under single DES (8-byte key)
    /// or TDES (16- or 24-byte key).
    Iso9797Alg1(Padding),
    /// ISO/IEC 9797-1 MAC algorithm 3, the retail MAC (ANSI X9.19): single-DES CBC under K,
    /// then the last block decrypted under K' and encrypted under K. The key is the 16-byte
    /// TDES material K || K': the standard's two DES keys, nothing else.
    Iso9797Alg3(Padding),
    /// CMAC over AES (any AES key length), 16-byte MAC.
    AesCmac,
    /// CMAC over TDES (16- or 24-byte key), 8-byte MAC.
    TdesCmac,
}

impl MacAlgorithm {
    /// Length of the full MAC [`compute`] returns: one cipher block.
    pub const fn mac_len(self) -> usize {
        match self {
            MacAlgorithm::AesCmac => 16,
            _ => 8,
        }
    }

    /// What key this algorithm takes, for error messages.
    const fn key_requirement(self) -> &'static str {
        match self {
            MacAlgorithm::Iso9797Alg1(_) => "a DES or TDES key (8, 16 or 24 bytes)",
            MacAlgorithm::Iso9797Alg3(_) => "a 16-byte TDES key K || K'",
            MacAlgorithm::AesCmac => "an AES key",
            MacAlgorithm::TdesCmac => "a TDES key of 16 or 24 bytes",
        }
    }

    fn accepts(self, algorithm: KeyAlgorithm, len: usize) -> bool {
        match self {
            MacAlgorithm::Iso9797Alg1(_) => algorithm == KeyAlgorithm::Tdes,
            MacAlgorithm::Iso9797Alg3(_) => algorithm == KeyAlgorithm::Tdes && len == 16,
            MacAlgorithm::AesCmac => algorithm == KeyAlgorithm::Aes,
            MacAlgorithm::TdesCmac => algorithm == KeyAlgorithm::Tdes && len != 8,
        }
    }
}

impl fmt::Display for MacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let padding = |p: &Padding| match p {
            Padding::Method1 => 1,
            Padding::Method2 => 2,
        };
        match self {
            MacAlgorithm::Iso9797Alg1(p) => {
                write!(
                    f,
                    "ISO 9797-1 MAC algorithm 1, padding method {}",
                    padding(p)
                )
            }
            MacAlgorithm::Iso9797Alg3(p) => {
                write!(
                    f,
                    "ISO 9797-1 MAC algorithm 3, padding method {}",
                    padding(p)
                )
            }
            MacAlgorithm::AesCmac => f.write_str("AES-CMAC"),
            MacAlgorithm::TdesCmac => f.write_str("TDES-CMAC"),
        }
    }
}

/// Why a MAC could not be computed or did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// The key does not fit the algorithm.
    #[error("{algorithm} needs {requirement}, got a {len}-byte {key_algorithm} key")]
    UnsuitableKey {
        /// The algorithm asked for.
        algorithm: MacAlgorithm,
        /// What the algorithm takes.
        requirement: &'static str,
        /// Algorithm of the key given.
        key_algorithm: KeyAlgorithm,
        /// Length of the key given.
        len: usize,
    },
    /// A padding method number other than 1 or 2.
    #[error("ISO 9797-1 padding method {number} is not supported (1 or 2)")]
    UnsupportedPadding {
        /// The number given.
        number: u8,
    },
    /// The expected MAC is shorter than [`MIN_VERIFY_LEN`].
    #[error("an expected MAC of {len} bytes is too short to verify (at least {min})")]
    ExpectedTooShort {
        /// Length given.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The expected MAC is longer than the algorithm's MAC.
    #[error("an expected MAC of {len} bytes is longer than the {max}-byte MAC of {algorithm}")]
    ExpectedTooLong {
        /// Length given.
        len: usize,
        /// The algorithm's MAC length.
        max: usize,
        /// The algorithm.
        algorithm: MacAlgorithm,
    },
    /// The MAC does not match.
    #[error("MAC mismatch")]
    Mismatch,
    /// Internal: the padded message was not block-aligned (a bug, never input-dependent).
    #[error("internal MAC error: {0}")]
    Block(#[from] BlockError),
}

/// A padded message: the block-aligned bulk, borrowed from the caller, and the padded final
/// block (possibly empty) on the stack.
struct Padded<'a> {
    bulk: &'a [u8],
    last: [u8; 16],
    last_len: usize,
}

impl<'a> Padded<'a> {
    fn new(data: &'a [u8], padding: Padding, block_size: usize) -> Self {
        let aligned = data.len() - data.len() % block_size;
        let (bulk, tail) = data.split_at(aligned);
        let mut last = [0u8; 16];
        last[..tail.len()].copy_from_slice(tail);
        let last_len = match padding {
            Padding::Method1 if data.is_empty() || !tail.is_empty() => block_size,
            Padding::Method1 => 0,
            Padding::Method2 => {
                last[tail.len()] = 0x80;
                block_size
            }
        };
        Self {
            bulk,
            last,
            last_len,
        }
    }

    fn parts(&self) -> [&[u8]; 2] {
        [self.bulk, &self.last[..self.last_len]]
    }
}

/// Computes the full MAC of `data` under `key`: 8 bytes for the DES-family algorithms, 16 for
/// AES-CMAC.
pub fn compute(key: &MacKey, algorithm: MacAlgorithm, data: &[u8]) -> Result<Vec<u8>, MacError> {
    let material = key.material();
    if !algorithm.accepts(material.algorithm(), material.len()) {
        return Err(MacError::UnsuitableKey {
            algorithm,
            requirement: algorithm.key_requirement(),
            key_algorithm: material.algorithm(),
            len: material.len(),
        });
    }
    match algorithm {
        MacAlgorithm::Iso9797Alg1(padding) => {
            let cipher = BlockCipher::new(material);
            let padded = Padded::new(data, padding, cipher.block_size());
            Ok(cipher.cbc_mac(&padded.parts())?)
        }
        MacAlgorithm::Iso9797Alg3(padding) => {
            let padded = Padded::new(data, padding, 8);
            match primitives::retail_mac(material, &padded.parts()) {
                Ok(mac) => Ok(mac.to_vec()),
                Err(RetailMacError::Block(e)) => Err(e.into()),
                Err(RetailMacError::KeyNotDoubleLengthTdes { algorithm: a, len }) => {
                    Err(MacError::UnsuitableKey {
                        algorithm,
                        requirement: algorithm.key_requirement(),
                        key_algorithm: a,
                        len,
                    })
                }
            }
        }
        MacAlgorithm::AesCmac | MacAlgorithm::TdesCmac => Ok(BlockCipher::new(material).cmac(data)),
    }
}

/// Verifies `expected` against the MAC of `data` under `key`.
///
/// Truncation rule: `expected` may be the full MAC or its leftmost bytes, from
/// [`MIN_VERIFY_LEN`] (4) bytes up to [`MacAlgorithm::mac_len`]; it is compared with the same
/// number of leftmost bytes of the computed MAC, in constant time. Lengths outside that range
/// are errors of their own ([`MacError::ExpectedTooShort`], [`MacError::ExpectedTooLong`]);
/// the length itself is public, only the content comparison is constant-time.
pub fn verify(
    key: &MacKey,
    algorithm: MacAlgorithm,
    data: &[u8],
    expected: &[u8],
) -> Result<(), MacError> {
    if expected.len() < MIN_VERIFY_LEN {
        return Err(MacError::ExpectedTooShort {
            len: expected.len(),
            min: MIN_VERIFY_LEN,
        });
    }
    if expected.len() > algorithm.mac_len() {
        return Err(MacError::ExpectedTooLong {
            len: expected.len(),
            max: algorithm.mac_len(),
            algorithm,
        });
    }
    let computed = compute(key, algorithm, data)?;
    let leftmost = computed.get(..expected.len()).ok_or(MacError::Mismatch)?;
    if bool::from(leftmost.ct_eq(expected)) {
        Ok(())
    } else {
        Err(MacError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(algorithm: KeyAlgorithm, hex_key: &str) -> MacKey {
        MacKey::new(algorithm, &hex::decode(hex_key).unwrap()).unwrap()
    }

    #[test]
    fn padding_builds_only_the_final_block() {
        let p = Padded::new(&[1, 2, 3], Padding::Method1, 8);
        assert_eq!(p.parts(), [&[][..], &[1, 2, 3, 0, 0, 0, 0, 0][..]]);
        let p = Padded::new(&[7; 8], Padding::Method1, 8);
        assert_eq!(p.parts(), [&[7; 8][..], &[][..]]);
        let p = Padded::new(&[], Padding::Method1, 8);
        assert_eq!(p.parts(), [&[][..], &[0; 8][..]]);
        let p = Padded::new(&[7; 8], Padding::Method2, 8);
        assert_eq!(p.parts(), [&[7; 8][..], &[0x80, 0, 0, 0, 0, 0, 0, 0][..]]);
        let p = Padded::new(&[7; 15], Padding::Method2, 8);
        assert_eq!(p.parts(), [&[7; 8][..], &[7, 7, 7, 7, 7, 7, 7, 0x80][..]]);
    }

    #[test]
    fn keys_must_fit_the_algorithm() {
        let aes = key(KeyAlgorithm::Aes, "000102030405060708090a0b0c0d0e0f");
        let des = key(KeyAlgorithm::Tdes, "0123456789abcdef");
        let tdes3 = key(
            KeyAlgorithm::Tdes,
            "0123456789abcdeffedcba987654321089abcdef01234567",
        );
        for (k, alg) in [
            (&aes, MacAlgorithm::Iso9797Alg1(Padding::Method1)),
            (&tdes3, MacAlgorithm::Iso9797Alg3(Padding::Method1)),
            (&des, MacAlgorithm::Iso9797Alg3(Padding::Method2)),
            (&des, MacAlgorithm::TdesCmac),
            (&tdes3, MacAlgorithm::AesCmac),
        ] {
            assert!(
                matches!(
                    compute(k, alg, b"x"),
                    Err(MacError::UnsuitableKey { algorithm, .. }) if algorithm == alg
                ),
                "{alg} accepted {k:?}"
            );
        }
        assert!(compute(&des, MacAlgorithm::Iso9797Alg1(Padding::Method1), b"x").is_ok());
        assert!(compute(&tdes3, MacAlgorithm::TdesCmac, b"x").is_ok());
    }

    #[test]
    fn verify_length_rules() {
        let k = key(KeyAlgorithm::Aes, "2b7e151628aed2a6abf7158809cf4f3c");
        let full = compute(&k, MacAlgorithm::AesCmac, b"").unwrap();
        assert_eq!(full.len(), 16);
        assert_eq!(verify(&k, MacAlgorithm::AesCmac, b"", &full), Ok(()));
        assert_eq!(verify(&k, MacAlgorithm::AesCmac, b"", &full[..4]), Ok(()));
        assert_eq!(
            verify(&k, MacAlgorithm::AesCmac, b"", &full[..3]),
            Err(MacError::ExpectedTooShort { len: 3, min: 4 })
        );
        let mut long = full.clone();
        long.push(0);
        assert!(matches!(
            verify(&k, MacAlgorithm::AesCmac, b"", &long),
            Err(MacError::ExpectedTooLong {
                len: 17,
                max: 16,
                ..
            })
        ));
        assert_eq!(
            verify(&k, MacAlgorithm::AesCmac, b"x", &full[..4]),
            Err(MacError::Mismatch)
        );
    }

    #[test]
    fn padding_numbers() {
        assert_eq!(Padding::from_number(1), Ok(Padding::Method1));
        assert_eq!(Padding::from_number(2), Ok(Padding::Method2));
        assert_eq!(
            Padding::from_number(3),
            Err(MacError::UnsupportedPadding { number: 3 })
        );
    }
}
