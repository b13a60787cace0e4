//! Why bytes could not become a message, or a message could not become bytes.

use super::status::StatusCode;

/// Everything that can go wrong encoding or decoding a message. Field names are the
/// `Message.field` names used in `PROTOCOL.md` §3, so an error points at one table row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The whole message is over the link layer's cap.
    #[error("message is {len} bytes, over the {max}-byte maximum")]
    MessageTooLong {
        /// Length of the message.
        len: usize,
        /// The cap ([`super::MAX_MESSAGE_LEN`]).
        max: usize,
    },
    /// The input ends inside a field.
    #[error("message ends inside field {field}: it needs {needed} bytes, {remaining} are left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// The header's version byte is not one this implementation speaks.
    #[error("unsupported protocol version {version} (this implementation speaks version 1)")]
    UnsupportedVersion {
        /// The version byte received.
        version: u8,
    },
    /// The message type is neither defined nor in a vendor range.
    #[error("unknown message type 0x{message_type:04x}")]
    UnknownMessageType {
        /// The type received.
        message_type: u16,
    },
    /// Bytes are left after the last field of the body.
    #[error("{count} trailing bytes after the body of message type 0x{message_type:04x}")]
    TrailingBytes {
        /// The message type whose body was complete.
        message_type: u16,
        /// How many bytes were left over.
        count: usize,
    },
    /// A variable-length field's length is outside its documented range.
    #[error("field {field} is {len} bytes long; the protocol allows {min}..={max}")]
    LengthOutOfRange {
        /// The field.
        field: &'static str,
        /// Its length (from the prefix when decoding, from the value when encoding).
        len: usize,
        /// Documented minimum.
        min: usize,
        /// Documented maximum.
        max: usize,
    },
    /// A string field is not UTF-8.
    #[error("field {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// An enumeration, flag or presence byte holds an undefined value.
    #[error("field {field} holds {value}, which is not one of its defined values")]
    InvalidEnumValue {
        /// The field.
        field: &'static str,
        /// The value received.
        value: u32,
    },
    /// A field is well formed but breaks a documented rule (a key prefix, a character set).
    #[error("field {field}: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// A response arrived where a request was expected.
    #[error("expected a request, got response type 0x{message_type:04x}")]
    ExpectedRequest {
        /// The type received.
        message_type: u16,
    },
    /// A request arrived where a response was expected.
    #[error("expected a response, got request type 0x{message_type:04x}")]
    ExpectedResponse {
        /// The type received.
        message_type: u16,
    },
    /// The request inside a host-verified envelope carries another request id than the
    /// envelope itself.
    #[error("the envelope's inner request id {inner} differs from its outer request id {outer}")]
    EnvelopeRequestIdMismatch {
        /// Request id of the envelope.
        outer: u32,
        /// Request id of the request inside.
        inner: u32,
    },
    /// A host-verified envelope contains another host-verified envelope.
    #[error("a host-verified envelope may not contain another host-verified envelope")]
    NestedEnvelope,
    /// The host has used every counter of its pairing; it must pair again.
    #[error("the host's request counter is exhausted; pair the host again")]
    HostCounterExhausted,
}

impl MessageError {
    /// The status a device answers with when a request fails to decode with this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            MessageError::UnsupportedVersion { .. } => StatusCode::UnsupportedVersion,
            MessageError::UnknownMessageType { .. } => StatusCode::UnknownMessage,
            MessageError::EnvelopeRequestIdMismatch { .. } | MessageError::NestedEnvelope => {
                StatusCode::BadEnvelope
            }
            _ => StatusCode::MalformedMessage,
        }
    }
}

/// Text that names none of a wire enumeration's values (`FromStr` of [`StatusCode`] and of the
/// one-byte enumerations such as [`super::Lifecycle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not the name of a {kind} value")]
pub struct UnknownName {
    /// The enumeration the text was meant for (`"Lifecycle"`).
    pub kind: &'static str,
}
