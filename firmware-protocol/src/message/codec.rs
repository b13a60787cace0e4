//! The field encodings every message is built from, in one place so every message obeys the
//! same rules: big-endian integers, raw fixed-size byte strings, `u16` length prefixes
//! checked against the field's range and the remaining input before anything is allocated,
//! strings as UTF-8 without control or bidirectional-format characters, and presence bytes
//! that are exactly 0 or 1.

use alloc::string::String;
use alloc::vec::Vec;

use super::MessageError;

/// Inclusive byte-length range of a variable-length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthLimit {
    /// Fewest bytes allowed.
    pub min: usize,
    /// Most bytes allowed.
    pub max: usize,
}

impl LengthLimit {
    /// A range `min..=max`.
    pub const fn new(min: usize, max: usize) -> Self {
        Self { min, max }
    }

    /// Checks `len` against the range.
    pub fn check(self, field: &'static str, len: usize) -> Result<(), MessageError> {
        if len < self.min || len > self.max {
            return Err(MessageError::LengthOutOfRange {
                field,
                len,
                min: self.min,
                max: self.max,
            });
        }
        Ok(())
    }
}

/// Whether `c` may appear in a protocol string. Control characters (Unicode `Cc`) and the
/// bidirectional formatting characters are refused because text fields end up on the
/// device's display: a right-to-left override or a newline in a payee name could make the
/// screen show something other than what the bank MACs.
pub(crate) fn is_allowed_char(c: char) -> bool {
    !(c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        ))
}

/// Checks a string's length and character set; shared by the encoder and the decoder.
pub(crate) fn check_string(
    field: &'static str,
    value: &str,
    limit: LengthLimit,
) -> Result<(), MessageError> {
    limit.check(field, value.len())?;
    if !value.chars().all(is_allowed_char) {
        return Err(MessageError::InvalidValue {
            field,
            reason: "contains a control or bidirectional-format character",
        });
    }
    Ok(())
}

/// Reads fields from the front of a message, never past its end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn take(
        &mut self,
        field: &'static str,
        len: usize,
    ) -> Result<&'a [u8], MessageError> {
        let Some((head, tail)) = self.rest.split_at_checked(len) else {
            return Err(MessageError::Truncated {
                field,
                needed: len,
                remaining: self.rest.len(),
            });
        };
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], MessageError> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(MessageError::Truncated {
                field,
                needed: N,
                remaining: self.rest.len(),
            });
        };
        self.rest = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, MessageError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, MessageError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, MessageError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, MessageError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A byte that must be 0 (false) or 1 (true): booleans and presence bytes.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, MessageError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(MessageError::InvalidEnumValue {
                field,
                value: u32::from(other),
            }),
        }
    }

    /// A `u16` length prefix and that many bytes. The length is checked against the field's
    /// range, then against the remaining input, before the copy is allocated.
    pub(crate) fn bytes(
        &mut self,
        field: &'static str,
        limit: LengthLimit,
    ) -> Result<Vec<u8>, MessageError> {
        let len = usize::from(self.u16(field)?);
        limit.check(field, len)?;
        Ok(self.take(field, len)?.to_vec())
    }

    pub(crate) fn string(
        &mut self,
        field: &'static str,
        limit: LengthLimit,
    ) -> Result<String, MessageError> {
        let len = usize::from(self.u16(field)?);
        limit.check(field, len)?;
        let raw = self.take(field, len)?;
        let text = core::str::from_utf8(raw).map_err(|_| MessageError::InvalidUtf8 { field })?;
        check_string(field, text, limit)?;
        Ok(String::from(text))
    }
}

/// Appends fields to a message under construction. Every length is checked here too, so an
/// encoder cannot produce bytes the decoder would refuse.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    out: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.raw(&value.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.raw(&value.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.raw(&value.to_be_bytes());
    }

    pub(crate) fn flag(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    fn length_prefix(
        &mut self,
        field: &'static str,
        len: usize,
        limit: LengthLimit,
    ) -> Result<(), MessageError> {
        limit.check(field, len)?;
        // Every documented maximum is below 65 536; this guards a limit typo, not input.
        let prefix = u16::try_from(len).map_err(|_| MessageError::LengthOutOfRange {
            field,
            len,
            min: limit.min,
            max: usize::from(u16::MAX),
        })?;
        self.u16(prefix);
        Ok(())
    }

    pub(crate) fn bytes(
        &mut self,
        field: &'static str,
        value: &[u8],
        limit: LengthLimit,
    ) -> Result<(), MessageError> {
        self.length_prefix(field, value.len(), limit)?;
        self.raw(value);
        Ok(())
    }

    pub(crate) fn string(
        &mut self,
        field: &'static str,
        value: &str,
        limit: LengthLimit,
    ) -> Result<(), MessageError> {
        check_string(field, value, limit)?;
        self.bytes(field, value.as_bytes(), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_checked_against_the_limit_before_the_input() {
        // Prefix says 0xFFFF bytes but only 1 follows: the limit error wins, so a hostile
        // length never reaches an allocation or a slice.
        let mut reader = Reader::new(&[0xff, 0xff, 0x41]);
        assert_eq!(
            reader.bytes("T.f", LengthLimit::new(0, 8)),
            Err(MessageError::LengthOutOfRange {
                field: "T.f",
                len: 0xffff,
                min: 0,
                max: 8
            })
        );
        let mut reader = Reader::new(&[0x00, 0x05, 0x41]);
        assert_eq!(
            reader.bytes("T.f", LengthLimit::new(0, 8)),
            Err(MessageError::Truncated {
                field: "T.f",
                needed: 5,
                remaining: 1
            })
        );
    }

    #[test]
    fn strings_refuse_bidi_overrides_and_controls() {
        let limit = LengthLimit::new(0, 32);
        assert!(check_string("T.s", "Zoë & Søn", limit).is_ok());
        assert!(check_string("T.s", "evil\u{202E}gpj", limit).is_err());
        assert!(check_string("T.s", "two\nlines", limit).is_err());
    }

    #[test]
    fn flags_are_exactly_zero_or_one() {
        assert_eq!(Reader::new(&[1]).flag("T.b"), Ok(true));
        assert_eq!(
            Reader::new(&[2]).flag("T.b"),
            Err(MessageError::InvalidEnumValue {
                field: "T.b",
                value: 2
            })
        );
    }
}
