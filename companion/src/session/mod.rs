//! A session with one PIN pad over any [`Transport`]: a thin async driver over
//! firmware-protocol's [`HostLink`] machine (PROTOCOL.md §2.6-§2.10), plus the session's own
//! policy on top of it.
//!
//! The machine holds every link rule: channel allocation and resync (INIT with its retries),
//! acknowledged delivery of the request (retransmission, NACK), acknowledging and
//! de-duplicating answers, KEEPALIVE as progress, the idle timeout, CANCEL and its repeats,
//! and what each ERROR means. This driver only moves packets between the machine and the
//! transport and sleeps until the machine's next timer, and adds what is the application's
//! choice: retrying a busy device with backoff, a per-request time limit and a limit on
//! "processing" (both end in CANCEL), a [`CancelHandle`] usable from another task, and
//! message-layer encoding (request ids, decoding answers).
//!
//! Everything runs in the caller's task: no background task owns the transport, so a session
//! is dropped like any value.

use std::time::Duration;

use firmware_protocol::link::{
    Capabilities, ChannelId, HostEvent, HostLink, HostLinkConfig, INIT_ATTEMPTS, INIT_TIMEOUT_MS,
    InitFailure, Mtu, RequestFailure, RetransmitPolicy, TRANSACTION_IDLE_TIMEOUT_MS,
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
use crate::transport::{DeviceIdentity, Transport, TransportError, TransportKind};

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

impl SessionConfig {
    /// The defaults for a PIN pad on `kind`: Bluetooth LE retransmits on its own, longer
    /// timer (PROTOCOL.md §2.1.1, "Timing"), which the device uses for its answers too.
    pub fn for_transport(kind: TransportKind) -> Self {
        let mut config = SessionConfig::default();
        if kind == TransportKind::Ble {
            config.retransmit = RetransmitPolicy::BLE;
        }
        config
    }
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

/// How long to wait for a packet when the machine has no timer running (it then only waits
/// for the device; the bound just keeps the loop checking the session's own limits).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// A channel to one PIN pad and the request/response machinery on it.
#[derive(Debug)]
pub struct Session {
    transport: Box<dyn Transport>,
    config: SessionConfig,
    processing_limit: Duration,
    link: HostLink,
    next_request_id: u32,
    epoch: Instant,
    cancel: CancelHandle,
    cancel_generation: watch::Receiver<u64>,
    /// The transport reported the device gone during the last request or INIT: the next
    /// request reconnects it first (the link cannot be resynchronised over a dead transport,
    /// and a user should not have to disconnect and connect by hand).
    transport_lost: bool,
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

fn link_config(config: &SessionConfig, mtu: Mtu) -> HostLinkConfig {
    let ms = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    HostLinkConfig {
        mtu,
        init_timeout_ms: ms(config.init_timeout),
        init_attempts: config.init_attempts,
        idle_timeout_ms: ms(config.idle_timeout),
        retransmit: config.retransmit,
        cancel_repeat_ms: ms(config.cancel_repeat),
        cancel_grace_ms: ms(config.cancel_grace),
    }
}

impl Session {
    /// Allocates a channel on the device behind `transport`, with the default settings for
    /// its kind ([`SessionConfig::for_transport`]).
    pub async fn open(transport: Box<dyn Transport>) -> Result<Self, SessionError> {
        let config = SessionConfig::for_transport(transport.kind());
        Self::open_with_config(transport, config).await
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
            link: HostLink::new(
                link_config(&config, mtu),
                u64::from_be_bytes(random_bytes()),
            ),
            next_request_id: u32::from_be_bytes(random_bytes()),
            epoch: Instant::now(),
            cancel,
            cancel_generation,
            transport_lost: false,
        };
        session.link.open(session.now_ms());
        session.initialise().await?;
        Ok(session)
    }

    /// The channel the device assigned.
    pub fn channel(&self) -> ChannelId {
        self.link.channel()
    }

    /// What the device said it can do in its INIT answer.
    pub fn capabilities(&self) -> Capabilities {
        self.link.capabilities()
    }

    /// Packet size of the link.
    pub fn mtu(&self) -> Mtu {
        self.link.mtu()
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
        // What an earlier failure left to do: a transport to re-establish, or a resync the
        // device did not answer then.
        self.recover().await?;
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
            let max = self.link.mtu().max_payload_len().saturating_sub(1);
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
                .map_err(|error| self.note_lost(in_request(name, error)))?;
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
                    // The machine is already allocating a new channel.
                    let result = self.initialise().await;
                    result.map_err(|error| self.note_lost(error))?;
                }
            }
        }
    }

    /// Re-establishes the transport after a disconnect and allocates a new channel.
    pub async fn reconnect(&mut self) -> Result<(), SessionError> {
        self.transport_lost = true;
        self.transport.reconnect().await?;
        self.transport_lost = false;
        self.link.reset(self.transport.mtu());
        self.link.open(self.now_ms());
        let result = self.initialise().await;
        result.map_err(|error| self.note_lost(error))
    }

    /// Whether the link needs recovering before the next request: the transport went away,
    /// or the channel is not ready (a request a failure left behind, a resync not answered).
    pub fn needs_recovery(&self) -> bool {
        self.transport_lost || !self.link.is_ready()
    }

    /// Brings the link back after a fault, as the next request would: reconnects a transport
    /// that went away (then INIT on broadcast for a new channel), or resynchronises the
    /// channel (INIT on it). Does nothing on a healthy link.
    pub async fn recover(&mut self) -> Result<(), SessionError> {
        if self.transport_lost {
            tracing::info!(device = %self.transport.identity(), "reconnecting the PIN pad's link after it went away");
            return self.reconnect().await;
        }
        if !self.link.is_ready() {
            return self.resync().await.map_err(|error| self.note_lost(error));
        }
        Ok(())
    }

    /// Remembers a transport disconnect, so the next request reconnects first.
    fn note_lost(&mut self, error: SessionError) -> SessionError {
        if error.is_disconnect() {
            self.transport_lost = true;
        }
        error
    }

    /// Resynchronises the channel (INIT on it, §2.6.3): the device aborts whatever the
    /// channel was doing and both ends restart their sequence numbers. Falls back to a new
    /// channel if the device no longer knows this one.
    pub async fn resync(&mut self) -> Result<(), SessionError> {
        if !self.link.is_initialising() {
            self.link.resync(self.now_ms());
        }
        self.initialise().await
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

    /// Drives the INIT in progress to its end.
    async fn initialise(&mut self) -> Result<(), SessionError> {
        loop {
            self.flush().await?;
            while let Some(event) = self.link.poll_event() {
                match event {
                    HostEvent::Ready { channel, .. } => {
                        tracing::debug!(%channel, device = %self.transport.identity(), "channel ready");
                        return Ok(());
                    }
                    HostEvent::InitFailed(failure) => return Err(init_error(failure)),
                    // Leftovers of an earlier request.
                    HostEvent::Progress(_) | HostEvent::Answer(_) | HostEvent::Failed(_) => {}
                }
            }
            if !self.link.is_initialising() {
                return Ok(());
            }
            let packet = self.transport.receive_packet(self.wait_for(None)).await?;
            self.feed(packet);
        }
    }

    /// After a request ended: a resync the machine started (the channel could not be trusted
    /// any more) is finished before the caller hears of the outcome, so the next request
    /// finds the channel ready. If the device does not answer it, the next request tries
    /// again.
    async fn settle(&mut self) {
        if self.link.is_initialising()
            && let Err(error) = self.initialise().await
        {
            let error = self.note_lost(error);
            tracing::debug!(%error, "resynchronisation failed; retrying before the next request");
        }
    }

    /// One transmission of a request, until its answer, a refusal to retry, or a failure.
    async fn attempt(
        &mut self,
        state: &mut RequestState,
        request_id: u32,
        message: Vec<u8>,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Attempt, SessionError> {
        self.link.send(self.now_ms(), message)?;
        let mut cancelling: Option<CancelReason> = None;
        loop {
            self.flush().await?;
            while let Some(event) = self.link.poll_event() {
                match event {
                    HostEvent::Progress(status) => {
                        let progress = Progress::from_keepalive(status);
                        if progress == Progress::Processing {
                            state.processing_since.get_or_insert_with(Instant::now);
                        } else {
                            state.processing_since = None;
                        }
                        on_progress(progress);
                    }
                    HostEvent::Answer(bytes) => {
                        self.flush().await?;
                        self.settle().await;
                        return match decode_response(&bytes) {
                            Ok((id, response)) if id == request_id => {
                                answer(state, response, cancelling)
                            }
                            Ok((id, _)) => Err(SessionError::AnswerMismatch {
                                request: state.name,
                                expected: request_id,
                                received: id,
                            }),
                            Err(source) => Err(SessionError::MalformedAnswer {
                                request: state.name,
                                source,
                            }),
                        };
                    }
                    HostEvent::Failed(failure) => {
                        return self.on_failure(state, failure, cancelling).await;
                    }
                    HostEvent::Ready { .. } | HostEvent::InitFailed(_) => {}
                }
            }
            // The session's own limits: a device that keeps sending keepalives never lets
            // the machine's idle timer run out.
            if cancelling.is_none() {
                let now = Instant::now();
                let reason = if state.deadline.is_some_and(|deadline| now >= deadline) {
                    Some(CancelReason::TimeLimit)
                } else if state
                    .processing_since
                    .is_some_and(|since| now >= since + state.processing_limit)
                {
                    Some(CancelReason::Stalled)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    cancelling = Some(reason);
                    on_progress(Progress::Cancelling);
                    self.link.cancel(self.now_ms());
                    continue;
                }
            }
            let mut limit = None;
            if cancelling.is_none() {
                limit = state.deadline;
                if let Some(since) = state.processing_since {
                    let stall = since + state.processing_limit;
                    limit = Some(limit.map_or(stall, |limit: Instant| limit.min(stall)));
                }
            }
            let timeout = self.wait_for(limit);
            let cancel_asked = tokio::select! {
                received = self.transport.receive_packet(timeout) => {
                    self.feed(received?);
                    false
                }
                changed = state.cancel_generation.changed(), if cancelling.is_none() => {
                    changed.is_ok() && *state.cancel_generation.borrow_and_update() != state.cancel_seen
                }
            };
            if cancel_asked && cancelling.is_none() {
                cancelling = Some(CancelReason::Caller);
                on_progress(Progress::Cancelling);
                self.link.cancel(self.now_ms());
            }
        }
    }

    /// The request ended without an answer: what the caller hears.
    async fn on_failure(
        &mut self,
        state: &RequestState,
        failure: RequestFailure,
        cancelling: Option<CancelReason>,
    ) -> Result<Attempt, SessionError> {
        if failure == RequestFailure::ChannelInvalid {
            return Ok(Attempt::ChannelInvalid);
        }
        self.flush().await?;
        self.settle().await;
        let request = state.name;
        match failure {
            RequestFailure::Busy => Ok(Attempt::Busy),
            RequestFailure::ChannelInvalid => Ok(Attempt::ChannelInvalid),
            RequestFailure::Cancelled { .. } => Err(match cancelling {
                Some(reason) => state.cancel_error(reason),
                None => SessionError::Cancelled { request },
            }),
            RequestFailure::Refused(code) => Err(SessionError::LinkRefused { request, code }),
            RequestFailure::DeliveryFailed { transmissions } => Err(SessionError::DeliveryFailed {
                request,
                transmissions,
            }),
            RequestFailure::DeviceSilent { idle_ms } => {
                Err(SessionError::DeviceSilent { request, idle_ms })
            }
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

    /// How long to wait for the next packet: until the machine's next timer or `limit`.
    fn wait_for(&self, limit: Option<Instant>) -> Duration {
        let now = Instant::now();
        let mut wake = now + IDLE_WAIT;
        if let Some(ms) = self.link.poll_timeout() {
            wake = wake.min(self.epoch + Duration::from_millis(ms));
        }
        if let Some(limit) = limit {
            wake = wake.min(limit);
        }
        wake.saturating_duration_since(now)
    }

    /// A packet (or a timeout) into the machine; its timers run either way.
    fn feed(&mut self, packet: Option<Vec<u8>>) {
        let now = self.now_ms();
        if let Some(packet) = packet {
            self.link.handle_packet(now, &packet);
        }
        self.link.handle_timeout(now);
    }

    /// Sends every packet the machine queued.
    async fn flush(&mut self) -> Result<(), TransportError> {
        while let Some(packet) = self.link.poll_transmit() {
            self.transport.send_packet(&packet).await?;
        }
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

fn init_error(failure: InitFailure) -> SessionError {
    match failure {
        InitFailure::NoAnswer {
            attempts,
            timeout_ms,
        } => SessionError::NoAnswer {
            attempts,
            timeout_ms,
        },
        InitFailure::UnsupportedVersion { version } => {
            SessionError::UnsupportedLinkVersion { version }
        }
        InitFailure::MtuMismatch { host, device } => SessionError::MtuMismatch { host, device },
    }
}

/// A success answer, a busy refusal to retry, or the device's refusal as an error.
fn answer(
    state: &RequestState,
    response: Response,
    cancelling: Option<CancelReason>,
) -> Result<Attempt, SessionError> {
    match response {
        Response::Error(error) => match error.status {
            StatusCode::Busy if cancelling.is_none() => Ok(Attempt::Busy),
            StatusCode::HostCancelled if cancelling.is_some() => {
                Err(state.cancel_error(cancelling.unwrap_or(CancelReason::Caller)))
            }
            status => Err(SessionError::Refused {
                request: state.name,
                status,
                indicator: error.indicator,
                detail: error.detail,
            }),
        },
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
