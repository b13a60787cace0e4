//! A small scripted PIN pad speaking the link layer (firmware_protocol::link on the device
//! side), and a transport wrapper that damages or drops chosen packets.
// Test support: a broken script or an impossible state should fail the test loudly.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use companion::transport::{DeviceIdentity, Transport, TransportError};
use firmware_protocol::link::{
    Body, Capabilities, ChannelId, ErrorCode, Frame, InitResponse, KeepaliveStatus, Mtu,
    PROTOCOL_VERSION, Reassembler, ReassemblerConfig, ReassemblyEvent, Receipt, ReliableReceiver,
    ReliableSender, Role, SenderAction,
};
use firmware_protocol::message::{Request, Response, decode_request};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the device does with a request, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// Send this keepalive now and repeat it every 100 ms until the next status.
    Keepalive(KeepaliveStatus),
    /// Do nothing new for this long (keepalives continue).
    Wait(Duration),
    /// Answer with this response.
    Respond(Response),
    /// Send a link ERROR instead of an answer and end the transaction.
    LinkError(ErrorCode),
    /// Stop sending anything, for good.
    GoSilent,
    /// Drop the link.
    Disconnect,
}

/// The device's reaction to one new request.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Refuse the MSG with this ERROR instead of acknowledging it (e.g. CHANNEL_BUSY).
    pub refuse: Option<ErrorCode>,
    /// Otherwise: acknowledge, then these steps.
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn respond(response: Response) -> Self {
        Plan {
            refuse: None,
            steps: vec![Step::Respond(response)],
        }
    }

    pub fn steps(steps: Vec<Step>) -> Self {
        Plan {
            refuse: None,
            steps,
        }
    }

    pub fn refuse(code: ErrorCode) -> Self {
        Plan {
            refuse: Some(code),
            steps: vec![],
        }
    }
}

pub type Script = Box<dyn FnMut(&Request) -> Plan + Send>;

/// What the device saw and did.
#[derive(Debug, Default)]
pub struct DeviceLog {
    pub channel_allocations: usize,
    pub resyncs: usize,
    pub requests: Vec<(u32, Request)>,
    pub refused: usize,
    pub cancels: usize,
    pub nacks_received: usize,
    pub nacks_sent: usize,
    pub duplicates: usize,
}

struct Transaction {
    channel: ChannelId,
    request_id: u32,
    steps: VecDeque<Step>,
    next_step_at: Instant,
    keepalive: Option<KeepaliveStatus>,
    next_keepalive_at: Instant,
    answered: bool,
}

const KEEPALIVE_REPEAT: Duration = Duration::from_millis(100);

/// Runs a fake device on `transport` until the link drops or a script says Disconnect.
pub fn spawn_device(
    transport: impl Transport + 'static,
    script: impl FnMut(&Request) -> Plan + Send + 'static,
) -> (JoinHandle<()>, Arc<Mutex<DeviceLog>>) {
    let log = Arc::new(Mutex::new(DeviceLog::default()));
    let handle = tokio::spawn(run(Box::new(transport), Box::new(script), Arc::clone(&log)));
    (handle, log)
}

/// Answers Ping with Pong and GetStatus/others with nothing special: the common default.
pub fn echo(request: &Request) -> Plan {
    match request {
        Request::Ping(ping) => Plan::respond(Response::Pong(firmware_protocol::message::Pong {
            payload: ping.payload.clone(),
        })),
        other => panic!("echo device got {}", other.name()),
    }
}

struct Device {
    transport: Box<dyn Transport>,
    mtu: Mtu,
    epoch: Instant,
    reassembler: Reassembler,
    channels: HashMap<ChannelId, (ReliableSender, ReliableReceiver)>,
    next_channel: u32,
    transaction: Option<Transaction>,
    script: Script,
    log: Arc<Mutex<DeviceLog>>,
    silent: bool,
}

async fn run(transport: Box<dyn Transport>, script: Script, log: Arc<Mutex<DeviceLog>>) {
    let mtu = transport.mtu();
    let mut device = Device {
        transport,
        mtu,
        epoch: Instant::now(),
        reassembler: Reassembler::new(ReassemblerConfig::new(mtu, Role::Device)),
        channels: HashMap::new(),
        next_channel: 0x5eed_0001,
        transaction: None,
        script,
        log,
        silent: false,
    };
    let _ = device.serve().await;
}

impl Device {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), TransportError> {
        if self.silent {
            return Ok(());
        }
        for packet in frame.to_packets(self.mtu).unwrap() {
            self.transport.send_packet(&packet).await?;
        }
        Ok(())
    }

    async fn serve(&mut self) -> Result<(), TransportError> {
        loop {
            let packet = self
                .transport
                .receive_packet(Duration::from_millis(10))
                .await?;
            if self.silent {
                continue;
            }
            if let Some(packet) = packet {
                let event = self.reassembler.push(&packet, self.now_ms());
                match event {
                    ReassemblyEvent::Complete(frame) => {
                        let keep_going = self.handle(frame).await?;
                        if !keep_going {
                            return Ok(());
                        }
                    }
                    ReassemblyEvent::Reject { .. } => {
                        if let Some(reply) = event.reply() {
                            if matches!(reply.body, Body::Nack { .. }) {
                                self.log.lock().unwrap().nacks_sent += 1;
                            }
                            self.send(&reply).await?;
                        }
                    }
                    _ => {}
                }
            }
            for event in self.reassembler.expire(self.now_ms()) {
                if let Some(reply) = event.reply() {
                    self.send(&reply).await?;
                }
            }
            let now_ms = self.now_ms();
            let mut to_send = Vec::new();
            for (sender, _) in self.channels.values_mut() {
                match sender.poll(now_ms) {
                    SenderAction::Transmit(frame) => to_send.push(frame),
                    SenderAction::GaveUp { .. } => sender.reset(),
                    _ => {}
                }
            }
            for frame in to_send {
                self.send(&frame).await?;
            }
            if !self.run_steps().await? {
                return Ok(());
            }
        }
    }

    /// Returns false when the device should disconnect.
    async fn run_steps(&mut self) -> Result<bool, TransportError> {
        let now = Instant::now();
        let Some(transaction) = &mut self.transaction else {
            return Ok(true);
        };
        if transaction.answered {
            return Ok(true);
        }
        let channel = transaction.channel;
        let mut frames = Vec::new();
        let mut answer = None;
        let mut end = false;
        while transaction.next_step_at <= now {
            let Some(step) = transaction.steps.pop_front() else {
                break;
            };
            match step {
                Step::Keepalive(status) => {
                    transaction.keepalive = Some(status);
                    transaction.next_keepalive_at = now + KEEPALIVE_REPEAT;
                    frames.push(Frame::new(channel, Body::Keepalive(status)));
                }
                Step::Wait(duration) => transaction.next_step_at = now + duration,
                Step::Respond(response) => {
                    answer = Some(response.encode(transaction.request_id).unwrap());
                    transaction.answered = true;
                    break;
                }
                Step::LinkError(code) => {
                    frames.push(Frame::new(channel, Body::Error(code)));
                    end = true;
                    break;
                }
                Step::GoSilent => {
                    self.silent = true;
                    return Ok(true);
                }
                Step::Disconnect => return Ok(false),
            }
        }
        if !transaction.answered
            && !end
            && let Some(status) = transaction.keepalive
            && now >= transaction.next_keepalive_at
        {
            transaction.next_keepalive_at = now + KEEPALIVE_REPEAT;
            frames.push(Frame::new(channel, Body::Keepalive(status)));
        }
        if end {
            self.end_transaction();
        }
        if let Some(bytes) = answer
            && let Some((sender, _)) = self.channels.get_mut(&channel)
        {
            sender.send(bytes).unwrap();
        }
        for frame in frames {
            self.send(&frame).await?;
        }
        Ok(true)
    }

    fn end_transaction(&mut self) {
        self.transaction = None;
        self.reassembler.end_transaction();
    }

    /// Returns false when the device should disconnect.
    async fn handle(&mut self, frame: Frame) -> Result<bool, TransportError> {
        let channel = frame.channel;
        match frame.body {
            Body::InitRequest { nonce } if channel.is_broadcast() => {
                let assigned = self.reassembler.allocate_channel(self.next_channel);
                self.next_channel += 1;
                self.channels.insert(
                    assigned,
                    (
                        ReliableSender::new(assigned, self.mtu),
                        ReliableReceiver::new(),
                    ),
                );
                self.log.lock().unwrap().channel_allocations += 1;
                let answer = self.init_answer(nonce, assigned);
                self.send(&Frame::new(ChannelId::BROADCAST, answer)).await?;
            }
            Body::InitRequest { nonce } => {
                if self
                    .transaction
                    .as_ref()
                    .is_some_and(|t| t.channel == channel)
                {
                    self.end_transaction();
                }
                if let Some((sender, receiver)) = self.channels.get_mut(&channel) {
                    sender.reset();
                    receiver.reset();
                }
                self.log.lock().unwrap().resyncs += 1;
                let answer = self.init_answer(nonce, channel);
                self.send(&Frame::new(channel, answer)).await?;
            }
            Body::Msg { seq, message } => {
                let Some((_, receiver)) = self.channels.get_mut(&channel) else {
                    return Ok(true);
                };
                if seq == receiver.expected_seq() {
                    let (request_id, request) = decode_request(&message).unwrap();
                    let plan = (self.script)(&request);
                    if let Some(code) = plan.refuse {
                        self.log.lock().unwrap().refused += 1;
                        self.send(&Frame::new(channel, Body::Error(code))).await?;
                        return Ok(true);
                    }
                    let Receipt::New { ack, .. } = receiver.receive(channel, seq, message) else {
                        unreachable!("expected sequence number")
                    };
                    self.log
                        .lock()
                        .unwrap()
                        .requests
                        .push((request_id, request));
                    self.send(&ack).await?;
                    self.reassembler.begin_transaction(channel);
                    let now = Instant::now();
                    self.transaction = Some(Transaction {
                        channel,
                        request_id,
                        steps: plan.steps.into(),
                        next_step_at: now,
                        keepalive: None,
                        next_keepalive_at: now,
                        answered: false,
                    });
                } else if let Receipt::Duplicate { ack } = receiver.receive(channel, seq, message) {
                    self.log.lock().unwrap().duplicates += 1;
                    self.send(&ack).await?;
                }
            }
            Body::Ack { seq } => {
                if let Some((sender, _)) = self.channels.get_mut(&channel)
                    && sender.on_ack(seq)
                    && self
                        .transaction
                        .as_ref()
                        .is_some_and(|t| t.channel == channel && t.answered)
                {
                    self.end_transaction();
                }
            }
            Body::Nack { .. } => {
                self.log.lock().unwrap().nacks_received += 1;
                if let Some((sender, _)) = self.channels.get_mut(&channel) {
                    sender.on_nack();
                }
            }
            Body::Cancel => {
                self.log.lock().unwrap().cancels += 1;
                if self
                    .transaction
                    .as_ref()
                    .is_some_and(|t| t.channel == channel && !t.answered)
                {
                    self.end_transaction();
                    self.send(&Frame::new(channel, Body::Error(ErrorCode::Cancelled)))
                        .await?;
                }
            }
            Body::Ping(data) => self.send(&Frame::new(channel, Body::Ping(data))).await?,
            _ => {}
        }
        Ok(true)
    }

    fn init_answer(&self, nonce: [u8; 8], channel: ChannelId) -> Body {
        Body::InitResponse(InitResponse {
            nonce,
            channel,
            version: PROTOCOL_VERSION,
            capabilities: Capabilities::KEYPAD.union(Capabilities::DISPLAY),
            mtu: self.mtu,
        })
    }
}

/// Which packets a [`Faulty`] transport damages or loses, and what it sent.
#[derive(Debug, Default)]
pub struct Faults {
    /// Indices (0-based, counting every packet sent) to corrupt.
    pub corrupt: Vec<usize>,
    /// Indices to drop.
    pub drop: Vec<usize>,
    /// Every packet sent, as it left (after corruption; dropped ones included).
    pub sent: Vec<Vec<u8>>,
}

impl Faults {
    /// Packets sent whose command byte is `command` (init packets only).
    pub fn init_packets(&self, command: u8) -> Vec<Vec<u8>> {
        self.sent
            .iter()
            .filter(|p| p.get(4) == Some(&command))
            .cloned()
            .collect()
    }
}

/// Wraps a transport and damages or drops chosen outgoing packets.
#[derive(Debug)]
pub struct Faulty<T> {
    pub inner: T,
    pub faults: Arc<Mutex<Faults>>,
}

impl<T> Faulty<T> {
    pub fn new(inner: T) -> (Self, Arc<Mutex<Faults>>) {
        let faults = Arc::new(Mutex::new(Faults::default()));
        (
            Faulty {
                inner,
                faults: Arc::clone(&faults),
            },
            faults,
        )
    }
}

#[async_trait]
impl<T: Transport> Transport for Faulty<T> {
    fn identity(&self) -> &DeviceIdentity {
        self.inner.identity()
    }

    fn mtu(&self) -> Mtu {
        self.inner.mtu()
    }

    async fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        let (packet, drop) = {
            let mut faults = self.faults.lock().unwrap();
            let index = faults.sent.len();
            let mut packet = packet.to_vec();
            if faults.corrupt.contains(&index) {
                // Byte 7 is message data in an init packet and in a continuation packet.
                packet[7] ^= 0xFF;
            }
            faults.sent.push(packet.clone());
            (packet, faults.drop.contains(&index))
        };
        if drop {
            return Ok(());
        }
        self.inner.send_packet(&packet).await
    }

    async fn receive_packet(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.inner.receive_packet(timeout).await
    }

    async fn reconnect(&mut self) -> Result<(), TransportError> {
        self.inner.reconnect().await
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }
}
