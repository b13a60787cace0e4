//! ISO 9564-1 PIN blocks: formats 0, 1 and 3 (8-byte blocks under TDES) and format 4
//! (16-byte blocks under AES).
//!
//! The pipeline is `encode` (PIN, PAN and fill into a [`ClearPinBlock`]), `encipher` (under a
//! [`PinKey`]), and back: `decipher`, `decode` (strict validation into a [`Pin`]).
//! [`encrypt_pin`] and [`decrypt_pin`] run it end to end.
//!
//! Layouts, in nibbles (C control, N PIN length 4..=12, P PIN digit, F fill, R random):
//! - format 0: `0 N P.. F..` with fill `F`, XOR the account field `0000 A1..A12`;
//! - format 1: `1 N P.. R..` with random fill `0`-`F`, no PAN;
//! - format 3: `3 N P.. F..` with random fill `A`-`F`, XOR the account field;
//! - format 4: the plaintext PIN field `4 N P.. A..` (fill `A` up to nibble 15) followed by
//!   8 random bytes, and the PAN field `M A1..` (M = PAN length - 12, PAN padded to 12 digits
//!   with zeros on the left, then zeros on the right to 32 nibbles). Encipherment: encrypt the
//!   PIN field, XOR the PAN field, encrypt again (ISO 9564-1:2017, 9.4.2).
//!
//! For formats 0 and 3 the account field is the 12 rightmost PAN digits excluding the check
//! digit, right-justified and padded with zeros on the left when there are fewer. The clear
//! block of formats 0, 1 and 3 is what gets enciphered (PIN field XOR account field); for
//! format 4 it is the plaintext PIN field, and the PAN enters at encipherment.
//!
//! PINs and clear PIN blocks are secrets: zeroized on drop, redacted in `Debug`. Every
//! malformed block is a typed [`PinBlockError`]; note that a device answering a remote party
//! should collapse these into one failure, so the distinctions cannot serve as an oracle.

use core::fmt;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::keys::{KeyAlgorithm, PinKey};
use super::primitives::{BlockCipher, BlockError};

/// Fewest PIN digits ISO 9564-1 allows.
pub const MIN_PIN_DIGITS: usize = 4;
/// Most PIN digits ISO 9564-1 allows.
pub const MAX_PIN_DIGITS: usize = 12;
/// Fewest PAN digits accepted. ISO/IEC 7812-1 sets no floor this module can use; 8 keeps at
/// least 7 account digits in the format 0/3 binding.
pub const MIN_PAN_DIGITS: usize = 8;
/// Most PAN digits (ISO/IEC 7812-1).
pub const MAX_PAN_DIGITS: usize = 19;
/// Most fill nibbles any format takes from the caller (format 4: 8 random bytes).
pub const MAX_FILL_NIBBLES: usize = 16;

/// An ISO 9564-1 PIN block format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinBlockFormat {
    /// Format 0 (ANSI X9.8): fill `F`, bound to the PAN. TDES.
    Iso0,
    /// Format 1: random fill, no PAN. TDES.
    Iso1,
    /// Format 3: random fill `A`-`F`, bound to the PAN. TDES.
    Iso3,
    /// Format 4: 16-byte block, bound to the PAN through two encryptions. AES.
    Iso4,
}

impl PinBlockFormat {
    /// The format by its ISO number (0, 1, 3 or 4).
    pub fn from_number(number: u8) -> Result<Self, PinBlockError> {
        match number {
            0 => Ok(PinBlockFormat::Iso0),
            1 => Ok(PinBlockFormat::Iso1),
            3 => Ok(PinBlockFormat::Iso3),
            4 => Ok(PinBlockFormat::Iso4),
            _ => Err(PinBlockError::UnsupportedFormat { number }),
        }
    }

    /// The ISO number, which is also the control nibble.
    pub const fn number(self) -> u8 {
        match self {
            PinBlockFormat::Iso0 => 0,
            PinBlockFormat::Iso1 => 1,
            PinBlockFormat::Iso3 => 3,
            PinBlockFormat::Iso4 => 4,
        }
    }

    /// Block length in bytes: 8, or 16 for format 4.
    pub const fn block_len(self) -> usize {
        match self {
            PinBlockFormat::Iso4 => 16,
            _ => 8,
        }
    }

    /// The cipher family the format is defined for: AES for format 4, TDES otherwise.
    pub const fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            PinBlockFormat::Iso4 => KeyAlgorithm::Aes,
            _ => KeyAlgorithm::Tdes,
        }
    }

    /// Whether the format binds the PIN to a PAN (all but format 1).
    pub const fn uses_pan(self) -> bool {
        !matches!(self, PinBlockFormat::Iso1)
    }

    /// How many fill nibbles the caller supplies for a PIN of `pin_digits` digits, as
    /// [`encode_with_fill`] expects them: none for format 0 (its fill is fixed), `14 - digits`
    /// for formats 1 and 3 (the nibbles after the PIN), 16 for format 4 (its 8 random bytes;
    /// its `A` fill is fixed).
    pub const fn fill_nibbles(self, pin_digits: usize) -> usize {
        match self {
            PinBlockFormat::Iso0 => 0,
            PinBlockFormat::Iso1 | PinBlockFormat::Iso3 => 14usize.saturating_sub(pin_digits),
            PinBlockFormat::Iso4 => 16,
        }
    }

    /// The nibble values the caller-supplied fill may take.
    const fn fill_range(self) -> core::ops::RangeInclusive<u8> {
        match self {
            PinBlockFormat::Iso3 => 0xA..=0xF,
            _ => 0x0..=0xF,
        }
    }
}

impl TryFrom<u8> for PinBlockFormat {
    type Error = PinBlockError;

    fn try_from(number: u8) -> Result<Self, Self::Error> {
        Self::from_number(number)
    }
}

impl fmt::Display for PinBlockFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ISO 9564 format {}", self.number())
    }
}

/// What is wrong with a PIN, PAN, fill, key or PIN block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinBlockError {
    /// A PIN must have 4 to 12 digits.
    #[error("a PIN has 4 to 12 digits, not {len}")]
    PinLength {
        /// Characters given.
        len: usize,
    },
    /// A PIN holds decimal digits only.
    #[error("PIN character {position} is not a decimal digit")]
    PinNotDecimal {
        /// Zero-based position of the first offending character.
        position: usize,
    },
    /// A PAN must have 8 to 19 digits.
    #[error("a PAN has 8 to 19 digits, not {len}")]
    PanLength {
        /// Characters given.
        len: usize,
    },
    /// A PAN holds decimal digits only.
    #[error("PAN character {position} is not a decimal digit")]
    PanNotDecimal {
        /// Zero-based position of the first offending character.
        position: usize,
    },
    /// Only formats 0, 1, 3 and 4 are supported.
    #[error("PIN block format {number} is not supported (0, 1, 3 or 4)")]
    UnsupportedFormat {
        /// The number given.
        number: u8,
    },
    /// Formats 0, 3 and 4 bind the PIN to a PAN, and none was given.
    #[error("{format} needs the PAN")]
    PanRequired {
        /// The format.
        format: PinBlockFormat,
    },
    /// A PIN block of the wrong length.
    #[error("a {format} block is {expected} bytes, got {actual}")]
    BlockLength {
        /// The format.
        format: PinBlockFormat,
        /// Its block length.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// The control nibble names another format.
    #[error("control nibble {found:X} does not match {format}")]
    ControlNibble {
        /// The format expected.
        format: PinBlockFormat,
        /// The nibble found.
        found: u8,
    },
    /// The PIN length nibble is outside 4..=12.
    #[error("PIN length nibble {found:X} is outside 4..=C")]
    PinLengthNibble {
        /// The nibble found.
        found: u8,
    },
    /// A PIN digit nibble is not 0-9.
    #[error("PIN digit nibble at position {position} is not decimal")]
    PinDigitNotDecimal {
        /// Nibble position in the PIN field (0 = control nibble).
        position: usize,
    },
    /// A fill nibble has a value the format forbids (format 0: `F`; 3: `A`-`F`; 4: `A`).
    #[error("{format} fill nibble at position {position} is invalid")]
    InvalidFill {
        /// The format.
        format: PinBlockFormat,
        /// Nibble position in the PIN field (0 = control nibble).
        position: usize,
    },
    /// A caller-supplied fill of the wrong number of nibbles.
    #[error("{format} with this PIN takes {expected} fill nibbles, got {actual}")]
    FillLength {
        /// The format.
        format: PinBlockFormat,
        /// Nibbles it takes (see [`PinBlockFormat::fill_nibbles`]).
        expected: usize,
        /// Nibbles given.
        actual: usize,
    },
    /// A caller-supplied fill nibble the format forbids (format 3 takes `A`-`F` only).
    #[error("{format} cannot take fill nibble {position} of the value given")]
    FillNibble {
        /// The format.
        format: PinBlockFormat,
        /// Zero-based position in the fill.
        position: usize,
    },
    /// A fill given as hex with a non-hex character, or a nibble value above 15.
    #[error("fill character {position} is not a hex digit")]
    FillNotHex {
        /// Zero-based position.
        position: usize,
    },
    /// A fill longer than any format takes.
    #[error("a fill has at most 16 nibbles, got {len}")]
    FillTooLong {
        /// Nibbles given.
        len: usize,
    },
    /// The key's algorithm is not the format's.
    #[error("{format} is enciphered under {expected}, not {actual}")]
    KeyAlgorithm {
        /// The format.
        format: PinBlockFormat,
        /// The algorithm it needs.
        expected: KeyAlgorithm,
        /// The key's algorithm.
        actual: KeyAlgorithm,
    },
    /// Single-length DES is not allowed for PIN encipherment (ISO 9564-2); TDES keys are 16 or
    /// 24 bytes.
    #[error("{format} needs a 16- or 24-byte TDES key, not single DES")]
    SingleDesKey {
        /// The format.
        format: PinBlockFormat,
    },
    /// Internal cipher error (a bug, never input-dependent).
    #[error("internal cipher error: {0}")]
    Cipher(#[from] BlockError),
}

/// A PIN: 4 to 12 decimal digits. Zeroized on drop; `Debug` shows only the digit count;
/// equality is constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pin {
    /// ASCII digits; only the first `len` are meaningful.
    digits: [u8; MAX_PIN_DIGITS],
    len: usize,
}

impl Pin {
    /// Validates `pin` (4 to 12 ASCII digits).
    pub fn new(pin: &str) -> Result<Self, PinBlockError> {
        let bytes = pin.as_bytes();
        if !(MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&bytes.len()) {
            return Err(PinBlockError::PinLength { len: bytes.len() });
        }
        let mut digits = [0u8; MAX_PIN_DIGITS];
        for (position, (slot, &b)) in digits.iter_mut().zip(bytes).enumerate() {
            if !b.is_ascii_digit() {
                digits.zeroize();
                return Err(PinBlockError::PinNotDecimal { position });
            }
            *slot = b;
        }
        Ok(Self {
            digits,
            len: bytes.len(),
        })
    }

    /// Builds a PIN from digit values 0..=9 (already range-checked by the caller).
    fn from_values(values: &[u8]) -> Self {
        let mut digits = [0u8; MAX_PIN_DIGITS];
        for (slot, v) in digits.iter_mut().zip(values) {
            *slot = b'0' + v;
        }
        Self {
            digits,
            len: values.len().min(MAX_PIN_DIGITS),
        }
    }

    /// Number of digits.
    pub fn digit_count(&self) -> usize {
        self.len
    }

    /// The digits as ASCII. Named loudly so every disclosure is visible in review.
    pub fn reveal_digits(&self) -> &str {
        core::str::from_utf8(self.ascii()).unwrap_or_default()
    }

    fn ascii(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or_default()
    }

    fn digit_values(&self) -> impl Iterator<Item = u8> + '_ {
        self.ascii().iter().map(|d| d - b'0')
    }
}

impl ConstantTimeEq for Pin {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        // Lengths are compared too; the digit arrays are fixed-size and zero-padded.
        self.digits.ct_eq(&other.digits) & (self.len as u64).ct_eq(&(other.len as u64))
    }
}

impl PartialEq for Pin {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Pin {}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin(<redacted>, {} digits)", self.len)
    }
}

/// A primary account number: 8 to 19 decimal digits. Not a key, but card data: `Debug` shows
/// only the last four digits.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pan {
    /// ASCII digits; only the first `len` are meaningful.
    digits: [u8; MAX_PAN_DIGITS],
    len: usize,
}

impl Pan {
    /// Validates `pan` (8 to 19 ASCII digits; no Luhn check, PIN blocks do not need one).
    pub fn new(pan: &str) -> Result<Self, PinBlockError> {
        let bytes = pan.as_bytes();
        if !(MIN_PAN_DIGITS..=MAX_PAN_DIGITS).contains(&bytes.len()) {
            return Err(PinBlockError::PanLength { len: bytes.len() });
        }
        let mut digits = [0u8; MAX_PAN_DIGITS];
        for (position, (slot, &b)) in digits.iter_mut().zip(bytes).enumerate() {
            if !b.is_ascii_digit() {
                return Err(PinBlockError::PanNotDecimal { position });
            }
            *slot = b;
        }
        Ok(Self {
            digits,
            len: bytes.len(),
        })
    }

    /// The digits.
    pub fn digits(&self) -> &str {
        core::str::from_utf8(self.ascii()).unwrap_or_default()
    }

    /// Number of digits.
    pub fn digit_count(&self) -> usize {
        self.len
    }

    fn ascii(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or_default()
    }

    /// The format 0/3 account field: `0000` then the 12 rightmost digits excluding the check
    /// digit, padded with zeros on the left.
    fn account_field(&self) -> [u8; 8] {
        let without_check = self.ascii().split_last().map_or(&[][..], |(_, rest)| rest);
        let take = without_check.len().min(12);
        let digits = without_check
            .get(without_check.len() - take..)
            .unwrap_or_default();
        let mut field = [0u8; 8];
        // Nibbles 4..16 hold the 12 account digits; `start` leaves the zero padding.
        let start = 16 - take;
        for (i, d) in digits.iter().enumerate() {
            set_nibble(&mut field, start + i, d - b'0');
        }
        field
    }

    /// The format 4 PAN field: `M` (length - 12, or 0 below 12 digits), the PAN padded on the
    /// left with zeros to 12 digits, then zero nibbles to 32.
    fn format4_field(&self) -> [u8; 16] {
        let digits = self.ascii();
        let mut field = [0u8; 16];
        let m = digits.len().saturating_sub(12);
        // M is at most 7 because a PAN has at most 19 digits.
        set_nibble(&mut field, 0, m as u8);
        let start = 1 + 12usize.saturating_sub(digits.len());
        for (i, d) in digits.iter().enumerate() {
            set_nibble(&mut field, start + i, d - b'0');
        }
        field
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.ascii();
        let last4 = ascii
            .get(ascii.len().saturating_sub(4)..)
            .unwrap_or_default();
        write!(
            f,
            "Pan(…{}, {} digits)",
            core::str::from_utf8(last4).unwrap_or_default(),
            self.len
        )
    }
}

/// Fill nibbles chosen by the caller instead of drawn from an RNG: for deterministic tests
/// and the operator's `--fill HEX`. How many a format takes: [`PinBlockFormat::fill_nibbles`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ExplicitFill {
    nibbles: [u8; MAX_FILL_NIBBLES],
    len: usize,
}

impl ExplicitFill {
    /// Fill from hex digits, one nibble each (upper or lower case), at most 16.
    pub fn from_hex(hex: &str) -> Result<Self, PinBlockError> {
        let chars = hex.as_bytes();
        if chars.len() > MAX_FILL_NIBBLES {
            return Err(PinBlockError::FillTooLong { len: chars.len() });
        }
        let mut nibbles = [0u8; MAX_FILL_NIBBLES];
        for (position, (slot, &c)) in nibbles.iter_mut().zip(chars).enumerate() {
            *slot = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(PinBlockError::FillNotHex { position }),
            };
        }
        Ok(Self {
            nibbles,
            len: chars.len(),
        })
    }

    /// Fill from nibble values (each 0..=15), at most 16.
    pub fn from_nibbles(values: &[u8]) -> Result<Self, PinBlockError> {
        if values.len() > MAX_FILL_NIBBLES {
            return Err(PinBlockError::FillTooLong { len: values.len() });
        }
        let mut nibbles = [0u8; MAX_FILL_NIBBLES];
        for (position, (slot, &v)) in nibbles.iter_mut().zip(values).enumerate() {
            if v > 0xF {
                return Err(PinBlockError::FillNotHex { position });
            }
            *slot = v;
        }
        Ok(Self {
            nibbles,
            len: values.len(),
        })
    }

    /// Number of nibbles.
    pub fn nibble_count(&self) -> usize {
        self.len
    }

    fn nibbles(&self) -> &[u8] {
        self.nibbles.get(..self.len).unwrap_or_default()
    }
}

impl fmt::Debug for ExplicitFill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExplicitFill({} nibbles)", self.len)
    }
}

/// A clear PIN block: for formats 0, 1 and 3 the 8-byte block that gets enciphered (PIN
/// field XOR account field for 0 and 3); for format 4 the 16-byte plaintext PIN field. A
/// secret: zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClearPinBlock {
    #[zeroize(skip)]
    format: PinBlockFormat,
    bytes: [u8; 16],
}

impl ClearPinBlock {
    /// A clear block received as bytes (the operator's `decode` without a key). Only the
    /// length is checked here; [`decode`] validates the content.
    pub fn from_bytes(format: PinBlockFormat, bytes: &[u8]) -> Result<Self, PinBlockError> {
        check_block_len(format, bytes)?;
        let mut block = [0u8; 16];
        block[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            format,
            bytes: block,
        })
    }

    /// The format.
    pub fn format(&self) -> PinBlockFormat {
        self.format
    }

    /// The block bytes (8, or 16 for format 4). Named loudly: this is the PIN in the clear.
    pub fn reveal_bytes(&self) -> &[u8] {
        &self.bytes[..self.format.block_len()]
    }
}

impl fmt::Debug for ClearPinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClearPinBlock({}, <redacted>)", self.format)
    }
}

/// An enciphered PIN block (8 bytes, or 16 for format 4). Safe to show and send.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncipheredPinBlock {
    format: PinBlockFormat,
    bytes: [u8; 16],
}

impl EncipheredPinBlock {
    /// An enciphered block received as bytes; checks the length.
    pub fn from_bytes(format: PinBlockFormat, bytes: &[u8]) -> Result<Self, PinBlockError> {
        check_block_len(format, bytes)?;
        let mut block = [0u8; 16];
        block[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            format,
            bytes: block,
        })
    }

    /// The format.
    pub fn format(&self) -> PinBlockFormat {
        self.format
    }

    /// The block bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.format.block_len()]
    }
}

impl fmt::Debug for EncipheredPinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncipheredPinBlock({}, ", self.format)?;
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02X}"))?;
        f.write_str(")")
    }
}

fn check_block_len(format: PinBlockFormat, bytes: &[u8]) -> Result<(), PinBlockError> {
    if bytes.len() == format.block_len() {
        Ok(())
    } else {
        Err(PinBlockError::BlockLength {
            format,
            expected: format.block_len(),
            actual: bytes.len(),
        })
    }
}

fn nibble(bytes: &[u8; 16], index: usize) -> u8 {
    let byte = bytes[(index / 2) % 16];
    if index.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0F
    }
}

fn set_nibble<const N: usize>(bytes: &mut [u8; N], index: usize, value: u8) {
    let byte = &mut bytes[(index / 2) % N];
    if index.is_multiple_of(2) {
        *byte = (*byte & 0x0F) | (value << 4);
    } else {
        *byte = (*byte & 0xF0) | (value & 0x0F);
    }
}

fn xor_into<const N: usize>(target: &mut [u8], mask: &[u8; N]) {
    target.iter_mut().zip(mask).for_each(|(t, m)| *t ^= m);
}

fn require_pan(format: PinBlockFormat, pan: Option<&Pan>) -> Result<Option<&Pan>, PinBlockError> {
    match (format.uses_pan(), pan) {
        (true, None) => Err(PinBlockError::PanRequired { format }),
        (true, Some(pan)) => Ok(Some(pan)),
        (false, _) => Ok(None),
    }
}

/// A source of fill nibbles: draws from the caller's RNG, or explicit nibbles.
enum FillSource<'a> {
    Random(&'a mut dyn FnMut() -> u32),
    Explicit(&'a ExplicitFill),
}

impl FillSource<'_> {
    /// `count` fill nibbles for `format`, each within the format's range.
    fn nibbles(
        &mut self,
        format: PinBlockFormat,
        count: usize,
    ) -> Result<Zeroizing<[u8; MAX_FILL_NIBBLES]>, PinBlockError> {
        let range = format.fill_range();
        let mut out = Zeroizing::new([0u8; MAX_FILL_NIBBLES]);
        match self {
            FillSource::Explicit(fill) => {
                if fill.nibble_count() != count {
                    return Err(PinBlockError::FillLength {
                        format,
                        expected: count,
                        actual: fill.nibble_count(),
                    });
                }
                for (position, (slot, &v)) in out.iter_mut().zip(fill.nibbles()).enumerate() {
                    if !range.contains(&v) {
                        return Err(PinBlockError::FillNibble { format, position });
                    }
                    *slot = v;
                }
            }
            FillSource::Random(draw) => {
                let span = range.end() - range.start() + 1;
                // Rejection sampling keeps every value in the range equally likely.
                let limit = u32::from(u8::MAX) + 1 - (256 % u32::from(span));
                for slot in out.iter_mut().take(count) {
                    *slot = loop {
                        let r = draw() & 0xFF;
                        if r < limit {
                            break range.start() + (r % u32::from(span)) as u8;
                        }
                    };
                }
            }
        }
        Ok(out)
    }
}

fn encode_from(
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    mut fill: FillSource<'_>,
) -> Result<ClearPinBlock, PinBlockError> {
    let pan = require_pan(format, pan)?;
    let fill_count = format.fill_nibbles(pin.digit_count());
    let fill = fill.nibbles(format, fill_count)?;
    let mut block = ClearPinBlock {
        format,
        bytes: [0u8; 16],
    };
    let bytes = &mut block.bytes;
    set_nibble(bytes, 0, format.number());
    // At most 12, checked when the PIN was built.
    set_nibble(bytes, 1, pin.digit_count() as u8);
    let after_pin = 2 + pin.digit_count();
    for (i, d) in pin.digit_values().enumerate() {
        set_nibble(bytes, 2 + i, d);
    }
    match format {
        PinBlockFormat::Iso0 => (after_pin..16).for_each(|i| set_nibble(bytes, i, 0xF)),
        PinBlockFormat::Iso1 | PinBlockFormat::Iso3 => {
            for (i, &v) in (after_pin..16).zip(fill.iter()) {
                set_nibble(bytes, i, v);
            }
        }
        PinBlockFormat::Iso4 => {
            (after_pin..16).for_each(|i| set_nibble(bytes, i, 0xA));
            for (i, &v) in (16..32).zip(fill.iter()) {
                set_nibble(bytes, i, v);
            }
        }
    }
    if let (PinBlockFormat::Iso0 | PinBlockFormat::Iso3, Some(pan)) = (format, pan) {
        xor_into(&mut bytes[..8], &pan.account_field());
    }
    Ok(block)
}

/// Encodes `pin` into a clear PIN block, drawing random fill (formats 1, 3 and 4) from
/// `rng`. `pan` is required for formats 0, 3 and 4 and ignored for format 1.
pub fn encode(
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<ClearPinBlock, PinBlockError> {
    let mut draw = || rng.next_u32();
    encode_from(format, pin, pan, FillSource::Random(&mut draw))
}

/// Encodes `pin` with fill chosen by the caller instead of an RNG, for deterministic tests
/// and operator use. `fill` must have exactly [`PinBlockFormat::fill_nibbles`] nibbles (none
/// for format 0; `14 - digits` for 1 and 3, each `A`-`F` for 3; 16 for format 4's random
/// bytes). Never use a fixed fill in production: formats 1, 3 and 4 rely on it being random.
pub fn encode_with_fill(
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    fill: &ExplicitFill,
) -> Result<ClearPinBlock, PinBlockError> {
    encode_from(format, pin, pan, FillSource::Explicit(fill))
}

/// Decodes a clear PIN block back to the PIN, validating every nibble: control nibble, PIN
/// length 4..=12, decimal PIN digits, and fill (format 0: `F`; 1: anything; 3: `A`-`F`;
/// 4: `A` up to nibble 15, then 8 random bytes). `pan` is required for formats 0 and 3 (to
/// remove the account field) and ignored for 1 and 4.
pub fn decode(block: &ClearPinBlock, pan: Option<&Pan>) -> Result<Pin, PinBlockError> {
    let format = block.format;
    let mut field = Zeroizing::new(block.bytes);
    if matches!(format, PinBlockFormat::Iso0 | PinBlockFormat::Iso3) {
        let pan = pan.ok_or(PinBlockError::PanRequired { format })?;
        xor_into(&mut field[..8], &pan.account_field());
    }
    let control = nibble(&field, 0);
    if control != format.number() {
        return Err(PinBlockError::ControlNibble {
            format,
            found: control,
        });
    }
    let len = usize::from(nibble(&field, 1));
    if !(MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&len) {
        return Err(PinBlockError::PinLengthNibble { found: len as u8 });
    }
    let mut digits = Zeroizing::new([0u8; MAX_PIN_DIGITS]);
    for (position, slot) in (2..2 + len).zip(digits.iter_mut()) {
        let d = nibble(&field, position);
        if d > 9 {
            return Err(PinBlockError::PinDigitNotDecimal { position });
        }
        *slot = d;
    }
    for position in 2 + len..16 {
        let f = nibble(&field, position);
        let valid = match format {
            PinBlockFormat::Iso0 => f == 0xF,
            PinBlockFormat::Iso1 => true,
            PinBlockFormat::Iso3 => f >= 0xA,
            PinBlockFormat::Iso4 => f == 0xA,
        };
        if !valid {
            return Err(PinBlockError::InvalidFill { format, position });
        }
    }
    Ok(Pin::from_values(&digits[..len]))
}

/// The key must be the format's algorithm, and TDES keys double or triple length.
fn cipher_for(format: PinBlockFormat, key: &PinKey) -> Result<BlockCipher, PinBlockError> {
    let expected = format.key_algorithm();
    if key.algorithm() != expected {
        return Err(PinBlockError::KeyAlgorithm {
            format,
            expected,
            actual: key.algorithm(),
        });
    }
    if key.algorithm() == KeyAlgorithm::Tdes && key.material().len() == 8 {
        return Err(PinBlockError::SingleDesKey { format });
    }
    Ok(BlockCipher::new(key.material()))
}

/// The PAN field format 4 mixes in between its two encryptions; `None` for other formats.
fn format4_pan_field(
    format: PinBlockFormat,
    pan: Option<&Pan>,
) -> Result<Option<[u8; 16]>, PinBlockError> {
    match (format, pan) {
        (PinBlockFormat::Iso4, Some(pan)) => Ok(Some(pan.format4_field())),
        (PinBlockFormat::Iso4, None) => Err(PinBlockError::PanRequired { format }),
        _ => Ok(None),
    }
}

/// Enciphers a clear PIN block under `key`: TDES ECB of the block for formats 0, 1 and 3;
/// for format 4, AES of the PIN field, XOR the PAN field, AES again (so `pan` is required
/// for format 4 and ignored otherwise: formats 0 and 3 took it at encoding).
pub fn encipher(
    block: &ClearPinBlock,
    pan: Option<&Pan>,
    key: &PinKey,
) -> Result<EncipheredPinBlock, PinBlockError> {
    let format = block.format;
    let cipher = cipher_for(format, key)?;
    let pan_field = format4_pan_field(format, pan)?;
    let mut out = Zeroizing::new(block.bytes);
    let len = format.block_len();
    cipher.ecb_encrypt(&mut out[..len])?;
    if let Some(pan_field) = pan_field {
        xor_into(&mut out[..], &pan_field);
        cipher.ecb_encrypt(&mut out[..])?;
    }
    Ok(EncipheredPinBlock {
        format,
        bytes: *out,
    })
}

/// Deciphers a PIN block under `key` into the clear block [`decode`] takes: the inverse of
/// [`encipher`] (format 4: decrypt, XOR the PAN field, decrypt; `pan` required for format 4
/// and ignored otherwise). A wrong key or PAN shows up as a decode error, not here.
pub fn decipher(
    block: &EncipheredPinBlock,
    pan: Option<&Pan>,
    key: &PinKey,
) -> Result<ClearPinBlock, PinBlockError> {
    let format = block.format;
    let cipher = cipher_for(format, key)?;
    let mut clear = ClearPinBlock {
        format,
        bytes: block.bytes,
    };
    let pan_field = format4_pan_field(format, pan)?;
    let len = format.block_len();
    cipher.ecb_decrypt(&mut clear.bytes[..len])?;
    if let Some(pan_field) = pan_field {
        xor_into(&mut clear.bytes[..], &pan_field);
        cipher.ecb_decrypt(&mut clear.bytes[..])?;
    }
    Ok(clear)
}

/// Encodes and enciphers in one step, with random fill from `rng`.
pub fn encrypt_pin(
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    key: &PinKey,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<EncipheredPinBlock, PinBlockError> {
    // Check the key before drawing fill, so a misconfigured key fails the same way every time.
    cipher_for(format, key)?;
    encipher(&encode(format, pin, pan, rng)?, pan, key)
}

/// Deciphers and decodes in one step.
pub fn decrypt_pin(
    block: &EncipheredPinBlock,
    pan: Option<&Pan>,
    key: &PinKey,
) -> Result<Pin, PinBlockError> {
    decode(&decipher(block, pan, key)?, pan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn pin_validation_and_redaction() {
        assert_eq!(Pin::new("123"), Err(PinBlockError::PinLength { len: 3 }));
        assert_eq!(
            Pin::new("1234567890123"),
            Err(PinBlockError::PinLength { len: 13 })
        );
        assert_eq!(
            Pin::new("12a4"),
            Err(PinBlockError::PinNotDecimal { position: 2 })
        );
        let pin = Pin::new("987654").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>, 6 digits)");
        assert_eq!(pin.reveal_digits(), "987654");
        assert_eq!(pin, Pin::new("987654").unwrap());
        assert_ne!(pin, Pin::new("9876540").unwrap());
    }

    #[test]
    fn pan_validation_and_fields() {
        assert_eq!(
            Pan::new("1234567"),
            Err(PinBlockError::PanLength { len: 7 })
        );
        assert_eq!(
            Pan::new("12345678901234567890"),
            Err(PinBlockError::PanLength { len: 20 })
        );
        assert_eq!(
            Pan::new("4111-1111"),
            Err(PinBlockError::PanNotDecimal { position: 4 })
        );
        let pan = Pan::new("43219876543210987").unwrap();
        assert_eq!(hex::encode(pan.account_field()), "0000987654321098");
        assert_eq!(format!("{pan:?}"), "Pan(…0987, 17 digits)");
        // Fewer than 12 digits before the check digit: zeros on the left.
        let short = Pan::new("12345678").unwrap();
        assert_eq!(hex::encode(short.account_field()), "0000000001234567");
        assert_eq!(
            hex::encode(short.format4_field()),
            "00000123456780000000000000000000"
        );
    }

    #[test]
    fn clear_block_debug_is_redacted() {
        let pin = Pin::new("1234").unwrap();
        let block = encode_with_fill(
            PinBlockFormat::Iso1,
            &pin,
            None,
            &ExplicitFill::from_hex("ABCDEF0123").unwrap(),
        )
        .unwrap();
        let shown = format!("{block:?}");
        assert_eq!(shown, "ClearPinBlock(ISO 9564 format 1, <redacted>)");
    }

    #[test]
    fn explicit_fill_rules() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("43219876543210987").unwrap();
        assert_eq!(
            encode_with_fill(
                PinBlockFormat::Iso3,
                &pin,
                Some(&pan),
                &ExplicitFill::from_hex("ABCDEF0123").unwrap()
            )
            .unwrap_err(),
            PinBlockError::FillNibble {
                format: PinBlockFormat::Iso3,
                position: 6
            }
        );
        assert_eq!(
            encode_with_fill(
                PinBlockFormat::Iso0,
                &pin,
                Some(&pan),
                &ExplicitFill::from_hex("F").unwrap()
            )
            .unwrap_err(),
            PinBlockError::FillLength {
                format: PinBlockFormat::Iso0,
                expected: 0,
                actual: 1
            }
        );
        assert_eq!(
            ExplicitFill::from_hex("12G").unwrap_err(),
            PinBlockError::FillNotHex { position: 2 }
        );
        assert_eq!(
            ExplicitFill::from_hex("00112233445566778").unwrap_err(),
            PinBlockError::FillTooLong { len: 17 }
        );
        assert_eq!(
            ExplicitFill::from_nibbles(&[1, 16]).unwrap_err(),
            PinBlockError::FillNotHex { position: 1 }
        );
    }

    #[test]
    fn random_format3_fill_covers_a_to_f_only() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("43219876543210987").unwrap();
        let mut seen = [false; 16];
        for _ in 0..64 {
            let block = encode(PinBlockFormat::Iso3, &pin, Some(&pan), &mut rng).unwrap();
            let mut field = block.bytes;
            xor_into(&mut field[..8], &pan.account_field());
            for i in 6..16 {
                seen[usize::from(nibble(&field, i))] = true;
            }
            assert_eq!(decode(&block, Some(&pan)).unwrap(), pin);
        }
        assert_eq!(&seen[..10], &[false; 10]);
        assert_eq!(&seen[10..], &[true; 6]);
    }

    #[test]
    fn key_must_match_the_format() {
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("43219876543210987").unwrap();
        let clear0 = encode_with_fill(
            PinBlockFormat::Iso0,
            &pin,
            Some(&pan),
            &ExplicitFill::from_hex("").unwrap(),
        )
        .unwrap();
        let aes = PinKey::new(KeyAlgorithm::Aes, &[1; 16]).unwrap();
        assert_eq!(
            encipher(&clear0, Some(&pan), &aes).unwrap_err(),
            PinBlockError::KeyAlgorithm {
                format: PinBlockFormat::Iso0,
                expected: KeyAlgorithm::Tdes,
                actual: KeyAlgorithm::Aes
            }
        );
        let des = PinKey::new(KeyAlgorithm::Tdes, &[1; 8]).unwrap();
        assert_eq!(
            encipher(&clear0, Some(&pan), &des).unwrap_err(),
            PinBlockError::SingleDesKey {
                format: PinBlockFormat::Iso0
            }
        );
        let tdes = PinKey::new(KeyAlgorithm::Tdes, &[1; 16]).unwrap();
        let block4 = EncipheredPinBlock::from_bytes(PinBlockFormat::Iso4, &[0; 16]).unwrap();
        assert_eq!(
            decipher(&block4, Some(&pan), &tdes).unwrap_err(),
            PinBlockError::KeyAlgorithm {
                format: PinBlockFormat::Iso4,
                expected: KeyAlgorithm::Aes,
                actual: KeyAlgorithm::Tdes
            }
        );
    }

    #[test]
    fn pan_is_required_where_the_format_binds_it() {
        let pin = Pin::new("1234").unwrap();
        let fill = ExplicitFill::from_hex("0123456789ABCDEF").unwrap();
        assert_eq!(
            encode_with_fill(PinBlockFormat::Iso4, &pin, None, &fill).unwrap_err(),
            PinBlockError::PanRequired {
                format: PinBlockFormat::Iso4
            }
        );
        let clear = ClearPinBlock::from_bytes(PinBlockFormat::Iso3, &[0; 8]).unwrap();
        assert_eq!(
            decode(&clear, None).unwrap_err(),
            PinBlockError::PanRequired {
                format: PinBlockFormat::Iso3
            }
        );
    }
}
