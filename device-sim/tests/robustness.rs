//! Property tests: whatever bytes or packets arrive, the device answers with a valid message
//! (or link frame) and never panics; whatever keys are pressed, no digit comes out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::device::Progress;
use device_sim::hardware::KeyPress;
use device_sim::link::LinkEngine;
use firmware_protocol::link::{Mtu, Reassembler, ReassemblerConfig, ReassemblyEvent, Role};
use firmware_protocol::message::{Request, Response, decode_response};
use proptest::prelude::*;
use support::{PIN, Rig};

fn key() -> impl Strategy<Value = KeyPress> {
    prop_oneof![
        (0u8..10).prop_map(KeyPress::Digit),
        Just(KeyPress::Enter),
        Just(KeyPress::Cancel),
        Just(KeyPress::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any request bytes get exactly one decodable response carrying the header's request id.
    #[test]
    fn any_request_bytes_get_a_valid_answer(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut rig = Rig::new();
        let outcome = rig.raw(&bytes);
        prop_assert!(!outcome.is_pending());
        prop_assert_eq!(outcome.answers.len(), 1);
        let (id, _) = decode_response(&outcome.answers[0]).unwrap();
        if bytes.len() >= 7 {
            prop_assert_eq!(id, u32::from_be_bytes([bytes[3], bytes[4], bytes[5], bytes[6]]));
        }
    }

    /// Mutated envelopes of a paired host never get past host verification unless intact.
    #[test]
    fn flipped_envelope_bytes_are_refused(position in 7usize..60, flip in 1u8..=255) {
        let mut rig = Rig::new();
        rig.initialise();
        rig.pair();
        let id = rig.id();
        let envelope = rig.envelope(id, &Request::GetStatus(Default::default()));
        let mut bytes = envelope.encode(id).unwrap();
        let position = position.min(bytes.len() - 1);
        bytes[position] ^= flip;
        let outcome = rig.raw(&bytes);
        let (_, answer) = decode_response(outcome.answer().unwrap()).unwrap();
        prop_assert!(matches!(answer, Response::Error(_)), "{:?}", answer);
    }

    /// Any key sequence during a payment: progress counts stay within the policy, and the
    /// display never shows a digit.
    #[test]
    fn any_keys_during_a_payment(keys in proptest::collection::vec(key(), 0..30)) {
        let mut rig = Rig::new();
        rig.initialise();
        rig.enrol(PIN);
        rig.pair();
        rig.login();
        let payment = rig.bank.payment(100, "TX-P");
        let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
        prop_assert!(outcome.is_pending());
        for key in keys {
            let outcome = rig.keys(&[key]);
            match outcome.progress {
                Some(Progress::PinEntry { entered, max }) => prop_assert!(entered <= max && max == 6),
                Some(other) => prop_assert!(false, "unexpected progress {:?}", other),
                None => {
                    let (_, answer) = decode_response(outcome.answer().unwrap()).unwrap();
                    prop_assert!(matches!(
                        answer,
                        Response::PaymentApproved(_) | Response::Error(_)
                    ));
                    break;
                }
            }
            let shown = rig.hw.display().join("\n");
            let pin_line = shown.lines().find(|l| l.starts_with("PIN:")).unwrap_or("");
            prop_assert!(!pin_line.chars().any(|c| c.is_ascii_digit()), "{}", pin_line);
        }
    }

    /// Any packets into the link engine: no panic, every packet out is one MTU, and every
    /// frame out reassembles on the host side.
    #[test]
    fn any_packets_into_the_link(packets in proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 64),
            // Mostly valid-looking headers: broadcast INIT or an arbitrary channel/command.
            (any::<u8>(), any::<u16>()).prop_map(|(cmd, len)| {
                let mut p = vec![0xFF, 0xFF, 0xFF, 0xFF, cmd | 0x80];
                p.extend_from_slice(&(len % 80).to_be_bytes());
                p.resize(64, 0);
                p
            }),
        ],
        1..20,
    )) {
        let mut rig = Rig::new();
        let mut link = LinkEngine::new(Mtu::SIM, 1);
        let mut host = Reassembler::new(ReassemblerConfig::new(Mtu::SIM, Role::Host));
        let mut now = 0;
        for packet in packets {
            now += 5;
            let out = link.receive(1, &packet, now, &mut rig.device, &mut rig.hw);
            let ticked = link.tick(now, &mut rig.device, &mut rig.hw);
            for outgoing in out.into_iter().chain(ticked) {
                prop_assert_eq!(outgoing.packet.len(), 64);
                if let ReassemblyEvent::Reject { error, .. } = host.push(&outgoing.packet, now) {
                    prop_assert!(false, "device sent a damaged packet: {:?}", error);
                }
            }
        }
    }
}
