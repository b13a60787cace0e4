//! A simulated device as the adapters share it: the core, its virtual hardware, its link
//! engine and the faults to inject, behind one lock; and [`SimHandle`], the control actions
//! (keys, tamper, clock, faults, display, indicator, event log) for the HTTP control API, the
//! scenario runner and in-process Rust tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use firmware_protocol::link::Mtu;
use firmware_protocol::message::Indicator;
use rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::device::{Device, Snapshot};
use crate::hardware::{Event, EventKind, Hardware, IndicatorChange, KeyPress, VirtualHardware};
use crate::link::{ConnectionId, Destination, LinkEngine, Outgoing};

/// Which packets a fault applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Device to host (answers, ACKs, keepalives).
    #[default]
    Out,
    /// Host to device.
    In,
    /// Both.
    Both,
}

impl Direction {
    fn includes(self, outbound: bool) -> bool {
        match self {
            Direction::Out => outbound,
            Direction::In => !outbound,
            Direction::Both => true,
        }
    }
}

/// Faults to inject on the link (all off by default). Packet counts start when the faults
/// are set; "nth" counts packets in the fault's direction, 1-based.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Hold every device-to-host packet this long before sending it.
    pub delay_ms: u64,
    /// Drop the nth packet (once).
    pub drop_nth: Option<u64>,
    /// Drop every nth packet.
    pub drop_every: Option<u64>,
    /// Flip one byte of the nth packet (once); the CRC catches it.
    pub corrupt_nth: Option<u64>,
    /// Flip one byte of every nth packet.
    pub corrupt_every: Option<u64>,
    /// Which packets drop/corrupt apply to.
    pub direction: Direction,
    /// Close every host connection after this many more packets (both directions).
    pub disconnect_after: Option<u64>,
    /// Answer the next this-many requests with ERROR CHANNEL_BUSY.
    pub busy_next: u32,
    /// The simulated user never acts: every prompt times out at once (UserTimeout).
    pub user_too_slow: bool,
}

/// What happens to one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketFate {
    /// Deliver it (possibly corrupted).
    Deliver(Vec<u8>),
    /// Lose it.
    Drop,
}

#[derive(Debug, Default)]
struct FaultCounters {
    matching: u64,
    total: u64,
}

/// One simulated device: core, hardware, link, faults, connected hosts.
pub struct SimCore {
    /// The device core.
    pub device: Device,
    /// Its virtual hardware.
    pub hw: VirtualHardware,
    /// Its link layer.
    pub link: LinkEngine,
    faults: Faults,
    counters: FaultCounters,
    connections: HashMap<ConnectionId, tokio::sync::mpsc::UnboundedSender<ConnectionCommand>>,
    next_connection: ConnectionId,
    /// The start-up measurement of the firmware the simulator runs (what a restart measures
    /// again, and what "genuine firmware" restores after a QA modification).
    firmware_hash: [u8; 32],
}

impl std::fmt::Debug for SimCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCore")
            .field("device", &self.device)
            .field("faults", &self.faults)
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

/// What the adapter's per-connection writer does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// Write this packet after waiting `delay_ms`.
    Packet {
        /// The bytes.
        packet: Vec<u8>,
        /// Injected delay.
        delay_ms: u64,
    },
    /// Close the connection (fault injection).
    Close,
}

impl SimCore {
    /// A simulated device on a link of `mtu`, running the firmware it was measured with
    /// ([`Device::measure_firmware`] before this call; by default the reference image).
    pub fn new(mut device: Device, mut hw: VirtualHardware, mtu: Mtu) -> Self {
        device.set_link_mtu(u16::try_from(mtu.get()).unwrap_or(u16::MAX));
        device.power_on(&mut hw);
        let link_seed = hw.rng().next_u64();
        Self {
            firmware_hash: device.measured_firmware_hash(),
            device,
            hw,
            link: LinkEngine::new(mtu, link_seed),
            faults: Faults::default(),
            counters: FaultCounters::default(),
            connections: HashMap::new(),
            next_connection: 1,
        }
    }

    /// Registers a host connection; packets for it go to `sender`.
    pub fn connect(
        &mut self,
        sender: tokio::sync::mpsc::UnboundedSender<ConnectionCommand>,
    ) -> ConnectionId {
        let id = self.next_connection;
        self.next_connection += 1;
        self.connections.insert(id, sender);
        self.hw.log(EventKind::Link {
            what: format!("host connection {id} opened"),
        });
        id
    }

    /// A host connection closed.
    pub fn disconnect(&mut self, connection: ConnectionId) {
        if self.connections.remove(&connection).is_some() {
            self.link
                .disconnected(connection, &mut self.device, &mut self.hw);
            self.hw.log(EventKind::Link {
                what: format!("host connection {connection} closed"),
            });
        }
    }

    /// Number of connected hosts.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// The faults in force.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the faults; packet counts restart.
    pub fn set_faults(&mut self, faults: Faults) {
        self.link.answer_busy(faults.busy_next);
        self.faults = faults;
        self.counters = FaultCounters::default();
        self.hw.log(EventKind::Link {
            what: "faults changed".into(),
        });
    }

    /// Decides the fate of one packet under the faults (and counts it).
    pub fn fault(&mut self, packet: Vec<u8>, outbound: bool) -> PacketFate {
        self.counters.total += 1;
        if let Some(limit) = self.faults.disconnect_after
            && self.counters.total > limit
        {
            self.faults.disconnect_after = None;
            self.hw.log(EventKind::Link {
                what: "fault: disconnecting every host".into(),
            });
            for sender in self.connections.values() {
                let _ = sender.send(ConnectionCommand::Close);
            }
            return PacketFate::Drop;
        }
        if !self.faults.direction.includes(outbound) {
            return PacketFate::Deliver(packet);
        }
        self.counters.matching += 1;
        let n = self.counters.matching;
        let hits = |once: Option<u64>, every: Option<u64>| {
            once == Some(n) || every.is_some_and(|every| every > 0 && n.is_multiple_of(every))
        };
        if hits(self.faults.drop_nth, self.faults.drop_every) {
            self.hw.log(EventKind::Link {
                what: format!("fault: dropped packet {n}"),
            });
            return PacketFate::Drop;
        }
        if hits(self.faults.corrupt_nth, self.faults.corrupt_every) {
            let mut packet = packet;
            // Byte 8 is in the payload or CRC of any init packet; flipping it breaks the CRC.
            if let Some(byte) = packet.get_mut(8) {
                *byte ^= 0x5A;
            }
            self.hw.log(EventKind::Link {
                what: format!("fault: corrupted packet {n}"),
            });
            return PacketFate::Deliver(packet);
        }
        PacketFate::Deliver(packet)
    }

    /// Sends the engine's output through the faults to the connections.
    pub fn dispatch(&mut self, outgoing: Vec<Outgoing>) {
        for Outgoing { to, packet } in outgoing {
            let packet = match self.fault(packet, true) {
                PacketFate::Deliver(packet) => packet,
                PacketFate::Drop => continue,
            };
            let delay_ms = self.faults.delay_ms;
            let command = ConnectionCommand::Packet { packet, delay_ms };
            match to {
                Destination::All => {
                    for sender in self.connections.values() {
                        let _ = sender.send(command.clone());
                    }
                }
                Destination::Connection(id) => {
                    if let Some(sender) = self.connections.get(&id) {
                        let _ = sender.send(command);
                    }
                }
            }
        }
    }

    /// A packet from a host.
    pub fn receive(&mut self, connection: ConnectionId, packet: Vec<u8>, now_ms: u64) {
        let packet = match self.fault(packet, false) {
            PacketFate::Deliver(packet) => packet,
            PacketFate::Drop => return,
        };
        let out = self
            .link
            .receive(connection, &packet, now_ms, &mut self.device, &mut self.hw);
        self.after_core();
        self.dispatch(out);
    }

    /// Time passes.
    pub fn tick(&mut self, now_ms: u64) {
        self.after_core();
        let out = self.link.tick(now_ms, &mut self.device, &mut self.hw);
        self.dispatch(out);
    }

    fn after_core(&mut self) {
        if self.faults.user_too_slow && self.device.pending_request_id().is_some() {
            self.device.expire_user_prompt();
        }
    }
}

/// What the control API shows of a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// The core's public state.
    #[serde(flatten)]
    pub state: Snapshot,
    /// The display lines.
    pub display: Vec<String>,
    /// Hosts connected over the link.
    pub connections: usize,
    /// The faults in force.
    pub faults: Faults,
}

/// In-process control of one simulated device (what the HTTP control API does, for tests).
#[derive(Clone, Debug)]
pub struct SimHandle {
    core: Arc<Mutex<SimCore>>,
    /// The keypad interrupt: raised by every key press so the adapter runs the device's poll
    /// at once, as a real keypad's interrupt wakes the firmware, instead of at its next tick.
    keypad_interrupt: Arc<Notify>,
    /// Bumped whenever the adapter let the core run (a packet, a tick), so a scripted user can
    /// wait for the device to change instead of polling it on a timer.
    activity: Arc<watch::Sender<()>>,
    /// Link time zero: every adapter of the device (sim link, ticker, USB gadget, BLE) reads
    /// the link clock here. Clocks of their own, started seconds apart (BlueZ set-up under
    /// emulation), made the engine see packets from the past: a partial message expired
    /// at the next tick and retransmission timers fired at once.
    epoch: std::time::Instant,
}

impl SimHandle {
    /// Wraps a core.
    pub fn new(core: SimCore) -> Self {
        Self {
            core: Arc::new(Mutex::new(core)),
            keypad_interrupt: Arc::new(Notify::new()),
            activity: Arc::new(watch::channel(()).0),
            epoch: std::time::Instant::now(),
        }
    }

    /// Link time: milliseconds since the handle was made, the same for every adapter.
    pub fn link_now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A packet from a host (see [`SimCore::receive`]); wakes [`SimHandle::activity`] waiters.
    pub fn receive(&self, connection: ConnectionId, packet: Vec<u8>, now_ms: u64) {
        self.lock().receive(connection, packet, now_ms);
        self.activity.send_replace(());
    }

    /// Time passes (see [`SimCore::tick`]); wakes [`SimHandle::activity`] waiters.
    pub fn tick(&self, now_ms: u64) {
        self.lock().tick(now_ms);
        self.activity.send_replace(());
    }

    /// Changes each time the core ran through [`SimHandle::receive`] or [`SimHandle::tick`]
    /// (it may have shown a prompt, consumed keys or answered): `changed().await` instead of
    /// polling [`SimHandle::view`] on a timer. Changes since the receiver was made count.
    pub fn activity(&self) -> watch::Receiver<()> {
        self.activity.subscribe()
    }

    /// Resolves when keys were pressed since the adapter last waited here (a press while
    /// nobody waits is kept, not lost). The adapter then ticks the core so the device reads
    /// the keys at once; without it they wait for the next periodic tick.
    pub async fn keys_pressed(&self) {
        self.keypad_interrupt.notified().await;
    }

    /// The locked core (adapters and tests that need the device itself).
    pub fn lock(&self) -> MutexGuard<'_, SimCore> {
        // A panic while holding the lock leaves the data usable: take it anyway.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Presses keys; the device reads them at its next poll, which the keypad interrupt
    /// ([`SimHandle::keys_pressed`]) lets the adapter run at once. With no prompt on the
    /// screen the device discards them at once; a scripted user that means a given prompt
    /// uses [`SimHandle::press_for`].
    pub fn press(&self, keys: &[KeyPress]) {
        {
            let mut core = self.lock();
            core.hw.press(keys.iter().copied());
            core.tick_without_link();
        }
        self.keypad_interrupt.notify_one();
    }

    /// Presses keys for the prompt `prompt_id` (the one the scripted user saw, from
    /// [`crate::device::Snapshot::prompt_id`]); if that prompt is no longer on the screen the
    /// keys are not pressed.
    pub fn press_for(&self, prompt_id: u64, keys: &[KeyPress]) -> Result<(), ControlError> {
        {
            let mut core = self.lock();
            if core.device.prompt_id() != Some(prompt_id) {
                return Err(ControlError::PromptGone(prompt_id));
            }
            core.hw.press(keys.iter().copied());
        }
        self.keypad_interrupt.notify_one();
        Ok(())
    }

    /// Types `pin` and presses Enter.
    pub fn type_pin(&self, pin: &str) -> Result<(), ControlError> {
        let mut keys = KeyPress::digits(pin).ok_or(ControlError::NotDigits)?;
        keys.push(KeyPress::Enter);
        self.press(&keys);
        Ok(())
    }

    /// Presses Enter (confirm).
    pub fn confirm(&self) {
        self.press(&[KeyPress::Enter]);
    }

    /// Presses Cancel on the keypad.
    pub fn cancel(&self) {
        self.press(&[KeyPress::Cancel]);
    }

    /// Opens (trips) or closes the tamper switch.
    pub fn set_tamper(&self, open: bool) {
        let mut core = self.lock();
        core.hw.set_tamper_switch(open);
        core.tick_without_link();
    }

    /// Moves the device clock forward.
    pub fn advance_clock(&self, ms: u64) {
        let mut core = self.lock();
        core.hw.advance_clock(ms);
        core.tick_without_link();
    }

    /// Puts the device's secure store on another board (QA: a cloned or moved store); the
    /// activation record no longer matches at the next payment.
    pub fn set_board_id(&self, board_id: &[u8]) {
        self.lock().hw.set_board_id(board_id.to_vec());
    }

    /// The device's own settings menu: its display language (kept in its secure store).
    pub fn set_display_language(
        &self,
        language: crate::device::Language,
    ) -> Result<(), ControlError> {
        let mut core = self.lock();
        let SimCore { device, hw, .. } = &mut *core;
        device
            .set_display_language(language, hw)
            .map_err(|e| ControlError::Store(e.to_string()))
    }

    /// A power cycle: the device is off for `off_ms` (its real-time clock runs on), then
    /// restarts from its secure store: volatile state (session keys, a pending payment or
    /// prompt) is gone, and the T1 power-off rule runs at power-on.
    pub fn power_cycle(&self, off_ms: u64) -> Result<(), ControlError> {
        let mut core = self.lock();
        let stored = core.device.stored_state();
        let mut device =
            Device::restore(&stored).map_err(|e| ControlError::Restart(e.to_string()))?;
        core.hw.advance_clock(off_ms);
        // The same firmware image starts again and measures the same.
        device.set_measured_firmware_hash(core.firmware_hash);
        device.set_link_mtu(u16::try_from(core.link.mtu().get()).unwrap_or(u16::MAX));
        device.power_on(&mut core.hw);
        core.device = device;
        Ok(())
    }

    /// Sets the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().set_faults(faults);
    }

    /// Simulates modified firmware (`image` measured at start-up) or, with `None`, the
    /// genuine image again.
    pub fn set_firmware(&self, image: Option<&[u8]>) {
        let mut core = self.lock();
        match image {
            Some(image) => core.device.measure_firmware(image),
            None => {
                let genuine = core.firmware_hash;
                core.device.set_measured_firmware_hash(genuine);
            }
        }
    }

    /// Display lines.
    pub fn display(&self) -> Vec<String> {
        self.lock().hw.display().to_vec()
    }

    /// The indicator now.
    pub fn indicator(&self) -> Indicator {
        self.lock().hw.indicator()
    }

    /// Every indicator change.
    pub fn indicator_history(&self) -> Vec<IndicatorChange> {
        self.lock().hw.indicator_history().to_vec()
    }

    /// The event log (from index `since`).
    pub fn events(&self, since: usize) -> Vec<Event> {
        self.lock()
            .hw
            .events()
            .iter()
            .skip(since)
            .cloned()
            .collect()
    }

    /// State, display, connections and faults.
    pub fn view(&self) -> DeviceView {
        let core = self.lock();
        DeviceView {
            state: core.device.snapshot(),
            display: core.hw.display().to_vec(),
            connections: core.connections.len(),
            faults: core.faults.clone(),
        }
    }
}

impl SimCore {
    /// Lets the core react to a control action at once (a tamper trip wipes keys now, not at
    /// the next tick); link output waits for the next tick.
    fn tick_without_link(&mut self) {
        // A poll answer for a pending request is kept by re-polling from the link tick: the
        // key queue is only drained there, so nothing is lost here. With no request pending
        // the poll discards the keys just pressed (no prompt is up).
        if self.device.pending_request_id().is_none() {
            let _ = self.device.poll(&mut self.hw);
        }
    }
}

/// Why a control action was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    /// A PIN must be decimal digits.
    #[error("a PIN is decimal digits only")]
    NotDigits,
    /// No device with that index.
    #[error("no device {0}")]
    NoDevice(usize),
    /// The prompt the keys were meant for is no longer on the screen.
    #[error("prompt {0} is no longer on the screen")]
    PromptGone(u64),
    /// A key name not in 0-9, enter, cancel, clear.
    #[error("unknown key {0:?} (use 0-9, enter, cancel, clear)")]
    UnknownKey(String),
    /// The device did not come back from its secure store.
    #[error("the device did not restart: {0}")]
    Restart(String),
    /// The secure store did not take a setting.
    #[error("the device did not store the setting: {0}")]
    Store(String),
}

/// Parses a key name: `0`..`9`, `enter`/`ok`, `cancel`/`x`, `clear`/`back`.
pub fn parse_key(name: &str) -> Result<KeyPress, ControlError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "enter" | "ok" | "confirm" => Ok(KeyPress::Enter),
        "cancel" | "x" => Ok(KeyPress::Cancel),
        "clear" | "back" => Ok(KeyPress::Clear),
        digit if digit.len() == 1 && digit.as_bytes()[0].is_ascii_digit() => {
            Ok(KeyPress::Digit(digit.as_bytes()[0] - b'0'))
        }
        other => Err(ControlError::UnknownKey(other.to_string())),
    }
}
