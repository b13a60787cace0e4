//! The Logs screen's source: the app's own tracing events, with secrets redacted before
//! anything is stored, so neither the screen, the export nor an event subscriber can ever
//! receive them. Every line goes to the log file in the OS's log directory
//! ([`companion::logfile`], shared with the CLI: rotated, size-capped, 0600) as it happens,
//! and a bounded ring in memory serves the screen; at start the ring is filled from the file,
//! so the lines before an exit or a crash are on the screen and in the export.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use companion::logfile::{LogFile, LogRecord, record_of};
pub use companion::logfile::{LogLevel, LogSource, source_of};
use companion::redaction::redact_hex_runs;
use serde::Serialize;
use tokio::sync::broadcast;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

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
    /// The message and its fields, secrets already redacted (English: the log file's words).
    pub message: String,
    /// The typed flow event the line reports (`FlowEvent` as JSON, redacted), when it is one:
    /// the Logs screen words it in the app's language; the file keeps `message` as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
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
    /// Where every line is also written; `None`: memory only (tests of other parts).
    file: Option<LogFile>,
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
            file: None,
        }
    }

    /// A ring that writes every line to `file`, filled first with the file's newest
    /// `capacity` records (the previous runs', the CLI's).
    pub fn with_file(capacity: usize, file: LogFile) -> Self {
        let mut ring = Self::new(capacity);
        {
            let mut inner = ring.lock();
            for record in file.tail(ring.capacity) {
                let entry = LogEntry {
                    seq: inner.next_seq,
                    time: record.time.clone(),
                    level: record.level,
                    source: record.source,
                    message: record.text(),
                    event: record.event.clone(),
                    redactions: 0,
                };
                inner.next_seq += 1;
                inner.entries.push_back(entry);
            }
        }
        ring.file = Some(file);
        ring
    }

    /// The log file, if this ring writes one.
    pub fn file(&self) -> Option<&LogFile> {
        self.file.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // Entries are pushed and popped whole; a poisoned ring is still a valid ring.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends a line, redacting hex runs from it first; returns the stored entry.
    pub fn push(&self, level: LogLevel, source: LogSource, message: &str) -> LogEntry {
        self.push_record(LogRecord::now(level, source, message), 0)
    }

    /// Appends a record (secret fields already replaced, `already_redacted` of them): to the
    /// file first, so the line is on disk before anyone sees it.
    fn push_record(&self, mut record: LogRecord, already_redacted: usize) -> LogEntry {
        let hex_runs = record.redact();
        if let Some(file) = &self.file {
            // The screen keeps working on a full disk; the line is still in the ring.
            let _ = file.append(record.clone());
        }
        let (level, source, time) = (record.level, record.source, record.time.clone());
        let message = record.text();
        let event = record.event.take();
        let entry = {
            let mut ring = self.lock();
            let entry = LogEntry {
                seq: ring.next_seq,
                time,
                level,
                source,
                message,
                event,
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

    /// Every line as text, for the user to save or send to support: the whole log file
    /// (every rotated file, the previous runs' and the CLI's lines too) when there is one.
    pub fn export(&self) -> LogExport {
        let (content, redactions) = match &self.file {
            Some(file) => {
                let (text, more) = file.export_text();
                // Lines redacted when they were written count too.
                let earlier: usize = self.lock().entries.iter().map(|e| e.redactions).sum();
                (text, earlier + more)
            }
            None => self.export_ring(),
        };
        LogExport {
            file_name: export_file_name(),
            content,
            redactions,
            saved_to: None,
        }
    }

    fn export_ring(&self) -> (String, usize) {
        let entries = self.list(usize::MAX);
        let mut content = String::new();
        let mut redactions = 0;
        for entry in &entries {
            // Stored lines are redacted already; the second pass is a guard, and counts
            // anything it still finds.
            let (message, more) = redact_hex_runs(&entry.message);
            redactions += entry.redactions + more;
            let (level, source) = (entry.level.label(), entry.source.label());
            let _ = writeln!(content, "{} {level} {source} {message}", entry.time);
        }
        (content, redactions)
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

/// `pinbridge-log-20261204-183500.txt`.
fn export_file_name() -> String {
    let stamp = time::OffsetDateTime::now_utc();
    format!(
        "pinbridge-log-{:04}{:02}{:02}-{:02}{:02}{:02}.txt",
        stamp.year(),
        u8::from(stamp.month()),
        stamp.day(),
        stamp.hour(),
        stamp.minute(),
        stamp.second()
    )
}

/// A tracing layer that records INFO and above from the app and the companion library into a
/// [`LogRing`]. Other crates (the webview, the HTTP stack) stay out: their lines mean nothing
/// to a user, and a line logged while the ring's own event is being delivered must not loop.
#[derive(Debug, Clone)]
pub struct RingLayer {
    ring: LogRing,
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if let Some((record, redacted)) = record_of(event) {
            self.ring.push_record(record, redacted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn a_flow_event_line_carries_the_typed_event_for_the_screen_to_word() {
        let ring = LogRing::new(10);
        let subscriber = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(subscriber, || {
            companion::logfile::trace_flow_event(&companion::flows::FlowEvent::Step {
                step: companion::flows::Step::PreparePayment,
            });
            tracing::info!(target: "companion::devices", "no event here");
        });
        let entries = ring.list(10);
        assert_eq!(entries.len(), 2);
        let event = entries[0].event.as_ref().expect("typed event");
        assert_eq!(event["type"], "step");
        assert_eq!(event["step"], "preparePayment");
        // The line itself stays in the log file's words.
        assert!(entries[0].message.contains("preparing the payment"));
        assert_eq!(entries[1].event, None);
        let json = serde_json::to_value(&entries[0]).expect("serialise");
        assert_eq!(json["event"]["step"], "preparePayment");
    }

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
        assert_eq!(entries[0].message, "pairing device=sim:1 pin=[redacted]");
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
    fn lines_survive_the_app_in_the_log_file_and_come_back_on_the_next_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = LogFile::new(dir.path());
        {
            let ring = LogRing::with_file(10, file.clone());
            let subscriber = tracing_subscriber::registry().with(ring.layer());
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(target: "pinbridge_app", session_key = "k", "payment approved");
                tracing::warn!(target: "companion::bank", "token 00112233445566778899 refused");
            });
            // The app is gone without a word (a crash): no flush, no drop of anything.
            std::mem::forget(ring);
        }
        let on_disk = std::fs::read_to_string(file.path()).expect("log file");
        assert!(on_disk.contains("payment approved"), "{on_disk}");
        assert!(!on_disk.contains("00112233445566778899"), "{on_disk}");
        let next_run = LogRing::with_file(10, file);
        let entries = next_run.list(10);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].message,
            "payment approved session_key=[redacted]"
        );
        assert_eq!(entries[1].level, LogLevel::Warn);
        let export = next_run.export();
        assert_eq!(export.content.lines().count(), 2);
        assert!(export.content.contains("token [redacted] refused"));
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
