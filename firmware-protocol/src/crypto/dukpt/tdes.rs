//! TDES DUKPT, ANSI X9.24-1-2009.
//!
//! KSN (10 bytes) = initial KSN (59 bits: key set ID, device ID) ‖ transaction counter (the
//! rightmost 21 bits). The BDK and every derived key are double-length TDES.
//!
//! - Initial PIN encryption key (IPEK, the initial key): the leftmost 8 bytes of the KSN with
//!   the counter cleared, TDES-encrypted under the BDK (left half) and under the BDK XOR
//!   `C0C0C0C000000000C0C0C0C000000000` (right half).
//! - The key for a counter: from the IPEK, one non-reversible key generation step per one-bit
//!   of the counter, most significant first, each over the rightmost 8 bytes of the KSN with
//!   the counter bits set so far.
//! - Working keys: that key XOR a variant constant (A.4.1); data keys also encrypt each half
//!   under the variant key (the one-way step of X9.24-1-2009).

use zeroize::Zeroizing;

use super::{DukptError, DukptScheme, DukptUsage, DukptWorkingKey};
use crate::crypto::keys::{BaseDerivationKey, DukptInitialKeyKey, Key, KeyAlgorithm, KeyMaterial};
use crate::crypto::primitives::BlockCipher;
use core::fmt;

/// KSN length in bytes.
pub const KSN_LEN: usize = 10;
/// Width of the transaction counter in bits.
pub const COUNTER_BITS: u32 = 21;
/// The transaction counter's bits in the last three KSN bytes.
pub const COUNTER_MASK: u32 = (1 << COUNTER_BITS) - 1;
/// Most one-bits a valid transaction counter may have.
pub const MAX_COUNTER_ONE_BITS: u32 = 10;

const KEY_LEN: usize = 16;
const HALF: usize = 8;
/// Derives the right half of the IPEK from the BDK and the second key of each NRKGP step.
const KEY_MASK: [u8; KEY_LEN] = [
    0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0,
];

/// Whether `counter` is one a device may use: not zero, inside 21 bits, at most 10 one-bits.
pub fn validate_counter(counter: u32) -> Result<(), DukptError> {
    if counter == 0 {
        return Err(DukptError::CounterZero);
    }
    if counter > COUNTER_MASK {
        return Err(DukptError::CounterOutOfRange {
            scheme: DukptScheme::Tdes,
            counter,
            bits: COUNTER_BITS,
        });
    }
    let ones = counter.count_ones();
    if ones > MAX_COUNTER_ONE_BITS {
        return Err(DukptError::CounterTooManyOneBits {
            scheme: DukptScheme::Tdes,
            counter,
            ones,
            max: MAX_COUNTER_ONE_BITS,
        });
    }
    Ok(())
}

/// The next counter a device uses after `counter` (0 for a freshly loaded device): one more
/// while the counter has fewer than 10 one-bits, otherwise the counter plus its lowest
/// one-bit. After `1FF800` there is none.
pub fn next_counter(counter: u32) -> Result<u32, DukptError> {
    if counter != 0 {
        validate_counter(counter)?;
    }
    let step = if counter.count_ones() < MAX_COUNTER_ONE_BITS {
        1
    } else {
        counter & counter.wrapping_neg()
    };
    // `counter` fits 21 bits here, so the sum cannot overflow a u32.
    let next = counter.saturating_add(step);
    if next > COUNTER_MASK {
        return Err(DukptError::CounterExhausted {
            scheme: DukptScheme::Tdes,
            counter,
        });
    }
    Ok(next)
}

fn ksn_length_error(actual: usize) -> DukptError {
    DukptError::KsnLength {
        scheme: DukptScheme::Tdes,
        expected: KSN_LEN,
        actual,
    }
}

fn counter_of(ksn: &[u8; KSN_LEN]) -> u32 {
    let [.., a, b, c] = *ksn;
    u32::from_be_bytes([0, a, b, c]) & COUNTER_MASK
}

fn with_counter(ksn: &[u8; KSN_LEN], counter: u32) -> [u8; KSN_LEN] {
    let mut out = *ksn;
    let [_, a, b, c] = (counter & COUNTER_MASK).to_be_bytes();
    let [_, mask_a, mask_b, mask_c] = (!COUNTER_MASK).to_be_bytes();
    out[7] = (out[7] & mask_a) | a;
    out[8] = (out[8] & mask_b) | b;
    out[9] = (out[9] & mask_c) | c;
    out
}

/// A parsed TDES DUKPT key serial number with a valid transaction counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TdesKsn([u8; KSN_LEN]);

impl TdesKsn {
    /// From the 10 bytes on the wire; the counter must be valid ([`validate_counter`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, DukptError> {
        let bytes = <[u8; KSN_LEN]>::try_from(bytes).map_err(|_| ksn_length_error(bytes.len()))?;
        validate_counter(counter_of(&bytes))?;
        Ok(Self(bytes))
    }

    /// The same device's KSN with another (valid) counter.
    pub fn with_counter(&self, counter: u32) -> Result<Self, DukptError> {
        validate_counter(counter)?;
        Ok(Self(with_counter(&self.0, counter)))
    }

    /// The 10 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; KSN_LEN] {
        self.0
    }

    /// The transaction counter (rightmost 21 bits).
    pub fn counter(&self) -> u32 {
        counter_of(&self.0)
    }

    /// The initial KSN: this KSN with the counter cleared.
    pub fn initial_ksn(&self) -> [u8; KSN_LEN] {
        with_counter(&self.0, 0)
    }

    /// The KSN of the device's next transaction ([`next_counter`]).
    pub fn next(&self) -> Result<Self, DukptError> {
        Ok(Self(with_counter(&self.0, next_counter(self.counter())?)))
    }
}

fn xor_in_place(target: &mut [u8], mask: &[u8]) {
    for (t, m) in target.iter_mut().zip(mask) {
        *t ^= m;
    }
}

/// A zeroizing copy of a double-length key's bytes.
fn key_bytes(key: &KeyMaterial) -> Result<Zeroizing<[u8; KEY_LEN]>, DukptError> {
    <[u8; KEY_LEN]>::try_from(key.reveal_bytes())
        .map(Zeroizing::new)
        .map_err(|_| DukptError::InitialKeyNotAllowed {
            scheme: DukptScheme::Tdes,
            algorithm: key.algorithm(),
            len: key.len(),
        })
}

fn tdes_material(bytes: &[u8]) -> Result<KeyMaterial, DukptError> {
    Ok(KeyMaterial::new(KeyAlgorithm::Tdes, bytes)?)
}

fn check_bdk(bdk: &BaseDerivationKey) -> Result<(), DukptError> {
    let material = bdk.material();
    if material.algorithm() == KeyAlgorithm::Tdes && material.len() == KEY_LEN {
        Ok(())
    } else {
        Err(DukptError::BdkNotAllowed {
            scheme: DukptScheme::Tdes,
            algorithm: material.algorithm(),
            len: material.len(),
        })
    }
}

/// The IPEK from the BDK and a KSN of the device (10 bytes; its counter bits are ignored, so
/// the initial KSN or any transaction KSN of the device gives the same key).
pub fn derive_initial_key(
    bdk: &BaseDerivationKey,
    ksn: &[u8],
) -> Result<DukptInitialKeyKey, DukptError> {
    check_bdk(bdk)?;
    let ksn = <[u8; KSN_LEN]>::try_from(ksn).map_err(|_| ksn_length_error(ksn.len()))?;
    let initial = with_counter(&ksn, 0);
    let mut ipek = Zeroizing::new([0u8; KEY_LEN]);
    let (left, right) = ipek.split_at_mut(HALF);
    left.copy_from_slice(&initial[..HALF]);
    right.copy_from_slice(&initial[..HALF]);
    BlockCipher::new(bdk.material()).ecb_encrypt(left)?;
    let mut variant = key_bytes(bdk.material())?;
    xor_in_place(&mut variant[..], &KEY_MASK);
    BlockCipher::new(&tdes_material(&variant[..])?).ecb_encrypt(right)?;
    Ok(Key::from_material(tdes_material(&ipek[..])?))
}

/// One half of the non-reversible key generation process: `DES(key_left, data XOR key_right)
/// XOR key_right`.
fn nrkgp_half(key: &[u8], data: &[u8; HALF]) -> Result<[u8; HALF], DukptError> {
    let (left, right) = key.split_at_checked(HALF).unwrap_or((key, &[]));
    let mut block = *data;
    xor_in_place(&mut block, right);
    BlockCipher::new(&tdes_material(left)?).ecb_encrypt(&mut block)?;
    xor_in_place(&mut block, right);
    Ok(block)
}

/// X9.24-1-2009 A.2 "Non-reversible Key Generation Process": the new right half from the key,
/// the new left half from the key XOR `C0C0C0C0 00000000 …`.
fn non_reversible_key_generation(
    key: &KeyMaterial,
    ksn_register: &[u8; HALF],
) -> Result<KeyMaterial, DukptError> {
    let mut masked = key_bytes(key)?;
    xor_in_place(&mut masked[..], &KEY_MASK);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out[..HALF].copy_from_slice(&nrkgp_half(&masked[..], ksn_register)?);
    out[HALF..].copy_from_slice(&nrkgp_half(key.reveal_bytes(), ksn_register)?);
    tdes_material(&out[..])
}

/// The variant XORed into the key for each usage (X9.24-1-2009 A.4.1, table A-1).
fn variant(usage: DukptUsage) -> Option<[u8; KEY_LEN]> {
    let byte = match usage {
        DukptUsage::PinEncryption => 7,
        DukptUsage::MacGeneration => 6,
        DukptUsage::MacVerification => 4,
        DukptUsage::DataEncryption => 5,
        DukptUsage::DataDecryption => 3,
        _ => return None,
    };
    let mut mask = [0u8; KEY_LEN];
    mask[byte] = 0xFF;
    mask[byte + HALF] = 0xFF;
    Some(mask)
}

/// The key of one counter value (the "current key" of X9.24-1): the working keys of that
/// counter come from it. A PIN pad keeps a register of these ("future keys"); the host derives
/// one per transaction.
#[derive(Clone)]
pub struct TdesDerivationKey {
    key: KeyMaterial,
    /// Rightmost 8 bytes of the KSN with the counter bits set so far.
    ksn_register: [u8; HALF],
    counter: u32,
}

impl fmt::Debug for TdesDerivationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TdesDerivationKey(counter {:#08x}, <redacted>)",
            self.counter
        )
    }
}

impl TdesDerivationKey {
    /// The IPEK as the key of counter 0 of the device `ksn` belongs to.
    pub fn from_initial_key(
        initial_key: &DukptInitialKeyKey,
        ksn: &TdesKsn,
    ) -> Result<Self, DukptError> {
        let material = initial_key.material();
        if material.algorithm() != KeyAlgorithm::Tdes || material.len() != KEY_LEN {
            return Err(DukptError::InitialKeyNotAllowed {
                scheme: DukptScheme::Tdes,
                algorithm: material.algorithm(),
                len: material.len(),
            });
        }
        let initial = with_counter(&ksn.0, 0);
        let mut ksn_register = [0u8; HALF];
        ksn_register.copy_from_slice(&initial[KSN_LEN - HALF..]);
        Ok(Self {
            key: material.clone(),
            ksn_register,
            counter: 0,
        })
    }

    /// The key of the KSN's counter: from the IPEK, one key generation step per one-bit of
    /// the counter, most significant first (at most 10 steps).
    pub fn for_ksn(initial_key: &DukptInitialKeyKey, ksn: &TdesKsn) -> Result<Self, DukptError> {
        let counter = ksn.counter();
        let mut key = Self::from_initial_key(initial_key, ksn)?;
        for bit in (0..COUNTER_BITS).rev() {
            if counter & (1 << bit) != 0 {
                key = key.derive_child(bit)?;
            }
        }
        Ok(key)
    }

    /// The key of `counter | 1 << bit`. `bit` must be below 21 and below every one-bit of this
    /// key's counter.
    pub fn derive_child(&self, bit: u32) -> Result<Self, DukptError> {
        if bit >= COUNTER_BITS || bit >= self.counter.trailing_zeros() {
            return Err(DukptError::ChildBitInvalid {
                counter: self.counter,
                bit,
            });
        }
        let counter = self.counter | (1 << bit);
        let mut ksn_register = self.ksn_register;
        let [_, a, b, c] = (1u32 << bit).to_be_bytes();
        ksn_register[5] |= a;
        ksn_register[6] |= b;
        ksn_register[7] |= c;
        Ok(Self {
            key: non_reversible_key_generation(&self.key, &ksn_register)?,
            ksn_register,
            counter,
        })
    }

    /// The working key of this counter for `usage` (PIN, MAC generation = request, MAC
    /// verification = response, data encryption = request, data decryption = response).
    pub fn working_key(&self, usage: DukptUsage) -> Result<DukptWorkingKey, DukptError> {
        validate_counter(self.counter)?;
        let mask = variant(usage).ok_or(DukptError::UsageNotInScheme {
            scheme: DukptScheme::Tdes,
            usage,
        })?;
        let mut key = key_bytes(&self.key)?;
        xor_in_place(&mut key[..], &mask);
        if matches!(
            usage,
            DukptUsage::DataEncryption | DukptUsage::DataDecryption
        ) {
            // The one-way step: each half encrypted under the whole variant key.
            let cipher = BlockCipher::new(&tdes_material(&key[..])?);
            cipher.ecb_encrypt(&mut key[..])?;
        }
        Ok(DukptWorkingKey::new(usage, tdes_material(&key[..])?))
    }

    /// The counter this key belongs to.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The key material (for known-answer tests against published current keys).
    pub fn material(&self) -> &KeyMaterial {
        &self.key
    }
}

/// Working key for `usage` from a device's IPEK and the KSN.
pub fn derive_working_key_from_initial_key(
    initial_key: &DukptInitialKeyKey,
    ksn: &TdesKsn,
    usage: DukptUsage,
) -> Result<DukptWorkingKey, DukptError> {
    if !usage.is_in(DukptScheme::Tdes) {
        return Err(DukptError::UsageNotInScheme {
            scheme: DukptScheme::Tdes,
            usage,
        });
    }
    TdesDerivationKey::for_ksn(initial_key, ksn)?.working_key(usage)
}

/// Host side, one call: working key for `usage` from the BDK and the KSN.
pub fn derive_working_key(
    bdk: &BaseDerivationKey,
    ksn: &TdesKsn,
    usage: DukptUsage,
) -> Result<DukptWorkingKey, DukptError> {
    let initial_key = derive_initial_key(bdk, &ksn.0)?;
    derive_working_key_from_initial_key(&initial_key, ksn, usage)
}
