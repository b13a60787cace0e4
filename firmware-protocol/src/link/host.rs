//! The host end of the link (PROTOCOL.md §2.6-§2.10) as a sans-I/O connection machine.
//!
//! [`HostLink`] owns one channel to one device. It is fed received packets
//! ([`HostLink::handle_packet`]) and the passing of time ([`HostLink::handle_timeout`], when
//! [`HostLink::poll_timeout`] says), and hands out packets to send
//! ([`HostLink::poll_transmit`]) and what happened ([`HostLink::poll_event`]). Every link rule
//! of a host lives here: INIT allocation and resynchronisation with their retries, ACK/NACK
//! and retransmission of the request, acknowledging and de-duplicating answers, KEEPALIVE as
//! progress, the idle timeout, CANCEL and its repeats, and the reaction to each ERROR. What to
//! do about a busy device (when to retry) and about time limits of its own is the driver's
//! policy; it calls [`HostLink::send`] again or [`HostLink::cancel`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::entropy::Entropy;
use super::error::{ErrorCode, LinkError};
use super::frame::{Body, Capabilities, Frame, InitResponse, KeepaliveStatus};
use super::reassembler::{Reassembler, ReassemblerConfig, ReassemblyEvent};
use super::reliable::{Receipt, ReliableReceiver, ReliableSender, RetransmitPolicy, SenderAction};
use super::wire::{ChannelId, Mtu, Role};
use super::{
    CANCEL_GRACE_MS, CANCEL_REPEAT_MS, INIT_ATTEMPTS, INIT_TIMEOUT_MS, NONCE_LEN, PROTOCOL_VERSION,
    TRANSACTION_IDLE_TIMEOUT_MS,
};

/// Settings of a [`HostLink`]; the defaults are PROTOCOL.md §2.11's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostLinkConfig {
    /// Packet size of the link.
    pub mtu: Mtu,
    /// Wait for an INIT answer before sending INIT again.
    pub init_timeout_ms: u64,
    /// INIT requests in all before giving up.
    pub init_attempts: u8,
    /// A request is lost after this long without any packet on the channel, once delivered.
    pub idle_timeout_ms: u64,
    /// MSG retransmission.
    pub retransmit: RetransmitPolicy,
    /// CANCEL is repeated this often until the device confirms.
    pub cancel_repeat_ms: u64,
    /// After CANCEL, how long to wait for ERROR CANCELLED (or the answer) before resynchronising.
    pub cancel_grace_ms: u64,
}

impl HostLinkConfig {
    /// §2.11's defaults on a link of `mtu`.
    pub const fn new(mtu: Mtu) -> Self {
        HostLinkConfig {
            mtu,
            init_timeout_ms: INIT_TIMEOUT_MS,
            init_attempts: INIT_ATTEMPTS,
            idle_timeout_ms: TRANSACTION_IDLE_TIMEOUT_MS,
            retransmit: RetransmitPolicy {
                base_timeout_ms: super::RETRANSMIT_BASE_MS,
                per_packet_ms: super::RETRANSMIT_PER_PACKET_MS,
                max_retransmissions: super::MAX_RETRANSMISSIONS,
            },
            cancel_repeat_ms: CANCEL_REPEAT_MS,
            cancel_grace_ms: CANCEL_GRACE_MS,
        }
    }
}

/// What happened on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEvent {
    /// The channel is ready for requests: allocated, or resynchronised (sequence numbers 0).
    Ready {
        /// The channel.
        channel: ChannelId,
        /// What the device said it can do.
        capabilities: Capabilities,
    },
    /// INIT failed; the link has no usable channel (allocation) or still needs a resync.
    InitFailed(InitFailure),
    /// The device's status changed while it works on the request (each change once).
    Progress(KeepaliveStatus),
    /// The answer to the request: message-layer bytes (already acknowledged). The request is
    /// over.
    Answer(Vec<u8>),
    /// The request is over without an answer.
    Failed(RequestFailure),
}

/// Why INIT failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitFailure {
    /// No answer to any attempt.
    NoAnswer {
        /// INIT requests sent.
        attempts: u8,
        /// Wait after each.
        timeout_ms: u64,
    },
    /// The device speaks another link version.
    UnsupportedVersion {
        /// Its version.
        version: u8,
    },
    /// The device uses another packet size on this link (§2.6.5: the host stops).
    MtuMismatch {
        /// Ours.
        host: Mtu,
        /// The device's.
        device: Mtu,
    },
}

/// Why a request ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFailure {
    /// ERROR CHANNEL_BUSY: the device serves another channel. The request was not taken (its
    /// sequence number is free); send it again later.
    Busy,
    /// ERROR INVALID_CHANNEL: the device does not know the channel (it may have restarted).
    /// A new channel is being allocated ([`HostEvent::Ready`] follows); send again then.
    ChannelInvalid,
    /// Another ERROR: the device refused the request.
    Refused(ErrorCode),
    /// No ACK after every retransmission; the channel is being resynchronised.
    DeliveryFailed {
        /// Transmissions made.
        transmissions: u8,
    },
    /// Delivered, then no packet on the channel for the idle timeout; the channel is being
    /// resynchronised.
    DeviceSilent {
        /// The idle timeout.
        idle_ms: u64,
    },
    /// Ended by [`HostLink::cancel`] (or ERROR CANCELLED). `confirmed`: the device answered
    /// ERROR CANCELLED; otherwise the channel is being resynchronised so that it stops.
    Cancelled {
        /// Whether the device confirmed.
        confirmed: bool,
    },
}

#[derive(Clone, Copy, Debug)]
struct Init {
    nonce: [u8; NONCE_LEN],
    /// Broadcast: allocation (§2.6.2); our channel: resynchronisation (§2.6.3).
    on: ChannelId,
    attempts: u8,
    deadline_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Cancelling {
    next_repeat_ms: u64,
    give_up_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Request {
    seq: u8,
    delivered: bool,
    last_activity_ms: u64,
    status: Option<KeepaliveStatus>,
    cancelling: Option<Cancelling>,
}

/// The host end of the link: one channel, at most one request at a time.
#[derive(Clone, Debug)]
pub struct HostLink {
    config: HostLinkConfig,
    reassembler: Reassembler,
    channel: ChannelId,
    capabilities: Capabilities,
    sender: ReliableSender,
    receiver: ReliableReceiver,
    init: Option<Init>,
    request: Option<Request>,
    needs_resync: bool,
    entropy: Entropy,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<HostEvent>,
}

impl HostLink {
    /// A link with no channel yet (call [`HostLink::open`]). `seed` (from the OS RNG) picks
    /// the INIT nonces.
    pub fn new(config: HostLinkConfig, seed: u64) -> Self {
        HostLink {
            config,
            reassembler: Reassembler::new(ReassemblerConfig::new(config.mtu, Role::Host)),
            channel: ChannelId::BROADCAST,
            capabilities: Capabilities::default(),
            sender: ReliableSender::with_policy(
                ChannelId::BROADCAST,
                config.mtu,
                config.retransmit,
            ),
            receiver: ReliableReceiver::new(),
            init: None,
            request: None,
            needs_resync: false,
            entropy: Entropy::new(seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The settings in use.
    pub const fn config(&self) -> &HostLinkConfig {
        &self.config
    }

    /// Packet size of the link.
    pub const fn mtu(&self) -> Mtu {
        self.config.mtu
    }

    /// The channel the device assigned (broadcast before the first allocation).
    pub const fn channel(&self) -> ChannelId {
        self.channel
    }

    /// What the device said it can do.
    pub const fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Whether [`HostLink::send`] would accept a request now.
    pub fn is_ready(&self) -> bool {
        self.init.is_none()
            && self.request.is_none()
            && self.channel.is_assignable()
            && !self.needs_resync
    }

    /// Whether INIT (allocation or resync) is in progress.
    pub const fn is_initialising(&self) -> bool {
        self.init.is_some()
    }

    /// Whether the channel must be resynchronised ([`HostLink::resync`]) before a request.
    pub const fn needs_resync(&self) -> bool {
        self.needs_resync
    }

    /// Whether a request is in progress.
    pub const fn request_in_progress(&self) -> bool {
        self.request.is_some()
    }

    /// Whether the request in progress was acknowledged.
    pub fn is_delivered(&self) -> bool {
        self.request.is_some_and(|r| r.delivered)
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// When [`HostLink::handle_timeout`] has something to do (link milliseconds).
    pub fn poll_timeout(&self) -> Option<u64> {
        let init = self.init.map(|init| init.deadline_ms);
        let (retransmit, idle, cancel) = match &self.request {
            Some(request) => match request.cancelling {
                Some(cancel) => (
                    None,
                    None,
                    Some(cancel.next_repeat_ms.min(cancel.give_up_ms)),
                ),
                None => (
                    self.sender.deadline(),
                    request.delivered.then(|| {
                        request
                            .last_activity_ms
                            .saturating_add(self.config.idle_timeout_ms)
                    }),
                    None,
                ),
            },
            None => (None, None, None),
        };
        [
            init,
            retransmit,
            idle,
            cancel,
            self.reassembler.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Allocates a channel: INIT on broadcast (§2.6.2), resent after the INIT timeout.
    /// [`HostEvent::Ready`] or [`HostEvent::InitFailed`] follows.
    pub fn open(&mut self, now_ms: u64) {
        self.start_init(now_ms, ChannelId::BROADCAST);
    }

    /// Resynchronises the channel: INIT on it (§2.6.3); the device aborts what the channel
    /// was doing and both ends restart their sequence numbers. Allocates a channel if there
    /// is none. A request in progress is dropped without an event.
    pub fn resync(&mut self, now_ms: u64) {
        let on = if self.channel.is_assignable() {
            self.channel
        } else {
            ChannelId::BROADCAST
        };
        self.start_init(now_ms, on);
    }

    /// After the transport was re-established (its packet size may have changed): no channel,
    /// nothing in flight. Call [`HostLink::open`] next.
    pub fn reset(&mut self, mtu: Mtu) {
        let seed = self.entropy.next_u64();
        *self = HostLink::new(HostLinkConfig { mtu, ..self.config }, seed);
    }

    /// Sends a request (message-layer bytes) in a MSG; returns its sequence number. The
    /// request ends with [`HostEvent::Answer`] or [`HostEvent::Failed`].
    pub fn send(&mut self, now_ms: u64, message: Vec<u8>) -> Result<u8, LinkError> {
        if let Some(request) = &self.request {
            return Err(LinkError::SenderBusy { seq: request.seq });
        }
        if self.init.is_some() || !self.channel.is_assignable() {
            return Err(LinkError::NoChannel);
        }
        if self.needs_resync {
            return Err(LinkError::SenderNeedsResync);
        }
        let seq = self.sender.send(message)?;
        self.request = Some(Request {
            seq,
            delivered: false,
            last_activity_ms: now_ms,
            status: None,
            cancelling: None,
        });
        self.pump(now_ms);
        Ok(seq)
    }

    /// Cancels the request in progress: CANCEL now and every
    /// [`HostLinkConfig::cancel_repeat_ms`] until the device confirms or answers (§2.10).
    /// Returns whether there was a request to cancel.
    pub fn cancel(&mut self, now_ms: u64) -> bool {
        let Some(mut request) = self.request else {
            return false;
        };
        if request.cancelling.is_some() {
            return true;
        }
        if !request.delivered {
            // Stop retransmitting: the device may or may not have the request, so the
            // sequence numbers are settled by a resync once the request is over.
            self.sender.abandon();
            self.needs_resync = true;
        }
        request.cancelling = Some(Cancelling {
            next_repeat_ms: now_ms.saturating_add(self.config.cancel_repeat_ms),
            give_up_ms: now_ms.saturating_add(self.config.cancel_grace_ms),
        });
        self.request = Some(request);
        self.queue(&Frame::new(self.channel, Body::Cancel));
        true
    }

    /// One packet from the device, received at link time `now_ms`.
    pub fn handle_packet(&mut self, now_ms: u64, packet: &[u8]) {
        // §2.10: any packet on our channel is a sign of life, even part of a frame.
        if self.channel.is_assignable()
            && packet.get(..4) == Some(&self.channel.to_bytes()[..])
            && let Some(request) = &mut self.request
        {
            request.last_activity_ms = now_ms;
        }
        match self.reassembler.push(packet, now_ms) {
            ReassemblyEvent::Complete(frame) => self.on_frame(now_ms, frame),
            event @ ReassemblyEvent::Reject { .. } => {
                if let Some(reply) = event.reply() {
                    self.queue(&reply);
                }
            }
            ReassemblyEvent::Pending | ReassemblyEvent::Ignored(_) => {}
        }
    }

    /// Time passes: INIT retries, retransmissions, the idle timeout, CANCEL repeats,
    /// reassembly timeouts.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if let Some(mut init) = self.init
            && now_ms >= init.deadline_ms
        {
            if init.attempts < self.config.init_attempts.max(1) {
                init.attempts += 1;
                init.deadline_ms = now_ms.saturating_add(self.config.init_timeout_ms);
                self.init = Some(init);
                self.queue(&Frame::new(
                    init.on,
                    Body::InitRequest { nonce: init.nonce },
                ));
            } else {
                self.init = None;
                if init.on.is_assignable() {
                    self.needs_resync = true;
                }
                self.events
                    .push_back(HostEvent::InitFailed(InitFailure::NoAnswer {
                        attempts: init.attempts,
                        timeout_ms: self.config.init_timeout_ms,
                    }));
            }
        }
        if let Some(request) = self.request {
            match request.cancelling {
                None => {
                    self.pump(now_ms);
                    if request.delivered
                        && self.request.is_some()
                        && now_ms
                            >= request
                                .last_activity_ms
                                .saturating_add(self.config.idle_timeout_ms)
                    {
                        self.fail_and_resync(
                            now_ms,
                            RequestFailure::DeviceSilent {
                                idle_ms: self.config.idle_timeout_ms,
                            },
                        );
                    }
                }
                Some(mut cancel) => {
                    if now_ms >= cancel.give_up_ms {
                        // The device never confirmed: INIT makes sure it stops.
                        self.fail_and_resync(
                            now_ms,
                            RequestFailure::Cancelled { confirmed: false },
                        );
                    } else if now_ms >= cancel.next_repeat_ms {
                        cancel.next_repeat_ms = now_ms.saturating_add(self.config.cancel_repeat_ms);
                        self.request = Some(Request {
                            cancelling: Some(cancel),
                            ..request
                        });
                        self.queue(&Frame::new(self.channel, Body::Cancel));
                    }
                }
            }
        }
        for event in self.reassembler.expire(now_ms) {
            if let Some(reply) = event.reply() {
                self.queue(&reply);
            }
        }
    }

    fn on_frame(&mut self, now_ms: u64, frame: Frame) {
        if let Some(init) = self.init {
            match frame.body {
                // Other hosts' answers travel on broadcast too: only ours echoes our nonce.
                Body::InitResponse(answer)
                    if frame.channel == init.on && answer.nonce == init.nonce =>
                {
                    self.accept_init(answer);
                }
                // §2.6.4: the device no longer knows the channel we resynchronise.
                Body::Error(ErrorCode::InvalidChannel)
                    if init.on.is_assignable() && frame.channel == init.on =>
                {
                    self.start_init(now_ms, ChannelId::BROADCAST);
                }
                _ => {}
            }
            return;
        }
        if frame.channel != self.channel || !self.channel.is_assignable() {
            return;
        }
        match frame.body {
            Body::Ack { seq } => {
                if self.sender.on_ack(seq)
                    && let Some(request) = &mut self.request
                {
                    request.delivered = true;
                }
            }
            Body::Nack { .. } => {
                if self.request.is_some_and(|r| r.cancelling.is_none()) {
                    self.sender.on_nack();
                    self.pump(now_ms);
                }
            }
            Body::Keepalive(status) => {
                if let Some(request) = &mut self.request
                    && request.status != Some(status)
                {
                    request.status = Some(status);
                    self.events.push_back(HostEvent::Progress(status));
                }
            }
            Body::Error(code) => self.on_error(now_ms, code),
            Body::Msg { seq, message } => {
                match self.receiver.receive(self.channel, seq, message) {
                    Receipt::New { ack, message } => {
                        self.queue(&ack);
                        if let Some(request) = self.request.take() {
                            // §2.9.3: the answer proves the request arrived.
                            if !request.delivered {
                                self.sender.on_ack(request.seq);
                            }
                            self.events.push_back(HostEvent::Answer(message));
                            self.after_request(now_ms);
                        }
                    }
                    Receipt::Duplicate { ack } => self.queue(&ack),
                    Receipt::Stale { .. } => {}
                }
            }
            Body::Ping(_)
            | Body::InitRequest { .. }
            | Body::InitResponse(_)
            | Body::Wink
            | Body::Cancel => {}
        }
    }

    fn on_error(&mut self, now_ms: u64, code: ErrorCode) {
        let Some(request) = self.request.take() else {
            return;
        };
        // A refusal of the frame itself: the sequence number is not consumed.
        self.sender.abandon();
        let failure = if request.cancelling.is_some() {
            if !request.delivered || code != ErrorCode::Cancelled {
                self.needs_resync = true;
            }
            RequestFailure::Cancelled {
                confirmed: code == ErrorCode::Cancelled,
            }
        } else {
            match code {
                ErrorCode::ChannelBusy => RequestFailure::Busy,
                ErrorCode::InvalidChannel => {
                    self.events
                        .push_back(HostEvent::Failed(RequestFailure::ChannelInvalid));
                    self.start_init(now_ms, ChannelId::BROADCAST);
                    return;
                }
                ErrorCode::Cancelled => {
                    if !request.delivered {
                        self.needs_resync = true;
                    }
                    RequestFailure::Cancelled { confirmed: true }
                }
                code => RequestFailure::Refused(code),
            }
        };
        self.events.push_back(HostEvent::Failed(failure));
        self.after_request(now_ms);
    }

    fn fail_and_resync(&mut self, now_ms: u64, failure: RequestFailure) {
        self.request = None;
        self.sender.abandon();
        self.needs_resync = true;
        self.events.push_back(HostEvent::Failed(failure));
        self.after_request(now_ms);
    }

    /// A request is over: a channel whose sequence numbers can no longer be trusted is
    /// resynchronised at once, so the next request finds it ready.
    fn after_request(&mut self, now_ms: u64) {
        if self.needs_resync {
            self.resync(now_ms);
        }
    }

    fn start_init(&mut self, now_ms: u64, on: ChannelId) {
        self.request = None;
        self.sender.abandon();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&self.entropy.next_u64().to_be_bytes());
        self.init = Some(Init {
            nonce,
            on,
            attempts: 1,
            deadline_ms: now_ms.saturating_add(self.config.init_timeout_ms),
        });
        self.queue(&Frame::new(on, Body::InitRequest { nonce }));
    }

    fn accept_init(&mut self, answer: InitResponse) {
        self.init = None;
        if answer.version != PROTOCOL_VERSION {
            self.events
                .push_back(HostEvent::InitFailed(InitFailure::UnsupportedVersion {
                    version: answer.version,
                }));
            return;
        }
        if answer.mtu != self.config.mtu {
            self.events
                .push_back(HostEvent::InitFailed(InitFailure::MtuMismatch {
                    host: self.config.mtu,
                    device: answer.mtu,
                }));
            return;
        }
        if self.channel.is_assignable() && self.channel != answer.channel {
            self.reassembler.close_channel(self.channel);
        }
        // A device never assigns a reserved channel: the reassembler refused the answer.
        let _ = self.reassembler.open_channel(answer.channel);
        self.channel = answer.channel;
        self.capabilities = answer.capabilities;
        self.sender =
            ReliableSender::with_policy(answer.channel, self.config.mtu, self.config.retransmit);
        self.receiver = ReliableReceiver::new();
        self.needs_resync = false;
        self.events.push_back(HostEvent::Ready {
            channel: answer.channel,
            capabilities: answer.capabilities,
        });
    }

    /// (Re)transmits the request when due; gives up after the last retransmission.
    fn pump(&mut self, now_ms: u64) {
        loop {
            match self.sender.poll(now_ms) {
                SenderAction::Transmit(frame) => self.queue(&frame),
                SenderAction::GaveUp { .. } => {
                    let transmissions =
                        self.config.retransmit.max_retransmissions.saturating_add(1);
                    self.fail_and_resync(now_ms, RequestFailure::DeliveryFailed { transmissions });
                    return;
                }
                SenderAction::Idle | SenderAction::WaitUntil(_) => return,
            }
        }
    }

    fn queue(&mut self, frame: &Frame) {
        // Only frames this machine built are queued, and each fits the MTU.
        if let Ok(packetizer) = super::Packetizer::new(frame, self.config.mtu) {
            self.transmits.extend(packetizer);
        }
    }
}
