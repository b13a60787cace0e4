//! Acknowledged delivery: the sender and receiver state machines on their own, then a host and
//! a device talking over a simulated lossy link (seeded drops, duplicates, reordering).

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::VecDeque;

use firmware_protocol::link::{
    Body, ChannelId, ErrorCode, Frame, LinkError, MAX_RETRANSMISSIONS, Mtu, RETRANSMIT_BASE_MS,
    RETRANSMIT_PER_PACKET_MS, Reassembler, ReassemblerConfig, ReassemblyEvent, Receipt,
    ReliableReceiver, ReliableSender, RetransmitPolicy, Role, SenderAction,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const CH: ChannelId = ChannelId(0x00C0_FFEE);

fn msg_frame(seq: u8, message: &[u8]) -> Frame {
    Frame::new(
        CH,
        Body::Msg {
            seq,
            message: message.to_vec(),
        },
    )
}

#[test]
fn sender_retransmits_on_schedule_then_gives_up() {
    let mtu = Mtu::USB;
    let mut sender = ReliableSender::new(CH, mtu);
    assert_eq!(sender.poll(0), SenderAction::Idle);
    assert_eq!(sender.send(b"hello".to_vec()), Ok(0));
    let timeout = RETRANSMIT_BASE_MS + RETRANSMIT_PER_PACKET_MS; // one packet
    let mut now = 1_000;
    for _ in 0..=MAX_RETRANSMISSIONS {
        assert_eq!(
            sender.poll(now),
            SenderAction::Transmit(msg_frame(0, b"hello"))
        );
        assert_eq!(
            sender.poll(now + timeout - 1),
            SenderAction::WaitUntil(now + timeout)
        );
        now += timeout;
    }
    assert_eq!(sender.poll(now), SenderAction::GaveUp { seq: 0 });
    assert_eq!(sender.poll(now), SenderAction::Idle);
    assert_eq!(sender.send(vec![1]), Err(LinkError::SenderNeedsResync));
    sender.reset();
    assert_eq!(sender.send(vec![1]), Ok(0));
}

#[test]
fn retransmission_timeout_grows_with_the_packet_count() {
    let mut sender = ReliableSender::new(CH, Mtu::MIN);
    sender.send(vec![0; 100]).expect("fits");
    assert!(matches!(sender.poll(0), SenderAction::Transmit(_)));
    let packets = Mtu::MIN.packet_count(101) as u64;
    assert_eq!(packets, 8);
    assert_eq!(
        sender.poll(1),
        SenderAction::WaitUntil(RETRANSMIT_BASE_MS + RETRANSMIT_PER_PACKET_MS * packets)
    );
}

#[test]
fn ack_completes_only_the_outstanding_message() {
    let mut sender = ReliableSender::new(CH, Mtu::USB);
    sender.send(vec![1]).expect("idle");
    assert_eq!(sender.send(vec![2]), Err(LinkError::SenderBusy { seq: 0 }));
    sender.poll(0);
    assert!(!sender.on_ack(1), "stale ACK");
    assert!(!sender.is_idle());
    assert!(sender.on_ack(0));
    assert!(sender.is_idle());
    assert!(!sender.on_ack(0), "duplicate ACK");
    assert_eq!(sender.next_seq(), 1);
    assert_eq!(sender.send(vec![2]), Ok(1));
}

#[test]
fn sequence_numbers_wrap_after_255() {
    let mut sender = ReliableSender::new(CH, Mtu::USB);
    let mut receiver = ReliableReceiver::new();
    for i in 0..300u32 {
        let seq = sender.send(vec![i as u8]).expect("idle");
        assert_eq!(seq, i as u8);
        let SenderAction::Transmit(Frame {
            body: Body::Msg { seq, message },
            ..
        }) = sender.poll(u64::from(i))
        else {
            panic!("transmit");
        };
        let Receipt::New { ack, .. } = receiver.receive(CH, seq, message) else {
            panic!("new message {i}");
        };
        let Body::Ack { seq } = ack.body else {
            panic!("ack")
        };
        assert!(sender.on_ack(seq));
    }
}

#[test]
fn nack_triggers_an_immediate_retransmission_within_the_budget() {
    let policy = RetransmitPolicy {
        base_timeout_ms: 200,
        per_packet_ms: 0,
        max_retransmissions: 1,
    };
    let mut sender = ReliableSender::with_policy(CH, Mtu::USB, policy);
    assert!(!sender.on_nack(), "nothing outstanding");
    sender.send(vec![7]).expect("idle");
    assert!(matches!(sender.poll(0), SenderAction::Transmit(_)));
    assert!(sender.on_nack());
    assert!(matches!(sender.poll(1), SenderAction::Transmit(_)));
    assert!(sender.on_nack());
    assert_eq!(sender.poll(2), SenderAction::GaveUp { seq: 0 });
}

#[test]
fn abandoned_message_gives_its_sequence_number_to_the_next() {
    let mut sender = ReliableSender::new(CH, Mtu::USB);
    sender.send(vec![1]).expect("idle");
    sender.poll(0);
    assert_eq!(sender.abandon(), Some(0));
    assert_eq!(sender.poll(1), SenderAction::Idle);
    assert_eq!(sender.send(vec![2]), Ok(0));
}

#[test]
fn sender_refuses_messages_larger_than_the_mtu_allows() {
    let mut sender = ReliableSender::new(CH, Mtu::MIN);
    assert_eq!(
        sender.send(vec![0; 1929]),
        Err(LinkError::MessageTooLarge {
            len: 1930,
            max: 1929
        })
    );
    assert_eq!(sender.send(vec![0; 1928]), Ok(0));
}

#[test]
fn receiver_delivers_once_and_reacknowledges_duplicates() {
    let mut receiver = ReliableReceiver::new();
    let ack = |seq| Frame::new(CH, Body::Ack { seq });
    assert_eq!(
        receiver.receive(CH, 0, vec![9]),
        Receipt::New {
            ack: ack(0),
            message: vec![9]
        }
    );
    assert_eq!(
        receiver.receive(CH, 0, vec![9]),
        Receipt::Duplicate { ack: ack(0) }
    );
    assert_eq!(receiver.receive(CH, 5, vec![9]), Receipt::Stale { seq: 5 });
    assert_eq!(
        receiver.receive(CH, 255, vec![9]),
        Receipt::Stale { seq: 255 }
    );
    assert_eq!(receiver.expected_seq(), 1);
    receiver.reset();
    assert!(matches!(
        receiver.receive(CH, 0, vec![]),
        Receipt::New { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// Simulated lossy link.

#[derive(Clone, Copy, Debug)]
struct Impairment {
    drop_permille: u32,
    duplicate_permille: u32,
    reorder_permille: u32,
}

const PERFECT: Impairment = Impairment {
    drop_permille: 0,
    duplicate_permille: 0,
    reorder_permille: 0,
};

/// One direction of the link: packets in flight with their arrival time.
struct Wire {
    in_flight: Vec<(u64, u64, Vec<u8>)>,
    order: u64,
    impairment: Impairment,
    sent: usize,
}

impl Wire {
    fn new(impairment: Impairment) -> Self {
        Wire {
            in_flight: Vec::new(),
            order: 0,
            impairment,
            sent: 0,
        }
    }

    fn send(&mut self, rng: &mut ChaCha20Rng, now: u64, packet: Vec<u8>) {
        self.sent += 1;
        fn chance(rng: &mut ChaCha20Rng, permille: u32) -> bool {
            rng.next_u32() % 1000 < permille
        }
        if chance(rng, self.impairment.drop_permille) {
            return;
        }
        let copies = if chance(rng, self.impairment.duplicate_permille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            // Normally 2 ms latency, in order; a reordered packet is held back 1..=30 ms.
            let delay = if chance(rng, self.impairment.reorder_permille) {
                3 + u64::from(rng.next_u32() % 30)
            } else {
                2
            };
            self.order += 1;
            self.in_flight
                .push((now + delay, self.order, packet.clone()));
        }
    }

    fn arrivals(&mut self, now: u64) -> Vec<Vec<u8>> {
        let mut due: Vec<(u64, u64, Vec<u8>)> = Vec::new();
        self.in_flight.retain(|item| {
            if item.0 <= now {
                due.push(item.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|(at, order, _)| (*at, *order));
        due.into_iter().map(|(_, _, packet)| packet).collect()
    }
}

struct Endpoint {
    mtu: Mtu,
    reassembler: Reassembler,
    sender: ReliableSender,
    receiver: ReliableReceiver,
    to_send: VecDeque<Vec<u8>>,
    delivered: Vec<Vec<u8>>,
    gave_up: Vec<u8>,
    transmissions: usize,
    outbox: Vec<Vec<u8>>,
}

impl Endpoint {
    fn new(role: Role, mtu: Mtu, policy: RetransmitPolicy) -> Self {
        let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, role));
        reassembler.open_channel(CH).expect("open");
        Endpoint {
            mtu,
            reassembler,
            sender: ReliableSender::with_policy(CH, mtu, policy),
            receiver: ReliableReceiver::new(),
            to_send: VecDeque::new(),
            delivered: Vec::new(),
            gave_up: Vec::new(),
            transmissions: 0,
            outbox: Vec::new(),
        }
    }

    fn emit(&mut self, frame: &Frame) {
        self.outbox
            .extend(frame.to_packets(self.mtu).expect("packetize"));
    }

    fn handle(&mut self, event: ReassemblyEvent) {
        if let Some(reply) = event.reply() {
            assert!(
                matches!(reply.body, Body::Nack { .. }),
                "only damage in transit is expected, got {event:?}"
            );
            self.emit(&reply);
            return;
        }
        let ReassemblyEvent::Complete(frame) = event else {
            return;
        };
        match frame.body {
            Body::Msg { seq, message } => {
                match self.receiver.receive(frame.channel, seq, message) {
                    Receipt::New { ack, message } => {
                        self.emit(&ack);
                        self.delivered.push(message);
                    }
                    Receipt::Duplicate { ack } => self.emit(&ack),
                    Receipt::Stale { .. } => {}
                }
            }
            Body::Ack { seq } => {
                self.sender.on_ack(seq);
            }
            Body::Nack { reason } => {
                assert!(reason.is_transient());
                self.sender.on_nack();
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }

    fn step(&mut self, now: u64, arrivals: Vec<Vec<u8>>) {
        for packet in arrivals {
            let event = self.reassembler.push(&packet, now);
            self.handle(event);
        }
        for event in self.reassembler.expire(now) {
            self.handle(event);
        }
        if self.sender.is_idle()
            && let Some(next) = self.to_send.pop_front()
        {
            self.sender.send(next).expect("idle sender accepts");
        }
        match self.sender.poll(now) {
            SenderAction::Transmit(frame) => {
                self.transmissions += 1;
                self.emit(&frame);
            }
            SenderAction::GaveUp { seq } => self.gave_up.push(seq),
            SenderAction::Idle | SenderAction::WaitUntil(_) => {}
        }
    }
}

struct Outcome {
    host_transmissions: usize,
    device_transmissions: usize,
    packets_sent: usize,
    finished_at: u64,
}

/// The host sends `requests`; the device answers each request it receives with a response
/// derived from it. Both directions use acknowledged delivery.
fn run(
    seed: u8,
    mtu: Mtu,
    impairment: Impairment,
    policy: RetransmitPolicy,
    requests: &[Vec<u8>],
) -> Outcome {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let mut host = Endpoint::new(Role::Host, mtu, policy);
    let mut device = Endpoint::new(Role::Device, mtu, policy);
    let mut to_device = Wire::new(impairment);
    let mut to_host = Wire::new(impairment);
    host.to_send.extend(requests.iter().cloned());
    let response = |request: &Vec<u8>| -> Vec<u8> { request.iter().rev().copied().collect() };

    let mut now = 0u64;
    while host.delivered.len() < requests.len() {
        assert!(now < 600_000, "simulation did not finish (seed {seed})");
        let for_host = to_host.arrivals(now);
        let for_device = to_device.arrivals(now);
        let before = device.delivered.len();
        device.step(now, for_device);
        for request in &device.delivered[before..] {
            device.to_send.push_back(response(request));
        }
        host.step(now, for_host);
        for packet in host.outbox.drain(..) {
            to_device.send(&mut rng, now, packet);
        }
        for packet in device.outbox.drain(..) {
            to_host.send(&mut rng, now, packet);
        }
        assert!(
            host.gave_up.is_empty() && device.gave_up.is_empty(),
            "gave up (seed {seed})"
        );
        now += 1;
    }
    assert_eq!(
        device.delivered, requests,
        "each request exactly once, in order"
    );
    let responses: Vec<Vec<u8>> = requests.iter().map(response).collect();
    assert_eq!(
        host.delivered, responses,
        "each response exactly once, in order"
    );
    Outcome {
        host_transmissions: host.transmissions,
        device_transmissions: device.transmissions,
        packets_sent: to_device.sent + to_host.sent,
        finished_at: now,
    }
}

fn requests(rng_seed: u8, count: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::from_seed([rng_seed.wrapping_add(100); 32]);
    (0..count)
        .map(|_| {
            let len = (rng.next_u32() as usize) % (max_len + 1);
            (0..len).map(|_| rng.next_u32() as u8).collect()
        })
        .collect()
}

#[test]
fn perfect_link_sends_each_message_once() {
    let reqs = requests(1, 30, 300);
    let outcome = run(1, Mtu::USB, PERFECT, RetransmitPolicy::default(), &reqs);
    assert_eq!(outcome.host_transmissions, reqs.len());
    assert_eq!(outcome.device_transmissions, reqs.len());
}

#[test]
fn usb_with_light_loss_delivers_everything_with_the_default_policy() {
    let impairment = Impairment {
        drop_permille: 20,
        duplicate_permille: 20,
        reorder_permille: 20,
    };
    for seed in 0..4 {
        let reqs = requests(seed, 40, 150);
        let outcome = run(
            seed,
            Mtu::USB,
            impairment,
            RetransmitPolicy::default(),
            &reqs,
        );
        assert!(outcome.host_transmissions >= reqs.len());
    }
}

#[test]
fn ble_with_heavy_loss_delivers_everything_exactly_once() {
    let impairment = Impairment {
        drop_permille: 80,
        duplicate_permille: 50,
        reorder_permille: 80,
    };
    let patient = RetransmitPolicy {
        max_retransmissions: 60,
        ..RetransmitPolicy::default()
    };
    for (seed, mtu) in [(10, Mtu::MIN), (11, Mtu::MIN), (12, Mtu::BLE_TYPICAL)] {
        let reqs = requests(seed, 40, 120);
        let outcome = run(seed, mtu, impairment, patient, &reqs);
        // The loss was real: some messages went more than once.
        assert!(
            outcome.host_transmissions + outcome.device_transmissions > 2 * reqs.len(),
            "seed {seed}: no retransmission happened"
        );
        assert!(outcome.packets_sent > 0 && outcome.finished_at > 0);
    }
}

#[test]
fn damaged_message_is_nacked_and_resent_before_the_timer() {
    // Corrupt the first transmission on the wire; the NACK makes the sender resend at once
    // rather than after its retransmission timeout.
    let mtu = Mtu::USB;
    let mut device = Reassembler::new(ReassemblerConfig::new(mtu, Role::Device));
    device.open_channel(CH).expect("open");
    let mut sender = ReliableSender::new(CH, mtu);
    sender.send(b"pay 12.00".to_vec()).expect("idle");
    let SenderAction::Transmit(frame) = sender.poll(0) else {
        panic!("transmit")
    };
    let mut packets = frame.to_packets(mtu).expect("packetize");
    packets[0][8] ^= 0xFF;
    let event = device.push(&packets[0], 2);
    let nack = event.reply().expect("reply");
    assert_eq!(
        nack.body,
        Body::Nack {
            reason: ErrorCode::CrcMismatch
        }
    );
    assert!(sender.on_nack());
    let SenderAction::Transmit(again) = sender.poll(4) else {
        panic!("immediate retransmission")
    };
    let event = device.push(&again.to_packets(mtu).expect("packetize")[0], 6);
    assert_eq!(event, ReassemblyEvent::Complete(msg_frame(0, b"pay 12.00")));
}
