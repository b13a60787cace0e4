//! A scripted customer at the keypad, for demos, tests and the app's sandbox start-up.
//!
//! It behaves as a person must (issue 17 item 1): it presses only for a prompt that is on the
//! screen, names that prompt when it presses ([`SimHandle::press_for`], so keys meant for a
//! prompt that has gone are dropped, never taken by the next one), and it waits for the device
//! to change (the simulator's activity signal), never on a timer.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::hardware::KeyPress;
use crate::sim::SimHandle;

/// Where the scripted customer's PIN comes from, read at every PIN prompt (a test may change
/// it between payments).
pub type PinSource = Box<dyn Fn() -> Zeroizing<String> + Send>;

/// How fast the scripted customer types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// The whole PIN and OK together as soon as the prompt is up (benchmarks, start-up).
    AllAtOnce,
    /// One key each time the device has read the last one, so the host sees every digit
    /// count (tests of what the host shows during PIN entry).
    KeyByKey,
    /// One key, then this long before the next (the demo, for someone watching). Pacing
    /// only: what is pressed still follows the device's state.
    Paced(Duration),
}

/// Whether the scripted customer accepts a confirmation prompt (OK) or declines it (Cancel);
/// asked once per confirmation prompt.
pub type ConfirmChoice = Box<dyn FnMut() -> bool + Send>;

/// Types the PIN at every PIN prompt and presses OK at every other prompt, until aborted.
pub fn spawn_scripted_keypad(
    handle: SimHandle,
    pin: PinSource,
    pace: Pace,
) -> tokio::task::JoinHandle<()> {
    spawn_scripted_keypad_choosing(handle, pin, pace, Box::new(|| true))
}

/// As [`spawn_scripted_keypad`], but at a confirmation prompt the customer presses OK when
/// `accept` says so and Cancel otherwise (a customer who declines on the PIN pad).
pub fn spawn_scripted_keypad_choosing(
    handle: SimHandle,
    pin: PinSource,
    pace: Pace,
    mut accept: ConfirmChoice,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut activity = handle.activity();
        // The prompt and digit count last acted on: act once per state the device shows.
        let mut acted: Option<(u64, u8)> = None;
        loop {
            let (prompt, waiting_for, entered, queued) = {
                let core = handle.lock();
                let snapshot = core.device.snapshot();
                (
                    snapshot.prompt_id,
                    snapshot.waiting_for,
                    snapshot.pin_digits_entered.unwrap_or(0),
                    core.hw.queued_keys(),
                )
            };
            if let Some(prompt) = prompt
                && queued == 0
                && acted != Some((prompt, entered))
            {
                let keys = match waiting_for {
                    Some("confirm") if !accept() => vec![KeyPress::Cancel],
                    _ => keys_for(waiting_for, entered, &pin(), pace == Pace::AllAtOnce),
                };
                if !keys.is_empty() && handle.press_for(prompt, &keys).is_ok() {
                    acted = Some((prompt, entered));
                }
            }
            if activity.changed().await.is_err() {
                return;
            }
            if let Pace::Paced(delay) = pace {
                tokio::time::sleep(delay).await;
            }
        }
    })
}

/// What to press now at a prompt waiting for `waiting_for` with `entered` digits typed.
fn keys_for(waiting_for: Option<&str>, entered: u8, pin: &str, all_at_once: bool) -> Vec<KeyPress> {
    match waiting_for {
        Some("pin") => {
            let Some(digits) = KeyPress::digits(pin) else {
                return Vec::new();
            };
            let rest = digits.get(usize::from(entered)..).unwrap_or_default();
            match rest.first() {
                Some(_) if all_at_once => {
                    let mut keys = rest.to_vec();
                    keys.push(KeyPress::Enter);
                    keys
                }
                Some(digit) => vec![*digit],
                None => vec![KeyPress::Enter],
            }
        }
        Some(_) => vec![KeyPress::Enter],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_what_the_prompt_still_needs() {
        assert_eq!(
            keys_for(Some("pin"), 2, "1234", false),
            [KeyPress::Digit(3)]
        );
        assert_eq!(
            keys_for(Some("pin"), 2, "1234", true),
            [KeyPress::Digit(3), KeyPress::Digit(4), KeyPress::Enter]
        );
        assert_eq!(keys_for(Some("pin"), 4, "1234", false), [KeyPress::Enter]);
        assert_eq!(
            keys_for(Some("confirm"), 0, "1234", true),
            [KeyPress::Enter]
        );
        assert!(keys_for(None, 0, "1234", true).is_empty());
    }
}
