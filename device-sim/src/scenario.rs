//! Scenario files (TOML): a script per device for one run of `pinpad-sim serve` — which PIN
//! to type, when to confirm, which faults to inject at which step.
//!
//! ```toml
//! [[device]]
//! index = 0                      # first device of --count N (default 0)
//!
//! [[device.step]]
//! on = "pin"                     # wait until the device asks for a PIN
//! after_ms = 300                 # then wait a little, like a person
//! pin = "1234"                   # type it and press Enter
//!
//! [[device.step]]
//! on = "pin"
//! digits = "12"                  # type two digits, no Enter
//!
//! [[device.step]]
//! on = "pin"
//! digits_entered = 2             # once two digits are in...
//! tamper = true                  # ...open the case: tamper mid-payment
//!
//! [[device]]
//! index = 1
//! [[device.step]]
//! on = "start"
//! faults = { drop_every = 3 }    # from the start, drop every third packet to the host
//! ```
//!
//! Triggers (`on`): `start` (at once), `pin` (a PIN prompt, optionally with at least
//! `digits_entered` digits typed), `confirm` (a confirmation prompt: pairing code or
//! out-of-band payment), `request:Name` (the device received that request, e.g.
//! `request:ApprovePayment`), `idle` (no prompt). A prompt answered by one step (`pin`,
//! `confirm`, `cancel`, or `keys` with enter or cancel) does not trigger the next step again.
//! As on a real PIN pad, keys count only for the prompt on the screen when they are pressed:
//! keys a step presses for a prompt that has gone are dropped, keys pressed with no prompt up
//! are discarded, and enrolment's "enter the same PIN again" is a new prompt (a step of its
//! own), so keys cannot be typed ahead of it. Actions run in this order:
//! `faults`, `firmware_modified`, `advance_clock_ms`, `digits`, `keys`, `pin`, `confirm`,
//! `cancel`, `tamper`.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::hardware::{EventKind, KeyPress};
use crate::sim::{Faults, SimHandle, parse_key};

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid scenario TOML.
    #[error("scenario: {0}")]
    Parse(String),
    /// A step is wrong.
    #[error("scenario device {device} step {step}: {reason}")]
    Step {
        /// Device index.
        device: usize,
        /// Step number, 1-based.
        step: usize,
        /// What is wrong.
        reason: String,
    },
    /// A script names a device that is not served.
    #[error("scenario names device {0}, but only {1} devices are served")]
    NoDevice(usize, usize),
}

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One script per device.
    #[serde(default)]
    pub device: Vec<DeviceScript>,
}

/// The steps for one device.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceScript {
    /// Which device (0-based index of `--count N`).
    #[serde(default)]
    pub index: usize,
    /// Steps, in order.
    #[serde(default)]
    pub step: Vec<Step>,
}

/// One step: wait for a trigger, then act.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What to wait for: `start`, `pin`, `confirm`, `idle` or `request:Name`.
    pub on: String,
    /// With `on = "pin"`: wait until at least this many digits are typed.
    pub digits_entered: Option<u8>,
    /// Wait this long after the trigger.
    #[serde(default)]
    pub after_ms: u64,
    /// Set these faults.
    pub faults: Option<Faults>,
    /// Simulate modified (`true`) or genuine firmware.
    pub firmware_modified: Option<bool>,
    /// Move the device clock forward.
    pub advance_clock_ms: Option<u64>,
    /// Type digits without Enter.
    pub digits: Option<String>,
    /// Press keys (`0`-`9`, `enter`, `cancel`, `clear`).
    pub keys: Option<Vec<String>>,
    /// Type a PIN and press Enter.
    pub pin: Option<String>,
    /// Press Enter.
    #[serde(default)]
    pub confirm: bool,
    /// Press Cancel.
    #[serde(default)]
    pub cancel: bool,
    /// Open (`true`) or close the tamper switch.
    pub tamper: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Trigger {
    Start,
    Pin(Option<u8>),
    Confirm,
    Idle,
    Request(String),
}

impl Step {
    fn trigger(&self) -> Result<Trigger, String> {
        match self.on.as_str() {
            "start" => Ok(Trigger::Start),
            "pin" => Ok(Trigger::Pin(self.digits_entered)),
            "confirm" => Ok(Trigger::Confirm),
            "idle" => Ok(Trigger::Idle),
            other => match other.strip_prefix("request:") {
                Some(name) if !name.is_empty() => Ok(Trigger::Request(name.to_string())),
                _ => Err(format!(
                    "unknown trigger {other:?} (start, pin, confirm, idle, request:Name)"
                )),
            },
        }
    }

    fn keys(&self) -> Result<Vec<KeyPress>, String> {
        let mut keys = Vec::new();
        if let Some(digits) = &self.digits {
            keys.extend(KeyPress::digits(digits).ok_or("digits must be 0-9")?);
        }
        if let Some(names) = &self.keys {
            for name in names {
                keys.push(parse_key(name).map_err(|e| e.to_string())?);
            }
        }
        if let Some(pin) = &self.pin {
            keys.extend(KeyPress::digits(pin).ok_or("pin must be 0-9")?);
            keys.push(KeyPress::Enter);
        }
        if self.confirm {
            keys.push(KeyPress::Enter);
        }
        if self.cancel {
            keys.push(KeyPress::Cancel);
        }
        Ok(keys)
    }

    /// Whether the step answers the prompt it waited for.
    fn answers_prompt(&self) -> bool {
        let ends = |k: &String| matches!(parse_key(k), Ok(KeyPress::Enter | KeyPress::Cancel));
        self.pin.is_some() || self.confirm || self.cancel || self.keys.iter().flatten().any(ends)
    }
}

impl Scenario {
    /// Parses scenario TOML and checks every step.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        for script in &scenario.device {
            for (n, step) in script.step.iter().enumerate() {
                let bad = |reason: String| ScenarioError::Step {
                    device: script.index,
                    step: n + 1,
                    reason,
                };
                step.trigger().map_err(bad)?;
                step.keys().map_err(bad)?;
            }
        }
        Ok(scenario)
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Runs every device script in the background (Tokio).
    pub fn spawn(
        self,
        devices: Vec<SimHandle>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, ScenarioError> {
        let mut tasks = Vec::new();
        for script in self.device {
            let handle = devices
                .get(script.index)
                .cloned()
                .ok_or(ScenarioError::NoDevice(script.index, devices.len()))?;
            tasks.push(tokio::spawn(run(handle, script)));
        }
        Ok(tasks)
    }
}

/// Runs one device's steps. Each step waits for its trigger on the device's activity signal
/// (no polling timer); keys for a prompt are pressed for that prompt only
/// ([`SimHandle::press_for`]): if it has gone by then (timed out, cancelled) they are dropped,
/// never taken by the next one.
async fn run(handle: SimHandle, script: DeviceScript) {
    let mut activity = handle.activity();
    let mut answered_prompt: Option<u64> = None;
    let mut events_seen = handle.events(0).len();
    for (n, step) in script.step.iter().enumerate() {
        let Ok(trigger) = step.trigger() else { return };
        loop {
            let (snapshot, queued) = {
                let core = handle.lock();
                (core.device.snapshot(), core.hw.queued_keys())
            };
            let prompt = snapshot.prompt_id;
            let fresh_prompt = prompt.is_some() && prompt != answered_prompt && queued == 0;
            let ready = match &trigger {
                Trigger::Start => true,
                Trigger::Idle => prompt.is_none(),
                Trigger::Confirm => fresh_prompt && snapshot.waiting_for == Some("confirm"),
                Trigger::Pin(digits) => {
                    fresh_prompt
                        && snapshot.waiting_for == Some("pin")
                        && digits.is_none_or(|d| snapshot.pin_digits_entered.unwrap_or(0) >= d)
                }
                Trigger::Request(name) => {
                    let events = handle.events(events_seen);
                    let found = events.iter().position(
                        |e| matches!(&e.kind, EventKind::Request { name: seen, .. } if seen == name),
                    );
                    if let Some(position) = found {
                        events_seen += position + 1;
                        true
                    } else {
                        events_seen += events.len();
                        false
                    }
                }
            };
            if ready {
                break;
            }
            if activity.changed().await.is_err() {
                return;
            }
        }
        if step.after_ms > 0 {
            tokio::time::sleep(Duration::from_millis(step.after_ms)).await;
        }
        let prompt = handle.lock().device.prompt_id();
        if let Some(faults) = &step.faults {
            handle.set_faults(faults.clone());
        }
        if let Some(modified) = step.firmware_modified {
            let patched: &[u8] = b"pinpad-sim firmware, modified by a scenario";
            handle.set_firmware(modified.then_some(patched));
        }
        if let Some(ms) = step.advance_clock_ms {
            handle.advance_clock(ms);
        }
        if let Ok(keys) = step.keys()
            && !keys.is_empty()
        {
            let for_prompt = matches!(trigger, Trigger::Confirm | Trigger::Pin(_));
            match prompt {
                Some(prompt) if for_prompt => {
                    if handle.press_for(prompt, &keys).is_err() {
                        tracing::info!(
                            device = script.index,
                            step = n + 1,
                            "prompt gone: keys dropped"
                        );
                    }
                }
                _ => handle.press(&keys),
            }
        }
        if let Some(open) = step.tamper {
            handle.set_tamper(open);
        }
        if step.answers_prompt() {
            answered_prompt = prompt;
        }
        handle.lock().hw.log(EventKind::Link {
            what: format!("scenario step {} done", n + 1),
        });
        tracing::info!(device = script.index, step = n + 1, "scenario step done");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example_and_refuses_mistakes() {
        let text = r#"
            [[device]]
            index = 0
            [[device.step]]
            on = "pin"
            after_ms = 300
            pin = "1234"
            [[device.step]]
            on = "pin"
            digits_entered = 2
            tamper = true
            [[device]]
            index = 1
            [[device.step]]
            on = "start"
            faults = { drop_every = 3 }
        "#;
        let scenario = Scenario::parse(text).unwrap();
        assert_eq!(scenario.device.len(), 2);
        assert_eq!(
            scenario.device[1].step[0]
                .faults
                .as_ref()
                .unwrap()
                .drop_every,
            Some(3)
        );
        assert!(Scenario::parse("[[device]]\n[[device.step]]\non = \"soon\"\n").is_err());
        assert!(
            Scenario::parse("[[device]]\n[[device.step]]\non = \"pin\"\npin = \"12a4\"\n").is_err()
        );
        assert!(
            Scenario::parse("[[device]]\n[[device.step]]\non = \"pin\"\npine = \"1\"\n").is_err()
        );
        assert!(
            Scenario::parse("[[device]]\n[[device.step]]\non = \"start\"\nfaults = { drop = 1 }\n")
                .is_err()
        );
    }
}
