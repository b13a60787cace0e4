//! The one place where key material meets a block cipher.
//!
//! Every other crypto module (PIN blocks, MACs, KCVs, TR-31, DUKPT) goes through
//! [`BlockCipher`], so the choice of cipher by key length, and the RustCrypto modes it uses
//! (CBC from `cbc`, CMAC from `cmac`), live here once.

use aes::{Aes128, Aes192, Aes256};
use alloc::vec::Vec;
use cipher::{
    Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt,
    InnerIvInit, KeyInit,
};
use cmac::{Cmac, Mac};
use des::{Des, TdesEde2, TdesEde3};

use super::keys::{KeyAlgorithm, KeyMaterial};

/// Input whose length is not a whole number of cipher blocks, or an IV of the wrong size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Data length is not a multiple of the block size.
    #[error("data of {len} bytes is not a whole number of {block_size}-byte blocks")]
    NotBlockAligned {
        /// Length given.
        len: usize,
        /// Block size of the cipher.
        block_size: usize,
    },
    /// The IV is not one block long.
    #[error("IV of {len} bytes, expected {block_size}")]
    InvalidIvLength {
        /// Length given.
        len: usize,
        /// Block size of the cipher.
        block_size: usize,
    },
}

/// A keyed block cipher: DES, 2-key TDES, 3-key TDES or AES-128/192/256, chosen by the
/// key's algorithm and length. The RustCrypto cipher types zeroize their key schedules on
/// drop (the `zeroize` feature of `aes` and `des`).
#[derive(Clone)]
pub enum BlockCipher {
    /// Single DES (8-byte key), legacy ISO 9797-1 MACs only.
    Des(Des),
    /// Two-key TDES (16-byte key).
    Tdes2(TdesEde2),
    /// Three-key TDES (24-byte key).
    Tdes3(TdesEde3),
    /// AES-128.
    Aes128(Aes128),
    /// AES-192.
    Aes192(Aes192),
    /// AES-256.
    Aes256(Aes256),
}

impl core::fmt::Debug for BlockCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BlockCipher::Des(_) => "BlockCipher(DES, <redacted>)",
            BlockCipher::Tdes2(_) => "BlockCipher(TDES-2key, <redacted>)",
            BlockCipher::Tdes3(_) => "BlockCipher(TDES-3key, <redacted>)",
            BlockCipher::Aes128(_) => "BlockCipher(AES-128, <redacted>)",
            BlockCipher::Aes192(_) => "BlockCipher(AES-192, <redacted>)",
            BlockCipher::Aes256(_) => "BlockCipher(AES-256, <redacted>)",
        })
    }
}

/// Runs `$body` with `$c` bound to the concrete cipher inside a [`BlockCipher`].
macro_rules! with_cipher {
    ($self:expr, $c:ident => $body:expr) => {
        match $self {
            BlockCipher::Des($c) => $body,
            BlockCipher::Tdes2($c) => $body,
            BlockCipher::Tdes3($c) => $body,
            BlockCipher::Aes128($c) => $body,
            BlockCipher::Aes192($c) => $body,
            BlockCipher::Aes256($c) => $body,
        }
    };
}

fn ecb_encrypt_with<C: BlockCipherEncrypt>(cipher: &C, data: &mut [u8]) {
    let (blocks, _) = Array::slice_as_chunks_mut(data);
    cipher.encrypt_blocks(blocks);
}

fn ecb_decrypt_with<C: BlockCipherDecrypt>(cipher: &C, data: &mut [u8]) {
    let (blocks, _) = Array::slice_as_chunks_mut(data);
    cipher.decrypt_blocks(blocks);
}

fn cbc_encrypt_with<C: BlockCipherEncrypt + Clone>(cipher: &C, iv: &[u8], data: &mut [u8]) {
    if let Ok(mut mode) = cbc::Encryptor::<C>::inner_iv_slice_init(cipher.clone(), iv) {
        let (blocks, _) = Array::slice_as_chunks_mut(data);
        mode.encrypt_blocks(blocks);
    }
}

fn cbc_decrypt_with<C: BlockCipherEncrypt + BlockCipherDecrypt + Clone>(
    cipher: &C,
    iv: &[u8],
    data: &mut [u8],
) {
    if let Ok(mut mode) = cbc::Decryptor::<C>::inner_iv_slice_init(cipher.clone(), iv) {
        let (blocks, _) = Array::slice_as_chunks_mut(data);
        mode.decrypt_blocks(blocks);
    }
}

fn cmac_with<C: cmac::block_api::CmacCipher + Clone>(cipher: &C, data: &[u8]) -> Vec<u8> {
    use cmac::digest::InnerInit;
    let mut mac = <Cmac<C> as InnerInit>::inner_init(cipher.clone());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl BlockCipher {
    /// Keys the cipher that fits the material.
    pub fn new(key: &KeyMaterial) -> Self {
        let bytes = key.reveal_bytes();
        // Lengths were checked when the material was built, so every `new_from_slice`
        // below succeeds; the fallbacks only keep this free of panics.
        match (key.algorithm(), bytes.len()) {
            (KeyAlgorithm::Tdes, 8) => Des::new_from_slice(bytes).map(BlockCipher::Des),
            (KeyAlgorithm::Tdes, 16) => TdesEde2::new_from_slice(bytes).map(BlockCipher::Tdes2),
            (KeyAlgorithm::Tdes, _) => TdesEde3::new_from_slice(bytes).map(BlockCipher::Tdes3),
            (KeyAlgorithm::Aes, 16) => Aes128::new_from_slice(bytes).map(BlockCipher::Aes128),
            (KeyAlgorithm::Aes, 24) => Aes192::new_from_slice(bytes).map(BlockCipher::Aes192),
            (KeyAlgorithm::Aes, _) => Aes256::new_from_slice(bytes).map(BlockCipher::Aes256),
        }
        .unwrap_or_else(|_| BlockCipher::Aes128(Aes128::new(&Array::default())))
    }

    /// Block size in bytes: 8 for the DES family, 16 for AES.
    pub fn block_size(&self) -> usize {
        match self {
            BlockCipher::Des(_) | BlockCipher::Tdes2(_) | BlockCipher::Tdes3(_) => 8,
            _ => 16,
        }
    }

    fn check_aligned(&self, len: usize) -> Result<(), BlockError> {
        let block_size = self.block_size();
        if len.is_multiple_of(block_size) {
            Ok(())
        } else {
            Err(BlockError::NotBlockAligned { len, block_size })
        }
    }

    fn check_iv(&self, iv: &[u8]) -> Result<(), BlockError> {
        let block_size = self.block_size();
        if iv.len() == block_size {
            Ok(())
        } else {
            Err(BlockError::InvalidIvLength {
                len: iv.len(),
                block_size,
            })
        }
    }

    /// ECB-encrypts whole blocks in place.
    pub fn ecb_encrypt(&self, data: &mut [u8]) -> Result<(), BlockError> {
        self.check_aligned(data.len())?;
        with_cipher!(self, c => ecb_encrypt_with(c, data));
        Ok(())
    }

    /// ECB-decrypts whole blocks in place.
    pub fn ecb_decrypt(&self, data: &mut [u8]) -> Result<(), BlockError> {
        self.check_aligned(data.len())?;
        with_cipher!(self, c => ecb_decrypt_with(c, data));
        Ok(())
    }

    /// CBC-encrypts whole blocks in place (no padding: callers pad per their standard).
    pub fn cbc_encrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), BlockError> {
        self.check_iv(iv)?;
        self.check_aligned(data.len())?;
        with_cipher!(self, c => cbc_encrypt_with(c, iv, data));
        Ok(())
    }

    /// CBC-decrypts whole blocks in place.
    pub fn cbc_decrypt(&self, iv: &[u8], data: &mut [u8]) -> Result<(), BlockError> {
        self.check_iv(iv)?;
        self.check_aligned(data.len())?;
        with_cipher!(self, c => cbc_decrypt_with(c, iv, data));
        Ok(())
    }

    /// CMAC (NIST SP 800-38B) over `data`: one full block (8 bytes TDES, 16 bytes AES).
    pub fn cmac(&self, data: &[u8]) -> Vec<u8> {
        with_cipher!(self, c => cmac_with(c, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(alg: KeyAlgorithm, hex_key: &str) -> BlockCipher {
        BlockCipher::new(&KeyMaterial::new(alg, &hex::decode(hex_key).unwrap()).unwrap())
    }

    #[test]
    fn aes128_fips197_known_answer() {
        // FIPS-197 Appendix C.1.
        let c = cipher(KeyAlgorithm::Aes, "000102030405060708090a0b0c0d0e0f");
        let mut block = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        c.ecb_encrypt(&mut block).unwrap();
        assert_eq!(hex::encode(&block), "69c4e0d86a7b0430d8cdb78070b4c55a");
        c.ecb_decrypt(&mut block).unwrap();
        assert_eq!(hex::encode(&block), "00112233445566778899aabbccddeeff");
    }

    #[test]
    fn des_known_answer() {
        // The classic FIPS 81 / "Now is the time for all " example, first block.
        let c = cipher(KeyAlgorithm::Tdes, "0123456789abcdef");
        let mut block = b"Now is t".to_vec();
        c.ecb_encrypt(&mut block).unwrap();
        assert_eq!(hex::encode(&block), "3fa40e8a984d4815");
    }

    #[test]
    fn cmac_rfc4493_example_2() {
        let c = cipher(KeyAlgorithm::Aes, "2b7e151628aed2a6abf7158809cf4f3c");
        let msg = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(hex::encode(c.cmac(&msg)), "070a16b46b4d4144f79bdd9dd04a287c");
    }

    #[test]
    fn misaligned_input_and_bad_iv_are_errors() {
        let c = cipher(KeyAlgorithm::Tdes, "0123456789abcdeffedcba9876543210");
        let mut data = [0u8; 7];
        assert_eq!(
            c.ecb_encrypt(&mut data),
            Err(BlockError::NotBlockAligned {
                len: 7,
                block_size: 8
            })
        );
        let mut data = [0u8; 8];
        assert_eq!(
            c.cbc_encrypt(&[0; 16], &mut data),
            Err(BlockError::InvalidIvLength {
                len: 16,
                block_size: 8
            })
        );
    }

    #[test]
    fn cbc_round_trips() {
        let c = cipher(KeyAlgorithm::Aes, "000102030405060708090a0b0c0d0e0f1011121314151617");
        let plain: Vec<u8> = (0u8..48).collect();
        let mut data = plain.clone();
        c.cbc_encrypt(&[7; 16], &mut data).unwrap();
        assert_ne!(data, plain);
        c.cbc_decrypt(&[7; 16], &mut data).unwrap();
        assert_eq!(data, plain);
    }
}
