//! The device end of the link (PROTOCOL.md §2.6-§2.10) as a sans-I/O connection machine.
//!
//! [`DeviceLink`] is fed received packets ([`DeviceLink::handle_packet`]) and the passing of
//! time ([`DeviceLink::handle_timeout`], when [`DeviceLink::poll_timeout`] says), and hands
//! out packets to send ([`DeviceLink::poll_transmit`]) and what the message layer must do
//! ([`DeviceLink::poll_event`]). The message layer answers through [`DeviceLink::answer`],
//! reports progress through [`DeviceLink::set_progress`], or refuses with
//! [`DeviceLink::refuse`]. Every link rule of a device lives here: channel allocation and
//! resynchronisation, reassembly and CRC, ACK/NACK and retransmission of answers, one
//! transaction at a time (CHANNEL_BUSY), KEEPALIVE, CANCEL. A driver only moves bytes and
//! timers.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::entropy::Entropy;
use super::error::{ErrorCode, LinkError};
use super::frame::{Body, Capabilities, Frame, InitResponse, KeepaliveStatus};
use super::reassembler::{Reassembler, ReassemblerConfig, ReassemblyEvent};
use super::reliable::{Receipt, ReliableReceiver, ReliableSender, RetransmitPolicy, SenderAction};
use super::wire::{ChannelId, Mtu, Role};
use super::{KEEPALIVE_INTERVAL_MS, PROTOCOL_VERSION};

/// A host connection, numbered by the driver: a TCP connection on the simulator link, the
/// one USB interface, the BLE central. Several hosts may share one connection (USB).
pub type ConnectionId = u64;

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Every connected host (the broadcast channel: each host picks its own INIT answer).
    All,
    /// One host connection.
    Connection(ConnectionId),
}

/// A packet to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// To whom.
    pub to: Destination,
    /// Exactly one MTU of bytes.
    pub packet: Vec<u8>,
}

/// What the message layer must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A new request (already acknowledged): work on `message`, then call
    /// [`DeviceLink::answer`] (or [`DeviceLink::refuse`]); call [`DeviceLink::set_progress`]
    /// while it takes time.
    Request {
        /// The channel that owns the transaction.
        channel: ChannelId,
        /// Message-layer bytes.
        message: Vec<u8>,
    },
    /// The request in progress is abandoned: stop working on it (discard PIN digits) and
    /// send no answer.
    Aborted {
        /// Its channel.
        channel: ChannelId,
        /// Why.
        reason: AbortReason,
    },
    /// `WINK`: the device identifies itself (blink, beep). The link already answered.
    Wink {
        /// Who asked.
        channel: ChannelId,
    },
}

/// Why a request was abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortReason {
    /// `CANCEL` from the owner (the link answered ERROR CANCELLED).
    Cancelled,
    /// `INIT` on the owner channel (§2.6.3).
    Resync,
    /// The owner's host connection went away.
    Disconnected,
}

/// Settings of a [`DeviceLink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceLinkConfig {
    /// Packet size of the link.
    pub mtu: Mtu,
    /// What the INIT answer announces.
    pub capabilities: Capabilities,
    /// Retransmission of answer MSGs.
    pub retransmit: RetransmitPolicy,
    /// KEEPALIVE period while a request is processed. Below §2.11's 250 ms so that a driver's
    /// timer latency never stretches a gap past it.
    pub keepalive_interval_ms: u64,
}

impl DeviceLinkConfig {
    /// §2.11's defaults on a link of `mtu`.
    pub const fn new(mtu: Mtu, capabilities: Capabilities) -> Self {
        DeviceLinkConfig {
            mtu,
            capabilities,
            retransmit: RetransmitPolicy {
                base_timeout_ms: super::RETRANSMIT_BASE_MS,
                per_packet_ms: super::RETRANSMIT_PER_PACKET_MS,
                max_retransmissions: super::MAX_RETRANSMISSIONS,
            },
            keepalive_interval_ms: KEEPALIVE_INTERVAL_MS - 50,
        }
    }
}

#[derive(Clone, Debug)]
struct Channel {
    connection: ConnectionId,
    receiver: ReliableReceiver,
    sender: ReliableSender,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The message layer works on the request (or waits for the user).
    Processing,
    /// The answer MSG is on its way; the transaction ends with its ACK.
    Answering,
}

#[derive(Clone, Copy, Debug)]
struct Transaction {
    channel: ChannelId,
    phase: Phase,
    status: KeepaliveStatus,
    /// The status last sent; `None` until the first KEEPALIVE.
    sent_status: Option<KeepaliveStatus>,
    last_keepalive_ms: u64,
}

/// The device end of the link: every channel, the one transaction, all timers.
#[derive(Clone, Debug)]
pub struct DeviceLink {
    config: DeviceLinkConfig,
    reassembler: Reassembler,
    channels: BTreeMap<ChannelId, Channel>,
    transaction: Option<Transaction>,
    entropy: Entropy,
    transmits: VecDeque<Transmit>,
    events: VecDeque<DeviceEvent>,
}

impl DeviceLink {
    /// A link with no channel open. `seed` (from the device RNG) picks channel ids.
    pub fn new(config: DeviceLinkConfig, seed: u64) -> Self {
        DeviceLink {
            config,
            reassembler: Reassembler::new(ReassemblerConfig::new(config.mtu, Role::Device)),
            channels: BTreeMap::new(),
            transaction: None,
            entropy: Entropy::new(seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The packet size.
    pub const fn mtu(&self) -> Mtu {
        self.config.mtu
    }

    /// Retransmits answers by `policy` on every channel opened from now on (a device served
    /// over Bluetooth LE uses [`RetransmitPolicy::BLE`], PROTOCOL.md §2.1.1).
    pub fn set_retransmit(&mut self, policy: RetransmitPolicy) {
        self.config.retransmit = policy;
    }

    /// The retransmission policy of channels opened from now on.
    pub const fn retransmit(&self) -> RetransmitPolicy {
        self.config.retransmit
    }

    /// The channel that owns the transaction in progress.
    pub fn transaction_owner(&self) -> Option<ChannelId> {
        self.transaction.map(|t| t.channel)
    }

    /// Whether a request is being worked on (not yet answered).
    pub fn is_processing(&self) -> bool {
        self.transaction
            .is_some_and(|t| t.phase == Phase::Processing)
    }

    /// Open channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the message layer must do.
    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    /// When [`DeviceLink::handle_timeout`] has something to do (link milliseconds).
    pub fn poll_timeout(&self) -> Option<u64> {
        let keepalive = self
            .transaction
            .filter(|t| t.phase == Phase::Processing)
            .map(|t| {
                t.last_keepalive_ms
                    .saturating_add(self.config.keepalive_interval_ms)
            });
        let retransmit = self
            .channels
            .values()
            .filter_map(|c| c.sender.deadline())
            .min();
        [keepalive, retransmit, self.reassembler.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    /// One packet from `from`, received at link time `now_ms`.
    pub fn handle_packet(&mut self, now_ms: u64, from: ConnectionId, packet: &[u8]) {
        match self.reassembler.push(packet, now_ms) {
            ReassemblyEvent::Complete(frame) => self.on_frame(now_ms, from, frame),
            event @ ReassemblyEvent::Reject { .. } => {
                if let Some(reply) = event.reply() {
                    // The connection that sent it: its channel may be unknown.
                    self.queue(&reply, Destination::Connection(from));
                }
            }
            ReassemblyEvent::Pending | ReassemblyEvent::Ignored(_) => {}
        }
    }

    /// Time passes: keepalives, retransmissions, reassembly timeouts.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if let Some(mut transaction) = self.transaction
            && transaction.phase == Phase::Processing
            && now_ms
                >= transaction
                    .last_keepalive_ms
                    .saturating_add(self.config.keepalive_interval_ms)
        {
            transaction.last_keepalive_ms = now_ms;
            transaction.sent_status = Some(transaction.status);
            self.transaction = Some(transaction);
            self.send(Frame::new(
                transaction.channel,
                Body::Keepalive(transaction.status),
            ));
        }
        self.flush(now_ms);
        for event in self.reassembler.expire(now_ms) {
            if let (ReassemblyEvent::Reject { channel, .. }, Some(reply)) = (&event, event.reply())
            {
                let to = self.destination(*channel);
                self.queue(&reply, to);
            }
        }
    }

    /// The message layer's answer to the request in progress: sent as the transaction's MSG
    /// (retransmitted until acknowledged). Fails, ending the transaction without an answer,
    /// if it does not fit the link; does nothing if no request is being processed.
    pub fn answer(&mut self, now_ms: u64, message: Vec<u8>) -> Result<(), LinkError> {
        let Some(mut transaction) = self.transaction else {
            return Ok(());
        };
        if transaction.phase != Phase::Processing {
            return Ok(());
        }
        let sent = match self.channels.get_mut(&transaction.channel) {
            Some(state) => state.sender.send(message),
            None => Err(LinkError::UnknownChannel {
                channel: transaction.channel,
            }),
        };
        match sent {
            Ok(_) => {
                transaction.phase = Phase::Answering;
                self.transaction = Some(transaction);
                self.flush(now_ms);
                Ok(())
            }
            Err(error) => {
                self.end_transaction();
                Err(error)
            }
        }
    }

    /// Refuses the request in progress with a link ERROR instead of an answer (a device that
    /// cannot serve it now answers CHANNEL_BUSY), ending the transaction.
    pub fn refuse(&mut self, code: ErrorCode) {
        if let Some(transaction) = self.transaction
            && transaction.phase == Phase::Processing
        {
            self.end_transaction();
            self.send(Frame::new(transaction.channel, Body::Error(code)));
        }
    }

    /// What the request in progress is doing: sent as KEEPALIVE at once when it changes,
    /// then every [`DeviceLinkConfig::keepalive_interval_ms`].
    pub fn set_progress(&mut self, now_ms: u64, status: KeepaliveStatus) {
        let Some(mut transaction) = self.transaction else {
            return;
        };
        if transaction.phase != Phase::Processing {
            return;
        }
        transaction.status = status;
        if transaction.sent_status != Some(status) {
            transaction.sent_status = Some(status);
            transaction.last_keepalive_ms = now_ms;
            self.send(Frame::new(transaction.channel, Body::Keepalive(status)));
        }
        self.transaction = Some(transaction);
    }

    /// A host connection went away: its channels close, its transaction is abandoned
    /// ([`DeviceEvent::Aborted`]).
    pub fn disconnected(&mut self, connection: ConnectionId) {
        let closed: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| c.connection == connection)
            .map(|(id, _)| *id)
            .collect();
        for channel in closed {
            if self.transaction_owner() == Some(channel) {
                self.abort(channel, AbortReason::Disconnected);
            }
            self.reassembler.close_channel(channel);
            self.channels.remove(&channel);
        }
    }

    fn on_frame(&mut self, now_ms: u64, from: ConnectionId, frame: Frame) {
        let channel = frame.channel;
        if let Some(state) = self.channels.get_mut(&channel) {
            state.connection = from;
        }
        match frame.body {
            Body::InitRequest { nonce } => self.on_init(from, channel, nonce),
            Body::Ping(data) => self.send(Frame::new(channel, Body::Ping(data))),
            Body::Wink => {
                self.events.push_back(DeviceEvent::Wink { channel });
                self.send(Frame::new(channel, Body::Wink));
            }
            Body::Msg { seq, message } => {
                let Some(state) = self.channels.get_mut(&channel) else {
                    return;
                };
                match state.receiver.receive(channel, seq, message) {
                    Receipt::New { ack, message } => {
                        self.send(ack);
                        self.on_request(channel, message, now_ms);
                    }
                    Receipt::Duplicate { ack } => self.send(ack),
                    Receipt::Stale { .. } => {}
                }
            }
            Body::Ack { seq } => {
                let acknowledged = self
                    .channels
                    .get_mut(&channel)
                    .is_some_and(|state| state.sender.on_ack(seq));
                if acknowledged && self.answering_on(channel) {
                    self.end_transaction();
                }
            }
            Body::Nack { .. } => {
                if let Some(state) = self.channels.get_mut(&channel) {
                    state.sender.on_nack();
                }
                self.flush(now_ms);
            }
            Body::Cancel => {
                // §2.10: only the owner's CANCEL, only before the answer went out.
                if self
                    .transaction
                    .is_some_and(|t| t.channel == channel && t.phase == Phase::Processing)
                {
                    self.abort(channel, AbortReason::Cancelled);
                    self.send(Frame::new(channel, Body::Error(ErrorCode::Cancelled)));
                }
            }
            // The reassembler refuses these on a device.
            Body::InitResponse(_) | Body::Keepalive(_) | Body::Error(_) => {}
        }
    }

    fn on_init(&mut self, from: ConnectionId, channel: ChannelId, nonce: [u8; 8]) {
        let assigned = if channel.is_broadcast() {
            let random = self.entropy.next_u32();
            let assigned = self.reassembler.allocate_channel(random);
            // Forget channels the reassembler closed (least recently used, over 16).
            let reassembler = &self.reassembler;
            self.channels.retain(|id, _| reassembler.is_open(*id));
            assigned
        } else {
            if self.transaction_owner() == Some(channel) {
                self.abort(channel, AbortReason::Resync);
            }
            channel
        };
        // Both sequence numbers start again at 0 (§2.6.2, §2.6.3).
        self.channels.insert(
            assigned,
            Channel {
                connection: from,
                receiver: ReliableReceiver::new(),
                sender: ReliableSender::with_policy(
                    assigned,
                    self.config.mtu,
                    self.config.retransmit,
                ),
            },
        );
        let answer = Body::InitResponse(InitResponse {
            nonce,
            channel: assigned,
            version: PROTOCOL_VERSION,
            capabilities: self.config.capabilities,
            mtu: self.config.mtu,
        });
        let to = if channel.is_broadcast() {
            Destination::All
        } else {
            Destination::Connection(from)
        };
        self.queue(&Frame::new(channel, answer), to);
    }

    fn on_request(&mut self, channel: ChannelId, message: Vec<u8>, now_ms: u64) {
        if self.answering_on(channel) {
            // §2.9.3: a host sends one request at a time, so a new one means it has our
            // answer, whose ACK was lost. The answer counts as acknowledged.
            if let Some(state) = self.channels.get_mut(&channel) {
                let outstanding = state.sender.next_seq();
                state.sender.on_ack(outstanding);
            }
            self.end_transaction();
        } else if let Some(state) = self.channels.get_mut(&channel) {
            // The same rule after this device gave up on its answer: the host had it. Without
            // it the request would run with no way to send its answer (sender awaiting INIT).
            state.sender.delivered_late();
        }
        if self.transaction_owner() == Some(channel) {
            // §2.10 rule 1: a second request before the first was answered.
            self.send(Frame::new(channel, Body::Error(ErrorCode::ChannelBusy)));
            return;
        }
        self.reassembler.begin_transaction(channel);
        self.transaction = Some(Transaction {
            channel,
            phase: Phase::Processing,
            status: KeepaliveStatus::Processing,
            sent_status: None,
            last_keepalive_ms: now_ms,
        });
        self.events
            .push_back(DeviceEvent::Request { channel, message });
    }

    fn answering_on(&self, channel: ChannelId) -> bool {
        self.transaction
            .is_some_and(|t| t.channel == channel && t.phase == Phase::Answering)
    }

    fn abort(&mut self, channel: ChannelId, reason: AbortReason) {
        self.end_transaction();
        self.events
            .push_back(DeviceEvent::Aborted { channel, reason });
    }

    fn end_transaction(&mut self) {
        self.transaction = None;
        self.reassembler.end_transaction();
    }

    /// Retransmissions due now; a sender that gave up ends its transaction.
    fn flush(&mut self, now_ms: u64) {
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
            self.send(frame);
        }
        for channel in gave_up {
            if self.transaction_owner() == Some(channel) {
                self.end_transaction();
            }
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

    fn send(&mut self, frame: Frame) {
        let to = self.destination(frame.channel);
        self.queue(&frame, to);
    }

    fn queue(&mut self, frame: &Frame, to: Destination) {
        // Only frames this machine built are queued, and each fits the MTU.
        if let Ok(packetizer) = super::Packetizer::new(frame, self.config.mtu) {
            self.transmits
                .extend(packetizer.map(|packet| Transmit { to, packet }));
        }
    }
}
