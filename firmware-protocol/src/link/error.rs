//! Link errors and the error codes they become on the wire.

use super::wire::{ChannelId, Command, Role};

/// The one-byte code carried by an `ERROR` or `NACK` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// Unknown command, or a command this end never accepts.
    InvalidCommand = 0x01,
    /// A field holds a value the protocol does not allow.
    InvalidParameter = 0x02,
    /// The length field or packet size does not fit the command or the packet.
    InvalidLength = 0x03,
    /// A continuation packet arrived out of order (transient: answered with `NACK`).
    InvalidSequence = 0x04,
    /// Too long between two packets of one message (transient: answered with `NACK`).
    MessageTimeout = 0x05,
    /// The device is serving another channel, or has no room for another partial message.
    ChannelBusy = 0x06,
    /// Reserved channel, channel not allocated, or a command not allowed on broadcast.
    InvalidChannel = 0x07,
    /// The message's CRC-32 does not match (transient: answered with `NACK`).
    CrcMismatch = 0x08,
    /// The length field exceeds the maximum for this MTU.
    MessageTooLarge = 0x09,
    /// The request was aborted by `CANCEL` from its channel.
    Cancelled = 0x0A,
    /// Anything else.
    Other = 0x7F,
}

impl ErrorCode {
    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// Parses a wire byte.
    pub const fn from_byte(byte: u8) -> Result<Self, LinkError> {
        Ok(match byte {
            0x01 => ErrorCode::InvalidCommand,
            0x02 => ErrorCode::InvalidParameter,
            0x03 => ErrorCode::InvalidLength,
            0x04 => ErrorCode::InvalidSequence,
            0x05 => ErrorCode::MessageTimeout,
            0x06 => ErrorCode::ChannelBusy,
            0x07 => ErrorCode::InvalidChannel,
            0x08 => ErrorCode::CrcMismatch,
            0x09 => ErrorCode::MessageTooLarge,
            0x0A => ErrorCode::Cancelled,
            0x7F => ErrorCode::Other,
            _ => return Err(LinkError::UnknownErrorCode { byte }),
        })
    }

    /// Damage in transit rather than a refusal: the receiver answers `NACK` and the sender
    /// retransmits the same message instead of giving up.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::InvalidSequence | ErrorCode::MessageTimeout | ErrorCode::CrcMismatch
        )
    }
}

/// Everything that can be wrong with a packet, a frame or a link state machine call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// MTU outside 20..=512.
    #[error("MTU of {mtu} bytes is outside 20..=512")]
    InvalidMtu {
        /// The MTU asked for.
        mtu: usize,
    },
    /// A packet whose size is not the link's MTU.
    #[error("packet of {actual} bytes on a link whose packets are {expected} bytes")]
    WrongPacketSize {
        /// The link MTU.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// Channel 0 is never used.
    #[error("channel 0x00000000 is reserved")]
    ReservedChannel,
    /// A packet for a channel that was not allocated (or was closed).
    #[error("channel {channel} is not open")]
    UnknownChannel {
        /// The channel in the packet.
        channel: ChannelId,
    },
    /// Only `INIT` (and the device's `ERROR` answer) travel on the broadcast channel.
    #[error("{command:?} is not allowed on the broadcast channel")]
    BroadcastNotAllowed {
        /// The command found there.
        command: Command,
    },
    /// The command byte is not in the command table.
    #[error("unknown command byte 0x{byte:02x}")]
    UnknownCommand {
        /// The byte (top bit set).
        byte: u8,
    },
    /// A known command that travels only in the other direction.
    #[error("{command:?} is never sent to a {receiver:?}")]
    CommandNotAccepted {
        /// The command.
        command: Command,
        /// The role of the end that received it.
        receiver: Role,
    },
    /// The length field exceeds what the MTU or the protocol-wide cap allows.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// Declared (or attempted) payload length.
        len: usize,
        /// Maximum for this MTU.
        max: usize,
    },
    /// The payload length does not suit the command.
    #[error("{command:?} payload of {len} bytes has the wrong length")]
    InvalidPayloadLength {
        /// The command.
        command: Command,
        /// The payload length found.
        len: usize,
    },
    /// Bytes after the end of the message in its last packet are not zero.
    #[error("nonzero padding after the end of the message")]
    NonZeroPadding,
    /// A continuation packet out of order.
    #[error("continuation sequence {actual}, expected {expected}")]
    InvalidSequence {
        /// The sequence number due next.
        expected: u8,
        /// The one received.
        actual: u8,
    },
    /// A continuation packet with no message in progress on its channel.
    #[error("continuation packet (sequence {sequence}) with no message in progress")]
    UnexpectedContinuation {
        /// Its sequence number.
        sequence: u8,
    },
    /// The CRC-32 computed over the message differs from the one it carries.
    #[error("CRC mismatch: message carries 0x{received:08x}, computed 0x{computed:08x}")]
    CrcMismatch {
        /// CRC computed over the received bytes.
        computed: u32,
        /// CRC found in the message.
        received: u32,
    },
    /// Too long between two packets of one message.
    #[error("{idle_ms} ms since the previous packet of this message")]
    MessageTimeout {
        /// Time since the last packet of the partial message.
        idle_ms: u64,
    },
    /// The device is serving a transaction on another channel.
    #[error("busy with a transaction on channel {owner}")]
    ChannelBusy {
        /// The channel that owns the current transaction.
        owner: ChannelId,
    },
    /// The bound on messages being reassembled at once is reached.
    #[error("already reassembling {max} messages")]
    TooManyPartialMessages {
        /// The bound.
        max: usize,
    },
    /// An `ERROR` or `NACK` byte not in the error code table.
    #[error("unknown error code 0x{byte:02x}")]
    UnknownErrorCode {
        /// The byte.
        byte: u8,
    },
    /// `NACK` may only carry a transient code.
    #[error("NACK reason {reason:?} is not a transient error")]
    InvalidNackReason {
        /// The code found.
        reason: ErrorCode,
    },
    /// A keepalive status byte not in the status table.
    #[error("unknown keepalive status 0x{byte:02x}")]
    UnknownKeepaliveStatus {
        /// The byte.
        byte: u8,
    },
    /// PIN entry progress must satisfy entered <= max, 1 <= max <= 12.
    #[error("PIN progress {entered} of {max} digits is impossible")]
    InvalidPinProgress {
        /// Digits entered.
        entered: u8,
        /// Maximum digits.
        max: u8,
    },
    /// An `INIT` response assigning a reserved channel.
    #[error("INIT response assigns reserved channel {channel}")]
    InvalidAssignedChannel {
        /// The channel assigned.
        channel: ChannelId,
    },
    /// [`ReliableSender::send`](super::ReliableSender::send) while a message is unacknowledged.
    #[error("message {seq} is still waiting for its ACK")]
    SenderBusy {
        /// Sequence number of the outstanding message.
        seq: u8,
    },
    /// The sender gave up on a message; the channel needs `INIT` (resync) before the next one.
    #[error("delivery failed earlier; resynchronise the channel with INIT first")]
    SenderNeedsResync,
    /// A request before the link has a channel (INIT still in progress, or never done).
    #[error("no channel yet: allocate one with INIT first")]
    NoChannel,
}

impl LinkError {
    /// The wire code an `ERROR` or `NACK` answering this error carries.
    pub const fn code(&self) -> ErrorCode {
        match self {
            LinkError::UnknownCommand { .. } | LinkError::CommandNotAccepted { .. } => {
                ErrorCode::InvalidCommand
            }
            LinkError::InvalidMtu { .. }
            | LinkError::UnknownErrorCode { .. }
            | LinkError::InvalidNackReason { .. }
            | LinkError::UnknownKeepaliveStatus { .. }
            | LinkError::InvalidPinProgress { .. }
            | LinkError::InvalidAssignedChannel { .. } => ErrorCode::InvalidParameter,
            LinkError::WrongPacketSize { .. }
            | LinkError::InvalidPayloadLength { .. }
            | LinkError::NonZeroPadding => ErrorCode::InvalidLength,
            LinkError::InvalidSequence { .. } | LinkError::UnexpectedContinuation { .. } => {
                ErrorCode::InvalidSequence
            }
            LinkError::MessageTimeout { .. } => ErrorCode::MessageTimeout,
            LinkError::ChannelBusy { .. } | LinkError::TooManyPartialMessages { .. } => {
                ErrorCode::ChannelBusy
            }
            LinkError::ReservedChannel
            | LinkError::UnknownChannel { .. }
            | LinkError::BroadcastNotAllowed { .. } => ErrorCode::InvalidChannel,
            LinkError::CrcMismatch { .. } => ErrorCode::CrcMismatch,
            LinkError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            LinkError::SenderBusy { .. } | LinkError::SenderNeedsResync | LinkError::NoChannel => {
                ErrorCode::Other
            }
        }
    }

    /// Whether this is damage in transit (answered with `NACK`, the sender retransmits).
    pub const fn is_transient(&self) -> bool {
        self.code().is_transient()
    }
}
