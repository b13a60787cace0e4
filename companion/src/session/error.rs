//! Why a request failed, in words a user (or support) can act on.

use firmware_protocol::link::{ErrorCode, LinkError, Mtu};
use firmware_protocol::message::{Indicator, MessageError, StatusCode, UnexpectedAnswer};

use crate::transport::TransportError;

/// Plain words for a link-layer ERROR code the device sent.
pub const fn link_error_words(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidCommand => {
            "the PIN pad does not understand a link command we sent (incompatible firmware?)"
        }
        ErrorCode::InvalidParameter => "the PIN pad refused a link field value we sent",
        ErrorCode::InvalidLength => "the PIN pad refused a packet's length or padding",
        ErrorCode::InvalidSequence => "packets arrived out of order",
        ErrorCode::MessageTimeout => "the packets of one message arrived too far apart",
        ErrorCode::ChannelBusy => "the PIN pad is busy with another program's request",
        ErrorCode::InvalidChannel => {
            "the PIN pad does not know our channel (it may have restarted)"
        }
        ErrorCode::CrcMismatch => "a message was damaged in transit",
        ErrorCode::MessageTooLarge => "the message is too large for the PIN pad",
        ErrorCode::Cancelled => "the request was cancelled",
        ErrorCode::Other => "the PIN pad reported an unspecified link error",
    }
}

/// Why a session could not be opened or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The device went away mid-request; what it did with the request is unknown.
    #[error(
        "the PIN pad was disconnected during {request}; it may or may not have acted on it. Reconnect the PIN pad and try again ({source})"
    )]
    Disconnected {
        /// The request in progress.
        request: &'static str,
        /// What the transport saw.
        source: TransportError,
    },
    /// Any other transport failure.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Channel allocation got no answer.
    #[error(
        "the PIN pad did not answer after {attempts} attempts ({timeout_ms} ms each); check that it is switched on and connected"
    )]
    NoAnswer {
        /// INIT requests sent.
        attempts: u8,
        /// Wait per attempt.
        timeout_ms: u64,
    },
    /// The device uses another packet size on this link than the transport.
    #[error(
        "the PIN pad uses {device}-byte packets on this link, this program {host}-byte packets"
    )]
    MtuMismatch {
        /// The transport's MTU.
        host: Mtu,
        /// The MTU in the INIT answer.
        device: Mtu,
    },
    /// The device speaks another link protocol version.
    #[error("the PIN pad speaks link protocol version {version}; this program speaks version 1")]
    UnsupportedLinkVersion {
        /// The version in the INIT answer.
        version: u8,
    },
    /// The device acknowledged or worked on the request, then stopped sending anything.
    #[error(
        "the PIN pad stopped responding during {request} (nothing for {idle_ms} ms); it may have acted on the request"
    )]
    DeviceSilent {
        /// The request in progress.
        request: &'static str,
        /// How long it was silent.
        idle_ms: u64,
    },
    /// The request could not be delivered despite retransmissions.
    #[error(
        "could not deliver {request} to the PIN pad: no acknowledgement after {transmissions} transmissions"
    )]
    DeliveryFailed {
        /// The request.
        request: &'static str,
        /// How often it was sent.
        transmissions: u8,
    },
    /// The device kept answering "processing" (not waiting for the user) for longer than
    /// the processing limit; the request was cancelled. A device at work answers in seconds:
    /// one that says "processing" forever is stuck or hostile, and must not hold the flow.
    #[error(
        "{request}: the PIN pad kept saying \"processing\" for {limit_ms} ms without answering, and was cancelled"
    )]
    DeviceStalled {
        /// The request.
        request: &'static str,
        /// The limit.
        limit_ms: u64,
    },
    /// The per-request time limit passed; the request was cancelled.
    #[error("{request} took longer than {limit_ms} ms and was cancelled")]
    RequestTimeout {
        /// The request.
        request: &'static str,
        /// The limit.
        limit_ms: u64,
    },
    /// Cancelled by the caller (or by the device's link CANCEL answer).
    #[error("{request} was cancelled")]
    Cancelled {
        /// The request.
        request: &'static str,
    },
    /// The device kept answering BUSY.
    #[error(
        "the PIN pad is busy with another program's request; gave up after {attempts} attempts. Finish or close the other program and try again"
    )]
    DeviceBusy {
        /// Attempts made.
        attempts: u32,
    },
    /// The device refused at the link layer with an ERROR code.
    #[error("the PIN pad refused {request}: {} (link error 0x{:02x})", link_error_words(*.code), .code.byte())]
    LinkRefused {
        /// The request.
        request: &'static str,
        /// The code.
        code: ErrorCode,
    },
    /// The device answered the request with an Error message.
    #[error("the PIN pad refused {request}: {status}{}", detail_suffix(.detail))]
    Refused {
        /// The request.
        request: &'static str,
        /// The status code.
        status: StatusCode,
        /// The indicator after the refusal (danger after a bad MAC).
        indicator: Indicator,
        /// The device's extra words for logs, never secrets.
        detail: String,
    },
    /// The request did not encode (a field out of range) or is too large for this link.
    #[error("{request} cannot be sent: {source}")]
    Encode {
        /// The request.
        request: &'static str,
        /// Why.
        source: MessageError,
    },
    /// The request is too large for this link's packets.
    #[error("{request} is {len} bytes, more than the {max} bytes this link carries")]
    TooLarge {
        /// The request.
        request: &'static str,
        /// Encoded size.
        len: usize,
        /// Link maximum.
        max: usize,
    },
    /// The device's answer did not decode.
    #[error("the PIN pad's answer to {request} is malformed: {source}")]
    MalformedAnswer {
        /// The request.
        request: &'static str,
        /// Why.
        source: MessageError,
    },
    /// The device answered with another response than the request's (PROTOCOL.md §3.3).
    #[error(transparent)]
    UnexpectedAnswer(UnexpectedAnswer),
    /// The answer MSG carries another request's id (the link delivered it as the answer to
    /// this request, so the device mixed them up).
    #[error("the PIN pad answered {request} (id {expected}) with an answer to request {received}")]
    AnswerMismatch {
        /// The request.
        request: &'static str,
        /// Its id.
        expected: u32,
        /// The id the answer carries.
        received: u32,
    },
    /// The device's channel vanished twice in a row.
    #[error("the PIN pad keeps forgetting our channel; it may be restarting repeatedly")]
    ChannelLost,
    /// The link state machine refused an operation (a bug on this side).
    #[error("link state error: {0}")]
    Link(#[from] LinkError),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl SessionError {
    /// The device went away (reconnecting may help).
    pub fn is_disconnect(&self) -> bool {
        match self {
            SessionError::Disconnected { .. } => true,
            SessionError::Transport(error) => error.is_disconnect(),
            _ => false,
        }
    }

    /// What kind of failure this is (the device's status code when it refused).
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        use firmware_protocol::message::StatusCode as S;
        if self.is_disconnect() {
            return K::DeviceDisconnected;
        }
        match self {
            SessionError::NoAnswer { .. }
            | SessionError::DeviceSilent { .. }
            | SessionError::RequestTimeout { .. }
            | SessionError::DeviceStalled { .. }
            // No ACK in time is a slow or stalled link (a delay), not a device that went
            // away: a disconnect is the transport's to report.
            | SessionError::DeliveryFailed { .. } => K::Timeout,
            SessionError::Cancelled { .. } => K::UserCancelled,
            SessionError::DeviceBusy { .. } => K::DeviceBusy,
            SessionError::LinkRefused { .. }
            | SessionError::MalformedAnswer { .. }
            | SessionError::UnexpectedAnswer(_)
            | SessionError::AnswerMismatch { .. }
            | SessionError::ChannelLost => K::CorruptFrame,
            SessionError::Refused { status, .. } => match status {
                S::Busy => K::DeviceBusy,
                S::HostCancelled | S::UserCancelled => K::UserCancelled,
                S::UserTimeout => K::UserTooSlow,
                S::Tampered => K::Tampered,
                S::Locked | S::LockedByBank | S::IdentityMismatch => K::Locked,
                S::NotInitialised => K::NotInitialised,
                S::NotBound => K::NotBound,
                S::Revoked => K::Revoked,
                S::IntegrityFailure => K::IntegrityFailed,
                S::NotPaired | S::UnknownHost | S::BadHostMac => K::NotPaired,
                S::PairingCodeMismatch | S::PairingConfirmationFailed | S::PairingTableFull => {
                    K::PairingFailed
                }
                S::KeyBlockRejected
                | S::WrongKeyUsage
                | S::KcvMismatch
                | S::KeysNotDistinct
                | S::UnsupportedKeyAlgorithm => K::KeyCheckFailed,
                S::MalformedMessage | S::BadEnvelope => K::CorruptFrame,
                S::PinMismatch | S::PinPolicy | S::WrongState => K::InvalidInput,
                S::BadBankMac
                | S::BadSignature
                | S::StaleBankCounter
                | S::SessionMismatch
                | S::TransactionMismatch
                | S::NoSession
                | S::WrongDevice => K::BankRejected,
                _ => K::Internal,
            },
            SessionError::Transport(error) => error.kind(),
            _ => K::Internal,
        }
    }

    /// The device's status code, when it refused the request with an Error message.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            SessionError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences_with_the_status_words() {
        let error = SessionError::Refused {
            request: "ApprovePayment",
            status: StatusCode::Tampered,
            indicator: Indicator::Danger,
            detail: String::new(),
        };
        assert_eq!(
            error.to_string(),
            "the PIN pad refused ApprovePayment: device tampered: keys wiped, operator reset required (0x0100)"
        );
        assert_eq!(error.status(), Some(StatusCode::Tampered));
        let with_detail = SessionError::Refused {
            request: "Enrol",
            status: StatusCode::PinMismatch,
            indicator: Indicator::Off,
            detail: "second entry differs".into(),
        };
        assert!(
            with_detail
                .to_string()
                .ends_with("(0x0500) (second entry differs)")
        );
    }

    #[test]
    fn link_refusals_name_the_code_in_words() {
        let error = SessionError::LinkRefused {
            request: "Ping",
            code: ErrorCode::MessageTooLarge,
        };
        assert_eq!(
            error.to_string(),
            "the PIN pad refused Ping: the message is too large for the PIN pad (link error 0x09)"
        );
    }

    #[test]
    fn every_link_code_has_its_own_words() {
        let codes = [
            ErrorCode::InvalidCommand,
            ErrorCode::InvalidParameter,
            ErrorCode::InvalidLength,
            ErrorCode::InvalidSequence,
            ErrorCode::MessageTimeout,
            ErrorCode::ChannelBusy,
            ErrorCode::InvalidChannel,
            ErrorCode::CrcMismatch,
            ErrorCode::MessageTooLarge,
            ErrorCode::Cancelled,
            ErrorCode::Other,
        ];
        let words: std::collections::BTreeSet<_> =
            codes.iter().map(|c| link_error_words(*c)).collect();
        assert_eq!(words.len(), codes.len());
    }
}
