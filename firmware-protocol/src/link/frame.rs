//! Frames: one link message (channel + typed body) and the byte layout of each body.

use alloc::vec::Vec;

use super::error::{ErrorCode, LinkError};
use super::wire::{ChannelId, Command, Mtu, Role};
use super::{MAX_PIN_DIGITS, NONCE_LEN};

/// One link-layer message: what a [`Packetizer`](super::Packetizer) splits into packets and a
/// [`Reassembler`](super::Reassembler) puts back together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The channel it travels on.
    pub channel: ChannelId,
    /// Command and payload.
    pub body: Body,
}

impl Frame {
    /// A frame on `channel`.
    pub const fn new(channel: ChannelId, body: Body) -> Self {
        Frame { channel, body }
    }

    /// The packets carrying this frame on a link of `mtu`.
    pub fn to_packets(&self, mtu: Mtu) -> Result<Vec<Vec<u8>>, LinkError> {
        Ok(super::Packetizer::new(self, mtu)?.collect())
    }
}

/// The command of a frame with its decoded payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `PING`: any payload, echoed back unchanged by the device.
    Ping(Vec<u8>),
    /// `MSG`: sequence number (1) | message-layer bytes.
    Msg {
        /// Per-channel, per-direction delivery sequence number (see
        /// [`ReliableSender`](super::ReliableSender)).
        seq: u8,
        /// The message-layer payload, opaque to the link.
        message: Vec<u8>,
    },
    /// `ACK`: sequence number (1) of the `MSG` received.
    Ack {
        /// The acknowledged sequence number.
        seq: u8,
    },
    /// `NACK`: reason (1), a transient [`ErrorCode`]. The sender retransmits its outstanding
    /// `MSG` on this channel.
    Nack {
        /// What was wrong with the damaged message.
        reason: ErrorCode,
    },
    /// `INIT` from a host: nonce (8).
    InitRequest {
        /// Random bytes the answer echoes, so a host recognises its own answer on broadcast.
        nonce: [u8; NONCE_LEN],
    },
    /// `INIT` from a device: see [`InitResponse`].
    InitResponse(InitResponse),
    /// `WINK`: empty.
    Wink,
    /// `CANCEL`: empty.
    Cancel,
    /// `KEEPALIVE`: status (1) [| entered (1) | max (1) for PIN entry].
    Keepalive(KeepaliveStatus),
    /// `ERROR`: code (1).
    Error(ErrorCode),
}

/// The device's answer to `INIT`: nonce (8) | channel (4) | version (1) | capabilities (1) |
/// MTU (2) = 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitResponse {
    /// The request's nonce, echoed.
    pub nonce: [u8; NONCE_LEN],
    /// The channel the host is to use from now on.
    pub channel: ChannelId,
    /// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION) of the device.
    pub version: u8,
    /// What the device can do.
    pub capabilities: Capabilities,
    /// The packet size the device uses on this link; a host whose MTU differs must stop.
    pub mtu: Mtu,
}

const INIT_RESPONSE_LEN: usize = NONCE_LEN + 4 + 1 + 1 + 2;

/// Device capability flags from the `INIT` response. Undefined bits are sent as zero and
/// ignored by receivers (a later version may define them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u8);

impl Capabilities {
    /// The device implements `WINK`.
    pub const WINK: Capabilities = Capabilities(0x01);
    /// The device has a keypad and collects PINs itself.
    pub const KEYPAD: Capabilities = Capabilities(0x02);
    /// The device has a display to show what the user confirms.
    pub const DISPLAY: Capabilities = Capabilities(0x04);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    pub const fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }
}

/// What a device that has not answered yet is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveStatus {
    /// 0x01: working, no user action needed.
    Processing,
    /// 0x02: waiting for the user to confirm on the device (presence/confirmation).
    AwaitingUser,
    /// 0x03: the user is typing a PIN; how many digits so far, never which.
    PinEntry(PinProgress),
}

impl KeepaliveStatus {
    const PROCESSING: u8 = 0x01;
    const AWAITING_USER: u8 = 0x02;
    const PIN_ENTRY: u8 = 0x03;
}

/// PIN entry progress: digits entered so far out of the maximum. A count only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinProgress {
    entered: u8,
    max: u8,
}

impl PinProgress {
    /// Requires `entered <= max` and `1 <= max <= 12`.
    pub const fn new(entered: u8, max: u8) -> Result<Self, LinkError> {
        if max == 0 || max > MAX_PIN_DIGITS || entered > max {
            return Err(LinkError::InvalidPinProgress { entered, max });
        }
        Ok(PinProgress { entered, max })
    }

    /// Digits entered so far.
    pub const fn entered(self) -> u8 {
        self.entered
    }

    /// Most digits the PIN may have.
    pub const fn max(self) -> u8 {
        self.max
    }
}

impl Body {
    /// The command byte this body travels under.
    pub const fn command(&self) -> Command {
        match self {
            Body::Ping(_) => Command::Ping,
            Body::Msg { .. } => Command::Msg,
            Body::Ack { .. } => Command::Ack,
            Body::Nack { .. } => Command::Nack,
            Body::InitRequest { .. } | Body::InitResponse(_) => Command::Init,
            Body::Wink => Command::Wink,
            Body::Cancel => Command::Cancel,
            Body::Keepalive(_) => Command::Keepalive,
            Body::Error(_) => Command::Error,
        }
    }

    /// Payload length in bytes (the init packet's length field).
    pub fn payload_len(&self) -> usize {
        match self {
            Body::Ping(data) => data.len(),
            Body::Msg { message, .. } => 1 + message.len(),
            Body::Ack { .. } | Body::Nack { .. } | Body::Error(_) => 1,
            Body::InitRequest { .. } => NONCE_LEN,
            Body::InitResponse(_) => INIT_RESPONSE_LEN,
            Body::Wink | Body::Cancel => 0,
            Body::Keepalive(KeepaliveStatus::PinEntry(_)) => 3,
            Body::Keepalive(_) => 1,
        }
    }

    /// The payload bytes.
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload_len());
        match self {
            Body::Ping(data) => out.extend_from_slice(data),
            Body::Msg { seq, message } => {
                out.push(*seq);
                out.extend_from_slice(message);
            }
            Body::Ack { seq } => out.push(*seq),
            Body::Nack { reason } => out.push(reason.byte()),
            Body::InitRequest { nonce } => out.extend_from_slice(nonce),
            Body::InitResponse(response) => {
                out.extend_from_slice(&response.nonce);
                out.extend_from_slice(&response.channel.to_bytes());
                out.push(response.version);
                out.push(response.capabilities.0);
                // An Mtu is at most 512, so it always fits the 16-bit field.
                out.extend_from_slice(&(response.mtu.get() as u16).to_be_bytes());
            }
            Body::Wink | Body::Cancel => {}
            Body::Keepalive(KeepaliveStatus::Processing) => {
                out.push(KeepaliveStatus::PROCESSING);
            }
            Body::Keepalive(KeepaliveStatus::AwaitingUser) => {
                out.push(KeepaliveStatus::AWAITING_USER);
            }
            Body::Keepalive(KeepaliveStatus::PinEntry(progress)) => {
                out.extend_from_slice(&[
                    KeepaliveStatus::PIN_ENTRY,
                    progress.entered,
                    progress.max,
                ]);
            }
            Body::Error(code) => out.push(code.byte()),
        }
        out
    }

    /// Decodes a payload received by an end playing `receiver` (an `INIT` payload is a request
    /// at a device and a response at a host).
    pub fn decode(command: Command, payload: &[u8], receiver: Role) -> Result<Body, LinkError> {
        let wrong_length = || LinkError::InvalidPayloadLength {
            command,
            len: payload.len(),
        };
        match command {
            Command::Ping => Ok(Body::Ping(payload.to_vec())),
            Command::Msg => {
                let (&seq, message) = payload.split_first().ok_or_else(wrong_length)?;
                Ok(Body::Msg {
                    seq,
                    message: message.to_vec(),
                })
            }
            Command::Ack => Ok(Body::Ack {
                seq: single_byte(payload).ok_or_else(wrong_length)?,
            }),
            Command::Nack => {
                let reason = ErrorCode::from_byte(single_byte(payload).ok_or_else(wrong_length)?)?;
                if !reason.is_transient() {
                    return Err(LinkError::InvalidNackReason { reason });
                }
                Ok(Body::Nack { reason })
            }
            Command::Init => match receiver {
                Role::Device => {
                    let nonce: [u8; NONCE_LEN] = payload.try_into().map_err(|_| wrong_length())?;
                    Ok(Body::InitRequest { nonce })
                }
                Role::Host => {
                    let bytes: &[u8; INIT_RESPONSE_LEN] =
                        payload.try_into().map_err(|_| wrong_length())?;
                    decode_init_response(bytes).map(Body::InitResponse)
                }
            },
            Command::Wink | Command::Cancel => {
                if !payload.is_empty() {
                    return Err(wrong_length());
                }
                Ok(if command == Command::Wink {
                    Body::Wink
                } else {
                    Body::Cancel
                })
            }
            Command::Keepalive => decode_keepalive(payload)
                .map(Body::Keepalive)
                .map_err(|error| match error {
                    LinkError::InvalidPayloadLength { .. } => wrong_length(),
                    other => other,
                }),
            Command::Error => Ok(Body::Error(ErrorCode::from_byte(
                single_byte(payload).ok_or_else(wrong_length)?,
            )?)),
        }
    }
}

fn single_byte(payload: &[u8]) -> Option<u8> {
    match payload {
        [byte] => Some(*byte),
        _ => None,
    }
}

fn decode_init_response(bytes: &[u8; INIT_RESPONSE_LEN]) -> Result<InitResponse, LinkError> {
    let [
        n0,
        n1,
        n2,
        n3,
        n4,
        n5,
        n6,
        n7,
        c0,
        c1,
        c2,
        c3,
        version,
        capabilities,
        m0,
        m1,
    ] = *bytes;
    let channel = ChannelId(u32::from_be_bytes([c0, c1, c2, c3]));
    if !channel.is_assignable() {
        return Err(LinkError::InvalidAssignedChannel { channel });
    }
    Ok(InitResponse {
        nonce: [n0, n1, n2, n3, n4, n5, n6, n7],
        channel,
        version,
        capabilities: Capabilities(capabilities),
        mtu: Mtu::new(u16::from_be_bytes([m0, m1]) as usize)?,
    })
}

fn decode_keepalive(payload: &[u8]) -> Result<KeepaliveStatus, LinkError> {
    match payload {
        [KeepaliveStatus::PROCESSING] => Ok(KeepaliveStatus::Processing),
        [KeepaliveStatus::AWAITING_USER] => Ok(KeepaliveStatus::AwaitingUser),
        [KeepaliveStatus::PIN_ENTRY, entered, max] => {
            Ok(KeepaliveStatus::PinEntry(PinProgress::new(*entered, *max)?))
        }
        [
            KeepaliveStatus::PROCESSING | KeepaliveStatus::AWAITING_USER,
            ..,
        ]
        | [KeepaliveStatus::PIN_ENTRY, ..]
        | [] => Err(LinkError::InvalidPayloadLength {
            command: Command::Keepalive,
            len: payload.len(),
        }),
        [byte, ..] => Err(LinkError::UnknownKeepaliveStatus { byte: *byte }),
    }
}
