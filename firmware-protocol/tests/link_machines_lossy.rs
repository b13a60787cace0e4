//! Both link machines over a seeded lossy link on one fake clock, with the thinnest possible
//! drivers: whatever the losses, every request reaches the device's message layer in order
//! (a request resent after a failure may arrive twice in a row, never out of order) and every
//! answer reaches the host, and the machines never need a timer from the driver.

// Test helpers fail loudly on broken fixtures; that is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use firmware_protocol::link::{
    Capabilities, DeviceEvent, DeviceLink, DeviceLinkConfig, HostEvent, HostLink, HostLinkConfig,
    KeepaliveStatus, LinkError, Mtu,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const REQUESTS: u8 = 8;

/// Returns the simulated time it took.
fn run(seed: u64, loss_percent: u32, mtu: Mtu, slow: bool) -> u64 {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut lost = move || rng.next_u32() % 100 < loss_percent;
    let mut host = HostLink::new(HostLinkConfig::new(mtu), seed);
    let mut device = DeviceLink::new(DeviceLinkConfig::new(mtu, Capabilities::KEYPAD), !seed);
    let mut now = 0u64;
    let mut next = 0u8;
    let mut delivered: Vec<u8> = Vec::new();
    let mut answers: Vec<u8> = Vec::new();
    let mut working_until: Option<(u64, Vec<u8>)> = None;
    host.open(now);
    while answers.len() < usize::from(REQUESTS) {
        assert!(now < 600_000, "no progress after 10 simulated minutes");
        while let Some(packet) = host.poll_transmit() {
            if !lost() {
                device.handle_packet(now, 1, &packet);
            }
        }
        while let Some(event) = device.poll_event() {
            match event {
                DeviceEvent::Request { message, .. } => {
                    let k = message[0];
                    if delivered.last() != Some(&k) {
                        assert_eq!(usize::from(k), delivered.len(), "requests in order");
                        delivered.push(k);
                    }
                    let answer = vec![k, 0xAA];
                    if slow {
                        // The user takes 700 ms: keepalives carry the wait.
                        device.set_progress(now, KeepaliveStatus::AwaitingUser);
                        working_until = Some((now + 700, answer));
                    } else {
                        answer_or_drop(&mut device, now, answer);
                    }
                }
                DeviceEvent::Aborted { .. } => working_until = None,
                DeviceEvent::Wink { .. } => {}
            }
        }
        while let Some(transmit) = device.poll_transmit() {
            if !lost() {
                host.handle_packet(now, &transmit.packet);
            }
        }
        let mut progressed = false;
        while let Some(event) = host.poll_event() {
            progressed = true;
            match event {
                HostEvent::Answer(answer) => {
                    assert_eq!(answer, vec![next, 0xAA], "the answer to this request");
                    answers.push(next);
                    next += 1;
                }
                // A failed exchange (no answer in time: the device may have given up on
                // delivering it) is followed by a resynchronisation, as the session does.
                HostEvent::InitFailed(_) | HostEvent::Failed(_) => host.open(now),
                HostEvent::Ready { .. } | HostEvent::Progress(_) => {}
            }
        }
        if host.is_ready() {
            host.send(now, vec![next]).unwrap();
            continue;
        }
        if progressed {
            continue;
        }
        let due = [
            host.poll_timeout(),
            device.poll_timeout(),
            working_until.as_ref().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("a machine with nothing to wait for would hang its driver");
        now = now.max(due);
        if let Some((t, _)) = &working_until
            && *t <= now
            && let Some((_, answer)) = working_until.take()
        {
            answer_or_drop(&mut device, now, answer);
        }
        host.handle_timeout(now);
        device.handle_timeout(now);
    }
    assert_eq!(delivered, (0..REQUESTS).collect::<Vec<_>>());
    now
}

/// Answers, or drops the transaction as a device does when an earlier delivery on the
/// channel failed (every transmission of an answer lost: it then waits for the host's INIT).
fn answer_or_drop(device: &mut DeviceLink, now: u64, answer: Vec<u8>) {
    match device.answer(now, answer) {
        Ok(()) | Err(LinkError::SenderNeedsResync) => {}
        Err(other) => panic!("the device could not answer: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_request_and_answer_gets_through_a_lossy_link(
        seed in any::<u64>(),
        loss_percent in 0u32..35,
        mtu in prop::sample::select(vec![Mtu::USB, Mtu::BLE_MIN, Mtu::BLE_TYPICAL]),
        slow in any::<bool>(),
    ) {
        run(seed, loss_percent, mtu, slow);
    }
}

#[test]
fn a_clean_link_needs_no_timer_at_all() {
    assert_eq!(run(1, 0, Mtu::USB, false), 0);
}
