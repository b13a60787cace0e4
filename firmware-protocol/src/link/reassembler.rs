//! Packets -> frames, with the channel table and the device's busy rule.

use alloc::vec::Vec;

use super::error::LinkError;
use super::frame::{Body, Frame};
use super::wire::{ChannelId, Command, Mtu, Role, message_crc};
use super::{CRC_LEN, DEFAULT_MAX_PARTIAL_MESSAGES, MAX_OPEN_CHANNELS, REASSEMBLY_TIMEOUT_MS};

/// Settings of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblerConfig {
    /// Packet size of the link.
    pub mtu: Mtu,
    /// Which end this reassembler runs on.
    pub role: Role,
    /// Most messages reassembled at once (at least 1); each holds at most
    /// `mtu.max_payload_len() + 4` bytes.
    pub max_partial_messages: usize,
    /// A partial message is dropped when more than this passes between two of its packets.
    pub timeout_ms: u64,
}

impl ReassemblerConfig {
    /// Defaults: [`DEFAULT_MAX_PARTIAL_MESSAGES`], [`REASSEMBLY_TIMEOUT_MS`].
    pub const fn new(mtu: Mtu, role: Role) -> Self {
        ReassemblerConfig {
            mtu,
            role,
            max_partial_messages: DEFAULT_MAX_PARTIAL_MESSAGES,
            timeout_ms: REASSEMBLY_TIMEOUT_MS,
        }
    }
}

/// What one packet (or one expiry check) amounted to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReassemblyEvent {
    /// Accepted; the message is not complete yet.
    Pending,
    /// A whole, CRC-checked, well-formed frame.
    Complete(Frame),
    /// Something to answer on `channel`: send [`ReassemblyEvent::reply`] (`NACK` for damage
    /// in transit, `ERROR` otherwise). Any partial message on the channel is dropped.
    Reject {
        /// Where to answer.
        channel: ChannelId,
        /// What was wrong.
        error: LinkError,
    },
    /// Dropped without an answer (wrong size, stray continuation, or a fault a host does not
    /// answer).
    Ignored(LinkError),
}

impl ReassemblyEvent {
    /// For [`ReassemblyEvent::Reject`]: the `NACK` (transient error) or `ERROR` frame to send.
    pub fn reply(&self) -> Option<Frame> {
        match self {
            ReassemblyEvent::Reject { channel, error } => {
                let code = error.code();
                let body = if code.is_transient() {
                    Body::Nack { reason: code }
                } else {
                    Body::Error(code)
                };
                Some(Frame::new(*channel, body))
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Partial {
    channel: ChannelId,
    command: Command,
    declared_len: u16,
    /// payload | CRC as received so far; capacity fixed at declared_len + 4.
    stream: Vec<u8>,
    next_sequence: u8,
    last_packet_ms: u64,
}

impl Partial {
    fn stream_len(&self) -> usize {
        usize::from(self.declared_len) + CRC_LEN
    }
}

/// Reassembles packets into frames, in any interleaving of channels, with bounded memory.
///
/// Also keeps the table of open channels (packets on other channels are refused) and, on a
/// device, the owner of the current transaction (other channels get `CHANNEL_BUSY`).
#[derive(Clone, Debug)]
pub struct Reassembler {
    config: ReassemblerConfig,
    /// Least recently used first.
    open_channels: Vec<ChannelId>,
    owner: Option<ChannelId>,
    partials: Vec<Partial>,
}

impl Reassembler {
    /// An empty reassembler: no channel open, no transaction.
    pub fn new(config: ReassemblerConfig) -> Self {
        let config = ReassemblerConfig {
            max_partial_messages: config.max_partial_messages.max(1),
            ..config
        };
        Reassembler {
            config,
            open_channels: Vec::with_capacity(MAX_OPEN_CHANNELS),
            owner: None,
            partials: Vec::with_capacity(config.max_partial_messages),
        }
    }

    /// The settings in use.
    pub const fn config(&self) -> &ReassemblerConfig {
        &self.config
    }

    /// Takes one received packet. Call [`Reassembler::expire`] as well, so that partial
    /// messages whose sender went silent are reported.
    pub fn push(&mut self, packet: &[u8], now_ms: u64) -> ReassemblyEvent {
        let mtu = self.config.mtu.get();
        let header = match packet.split_first_chunk::<5>() {
            Some((header, rest)) if packet.len() == mtu => Some((*header, rest)),
            _ => None,
        };
        let Some(([c0, c1, c2, c3, kind], rest)) = header else {
            return ReassemblyEvent::Ignored(LinkError::WrongPacketSize {
                expected: mtu,
                actual: packet.len(),
            });
        };
        let channel = ChannelId(u32::from_be_bytes([c0, c1, c2, c3]));
        if channel == ChannelId::RESERVED {
            return ReassemblyEvent::Ignored(LinkError::ReservedChannel);
        }
        if kind & 0x80 != 0 {
            self.push_init(channel, kind, rest, now_ms)
        } else {
            self.push_continuation(channel, kind, rest, now_ms)
        }
    }

    /// Drops every partial message idle for longer than the timeout and reports each as a
    /// `MESSAGE_TIMEOUT` (a [`ReassemblyEvent::Reject`] to answer with `NACK`, or
    /// [`ReassemblyEvent::Ignored`] on the broadcast channel).
    pub fn expire(&mut self, now_ms: u64) -> Vec<ReassemblyEvent> {
        let timeout_ms = self.config.timeout_ms;
        let mut expired = Vec::new();
        self.partials.retain(|partial| {
            let idle_ms = now_ms.saturating_sub(partial.last_packet_ms);
            let keep = idle_ms <= timeout_ms;
            if !keep {
                expired.push((partial.channel, idle_ms));
            }
            keep
        });
        expired
            .into_iter()
            .map(|(channel, idle_ms)| self.reject(channel, LinkError::MessageTimeout { idle_ms }))
            .collect()
    }

    /// When [`Reassembler::expire`] next has something to report: just after the oldest
    /// partial message's timeout runs out (`None`: nothing in reassembly). A link machine
    /// sleeps until then instead of checking every 100 ms.
    pub fn next_expiry(&self) -> Option<u64> {
        self.partials
            .iter()
            .map(|partial| {
                partial
                    .last_packet_ms
                    .saturating_add(self.config.timeout_ms)
                    .saturating_add(1)
            })
            .min()
    }

    /// Opens a channel (a host: the one its `INIT` answer assigned). Opening an open channel
    /// marks it most recently used; opening one more than [`MAX_OPEN_CHANNELS`] closes the
    /// least recently used one that does not own the transaction.
    pub fn open_channel(&mut self, channel: ChannelId) -> Result<(), LinkError> {
        if !channel.is_assignable() {
            return Err(LinkError::InvalidAssignedChannel { channel });
        }
        if let Some(position) = self.open_channels.iter().position(|&c| c == channel) {
            self.open_channels.remove(position);
        } else if self.open_channels.len() >= MAX_OPEN_CHANNELS {
            let owner = self.owner;
            if let Some(position) = self.open_channels.iter().position(|&c| Some(c) != owner) {
                let evicted = self.open_channels.remove(position);
                self.partials.retain(|partial| partial.channel != evicted);
            }
        }
        self.open_channels.push(channel);
        Ok(())
    }

    /// A device answering `INIT` on broadcast: opens and returns a fresh channel id. `random`
    /// should come from the device RNG; reserved or open ids are skipped.
    pub fn allocate_channel(&mut self, random: u32) -> ChannelId {
        let mut candidate = ChannelId(random);
        while !candidate.is_assignable() || self.is_open(candidate) {
            candidate = ChannelId(candidate.0.wrapping_add(1));
        }
        // `candidate` is assignable, so opening cannot fail.
        let _ = self.open_channel(candidate);
        candidate
    }

    /// Closes a channel, dropping its partial message; ends its transaction if it owned one.
    pub fn close_channel(&mut self, channel: ChannelId) {
        self.open_channels.retain(|&c| c != channel);
        self.partials.retain(|partial| partial.channel != channel);
        if self.owner == Some(channel) {
            self.owner = None;
        }
    }

    /// Whether packets on `channel` are accepted.
    pub fn is_open(&self, channel: ChannelId) -> bool {
        self.open_channels.contains(&channel)
    }

    /// A device starting to serve a request from `owner`: until
    /// [`Reassembler::end_transaction`], `PING`, `MSG`, `WINK` and `INIT` from any other open
    /// channel are refused with `CHANNEL_BUSY` (`INIT` on broadcast still works).
    pub fn begin_transaction(&mut self, owner: ChannelId) {
        self.owner = Some(owner);
    }

    /// The transaction is over (answer acknowledged, cancelled, or given up).
    pub fn end_transaction(&mut self) {
        self.owner = None;
    }

    /// The channel whose transaction is in progress.
    pub const fn transaction_owner(&self) -> Option<ChannelId> {
        self.owner
    }

    /// Messages being reassembled.
    pub fn partial_count(&self) -> usize {
        self.partials.len()
    }

    /// Bytes reserved for messages being reassembled (bounded by
    /// `max_partial_messages * (mtu.max_payload_len() + 4)`).
    pub fn buffered_bytes(&self) -> usize {
        self.partials
            .iter()
            .map(|partial| partial.stream.capacity())
            .sum()
    }

    fn push_init(
        &mut self,
        channel: ChannelId,
        command_byte: u8,
        rest: &[u8],
        now_ms: u64,
    ) -> ReassemblyEvent {
        // A new message on a channel abandons whatever was in progress there (how a sender
        // retransmits, or cancels).
        self.partials.retain(|partial| partial.channel != channel);
        let Some(([l0, l1], data)) = rest.split_first_chunk::<2>().map(|(l, d)| (*l, d)) else {
            return ReassemblyEvent::Ignored(LinkError::WrongPacketSize {
                expected: self.config.mtu.get(),
                actual: rest.len() + 5,
            });
        };
        let declared_len = u16::from_be_bytes([l0, l1]);
        if let Err(error) = self.check_channel_for_init(channel, command_byte) {
            return self.reject(channel, error);
        }
        let command = match Command::from_byte(command_byte) {
            Ok(command) => command,
            Err(error) => return self.reject(channel, error),
        };
        if let Err(error) = self.check_command(channel, command) {
            return self.reject(channel, error);
        }
        let max = self.config.mtu.max_payload_len();
        if usize::from(declared_len) > max {
            return self.reject(
                channel,
                LinkError::MessageTooLarge {
                    len: usize::from(declared_len),
                    max,
                },
            );
        }
        let stream_len = usize::from(declared_len) + CRC_LEN;
        if let Some((stream, padding)) = data.split_at_checked(stream_len) {
            return self.finish(channel, command, declared_len, stream, padding);
        }
        if let Err(error) = self.make_room(now_ms) {
            return self.reject(channel, error);
        }
        let mut stream = Vec::with_capacity(stream_len);
        stream.extend_from_slice(data);
        self.partials.push(Partial {
            channel,
            command,
            declared_len,
            stream,
            next_sequence: 0,
            last_packet_ms: now_ms,
        });
        ReassemblyEvent::Pending
    }

    fn push_continuation(
        &mut self,
        channel: ChannelId,
        sequence: u8,
        data: &[u8],
        now_ms: u64,
    ) -> ReassemblyEvent {
        if !channel.is_broadcast() && !self.is_open(channel) {
            // Unknown channels are answered once, at the init packet, not per continuation.
            return ReassemblyEvent::Ignored(LinkError::UnknownChannel { channel });
        }
        let Some(index) = self.partials.iter().position(|p| p.channel == channel) else {
            return ReassemblyEvent::Ignored(LinkError::UnexpectedContinuation { sequence });
        };
        let mut partial = self.partials.swap_remove(index);
        let idle_ms = now_ms.saturating_sub(partial.last_packet_ms);
        if idle_ms > self.config.timeout_ms {
            return self.reject(channel, LinkError::MessageTimeout { idle_ms });
        }
        if sequence != partial.next_sequence {
            return self.reject(
                channel,
                LinkError::InvalidSequence {
                    expected: partial.next_sequence,
                    actual: sequence,
                },
            );
        }
        let missing = partial.stream_len() - partial.stream.len();
        let (chunk, padding) = data.split_at(missing.min(data.len()));
        partial.stream.extend_from_slice(chunk);
        if partial.stream.len() < partial.stream_len() {
            partial.next_sequence = partial.next_sequence.wrapping_add(1);
            partial.last_packet_ms = now_ms;
            self.partials.push(partial);
            return ReassemblyEvent::Pending;
        }
        self.finish(
            channel,
            partial.command,
            partial.declared_len,
            &partial.stream,
            padding,
        )
    }

    /// Checks on the channel before the command byte is even looked at.
    fn check_channel_for_init(
        &self,
        channel: ChannelId,
        command_byte: u8,
    ) -> Result<(), LinkError> {
        if channel.is_broadcast() {
            return match Command::from_byte(command_byte) {
                Ok(command) if !command.allowed_on_broadcast() => {
                    Err(LinkError::BroadcastNotAllowed { command })
                }
                _ => Ok(()),
            };
        }
        if !self.is_open(channel) {
            return Err(LinkError::UnknownChannel { channel });
        }
        Ok(())
    }

    fn check_command(&self, channel: ChannelId, command: Command) -> Result<(), LinkError> {
        if !command.accepted_by(self.config.role) {
            return Err(LinkError::CommandNotAccepted {
                command,
                receiver: self.config.role,
            });
        }
        match self.owner {
            Some(owner)
                if self.config.role == Role::Device
                    && owner != channel
                    && !channel.is_broadcast()
                    && command.starts_work() =>
            {
                Err(LinkError::ChannelBusy { owner })
            }
            _ => Ok(()),
        }
    }

    fn finish(
        &mut self,
        channel: ChannelId,
        command: Command,
        declared_len: u16,
        stream: &[u8],
        padding: &[u8],
    ) -> ReassemblyEvent {
        if padding.iter().any(|&byte| byte != 0) {
            return self.reject(channel, LinkError::NonZeroPadding);
        }
        let Some((payload, [r0, r1, r2, r3])) = stream
            .split_at_checked(usize::from(declared_len))
            .and_then(|(payload, crc)| Some((payload, <[u8; CRC_LEN]>::try_from(crc).ok()?)))
        else {
            // Unreachable: the stream is exactly declared_len + 4 bytes long.
            return self.reject(channel, LinkError::NonZeroPadding);
        };
        let received = u32::from_be_bytes([r0, r1, r2, r3]);
        let computed = message_crc(channel, command.byte(), declared_len, payload);
        if computed != received {
            return self.reject(channel, LinkError::CrcMismatch { computed, received });
        }
        // The owner may have changed while the message was in flight.
        if let Err(error) = self.check_command(channel, command) {
            return self.reject(channel, error);
        }
        match Body::decode(command, payload, self.config.role) {
            Ok(body) => {
                if !channel.is_broadcast() {
                    self.touch(channel);
                }
                ReassemblyEvent::Complete(Frame::new(channel, body))
            }
            Err(error) => self.reject(channel, error),
        }
    }

    /// Drops expired partial messages if the table is full; fails if it stays full.
    fn make_room(&mut self, now_ms: u64) -> Result<(), LinkError> {
        let max = self.config.max_partial_messages;
        if self.partials.len() >= max {
            let timeout_ms = self.config.timeout_ms;
            self.partials
                .retain(|partial| now_ms.saturating_sub(partial.last_packet_ms) <= timeout_ms);
        }
        if self.partials.len() >= max {
            return Err(LinkError::TooManyPartialMessages { max });
        }
        Ok(())
    }

    fn touch(&mut self, channel: ChannelId) {
        if let Some(position) = self.open_channels.iter().position(|&c| c == channel) {
            let channel = self.open_channels.remove(position);
            self.open_channels.push(channel);
        }
    }

    /// Turns an error into an answer or silence: a device answers everything except damage
    /// on the broadcast channel (the `INIT` sender retries); a host answers only damage in
    /// transit (with `NACK`), and never on broadcast.
    fn reject(&self, channel: ChannelId, error: LinkError) -> ReassemblyEvent {
        let answers = match self.config.role {
            Role::Device => !(channel.is_broadcast() && error.is_transient()),
            Role::Host => error.is_transient() && !channel.is_broadcast(),
        };
        if answers {
            ReassemblyEvent::Reject { channel, error }
        } else {
            ReassemblyEvent::Ignored(error)
        }
    }
}
