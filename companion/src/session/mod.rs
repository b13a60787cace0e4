//! A session with one PIN pad over any [`Transport`]: a link channel of its own, and
//! request/response of `firmware_protocol::message` messages in acknowledged MSG frames
//! (PROTOCOL.md §2.6-§2.10).
//!
//! - [`Session::open`] allocates a channel: INIT with a random nonce on the broadcast channel,
//!   retried per §2.6.2; the answer's MTU and version are checked.
//! - [`Session::request`] sends one request and waits for its answer: every MSG is
//!   acknowledged and retransmitted on timeout or NACK (`ReliableSender`), every answer MSG
//!   acknowledged and de-duplicated (`ReliableReceiver`), damaged frames NACKed.
//! - KEEPALIVE becomes [`Progress`] (processing, waiting for the user, PIN digits as a count).
//! - A [`CancelHandle`] sends CANCEL; a per-request time limit does the same.
//! - CHANNEL_BUSY and the message-layer `Busy` are retried with backoff, then reported.
//! - After the device went silent, after a cancel it did not confirm, or after delivery failed,
//!   the channel is resynchronised with INIT before the next request (§2.6.3).
//!
//! Everything runs in the caller's task: no background task owns the transport, so a session
//! is dropped like any value.

use std::time::Duration;

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, ErrorCode, Frame, INIT_ATTEMPTS, INIT_TIMEOUT_MS, InitResponse,
    Mtu, NONCE_LEN, PROTOCOL_VERSION, Reassembler, ReassemblerConfig, ReassemblyEvent, Receipt,
    ReliableReceiver, ReliableSender, RetransmitPolicy, Role, SenderAction,
    TRANSACTION_IDLE_TIMEOUT_MS,
};
use firmware_protocol::message::{MessageError, Request, Response, StatusCode, decode_response};
use tokio::sync::watch;
use tokio::time::Instant;

mod ask;
mod error;
mod progress;

pub use error::{SessionError, link_error_words};
pub use progress::{CancelHandle, Progress, pin_dots};

use crate::transport::backoff::{Backoff, ReconnectPolicy};
use crate::transport::{DeviceIdentity, Transport, TransportError};

/// Timing and retry settings of a session. The defaults are PROTOCOL.md §2.11's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Wait for an INIT answer before sending INIT again.
    pub init_timeout: Duration,
    /// INIT requests in all before the device counts as unreachable.
    pub init_attempts: u8,
    /// A request is lost after this long without any packet from the device.
    pub idle_timeout: Duration,
    /// A request is cancelled after this long in all (`None`: no limit). The device has its
    /// own limit for the user (`UserTimeout`); this one catches a device that keeps sending
    /// keepalives forever.
    pub request_timeout: Option<Duration>,
    /// MSG retransmission timing.
    pub retransmit: RetransmitPolicy,
    /// Retries of a request the device refused as busy.
    pub busy_retry: ReconnectPolicy,
    /// After CANCEL, how long to wait for the device to confirm (ERROR CANCELLED).
    pub cancel_grace: Duration,
    /// CANCEL is repeated this often until confirmed (§2.10: "may repeat CANCEL every 200 ms").
    pub cancel_repeat: Duration,
}

/// How long a device may answer "processing" before a request counts as stalled: every
/// computation of a PIN pad (ECDH, a signature, key unwrapping) takes well under a second, and
/// a slow firmware a few; the user's own time (PIN, confirmation) is not counted.
pub const PROCESSING_LIMIT: Duration = Duration::from_secs(30);

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            init_timeout: Duration::from_millis(INIT_TIMEOUT_MS),
            init_attempts: INIT_ATTEMPTS,
            idle_timeout: Duration::from_millis(TRANSACTION_IDLE_TIMEOUT_MS),
            request_timeout: Some(Duration::from_secs(300)),
            retransmit: RetransmitPolicy::default(),
            busy_retry: ReconnectPolicy {
                initial_delay: Duration::from_millis(200),
                multiplier: 2,
                max_delay: Duration::from_secs(2),
                max_attempts: 6,
            },
            cancel_grace: Duration::from_secs(1),
            cancel_repeat: Duration::from_millis(200),
        }
    }
}

/// How often partial frames are checked for the reassembly timeout while waiting.
const EXPIRE_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// A channel to one PIN pad and the request/response machinery on it.
#[derive(Debug)]
pub struct Session {
    transport: Box<dyn Transport>,
    config: SessionConfig,
    processing_limit: Duration,
    mtu: Mtu,
    channel: ChannelId,
    capabilities: Capabilities,
    reassembler: Reassembler,
    sender: ReliableSender,
    receiver: ReliableReceiver,
    next_request_id: u32,
    epoch: Instant,
    cancel: CancelHandle,
    cancel_generation: watch::Receiver<u64>,
    needs_resync: bool,
}

/// One packet's worth of news from the device.
enum Incoming {
    /// A complete frame.
    Frame(Frame),
    /// A damaged frame on our channel: send this NACK.
    Reply(Frame),
    /// Part of a frame, or something dropped.
    Nothing,
}

/// How one transmission of a request ended, when it did not end the request.
enum Attempt {
    Answer(Response),
    Busy,
    ChannelInvalid,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CancelReason {
    Caller,
    TimeLimit,
    /// The device said "processing" for longer than the processing limit.
    Stalled,
}

struct Cancelling {
    reason: CancelReason,
    next_cancel: Instant,
    give_up: Instant,
}

/// What a request carries through its attempts.
struct RequestState {
    name: &'static str,
    cancel_generation: watch::Receiver<u64>,
    cancel_seen: u64,
    deadline: Option<Instant>,
    limit: Option<Duration>,
    /// Since when the device has been reporting "processing" (not waiting for the user).
    processing_since: Option<Instant>,
    processing_limit: Duration,
}

impl RequestState {
    fn cancel_error(&self, reason: CancelReason) -> SessionError {
        match (reason, self.limit) {
            (CancelReason::TimeLimit, Some(limit)) => SessionError::RequestTimeout {
                request: self.name,
                limit_ms: limit.as_millis() as u64,
            },
            (CancelReason::Stalled, _) => SessionError::DeviceStalled {
                request: self.name,
                limit_ms: self.processing_limit.as_millis() as u64,
            },
            _ => SessionError::Cancelled { request: self.name },
        }
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        // Nonces only tell our INIT answer from another host's; a clock-derived value still
        // does that if the OS has no entropy to give.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (byte, source) in bytes.iter_mut().zip(nanos.to_le_bytes().iter().cycle()) {
            *byte = *source;
        }
    }
    bytes
}

impl Session {
    /// Allocates a channel on the device behind `transport`, with the default settings.
    pub async fn open(transport: Box<dyn Transport>) -> Result<Self, SessionError> {
        Self::open_with_config(transport, SessionConfig::default()).await
    }

    /// Allocates a channel with explicit settings.
    pub async fn open_with_config(
        transport: Box<dyn Transport>,
        config: SessionConfig,
    ) -> Result<Self, SessionError> {
        let mtu = transport.mtu();
        let (cancel, cancel_generation) = CancelHandle::new();
        let mut session = Session {
            transport,
            config,
            processing_limit: PROCESSING_LIMIT,
            mtu,
            channel: ChannelId::BROADCAST,
            capabilities: Capabilities::default(),
            reassembler: Reassembler::new(ReassemblerConfig::new(mtu, Role::Host)),
            sender: ReliableSender::with_policy(ChannelId::BROADCAST, mtu, config.retransmit),
            receiver: ReliableReceiver::new(),
            next_request_id: u32::from_be_bytes(random_bytes()),
            epoch: Instant::now(),
            cancel,
            cancel_generation,
            needs_resync: false,
        };
        session.allocate_channel().await?;
        Ok(session)
    }

    /// The channel the device assigned.
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// What the device said it can do in its INIT answer.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Packet size of the link.
    pub fn mtu(&self) -> Mtu {
        self.mtu
    }

    /// The device at the other end.
    pub fn identity(&self) -> &DeviceIdentity {
        self.transport.identity()
    }

    /// The settings in use.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Changes the per-request time limit (`None`: none).
    pub fn set_request_timeout(&mut self, limit: Option<Duration>) {
        self.config.request_timeout = limit;
    }

    /// Changes how long the device may keep answering "processing" (KEEPALIVE `01`) before
    /// the request is cancelled as stalled ([`PROCESSING_LIMIT`] by default). Time the device
    /// spends waiting for the user does not count: that has the device's own limit and
    /// [`SessionConfig::request_timeout`].
    pub fn set_processing_limit(&mut self, limit: Duration) {
        self.processing_limit = limit;
    }

    /// A handle that cancels the request in progress, usable from another task.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Sends `request` and returns the device's answer. An `Error` answer is returned as
    /// [`SessionError::Refused`], so `Ok` is always a success response.
    pub async fn request(&mut self, request: &Request) -> Result<Response, SessionError> {
        self.request_with_progress(request, &mut |_| {}).await
    }

    /// As [`Session::request`], reporting progress (keepalives, busy retries, cancelling) as
    /// it happens. Each keepalive status is reported once, when it changes.
    pub async fn request_with_progress(
        &mut self,
        request: &Request,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Response, SessionError> {
        let name = request.name();
        self.request_built_with_progress(
            name,
            &mut |request_id| request.encode(request_id),
            on_progress,
        )
        .await
    }

    /// As [`Session::request_with_progress`] for a request whose bytes depend on the request
    /// id: a `HostVerified` envelope MACs an inner request that must carry the envelope's id,
    /// so the caller encodes (and signs) afresh for every attempt, with the id given.
    pub async fn request_built_with_progress(
        &mut self,
        name: &'static str,
        build: &mut (dyn FnMut(u32) -> Result<Vec<u8>, MessageError> + Send),
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Response, SessionError> {
        if self.needs_resync {
            self.resync().await?;
        }
        let mut cancel_generation = self.cancel_generation.clone();
        let cancel_seen = *cancel_generation.borrow_and_update();
        let limit = self.config.request_timeout;
        let mut state = RequestState {
            name,
            cancel_generation,
            cancel_seen,
            deadline: limit.map(|limit| Instant::now() + limit),
            limit,
            processing_since: None,
            processing_limit: self.processing_limit,
        };
        let mut busy = Backoff::new(self.config.busy_retry);
        let mut reallocated = false;
        loop {
            let request_id = self.next_request_id;
            self.next_request_id = self.next_request_id.wrapping_add(1);
            let bytes = build(request_id).map_err(|source| SessionError::Encode {
                request: name,
                source,
            })?;
            // The MSG payload is a sequence byte and the message.
            let max = self.mtu.max_payload_len().saturating_sub(1);
            if bytes.len() > max {
                return Err(SessionError::TooLarge {
                    request: name,
                    len: bytes.len(),
                    max,
                });
            }
            let outcome = self
                .attempt(&mut state, request_id, bytes, on_progress)
                .await
                .map_err(|error| in_request(name, error))?;
            match outcome {
                Attempt::Answer(response) => return Ok(response),
                Attempt::Busy => {
                    let Some(delay) = busy.next_delay() else {
                        return Err(SessionError::DeviceBusy {
                            attempts: busy.failures(),
                        });
                    };
                    on_progress(Progress::DeviceBusy {
                        retry: busy.failures(),
                        after: delay,
                    });
                    self.pause(&mut state, delay).await?;
                }
                Attempt::ChannelInvalid => {
                    if reallocated {
                        return Err(SessionError::ChannelLost);
                    }
                    reallocated = true;
                    self.allocate_channel().await?;
                }
            }
        }
    }

    /// Re-establishes the transport after a disconnect and allocates a new channel.
    pub async fn reconnect(&mut self) -> Result<(), SessionError> {
        self.transport.reconnect().await?;
        self.mtu = self.transport.mtu();
        self.reassembler = Reassembler::new(ReassemblerConfig::new(self.mtu, Role::Host));
        self.channel = ChannelId::BROADCAST;
        self.allocate_channel().await
    }

    /// Resynchronises the channel (INIT on it, §2.6.3): the device aborts whatever the
    /// channel was doing and both ends restart their sequence numbers. Falls back to a new
    /// channel if the device no longer knows this one.
    pub async fn resync(&mut self) -> Result<(), SessionError> {
        if !self.channel.is_assignable() {
            return self.allocate_channel().await;
        }
        self.sender.abandon();
        for _ in 0..self.config.init_attempts.max(1) {
            let nonce: [u8; NONCE_LEN] = random_bytes();
            self.send_frame(&Frame::new(self.channel, Body::InitRequest { nonce }))
                .await?;
            let deadline = Instant::now() + self.config.init_timeout;
            while let Some(frame) = self.next_frame_until(deadline).await? {
                if frame.channel != self.channel {
                    continue;
                }
                match frame.body {
                    Body::InitResponse(answer) if answer.nonce == nonce => {
                        return self.accept_init(answer);
                    }
                    Body::Error(ErrorCode::InvalidChannel) => return self.allocate_channel().await,
                    _ => {}
                }
            }
        }
        self.needs_resync = true;
        Err(self.no_answer())
    }

    /// Releases the transport.
    pub async fn close(mut self) -> Result<(), SessionError> {
        self.transport.close().await?;
        Ok(())
    }

    /// Gives the transport back (for a new session after a reconnect, say).
    pub fn into_transport(self) -> Box<dyn Transport> {
        self.transport
    }

    fn no_answer(&self) -> SessionError {
        SessionError::NoAnswer {
            attempts: self.config.init_attempts.max(1),
            timeout_ms: self.config.init_timeout.as_millis() as u64,
        }
    }

    /// INIT on broadcast (§2.6.2).
    async fn allocate_channel(&mut self) -> Result<(), SessionError> {
        for _ in 0..self.config.init_attempts.max(1) {
            let nonce: [u8; NONCE_LEN] = random_bytes();
            self.send_frame(&Frame::new(
                ChannelId::BROADCAST,
                Body::InitRequest { nonce },
            ))
            .await?;
            let deadline = Instant::now() + self.config.init_timeout;
            while let Some(frame) = self.next_frame_until(deadline).await? {
                match frame.body {
                    // Other hosts' answers travel on broadcast too: only ours echoes our nonce.
                    Body::InitResponse(answer)
                        if frame.channel.is_broadcast() && answer.nonce == nonce =>
                    {
                        return self.accept_init(answer);
                    }
                    _ => {}
                }
            }
        }
        Err(self.no_answer())
    }

    fn accept_init(&mut self, answer: InitResponse) -> Result<(), SessionError> {
        if answer.version != PROTOCOL_VERSION {
            return Err(SessionError::UnsupportedLinkVersion {
                version: answer.version,
            });
        }
        if answer.mtu != self.mtu {
            return Err(SessionError::MtuMismatch {
                host: self.mtu,
                device: answer.mtu,
            });
        }
        if self.channel.is_assignable() && self.channel != answer.channel {
            self.reassembler.close_channel(self.channel);
        }
        self.reassembler.open_channel(answer.channel)?;
        self.channel = answer.channel;
        self.capabilities = answer.capabilities;
        self.sender = ReliableSender::with_policy(answer.channel, self.mtu, self.config.retransmit);
        self.receiver = ReliableReceiver::new();
        self.needs_resync = false;
        tracing::debug!(channel = %self.channel, device = %self.transport.identity(), "channel ready");
        Ok(())
    }

    /// One transmission of a request, until its answer, a refusal to retry, or a failure.
    async fn attempt(
        &mut self,
        state: &mut RequestState,
        request_id: u32,
        message: Vec<u8>,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Attempt, SessionError> {
        let seq = self.sender.send(message)?;
        let mut delivered = false;
        let mut last_activity = Instant::now();
        let mut last_progress = None;
        let mut cancelling: Option<Cancelling> = None;
        loop {
            let mut wake = Instant::now() + EXPIRE_CHECK_INTERVAL;
            if cancelling.is_none() {
                match self.sender.poll(self.now_ms()) {
                    SenderAction::Idle => {}
                    SenderAction::Transmit(frame) => {
                        self.send_frame(&frame).await?;
                        continue;
                    }
                    SenderAction::WaitUntil(ms) => wake = wake.min(self.instant_at(ms)),
                    SenderAction::GaveUp { .. } => {
                        self.resync_after_failure().await;
                        return Err(SessionError::DeliveryFailed {
                            request: state.name,
                            transmissions: self
                                .config
                                .retransmit
                                .max_retransmissions
                                .saturating_add(1),
                        });
                    }
                }
            }
            for event in self.reassembler.expire(self.now_ms()) {
                if let Some(reply) = event.reply() {
                    self.send_frame(&reply).await?;
                }
            }
            // Until the request is acknowledged, the retransmission timer decides; after
            // that, silence does (§2.10).
            let idle_deadline = delivered.then(|| last_activity + self.config.idle_timeout);
            if let Some(idle_deadline) = idle_deadline {
                wake = wake.min(idle_deadline);
            }
            match &cancelling {
                Some(cancel) => wake = wake.min(cancel.next_cancel).min(cancel.give_up),
                None => {
                    if let Some(deadline) = state.deadline {
                        wake = wake.min(deadline);
                    }
                    if let Some(since) = state.processing_since {
                        wake = wake.min(since + state.processing_limit);
                    }
                }
            }

            let cancel_asked = tokio::select! {
                received = self.receive_until(wake) => {
                    match received? {
                        Some((incoming, on_our_channel)) => {
                            if on_our_channel {
                                last_activity = Instant::now();
                            }
                            let frame = match incoming {
                                Incoming::Nothing => continue,
                                Incoming::Reply(reply) => {
                                    self.send_frame(&reply).await?;
                                    continue;
                                }
                                Incoming::Frame(frame) if frame.channel != self.channel => continue,
                                Incoming::Frame(frame) => frame,
                            };
                            match frame.body {
                                Body::Ack { seq: acked } => delivered |= self.sender.on_ack(acked),
                                Body::Nack { reason } => {
                                    tracing::debug!(?reason, "device asked for a retransmission");
                                    if cancelling.is_none() {
                                        self.sender.on_nack();
                                    }
                                }
                                Body::Keepalive(status) => {
                                    let progress = Progress::from_keepalive(status);
                                    if progress == Progress::Processing {
                                        state.processing_since.get_or_insert_with(Instant::now);
                                    } else {
                                        state.processing_since = None;
                                    }
                                    if last_progress != Some(progress) {
                                        last_progress = Some(progress);
                                        on_progress(progress);
                                    }
                                }
                                Body::Error(code) => {
                                    self.sender.abandon();
                                    return self
                                        .on_link_error(state, code, delivered, cancelling.as_ref())
                                        .await;
                                }
                                Body::Msg { seq: their_seq, message } => {
                                    match self.receiver.receive(self.channel, their_seq, message) {
                                        Receipt::New { ack, message } => {
                                            self.send_frame(&ack).await?;
                                            match decode_response(&message) {
                                                Ok((id, response)) if id == request_id => {
                                                    // An answer proves the request arrived.
                                                    if !delivered {
                                                        self.sender.on_ack(seq);
                                                    }
                                                    return answer(state, response, cancelling.as_ref());
                                                }
                                                Ok((id, _)) => {
                                                    tracing::debug!(id, "ignoring an answer to an earlier request");
                                                }
                                                Err(source) => {
                                                    return Err(SessionError::MalformedAnswer {
                                                        request: state.name,
                                                        source,
                                                    });
                                                }
                                            }
                                        }
                                        Receipt::Duplicate { ack } => self.send_frame(&ack).await?,
                                        Receipt::Stale { seq } => {
                                            tracing::debug!(seq, "ignoring a stale MSG");
                                        }
                                    }
                                }
                                _ => {}
                            }
                            // A device that keeps sending never lets the wait run out: the
                            // limits are checked after every packet too.
                            let now = Instant::now();
                            if cancelling.is_none() {
                                if state.deadline.is_some_and(|deadline| now >= deadline) {
                                    cancelling = Some(self.start_cancel(CancelReason::TimeLimit, delivered, on_progress).await?);
                                } else if state
                                    .processing_since
                                    .is_some_and(|since| now >= since + state.processing_limit)
                                {
                                    cancelling = Some(self.start_cancel(CancelReason::Stalled, delivered, on_progress).await?);
                                }
                            }
                            false
                        }
                        None => {
                            let now = Instant::now();
                            if let Some(cancel) = &mut cancelling {
                                if now >= cancel.give_up {
                                    // The device never confirmed: INIT makes sure it stops.
                                    self.resync_after_failure().await;
                                    return Err(state.cancel_error(cancel.reason));
                                }
                                if now >= cancel.next_cancel {
                                    cancel.next_cancel = now + self.config.cancel_repeat;
                                    self.send_frame(&Frame::new(self.channel, Body::Cancel)).await?;
                                }
                            } else if idle_deadline.is_some_and(|deadline| now >= deadline) {
                                self.resync_after_failure().await;
                                return Err(SessionError::DeviceSilent {
                                    request: state.name,
                                    idle_ms: self.config.idle_timeout.as_millis() as u64,
                                });
                            } else if state.deadline.is_some_and(|deadline| now >= deadline) {
                                cancelling = Some(self.start_cancel(CancelReason::TimeLimit, delivered, on_progress).await?);
                            } else if state
                                .processing_since
                                .is_some_and(|since| now >= since + state.processing_limit)
                            {
                                cancelling = Some(self.start_cancel(CancelReason::Stalled, delivered, on_progress).await?);
                            }
                            false
                        }
                    }
                }
                changed = state.cancel_generation.changed(), if cancelling.is_none() => {
                    changed.is_ok() && *state.cancel_generation.borrow_and_update() != state.cancel_seen
                }
            };
            if cancel_asked && cancelling.is_none() {
                cancelling = Some(
                    self.start_cancel(CancelReason::Caller, delivered, on_progress)
                        .await?,
                );
            }
        }
    }

    async fn start_cancel(
        &mut self,
        reason: CancelReason,
        delivered: bool,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Cancelling, SessionError> {
        on_progress(Progress::Cancelling);
        if !delivered {
            // Stop retransmitting; the resync after the cancel settles the sequence numbers.
            self.sender.abandon();
            self.needs_resync = true;
        }
        self.send_frame(&Frame::new(self.channel, Body::Cancel))
            .await?;
        let now = Instant::now();
        Ok(Cancelling {
            reason,
            next_cancel: now + self.config.cancel_repeat,
            give_up: now + self.config.cancel_grace,
        })
    }

    async fn on_link_error(
        &mut self,
        state: &RequestState,
        code: ErrorCode,
        delivered: bool,
        cancelling: Option<&Cancelling>,
    ) -> Result<Attempt, SessionError> {
        if let Some(cancel) = cancelling {
            if !delivered || code != ErrorCode::Cancelled {
                self.resync_after_failure().await;
            }
            return Err(state.cancel_error(cancel.reason));
        }
        match code {
            // Refusals of the frame itself: the sequence number was not consumed.
            ErrorCode::ChannelBusy => Ok(Attempt::Busy),
            ErrorCode::InvalidChannel => Ok(Attempt::ChannelInvalid),
            ErrorCode::Cancelled => {
                if !delivered {
                    self.resync_after_failure().await;
                }
                Err(SessionError::Cancelled {
                    request: state.name,
                })
            }
            code => Err(SessionError::LinkRefused {
                request: state.name,
                code,
            }),
        }
    }

    /// Best-effort resync; if the device does not answer, the next request tries again.
    async fn resync_after_failure(&mut self) {
        self.needs_resync = true;
        if let Err(error) = self.resync().await {
            tracing::debug!(%error, "resynchronisation failed; retrying before the next request");
        }
    }

    /// Waits `delay` before a retry, unless the request is cancelled or runs out of time.
    async fn pause(
        &mut self,
        state: &mut RequestState,
        delay: Duration,
    ) -> Result<(), SessionError> {
        let until = Instant::now() + delay;
        let limit = state.deadline.unwrap_or(until + Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep_until(until.min(limit)) => {
                if Instant::now() >= limit {
                    return Err(state.cancel_error(CancelReason::TimeLimit));
                }
                Ok(())
            }
            changed = state.cancel_generation.changed() => {
                if changed.is_ok() {
                    return Err(SessionError::Cancelled { request: state.name });
                }
                tokio::time::sleep_until(until).await;
                Ok(())
            }
        }
    }

    /// The next complete frame before `deadline` (NACKing damaged ones on the way).
    async fn next_frame_until(&mut self, deadline: Instant) -> Result<Option<Frame>, SessionError> {
        loop {
            match self.receive_until(deadline).await? {
                None => return Ok(None),
                Some((Incoming::Frame(frame), _)) => return Ok(Some(frame)),
                Some((Incoming::Reply(reply), _)) => self.send_frame(&reply).await?,
                Some((Incoming::Nothing, _)) => {}
            }
        }
    }

    /// One packet, or `None` at the deadline; also says whether it came on our channel.
    /// Cancel-safe: nothing is sent here.
    async fn receive_until(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<(Incoming, bool)>, TransportError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let Some(packet) = self.transport.receive_packet(timeout).await? else {
            return Ok(None);
        };
        let on_our_channel = packet.get(..4) == Some(&self.channel.to_bytes()[..]);
        let event = self.reassembler.push(&packet, self.now_ms());
        let incoming = match event {
            ReassemblyEvent::Complete(frame) => Incoming::Frame(frame),
            ReassemblyEvent::Reject { .. } => {
                event.reply().map_or(Incoming::Nothing, Incoming::Reply)
            }
            ReassemblyEvent::Pending => Incoming::Nothing,
            ReassemblyEvent::Ignored(error) => {
                tracing::trace!(%error, "dropped a packet");
                Incoming::Nothing
            }
        };
        Ok(Some((incoming, on_our_channel)))
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), SessionError> {
        for packet in frame.to_packets(self.mtu)? {
            self.transport.send_packet(&packet).await?;
        }
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn instant_at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }
}

/// A success answer, a busy refusal to retry, or the device's refusal as an error.
fn answer(
    state: &RequestState,
    response: Response,
    cancelling: Option<&Cancelling>,
) -> Result<Attempt, SessionError> {
    match response {
        Response::Error(error) => {
            match error.status {
                StatusCode::Busy if cancelling.is_none() => Ok(Attempt::Busy),
                StatusCode::HostCancelled if cancelling.is_some() => Err(state
                    .cancel_error(cancelling.map_or(CancelReason::Caller, |cancel| cancel.reason))),
                status => Err(SessionError::Refused {
                    request: state.name,
                    status,
                    indicator: error.indicator,
                    detail: error.detail,
                }),
            }
        }
        // The device answered before it saw the CANCEL: what it decided stands.
        response => Ok(Attempt::Answer(response)),
    }
}

/// A transport disconnect during a request says which request.
fn in_request(request: &'static str, error: SessionError) -> SessionError {
    match error {
        SessionError::Transport(source) if source.is_disconnect() => {
            SessionError::Disconnected { request, source }
        }
        other => other,
    }
}
