//! Link layer: fixed-size packets per transport MTU, channels, a CRC-32 per message, keepalive,
//! cancellation and acknowledged delivery with retransmission.
//!
//! The shape is CTAPHID's: an init packet (channel, command, length, data) followed by up to
//! 128 continuation packets (channel, sequence, data). `PROTOCOL.md` §2 is the normative
//! description; this module is its reference implementation, used by both ends.
//!
//! - [`Packetizer`] turns a [`Frame`] into packets of one [`Mtu`].
//! - [`Reassembler`] turns packets, in any interleaving of channels, back into frames and says
//!   what to answer when something is wrong ([`ReassemblyEvent`]). It also holds the channel
//!   table and the device's one-transaction-at-a-time rule.
//! - [`ReliableSender`] and [`ReliableReceiver`] add acknowledged delivery of `MSG` frames
//!   (sequence number, `ACK`/`NACK`, retransmission, duplicate detection) for lossy links.
//! - [`HostLink`] and [`DeviceLink`] are the two ends as connection machines built from the
//!   pieces above (quinn-proto's `Connection` shape): `handle_packet` / `handle_timeout` in,
//!   `poll_transmit` / `poll_event` / `poll_timeout` out. Every rule of §2.6-§2.10 that needs
//!   state or a timer (INIT and its retries, resync, retransmission, idle, keepalive, cancel,
//!   busy) lives in them; drivers only move bytes and sleep until `poll_timeout`.
//!
//! Nothing here reads a clock or does I/O: every call that depends on time takes `now_ms`, a
//! monotonic millisecond count chosen by the caller.

mod device;
mod entropy;
mod error;
mod frame;
mod host;
mod packetizer;
mod reassembler;
mod reliable;
mod wire;

pub use device::{
    AbortReason, ConnectionId, Destination, DeviceEvent, DeviceLink, DeviceLinkConfig, Transmit,
};
pub use error::{ErrorCode, LinkError};
pub use frame::{Body, Capabilities, Frame, InitResponse, KeepaliveStatus, PinProgress};
pub use host::{HostEvent, HostLink, HostLinkConfig, InitFailure, RequestFailure};
pub use packetizer::Packetizer;
pub use reassembler::{Reassembler, ReassemblerConfig, ReassemblyEvent};
pub use reliable::{Receipt, ReliableReceiver, ReliableSender, RetransmitPolicy, SenderAction};
pub use wire::{ChannelId, Command, Mtu, Role};

/// Link protocol version announced in the `INIT` response.
pub const PROTOCOL_VERSION: u8 = 1;

/// Protocol-wide cap on a message's payload (the init packet's length field), whatever the MTU.
/// Checked before anything is allocated.
pub const MAX_PAYLOAD_LEN: usize = 4096;

/// A message has one init packet and at most this many continuation packets (sequence numbers
/// 0..=0x7F).
pub const MAX_CONTINUATION_PACKETS: usize = 128;

/// Init packet header: channel (4) | command (1) | payload length (2).
pub const INIT_HEADER_LEN: usize = 7;

/// Continuation packet header: channel (4) | sequence (1).
pub const CONTINUATION_HEADER_LEN: usize = 5;

/// The CRC-32 trailer that follows every payload.
pub const CRC_LEN: usize = 4;

/// Length of the `INIT` nonce.
pub const NONCE_LEN: usize = 8;

/// A partially received message is dropped when more than this many milliseconds pass between
/// two of its packets.
pub const REASSEMBLY_TIMEOUT_MS: u64 = 3000;

/// Default bound on messages being reassembled at once (across all channels).
pub const DEFAULT_MAX_PARTIAL_MESSAGES: usize = 4;

/// Channels a [`Reassembler`] keeps open; opening one more closes the least recently used.
pub const MAX_OPEN_CHANNELS: usize = 16;

/// Retransmission timeout of a `MSG`: this base ...
pub const RETRANSMIT_BASE_MS: u64 = 200;

/// ... plus this much per packet of the message (slow links need time to carry it).
pub const RETRANSMIT_PER_PACKET_MS: u64 = 20;

/// A `MSG` is sent at most 1 + this many times before the sender gives up.
pub const MAX_RETRANSMISSIONS: u8 = 5;

/// On Bluetooth LE the retransmission timeout's base is this instead of
/// [`RETRANSMIT_BASE_MS`] (PROTOCOL.md §2.1.1, "Timing"): BLE's link layer already delivers
/// every write and notification of a live connection, so a `MSG` is rarely lost, while its
/// `ACK` comes back through both ends' host stacks and at least two connection intervals,
/// which on a busy desktop takes longer than 200 ms. A timer below the round trip resends
/// messages that were not lost, and each resend queues its packets ahead of the `ACK`s.
pub const BLE_RETRANSMIT_BASE_MS: u64 = 1000;

/// While it works on a request, a device sends `KEEPALIVE` at least this often.
pub const KEEPALIVE_INTERVAL_MS: u64 = 250;

/// A host gives up on a transaction after this long without any packet from the device.
pub const TRANSACTION_IDLE_TIMEOUT_MS: u64 = 3000;

/// Longest PIN a keepalive's digit counter may announce (ISO 9564: 4 to 12 digits).
pub const MAX_PIN_DIGITS: u8 = 12;

/// A host that sees no answer to `INIT` within this long sends it again ...
pub const INIT_TIMEOUT_MS: u64 = 1000;

/// ... up to this many times in all, then reports the device unreachable.
pub const INIT_ATTEMPTS: u8 = 5;

/// A host that sees neither ERROR CANCELLED nor the answer repeats CANCEL this often.
pub const CANCEL_REPEAT_MS: u64 = 200;

/// A host waits this long after its first CANCEL for the device to confirm, then
/// resynchronises the channel (INIT aborts the request for certain).
pub const CANCEL_GRACE_MS: u64 = 1000;
