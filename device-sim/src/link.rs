//! The device's link layer (PROTOCOL.md §2) around the core, still without I/O.
//!
//! [`LinkEngine`] takes packets from numbered host connections and the passing of time, and
//! says which packets to send to which connection: channel allocation (INIT), reassembly and
//! CRC (firmware-protocol's `Reassembler`), acknowledged delivery (`ReliableReceiver` /
//! `ReliableSender` per channel), one transaction at a time (CHANNEL_BUSY to other channels),
//! KEEPALIVE while the core waits for the user, CANCEL. The TCP adapter in
//! [`crate::server`] only moves the packets.

use std::collections::HashMap;

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, ErrorCode, Frame, InitResponse, KeepaliveStatus, Mtu,
    PROTOCOL_VERSION, PinProgress, Reassembler, ReassemblerConfig, ReassemblyEvent, Receipt,
    ReliableReceiver, ReliableSender, Role, SenderAction,
};
use rand_core::Rng;

use crate::device::{Device, Outcome, Progress};
use crate::hardware::{EventKind, Hardware};

/// A host connection, numbered by the adapter.
pub type ConnectionId = u64;

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Every connected host (broadcast channel: each host picks its own INIT answer).
    All,
    /// One host connection.
    Connection(ConnectionId),
}

/// A packet to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// To whom.
    pub to: Destination,
    /// Exactly one MTU of bytes.
    pub packet: Vec<u8>,
}

struct Channel {
    connection: ConnectionId,
    receiver: ReliableReceiver,
    sender: ReliableSender,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The core works on the request (or waits for the user).
    Processing,
    /// The answer MSG is on its way; the transaction ends with its ACK.
    Answering,
}

#[derive(Clone, Copy, Debug)]
struct Transaction {
    channel: ChannelId,
    phase: Phase,
    last_keepalive_ms: u64,
    progress: Option<Progress>,
}

/// The device end of the link.
pub struct LinkEngine {
    mtu: Mtu,
    reassembler: Reassembler,
    channels: HashMap<ChannelId, Channel>,
    transaction: Option<Transaction>,
    busy_answers: u32,
}

impl std::fmt::Debug for LinkEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkEngine")
            .field("mtu", &self.mtu)
            .field("open_channels", &self.channels.len())
            .field("transaction", &self.transaction)
            .finish_non_exhaustive()
    }
}

fn keepalive_status(progress: Progress) -> KeepaliveStatus {
    match progress {
        Progress::Processing => KeepaliveStatus::Processing,
        Progress::AwaitingUser => KeepaliveStatus::AwaitingUser,
        Progress::PinEntry { entered, max } => match PinProgress::new(entered, max) {
            Ok(progress) => KeepaliveStatus::PinEntry(progress),
            Err(_) => KeepaliveStatus::AwaitingUser,
        },
    }
}

impl LinkEngine {
    /// A link of `mtu` with no channel open.
    pub fn new(mtu: Mtu) -> Self {
        Self {
            mtu,
            reassembler: Reassembler::new(ReassemblerConfig::new(mtu, Role::Device)),
            channels: HashMap::new(),
            transaction: None,
            busy_answers: 0,
        }
    }

    /// The packet size.
    pub fn mtu(&self) -> Mtu {
        self.mtu
    }

    /// Fault injection: answer the next `count` requests with ERROR CHANNEL_BUSY.
    pub fn answer_busy(&mut self, count: u32) {
        self.busy_answers = count;
    }

    /// Requests still to be answered BUSY.
    pub fn busy_answers_left(&self) -> u32 {
        self.busy_answers
    }

    /// The channel that owns the transaction in progress.
    pub fn transaction_owner(&self) -> Option<ChannelId> {
        self.transaction.map(|t| t.channel)
    }

    fn frame_to(&self, frame: &Frame, to: Destination, out: &mut Vec<Outgoing>) {
        if let Ok(packets) = frame.to_packets(self.mtu) {
            out.extend(packets.into_iter().map(|packet| Outgoing { to, packet }));
        }
    }

    fn destination(&self, channel: ChannelId) -> Destination {
        if channel.is_broadcast() {
            return Destination::All;
        }
        self.channels
            .get(&channel)
            .map_or(Destination::All, |c| Destination::Connection(c.connection))
    }

    fn send(&self, frame: Frame, out: &mut Vec<Outgoing>) {
        let to = self.destination(frame.channel);
        self.frame_to(&frame, to, out);
    }

    fn end_transaction(&mut self) {
        self.transaction = None;
        self.reassembler.end_transaction();
    }

    /// Forget channels the reassembler closed (least recently used, over 16).
    fn sync_channels(&mut self) {
        let reassembler = &self.reassembler;
        self.channels
            .retain(|channel, _| reassembler.is_open(*channel));
    }

    /// A host connection went away: its channels close, its transaction is abandoned.
    pub fn disconnected<H: Hardware>(
        &mut self,
        connection: ConnectionId,
        device: &mut Device,
        hw: &mut H,
    ) {
        let closed: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| c.connection == connection)
            .map(|(id, _)| *id)
            .collect();
        for channel in closed {
            if self.transaction_owner() == Some(channel) {
                device.abort(hw);
                self.end_transaction();
            }
            self.reassembler.close_channel(channel);
            self.channels.remove(&channel);
        }
    }

    /// One packet from `from`, received at link time `now_ms`.
    pub fn receive<H: Hardware>(
        &mut self,
        from: ConnectionId,
        packet: &[u8],
        now_ms: u64,
        device: &mut Device,
        hw: &mut H,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        match self.reassembler.push(packet, now_ms) {
            ReassemblyEvent::Complete(frame) => {
                self.on_frame(from, frame, now_ms, device, hw, &mut out)
            }
            event @ ReassemblyEvent::Reject { .. } => {
                if let Some(reply) = event.reply() {
                    // Answer the connection that sent the packet (its channel may be unknown).
                    self.frame_to(&reply, Destination::Connection(from), &mut out);
                }
            }
            ReassemblyEvent::Pending | ReassemblyEvent::Ignored(_) => {}
        }
        out
    }

    fn on_frame<H: Hardware>(
        &mut self,
        from: ConnectionId,
        frame: Frame,
        now_ms: u64,
        device: &mut Device,
        hw: &mut H,
        out: &mut Vec<Outgoing>,
    ) {
        let channel = frame.channel;
        if let Some(state) = self.channels.get_mut(&channel) {
            state.connection = from;
        }
        match frame.body {
            Body::InitRequest { nonce } => {
                let assigned = if channel.is_broadcast() {
                    let random = hw.rng().next_u32();
                    let assigned = self.reassembler.allocate_channel(random);
                    self.sync_channels();
                    assigned
                } else {
                    if self.transaction_owner() == Some(channel) {
                        device.abort(hw);
                        self.end_transaction();
                    }
                    channel
                };
                self.channels.insert(
                    assigned,
                    Channel {
                        connection: from,
                        receiver: ReliableReceiver::new(),
                        sender: ReliableSender::new(assigned, self.mtu),
                    },
                );
                let answer = Body::InitResponse(InitResponse {
                    nonce,
                    channel: assigned,
                    version: PROTOCOL_VERSION,
                    capabilities: Capabilities::WINK
                        .union(Capabilities::KEYPAD)
                        .union(Capabilities::DISPLAY),
                    mtu: self.mtu,
                });
                let to = if channel.is_broadcast() {
                    Destination::All
                } else {
                    Destination::Connection(from)
                };
                self.frame_to(&Frame::new(channel, answer), to, out);
            }
            Body::Ping(data) => self.send(Frame::new(channel, Body::Ping(data)), out),
            Body::Wink => {
                hw.record(EventKind::Link {
                    what: "wink".into(),
                });
                self.send(Frame::new(channel, Body::Wink), out);
            }
            Body::Msg { seq, message } => {
                let Some(state) = self.channels.get_mut(&channel) else {
                    return;
                };
                match state.receiver.receive(channel, seq, message) {
                    Receipt::New { ack, message } => {
                        self.send(ack, out);
                        self.on_request(channel, &message, now_ms, device, hw, out);
                    }
                    Receipt::Duplicate { ack } => self.send(ack, out),
                    Receipt::Stale { .. } => {}
                }
            }
            Body::Ack { seq } => {
                let acknowledged = self
                    .channels
                    .get_mut(&channel)
                    .is_some_and(|state| state.sender.on_ack(seq));
                if acknowledged
                    && self
                        .transaction
                        .is_some_and(|t| t.channel == channel && t.phase == Phase::Answering)
                {
                    self.end_transaction();
                }
            }
            Body::Nack { .. } => {
                if let Some(state) = self.channels.get_mut(&channel) {
                    state.sender.on_nack();
                }
                self.flush(now_ms, out);
            }
            Body::Cancel => {
                if self
                    .transaction
                    .is_some_and(|t| t.channel == channel && t.phase == Phase::Processing)
                {
                    device.abort(hw);
                    self.end_transaction();
                    self.send(Frame::new(channel, Body::Error(ErrorCode::Cancelled)), out);
                }
            }
            // The reassembler refuses these on a device.
            Body::InitResponse(_) | Body::Keepalive(_) | Body::Error(_) => {}
        }
    }

    fn on_request<H: Hardware>(
        &mut self,
        channel: ChannelId,
        message: &[u8],
        now_ms: u64,
        device: &mut Device,
        hw: &mut H,
        out: &mut Vec<Outgoing>,
    ) {
        if self
            .transaction
            .is_some_and(|t| t.channel == channel && t.phase == Phase::Answering)
        {
            // The host sends one request at a time: a new one means it has our answer, whose
            // ACK was lost. Count the answer as acknowledged (its sequence number is used).
            if let Some(state) = self.channels.get_mut(&channel) {
                let outstanding = state.sender.next_seq();
                state.sender.on_ack(outstanding);
            }
            self.end_transaction();
        }
        if self.transaction_owner() == Some(channel) {
            // A second request before the first was answered.
            self.send(
                Frame::new(channel, Body::Error(ErrorCode::ChannelBusy)),
                out,
            );
            return;
        }
        if self.busy_answers > 0 {
            self.busy_answers -= 1;
            hw.record(EventKind::Link {
                what: "fault: answered CHANNEL_BUSY".into(),
            });
            self.send(
                Frame::new(channel, Body::Error(ErrorCode::ChannelBusy)),
                out,
            );
            return;
        }
        self.reassembler.begin_transaction(channel);
        self.transaction = Some(Transaction {
            channel,
            phase: Phase::Processing,
            last_keepalive_ms: now_ms,
            progress: None,
        });
        let outcome = device.handle(message, hw);
        self.on_outcome(outcome, now_ms, out);
    }

    /// Routes what the core said: an answer goes out as the transaction's MSG; progress as
    /// KEEPALIVE (at once when it changes, then every 250 ms at most).
    fn on_outcome(&mut self, outcome: Outcome, now_ms: u64, out: &mut Vec<Outgoing>) {
        let Some(mut transaction) = self.transaction else {
            return;
        };
        if transaction.phase != Phase::Processing {
            return;
        }
        let channel = transaction.channel;
        if let Some(answer) = outcome.answers.last() {
            let sent = self
                .channels
                .get_mut(&channel)
                .map(|state| state.sender.send(answer.clone()));
            match sent {
                Some(Ok(_)) => {
                    transaction.phase = Phase::Answering;
                    self.transaction = Some(transaction);
                    self.flush(now_ms, out);
                }
                _ => self.end_transaction(),
            }
            return;
        }
        if let Some(progress) = outcome.progress {
            let changed = transaction.progress != Some(progress);
            let due = now_ms.saturating_sub(transaction.last_keepalive_ms)
                >= firmware_protocol::link::KEEPALIVE_INTERVAL_MS - 50;
            if changed || due {
                transaction.progress = Some(progress);
                transaction.last_keepalive_ms = now_ms;
                self.transaction = Some(transaction);
                self.send(
                    Frame::new(channel, Body::Keepalive(keepalive_status(progress))),
                    out,
                );
            }
        }
    }

    /// Retransmissions due now.
    fn flush(&mut self, now_ms: u64, out: &mut Vec<Outgoing>) {
        let mut gave_up = Vec::new();
        let mut frames = Vec::new();
        for (channel, state) in &mut self.channels {
            match state.sender.poll(now_ms) {
                SenderAction::Transmit(frame) => frames.push(frame),
                SenderAction::GaveUp { .. } => gave_up.push(*channel),
                SenderAction::Idle | SenderAction::WaitUntil(_) => {}
            }
        }
        for frame in frames {
            self.send(frame, out);
        }
        for channel in gave_up {
            if self.transaction_owner() == Some(channel) {
                self.end_transaction();
            }
        }
    }

    /// The passing of time: the core's poll (keys, tamper, clock), keepalives,
    /// retransmissions and reassembly timeouts.
    pub fn tick<H: Hardware>(
        &mut self,
        now_ms: u64,
        device: &mut Device,
        hw: &mut H,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let outcome = device.poll(hw);
        if self.transaction.is_some() {
            self.on_outcome(outcome, now_ms, &mut out);
        }
        self.flush(now_ms, &mut out);
        for event in self.reassembler.expire(now_ms) {
            if let (ReassemblyEvent::Reject { channel, .. }, Some(reply)) = (&event, event.reply())
            {
                let to = self.destination(*channel);
                self.frame_to(&reply, to, &mut out);
            }
        }
        out
    }
}
