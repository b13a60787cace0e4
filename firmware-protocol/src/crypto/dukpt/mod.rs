//! DUKPT: a unique key per transaction, derived from a base derivation key (BDK) and the
//! key serial number (KSN) the PIN pad sends with each transaction.
//!
//! - [`aes`]: AES DUKPT, ANSI X9.24-3-2017 (the default for PinBridge).
//! - [`tdes`]: TDES DUKPT, ANSI X9.24-1-2009 (for hosts that still need it).
//!
//! The host derives a working key in one call from the BDK and the KSN
//! ([`derive_working_key`], or the scheme modules' `derive_working_key`). A PIN pad holds no
//! BDK, only its initial key; it keeps the intermediate derivation keys itself and uses
//! [`aes::AesDerivationKey`] / [`tdes::TdesDerivationKey`] to derive them one counter bit at
//! a time, plus `next_counter` to step its counter past the invalid values.
//!
//! Working keys come back typed ([`DukptWorkingKey`]): a PIN key cannot be mistaken for a MAC
//! key. Usages are named from the PIN pad's side ([`DukptUsage`]), which is how X9.24-3 names
//! them; for TDES DUKPT the request/response variants map onto the same names.

pub mod aes;
pub mod tdes;

use core::fmt;

use super::keys::{
    BaseDerivationKey, DataKey, Key, KeyAlgorithm, KeyEncryptionKey, KeyError, KeyMaterial,
    KeyUsage, MacKey, PinKey, Usage,
};
use super::primitives::BlockError;

/// The two DUKPT standards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DukptScheme {
    /// AES DUKPT, ANSI X9.24-3-2017: AES BDK, 12-byte KSN, 32-bit counter.
    Aes,
    /// TDES DUKPT, ANSI X9.24-1-2009: double-length TDES BDK, 10-byte KSN, 21-bit counter.
    Tdes,
}

impl DukptScheme {
    /// The algorithm a BDK of this scheme must have; lets a caller holding only BDK bytes
    /// (e.g. a command line) build the [`BaseDerivationKey`].
    pub const fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            DukptScheme::Aes => KeyAlgorithm::Aes,
            DukptScheme::Tdes => KeyAlgorithm::Tdes,
        }
    }

    /// KSN length in bytes: 12 for AES, 10 for TDES.
    pub const fn ksn_len(self) -> usize {
        match self {
            DukptScheme::Aes => aes::KSN_LEN,
            DukptScheme::Tdes => tdes::KSN_LEN,
        }
    }
}

impl fmt::Display for DukptScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DukptScheme::Aes => "AES",
            DukptScheme::Tdes => "TDES",
        })
    }
}

/// What a working key is for, named from the PIN pad's side as X9.24-3 names it.
///
/// | usage | AES DUKPT key usage indicator | TDES DUKPT variant (X9.24-1-2009 A.4.1) |
/// |---|---|---|
/// | `PinEncryption` | `1000` | PIN, `…00FF` |
/// | `MacGeneration` | `2000` | MAC request, `…FF00` |
/// | `MacVerification` | `2001` | MAC response, `…FF000000` |
/// | `MacBothWays` | `2002` | none |
/// | `DataEncryption` | `3000` | data request, `…FF0000`, plus the one-way step |
/// | `DataDecryption` | `3001` | data response, `…FF00000000`, plus the one-way step |
/// | `DataBothWays` | `3002` | none |
/// | `KeyEncryption` | `0002` | none |
///
/// The host uses the same key as the device: to verify a MAC the PIN pad generated, the host
/// derives the `MacGeneration` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DukptUsage {
    /// PIN encryption.
    PinEncryption,
    /// MACs the PIN pad generates (TDES: the MAC request key).
    MacGeneration,
    /// MACs the PIN pad verifies (TDES: the MAC response key).
    MacVerification,
    /// MACs in both directions (AES only).
    MacBothWays,
    /// Data the PIN pad encrypts (TDES: the data request key).
    DataEncryption,
    /// Data the PIN pad decrypts (TDES: the data response key).
    DataDecryption,
    /// Data encryption in both directions (AES only).
    DataBothWays,
    /// Key encryption (AES only).
    KeyEncryption,
}

impl DukptUsage {
    /// Every usage, for callers that enumerate (tests, help text).
    pub const ALL: [DukptUsage; 8] = [
        DukptUsage::PinEncryption,
        DukptUsage::MacGeneration,
        DukptUsage::MacVerification,
        DukptUsage::MacBothWays,
        DukptUsage::DataEncryption,
        DukptUsage::DataDecryption,
        DukptUsage::DataBothWays,
        DukptUsage::KeyEncryption,
    ];

    /// The typed-key usage the derived key carries.
    pub const fn key_usage(self) -> KeyUsage {
        match self {
            DukptUsage::PinEncryption => KeyUsage::PinEncryption,
            DukptUsage::MacGeneration | DukptUsage::MacVerification | DukptUsage::MacBothWays => {
                KeyUsage::Mac
            }
            DukptUsage::DataEncryption | DukptUsage::DataDecryption | DukptUsage::DataBothWays => {
                KeyUsage::DataEncryption
            }
            DukptUsage::KeyEncryption => KeyUsage::KeyEncryption,
        }
    }

    /// Whether `scheme` defines a key for this usage (TDES DUKPT has no both-ways or key
    /// encryption keys).
    pub const fn is_in(self, scheme: DukptScheme) -> bool {
        match scheme {
            DukptScheme::Aes => true,
            DukptScheme::Tdes => matches!(
                self,
                DukptUsage::PinEncryption
                    | DukptUsage::MacGeneration
                    | DukptUsage::MacVerification
                    | DukptUsage::DataEncryption
                    | DukptUsage::DataDecryption
            ),
        }
    }
}

impl fmt::Display for DukptUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DukptUsage::PinEncryption => "PIN encryption",
            DukptUsage::MacGeneration => "MAC generation",
            DukptUsage::MacVerification => "MAC verification",
            DukptUsage::MacBothWays => "MAC both ways",
            DukptUsage::DataEncryption => "data encryption",
            DukptUsage::DataDecryption => "data decryption",
            DukptUsage::DataBothWays => "data encryption both ways",
            DukptUsage::KeyEncryption => "key encryption",
        })
    }
}

/// A derived working key, typed by what it may do.
#[derive(Clone, Debug)]
pub enum DukptWorkingKey {
    /// From [`DukptUsage::PinEncryption`].
    Pin(PinKey),
    /// From one of the MAC usages.
    Mac(MacKey),
    /// From one of the data usages.
    Data(DataKey),
    /// From [`DukptUsage::KeyEncryption`].
    KeyEncryption(KeyEncryptionKey),
}

impl DukptWorkingKey {
    fn new(usage: DukptUsage, material: KeyMaterial) -> Self {
        match usage.key_usage() {
            KeyUsage::PinEncryption => DukptWorkingKey::Pin(Key::from_material(material)),
            KeyUsage::Mac => DukptWorkingKey::Mac(Key::from_material(material)),
            KeyUsage::DataEncryption => DukptWorkingKey::Data(Key::from_material(material)),
            _ => DukptWorkingKey::KeyEncryption(Key::from_material(material)),
        }
    }

    /// The key material (algorithm and bytes), e.g. for a KCV or for printing by the
    /// operator's crypto tool.
    pub fn material(&self) -> &KeyMaterial {
        match self {
            DukptWorkingKey::Pin(key) => key.material(),
            DukptWorkingKey::Mac(key) => key.material(),
            DukptWorkingKey::Data(key) => key.material(),
            DukptWorkingKey::KeyEncryption(key) => key.material(),
        }
    }

    /// The usage the key carries.
    pub fn key_usage(&self) -> KeyUsage {
        match self {
            DukptWorkingKey::Pin(key) => key.usage(),
            DukptWorkingKey::Mac(key) => key.usage(),
            DukptWorkingKey::Data(key) => key.usage(),
            DukptWorkingKey::KeyEncryption(key) => key.usage(),
        }
    }

    fn wrong_usage<U: Usage>(&self) -> KeyError {
        KeyError::WrongUsage {
            expected: U::USAGE,
            actual: self.key_usage(),
        }
    }

    /// The PIN key, or `KeyError::WrongUsage` if this key is for something else.
    pub fn into_pin_key(self) -> Result<PinKey, KeyError> {
        match self {
            DukptWorkingKey::Pin(key) => Ok(key),
            other => Err(other.wrong_usage::<super::keys::PinEncryption>()),
        }
    }

    /// The MAC key, or `KeyError::WrongUsage`.
    pub fn into_mac_key(self) -> Result<MacKey, KeyError> {
        match self {
            DukptWorkingKey::Mac(key) => Ok(key),
            other => Err(other.wrong_usage::<super::keys::Mac>()),
        }
    }

    /// The data key, or `KeyError::WrongUsage`.
    pub fn into_data_key(self) -> Result<DataKey, KeyError> {
        match self {
            DukptWorkingKey::Data(key) => Ok(key),
            other => Err(other.wrong_usage::<super::keys::DataEncryption>()),
        }
    }

    /// The key-encryption key, or `KeyError::WrongUsage`.
    pub fn into_key_encryption_key(self) -> Result<KeyEncryptionKey, KeyError> {
        match self {
            DukptWorkingKey::KeyEncryption(key) => Ok(key),
            other => Err(other.wrong_usage::<super::keys::KeyEncryption>()),
        }
    }
}

/// Why a DUKPT derivation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DukptError {
    /// The KSN has the wrong length for the scheme.
    #[error("a {scheme} DUKPT key serial number is {expected} bytes, got {actual}")]
    KsnLength {
        /// Scheme asked for.
        scheme: DukptScheme,
        /// Its KSN length.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// The initial key ID is not 8 bytes (AES DUKPT).
    #[error("an AES DUKPT initial key ID is 8 bytes, got {actual}")]
    InitialKeyIdLength {
        /// Length given.
        actual: usize,
    },
    /// Counter zero names the initial key itself; no transaction uses it.
    #[error("transaction counter 0 is never used: a device's first transaction is counter 1")]
    CounterZero,
    /// The counter has more one-bits than the scheme allows; a device never uses it.
    #[error(
        "transaction counter {counter:#x} has {ones} one-bits; {scheme} DUKPT allows at most {max}"
    )]
    CounterTooManyOneBits {
        /// Scheme.
        scheme: DukptScheme,
        /// Counter given.
        counter: u32,
        /// Its one-bits.
        ones: u32,
        /// Most one-bits the scheme allows (16 AES, 10 TDES).
        max: u32,
    },
    /// The counter does not fit the scheme's counter field (TDES: 21 bits).
    #[error("transaction counter {counter:#x} does not fit the {bits}-bit {scheme} DUKPT counter")]
    CounterOutOfRange {
        /// Scheme.
        scheme: DukptScheme,
        /// Counter given.
        counter: u32,
        /// Width of the counter field.
        bits: u32,
    },
    /// No valid counter follows this one: the device must be loaded with a new initial key.
    #[error("the {scheme} DUKPT counter is exhausted after {counter:#x}: load a new initial key")]
    CounterExhausted {
        /// Scheme.
        scheme: DukptScheme,
        /// The last counter.
        counter: u32,
    },
    /// The BDK's algorithm or length is not one the scheme allows.
    #[error(
        "{scheme} DUKPT cannot use a {algorithm} BDK of {len} bytes (AES: 16, 24 or 32 bytes; TDES: 16 bytes)"
    )]
    BdkNotAllowed {
        /// Scheme.
        scheme: DukptScheme,
        /// The BDK's algorithm.
        algorithm: KeyAlgorithm,
        /// The BDK's length in bytes.
        len: usize,
    },
    /// The initial key's algorithm or length is not one the scheme allows.
    #[error(
        "{scheme} DUKPT cannot use a {algorithm} initial key of {len} bytes (AES: 16, 24 or 32 bytes; TDES: 16 bytes)"
    )]
    InitialKeyNotAllowed {
        /// Scheme.
        scheme: DukptScheme,
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
        /// The key's length in bytes.
        len: usize,
    },
    /// X9.24-3 forbids a working key stronger than the key it is derived from.
    #[error(
        "an {working} working key cannot be derived from an {derivation} BDK: it would be stronger"
    )]
    WorkingKeyTooStrong {
        /// Working key type asked for.
        working: aes::AesDukptKeyType,
        /// Type of the BDK / derivation keys.
        derivation: aes::AesDukptKeyType,
    },
    /// The scheme defines no key for this usage.
    #[error("{scheme} DUKPT defines no {usage} key")]
    UsageNotInScheme {
        /// Scheme.
        scheme: DukptScheme,
        /// Usage asked for.
        usage: DukptUsage,
    },
    /// An intermediate derivation key can only gain a counter bit that lies inside the counter
    /// field and below every one-bit it already has.
    #[error(
        "cannot derive the key for counter bit {bit} from the derivation key of counter {counter:#x}: the bit must lie inside the counter and below its lowest one-bit"
    )]
    ChildBitInvalid {
        /// Counter of the parent derivation key.
        counter: u32,
        /// Bit index asked for.
        bit: u32,
    },
    /// The cipher refused a block (cannot happen for lengths this module builds; kept so no
    /// path panics).
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A derived key had an impossible length (cannot happen; kept so no path panics).
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Host side, one call: the working key for `usage` from the BDK and the KSN bytes the PIN pad
/// sent. For AES the working key has the BDK's type (an AES-128 BDK gives AES-128 keys); use
/// [`aes::derive_working_key`] to ask for another type.
pub fn derive_working_key(
    scheme: DukptScheme,
    bdk: &BaseDerivationKey,
    ksn: &[u8],
    usage: DukptUsage,
) -> Result<DukptWorkingKey, DukptError> {
    match scheme {
        DukptScheme::Aes => {
            let key_type = aes::AesDukptKeyType::of_bdk(bdk)?;
            aes::derive_working_key(bdk, &aes::AesKsn::parse(ksn)?, usage, key_type)
        }
        DukptScheme::Tdes => tdes::derive_working_key(bdk, &tdes::TdesKsn::parse(ksn)?, usage),
    }
}
