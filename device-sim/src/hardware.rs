//! The device's hardware as the core sees it, and a virtual implementation of it.
//!
//! The core ([`crate::device::Device`]) never does I/O, reads a clock or draws from a global
//! RNG: everything it needs from the outside world comes through [`Hardware`]. Tests and the
//! simulator use [`VirtualHardware`]: a seeded RNG, a clock that only moves when told to (or
//! follows the system clock plus an offset), a key queue, a text display, an indicator LED
//! with its history, a tamper switch and a secure store (memory or a file).

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use firmware_protocol::message::Indicator;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, SeedableRng};
use serde::Serialize;
use zeroize::Zeroizing;

/// One key of the device keypad.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPress {
    /// A digit key, 0..=9.
    Digit(u8),
    /// The green key: confirm, approve, end PIN entry.
    Enter,
    /// The red key: cancel the operation on the screen.
    Cancel,
    /// The yellow key: erase the last digit.
    Clear,
}

impl KeyPress {
    /// The keys that type `digits` ("1234" -> 1, 2, 3, 4); `None` if a character is not a
    /// decimal digit.
    pub fn digits(digits: &str) -> Option<Vec<KeyPress>> {
        digits
            .bytes()
            .map(|b| b.is_ascii_digit().then_some(KeyPress::Digit(b - b'0')))
            .collect()
    }

    /// What the event log and control API may say about the key: never which digit.
    pub fn public_name(self) -> &'static str {
        match self {
            KeyPress::Digit(_) => "digit",
            KeyPress::Enter => "enter",
            KeyPress::Cancel => "cancel",
            KeyPress::Clear => "clear",
        }
    }
}

impl fmt::Debug for KeyPress {
    /// Digits are not shown: a key press log of a PIN entry is the PIN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.public_name())
    }
}

/// Something the device did or noticed, for the event log. Carries no secret: no PIN digit,
/// no key, no pairing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A request arrived (its message name and request id).
    Request {
        /// Message name as PROTOCOL.md spells it.
        name: String,
        /// Header request id.
        request_id: u32,
    },
    /// A request was answered.
    Answer {
        /// Response name (`Error` for refusals).
        name: String,
        /// Header request id.
        request_id: u32,
        /// Status name when the answer is an `Error`.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
    /// A keypad key was pressed (digits are reported as `digit` only).
    Key {
        /// `digit`, `enter`, `cancel` or `clear`.
        key: String,
    },
    /// Keys pressed while no prompt was on the screen (or before the one now shown was)
    /// were thrown away: they are never taken for a later prompt.
    KeysDiscarded {
        /// How many.
        count: usize,
    },
    /// The indicator changed.
    Indicator {
        /// `off`, `safe` or `danger`.
        indicator: String,
    },
    /// The tamper switch fired: keys and payment data wiped.
    Tamper,
    /// A key load, host MAC or bank MAC failed verification.
    Intrusion {
        /// What failed (a status name).
        what: String,
    },
    /// The lifecycle or lock state changed.
    State {
        /// What happened.
        change: String,
    },
    /// The link adapter did something worth knowing (fault injected, host connected).
    Link {
        /// What happened.
        what: String,
    },
}

/// An event with the device time it happened at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Device clock, milliseconds.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Why the secure store could not keep the state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Writing the state file failed.
    #[error("cannot write the state file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Everything the device core needs from the world.
pub trait Hardware {
    /// The device's random number generator.
    type Rng: CryptoRng;

    /// The RNG (nonces, PIN-block fill, pairing keys, channel ids).
    fn rng(&mut self) -> &mut Self::Rng;
    /// The device clock in milliseconds. Monotonic while the device runs; survives restarts
    /// (a real device has a battery-backed RTC), so the T2 inactivity lock works across them.
    fn now_ms(&self) -> u64;
    /// The next key pressed since the last call, if any.
    fn next_key(&mut self) -> Option<KeyPress>;
    /// Throws away every key pressed so far and not yet read: called when a prompt goes on
    /// the screen and while none is, so a key only ever counts for a prompt that was shown
    /// when it was pressed. Returns how many were dropped.
    fn discard_keys(&mut self) -> usize;
    /// Replaces what the display shows.
    fn show(&mut self, lines: Vec<String>);
    /// Sets the indicator LED (driven by the device only, never by a host).
    fn set_indicator(&mut self, indicator: Indicator);
    /// Whether the tamper switch is open (the case was opened). Reading it has no effect; the
    /// core makes the tamper state sticky itself.
    fn tamper_switch_open(&self) -> bool;
    /// Keeps `state` in the secure store, replacing what was there.
    fn persist(&mut self, state: &[u8]) -> Result<(), StoreError>;
    /// Adds an event to the device log.
    fn record(&mut self, event: EventKind);
    /// The board's hardware identifier (an MCU's factory-programmed unique id): read from
    /// the hardware, never from the secure store, so a store moved to another board shows a
    /// different one (the activation record of PROTOCOL.md §6.11 covers it).
    fn board_id(&self) -> Vec<u8>;
}

/// The board id of a [`VirtualHardware`] until [`VirtualHardware::set_board_id`] says
/// otherwise.
pub const DEFAULT_BOARD_ID: &[u8] = b"pinpad-sim virtual board";

/// Where [`VirtualHardware`] keeps the persisted state.
#[derive(Clone)]
pub enum SecureStore {
    /// In memory only (tests); read it back with [`VirtualHardware::stored_state`].
    Memory(Option<Zeroizing<Vec<u8>>>),
    /// A file, replaced atomically on every write.
    File(PathBuf),
}

impl fmt::Debug for SecureStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecureStore::Memory(state) => write!(
                f,
                "SecureStore::Memory({} bytes, <redacted>)",
                state.as_ref().map_or(0, |s| s.len())
            ),
            SecureStore::File(path) => write!(f, "SecureStore::File({})", path.display()),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash leaves either the old or the new state, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let temporary = folder.join(format!(".{file_name}.tmp"));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

/// The device clock of [`VirtualHardware`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Starts at the given time and moves only by [`VirtualHardware::advance_clock`].
    Manual(u64),
    /// System time (ms since the Unix epoch) plus an offset that
    /// [`VirtualHardware::advance_clock`] increases.
    System {
        /// Added to the system time.
        offset_ms: u64,
    },
}

/// When the indicator changed, and to what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IndicatorChange {
    /// Device clock, milliseconds.
    pub at_ms: u64,
    /// The new state.
    #[serde(serialize_with = "serialize_indicator")]
    pub indicator: Indicator,
}

/// `off`, `safe` (steady green) or `danger` (fast-blinking red): the protocol's own name
/// ([`Indicator::as_str`]).
pub fn indicator_name(indicator: Indicator) -> &'static str {
    indicator.as_str()
}

fn serialize_indicator<S: serde::Serializer>(
    indicator: &Indicator,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(indicator_name(*indicator))
}

/// Software hardware for tests and the simulator.
pub struct VirtualHardware {
    rng: ChaCha20Rng,
    clock: Clock,
    keys: VecDeque<KeyPress>,
    display: Vec<String>,
    indicator: Indicator,
    indicator_history: Vec<IndicatorChange>,
    tamper_open: bool,
    store: SecureStore,
    events: Vec<Event>,
    max_events: usize,
    board_id: Vec<u8>,
}

impl fmt::Debug for VirtualHardware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualHardware")
            .field("clock", &self.clock)
            .field("queued_keys", &self.keys.len())
            .field("display", &self.display)
            .field("indicator", &self.indicator)
            .field("tamper_open", &self.tamper_open)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl VirtualHardware {
    /// Hardware with a seeded RNG, a manual clock at `start_ms` and an in-memory store.
    pub fn new(seed: [u8; 32], start_ms: u64) -> Self {
        Self::with(seed, Clock::Manual(start_ms), SecureStore::Memory(None))
    }

    /// Hardware with the given RNG seed, clock and store.
    pub fn with(seed: [u8; 32], clock: Clock, store: SecureStore) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(seed),
            clock,
            keys: VecDeque::new(),
            display: Vec::new(),
            indicator: Indicator::Off,
            indicator_history: Vec::new(),
            tamper_open: false,
            store,
            events: Vec::new(),
            max_events: 10_000,
            board_id: DEFAULT_BOARD_ID.to_vec(),
        }
    }

    /// Puts the hardware on another board (QA: a secure store moved to another device).
    pub fn set_board_id(&mut self, board_id: Vec<u8>) {
        self.board_id = board_id;
    }

    /// Moves the clock forward.
    pub fn advance_clock(&mut self, ms: u64) {
        match &mut self.clock {
            Clock::Manual(now) => *now = now.saturating_add(ms),
            Clock::System { offset_ms } => *offset_ms = offset_ms.saturating_add(ms),
        }
    }

    /// Queues key presses, as if a person pressed them. The device reads them at its next
    /// poll if a prompt is on the screen, and discards them if none is.
    pub fn press(&mut self, keys: impl IntoIterator<Item = KeyPress>) {
        self.keys.extend(keys);
    }

    /// Keys queued but not yet read by the device.
    pub fn queued_keys(&self) -> usize {
        self.keys.len()
    }

    /// Drops queued keys (a scripted user gave up).
    pub fn clear_keys(&mut self) {
        self.keys.clear();
    }

    /// Opens (`true`) or closes the tamper switch.
    pub fn set_tamper_switch(&mut self, open: bool) {
        self.tamper_open = open;
    }

    /// What the display shows.
    pub fn display(&self) -> &[String] {
        &self.display
    }

    /// The indicator now.
    pub fn indicator(&self) -> Indicator {
        self.indicator
    }

    /// Every indicator change, oldest first.
    pub fn indicator_history(&self) -> &[IndicatorChange] {
        &self.indicator_history
    }

    /// The event log, oldest first (capped at the last 10,000 events).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Adds an event from outside the core (the link adapter).
    pub fn log(&mut self, kind: EventKind) {
        self.record(kind);
    }

    /// The last state written to an in-memory store.
    pub fn stored_state(&self) -> Option<&[u8]> {
        match &self.store {
            SecureStore::Memory(state) => state.as_ref().map(|s| s.as_slice()),
            SecureStore::File(_) => None,
        }
    }

    /// The clock setting (to carry the device time over a simulated restart).
    pub fn clock(&self) -> Clock {
        self.clock
    }
}

impl Hardware for VirtualHardware {
    type Rng = ChaCha20Rng;

    fn board_id(&self) -> Vec<u8> {
        self.board_id.clone()
    }

    fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    fn now_ms(&self) -> u64 {
        match self.clock {
            Clock::Manual(now) => now,
            Clock::System { offset_ms } => {
                let system = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or(0);
                system.saturating_add(offset_ms)
            }
        }
    }

    fn next_key(&mut self) -> Option<KeyPress> {
        let key = self.keys.pop_front()?;
        self.record(EventKind::Key {
            key: key.public_name().into(),
        });
        Some(key)
    }

    fn discard_keys(&mut self) -> usize {
        let count = self.keys.len();
        if count > 0 {
            self.keys.clear();
            self.record(EventKind::KeysDiscarded { count });
        }
        count
    }

    fn show(&mut self, lines: Vec<String>) {
        self.display = lines;
    }

    fn set_indicator(&mut self, indicator: Indicator) {
        if indicator != self.indicator {
            self.indicator = indicator;
            let at_ms = self.now_ms();
            self.indicator_history
                .push(IndicatorChange { at_ms, indicator });
            self.record(EventKind::Indicator {
                indicator: indicator_name(indicator).into(),
            });
        }
    }

    fn tamper_switch_open(&self) -> bool {
        self.tamper_open
    }

    fn persist(&mut self, state: &[u8]) -> Result<(), StoreError> {
        match &mut self.store {
            SecureStore::Memory(slot) => {
                *slot = Some(Zeroizing::new(state.to_vec()));
                Ok(())
            }
            SecureStore::File(path) => {
                write_atomically(path, state).map_err(|source| StoreError::Write {
                    path: path.clone(),
                    source,
                })
            }
        }
    }

    fn record(&mut self, kind: EventKind) {
        let at_ms = self.now_ms();
        if self.events.len() >= self.max_events {
            self.events.remove(0);
        }
        self.events.push(Event { at_ms, kind });
    }
}
