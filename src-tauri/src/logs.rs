//! The Logs screen's source: a bounded ring of the app's own tracing events, with secrets
//! redacted before anything is stored, so neither the screen, the export nor an event
//! subscriber can ever receive them.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use companion::redaction::{REDACTED, is_secret_field, redact_hex_runs};
use serde::Serialize;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// How bad a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LogLevel {
    /// Routine.
    Info,
    /// Something to look at.
    Warn,
    /// Something failed.
    Error,
}

/// Which part of the system a log line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LogSource {
    /// The app itself.
    App,
    /// A PIN pad or its transport.
    Device,
    /// The bank.
    Bank,
    /// QA tooling (mock devices, faults).
    Qa,
}

/// One line on the Logs screen (`LogEntry` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Increasing from 1 for the app's run.
    pub seq: u64,
    /// ISO-8601 (RFC 3339) UTC time.
    pub time: String,
    /// Severity.
    pub level: LogLevel,
    /// Origin.
    pub source: LogSource,
    /// The message and its fields, secrets already redacted.
    pub message: String,
    /// How many secrets were cut out of this line.
    #[serde(skip)]
    pub redactions: usize,
}

/// What `logs_export` returns (`LogExport` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogExport {
    /// Suggested file name.
    pub file_name: String,
    /// The log as text, one line per entry.
    pub content: String,
    /// How many secrets were redacted from these lines.
    pub redactions: usize,
    /// Where the shell saved the file itself; `None`: the page offers the download.
    pub saved_to: Option<String>,
}

/// Collects an event's message and fields into one line, secret fields already replaced.
#[derive(Debug, Default)]
struct LineVisitor {
    message: String,
    fields: String,
    redactions: usize,
}

impl LineVisitor {
    fn record(&mut self, field: &Field, value: &dyn std::fmt::Display) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value}");
        } else if is_secret_field(field.name()) {
            let _ = write!(self.fields, " {}={REDACTED}", field.name());
            self.redactions += 1;
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, &format_args!("{value:?}"));
    }
}

#[derive(Debug)]
struct Ring {
    entries: VecDeque<LogEntry>,
    next_seq: u64,
}

/// The bounded log shared by the tracing layer, the commands and the event forwarder.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogRing {
    ring: Arc<Mutex<Ring>>,
    capacity: usize,
    appended: broadcast::Sender<LogEntry>,
}

impl LogRing {
    /// Entries kept by default: the oldest go first.
    pub const DEFAULT_CAPACITY: usize = 2000;

    /// A ring holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        let (appended, _) = broadcast::channel(256);
        LogRing {
            ring: Arc::new(Mutex::new(Ring {
                entries: VecDeque::new(),
                next_seq: 1,
            })),
            capacity: capacity.max(1),
            appended,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // Entries are pushed and popped whole; a poisoned ring is still a valid ring.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends a line, redacting hex runs from it first; returns the stored entry.
    pub fn push(&self, level: LogLevel, source: LogSource, message: &str) -> LogEntry {
        self.push_redacted(level, source, message, 0)
    }

    fn push_redacted(
        &self,
        level: LogLevel,
        source: LogSource,
        message: &str,
        already_redacted: usize,
    ) -> LogEntry {
        let (message, hex_runs) = redact_hex_runs(message);
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let entry = {
            let mut ring = self.lock();
            let entry = LogEntry {
                seq: ring.next_seq,
                time,
                level,
                source,
                message,
                redactions: already_redacted + hex_runs,
            };
            ring.next_seq += 1;
            if ring.entries.len() == self.capacity {
                ring.entries.pop_front();
            }
            ring.entries.push_back(entry.clone());
            entry
        };
        // Nobody listening is fine.
        let _ = self.appended.send(entry.clone());
        entry
    }

    /// The newest `limit` entries, oldest first.
    pub fn list(&self, limit: usize) -> Vec<LogEntry> {
        let ring = self.lock();
        let skip = ring.entries.len().saturating_sub(limit);
        ring.entries.iter().skip(skip).cloned().collect()
    }

    /// Every entry as text, for the user to save or send to support.
    pub fn export(&self) -> LogExport {
        let entries = self.list(usize::MAX);
        let mut content = String::new();
        let mut redactions = 0;
        for entry in &entries {
            // Stored lines are redacted already; the second pass is a guard, and counts
            // anything it still finds.
            let (message, more) = redact_hex_runs(&entry.message);
            redactions += entry.redactions + more;
            let level = match entry.level {
                LogLevel::Info => "INFO",
                LogLevel::Warn => "WARN",
                LogLevel::Error => "ERROR",
            };
            let source = serde_json::to_value(entry.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(content, "{} {level} {source} {message}", entry.time);
        }
        let stamp = time::OffsetDateTime::now_utc();
        let file_name = format!(
            "pinbridge-log-{:04}{:02}{:02}-{:02}{:02}{:02}.txt",
            stamp.year(),
            u8::from(stamp.month()),
            stamp.day(),
            stamp.hour(),
            stamp.minute(),
            stamp.second()
        );
        LogExport {
            file_name,
            content,
            redactions,
            saved_to: None,
        }
    }

    /// Entries as they are appended (for the app's event channel).
    pub fn subscribe(&self) -> broadcast::Receiver<LogEntry> {
        self.appended.subscribe()
    }

    /// The tracing layer that feeds this ring.
    pub fn layer(&self) -> RingLayer {
        RingLayer { ring: self.clone() }
    }
}

/// A tracing layer that records INFO and above from the app and the companion library into a
/// [`LogRing`]. Other crates (the webview, the HTTP stack) stay out: their lines mean nothing
/// to a user, and a line logged while the ring's own event is being delivered must not loop.
#[derive(Debug, Clone)]
pub struct RingLayer {
    ring: LogRing,
}

/// Which source a tracing target belongs to.
pub fn source_of(target: &str) -> Option<LogSource> {
    let crate_name = target.split("::").next().unwrap_or_default();
    match crate_name {
        "pinbridge_app" => Some(if target.contains("::qa") {
            LogSource::Qa
        } else {
            LogSource::App
        }),
        "companion" => Some(if target.contains("::bank") {
            LogSource::Bank
        } else if ["::transport", "::devices", "::session"]
            .iter()
            .any(|part| target.contains(part))
        {
            LogSource::Device
        } else {
            LogSource::App
        }),
        _ => None,
    }
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let level = match *metadata.level() {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            _ => return,
        };
        let Some(source) = source_of(metadata.target()) else {
            return;
        };
        let mut line = LineVisitor::default();
        event.record(&mut line);
        let text = format!("{}{}", line.message, line.fields);
        self.ring
            .push_redacted(level, source, text.trim_start(), line.redactions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn the_layer_records_app_events_with_secret_fields_redacted() {
        let ring = LogRing::new(10);
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "pinbridge_app::commands", pin = "123456", device = "sim:1", "pairing");
            tracing::warn!(target: "companion::devices", session_key = %"00112233445566778899aabbccddeeff", "opened");
            tracing::error!(target: "companion::bank::client", "bank said no to 0011223344556677");
            tracing::debug!(target: "pinbridge_app", "too chatty");
            tracing::info!(target: "wry::webview", "not ours");
        });
        let entries = ring.list(10);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].message, "pairing pin=[redacted] device=sim:1");
        assert_eq!(
            (entries[0].level, entries[0].source),
            (LogLevel::Info, LogSource::App)
        );
        assert_eq!(entries[1].message, "opened session_key=[redacted]");
        assert_eq!(
            (entries[1].level, entries[1].source),
            (LogLevel::Warn, LogSource::Device)
        );
        assert_eq!(entries[2].message, "bank said no to [redacted]");
        assert_eq!(
            (entries[2].level, entries[2].source),
            (LogLevel::Error, LogSource::Bank)
        );
        for entry in &entries {
            assert!(!entry.message.contains("123456"));
        }
        let export = ring.export();
        assert_eq!(export.redactions, 3);
        assert!(!export.content.contains("123456"));
        assert!(!export.content.contains("00112233"));
        assert_eq!(export.content.lines().count(), 3);
    }

    #[test]
    fn the_ring_keeps_the_newest_entries_in_order() {
        let ring = LogRing::new(3);
        for i in 0..5 {
            ring.push(LogLevel::Info, LogSource::App, &format!("line {i}"));
        }
        let all = ring.list(100);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(
            ring.list(2).first().map(|e| e.message.as_str()),
            Some("line 3")
        );
        assert!(ring.list(0).is_empty());
    }

    #[test]
    fn entries_serialise_in_the_contract_shape() {
        let ring = LogRing::new(1);
        let entry = ring.push(LogLevel::Warn, LogSource::Device, "hello");
        let json = serde_json::to_value(&entry).expect("serialise");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["level", "message", "seq", "source", "time"]);
        assert_eq!(json["level"], "warn");
        assert_eq!(json["source"], "device");
        assert!(
            time::OffsetDateTime::parse(
                json["time"].as_str().expect("time"),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }
}
