//! What the CLI shows while a flow runs: each event as a line, and while the PIN pad waits
//! for the customer a countdown of the time left (indicatif, on a terminal only).

use companion::flows::FlowEvent;
use serde_json::Value;

use super::Connection;

/// Prints events as they come (text mode) and keeps them (JSON result, event log). While the
/// PIN pad waits for the customer, a spinner on stderr counts down the time left to act
/// (reset by each key, as the device's own timer is) and says Ctrl-C cancels.
pub(crate) struct Reporter {
    json: bool,
    pub(crate) events: Vec<Value>,
    /// Each event is written as it happens: a command killed mid-flow leaves them all.
    log: companion::logfile::LogFile,
    waiting: Option<indicatif::ProgressBar>,
}

/// How long the PIN pad gives the customer (the reference device's default; PROTOCOL.md
/// carries no per-device value), for the countdown.
const USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// `1:58`.
fn minutes_seconds(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn waiting_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    let left = |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(
            w,
            "{}",
            minutes_seconds(USER_TIMEOUT.saturating_sub(state.elapsed()))
        );
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg}: {left} left to act on the PIN pad (Ctrl-C cancels)",
    ) {
        bar.set_style(style.with_key("left", left));
    }
    bar.set_message("Waiting for you on the PIN pad");
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

impl Reporter {
    pub(crate) fn new(json: bool, _connection: &Connection) -> Self {
        Self {
            json,
            events: Vec::new(),
            log: companion::logfile::LogFile::at_default_dir(),
            waiting: None,
        }
    }

    pub(crate) fn sink(&mut self) -> impl FnMut(FlowEvent) + Send + '_ {
        move |event: FlowEvent| {
            // Logged before it is shown: whatever kills the process next, an event the user
            // saw is in the log. A log that cannot be written must not stop a payment.
            let _ = self.log.append(companion::logfile::LogRecord::flow_event(
                event.to_string(),
                serde_json::to_value(&event).unwrap_or(Value::Null),
            ));
            if !self.json {
                match &event {
                    FlowEvent::WaitingForUser | FlowEvent::PinEntry { .. }
                        if self.waiting.is_none() =>
                    {
                        // A wait on the customer begins: say how long they have, once, in the
                        // transcript too (the spinner is drawn only on a terminal).
                        crate::emit(&format!(
                            "{event}  ({} to act; Ctrl-C cancels)",
                            minutes_seconds(USER_TIMEOUT)
                        ));
                        let bar = waiting_bar();
                        if let FlowEvent::PinEntry { dots, .. } = &event {
                            bar.set_message(format!("PIN {dots}"));
                        }
                        self.waiting = Some(bar);
                    }
                    FlowEvent::WaitingForUser => {
                        if let Some(bar) = &self.waiting {
                            bar.reset_elapsed();
                        }
                    }
                    FlowEvent::PinEntry { dots, .. } => {
                        let bar = self.waiting.get_or_insert_with(waiting_bar);
                        // Each key restarts the device's timer: restart the countdown too.
                        bar.reset_elapsed();
                        bar.set_message(format!("PIN {dots}"));
                        bar.suspend(|| crate::emit(&event.to_string()));
                    }
                    _ => {
                        if let Some(bar) = self.waiting.take() {
                            bar.finish_and_clear();
                        }
                        crate::emit(&event.to_string());
                    }
                }
            }
            let value = serde_json::to_value(&event).unwrap_or(Value::Null);
            self.events.push(value);
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        // A command that ends (or fails) while the PIN pad waits leaves no spinner behind.
        if let Some(bar) = self.waiting.take() {
            bar.finish_and_clear();
        }
    }
}
