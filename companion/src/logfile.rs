//! The log that survives: one JSON line per record in `pinbridge.log` in the OS's log
//! directory, written by the CLI and the desktop app alike, redacted before it is written,
//! size-capped by rotation, mode 0600.
//!
//! Every record is written with its own `write` on a file opened for appending, no buffer in
//! the process: once the call returns the line is in the kernel, so a process killed with
//! `kill -9` (or crashing) mid-flow leaves every record it wrote. Rotation: past
//! [`MAX_FILE_BYTES`] the file becomes `pinbridge.log.1` (older ones shift up to
//! `.{KEPT_FILES}`, the oldest is dropped), so the log never takes more than
//! `(KEPT_FILES + 1) * MAX_FILE_BYTES` on disk. Hand-written rather than `file-rotate` (which
//! panics when it cannot make its directory and counts bytes per process, while the app and
//! the CLI append to the same file) or `tracing-appender` (which rotates by time only).
//!
//! Where (override with `PINBRIDGE_LOG_DIR`):
//! - Linux: `$XDG_STATE_HOME/pinbridge` (default `~/.local/state/pinbridge`), the XDG
//!   directory for logs;
//! - macOS: `~/Library/Logs/PinBridge` (Console.app shows it);
//! - Windows: `%LOCALAPPDATA%\PinBridge\logs` (per user, not roaming; the profile's ACL
//!   limits it to the user, SYSTEM and Administrators).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::redaction::{REDACTED, is_secret_field, redact_hex_runs, redact_json};

/// The current file's name.
pub const FILE_NAME: &str = "pinbridge.log";
/// A file is rotated once it would pass this size.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Rotated files kept (`pinbridge.log.1` newest .. `.5` oldest).
pub const KEPT_FILES: usize = 5;
/// The environment variable that moves the log directory.
pub const LOG_DIR_ENV: &str = "PINBRIDGE_LOG_DIR";

/// How bad a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogLevel {
    /// Routine.
    Info,
    /// Something to look at.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// `INFO`, `WARN`, `ERROR`.
    pub fn label(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// Which part of the system a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogSource {
    /// The app or CLI itself.
    App,
    /// A PIN pad or its transport.
    Device,
    /// The bank.
    Bank,
    /// QA tooling (mock devices, faults).
    Qa,
}

impl LogSource {
    /// `app`, `device`, `bank`, `qa`.
    pub fn label(self) -> &'static str {
        match self {
            LogSource::App => "app",
            LogSource::Device => "device",
            LogSource::Bank => "bank",
            LogSource::Qa => "qa",
        }
    }
}

/// One line of the log file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// RFC 3339 UTC.
    pub time: String,
    /// Severity.
    pub level: LogLevel,
    /// Origin.
    pub source: LogSource,
    /// The writing program (`pinbridge`, `pinbridge-app`).
    pub process: String,
    /// Its process id.
    pub pid: u32,
    /// The message, redacted.
    pub message: String,
    /// The event's named fields, secret ones already replaced (sorted by name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// A flow event (`FlowEvent` as JSON), redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
}

impl LogRecord {
    /// A record stamped now, from this process.
    pub fn now(level: LogLevel, source: LogSource, message: impl Into<String>) -> Self {
        LogRecord {
            time: now_rfc3339(),
            level,
            source,
            process: process_name(),
            pid: std::process::id(),
            message: message.into(),
            fields: BTreeMap::new(),
            event: None,
        }
    }

    /// A record of a flow event.
    pub fn flow_event(summary: impl Into<String>, event: Value) -> Self {
        let mut record = Self::now(LogLevel::Info, LogSource::App, summary);
        record.event = Some(event);
        record
    }

    /// Masks secrets; returns how many were masked.
    pub fn redact(&mut self) -> usize {
        let (message, mut count) = redact_hex_runs(&self.message);
        self.message = message;
        for (name, value) in &mut self.fields {
            if is_secret_field(name) && value != REDACTED {
                *value = REDACTED.into();
                count += 1;
            } else {
                let (clean, n) = redact_hex_runs(value);
                *value = clean;
                count += n;
            }
        }
        if let Some(event) = &mut self.event {
            count += redact_json(event);
        }
        count
    }

    /// The message with its fields, as one line for people.
    pub fn text(&self) -> String {
        let mut text = self.message.clone();
        for (name, value) in &self.fields {
            let _ = write!(text, " {name}={value}");
        }
        text
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn process_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "pinbridge".into())
}

/// The OS's log directory for PinBridge (see the module docs).
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(LOG_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        if let Some(home) = home {
            return home.join("Library/Logs/PinBridge");
        }
    } else if cfg!(target_os = "windows") {
        if let Some(local) = std::env::var_os("LOCALAPPDATA") {
            return PathBuf::from(local).join("PinBridge").join("logs");
        }
    } else {
        if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(state).join("pinbridge");
        }
        if let Some(home) = home {
            return home.join(".local/state/pinbridge");
        }
    }
    std::env::temp_dir().join("pinbridge-logs")
}

/// The log file in a directory: appends, rotates, reads back. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogFile {
    dir: PathBuf,
    max_bytes: u64,
    /// One writer at a time in this process (rotation renames files).
    writing: Arc<Mutex<()>>,
}

impl LogFile {
    /// The log in `dir` (made, 0700, on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_limit(dir, MAX_FILE_BYTES)
    }

    /// As [`LogFile::new`] with another size cap per file.
    pub fn with_limit(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        LogFile {
            dir: dir.into(),
            max_bytes: max_bytes.max(1),
            writing: Arc::new(Mutex::new(())),
        }
    }

    /// The log in the OS's log directory.
    pub fn at_default_dir() -> Self {
        Self::new(default_dir())
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn rotated(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{FILE_NAME}.{n}"))
    }

    /// Every file, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = (1..=KEPT_FILES).rev().map(|n| self.rotated(n)).collect();
        files.push(self.path());
        files.into_iter().filter(|p| p.exists()).collect()
    }

    /// Redacts `record` and appends it as one line; returns how many secrets were masked.
    pub fn append(&self, mut record: LogRecord) -> std::io::Result<usize> {
        let redactions = record.redact();
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _guard = self
            .writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = self.path();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() + line.len() as u64 > self.max_bytes && meta.len() > 0 => {
                self.rotate()?;
            }
            _ => {}
        }
        let mut file = open_append(&self.dir, &path)?;
        // One write: the line reaches the kernel whole or not at all, whatever kills us next.
        file.write_all(&line)?;
        Ok(redactions)
    }

    fn rotate(&self) -> std::io::Result<()> {
        for n in (1..KEPT_FILES).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(self.path(), self.rotated(1))
    }

    /// Every record in every file, oldest first. Lines that are not records (a line cut by a
    /// full disk) come back as records of their redacted text.
    pub fn records(&self) -> Vec<LogRecord> {
        let mut records = Vec::new();
        for path in self.files() {
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            for line in std::io::BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<LogRecord>(&line) {
                    Ok(record) => records.push(record),
                    Err(_) => {
                        let mut record = LogRecord::now(LogLevel::Warn, LogSource::App, line);
                        record.time = String::new();
                        record.process = String::new();
                        record.pid = 0;
                        records.push(record);
                    }
                }
            }
        }
        records
    }

    /// The newest `limit` records, oldest first.
    pub fn tail(&self, limit: usize) -> Vec<LogRecord> {
        let mut records = self.records();
        let skip = records.len().saturating_sub(limit);
        records.drain(..skip);
        records
    }

    /// The whole log as text for support, redacted again on the way out (a guard: records
    /// are redacted when written); returns the text and how many secrets that pass masked.
    pub fn export_text(&self) -> (String, usize) {
        let mut text = String::new();
        let mut redactions = 0;
        for mut record in self.records() {
            redactions += record.redact();
            let _ = write!(
                text,
                "{} {} {} {}[{}] {}",
                record.time,
                record.level.label(),
                record.source.label(),
                record.process,
                record.pid,
                record.text()
            );
            if let Some(event) = &record.event {
                let _ = write!(text, " {event}");
            }
            text.push('\n');
        }
        (text, redactions)
    }
}

/// Opens `path` for appending, for the user alone, in a directory for the user alone.
fn open_append(dir: &Path, path: &Path) -> std::io::Result<std::fs::File> {
    crate::private_file::create_dir(dir)?;
    crate::private_file::open(path, crate::private_file::Open::Append)
}

/// Which source a tracing target belongs to; `None`: not ours (the webview, the HTTP stack).
pub fn source_of(target: &str) -> Option<LogSource> {
    let crate_name = target.split("::").next().unwrap_or_default();
    match crate_name {
        "pinbridge_app" => Some(if target.contains("::qa") {
            LogSource::Qa
        } else {
            LogSource::App
        }),
        "companion" | "pinbridge" => Some(if target.contains("::bank") {
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

/// The field a flow event travels in through tracing ([`trace_flow_event`]).
const FLOW_EVENT_FIELD: &str = "flow_event";

/// Logs a flow event through tracing, as one record with the event attached: for hosts whose
/// log is a tracing layer (the desktop app's log ring). The CLI appends its events directly.
pub fn trace_flow_event(event: &crate::flows::FlowEvent) {
    let json = serde_json::to_string(event).unwrap_or_default();
    tracing::info!(target: "companion::flows", flow_event = %json, "{event}");
}

/// Collects an event's message and fields, secret fields already replaced.
#[derive(Debug, Default)]
struct RecordVisitor {
    message: String,
    fields: BTreeMap<String, String>,
    event: Option<Value>,
    redactions: usize,
}

impl RecordVisitor {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == FLOW_EVENT_FIELD {
            // Serialised by trace_flow_event just above, not text to be parsed.
            self.event = serde_json::from_str(&value).ok();
        } else if field.name() == "message" {
            self.message.push_str(&value);
        } else if is_secret_field(field.name()) {
            self.fields.insert(field.name().to_owned(), REDACTED.into());
            self.redactions += 1;
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for RecordVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

/// A tracing event of ours at INFO or above as a record (secret fields replaced, hex runs not
/// yet: [`LogRecord::redact`] does that), with how many fields were replaced.
pub fn record_of(event: &Event<'_>) -> Option<(LogRecord, usize)> {
    let metadata = event.metadata();
    let level = match *metadata.level() {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        _ => return None,
    };
    let source = source_of(metadata.target())?;
    let mut visitor = RecordVisitor::default();
    event.record(&mut visitor);
    // Flow events are indented for a terminal; a log line starts at its first word.
    let mut record = LogRecord::now(level, source, visitor.message.trim());
    record.fields = visitor.fields;
    record.event = visitor.event;
    Some((record, visitor.redactions))
}

/// A tracing layer that appends our INFO-and-above events to a [`LogFile`].
#[derive(Debug, Clone)]
pub struct FileLayer {
    file: LogFile,
}

impl FileLayer {
    /// Into `file`.
    pub fn new(file: LogFile) -> Self {
        FileLayer { file }
    }
}

impl<S: Subscriber> Layer<S> for FileLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if let Some((record, _)) = record_of(event) {
            // A log that cannot be written must not stop a payment.
            let _ = self.file.append(record);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn records_are_redacted_on_disk_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path().join("logs"));
        let subscriber = tracing_subscriber::registry().with(FileLayer::new(log.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "companion::devices", transport = "sim", pin = "123456", "opened");
            tracing::warn!(target: "companion::bank", "no to 00112233445566778899aabbccddeeff");
            tracing::debug!(target: "companion", "too chatty");
            tracing::info!(target: "wry::webview", "not ours");
            trace_flow_event(&crate::flows::FlowEvent::WaitingForUser);
        });
        log.append(LogRecord::flow_event(
            "paid",
            serde_json::json!({"type": "mac", "macKey": "x", "amount": 12}),
        ))
        .unwrap();
        let on_disk = std::fs::read_to_string(log.path()).unwrap();
        assert!(
            !on_disk.contains("123456") && !on_disk.contains("00112233"),
            "{on_disk}"
        );
        let records = log.records();
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].source, LogSource::Device);
        assert_eq!(records[0].fields["transport"], "sim");
        assert_eq!(records[0].text(), "opened pin=[redacted] transport=sim");
        assert_eq!(records[1].level, LogLevel::Warn);
        assert_eq!(records[1].message, "no to [redacted]");
        let waiting = serde_json::to_value(crate::flows::FlowEvent::WaitingForUser).unwrap();
        assert_eq!(records[2].event.as_ref(), Some(&waiting));
        assert_eq!(
            records[2].message,
            crate::flows::FlowEvent::WaitingForUser.to_string().trim()
        );
        assert!(records[2].fields.is_empty());
        assert_eq!(records[3].event.as_ref().unwrap()["macKey"], REDACTED);
        assert_eq!(records[3].event.as_ref().unwrap()["amount"], 12);
        let (text, _) = log.export_text();
        assert_eq!(text.lines().count(), 4);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&log.path()), 0o600);
            assert_eq!(mode(log.dir()), 0o700);
        }
    }

    #[test]
    fn the_log_rotates_at_its_cap_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::with_limit(dir.path(), 400);
        for i in 0..200 {
            log.append(LogRecord::now(
                LogLevel::Info,
                LogSource::App,
                format!("line {i}"),
            ))
            .unwrap();
        }
        let files = log.files();
        assert_eq!(files.len(), KEPT_FILES + 1);
        for file in &files {
            assert!(std::fs::metadata(file).unwrap().len() <= 400);
        }
        let records = log.records();
        // The newest survive, in order, ending with the last one written.
        assert_eq!(records.last().unwrap().message, "line 199");
        let numbers: Vec<usize> = records
            .iter()
            .map(|r| r.message["line ".len()..].parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert_eq!(log.tail(2).len(), 2);
        assert_eq!(log.tail(2)[1].message, "line 199");
    }
}
