//! Message layer: typed, versioned requests and responses with a canonical binary encoding.
//!
//! A message is a 7-byte header — version (`u8`, 1), message type (`u16`), request id
//! (`u32`), all big-endian — and a body whose fields follow in a fixed order. Fixed-size
//! fields are raw bytes or big-endian integers, variable fields carry a `u16` length prefix
//! and a documented length range, strings are UTF-8 without control or bidirectional-format
//! characters, optional fields start with a presence byte (0 or 1). A message is at most
//! [`MAX_MESSAGE_LEN`] bytes, the link layer's cap, and no byte may follow the body: the
//! encoding is canonical (one value, one byte string), which is what lets MAC and
//! signature inputs be re-derived from decoded values (see [`auth`]).
//!
//! Requests have types `0x0001..=0x6FFF`, responses `0x8000..=0xEFFF` (the top bit says
//! "response"); `0x7000..=0x7FFF` and `0xF000..=0xFFFF` are vendor ranges, decoded as
//! [`Vendor`]. Every failure is answered with [`ErrorResponse`] carrying a [`StatusCode`].
//!
//! ```
//! use firmware_protocol::message::{self, Body, Ping, Request};
//!
//! let bytes = Request::Ping(Ping { payload: vec![1, 2, 3] }).encode(7)?;
//! assert_eq!(bytes, [0x01, 0x00, 0x03, 0, 0, 0, 7, 0x00, 0x03, 1, 2, 3]);
//! let message = message::decode(&bytes)?;
//! assert_eq!(message.request_id, 7);
//! assert!(matches!(message.body, Body::Request(Request::Ping(_))));
//! # Ok::<(), firmware_protocol::message::MessageError>(())
//! ```

use alloc::vec::Vec;

pub mod auth;
mod codec;
mod command;
mod error;
mod owner;
mod request;
mod response;
mod status;
mod types;

pub use auth::SealError;
pub use codec::LengthLimit;
pub use command::{Answer, COMMANDS, Command, CommandSpec, MessageBody, UnexpectedAnswer};
pub use error::{MessageError, UnknownName};
pub use owner::{
    ChangePin, DeviceWiped, PinChangeEntered, PinChangeResult, VerifyPinChange, WipeDevice,
};
pub use request::{
    ApprovePayment, BankChallenge, BankCommand, Cancel, Enrol, GetInfo, GetIntegrityReport,
    GetStatus, HostVerified, Initialise, LoadSessionKeys, OperatorReset, PairBegin, PairConfirm,
    Ping, Request, SignConfirmation, Unpair, VerifyBankResponse, requires_host_verification,
};
pub use response::{
    CancelResult, ChallengeResponse, ConfirmationSignature, Enrolled, ErrorResponse, IndicatorSet,
    Info, Initialised, IntegrityReport, KeysLoaded, PairChallenge, PairResult, PaymentApproved,
    Pong, Response, Status,
};
pub use status::{StatusCode, VENDOR_STATUS_FIRST};
pub use types::{
    BankCommandKind, BankResult, Capabilities, CurrencyCode, EcPublicKey, EcdsaSignature, HostId,
    Indicator, Kcv, KeyBlock, Lifecycle, LockState, MacTag, Nonce, PaymentDetails, PinBlock,
    PinBlockFormat, SessionId, Sha256Digest, WrappedKey,
};

use codec::{Reader, Writer};

/// The protocol version this implementation speaks: the first header byte.
pub const PROTOCOL_VERSION: u8 = 1;
/// Header size: version (1) + message type (2) + request id (4).
pub const HEADER_LEN: usize = 7;
/// Largest message, header included: the link layer's payload cap less the MSG frame's
/// sequence byte (PROTOCOL.md §2.4), so every message this layer accepts fits in one frame.
pub const MAX_MESSAGE_LEN: usize = crate::link::MAX_PAYLOAD_LEN - 1;

/// Message type codes (`u16` on the wire).
pub mod message_type {
    /// Set in every response type.
    pub const RESPONSE_BIT: u16 = 0x8000;

    /// Request `GetInfo`.
    pub const GET_INFO: u16 = 0x0001;
    /// Request `GetStatus`.
    pub const GET_STATUS: u16 = 0x0002;
    /// Request `Ping`.
    pub const PING: u16 = 0x0003;
    /// Request `Cancel`.
    pub const CANCEL: u16 = 0x0004;
    /// Request `PairBegin`.
    pub const PAIR_BEGIN: u16 = 0x0010;
    /// Request `PairConfirm`.
    pub const PAIR_CONFIRM: u16 = 0x0011;
    /// Request `Unpair`.
    pub const UNPAIR: u16 = 0x0012;
    /// Request `HostVerified` (the envelope).
    pub const HOST_VERIFIED: u16 = 0x0020;
    /// Request `Initialise`.
    pub const INITIALISE: u16 = 0x0030;
    /// Request `Enrol`.
    pub const ENROL: u16 = 0x0031;
    /// Request `OperatorReset`.
    pub const OPERATOR_RESET: u16 = 0x0032;
    /// Request `BankCommand`.
    pub const BANK_COMMAND: u16 = 0x0033;
    /// Request `WipeDevice` (the owner's wipe, confirmed on the keypad).
    pub const WIPE_DEVICE: u16 = 0x0034;
    /// Request `GetIntegrityReport`.
    pub const GET_INTEGRITY_REPORT: u16 = 0x0040;
    /// Request `LoadSessionKeys`.
    pub const LOAD_SESSION_KEYS: u16 = 0x0041;
    /// Request `BankChallenge`.
    pub const BANK_CHALLENGE: u16 = 0x0042;
    /// Request `ApprovePayment`.
    pub const APPROVE_PAYMENT: u16 = 0x0050;
    /// Request `VerifyBankResponse`.
    pub const VERIFY_BANK_RESPONSE: u16 = 0x0051;
    /// Request `SignConfirmation`.
    pub const SIGN_CONFIRMATION: u16 = 0x0052;
    /// Request `ChangePin`.
    pub const CHANGE_PIN: u16 = 0x0053;
    /// Request `VerifyPinChange`.
    pub const VERIFY_PIN_CHANGE: u16 = 0x0054;
    /// First vendor request type.
    pub const VENDOR_REQUEST_FIRST: u16 = 0x7000;
    /// Last vendor request type.
    pub const VENDOR_REQUEST_LAST: u16 = 0x7FFF;

    /// Response `Error`.
    pub const ERROR: u16 = 0x8000;
    /// Response `Info`.
    pub const INFO: u16 = 0x8001;
    /// Response `Status`.
    pub const STATUS: u16 = 0x8002;
    /// Response `Pong`.
    pub const PONG: u16 = 0x8003;
    /// Response `CancelResult`.
    pub const CANCEL_RESULT: u16 = 0x8004;
    /// Response `PairChallenge`.
    pub const PAIR_CHALLENGE: u16 = 0x8010;
    /// Response `PairResult`.
    pub const PAIR_RESULT: u16 = 0x8011;
    /// Response `Initialised`.
    pub const INITIALISED: u16 = 0x8030;
    /// Response `Enrolled`.
    pub const ENROLLED: u16 = 0x8031;
    /// Response `DeviceWiped`.
    pub const DEVICE_WIPED: u16 = 0x8034;
    /// Response `IntegrityReport`.
    pub const INTEGRITY_REPORT: u16 = 0x8040;
    /// Response `KeysLoaded`.
    pub const KEYS_LOADED: u16 = 0x8041;
    /// Response `ChallengeResponse`.
    pub const CHALLENGE_RESPONSE: u16 = 0x8042;
    /// Response `PaymentApproved`.
    pub const PAYMENT_APPROVED: u16 = 0x8050;
    /// Response `IndicatorSet`.
    pub const INDICATOR_SET: u16 = 0x8051;
    /// Response `ConfirmationSignature`.
    pub const CONFIRMATION_SIGNATURE: u16 = 0x8052;
    /// Response `PinChangeEntered`.
    pub const PIN_CHANGE_ENTERED: u16 = 0x8053;
    /// First vendor response type.
    pub const VENDOR_RESPONSE_FIRST: u16 = 0xF000;
    /// Last vendor response type.
    pub const VENDOR_RESPONSE_LAST: u16 = 0xFFFF;
}

/// Length ranges of the variable fields, in bytes (PROTOCOL.md §3.3).
pub mod limits {
    use super::LengthLimit;

    /// Device serial number.
    pub const SERIAL: LengthLimit = LengthLimit::new(1, 32);
    /// Firmware version text.
    pub const FIRMWARE_VERSION: LengthLimit = LengthLimit::new(1, 32);
    /// Device certificate.
    pub const CERTIFICATE: LengthLimit = LengthLimit::new(1, 2048);
    /// Host name shown at pairing.
    pub const HOST_NAME: LengthLimit = LengthLimit::new(0, 32);
    /// Ping / Pong payload.
    pub const PING_PAYLOAD: LengthLimit = LengthLimit::new(0, 1024);
    /// `Error.detail`.
    pub const ERROR_DETAIL: LengthLimit = LengthLimit::new(0, 128);
    /// `IndicatorSet.display_text`.
    pub const DISPLAY_TEXT: LengthLimit = LengthLimit::new(0, 64);
    /// Bank customer id.
    pub const CUSTOMER_ID: LengthLimit = LengthLimit::new(1, 64);
    /// PIN-block account number (ISO 9564 PAN: 12..=19 digits).
    pub const PIN_ACCOUNT: LengthLimit = LengthLimit::new(12, 19);
    /// Payer / payee account (an IBAN is at most 34 characters).
    pub const ACCOUNT: LengthLimit = LengthLimit::new(1, 34);
    /// Payee name.
    pub const PAYEE_NAME: LengthLimit = LengthLimit::new(1, 140);
    /// Payment reference.
    pub const REFERENCE: LengthLimit = LengthLimit::new(0, 140);
    /// Bank transaction id.
    pub const TRANSACTION_ID: LengthLimit = LengthLimit::new(1, 64);
    /// Operator id in an operator reset.
    pub const OPERATOR_ID: LengthLimit = LengthLimit::new(1, 32);
    /// Text shown with a bank command.
    pub const COMMAND_REASON: LengthLimit = LengthLimit::new(0, 64);
    /// TR-31 key block text.
    pub const KEY_BLOCK: LengthLimit = LengthLimit::new(16, 1024);
    /// Key check value.
    pub const KCV: LengthLimit = LengthLimit::new(3, 16);
    /// `HostVerified.inner`: a whole request, header included, that fits in an envelope
    /// that fits in [`super::MAX_MESSAGE_LEN`] (4095 - 7 - 8 - 8 - 2 - 16).
    pub const ENVELOPE_INNER: LengthLimit = LengthLimit::new(super::HEADER_LEN, 4054);
    /// Vendor body: the rest of the message.
    pub const VENDOR_BODY: LengthLimit =
        LengthLimit::new(0, super::MAX_MESSAGE_LEN - super::HEADER_LEN);
    /// Fewest PIN digits an enrolment may ask for.
    pub const MIN_PIN_DIGITS: u8 = 4;
    /// Most PIN digits an enrolment may ask for.
    pub const MAX_PIN_DIGITS: u8 = 12;
    /// Largest ISO 4217 minor-unit exponent.
    pub const MAX_CURRENCY_EXPONENT: u8 = 4;
}

/// A message body's field layout. Implemented by every request and response struct; the
/// header is handled by [`encode`] / [`decode`].
pub(crate) trait WireBody: Sized {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError>;
    fn write(&self, w: &mut Writer) -> Result<(), MessageError>;
}

/// A vendor extension message: a type in a vendor range and an opaque body (the rest of
/// the message). Which range applies depends on whether it is a [`Request`] or a
/// [`Response`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Vendor {
    /// `0x7000..=0x7FFF` for a request, `0xF000..=0xFFFF` for a response.
    pub message_type: u16,
    /// Vendor-defined bytes, 0..=4089.
    pub body: Vec<u8>,
}

impl Vendor {
    fn read_body(message_type: u16, r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let len = r.remaining();
        limits::VENDOR_BODY.check("Vendor.body", len)?;
        Ok(Self {
            message_type,
            body: r.take("Vendor.body", len)?.to_vec(),
        })
    }

    fn write_body(
        &self,
        w: &mut Writer,
        range: core::ops::RangeInclusive<u16>,
    ) -> Result<(), MessageError> {
        if !range.contains(&self.message_type) {
            return Err(MessageError::InvalidValue {
                field: "Vendor.message_type",
                reason: "outside the vendor range for this direction",
            });
        }
        limits::VENDOR_BODY.check("Vendor.body", self.body.len())?;
        w.raw(&self.body);
        Ok(())
    }
}

/// Generates the `Request` / `Response` enums and their type dispatch from one table, so a
/// variant, its type code and its body type cannot disagree.
macro_rules! message_enum {
    (
        $(#[$doc:meta])* $enum:ident, vendor: [$vendor_first:path, $vendor_last:path], {
            $( $(#[$vdoc:meta])* $variant:ident($body:ty) = $code:path, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $enum {
            $( $(#[$vdoc])* $variant($body), )*
            /// A vendor extension.
            Vendor($crate::message::Vendor),
        }

        impl $enum {
            /// The message type code in the header.
            pub fn message_type(&self) -> u16 {
                match self {
                    $( Self::$variant(_) => $code, )*
                    Self::Vendor(vendor) => vendor.message_type,
                }
            }

            /// The message's name as PROTOCOL.md spells it.
            pub fn name(&self) -> &'static str {
                self.as_str()
            }

            /// The message's name as PROTOCOL.md spells it (`"GetInfo"`); `"Vendor"` for a
            /// vendor extension.
            pub const fn as_str(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => stringify!($variant), )*
                    Self::Vendor(_) => "Vendor",
                }
            }

            /// The name of the defined type `message_type` in this direction (`None` for a
            /// vendor or undefined type).
            pub const fn type_name(message_type: u16) -> Option<&'static str> {
                match message_type {
                    $( $code => Some(stringify!($variant)), )*
                    _ => None,
                }
            }

            /// The type code of the defined message named `name` in this direction: the
            /// parsing half of [`Self::as_str`] (a body cannot come from a name, a type can).
            pub fn type_named(name: &str) -> Option<u16> {
                match name {
                    $( stringify!($variant) => Some($code), )*
                    _ => None,
                }
            }

            /// Encodes header and body; fails if a field is outside its documented range or
            /// the message would exceed [`MAX_MESSAGE_LEN`](crate::message::MAX_MESSAGE_LEN).
            pub fn encode(&self, request_id: u32) -> Result<alloc::vec::Vec<u8>, $crate::message::MessageError> {
                let mut w = $crate::message::codec::Writer::new();
                $crate::message::write_header(&mut w, self.message_type(), request_id);
                match self {
                    $( Self::$variant(body) => $crate::message::WireBody::write(body, &mut w)?, )*
                    Self::Vendor(vendor) => vendor.write_body(&mut w, $vendor_first..=$vendor_last)?,
                }
                $crate::message::check_total_len(w.len())?;
                Ok(w.into_bytes())
            }

            pub(crate) fn read_body(
                message_type: u16,
                r: &mut $crate::message::codec::Reader<'_>,
            ) -> Result<Self, $crate::message::MessageError> {
                match message_type {
                    $( $code => Ok(Self::$variant(<$body as $crate::message::WireBody>::read(r)?)), )*
                    $vendor_first..=$vendor_last => {
                        Ok(Self::Vendor($crate::message::Vendor::read_body(message_type, r)?))
                    }
                    _ => Err($crate::message::MessageError::UnknownMessageType { message_type }),
                }
            }
        }

        $(
            impl From<$body> for $enum {
                fn from(body: $body) -> Self {
                    Self::$variant(body)
                }
            }

            /// The body of this variant, or the message itself back when it is another.
            impl TryFrom<$enum> for $body {
                type Error = $enum;

                fn try_from(message: $enum) -> Result<Self, $enum> {
                    match message {
                        $enum::$variant(body) => Ok(body),
                        other => Err(other),
                    }
                }
            }

            impl $crate::message::MessageBody for $body {
                const MESSAGE_TYPE: u16 = $code;
                const NAME: &'static str = stringify!($variant);
            }
        )*
    };
}
pub(crate) use message_enum;

fn write_header(w: &mut Writer, message_type: u16, request_id: u32) {
    w.u8(PROTOCOL_VERSION);
    w.u16(message_type);
    w.u32(request_id);
}

fn check_total_len(len: usize) -> Result<(), MessageError> {
    if len > MAX_MESSAGE_LEN {
        return Err(MessageError::MessageTooLong {
            len,
            max: MAX_MESSAGE_LEN,
        });
    }
    Ok(())
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// Host to device.
    Request(Request),
    /// Device to host.
    Response(Response),
}

impl Body {
    /// The message type code.
    pub fn message_type(&self) -> u16 {
        match self {
            Body::Request(request) => request.message_type(),
            Body::Response(response) => response.message_type(),
        }
    }
}

/// A decoded message: the header's request id and the typed body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    /// Chosen by the host, echoed by the device in the response.
    pub request_id: u32,
    /// The request or response.
    pub body: Body,
}

impl Message {
    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        encode(self)
    }

    /// Decodes a message (same as [`decode`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        decode(bytes)
    }
}

/// Encodes a message: header, then body.
pub fn encode(message: &Message) -> Result<Vec<u8>, MessageError> {
    match &message.body {
        Body::Request(request) => request.encode(message.request_id),
        Body::Response(response) => response.encode(message.request_id),
    }
}

/// Decodes one whole message. Checks, in order: total length, version, type, body fields
/// (each length against its range, then against the input), and that nothing follows.
/// Never panics; every malformed input is a [`MessageError`].
///
/// A `HostVerified` envelope's inner bytes are not decoded here: the device verifies the
/// envelope's MAC first and then calls [`HostVerified::open`].
pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
    check_total_len(bytes.len())?;
    let mut r = Reader::new(bytes);
    let version = r.u8("header.version")?;
    if version != PROTOCOL_VERSION {
        return Err(MessageError::UnsupportedVersion { version });
    }
    let message_type = r.u16("header.message_type")?;
    let request_id = r.u32("header.request_id")?;
    let body = if message_type & message_type::RESPONSE_BIT == 0 {
        Body::Request(Request::read_body(message_type, &mut r)?)
    } else {
        Body::Response(Response::read_body(message_type, &mut r)?)
    };
    if r.remaining() != 0 {
        return Err(MessageError::TrailingBytes {
            message_type,
            count: r.remaining(),
        });
    }
    Ok(Message { request_id, body })
}

/// Decodes a message that must be a request (the device side).
pub fn decode_request(bytes: &[u8]) -> Result<(u32, Request), MessageError> {
    let message = decode(bytes)?;
    match message.body {
        Body::Request(request) => Ok((message.request_id, request)),
        Body::Response(response) => Err(MessageError::ExpectedRequest {
            message_type: response.message_type(),
        }),
    }
}

/// Decodes a message that must be a response (the host side).
pub fn decode_response(bytes: &[u8]) -> Result<(u32, Response), MessageError> {
    let message = decode(bytes)?;
    match message.body {
        Body::Response(response) => Ok((message.request_id, response)),
        Body::Request(request) => Err(MessageError::ExpectedResponse {
            message_type: request.message_type(),
        }),
    }
}
