//! Per-round-trip cost of the companion on the sim link (issue 6 item 8), against a raw TCP
//! echo of the same packets. Figures: docs/BENCHMARKS.md, "Companion (issue 6)".
//!
//! Three measurements per request, all on loopback in one Tokio runtime built like the CLI's
//! (multi-thread, 2 workers):
//!
//! - `companion/*`: `Session::request` over `SimTransport` to a device-sim device served by
//!   `ServedDevice` on 127.0.0.1: request MSG, device ACK and answer MSG, host ACK.
//! - `tcp_echo/*`: the same packets without the companion: a client writes the request
//!   packets the session sent (recorded once through a recording transport), an echo server
//!   reads them and writes back the very packets the device answered with (recorded too),
//!   the client reads them and writes the final ACK packet, which the server reads. Same
//!   packet count, bytes, write calls and TCP_NODELAY as the real exchange; no protocol work.
//! - `tcp_echo_adapter_shaped/*`: the same, but the echo server is shaped like device-sim's
//!   connection adapter (a reader loop handing answer packets to a writer task through a
//!   channel), so the device adapter's task switch is on both sides of the comparison.
//! - `device_core/*`: the device's own work for one round trip (link reassembly, request
//!   handling, answer packetizing, dispatch to the connection's queue), measured by feeding
//!   the same kind of packets to `SimCore::receive` in process and timing only those calls.
//!
//! The companion's cost is `companion - device_core`; the goal is that it is at most 1.5x
//! `tcp_echo`. The requests: `GetInfo` (the cheapest request: 1 packet out, an ACK and a
//! 6-packet answer back with the device certificate) and a `Ping` whose payload makes it
//! payment-sized (the golden ApprovePayment request is 161 bytes): 3 packets out, an ACK
//! and a 3-packet answer back.
//!
//! After the criterion groups, a plain loop prints p50/p99 of single round trips, the four
//! kinds taking turns in runs of 100, and the p50 ratios to `tcp_echo`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/percentiles.rs"]
mod percentiles;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use companion::session::Session;
use companion::transport::sim::SimTransport;
use companion::transport::{DeviceIdentity, Transport, TransportError};
use criterion::{Criterion, criterion_group, criterion_main};
use device_sim::certificate::CaKey;
use device_sim::device::{Device, Manufacture};
use device_sim::hardware::{Clock, SecureStore, VirtualHardware};
use device_sim::server::ServedDevice;
use device_sim::sim::{ConnectionCommand, SimCore, SimHandle};
use firmware_protocol::link::{
    Body, ChannelId, Frame, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Receipt,
    ReliableReceiver, ReliableSender, Role, SenderAction,
};
use firmware_protocol::message::{GetInfo, Ping, Request};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const PACKET: usize = 64;
/// Ping payload that makes the encoded request 161 bytes, like the golden ApprovePayment.
const PAYMENT_SIZED_PING: usize = 150;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn requests() -> [(&'static str, Request); 2] {
    [
        ("get_info", Request::GetInfo(GetInfo)),
        (
            "ping_payment_sized",
            Request::Ping(Ping {
                payload: vec![0x5A; PAYMENT_SIZED_PING],
            }),
        ),
    ]
}

fn sim_core(seed: u8) -> SimCore {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let ca = CaKey::generate(&mut rng);
    let device = Device::manufacture(&Manufacture::new("PB-BENCH-0001"), &ca, &mut rng).unwrap();
    let hw = VirtualHardware::with(
        [seed; 32],
        Clock::System { offset_ms: 0 },
        SecureStore::Memory(None),
    );
    SimCore::new(device, hw, Mtu::SIM)
}

/// A device served on loopback, as `pinpad-sim serve` and the embedded demo serve one.
async fn served_device() -> ServedDevice {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ServedDevice::spawn(SimHandle::new(sim_core(1)), listener).unwrap()
}

/// Packets one way or the other, in order.
#[derive(Default)]
struct Recorded {
    sent: Vec<Vec<u8>>,
    received: Vec<Vec<u8>>,
}

/// A transport that keeps a copy of every packet, to replay the exchange without the companion.
#[derive(Debug)]
struct Recording {
    inner: SimTransport,
    log: Arc<Mutex<Recorded>>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sent, {} received",
            self.sent.len(),
            self.received.len()
        )
    }
}

#[async_trait]
impl Transport for Recording {
    fn identity(&self) -> &DeviceIdentity {
        self.inner.identity()
    }
    fn mtu(&self) -> Mtu {
        self.inner.mtu()
    }
    async fn send_packet(&mut self, packet: &[u8]) -> Result<(), TransportError> {
        self.log.lock().unwrap().sent.push(packet.to_vec());
        self.inner.send_packet(packet).await
    }
    async fn receive_packet(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let packet = self.inner.receive_packet(timeout).await?;
        if let Some(packet) = &packet {
            self.log.lock().unwrap().received.push(packet.clone());
        }
        Ok(packet)
    }
    async fn reconnect(&mut self) -> Result<(), TransportError> {
        self.inner.reconnect().await
    }
    async fn close(&mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }
}

/// One request's packets on the wire: what the host sends before the answer (the request
/// MSG), what the device sends (its ACK and the answer MSG), and the host's final ACK.
struct Exchange {
    request: Vec<Vec<u8>>,
    answer: Vec<Vec<u8>>,
    final_ack: Vec<u8>,
}

/// Runs `request` once through a session on a recording transport and returns its packets.
async fn record(address: SocketAddr, request: &Request) -> Exchange {
    let log = Arc::new(Mutex::new(Recorded::default()));
    let transport = Recording {
        inner: SimTransport::connect(address).await.unwrap(),
        log: log.clone(),
    };
    let mut session = Session::open(Box::new(transport)).await.unwrap();
    // Forget the INIT exchange; keep one request's packets.
    *log.lock().unwrap() = Recorded::default();
    session.request(request).await.unwrap();
    // The device's answer is complete when the session returns, but the final ACK may
    // still be leaving: the session sends it before returning, so it is in the log.
    let recorded = std::mem::take(&mut *log.lock().unwrap());
    session.close().await.unwrap();
    let (final_ack, request_packets) = recorded.sent.split_last().unwrap();
    Exchange {
        request: request_packets.to_vec(),
        answer: recorded.received,
        final_ack: final_ack.clone(),
    }
}

/// The echo server: per round trip, reads the request packets, writes the recorded answer
/// packets one write each (as the device's connection writer does), reads the final ACK.
async fn echo_server(listener: TcpListener, request_packets: usize, answer: Vec<Vec<u8>>) {
    let (mut socket, _) = listener.accept().await.unwrap();
    socket.set_nodelay(true).unwrap();
    let mut buffer = [0u8; PACKET];
    loop {
        for _ in 0..request_packets {
            if socket.read_exact(&mut buffer).await.is_err() {
                return;
            }
        }
        for packet in &answer {
            socket.write_all(packet).await.unwrap();
        }
        if socket.read_exact(&mut buffer).await.is_err() {
            return;
        }
    }
}

/// The echo server shaped like device-sim's connection adapter (`server.rs`): a reader loop
/// that hands each answer packet through an unbounded channel to a writer task. Replaying
/// through it charges the echo the adapter's own task switch, which is the device's cost.
async fn adapter_shaped_echo_server(
    listener: TcpListener,
    request_packets: usize,
    answer: Vec<Vec<u8>>,
) {
    let (socket, _) = listener.accept().await.unwrap();
    socket.set_nodelay(true).unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let (to_writer, mut packets) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(packet) = packets.recv().await {
            if writer.write_all(&packet).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = [0u8; PACKET];
    loop {
        for _ in 0..request_packets {
            if reader.read_exact(&mut buffer).await.is_err() {
                return;
            }
        }
        for packet in &answer {
            if to_writer.send(packet.clone()).is_err() {
                return;
            }
        }
        if reader.read_exact(&mut buffer).await.is_err() {
            return;
        }
    }
}

/// The echo client's round trip: the session's writes and reads, with no protocol work.
async fn echo_round_trip(socket: &mut TcpStream, exchange: &Exchange) {
    for packet in &exchange.request {
        socket.write_all(packet).await.unwrap();
    }
    let mut buffer = [0u8; PACKET];
    for _ in &exchange.answer {
        socket.read_exact(&mut buffer).await.unwrap();
    }
    socket.write_all(&exchange.final_ack).await.unwrap();
}

async fn echo_client(exchange: &Exchange, adapter_shaped: bool) -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (request_packets, answer) = (exchange.request.len(), exchange.answer.clone());
    if adapter_shaped {
        tokio::spawn(adapter_shaped_echo_server(
            listener,
            request_packets,
            answer,
        ));
    } else {
        tokio::spawn(echo_server(listener, request_packets, answer));
    }
    let socket = TcpStream::connect(address).await.unwrap();
    socket.set_nodelay(true).unwrap();
    socket
}

/// A minimal synchronous host on a `SimCore` in process, timing only the device's calls.
struct CoreHost {
    core: SimCore,
    connection: u64,
    to_host: tokio::sync::mpsc::UnboundedReceiver<ConnectionCommand>,
    reassembler: Reassembler,
    sender: ReliableSender,
    receiver: ReliableReceiver,
    channel: ChannelId,
    request_id: u32,
    now_ms: u64,
}

impl CoreHost {
    fn new() -> Self {
        let mut core = sim_core(2);
        let (sender, to_host) = tokio::sync::mpsc::unbounded_channel();
        let connection = core.connect(sender);
        let mut host = Self {
            core,
            connection,
            to_host,
            reassembler: Reassembler::new(ReassemblerConfig::new(Mtu::SIM, Role::Host)),
            sender: ReliableSender::new(ChannelId::BROADCAST, Mtu::SIM),
            receiver: ReliableReceiver::new(),
            channel: ChannelId::BROADCAST,
            request_id: 1,
            now_ms: 1,
        };
        let init = Frame::new(ChannelId::BROADCAST, Body::InitRequest { nonce: [7; 8] });
        for packet in init.to_packets(Mtu::SIM).unwrap() {
            host.core.receive(host.connection, packet, host.now_ms);
        }
        for frame in host.frames() {
            if let Body::InitResponse(answer) = frame.body {
                host.channel = answer.channel;
            }
        }
        host.reassembler.open_channel(host.channel).unwrap();
        host.sender = ReliableSender::new(host.channel, Mtu::SIM);
        host
    }

    /// Complete frames the device has queued for this connection.
    fn frames(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Ok(command) = self.to_host.try_recv() {
            if let ConnectionCommand::Packet { packet, .. } = command
                && let ReassemblyEvent::Complete(frame) =
                    self.reassembler.push(&packet, self.now_ms)
            {
                frames.push(frame);
            }
        }
        frames
    }

    /// One round trip; returns the time spent in the device.
    fn round_trip(&mut self, request: &Request) -> Duration {
        self.now_ms += 1;
        self.request_id = self.request_id.wrapping_add(1);
        self.sender
            .send(request.encode(self.request_id).unwrap())
            .unwrap();
        let SenderAction::Transmit(frame) = self.sender.poll(self.now_ms) else {
            panic!("the sender has a message to transmit");
        };
        let mut in_device = Duration::ZERO;
        for packet in frame.to_packets(Mtu::SIM).unwrap() {
            let start = Instant::now();
            self.core.receive(self.connection, packet, self.now_ms);
            in_device += start.elapsed();
        }
        let mut final_ack = None;
        for frame in self.frames() {
            match frame.body {
                Body::Ack { seq } => {
                    self.sender.on_ack(seq);
                }
                Body::Msg { seq, message } => {
                    if let Receipt::New { ack, .. } =
                        self.receiver.receive(frame.channel, seq, message)
                    {
                        final_ack = Some(ack);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let ack = final_ack.expect("the device answered");
        for packet in ack.to_packets(Mtu::SIM).unwrap() {
            let start = Instant::now();
            self.core.receive(self.connection, packet, self.now_ms);
            in_device += start.elapsed();
        }
        in_device
    }
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let device = rt.block_on(served_device());
    let mut group = c.benchmark_group("round_trip");
    for (name, request) in requests() {
        let exchange = rt.block_on(record(device.address, &request));
        println!(
            "{name}: {} request packet(s), {} answer packet(s) (ACK + MSG), 1 final ACK",
            exchange.request.len(),
            exchange.answer.len()
        );
        let mut session = rt.block_on(async {
            Session::open(Box::new(
                SimTransport::connect(device.address).await.unwrap(),
            ))
            .await
            .unwrap()
        });
        group.bench_function(format!("companion/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        session.request(&request).await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        let mut echo = rt.block_on(echo_client(&exchange, false));
        group.bench_function(format!("tcp_echo/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        echo_round_trip(&mut echo, &exchange).await;
                    }
                    start.elapsed()
                })
            })
        });
        let mut adapter_echo = rt.block_on(echo_client(&exchange, true));
        group.bench_function(format!("tcp_echo_adapter_shaped/{name}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        echo_round_trip(&mut adapter_echo, &exchange).await;
                    }
                    start.elapsed()
                })
            })
        });
        let mut host = CoreHost::new();
        group.bench_function(format!("device_core/{name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| host.round_trip(&request)).sum())
        });

        // Percentiles of single round trips (criterion reports means of batches). The four
        // kinds take turns in runs of `RUN` round trips, so load from other work on a shared
        // machine falls on all of them alike while each run keeps its threads as warm as
        // criterion's loops do (alternating single round trips parks and wakes the workers
        // differently for each kind, which measures the turn-taking).
        const SAMPLES: usize = 5_000;
        const RUN: usize = 100;
        let [mut companion, mut echoed, mut adapter_echoed, mut core] =
            std::array::from_fn(|_| Vec::with_capacity(SAMPLES));
        rt.block_on(async {
            for _ in 0..SAMPLES / RUN {
                for _ in 0..RUN {
                    let start = Instant::now();
                    session.request(&request).await.unwrap();
                    companion.push(start.elapsed());
                }
                for _ in 0..RUN {
                    let start = Instant::now();
                    echo_round_trip(&mut echo, &exchange).await;
                    echoed.push(start.elapsed());
                }
                for _ in 0..RUN {
                    let start = Instant::now();
                    echo_round_trip(&mut adapter_echo, &exchange).await;
                    adapter_echoed.push(start.elapsed());
                }
                for _ in 0..RUN {
                    core.push(host.round_trip(&request));
                }
            }
        });
        let companion = report(&format!("companion/{name}"), companion);
        let echoed = report(&format!("tcp_echo/{name}"), echoed);
        report(&format!("tcp_echo_adapter_shaped/{name}"), adapter_echoed);
        let core = report(&format!("device_core/{name}"), core);
        println!(
            "{name}: p50 ratio to tcp_echo: companion {:.2}x, companion without the device's \
             own work {:.2}x (goal <= 1.5x)",
            companion.as_secs_f64() / echoed.as_secs_f64(),
            companion.saturating_sub(core).as_secs_f64() / echoed.as_secs_f64(),
        );
    }
    group.finish();
}

/// Prints p50 and p99; returns p50.
fn report(what: &str, samples: Vec<Duration>) -> Duration {
    let trips = samples.len();
    let (p50, p99) = percentiles::p50_p99(samples).unwrap_or_default();
    println!(
        "{what}: p50 {:.1} µs, p99 {:.1} µs over {trips} round trips",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
    );
    p50
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
