//! The kit's host end of the link: a strict host that records every packet the device sends
//! and when, built from firmware-protocol's codec (Packetizer, Reassembler), and that can
//! also send what a well-behaved host never sends (bad CRC, gaps, oversize, stray commands).
//!
//! The companion's [`Session`](crate::session::Session) hides exactly what a conformance run
//! must see (ACK order, keepalive gaps, retransmissions, damaged frames), so the kit drives
//! the device's [`Transport`] itself.

use std::time::{Duration, Instant};

use crc::{CRC_32_ISO_HDLC, Crc};
use firmware_protocol::link::{
    Body, CONTINUATION_HEADER_LEN, ChannelId, ErrorCode, Frame, INIT_HEADER_LEN, InitResponse,
    KeepaliveStatus, LinkError, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::hook::TestHook;
use crate::transport::{Transport, TransportError};

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// A host waiting for an answer gives up after this long without any packet (§2.10).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_millis(3000);

/// How long the kit waits for a keepalive before pressing the next keys anyway.
const UNPROMPTED_PRESS_MS: u64 = 300;
const UNPROMPTED_PRESS: Duration = Duration::from_millis(UNPROMPTED_PRESS_MS);

/// One thing the device sent, and when (ms since the probe started).
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub at_ms: u64,
    pub what: Received,
}

/// A frame, or a frame the host's reassembler refused (damaged in some way).
#[derive(Clone, Debug)]
pub(crate) enum Received {
    Frame(Frame),
    Damaged {
        channel: ChannelId,
        error: LinkError,
    },
}

impl Seen {
    /// The frame on `channel`, if this is one.
    pub fn frame_on(&self, channel: ChannelId) -> Option<&Body> {
        match &self.what {
            Received::Frame(frame) if frame.channel == channel => Some(&frame.body),
            _ => None,
        }
    }

    /// Whether it is a link ERROR `code` on `channel`.
    pub fn is_error(&self, channel: ChannelId, code: ErrorCode) -> bool {
        matches!(self.frame_on(channel), Some(Body::Error(c)) if *c == code)
    }
}

/// Words for what was seen, for a report line.
pub(crate) fn describe(seen: &[Seen]) -> String {
    if seen.is_empty() {
        return "nothing".into();
    }
    let items: Vec<String> = seen.iter().take(6).map(describe_one).collect();
    let more = seen.len().saturating_sub(6);
    if more > 0 {
        format!("{} and {more} more", items.join(", "))
    } else {
        items.join(", ")
    }
}

pub(crate) fn describe_one(seen: &Seen) -> String {
    match &seen.what {
        Received::Frame(frame) => format!("{} on {}", body_name(&frame.body), frame.channel),
        Received::Damaged { channel, error } => format!("damaged frame on {channel} ({error})"),
    }
}

pub(crate) fn body_name(body: &Body) -> String {
    match body {
        Body::Ping(data) => format!("PING({} bytes)", data.len()),
        Body::Msg { seq, message } => format!("MSG(seq {seq}, {} bytes)", message.len()),
        Body::Ack { seq } => format!("ACK({seq})"),
        Body::Nack { reason } => format!("NACK {reason:?}"),
        Body::InitRequest { .. } => "INIT request".into(),
        Body::InitResponse(_) => "INIT answer".into(),
        Body::Wink => "WINK".into(),
        Body::Cancel => "CANCEL".into(),
        Body::Keepalive(status) => format!("KEEPALIVE {status:?}"),
        Body::Error(code) => format!("ERROR {code:?}"),
    }
}

/// A channel the probe opened, with its two sequence numbers (§2.9.1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chan {
    pub id: ChannelId,
    /// Next host -> device MSG number.
    pub tx: u8,
    /// Next device -> host MSG number expected.
    pub rx: u8,
    pub init: InitResponse,
}

/// Why an exchange did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("ERROR {0:?} instead of an answer")]
    Refused(ErrorCode),
    #[error("no packet for {} ms while waiting for the answer", IDLE_TIMEOUT.as_millis())]
    Idle,
    #[error("{0}")]
    Protocol(String),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("test hook: {0}")]
    Hook(String),
}

/// What one request MSG got.
#[derive(Clone, Debug, Default)]
pub(crate) struct Exchange {
    pub sent_ms: u64,
    pub ack_ms: Option<u64>,
    /// Whether the ACK itself arrived before the answer (not only implied by it).
    pub acked: bool,
    pub answer_ms: u64,
    /// The answer's message-layer bytes.
    pub answer: Vec<u8>,
    pub keepalives: Vec<(u64, KeepaliveStatus)>,
    /// Damaged frames on the channel (each NACKed).
    pub damaged: Vec<LinkError>,
}

/// What the simulated or real user does while a request waits on the device.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserScript {
    /// Key sequences, one per prompt, in order (`["1","2","enter"]`).
    pub presses: Vec<Vec<String>>,
    /// Press each key on its own, as a person types (so the device reports each digit).
    pub key_by_key: bool,
}

pub(crate) struct Probe {
    transport: Box<dyn Transport>,
    mtu: Mtu,
    reassembler: Reassembler,
    clock: Instant,
    rng: ChaCha20Rng,
}

impl Probe {
    pub fn new(transport: Box<dyn Transport>, seed: [u8; 32]) -> Self {
        let mtu = transport.mtu();
        Probe {
            transport,
            mtu,
            reassembler: Reassembler::new(ReassemblerConfig::new(mtu, Role::Host)),
            clock: Instant::now(),
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    pub fn mtu(&self) -> Mtu {
        self.mtu
    }

    /// The device's transport kind (Bluetooth LE has its own retransmission timer, §2.1.1).
    pub fn kind(&self) -> crate::transport::TransportKind {
        self.transport.kind()
    }

    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng.fill_bytes(&mut out);
        out
    }

    pub fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    /// Accept frames on `channel` (one the kit made up, to see the device's refusal on it).
    pub fn listen(&mut self, channel: ChannelId) {
        let _ = self.reassembler.open_channel(channel);
    }

    pub async fn send_frame(&mut self, frame: &Frame) -> Result<(), ExchangeError> {
        let packets = frame
            .to_packets(self.mtu)
            .map_err(|error| ExchangeError::Protocol(error.to_string()))?;
        self.send_packets(&packets).await
    }

    pub async fn send_packets(&mut self, packets: &[Vec<u8>]) -> Result<(), ExchangeError> {
        for packet in packets {
            self.transport.send_packet(packet).await?;
        }
        Ok(())
    }

    /// The packets of a frame built by hand: any command byte, any declared length, and the
    /// CRC of exactly what is sent (so the device's first complaint is the one under test).
    pub fn raw_frame(
        &self,
        channel: ChannelId,
        command: u8,
        declared_len: u16,
        payload: &[u8],
    ) -> Vec<Vec<u8>> {
        let mtu = self.mtu.get();
        let mut digest = CRC32.digest();
        digest.update(&channel.to_bytes());
        digest.update(&[command]);
        digest.update(&declared_len.to_be_bytes());
        digest.update(payload);
        let mut stream = payload.to_vec();
        stream.extend_from_slice(&digest.finalize().to_be_bytes());
        let mut packets = Vec::new();
        let mut init = Vec::with_capacity(mtu);
        init.extend_from_slice(&channel.to_bytes());
        init.push(command);
        init.extend_from_slice(&declared_len.to_be_bytes());
        let first = stream.len().min(mtu - INIT_HEADER_LEN);
        init.extend_from_slice(&stream[..first]);
        init.resize(mtu, 0);
        packets.push(init);
        let mut sequence = 0u8;
        for chunk in stream[first..].chunks(mtu - CONTINUATION_HEADER_LEN) {
            let mut packet = Vec::with_capacity(mtu);
            packet.extend_from_slice(&channel.to_bytes());
            packet.push(sequence);
            packet.extend_from_slice(chunk);
            packet.resize(mtu, 0);
            packets.push(packet);
            sequence = sequence.wrapping_add(1);
        }
        packets
    }

    /// The next frame (or damaged frame) the device sends before `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Result<Option<Seen>, ExchangeError> {
        loop {
            let now = Instant::now();
            for event in self.reassembler.expire(self.now_ms()) {
                if let ReassemblyEvent::Reject { channel, error } = event {
                    return Ok(Some(Seen {
                        at_ms: self.now_ms(),
                        what: Received::Damaged { channel, error },
                    }));
                }
            }
            if now >= deadline {
                return Ok(None);
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            let Some(packet) = self.transport.receive_packet(wait).await? else {
                continue;
            };
            let at_ms = self.now_ms();
            let what = match self.reassembler.push(&packet, at_ms) {
                ReassemblyEvent::Complete(frame) => Received::Frame(frame),
                ReassemblyEvent::Pending => continue,
                ReassemblyEvent::Reject { channel, error } => Received::Damaged { channel, error },
                ReassemblyEvent::Ignored(error) => match error {
                    LinkError::WrongPacketSize { .. } | LinkError::ReservedChannel => continue,
                    error => Received::Damaged {
                        channel: packet_channel(&packet),
                        error,
                    },
                },
            };
            return Ok(Some(Seen { at_ms, what }));
        }
    }

    /// Everything the device sends for `window`.
    pub async fn collect(&mut self, window: Duration) -> Result<Vec<Seen>, ExchangeError> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(item) = self.next(deadline).await? {
            seen.push(item);
        }
        Ok(seen)
    }

    /// Waits up to `window` for a frame `wanted` accepts; returns it and what came before.
    pub async fn wait_for(
        &mut self,
        window: Duration,
        wanted: impl Fn(&Seen) -> bool,
    ) -> Result<(Option<Seen>, Vec<Seen>), ExchangeError> {
        let deadline = Instant::now() + window;
        let mut before = Vec::new();
        while let Some(item) = self.next(deadline).await? {
            if wanted(&item) {
                return Ok((Some(item), before));
            }
            before.push(item);
        }
        Ok((None, before))
    }

    /// INIT with a fresh nonce on `on` (broadcast: allocate; an open channel: resync), one
    /// attempt of 1000 ms (§2.6.2). The answer, and what else came meanwhile.
    pub async fn init(
        &mut self,
        on: ChannelId,
    ) -> Result<(Option<InitResponse>, Vec<Seen>), ExchangeError> {
        let nonce: [u8; 8] = self.random_bytes();
        self.send_frame(&Frame::new(on, Body::InitRequest { nonce }))
            .await?;
        let (found, before) = self
            .wait_for(Duration::from_millis(1000), |seen| {
                matches!(seen.frame_on(on), Some(Body::InitResponse(answer)) if answer.nonce == nonce)
            })
            .await?;
        let answer = match found.map(|seen| seen.what) {
            Some(Received::Frame(Frame {
                body: Body::InitResponse(answer),
                ..
            })) => Some(answer),
            _ => None,
        };
        Ok((answer, before))
    }

    /// Allocates a channel (INIT on broadcast, up to 5 attempts as a host does).
    pub async fn open(&mut self) -> Result<Chan, ExchangeError> {
        for _ in 0..5 {
            if let (Some(init), _) = self.init(ChannelId::BROADCAST).await? {
                if !init.channel.is_assignable() {
                    return Err(ExchangeError::Protocol(format!(
                        "INIT answer assigned the reserved channel {}",
                        init.channel
                    )));
                }
                self.listen(init.channel);
                return Ok(Chan {
                    id: init.channel,
                    tx: 0,
                    rx: 0,
                    init,
                });
            }
        }
        Err(ExchangeError::Protocol(
            "no INIT answer to 5 attempts on broadcast".into(),
        ))
    }

    /// Sends a request MSG on `chan` (its next number) without waiting.
    pub async fn send_request(
        &mut self,
        chan: &Chan,
        message: &[u8],
    ) -> Result<u64, ExchangeError> {
        let sent_ms = self.now_ms();
        self.send_frame(&Frame::new(
            chan.id,
            Body::Msg {
                seq: chan.tx,
                message: message.to_vec(),
            },
        ))
        .await?;
        Ok(sent_ms)
    }

    /// One request and its answer, as a strict host: the request's ACK, keepalives, NACK of
    /// damaged frames, ACK of the answer. `user` presses keys through `hook` at each prompt.
    pub async fn transact(
        &mut self,
        chan: &mut Chan,
        message: &[u8],
        hook: Option<&TestHook>,
        user: &UserScript,
    ) -> Result<Exchange, ExchangeError> {
        let mut exchange = Exchange {
            sent_ms: self.send_request(chan, message).await?,
            ..Exchange::default()
        };
        let mut keys = Keypad::new(user);
        let mut prompt_seen = false;
        let mut last_press_ms = exchange.sent_ms;
        let mut last_packet = Instant::now();
        let mut retransmissions = 0;
        loop {
            // Without a keepalive saying a prompt is up (or a digit counted), the next keys
            // are played anyway after a while: a device that sends none must still be driven
            // through the flow, within the host's idle timeout.
            let deadline = (last_packet + IDLE_TIMEOUT).min(Instant::now() + UNPROMPTED_PRESS);
            let Some(seen) = self.next(deadline).await? else {
                if last_packet.elapsed() >= IDLE_TIMEOUT {
                    return Err(ExchangeError::Idle);
                }
                if self.now_ms().saturating_sub(last_press_ms) >= UNPROMPTED_PRESS_MS
                    && !keys.done()
                {
                    prompt_seen = true;
                    keys.next(hook).await?;
                    last_press_ms = self.now_ms();
                }
                continue;
            };
            last_packet = Instant::now();
            match seen.what {
                Received::Frame(Frame { channel, body }) if channel == chan.id => match body {
                    Body::Ack { seq } if seq == chan.tx => {
                        exchange.acked = true;
                        if exchange.ack_ms.is_none() {
                            exchange.ack_ms = Some(seen.at_ms);
                            chan.tx = chan.tx.wrapping_add(1);
                        }
                    }
                    Body::Keepalive(status) => {
                        exchange.keepalives.push((seen.at_ms, status));
                        // The first prompt keepalive says the user is asked; typing one key
                        // at a time, each next key waits for the device to count the last.
                        let counted = matches!(
                            status,
                            KeepaliveStatus::PinEntry(progress) if keys.typed(progress.entered())
                        );
                        if (status != KeepaliveStatus::Processing && !prompt_seen) || counted {
                            prompt_seen = true;
                            keys.next(hook).await?;
                            last_press_ms = self.now_ms();
                        }
                    }
                    Body::Msg { seq, message } => {
                        if exchange.ack_ms.is_none() {
                            // The answer stands in for a lost ACK (§2.9.3).
                            exchange.ack_ms = Some(seen.at_ms);
                            chan.tx = chan.tx.wrapping_add(1);
                        }
                        self.send_frame(&Frame::new(chan.id, Body::Ack { seq }))
                            .await?;
                        if seq != chan.rx {
                            // A retransmission of an answer already taken: ACKed again.
                            continue;
                        }
                        chan.rx = chan.rx.wrapping_add(1);
                        exchange.answer_ms = seen.at_ms;
                        exchange.answer = message;
                        return Ok(exchange);
                    }
                    Body::Nack { .. } => {
                        retransmissions += 1;
                        if retransmissions > 5 {
                            return Err(ExchangeError::Protocol(
                                "the device NACKed the request 6 times".into(),
                            ));
                        }
                        self.send_frame(&Frame::new(
                            chan.id,
                            Body::Msg {
                                seq: chan.tx,
                                message: message.to_vec(),
                            },
                        ))
                        .await?;
                    }
                    Body::Error(code) => return Err(ExchangeError::Refused(code)),
                    _ => {}
                },
                Received::Damaged { channel, error } if channel == chan.id => {
                    exchange.damaged.push(error.clone());
                    if exchange.damaged.len() > 6 {
                        return Err(ExchangeError::Protocol(format!(
                            "every frame damaged ({error})"
                        )));
                    }
                    if error.code().is_transient() {
                        self.send_frame(&Frame::new(
                            chan.id,
                            Body::Nack {
                                reason: error.code(),
                            },
                        ))
                        .await?;
                    }
                }
                _ => {}
            }
        }
    }

    /// Closes the link.
    pub async fn close(&mut self) {
        let _ = self.transport.close().await;
    }
}

/// The user's keys still to press during one exchange.
struct Keypad {
    /// Whole sequences, each for the next prompt (pressed all together).
    batches: std::collections::VecDeque<Vec<String>>,
    /// Single keys (key by key): whether it is the first of its prompt, and the key.
    keys: std::collections::VecDeque<(bool, String)>,
    /// Digits pressed at the current prompt.
    digits: u8,
}

impl Keypad {
    fn new(user: &UserScript) -> Self {
        let mut keypad = Keypad {
            batches: user.presses.iter().cloned().collect(),
            keys: std::collections::VecDeque::new(),
            digits: 0,
        };
        if user.key_by_key {
            for sequence in keypad.batches.drain(..) {
                for (index, key) in sequence.into_iter().enumerate() {
                    keypad.keys.push_back((index == 0, key));
                }
            }
        }
        keypad
    }

    fn done(&self) -> bool {
        self.batches.is_empty() && self.keys.is_empty()
    }

    /// Whether the device has counted every digit pressed so far (time for the next key).
    fn typed(&self, entered: u8) -> bool {
        !self.keys.is_empty() && self.digits > 0 && entered == self.digits
    }

    /// Presses what comes next: every remaining sequence (each waits in the hook for its
    /// prompt), or the next single key.
    async fn next(&mut self, hook: Option<&TestHook>) -> Result<(), ExchangeError> {
        let hook = hook.ok_or_else(|| {
            ExchangeError::Hook(
                "the request needs a user at the keypad and there is no test hook".into(),
            )
        })?;
        let hook_error = |error: super::hook::HookError| ExchangeError::Hook(error.to_string());
        while let Some(sequence) = self.batches.pop_front() {
            hook.press(&sequence).await.map_err(hook_error)?;
        }
        if let Some((first, key)) = self.keys.pop_front() {
            let one = std::slice::from_ref(&key);
            if first {
                self.digits = 0;
                hook.press(one).await.map_err(hook_error)?;
            } else {
                hook.press_again(one).await.map_err(hook_error)?;
            }
            if key.len() == 1 && key.as_bytes()[0].is_ascii_digit() {
                self.digits = self.digits.saturating_add(1);
            }
        }
        Ok(())
    }
}

fn packet_channel(packet: &[u8]) -> ChannelId {
    match packet.first_chunk::<4>() {
        Some(bytes) => ChannelId(u32::from_be_bytes(*bytes)),
        None => ChannelId::RESERVED,
    }
}
