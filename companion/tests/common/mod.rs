//! A small scripted PIN pad: a thin async driver over firmware-protocol's `DeviceLink` (the
//! device end of the link, where every link rule lives) whose message layer follows a script,
//! and a transport wrapper that damages or drops chosen packets.
// Test support: a broken script or an impossible state should fail the test loudly.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use companion::transport::{DeviceIdentity, Transport, TransportError};
use firmware_protocol::link::{
    Capabilities, ChannelId, DeviceEvent, DeviceLink, DeviceLinkConfig, ErrorCode, KeepaliveStatus,
    Mtu,
};
use firmware_protocol::message::{Request, Response, decode_request};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the device does with a request, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// Report this status now (the link repeats it as KEEPALIVE until the next one).
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
    /// Refuse the request with this link ERROR at once (e.g. CHANNEL_BUSY), after its ACK.
    pub refuse: Option<ErrorCode>,
    /// Otherwise: these steps.
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

/// What the device saw and did (counted from the packets that crossed the link).
#[derive(Debug, Default)]
pub struct DeviceLog {
    /// Channels assigned in INIT answers on broadcast, in order.
    pub channels: Vec<ChannelId>,
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
    request_id: u32,
    steps: VecDeque<Step>,
    next_step_at: Instant,
}

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
    epoch: Instant,
    link: DeviceLink,
    transaction: Option<Transaction>,
    script: Script,
    log: Arc<Mutex<DeviceLog>>,
    silent: bool,
}

const ACK: u8 = 0x84;
const NACK: u8 = 0x85;
const INIT: u8 = 0x86;
const CANCEL: u8 = 0x91;
const ERROR: u8 = 0xBF;

/// The command of an init packet (`None` for a continuation).
fn command(packet: &[u8]) -> Option<u8> {
    packet.get(4).copied().filter(|byte| byte & 0x80 != 0)
}

async fn run(transport: Box<dyn Transport>, script: Script, log: Arc<Mutex<DeviceLog>>) {
    let mtu = transport.mtu();
    let mut device = Device {
        transport,
        epoch: Instant::now(),
        link: DeviceLink::new(
            DeviceLinkConfig::new(mtu, Capabilities::KEYPAD.union(Capabilities::DISPLAY)),
            0x5eed_0001,
        ),
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

    async fn serve(&mut self) -> Result<(), TransportError> {
        loop {
            let packet = self
                .transport
                .receive_packet(Duration::from_millis(10))
                .await?;
            if self.silent {
                continue;
            }
            let now = self.now_ms();
            if let Some(packet) = packet {
                match command(&packet) {
                    Some(NACK) => self.log.lock().unwrap().nacks_received += 1,
                    Some(CANCEL) => self.log.lock().unwrap().cancels += 1,
                    _ => {}
                }
                self.link.handle_packet(now, 1, &packet);
                let events: Vec<DeviceEvent> =
                    std::iter::from_fn(|| self.link.poll_event()).collect();
                let out: Vec<Vec<u8>> = std::iter::from_fn(|| self.link.poll_transmit())
                    .map(|transmit| transmit.packet)
                    .collect();
                // An ACK with no new request and no refusal: the host's copy of a request it
                // already delivered (its ACK was lost).
                let acked = out.iter().any(|p| command(p) == Some(ACK));
                let refused = out.iter().any(|p| command(p) == Some(ERROR));
                let new = events
                    .iter()
                    .any(|e| matches!(e, DeviceEvent::Request { .. }));
                if acked && !refused && !new {
                    self.log.lock().unwrap().duplicates += 1;
                }
                self.send(out).await?;
                self.on_events(events);
            }
            self.link.handle_timeout(now);
            if !self.run_steps(now) {
                return Ok(());
            }
            let out = std::iter::from_fn(|| self.link.poll_transmit())
                .map(|transmit| transmit.packet)
                .collect();
            self.send(out).await?;
        }
    }

    async fn send(&mut self, packets: Vec<Vec<u8>>) -> Result<(), TransportError> {
        if self.silent {
            return Ok(());
        }
        for packet in packets {
            if command(&packet) == Some(NACK) {
                self.log.lock().unwrap().nacks_sent += 1;
            }
            if command(&packet) == Some(INIT) {
                let mut log = self.log.lock().unwrap();
                if packet[..4] == [0xFF; 4] {
                    log.channel_allocations += 1;
                    // The answer's payload: nonce (8), then the channel assigned.
                    let assigned: [u8; 4] = packet[15..19].try_into().unwrap();
                    log.channels.push(ChannelId(u32::from_be_bytes(assigned)));
                } else {
                    log.resyncs += 1;
                }
            }
            self.transport.send_packet(&packet).await?;
        }
        Ok(())
    }

    fn on_events(&mut self, events: Vec<DeviceEvent>) {
        for event in events {
            match event {
                DeviceEvent::Request { message, .. } => {
                    let (request_id, request) = decode_request(&message).unwrap();
                    let plan = (self.script)(&request);
                    if let Some(code) = plan.refuse {
                        self.log.lock().unwrap().refused += 1;
                        self.link.refuse(code);
                        continue;
                    }
                    self.log
                        .lock()
                        .unwrap()
                        .requests
                        .push((request_id, request));
                    self.transaction = Some(Transaction {
                        request_id,
                        steps: plan.steps.into(),
                        next_step_at: Instant::now(),
                    });
                }
                DeviceEvent::Aborted { .. } => self.transaction = None,
                DeviceEvent::Wink { .. } => {}
            }
        }
    }

    /// Returns false when the device should disconnect.
    fn run_steps(&mut self, now_ms: u64) -> bool {
        let now = Instant::now();
        let Some(transaction) = &mut self.transaction else {
            return true;
        };
        let mut done = false;
        while !done && transaction.next_step_at <= now {
            let Some(step) = transaction.steps.pop_front() else {
                break;
            };
            match step {
                Step::Keepalive(status) => self.link.set_progress(now_ms, status),
                Step::Wait(duration) => transaction.next_step_at = now + duration,
                Step::Respond(response) => {
                    let bytes = response.encode(transaction.request_id).unwrap();
                    self.link.answer(now_ms, bytes).unwrap();
                    done = true;
                }
                Step::LinkError(code) => {
                    self.link.refuse(code);
                    done = true;
                }
                Step::GoSilent => {
                    self.silent = true;
                    return true;
                }
                Step::Disconnect => return false,
            }
        }
        if done {
            self.transaction = None;
        }
        true
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
