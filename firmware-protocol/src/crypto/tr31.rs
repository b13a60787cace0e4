//! ANSI X9.143 / ASC TR-31 key blocks, versions B and D.
//!
//! A key block carries a secret key together with what it may be used for. It is printable
//! ASCII in three parts:
//!
//! ```text
//! header (16 chars + optional blocks) | encrypted key field (hex) | MAC (hex)
//! D0112P0AE00E0000                      B82679114F47...2E417C07156A2 7E8E31DA05F7425509593D03A457DC34
//! ```
//!
//! Both supported versions use the *key derivation binding method*:
//!
//! - **B** (TDES): the 2- or 3-key TDES key-block protection key (KBPK) derives a
//!   key-block encryption key (KBEK) and a key-block authentication key (KBAK) with the
//!   CMAC-based counter-mode KDF of TR-31 (8 input bytes: counter, key usage indicator
//!   `0000` for encryption / `0001` for MAC, separator `00`, algorithm indicator `0000`
//!   2-key TDES / `0001` 3-key TDES, length in bits `0080` / `00C0`). The MAC is the
//!   8-byte TDES-CMAC, under the KBAK, of the ASCII header followed by the *clear* key
//!   field; the key field is then TDES-CBC encrypted under the KBEK with that MAC as IV.
//! - **D** (AES): the same with AES-CMAC (algorithm indicator `0002`/`0003`/`0004` for
//!   AES-128/192/256), a 16-byte MAC and AES-CBC.
//!
//! The clear key field is a 2-byte big-endian key length in bits, the key, then padding
//! up to a whole number of cipher blocks.
//!
//! **Key length masking.** Padding can hide how long the key is. [`wrap`] pads as if the key
//! were `M` bytes long, `M` chosen by [`KeyLengthMasking`]: by default the longest key of the
//! header's algorithm (24 bytes for TDES `T`, 32 for AES `A`, 8 for DES `D`), as X9.143
//! requires, so every TDES key block (or every AES one) of a given header has the same
//! length. The field is `2 + M` bytes rounded up to the cipher block size, and everything
//! after the key is padding from the caller's RNG. [`wrap_with_padding`] takes the padding
//! bytes verbatim instead (known-answer tests and the operator tool's `--random HEX`); its
//! length then fixes the field length.
//!
//! **Unwrapping order.** With key derivation binding the MAC covers the clear key field, so
//! the field has to be decrypted before the MAC can be checked. The decrypted bytes stay in
//! a zeroizing buffer and nothing in them (not even the length prefix) is read until the
//! constant-time MAC comparison has succeeded; every failure before or after is a specific
//! [`Tr31Error`].
//!
//! **Key separation.** [`UnwrappedKey::into_key`] turns the unwrapped material into a typed
//! [`Key<U>`] only if the header's key usage maps to `U` and its mode of use fits that usage,
//! so a MAC key block offered where a PIN key is expected is refused (DESIGN.md §4).
//!
//! Optional blocks use the X9.143 encoding: 2-character ID, 2 hex digits of total length
//! (ID and length included), data; a length of `00` introduces the extended form, 2 hex
//! digits giving the number of characters of the length that follows (X9.143:2021 §8.5 and
//! §8.6 use `04`). The optional blocks together must fill whole cipher blocks; [`wrap`]
//! appends a padding block `PB` of `'0'` characters when they do not.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::keys::{
    Key, KeyAlgorithm, KeyBlockProtectionKey, KeyError, KeyMaterial, KeyUsage, Usage,
};
use super::primitives::{BlockCipher, BlockError};

/// Length of the fixed part of the header.
const FIXED_HEADER_LEN: usize = 16;
/// The block length field has four decimal digits.
const MAX_BLOCK_LEN: usize = 9999;
/// The optional block count field has two decimal digits.
const MAX_OPTIONAL_BLOCKS: usize = 99;
/// Optional block ID plus 2-digit length.
const SHORT_OPTIONAL_BLOCK_OVERHEAD: usize = 4;
/// ID, `00`, 2-digit length-of-length, 4-digit length: the form this module writes.
const EXTENDED_OPTIONAL_BLOCK_OVERHEAD: usize = 10;
/// The longest total an optional block can declare in the short form.
const MAX_SHORT_OPTIONAL_BLOCK_LEN: usize = 0xFF;
/// Lengths of the extended length field accepted when parsing. Four hex digits already
/// exceed the 9999-character limit of a whole key block.
const MAX_EXTENDED_LENGTH_DIGITS: usize = 4;

/// Why a key block or a header could not be built, parsed or unwrapped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Tr31Error {
    /// A character outside printable ASCII (0x20..=0x7E).
    #[error("character at offset {offset} is not printable ASCII")]
    NotPrintableAscii {
        /// Byte offset in the input.
        offset: usize,
    },
    /// Shorter than the 16-character fixed header.
    #[error("{len} characters is shorter than the 16-character key block header")]
    HeaderTooShort {
        /// Input length.
        len: usize,
    },
    /// A version ID other than `B` or `D`.
    #[error("key block version {found:?} is not supported (only B and D)")]
    UnsupportedVersion {
        /// The version character found.
        found: char,
    },
    /// A fixed header field holds a value the standard does not define.
    #[error("invalid {field} {found:?}")]
    InvalidField {
        /// Which field.
        field: HeaderField,
        /// Its text.
        found: String,
    },
    /// The block length field disagrees with the actual length.
    #[error("key block length field says {declared}, the block is {actual} characters")]
    LengthMismatch {
        /// Value of the 4-digit field.
        declared: usize,
        /// Characters actually present.
        actual: usize,
    },
    /// The input ends inside optional block `index` (0-based).
    #[error("optional block {index} is truncated")]
    OptionalBlockTruncated {
        /// Position of the optional block.
        index: usize,
    },
    /// An optional block ID the standard does not define and that is not numeric
    /// (proprietary).
    #[error("optional block {index} has unknown ID {found:?}")]
    UnknownOptionalBlockId {
        /// Position of the optional block.
        index: usize,
        /// The two ID characters.
        found: String,
    },
    /// A length field that is not uppercase hex or is shorter than the block's own
    /// ID-and-length prefix.
    #[error("optional block {index} has an invalid length field")]
    InvalidOptionalBlockLength {
        /// Position of the optional block.
        index: usize,
    },
    /// Optional block data that is not printable ASCII.
    #[error("optional block {id} data is not printable ASCII")]
    OptionalBlockNotPrintable {
        /// The block's ID.
        id: OptionalBlockId,
    },
    /// The same optional block ID twice.
    #[error("optional block {id} appears more than once")]
    DuplicateOptionalBlock {
        /// The repeated ID.
        id: OptionalBlockId,
    },
    /// A padding block `PB` that is not the last optional block.
    #[error("padding block PB must be the last optional block")]
    PaddingBlockNotLast,
    /// Optional blocks whose total length is not a whole number of cipher blocks.
    #[error("optional blocks total {len} characters, not a multiple of {block_size}")]
    OptionalBlocksNotAligned {
        /// Total length of the optional blocks.
        len: usize,
        /// Cipher block size of the version.
        block_size: usize,
    },
    /// More than 99 optional blocks.
    #[error("{count} optional blocks, at most 99 fit the header")]
    TooManyOptionalBlocks {
        /// How many there would be.
        count: usize,
    },
    /// Text after the optional blocks where only a header was expected.
    #[error("unexpected characters after the header at offset {offset}")]
    TrailingCharacters {
        /// Offset of the first extra character.
        offset: usize,
    },
    /// The encrypted key field or MAC holds a character that is not uppercase hex.
    #[error("character at offset {offset} is not an uppercase hex digit")]
    InvalidHex {
        /// Byte offset in the key block.
        offset: usize,
    },
    /// Fewer characters after the header than the MAC needs.
    #[error("{found} hex characters after the header, the MAC alone needs {expected}")]
    MacTruncated {
        /// Characters present after the header.
        found: usize,
        /// Hex characters of the version's MAC.
        expected: usize,
    },
    /// An encrypted key field that is empty or not a whole number of cipher blocks.
    #[error(
        "encrypted key field of {hex_chars} hex characters is not a whole number of {block_size}-byte blocks"
    )]
    EncryptedKeyLength {
        /// Hex characters of the field.
        hex_chars: usize,
        /// Cipher block size of the version.
        block_size: usize,
    },
    /// The KBPK does not suit the version (B needs 2- or 3-key TDES, D needs AES).
    #[error("version {version} key blocks need {}, the KBPK is {algorithm}-{}", version.kbpk_description(), len * 8)]
    WrongKbpk {
        /// Key block version.
        version: Version,
        /// KBPK algorithm.
        algorithm: KeyAlgorithm,
        /// KBPK length in bytes.
        len: usize,
    },
    /// The MAC does not verify: wrong KBPK, or the block was altered.
    #[error("key block MAC does not verify (wrong KBPK or altered block)")]
    BadMac,
    /// The authenticated length prefix is not a whole number of bytes or exceeds the field.
    #[error("decrypted key length of {bits} bits does not fit the {field_len}-byte key field")]
    InvalidKeyLengthField {
        /// The length prefix.
        bits: u16,
        /// Size of the decrypted key field.
        field_len: usize,
    },
    /// A key length the header's algorithm does not allow.
    #[error("a {len}-byte key is not valid for algorithm {algorithm}")]
    KeyLengthMismatch {
        /// Algorithm from the header.
        algorithm: Algorithm,
        /// Key length in bytes.
        len: usize,
    },
    /// The header names an algorithm whose keys this crate cannot hold (EC, HMAC, RSA, DSA).
    #[error("keys of algorithm {algorithm} are not supported")]
    UnsupportedKeyAlgorithm {
        /// Algorithm from the header.
        algorithm: Algorithm,
    },
    /// Wrap: the key does not match the header's algorithm.
    #[error("header algorithm {header} does not match the {key}-{} key", len * 8)]
    KeyAlgorithmMismatch {
        /// Algorithm in the header.
        header: Algorithm,
        /// Algorithm of the key.
        key: KeyAlgorithm,
        /// Key length in bytes.
        len: usize,
    },
    /// Wrap: length prefix, key and padding do not fill whole cipher blocks.
    #[error(
        "2 + {key_len} key bytes + {padding_len} padding bytes is not a multiple of {block_size}"
    )]
    InvalidPaddingLength {
        /// Key length in bytes.
        key_len: usize,
        /// Padding length in bytes.
        padding_len: usize,
        /// Cipher block size of the version.
        block_size: usize,
    },
    /// Wrap: a masked length shorter than the key.
    #[error("masked length {masked} is shorter than the {key_len}-byte key")]
    MaskedLengthTooShort {
        /// Requested masked length.
        masked: usize,
        /// Key length.
        key_len: usize,
    },
    /// Wrap: the key block would exceed 9999 characters.
    #[error("key block of {len} characters exceeds the 9999 the length field can express")]
    BlockTooLong {
        /// Length it would have.
        len: usize,
    },
    /// The block's key usage is not the one the caller asked for.
    #[error("key block is for usage {found}, expected a {expected} key")]
    WrongUsage {
        /// Usage the caller needs.
        expected: KeyUsage,
        /// Usage code in the header.
        found: KeyUsageCode,
    },
    /// The block's mode of use does not fit the usage.
    #[error("mode of use {mode} is not allowed for a {usage} key")]
    ModeOfUseNotAllowed {
        /// Usage the caller asked for.
        usage: KeyUsage,
        /// Mode of use in the header.
        mode: ModeOfUse,
    },
    /// A derived or unwrapped key was rejected by [`KeyMaterial::new`].
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The cipher layer refused its input (an internal length invariant was broken).
    #[error(transparent)]
    Cipher(#[from] BlockError),
}

/// A field of the fixed 16-character header, for [`Tr31Error::InvalidField`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderField {
    /// Characters 1-4: key block length.
    BlockLength,
    /// Characters 5-6.
    KeyUsage,
    /// Character 7.
    Algorithm,
    /// Character 8.
    ModeOfUse,
    /// Characters 9-10.
    KeyVersion,
    /// Character 11.
    Exportability,
    /// Characters 12-13.
    OptionalBlockCount,
    /// Character 14.
    KeyContext,
    /// Character 15, reserved, always `0`.
    Reserved,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderField::BlockLength => "key block length",
            HeaderField::KeyUsage => "key usage",
            HeaderField::Algorithm => "algorithm",
            HeaderField::ModeOfUse => "mode of use",
            HeaderField::KeyVersion => "key version number",
            HeaderField::Exportability => "exportability",
            HeaderField::OptionalBlockCount => "number of optional blocks",
            HeaderField::KeyContext => "key context",
            HeaderField::Reserved => "reserved field",
        })
    }
}

/// Key block version (header character 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// TDES key derivation binding method.
    B,
    /// AES key derivation binding method.
    D,
}

impl Version {
    /// The header character.
    pub const fn as_char(self) -> char {
        match self {
            Version::B => 'B',
            Version::D => 'D',
        }
    }

    /// Cipher block size: 8 for TDES, 16 for AES. Key field and optional blocks are
    /// multiples of it.
    pub const fn block_size(self) -> usize {
        match self {
            Version::B => 8,
            Version::D => 16,
        }
    }

    /// MAC length in bytes (twice as many hex characters in the block).
    pub const fn mac_len(self) -> usize {
        match self {
            Version::B => 8,
            Version::D => 16,
        }
    }

    const fn kbpk_description(self) -> &'static str {
        match self {
            Version::B => "a 2- or 3-key TDES KBPK",
            Version::D => "an AES KBPK",
        }
    }

    fn from_byte(byte: u8) -> Result<Self, Tr31Error> {
        match byte {
            b'B' => Ok(Version::B),
            b'D' => Ok(Version::D),
            other => Err(Tr31Error::UnsupportedVersion {
                found: char::from(other),
            }),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Defines a one-character header code: enum, `as_char`, parsing and `Display`.
macro_rules! one_char_code {
    (
        $(#[$meta:meta])*
        $name:ident, $field:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in header-character order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The header character.
            pub const fn as_char(self) -> char {
                match self {
                    $(Self::$variant => $code as char,)+
                }
            }

            fn from_byte(byte: u8) -> Result<Self, Tr31Error> {
                match byte {
                    $($code => Ok(Self::$variant),)+
                    other => Err(invalid_field(HeaderField::$field, &[other])),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.as_char())
            }
        }
    };
}

one_char_code!(
    /// Algorithm of the wrapped key (header character 7).
    Algorithm, Algorithm {
        /// `A`: AES.
        Aes = b'A',
        /// `D`: single DES (legacy).
        Des = b'D',
        /// `E`: elliptic curve.
        EllipticCurve = b'E',
        /// `H`: HMAC.
        Hmac = b'H',
        /// `R`: RSA.
        Rsa = b'R',
        /// `S`: DSA.
        Dsa = b'S',
        /// `T`: TDES (2- or 3-key).
        Tdes = b'T',
    }
);

one_char_code!(
    /// What operations the wrapped key may perform (header character 8).
    ModeOfUse, ModeOfUse {
        /// `B`: encrypt and decrypt (wrap and unwrap).
        EncryptDecrypt = b'B',
        /// `C`: MAC generate and verify.
        MacGenerateVerify = b'C',
        /// `D`: decrypt / unwrap only.
        DecryptOnly = b'D',
        /// `E`: encrypt / wrap only.
        EncryptOnly = b'E',
        /// `G`: MAC generate only.
        MacGenerateOnly = b'G',
        /// `N`: no restrictions beyond those implied by the key usage.
        NoRestrictions = b'N',
        /// `S`: signature only.
        SignatureOnly = b'S',
        /// `T`: sign and decrypt.
        SignDecrypt = b'T',
        /// `V`: MAC verify only.
        MacVerifyOnly = b'V',
        /// `X`: derive other keys.
        DeriveKeys = b'X',
        /// `Y`: create key variants.
        CreateVariants = b'Y',
    }
);

one_char_code!(
    /// Whether the wrapped key may leave its device (header character 11).
    Exportability, Exportability {
        /// `E`: exportable under a KEK in a form meeting X9.24.
        Exportable = b'E',
        /// `N`: not exportable.
        NonExportable = b'N',
        /// `S`: sensitive; exportable in forms not meeting X9.24.
        Sensitive = b'S',
    }
);

one_char_code!(
    /// Where the key block may be used (header character 14, X9.143 key context).
    KeyContext, KeyContext {
        /// `0`: determined by the wrapping key (storage or exchange).
        StorageOrExchange = b'0',
        /// `1`: storage only.
        StorageOnly = b'1',
        /// `2`: key exchange only.
        ExchangeOnly = b'2',
    }
);

/// A numeric two-digit code (`"00"`..`"99"`), which TR-31 reserves for proprietary use in
/// key usages and optional block IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProprietaryCode([u8; 2]);

impl ProprietaryCode {
    /// The code for `value` (0..=99), or `None` if it has more than two digits.
    pub const fn new(value: u8) -> Option<Self> {
        if value > 99 {
            return None;
        }
        Some(Self([b'0' + value / 10, b'0' + value % 10]))
    }

    /// The numeric value.
    pub const fn value(self) -> u8 {
        (self.0[0] - b'0') * 10 + (self.0[1] - b'0')
    }

    fn from_bytes(bytes: [u8; 2]) -> Option<Self> {
        bytes.iter().all(u8::is_ascii_digit).then_some(Self(bytes))
    }
}

/// Defines a two-character header code with a proprietary numeric escape.
macro_rules! two_char_code {
    (
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $code:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A numeric code, reserved for proprietary use.
            Proprietary(ProprietaryCode),
        }

        impl $name {
            /// Every value the standard defines (proprietary codes excluded).
            pub const STANDARD: &'static [Self] = &[$(Self::$variant,)+];

            /// The two header characters.
            pub const fn to_bytes(self) -> [u8; 2] {
                match self {
                    $(Self::$variant => *$code,)+
                    Self::Proprietary(code) => code.0,
                }
            }

            fn from_bytes(bytes: [u8; 2]) -> Option<Self> {
                $(if bytes == *$code {
                    return Some(Self::$variant);
                })+
                ProprietaryCode::from_bytes(bytes).map(Self::Proprietary)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let [first, second] = self.to_bytes();
                write!(f, "{}{}", char::from(first), char::from(second))
            }
        }
    };
}

two_char_code!(
    /// Key usage (header characters 5-6), as X9.143:2021 table 2 defines it.
    KeyUsageCode {
        /// DUKPT base derivation key.
        B0 = b"B0",
        /// DUKPT initial key (IPEK / IK).
        B1 = b"B1",
        /// Base key variant key (deprecated).
        B2 = b"B2",
        /// Key derivation key (non-X9.24).
        B3 = b"B3",
        /// Card verification key.
        C0 = b"C0",
        /// Symmetric data encryption key.
        D0 = b"D0",
        /// Asymmetric data encryption key.
        D1 = b"D1",
        /// Data encryption key for decimalization tables.
        D2 = b"D2",
        /// Data encryption key for sensitive data.
        D3 = b"D3",
        /// EMV issuer master key: application cryptograms.
        E0 = b"E0",
        /// EMV issuer master key: secure messaging for confidentiality.
        E1 = b"E1",
        /// EMV issuer master key: secure messaging for integrity.
        E2 = b"E2",
        /// EMV issuer master key: data authentication code.
        E3 = b"E3",
        /// EMV issuer master key: dynamic numbers.
        E4 = b"E4",
        /// EMV issuer master key: card personalization.
        E5 = b"E5",
        /// EMV issuer master key: other.
        E6 = b"E6",
        /// EMV asymmetric key pair for PIN encryption.
        E7 = b"E7",
        /// Initialization vector.
        I0 = b"I0",
        /// Key encryption / wrapping key.
        K0 = b"K0",
        /// TR-31 key block protection key.
        K1 = b"K1",
        /// TR-34 asymmetric key pair for a key receiving device.
        K2 = b"K2",
        /// Asymmetric key pair for key wrapping or key agreement.
        K3 = b"K3",
        /// ISO 20038 key block protection key.
        K4 = b"K4",
        /// ISO 16609 MAC algorithm 1 (TDES).
        M0 = b"M0",
        /// ISO 9797-1 MAC algorithm 1.
        M1 = b"M1",
        /// ISO 9797-1 MAC algorithm 2.
        M2 = b"M2",
        /// ISO 9797-1 MAC algorithm 3 (retail MAC).
        M3 = b"M3",
        /// ISO 9797-1 MAC algorithm 4.
        M4 = b"M4",
        /// ISO 9797-1:1999 MAC algorithm 5.
        M5 = b"M5",
        /// ISO 9797-1:2011 MAC algorithm 5 (CMAC).
        M6 = b"M6",
        /// HMAC.
        M7 = b"M7",
        /// ISO 9797-1 MAC algorithm 6.
        M8 = b"M8",
        /// PIN encryption key.
        P0 = b"P0",
        /// PIN generation key.
        P1 = b"P1",
        /// Asymmetric key pair for digital signatures.
        S0 = b"S0",
        /// Asymmetric key pair for CA use.
        S1 = b"S1",
        /// Asymmetric key pair for non-X9.24 use.
        S2 = b"S2",
        /// PIN verification key, other algorithm.
        V0 = b"V0",
        /// PIN verification key, IBM 3624.
        V1 = b"V1",
        /// PIN verification key, Visa PVV.
        V2 = b"V2",
        /// PIN verification key, X9.132 algorithm 1.
        V3 = b"V3",
        /// PIN verification key, X9.132 algorithm 2.
        V4 = b"V4",
        /// PIN verification key, X9.132 algorithm 3.
        V5 = b"V5",
    }
);

impl KeyUsageCode {
    /// The typed usage a key of this code may take in this crate, if any.
    pub const fn key_usage(self) -> Option<KeyUsage> {
        use KeyUsageCode as C;
        match self {
            C::B0 => Some(KeyUsage::Bdk),
            C::B1 => Some(KeyUsage::DukptInitialKey),
            C::D0 => Some(KeyUsage::DataEncryption),
            C::K0 => Some(KeyUsage::KeyEncryption),
            C::K1 => Some(KeyUsage::KeyBlockProtection),
            C::M0 | C::M1 | C::M2 | C::M3 | C::M4 | C::M5 | C::M6 | C::M7 | C::M8 => {
                Some(KeyUsage::Mac)
            }
            C::P0 => Some(KeyUsage::PinEncryption),
            C::V0 | C::V1 | C::V2 | C::V3 | C::V4 | C::V5 => Some(KeyUsage::PinVerification),
            _ => None,
        }
    }
}

two_char_code!(
    /// Optional block ID, as X9.143:2021 table 7 defines it.
    OptionalBlockId {
        /// Asymmetric key life.
        AL = b"AL",
        /// Base derivation key identifier for DUKPT.
        BI = b"BI",
        /// Public key certificate.
        CT = b"CT",
        /// Derivations allowed.
        DA = b"DA",
        /// Flags.
        FL = b"FL",
        /// Hash algorithm for HMAC.
        HM = b"HM",
        /// Initial key identifier for AES DUKPT.
        IK = b"IK",
        /// Key check value of the wrapped key.
        KC = b"KC",
        /// Key check value of the KBPK.
        KP = b"KP",
        /// Initial key serial number for TDES DUKPT.
        KS = b"KS",
        /// Key block values (deprecated).
        KV = b"KV",
        /// Label.
        LB = b"LB",
        /// Padding block.
        PB = b"PB",
        /// Key check value of the export KBPK.
        PK = b"PK",
        /// Time of creation.
        TC = b"TC",
        /// Time stamp.
        TS = b"TS",
        /// Wrapping pedigree.
        WP = b"WP",
    }
);

/// Key version number (header characters 9-10): two alphanumeric characters, `00` when
/// unused, `c` followed by a digit for a key component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyVersion([u8; 2]);

impl KeyVersion {
    /// `00`: no key version.
    pub const UNUSED: Self = Self(*b"00");

    /// Parses two alphanumeric characters.
    pub fn new(text: &str) -> Result<Self, Tr31Error> {
        let bytes = text.as_bytes();
        match bytes {
            [first, second] if first.is_ascii_alphanumeric() && second.is_ascii_alphanumeric() => {
                Ok(Self([*first, *second]))
            }
            _ => Err(invalid_field(HeaderField::KeyVersion, bytes)),
        }
    }

    /// Whether the field is `00`.
    pub fn is_unused(self) -> bool {
        self == Self::UNUSED
    }

    /// The component number when the key is a component (`c1`, `c2`, ...).
    pub fn component_number(self) -> Option<char> {
        (self.0[0] == b'c').then_some(char::from(self.0[1]))
    }

    /// The two header characters.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", char::from(self.0[0]), char::from(self.0[1]))
    }
}

/// One optional header block: an ID and printable ASCII data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionalBlock {
    id: OptionalBlockId,
    data: String,
}

impl OptionalBlock {
    /// A block with the given data, which must be printable ASCII.
    pub fn new(id: OptionalBlockId, data: &str) -> Result<Self, Tr31Error> {
        if !data.bytes().all(is_printable) {
            return Err(Tr31Error::OptionalBlockNotPrintable { id });
        }
        Ok(Self {
            id,
            data: String::from(data),
        })
    }

    /// The block ID.
    pub fn id(&self) -> OptionalBlockId {
        self.id
    }

    /// The block data (without ID and length).
    pub fn data(&self) -> &str {
        &self.data
    }

    /// Characters this block takes in the header: the short form up to 255, the extended
    /// form (`00`, `04`, four hex digits) above.
    fn encoded_len(&self) -> usize {
        let short = SHORT_OPTIONAL_BLOCK_OVERHEAD + self.data.len();
        if short <= MAX_SHORT_OPTIONAL_BLOCK_LEN {
            short
        } else {
            EXTENDED_OPTIONAL_BLOCK_OVERHEAD + self.data.len()
        }
    }

    fn encode_into(&self, out: &mut String) {
        let [first, second] = self.id.to_bytes();
        out.push(char::from(first));
        out.push(char::from(second));
        let len = self.encoded_len();
        if len <= MAX_SHORT_OPTIONAL_BLOCK_LEN {
            push_hex(out, len, 2);
        } else {
            out.push_str("0004");
            push_hex(out, len, 4);
        }
        out.push_str(&self.data);
    }
}

/// The clear part of a key block: what the key is and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    version: Version,
    key_usage: KeyUsageCode,
    algorithm: Algorithm,
    mode_of_use: ModeOfUse,
    key_version: KeyVersion,
    exportability: Exportability,
    key_context: KeyContext,
    optional_blocks: Vec<OptionalBlock>,
}

impl Header {
    /// A header without optional blocks and with key context `0`.
    pub fn new(
        version: Version,
        key_usage: KeyUsageCode,
        algorithm: Algorithm,
        mode_of_use: ModeOfUse,
        key_version: KeyVersion,
        exportability: Exportability,
    ) -> Self {
        Self {
            version,
            key_usage,
            algorithm,
            mode_of_use,
            key_version,
            exportability,
            key_context: KeyContext::StorageOrExchange,
            optional_blocks: Vec::new(),
        }
    }

    /// The same header with another key context.
    pub fn with_key_context(mut self, key_context: KeyContext) -> Self {
        self.key_context = key_context;
        self
    }

    /// Appends an optional block. IDs must be distinct, `PB` must stay last, and there can
    /// be at most 99 blocks (one of which [`wrap`] may need for padding).
    pub fn with_optional_block(mut self, block: OptionalBlock) -> Result<Self, Tr31Error> {
        if self.optional_blocks.iter().any(|b| b.id == block.id) {
            return Err(Tr31Error::DuplicateOptionalBlock { id: block.id });
        }
        if self.has_padding_block() {
            return Err(Tr31Error::PaddingBlockNotLast);
        }
        let count = self.optional_blocks.len() + 1;
        if count > MAX_OPTIONAL_BLOCKS {
            return Err(Tr31Error::TooManyOptionalBlocks { count });
        }
        self.optional_blocks.push(block);
        Ok(self)
    }

    /// Parses header text such as `D0112P0AE00E0000`, optionally followed by its optional
    /// blocks (`B0000B0TX12S0100KS1800604B120F9292800000`). The block length digits must be
    /// four decimal digits but their value is ignored: [`wrap`] writes the real length.
    /// Alignment of the optional blocks is checked when wrapping, which adds a padding
    /// block if needed.
    pub fn parse(text: &str) -> Result<Self, Tr31Error> {
        let bytes = text.as_bytes();
        check_printable(bytes)?;
        let parsed = parse_header(bytes)?;
        if parsed.header_len != bytes.len() {
            return Err(Tr31Error::TrailingCharacters {
                offset: parsed.header_len,
            });
        }
        Ok(parsed.header)
    }

    /// Key block version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Key usage code.
    pub fn key_usage(&self) -> KeyUsageCode {
        self.key_usage
    }

    /// Algorithm of the wrapped key.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Mode of use.
    pub fn mode_of_use(&self) -> ModeOfUse {
        self.mode_of_use
    }

    /// Key version number.
    pub fn key_version(&self) -> KeyVersion {
        self.key_version
    }

    /// Exportability.
    pub fn exportability(&self) -> Exportability {
        self.exportability
    }

    /// Key context.
    pub fn key_context(&self) -> KeyContext {
        self.key_context
    }

    /// Optional blocks in header order, padding block included.
    pub fn optional_blocks(&self) -> &[OptionalBlock] {
        &self.optional_blocks
    }

    /// The optional block with this ID.
    pub fn optional_block(&self, id: OptionalBlockId) -> Option<&OptionalBlock> {
        self.optional_blocks.iter().find(|b| b.id == id)
    }

    fn has_padding_block(&self) -> bool {
        self.optional_blocks
            .last()
            .is_some_and(|b| b.id == OptionalBlockId::PB)
    }

    /// Header text for a key block with a `field_len`-byte key field, adding a `PB`
    /// block if the optional blocks do not fill whole cipher blocks.
    fn encode(&self, field_len: usize) -> Result<String, Tr31Error> {
        let block_size = self.version.block_size();
        let blocks_len: usize = self
            .optional_blocks
            .iter()
            .map(OptionalBlock::encoded_len)
            .sum();
        let mut padding_block = None;
        let remainder = blocks_len % block_size;
        if remainder != 0 {
            if self.has_padding_block() {
                return Err(Tr31Error::OptionalBlocksNotAligned {
                    len: blocks_len,
                    block_size,
                });
            }
            let mut pb_len = block_size - remainder;
            if pb_len < SHORT_OPTIONAL_BLOCK_OVERHEAD {
                pb_len += block_size;
            }
            let filler: String =
                core::iter::repeat_n('0', pb_len - SHORT_OPTIONAL_BLOCK_OVERHEAD).collect();
            padding_block = Some(OptionalBlock {
                id: OptionalBlockId::PB,
                data: filler,
            });
        }
        let count = self.optional_blocks.len() + usize::from(padding_block.is_some());
        if count > MAX_OPTIONAL_BLOCKS {
            return Err(Tr31Error::TooManyOptionalBlocks { count });
        }
        let header_len = FIXED_HEADER_LEN
            + blocks_len
            + padding_block.as_ref().map_or(0, OptionalBlock::encoded_len);
        let total = header_len + 2 * field_len + 2 * self.version.mac_len();
        if total > MAX_BLOCK_LEN {
            return Err(Tr31Error::BlockTooLong { len: total });
        }

        let mut out = String::with_capacity(total);
        out.push(self.version.as_char());
        push_decimal(&mut out, total, 4);
        let [u1, u2] = self.key_usage.to_bytes();
        out.push(char::from(u1));
        out.push(char::from(u2));
        out.push(self.algorithm.as_char());
        out.push(self.mode_of_use.as_char());
        let [v1, v2] = self.key_version.to_bytes();
        out.push(char::from(v1));
        out.push(char::from(v2));
        out.push(self.exportability.as_char());
        push_decimal(&mut out, count, 2);
        out.push(self.key_context.as_char());
        out.push('0');
        for block in self.optional_blocks.iter().chain(padding_block.as_ref()) {
            block.encode_into(&mut out);
        }
        Ok(out)
    }
}

impl FromStr for Header {
    type Err = Tr31Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// How much [`wrap`] hides the length of the key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyLengthMasking {
    /// Pad as if the key had the longest length of its algorithm (TDES 24, AES 32,
    /// DES 8 bytes), as X9.143 requires.
    #[default]
    AlgorithmMaximum,
    /// Only pad to the cipher block size (TR-31:2018 examples).
    Unmasked,
    /// Pad as if the key were this many bytes long (at least the key's length).
    MaskedLength(usize),
}

/// A key taken out of a key block, with the header that says what it is for.
#[derive(Debug)]
pub struct UnwrappedKey {
    /// The authenticated header.
    pub header: Header,
    /// The key (zeroized on drop).
    pub material: KeyMaterial,
}

impl UnwrappedKey {
    /// The key as a typed key of usage `U`, if the header's key usage maps to `U` (see
    /// [`KeyUsageCode::key_usage`]) and its mode of use fits (see
    /// [`ModeOfUse::permits`]).
    pub fn into_key<U: Usage>(self) -> Result<Key<U>, Tr31Error> {
        let expected = U::USAGE;
        if self.header.key_usage.key_usage() != Some(expected) {
            return Err(Tr31Error::WrongUsage {
                expected,
                found: self.header.key_usage,
            });
        }
        if !self.header.mode_of_use.permits(expected) {
            return Err(Tr31Error::ModeOfUseNotAllowed {
                usage: expected,
                mode: self.header.mode_of_use,
            });
        }
        Ok(Key::from_material(self.material))
    }
}

impl ModeOfUse {
    /// Whether a key of `usage` may carry this mode of use: encryption keys (PIN, data,
    /// KEK, KBPK) `B`/`D`/`E`, MAC and PIN verification keys `C`/`G`/`V`, DUKPT base and
    /// initial keys `X`; `N` (no restriction beyond the usage) fits every usage.
    pub const fn permits(self, usage: KeyUsage) -> bool {
        use ModeOfUse as M;
        if matches!(self, M::NoRestrictions) {
            return true;
        }
        match usage {
            KeyUsage::PinEncryption
            | KeyUsage::DataEncryption
            | KeyUsage::KeyEncryption
            | KeyUsage::KeyBlockProtection => {
                matches!(self, M::EncryptDecrypt | M::DecryptOnly | M::EncryptOnly)
            }
            KeyUsage::Mac | KeyUsage::PinVerification => matches!(
                self,
                M::MacGenerateVerify | M::MacGenerateOnly | M::MacVerifyOnly
            ),
            KeyUsage::Bdk | KeyUsage::DukptInitialKey => matches!(self, M::DeriveKeys),
        }
    }
}

/// Wraps `key` under `kbpk` as described by `header`, padding the key field with bytes from
/// `rng` as `masking` says. Returns the key block text.
pub fn wrap(
    kbpk: &KeyBlockProtectionKey,
    header: &Header,
    key: &KeyMaterial,
    masking: KeyLengthMasking,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<String, Tr31Error> {
    let max_len = key_algorithm_for(header.algorithm, key)?.max_len;
    let key_len = key.len();
    let masked = match masking {
        KeyLengthMasking::AlgorithmMaximum => max_len.max(key_len),
        KeyLengthMasking::Unmasked => key_len,
        KeyLengthMasking::MaskedLength(masked) if masked < key_len => {
            return Err(Tr31Error::MaskedLengthTooShort { masked, key_len });
        }
        KeyLengthMasking::MaskedLength(masked) if masked > MAX_BLOCK_LEN => {
            return Err(Tr31Error::BlockTooLong { len: masked });
        }
        KeyLengthMasking::MaskedLength(masked) => masked,
    };
    let field_len = (2 + masked).next_multiple_of(header.version.block_size());
    let mut padding = Zeroizing::new(vec![0u8; field_len - 2 - key_len]);
    rng.fill_bytes(&mut padding);
    wrap_with_padding(kbpk, header, key, &padding)
}

/// Wraps `key` with the given padding bytes (known-answer tests, the operator tool's
/// `--random`). `2 + key length + padding length` must be a multiple of the version's
/// cipher block size; the padding length thereby also sets the masked key length.
pub fn wrap_with_padding(
    kbpk: &KeyBlockProtectionKey,
    header: &Header,
    key: &KeyMaterial,
    padding: &[u8],
) -> Result<String, Tr31Error> {
    let version = header.version;
    let kbpk = kbpk.material();
    let kdf = kdf_parameters(version, kbpk)?;
    key_algorithm_for(header.algorithm, key)?;
    let block_size = version.block_size();
    let field_len = 2 + key.len() + padding.len();
    if !field_len.is_multiple_of(block_size) {
        return Err(Tr31Error::InvalidPaddingLength {
            key_len: key.len(),
            padding_len: padding.len(),
            block_size,
        });
    }
    let header_text = header.encode(field_len)?;

    // Lengths of supported keys are at most 32 bytes, so the bit count fits in u16.
    let bits =
        u16::try_from(key.len() * 8).map_err(|_| Tr31Error::BlockTooLong { len: field_len })?;
    let mut clear_field = Zeroizing::new(Vec::with_capacity(field_len));
    clear_field.extend_from_slice(&bits.to_be_bytes());
    clear_field.extend_from_slice(key.reveal_bytes());
    clear_field.extend_from_slice(padding);
    seal(version, kbpk, kdf, header_text, &clear_field)
}

/// MACs `header_text || clear_field` under the KBAK, encrypts the field under the KBEK with
/// the MAC as IV and assembles the key block.
fn seal(
    version: Version,
    kbpk: &KeyMaterial,
    kdf: KdfParameters,
    header_text: String,
    clear_field: &[u8],
) -> Result<String, Tr31Error> {
    let mut mac_input = Zeroizing::new(Vec::with_capacity(header_text.len() + clear_field.len()));
    mac_input.extend_from_slice(header_text.as_bytes());
    mac_input.extend_from_slice(clear_field);

    let keys = derive_binding_keys(kbpk, kdf)?;
    let mac = truncated_mac(&keys.authentication, &mac_input, version.mac_len());
    let mut field = Zeroizing::new(clear_field.to_vec());
    BlockCipher::new(&keys.encryption).cbc_encrypt(&mac, &mut field)?;

    let mut block = header_text;
    block.push_str(&hex::encode_upper(&*field));
    block.push_str(&hex::encode_upper(&mac));
    Ok(block)
}

/// Verifies and decrypts a key block. The key comes back with its authenticated header;
/// use [`UnwrappedKey::into_key`] to get a typed key.
pub fn unwrap(kbpk: &KeyBlockProtectionKey, block: &str) -> Result<UnwrappedKey, Tr31Error> {
    let bytes = block.as_bytes();
    check_printable(bytes)?;
    let parsed = parse_header(bytes)?;
    if parsed.declared_len != bytes.len() {
        return Err(Tr31Error::LengthMismatch {
            declared: parsed.declared_len,
            actual: bytes.len(),
        });
    }
    let header = parsed.header;
    let version = header.version;
    let block_size = version.block_size();
    let blocks_len = parsed.header_len - FIXED_HEADER_LEN;
    if !blocks_len.is_multiple_of(block_size) {
        return Err(Tr31Error::OptionalBlocksNotAligned {
            len: blocks_len,
            block_size,
        });
    }

    let mac_hex_len = 2 * version.mac_len();
    let after_header = bytes.len() - parsed.header_len;
    let field_hex_len = after_header
        .checked_sub(mac_hex_len)
        .ok_or(Tr31Error::MacTruncated {
            found: after_header,
            expected: mac_hex_len,
        })?;
    if field_hex_len == 0 || !field_hex_len.is_multiple_of(2 * block_size) {
        return Err(Tr31Error::EncryptedKeyLength {
            hex_chars: field_hex_len,
            block_size,
        });
    }
    let kdf = kdf_parameters(version, kbpk.material())?;

    let field_start = parsed.header_len;
    let mac_start = field_start + field_hex_len;
    let mut field = Zeroizing::new(vec![0u8; field_hex_len / 2]);
    decode_upper_hex(&bytes[field_start..mac_start], field_start, &mut field)?;
    let mut mac = vec![0u8; version.mac_len()];
    decode_upper_hex(&bytes[mac_start..], mac_start, &mut mac)?;

    let keys = derive_binding_keys(kbpk.material(), kdf)?;
    BlockCipher::new(&keys.encryption).cbc_decrypt(&mac, &mut field)?;
    let mut mac_input = Zeroizing::new(Vec::with_capacity(field_start + field.len()));
    mac_input.extend_from_slice(&bytes[..field_start]);
    mac_input.extend_from_slice(&field);
    let expected = truncated_mac(&keys.authentication, &mac_input, version.mac_len());
    if !bool::from(expected.ct_eq(&mac)) {
        return Err(Tr31Error::BadMac);
    }

    // Authenticated from here on.
    let Some((prefix, rest)) = field.split_first_chunk::<2>() else {
        return Err(Tr31Error::InvalidKeyLengthField {
            bits: 0,
            field_len: field.len(),
        });
    };
    let bits = u16::from_be_bytes(*prefix);
    let key_len = usize::from(bits / 8);
    if bits % 8 != 0 || key_len > rest.len() {
        return Err(Tr31Error::InvalidKeyLengthField {
            bits,
            field_len: field.len(),
        });
    }
    let algorithm = match header.algorithm {
        Algorithm::Aes => KeyAlgorithm::Aes,
        Algorithm::Tdes | Algorithm::Des => KeyAlgorithm::Tdes,
        other => return Err(Tr31Error::UnsupportedKeyAlgorithm { algorithm: other }),
    };
    if !header_algorithm_accepts(header.algorithm, key_len) {
        return Err(Tr31Error::KeyLengthMismatch {
            algorithm: header.algorithm,
            len: key_len,
        });
    }
    let material = KeyMaterial::new(algorithm, &rest[..key_len])?;
    Ok(UnwrappedKey { header, material })
}

fn is_printable(byte: u8) -> bool {
    (0x20..=0x7E).contains(&byte)
}

fn check_printable(bytes: &[u8]) -> Result<(), Tr31Error> {
    match bytes.iter().position(|&b| !is_printable(b)) {
        Some(offset) => Err(Tr31Error::NotPrintableAscii { offset }),
        None => Ok(()),
    }
}

fn invalid_field(field: HeaderField, found: &[u8]) -> Tr31Error {
    Tr31Error::InvalidField {
        field,
        found: found.iter().map(|&b| char::from(b)).collect(),
    }
}

fn parse_decimal(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + usize::from(d - b'0'))
    })
}

fn upper_hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn parse_upper_hex(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |acc, &d| {
        upper_hex_value(d).map(|v| (acc << 4) | usize::from(v))
    })
}

/// Decodes uppercase hex into `out` (exactly half as long); `offset` locates errors.
fn decode_upper_hex(text: &[u8], offset: usize, out: &mut [u8]) -> Result<(), Tr31Error> {
    for (i, (pair, byte)) in text.chunks_exact(2).zip(out.iter_mut()).enumerate() {
        let high = upper_hex_value(pair[0]).ok_or(Tr31Error::InvalidHex {
            offset: offset + 2 * i,
        })?;
        let low = upper_hex_value(pair[1]).ok_or(Tr31Error::InvalidHex {
            offset: offset + 2 * i + 1,
        })?;
        *byte = (high << 4) | low;
    }
    Ok(())
}

fn push_decimal(out: &mut String, value: usize, width: u32) {
    for position in (0..width).rev() {
        let digit = (value / 10usize.pow(position)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

fn push_hex(out: &mut String, value: usize, width: u32) {
    for position in (0..width).rev() {
        let nibble = (value >> (4 * position)) & 0xF;
        out.push(char::from(b"0123456789ABCDEF"[nibble]));
    }
}

struct ParsedHeader {
    header: Header,
    declared_len: usize,
    header_len: usize,
}

/// Parses the fixed header and the optional blocks of printable-ASCII `bytes`.
fn parse_header(bytes: &[u8]) -> Result<ParsedHeader, Tr31Error> {
    let fixed: &[u8; FIXED_HEADER_LEN] = bytes
        .get(..FIXED_HEADER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(Tr31Error::HeaderTooShort { len: bytes.len() })?;
    let version = Version::from_byte(fixed[0])?;
    let declared_len = parse_decimal(&fixed[1..5])
        .ok_or_else(|| invalid_field(HeaderField::BlockLength, &fixed[1..5]))?;
    let key_usage = KeyUsageCode::from_bytes([fixed[5], fixed[6]])
        .ok_or_else(|| invalid_field(HeaderField::KeyUsage, &fixed[5..7]))?;
    let algorithm = Algorithm::from_byte(fixed[7])?;
    let mode_of_use = ModeOfUse::from_byte(fixed[8])?;
    let key_version = match [fixed[9], fixed[10]] {
        [a, b] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => KeyVersion([a, b]),
        _ => return Err(invalid_field(HeaderField::KeyVersion, &fixed[9..11])),
    };
    let exportability = Exportability::from_byte(fixed[11])?;
    let block_count = parse_decimal(&fixed[12..14])
        .ok_or_else(|| invalid_field(HeaderField::OptionalBlockCount, &fixed[12..14]))?;
    let key_context = KeyContext::from_byte(fixed[14])?;
    if fixed[15] != b'0' {
        return Err(invalid_field(HeaderField::Reserved, &fixed[15..16]));
    }

    let mut optional_blocks: Vec<OptionalBlock> = Vec::new();
    let mut pos = FIXED_HEADER_LEN;
    for index in 0..block_count {
        let (block, len) = parse_optional_block(&bytes[pos..], index)?;
        if optional_blocks.iter().any(|b| b.id == block.id) {
            return Err(Tr31Error::DuplicateOptionalBlock { id: block.id });
        }
        if optional_blocks
            .last()
            .is_some_and(|b| b.id == OptionalBlockId::PB)
        {
            return Err(Tr31Error::PaddingBlockNotLast);
        }
        optional_blocks.push(block);
        pos += len;
    }
    Ok(ParsedHeader {
        header: Header {
            version,
            key_usage,
            algorithm,
            mode_of_use,
            key_version,
            exportability,
            key_context,
            optional_blocks,
        },
        declared_len,
        header_len: pos,
    })
}

/// Parses one optional block at the start of `bytes`; returns it and its encoded length.
fn parse_optional_block(bytes: &[u8], index: usize) -> Result<(OptionalBlock, usize), Tr31Error> {
    let truncated = Tr31Error::OptionalBlockTruncated { index };
    let bad_length = Tr31Error::InvalidOptionalBlockLength { index };
    let prefix = bytes
        .get(..SHORT_OPTIONAL_BLOCK_OVERHEAD)
        .ok_or(truncated.clone())?;
    let id_bytes = [prefix[0], prefix[1]];
    let id =
        OptionalBlockId::from_bytes(id_bytes).ok_or_else(|| Tr31Error::UnknownOptionalBlockId {
            index,
            found: id_bytes.iter().map(|&b| char::from(b)).collect(),
        })?;
    let short_len = parse_upper_hex(&prefix[2..4]).ok_or(bad_length.clone())?;
    let (total, data_start) = if short_len != 0 {
        (short_len, SHORT_OPTIONAL_BLOCK_OVERHEAD)
    } else {
        let digits_field = bytes.get(4..6).ok_or(truncated.clone())?;
        let digits = parse_upper_hex(digits_field).ok_or(bad_length.clone())?;
        if digits == 0 || digits > MAX_EXTENDED_LENGTH_DIGITS {
            return Err(bad_length);
        }
        let length_field = bytes.get(6..6 + digits).ok_or(truncated.clone())?;
        let total = parse_upper_hex(length_field).ok_or(bad_length.clone())?;
        (total, 6 + digits)
    };
    if total < data_start {
        return Err(bad_length);
    }
    let data = bytes.get(data_start..total).ok_or(truncated)?;
    if !data.iter().copied().all(is_printable) {
        return Err(Tr31Error::OptionalBlockNotPrintable { id });
    }
    let data = data.iter().map(|&b| char::from(b)).collect();
    Ok((OptionalBlock { id, data }, total))
}

/// Lengths a key of the header's algorithm may have, and the longest.
struct AlgorithmKeyLengths {
    max_len: usize,
}

/// Checks that `key` fits the header's algorithm (wrap side).
fn key_algorithm_for(
    algorithm: Algorithm,
    key: &KeyMaterial,
) -> Result<AlgorithmKeyLengths, Tr31Error> {
    let expected = match algorithm {
        Algorithm::Aes => KeyAlgorithm::Aes,
        Algorithm::Tdes | Algorithm::Des => KeyAlgorithm::Tdes,
        other => return Err(Tr31Error::UnsupportedKeyAlgorithm { algorithm: other }),
    };
    if key.algorithm() != expected || !header_algorithm_accepts(algorithm, key.len()) {
        return Err(Tr31Error::KeyAlgorithmMismatch {
            header: algorithm,
            key: key.algorithm(),
            len: key.len(),
        });
    }
    let max_len = match algorithm {
        Algorithm::Aes => 32,
        Algorithm::Des => 8,
        _ => 24,
    };
    Ok(AlgorithmKeyLengths { max_len })
}

/// Key lengths each header algorithm allows: `T` is 2- or 3-key TDES only (single-length
/// keys are algorithm `D`).
fn header_algorithm_accepts(algorithm: Algorithm, len: usize) -> bool {
    match algorithm {
        Algorithm::Aes => matches!(len, 16 | 24 | 32),
        Algorithm::Tdes => matches!(len, 16 | 24),
        Algorithm::Des => len == 8,
        _ => false,
    }
}

/// The algorithm indicator and length (bits) of the TR-31 KDF input for this KBPK.
#[derive(Clone, Copy)]
struct KdfParameters {
    algorithm_indicator: u16,
    length_bits: u16,
}

fn kdf_parameters(version: Version, kbpk: &KeyMaterial) -> Result<KdfParameters, Tr31Error> {
    let (algorithm_indicator, length_bits) = match (version, kbpk.algorithm(), kbpk.len()) {
        (Version::B, KeyAlgorithm::Tdes, 16) => (0x0000, 128),
        (Version::B, KeyAlgorithm::Tdes, 24) => (0x0001, 192),
        (Version::D, KeyAlgorithm::Aes, 16) => (0x0002, 128),
        (Version::D, KeyAlgorithm::Aes, 24) => (0x0003, 192),
        (Version::D, KeyAlgorithm::Aes, 32) => (0x0004, 256),
        (version, algorithm, len) => {
            return Err(Tr31Error::WrongKbpk {
                version,
                algorithm,
                len,
            });
        }
    };
    Ok(KdfParameters {
        algorithm_indicator,
        length_bits,
    })
}

struct BindingKeys {
    encryption: KeyMaterial,
    authentication: KeyMaterial,
}

const KEY_USAGE_INDICATOR_ENCRYPTION: u16 = 0x0000;
const KEY_USAGE_INDICATOR_MAC: u16 = 0x0001;

/// KBEK and KBAK from the KBPK: CMAC in counter mode over
/// `counter || key usage indicator || 00 || algorithm indicator || length`, as many
/// blocks as the KBPK is long, truncated to its length.
fn derive_binding_keys(kbpk: &KeyMaterial, kdf: KdfParameters) -> Result<BindingKeys, Tr31Error> {
    let cipher = BlockCipher::new(kbpk);
    let derive = |usage_indicator: u16| -> Result<KeyMaterial, Tr31Error> {
        let mut output = Zeroizing::new(Vec::with_capacity(kbpk.len() + cipher.block_size()));
        let mut counter = 1u8;
        while output.len() < kbpk.len() {
            let [u1, u2] = usage_indicator.to_be_bytes();
            let [a1, a2] = kdf.algorithm_indicator.to_be_bytes();
            let [l1, l2] = kdf.length_bits.to_be_bytes();
            let input = [counter, u1, u2, 0x00, a1, a2, l1, l2];
            output.extend_from_slice(&Zeroizing::new(cipher.cmac(&input)));
            counter += 1;
        }
        Ok(KeyMaterial::new(kbpk.algorithm(), &output[..kbpk.len()])?)
    };
    Ok(BindingKeys {
        encryption: derive(KEY_USAGE_INDICATOR_ENCRYPTION)?,
        authentication: derive(KEY_USAGE_INDICATOR_MAC)?,
    })
}

fn truncated_mac(kbak: &KeyMaterial, data: &[u8], len: usize) -> Vec<u8> {
    let mut mac = BlockCipher::new(kbak).cmac(data);
    mac.truncate(len);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proprietary_codes_are_two_digits() {
        assert_eq!(ProprietaryCode::new(7).map(|c| c.0), Some(*b"07"));
        assert_eq!(
            ProprietaryCode::new(99).map(ProprietaryCode::value),
            Some(99)
        );
        assert_eq!(ProprietaryCode::new(100), None);
        assert_eq!(
            KeyUsageCode::from_bytes(*b"42"),
            ProprietaryCode::new(42).map(KeyUsageCode::Proprietary)
        );
        assert_eq!(KeyUsageCode::from_bytes(*b"4X"), None);
        assert_eq!(KeyUsageCode::from_bytes(*b"Z0"), None);
    }

    #[test]
    fn extended_length_form_above_255() {
        let block = OptionalBlock::new(OptionalBlockId::LB, &"x".repeat(300)).unwrap();
        let mut text = String::new();
        block.encode_into(&mut text);
        assert_eq!(&text[..10], "LB00040136");
        assert_eq!(
            parse_optional_block(text.as_bytes(), 0).unwrap(),
            (block, 310)
        );
    }

    /// A correctly MACed version D block around an arbitrary clear key field, as only a
    /// holder of the KBPK could make it.
    fn forged_block(clear_field: &[u8]) -> (KeyBlockProtectionKey, String) {
        let kbpk = KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &[0x33; 16]).unwrap();
        let header = Header::parse("D0000P0AE00E0000").unwrap();
        let text = header.encode(clear_field.len()).unwrap();
        let kdf = kdf_parameters(Version::D, kbpk.material()).unwrap();
        let block = seal(Version::D, kbpk.material(), kdf, text, clear_field).unwrap();
        (kbpk, block)
    }

    #[test]
    fn authenticated_length_prefix_is_still_validated() {
        let mut field = [0x5Cu8; 32];
        let cases = [
            (
                0x0081,
                Tr31Error::InvalidKeyLengthField {
                    bits: 0x81,
                    field_len: 32,
                },
            ),
            (
                0x0100,
                Tr31Error::InvalidKeyLengthField {
                    bits: 0x100,
                    field_len: 32,
                },
            ),
            (
                0x00A0,
                Tr31Error::KeyLengthMismatch {
                    algorithm: Algorithm::Aes,
                    len: 20,
                },
            ),
            (
                0x0000,
                Tr31Error::KeyLengthMismatch {
                    algorithm: Algorithm::Aes,
                    len: 0,
                },
            ),
        ];
        for (bits, expected) in cases {
            field[..2].copy_from_slice(&u16::to_be_bytes(bits));
            let (kbpk, block) = forged_block(&field);
            assert_eq!(unwrap(&kbpk, &block).unwrap_err(), expected, "{bits:#06x}");
        }
        field[..2].copy_from_slice(&u16::to_be_bytes(0x0080));
        let (kbpk, block) = forged_block(&field);
        assert_eq!(
            unwrap(&kbpk, &block).unwrap().material.reveal_bytes(),
            &[0x5C; 16]
        );
    }

    #[test]
    fn decimal_and_hex_helpers() {
        let mut s = String::new();
        push_decimal(&mut s, 112, 4);
        push_hex(&mut s, 0x1A, 2);
        assert_eq!(s, "01121A");
        assert_eq!(parse_upper_hex(b"1a"), None);
        assert_eq!(parse_decimal(b"0x"), None);
    }
}
