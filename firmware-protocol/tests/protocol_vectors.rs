//! Link and message layers together: every golden message in a MSG frame, as the exact
//! packets at MTU 20, 64 and 244 (tests/vectors/message_packets.json, built by an independent
//! Python packetizer). Checked both ways: message -> packets, and packets -> message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use firmware_protocol::link::{
    Body, ChannelId, Frame, Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Role,
};
use firmware_protocol::message::Message;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/message_packets.json"
    );
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    document["vectors"].as_array().unwrap().clone()
}

fn hex_field(vector: &Value, field: &str) -> Vec<u8> {
    hex::decode(vector[field].as_str().unwrap()).unwrap()
}

#[test]
fn every_message_at_every_mtu_packetizes_to_the_golden_packets() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 40 * 3, "every golden message at three MTUs");
    for vector in &vectors {
        let mtu = Mtu::new(vector["mtu"].as_u64().unwrap() as usize).unwrap();
        let channel =
            ChannelId(u32::from_str_radix(vector["channel"].as_str().unwrap(), 16).unwrap());
        let message = Message::decode(&hex_field(vector, "message")).unwrap();
        let frame = Frame::new(
            channel,
            Body::Msg {
                seq: vector["sequence"].as_u64().unwrap() as u8,
                message: message.encode().unwrap(),
            },
        );
        let expected: Vec<Vec<u8>> = vector["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| hex::decode(p.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(
            frame.to_packets(mtu).unwrap(),
            expected,
            "{} at MTU {}",
            vector["name"],
            mtu.get()
        );
    }
}

#[test]
fn every_golden_packet_sequence_reassembles_to_its_message() {
    for vector in vectors() {
        let mtu = Mtu::new(vector["mtu"].as_u64().unwrap() as usize).unwrap();
        let channel =
            ChannelId(u32::from_str_radix(vector["channel"].as_str().unwrap(), 16).unwrap());
        // Requests travel to the device, responses to the host.
        let role = if vector["direction"] == "request" {
            Role::Device
        } else {
            Role::Host
        };
        let mut reassembler = Reassembler::new(ReassemblerConfig::new(mtu, role));
        reassembler.open_channel(channel).unwrap();
        let packets = vector["packets"].as_array().unwrap();
        let mut completed = None;
        for (index, packet) in packets.iter().enumerate() {
            let packet = hex::decode(packet.as_str().unwrap()).unwrap();
            match reassembler.push(&packet, index as u64) {
                ReassemblyEvent::Complete(frame) => completed = Some(frame),
                ReassemblyEvent::Pending => {}
                other => panic!("{}: unexpected {other:?}", vector["name"]),
            }
        }
        let frame = completed.unwrap_or_else(|| panic!("{} did not complete", vector["name"]));
        assert_eq!(frame.channel, channel);
        let Body::Msg { message, .. } = frame.body else {
            panic!("{}: not a MSG frame", vector["name"]);
        };
        assert_eq!(message, hex_field(&vector, "message"), "{}", vector["name"]);
        assert!(Message::decode(&message).is_ok(), "{}", vector["name"]);
    }
}

/// The envelope of §3.7 with the MAC of §4.2: a host signs with `HostSigner`, the device checks
/// with `HostVerifier` over exactly the bytes `HostVerified::mac_input` names, and a replay or
/// a changed inner request is refused.
#[test]
fn host_verified_envelope_is_checked_with_the_pairing_keys() {
    use firmware_protocol::crypto::host_auth::{HostAuthError, HostSigner, HostVerifier};
    use firmware_protocol::crypto::pairing::{DevicePairing, HostPairing};
    use firmware_protocol::message::{
        BankChallenge, HostVerified, MacTag, Nonce, Request, SessionId,
    };
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let host = HostPairing::start(&mut rng);
    let device = DevicePairing::respond(&mut rng, *host.public_key(), host.commitment());
    let (device_public, device_nonce, host_nonce) =
        (*device.public_key(), *device.nonce(), *host.nonce());
    let host_side = host.finish(&device_public, &device_nonce);
    let device_side = device.finish(&host_nonce).unwrap();

    let mut signer = HostSigner::new(host_side.host_id(), host_side.host_pairing_key());
    let mut verifier = HostVerifier::new();
    verifier
        .add_host(
            device_side.host_id(),
            device_side.host_pairing_key().clone(),
        )
        .unwrap();

    let inner = Request::BankChallenge(BankChallenge {
        session_id: SessionId([0x50; 16]),
        bank_nonce: Nonce([0xB0; 16]),
    });
    let inner_bytes = inner.encode(7).unwrap();
    let auth = signer.sign(&inner_bytes).unwrap();
    let envelope = HostVerified {
        host_id: auth.host_id,
        counter: auth.counter,
        inner: inner_bytes.clone(),
        mac: MacTag(auth.mac),
    };
    // What the message layer says is MACed is what the host MACed.
    let host_mac_key =
        firmware_protocol::crypto::host_auth::HostMacKey::derive(host_side.host_pairing_key());
    let recomputed =
        firmware_protocol::crypto::primitives::BlockCipher::new(host_mac_key.mac_key().material())
            .cmac(&envelope.mac_input().unwrap());
    assert_eq!(recomputed, auth.mac.to_vec());

    let host_id = auth.host_id;
    verifier
        .verify(&host_id, envelope.counter, &envelope.inner, &envelope.mac.0)
        .unwrap();
    assert_eq!(envelope.open(7).unwrap(), inner);
    assert!(matches!(
        verifier.verify(&host_id, envelope.counter, &envelope.inner, &envelope.mac.0),
        Err(HostAuthError::Replay { .. })
    ));
    let mut changed = inner_bytes;
    *changed.last_mut().unwrap() ^= 1;
    let next = signer.sign(&envelope.inner).unwrap();
    assert!(matches!(
        verifier.verify(&host_id, next.counter, &changed, &next.mac),
        Err(HostAuthError::BadMac)
    ));
}
