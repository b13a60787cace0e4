//! Throughput of the device protocol for a typical payment message: encode + packetize on the
//! sending side, reassemble + decode on the receiving side, at the USB/sim MTU (64) and a
//! typical BLE MTU (244). Figures: docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use firmware_protocol::link::{
    Body, ChannelId, Frame, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use firmware_protocol::message::Message;
use serde_json::Value;

/// The golden ApprovePayment request: a full canonical payment with payee name and reference.
fn payment_message() -> Message {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/messages.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vector = document["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "ApprovePayment")
        .expect("golden ApprovePayment");
    Message::decode(&hex::decode(vector["hex"].as_str().unwrap()).unwrap()).unwrap()
}

fn protocol(c: &mut Criterion) {
    let message = payment_message();
    let channel = ChannelId(0x1A2B_3C4D);
    let encoded_len = message.encode().unwrap().len();
    let mut group = c.benchmark_group("payment_message");
    group.throughput(Throughput::Bytes(encoded_len as u64));
    for mtu in [Mtu::USB, Mtu::BLE_TYPICAL] {
        group.bench_with_input(
            BenchmarkId::new("encode_packetize", mtu.get()),
            &mtu,
            |b, &mtu| {
                b.iter(|| {
                    let bytes = black_box(&message).encode().unwrap();
                    Frame::new(
                        channel,
                        Body::Msg {
                            seq: 0,
                            message: bytes,
                        },
                    )
                    .to_packets(mtu)
                    .unwrap()
                })
            },
        );
        let packets = Frame::new(
            channel,
            Body::Msg {
                seq: 0,
                message: message.encode().unwrap(),
            },
        )
        .to_packets(mtu)
        .unwrap();
        group.bench_with_input(
            BenchmarkId::new("reassemble_decode", mtu.get()),
            &packets,
            |b, packets| {
                let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, Role::Device));
                reassembler.open_channel(channel).unwrap();
                b.iter(|| {
                    let mut decoded = None;
                    for packet in packets {
                        if let ReassemblyEvent::Complete(Frame {
                            body: Body::Msg { message, .. },
                            ..
                        }) = reassembler.push(packet, 0)
                        {
                            decoded = Some(Message::decode(&message).unwrap());
                        }
                    }
                    decoded.expect("a complete message")
                })
            },
        );
    }
    group.finish();
    println!("payment message: {encoded_len} bytes encoded");
}

criterion_group!(benches, protocol);
criterion_main!(benches);
