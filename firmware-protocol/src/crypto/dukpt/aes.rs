//! AES DUKPT, ANSI X9.24-3-2017.
//!
//! KSN (12 bytes) = initial key ID (8 bytes: BDK ID 4 + derivation ID 4) ‖ transaction
//! counter (4 bytes, big-endian). Every key is derived with AES-ECB over 16-byte derivation
//! data:
//!
//! | bytes | field |
//! |---|---|
//! | 0 | version, `01` |
//! | 1 | key block counter, `01`, `02` for the second 128 bits of a longer key |
//! | 2..4 | key usage indicator (`8001` initial key, `8000` derivation, working usages: see [`DukptUsage`]) |
//! | 4..6 | algorithm indicator of the derived key (`0000` 2TDEA, `0001` 3TDEA, `0002` AES-128, `0003` AES-192, `0004` AES-256) |
//! | 6..8 | length of the derived key in bits (`0080`, `00C0`, `0100`) |
//! | 8..16 | initial key ID (initial key), or derivation ID ‖ counter (every other key) |
//!
//! The initial key comes from the BDK; the derivation key for a counter from the initial key
//! by setting the counter's one-bits one at a time from the most significant down; the
//! working key from that derivation key.

use zeroize::Zeroizing;

use super::{DukptError, DukptScheme, DukptUsage, DukptWorkingKey};
use crate::crypto::keys::{BaseDerivationKey, DukptInitialKeyKey, Key, KeyAlgorithm, KeyMaterial};
use crate::crypto::primitives::BlockCipher;
use core::fmt;

/// KSN length in bytes.
pub const KSN_LEN: usize = 12;
/// Initial key ID length in bytes.
pub const INITIAL_KEY_ID_LEN: usize = 8;
/// Most one-bits a valid transaction counter may have.
pub const MAX_COUNTER_ONE_BITS: u32 = 16;

const AES_BLOCK: usize = 16;
const MAX_KEY_LEN: usize = 32;

/// Identifies one device's initial key: BDK ID (4 bytes) ‖ derivation ID (4 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InitialKeyId([u8; INITIAL_KEY_ID_LEN]);

impl InitialKeyId {
    /// From the 8 bytes.
    pub const fn new(bytes: [u8; INITIAL_KEY_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// From the BDK ID and the derivation (device) ID.
    pub fn from_parts(bdk_id: [u8; 4], derivation_id: [u8; 4]) -> Self {
        let mut bytes = [0u8; INITIAL_KEY_ID_LEN];
        bytes[..4].copy_from_slice(&bdk_id);
        bytes[4..].copy_from_slice(&derivation_id);
        Self(bytes)
    }

    /// From a slice, which must be 8 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, DukptError> {
        <[u8; INITIAL_KEY_ID_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| DukptError::InitialKeyIdLength {
                actual: bytes.len(),
            })
    }

    /// The 8 bytes.
    pub const fn to_bytes(self) -> [u8; INITIAL_KEY_ID_LEN] {
        self.0
    }

    /// Which BDK the device's key comes from.
    pub fn bdk_id(self) -> [u8; 4] {
        let [a, b, c, d, ..] = self.0;
        [a, b, c, d]
    }

    /// The device's derivation ID, which also goes into every derivation below the initial key.
    pub fn derivation_id(self) -> [u8; 4] {
        let [.., a, b, c, d] = self.0;
        [a, b, c, d]
    }
}

/// Whether `counter` is one a device may use: not zero, at most 16 one-bits.
pub fn validate_counter(counter: u32) -> Result<(), DukptError> {
    if counter == 0 {
        return Err(DukptError::CounterZero);
    }
    let ones = counter.count_ones();
    if ones > MAX_COUNTER_ONE_BITS {
        return Err(DukptError::CounterTooManyOneBits {
            scheme: DukptScheme::Aes,
            counter,
            ones,
            max: MAX_COUNTER_ONE_BITS,
        });
    }
    Ok(())
}

/// The next counter a device uses after `counter` (0 for a freshly loaded device): one more
/// while the counter has fewer than 16 one-bits, otherwise the counter plus its lowest one-bit,
/// which skips every counter with more than 16 one-bits. After `FFFF0000` there is none.
pub fn next_counter(counter: u32) -> Result<u32, DukptError> {
    if counter != 0 {
        validate_counter(counter)?;
    }
    let step = if counter.count_ones() < MAX_COUNTER_ONE_BITS {
        1
    } else {
        counter & counter.wrapping_neg()
    };
    counter
        .checked_add(step)
        .ok_or(DukptError::CounterExhausted {
            scheme: DukptScheme::Aes,
            counter,
        })
}

/// A parsed AES DUKPT key serial number with a valid transaction counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AesKsn {
    initial_key_id: InitialKeyId,
    counter: u32,
}

impl AesKsn {
    /// From its parts; the counter must be valid ([`validate_counter`]).
    pub fn new(initial_key_id: InitialKeyId, counter: u32) -> Result<Self, DukptError> {
        validate_counter(counter)?;
        Ok(Self {
            initial_key_id,
            counter,
        })
    }

    /// From the 12 bytes on the wire.
    pub fn parse(bytes: &[u8]) -> Result<Self, DukptError> {
        let bytes = <[u8; KSN_LEN]>::try_from(bytes).map_err(|_| DukptError::KsnLength {
            scheme: DukptScheme::Aes,
            expected: KSN_LEN,
            actual: bytes.len(),
        })?;
        let [i0, i1, i2, i3, i4, i5, i6, i7, c0, c1, c2, c3] = bytes;
        Self::new(
            InitialKeyId([i0, i1, i2, i3, i4, i5, i6, i7]),
            u32::from_be_bytes([c0, c1, c2, c3]),
        )
    }

    /// The KSN of a device's first transaction (counter 1).
    pub fn first(initial_key_id: InitialKeyId) -> Self {
        Self {
            initial_key_id,
            counter: 1,
        }
    }

    /// The 12 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; KSN_LEN] {
        let mut bytes = [0u8; KSN_LEN];
        bytes[..INITIAL_KEY_ID_LEN].copy_from_slice(&self.initial_key_id.0);
        bytes[INITIAL_KEY_ID_LEN..].copy_from_slice(&self.counter.to_be_bytes());
        bytes
    }

    /// The initial key ID.
    pub fn initial_key_id(&self) -> InitialKeyId {
        self.initial_key_id
    }

    /// The transaction counter.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The KSN of the device's next transaction ([`next_counter`]).
    pub fn next(&self) -> Result<Self, DukptError> {
        Ok(Self {
            initial_key_id: self.initial_key_id,
            counter: next_counter(self.counter)?,
        })
    }
}

/// A key type X9.24-3 can derive, with its algorithm indicator and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AesDukptKeyType {
    /// Two-key TDES (16 bytes).
    Tdes2,
    /// Three-key TDES (24 bytes).
    Tdes3,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl AesDukptKeyType {
    /// The type of an AES BDK (which is also the type of the initial and derivation keys).
    pub fn of_bdk(bdk: &BaseDerivationKey) -> Result<Self, DukptError> {
        Self::of_derivation_key(bdk.material()).ok_or(DukptError::BdkNotAllowed {
            scheme: DukptScheme::Aes,
            algorithm: bdk.algorithm(),
            len: bdk.material().len(),
        })
    }

    fn of_derivation_key(key: &KeyMaterial) -> Option<Self> {
        match (key.algorithm(), key.len()) {
            (KeyAlgorithm::Aes, 16) => Some(AesDukptKeyType::Aes128),
            (KeyAlgorithm::Aes, 24) => Some(AesDukptKeyType::Aes192),
            (KeyAlgorithm::Aes, 32) => Some(AesDukptKeyType::Aes256),
            _ => None,
        }
    }

    /// Cipher family of a key of this type.
    pub const fn algorithm(self) -> KeyAlgorithm {
        match self {
            AesDukptKeyType::Tdes2 | AesDukptKeyType::Tdes3 => KeyAlgorithm::Tdes,
            _ => KeyAlgorithm::Aes,
        }
    }

    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            AesDukptKeyType::Tdes2 | AesDukptKeyType::Aes128 => 16,
            AesDukptKeyType::Tdes3 | AesDukptKeyType::Aes192 => 24,
            AesDukptKeyType::Aes256 => 32,
        }
    }

    /// The algorithm indicator of the derivation data (bytes 4..6).
    pub const fn algorithm_indicator(self) -> u16 {
        match self {
            AesDukptKeyType::Tdes2 => 0x0000,
            AesDukptKeyType::Tdes3 => 0x0001,
            AesDukptKeyType::Aes128 => 0x0002,
            AesDukptKeyType::Aes192 => 0x0003,
            AesDukptKeyType::Aes256 => 0x0004,
        }
    }

    /// Whether X9.24-3 lets a key of this type be derived from keys of type `derivation`:
    /// TDES working keys from any AES BDK, AES working keys no longer than the BDK.
    pub const fn may_derive_from(self, derivation: AesDukptKeyType) -> bool {
        match self.algorithm() {
            KeyAlgorithm::Tdes => true,
            KeyAlgorithm::Aes => self.key_len() <= derivation.key_len(),
        }
    }
}

impl fmt::Display for AesDukptKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AesDukptKeyType::Tdes2 => "2-key TDES",
            AesDukptKeyType::Tdes3 => "3-key TDES",
            AesDukptKeyType::Aes128 => "AES-128",
            AesDukptKeyType::Aes192 => "AES-192",
            AesDukptKeyType::Aes256 => "AES-256",
        })
    }
}

const USAGE_INITIAL_KEY: u16 = 0x8001;
const USAGE_KEY_DERIVATION: u16 = 0x8000;

fn key_usage_indicator(usage: DukptUsage) -> u16 {
    match usage {
        DukptUsage::KeyEncryption => 0x0002,
        DukptUsage::PinEncryption => 0x1000,
        DukptUsage::MacGeneration => 0x2000,
        DukptUsage::MacVerification => 0x2001,
        DukptUsage::MacBothWays => 0x2002,
        DukptUsage::DataEncryption => 0x3000,
        DukptUsage::DataDecryption => 0x3001,
        DukptUsage::DataBothWays => 0x3002,
    }
}

/// The 16-byte derivation data (X9.24-3-2017 section 6.3.2), with the key block counter
/// still at 1.
fn derivation_data(usage_indicator: u16, key_type: AesDukptKeyType, tail: [u8; 8]) -> [u8; 16] {
    let mut data = [0u8; 16];
    data[0] = 0x01;
    data[1] = 0x01;
    data[2..4].copy_from_slice(&usage_indicator.to_be_bytes());
    data[4..6].copy_from_slice(&key_type.algorithm_indicator().to_be_bytes());
    // Key lengths are at most 32 bytes, so the bit count fits a u16.
    data[6..8].copy_from_slice(&((key_type.key_len() * 8) as u16).to_be_bytes());
    data[8..].copy_from_slice(&tail);
    data
}

fn counter_tail(initial_key_id: InitialKeyId, counter: u32) -> [u8; 8] {
    let mut tail = [0u8; 8];
    tail[..4].copy_from_slice(&initial_key_id.derivation_id());
    tail[4..].copy_from_slice(&counter.to_be_bytes());
    tail
}

/// AES-ECB of the derivation data under `key`, one block per 128 bits of output with the key
/// block counter 1, 2, ..., truncated to the key type's length.
fn derive_key(
    key: &KeyMaterial,
    data: [u8; 16],
    key_type: AesDukptKeyType,
) -> Result<KeyMaterial, DukptError> {
    let cipher = BlockCipher::new(key);
    let len = key_type.key_len();
    let mut out = Zeroizing::new([0u8; MAX_KEY_LEN]);
    for (block_counter, chunk) in (1u8..).zip(out[..len].chunks_mut(AES_BLOCK)) {
        let mut block = Zeroizing::new(data);
        block[1] = block_counter;
        cipher.ecb_encrypt(&mut block[..])?;
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    Ok(KeyMaterial::new(key_type.algorithm(), &out[..len])?)
}

/// The device's initial key (IK) from the BDK and the initial key ID; same type as the BDK.
pub fn derive_initial_key(
    bdk: &BaseDerivationKey,
    initial_key_id: InitialKeyId,
) -> Result<DukptInitialKeyKey, DukptError> {
    let key_type = AesDukptKeyType::of_bdk(bdk)?;
    let data = derivation_data(USAGE_INITIAL_KEY, key_type, initial_key_id.0);
    Ok(Key::from_material(derive_key(
        bdk.material(),
        data,
        key_type,
    )?))
}

/// An intermediate derivation key: the key for one counter value, from which that counter's
/// working keys and the derivation keys of later counters come. A PIN pad keeps a register of
/// these (the initial key is the one for counter 0); the host derives one per transaction.
#[derive(Clone)]
pub struct AesDerivationKey {
    material: KeyMaterial,
    key_type: AesDukptKeyType,
    initial_key_id: InitialKeyId,
    counter: u32,
}

impl fmt::Debug for AesDerivationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AesDerivationKey({}, counter {:#010x}, <redacted>)",
            self.key_type, self.counter
        )
    }
}

impl AesDerivationKey {
    /// The initial key as the derivation key of counter 0.
    pub fn from_initial_key(
        initial_key: &DukptInitialKeyKey,
        initial_key_id: InitialKeyId,
    ) -> Result<Self, DukptError> {
        let material = initial_key.material();
        let key_type = AesDukptKeyType::of_derivation_key(material).ok_or(
            DukptError::InitialKeyNotAllowed {
                scheme: DukptScheme::Aes,
                algorithm: material.algorithm(),
                len: material.len(),
            },
        )?;
        Ok(Self {
            material: material.clone(),
            key_type,
            initial_key_id,
            counter: 0,
        })
    }

    /// The derivation key of the KSN's counter: from the initial key, setting the counter's
    /// one-bits from the most significant down (at most 16 AES derivations).
    pub fn for_ksn(initial_key: &DukptInitialKeyKey, ksn: &AesKsn) -> Result<Self, DukptError> {
        let mut key = Self::from_initial_key(initial_key, ksn.initial_key_id)?;
        for bit in (0..u32::BITS).rev() {
            if ksn.counter & (1 << bit) != 0 {
                key = key.derive_child(bit)?;
            }
        }
        Ok(key)
    }

    /// The derivation key of `counter | 1 << bit`. `bit` must lie below every one-bit of this
    /// key's counter: that is the only way X9.24-3 walks the counter.
    pub fn derive_child(&self, bit: u32) -> Result<Self, DukptError> {
        let lowest_set = self.counter.trailing_zeros();
        if bit >= lowest_set {
            return Err(DukptError::ChildBitInvalid {
                counter: self.counter,
                bit,
            });
        }
        let counter = self.counter | (1 << bit);
        let data = derivation_data(
            USAGE_KEY_DERIVATION,
            self.key_type,
            counter_tail(self.initial_key_id, counter),
        );
        Ok(Self {
            material: derive_key(&self.material, data, self.key_type)?,
            key_type: self.key_type,
            initial_key_id: self.initial_key_id,
            counter,
        })
    }

    /// The working key of this counter for `usage`, of type `key_type`.
    pub fn working_key(
        &self,
        usage: DukptUsage,
        key_type: AesDukptKeyType,
    ) -> Result<DukptWorkingKey, DukptError> {
        validate_counter(self.counter)?;
        if !key_type.may_derive_from(self.key_type) {
            return Err(DukptError::WorkingKeyTooStrong {
                working: key_type,
                derivation: self.key_type,
            });
        }
        let data = derivation_data(
            key_usage_indicator(usage),
            key_type,
            counter_tail(self.initial_key_id, self.counter),
        );
        Ok(DukptWorkingKey::new(
            usage,
            derive_key(&self.material, data, key_type)?,
        ))
    }

    /// The counter this key belongs to.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The type of this key (the BDK's type).
    pub fn key_type(&self) -> AesDukptKeyType {
        self.key_type
    }

    /// The key material (for known-answer tests against published derivation keys).
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }
}

/// Working key for `usage` from a device's initial key and the KSN.
pub fn derive_working_key_from_initial_key(
    initial_key: &DukptInitialKeyKey,
    ksn: &AesKsn,
    usage: DukptUsage,
    key_type: AesDukptKeyType,
) -> Result<DukptWorkingKey, DukptError> {
    let derivation = AesDerivationKey::from_initial_key(initial_key, ksn.initial_key_id)?;
    // Checked before walking the counter so a refused request costs no derivations.
    if !key_type.may_derive_from(derivation.key_type) {
        return Err(DukptError::WorkingKeyTooStrong {
            working: key_type,
            derivation: derivation.key_type,
        });
    }
    AesDerivationKey::for_ksn(initial_key, ksn)?.working_key(usage, key_type)
}

/// Host side, one call: working key for `usage` from the BDK and the KSN.
pub fn derive_working_key(
    bdk: &BaseDerivationKey,
    ksn: &AesKsn,
    usage: DukptUsage,
    key_type: AesDukptKeyType,
) -> Result<DukptWorkingKey, DukptError> {
    let initial_key = derive_initial_key(bdk, ksn.initial_key_id)?;
    derive_working_key_from_initial_key(&initial_key, ksn, usage, key_type)
}
