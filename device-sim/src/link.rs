//! The device's link layer around the core, still without I/O: a thin driver over
//! firmware-protocol's [`DeviceLink`] machine, which holds every link rule (PROTOCOL.md §2:
//! allocation, reassembly, acknowledged delivery, one transaction at a time, KEEPALIVE,
//! CANCEL). [`LinkEngine`] only routes between the machine and the core: a request event goes
//! to [`Device::handle`], the core's answer or progress back to the machine, an abort to
//! [`Device::abort`]. The adapters ([`crate::server`], USB, BLE) only move the packets.

use firmware_protocol::link::{
    AbortReason, Capabilities, ChannelId, DeviceEvent, DeviceLink, DeviceLinkConfig, ErrorCode,
    KeepaliveStatus, Mtu, PinProgress, RetransmitPolicy,
};

use crate::device::{Device, Outcome, Progress};
use crate::hardware::{EventKind, Hardware};

pub use firmware_protocol::link::{ConnectionId, Destination};

/// A packet to send (firmware-protocol's `Transmit`: a destination and one MTU of bytes).
pub type Outgoing = firmware_protocol::link::Transmit;

/// The device end of the link: the machine, and the faults injected on top of it.
#[derive(Debug)]
pub struct LinkEngine {
    link: DeviceLink,
    busy_answers: u32,
    /// Link time of the latest packet or tick, for answers the core gives outside of one.
    now_ms: u64,
}

fn keepalive_status(progress: Progress) -> KeepaliveStatus {
    match progress {
        Progress::Processing => KeepaliveStatus::Processing,
        Progress::AwaitingUser => KeepaliveStatus::AwaitingUser,
        Progress::PinEntry { entered, max } => match PinProgress::new(entered, max) {
            Ok(progress) => KeepaliveStatus::PinEntry(progress),
            Err(_) => KeepaliveStatus::AwaitingUser,
        },
    }
}

impl LinkEngine {
    /// A link of `mtu` with no channel open; `seed` (from the device RNG) picks channel ids.
    pub fn new(mtu: Mtu, seed: u64) -> Self {
        let capabilities = Capabilities::WINK
            .union(Capabilities::KEYPAD)
            .union(Capabilities::DISPLAY);
        Self {
            link: DeviceLink::new(DeviceLinkConfig::new(mtu, capabilities), seed),
            busy_answers: 0,
            now_ms: 0,
        }
    }

    /// The packet size.
    pub fn mtu(&self) -> Mtu {
        self.link.mtu()
    }

    /// How answers are retransmitted on channels opened from now on: the BLE adapter sets
    /// Bluetooth LE's policy (PROTOCOL.md §2.1.1) before any central connects.
    pub fn set_retransmit(&mut self, policy: RetransmitPolicy) {
        self.link.set_retransmit(policy);
    }

    /// Fault injection: answer the next `count` requests with ERROR CHANNEL_BUSY.
    pub fn answer_busy(&mut self, count: u32) {
        self.busy_answers = count;
    }

    /// Requests still to be answered BUSY.
    pub fn busy_answers_left(&self) -> u32 {
        self.busy_answers
    }

    /// The channel that owns the transaction in progress.
    pub fn transaction_owner(&self) -> Option<ChannelId> {
        self.link.transaction_owner()
    }

    /// A host connection went away: its channels close, its transaction is abandoned.
    pub fn disconnected<H: Hardware>(
        &mut self,
        connection: ConnectionId,
        device: &mut Device,
        hw: &mut H,
    ) {
        self.link.disconnected(connection);
        self.run_events(self.now_ms, device, hw);
    }

    /// One packet from `from`, received at link time `now_ms`.
    pub fn receive<H: Hardware>(
        &mut self,
        from: ConnectionId,
        packet: &[u8],
        now_ms: u64,
        device: &mut Device,
        hw: &mut H,
    ) -> Vec<Outgoing> {
        self.now_ms = now_ms;
        self.link.handle_packet(now_ms, from, packet);
        self.run_events(now_ms, device, hw);
        self.drain()
    }

    /// The passing of time: the core's poll (keys, tamper, clock), then the machine's timers
    /// (keepalives, retransmissions, reassembly timeouts).
    pub fn tick<H: Hardware>(
        &mut self,
        now_ms: u64,
        device: &mut Device,
        hw: &mut H,
    ) -> Vec<Outgoing> {
        self.now_ms = now_ms;
        let outcome = device.poll(hw);
        if self.link.is_processing() {
            self.route(outcome, now_ms);
        }
        self.link.handle_timeout(now_ms);
        self.run_events(now_ms, device, hw);
        self.drain()
    }

    fn run_events<H: Hardware>(&mut self, now_ms: u64, device: &mut Device, hw: &mut H) {
        while let Some(event) = self.link.poll_event() {
            match event {
                DeviceEvent::Request { message, .. } => {
                    if self.busy_answers > 0 {
                        self.busy_answers -= 1;
                        hw.record(EventKind::Link {
                            what: "fault: answered CHANNEL_BUSY".into(),
                        });
                        self.link.refuse(ErrorCode::ChannelBusy);
                        continue;
                    }
                    let outcome = device.handle(&message, hw);
                    self.route(outcome, now_ms);
                }
                DeviceEvent::Aborted { reason, .. } => {
                    device.abort(hw);
                    if reason == AbortReason::Cancelled {
                        tracing::debug!("request cancelled by the host");
                    }
                }
                DeviceEvent::Wink { .. } => hw.record(EventKind::Link {
                    what: "wink".into(),
                }),
            }
        }
    }

    /// What the core said: an answer becomes the transaction's MSG, progress its KEEPALIVE.
    fn route(&mut self, outcome: Outcome, now_ms: u64) {
        if let Some(answer) = outcome.answers.last() {
            if let Err(error) = self.link.answer(now_ms, answer.clone()) {
                tracing::warn!(%error, "the answer does not fit the link; transaction dropped");
            }
            return;
        }
        if let Some(progress) = outcome.progress {
            self.link.set_progress(now_ms, keepalive_status(progress));
        }
    }

    fn drain(&mut self) -> Vec<Outgoing> {
        std::iter::from_fn(|| self.link.poll_transmit()).collect()
    }
}
