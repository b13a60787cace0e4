//! The support bundle: what a help desk asks first, in one JSON document, with nothing secret
//! in it. Built the same way by `pinbridge diagnostics` and the app's diagnostics export.
//!
//! It holds: the program and its version, the protocol version, the OS (family, version,
//! architecture), the bank's host (no path, no credentials), how the pairing keys are
//! protected, where the log is, the transports seen (devices now and in the log), the device
//! list, the last flow events and the last warnings/errors from the log. It never holds a
//! key, a MAC, a token, a PIN block or a pairing: every string passes the log's redaction
//! ([`crate::redaction`]) on the way out, and the count of what that cut is reported.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::keystore::Protection;
use crate::logfile::{LogFile, LogLevel, LogRecord};
use crate::redaction::redact_json;

/// Flow events included by default.
pub const DEFAULT_EVENTS: usize = 50;

/// What the caller knows that the log does not.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `pinbridge` or `PinBridge app (sandbox build)`.
    pub program: String,
    /// Its version.
    pub version: String,
    /// The bank's base URL, if configured (only its scheme, host and port are kept).
    pub bank_url: Option<String>,
    /// How the pairing keys are protected.
    pub key_protection: Protection,
    /// Devices present now: objects with at least `transport`.
    pub devices: Vec<Value>,
}

/// The OS: family, architecture, and the distribution's or kernel's version where readable.
pub fn os_summary() -> Value {
    #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
    let mut os = json!({
        "family": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    #[cfg(target_os = "linux")]
    {
        if let Ok(text) = std::fs::read_to_string("/etc/os-release")
            && let Some(name) = text
                .lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        {
            os["name"] = Value::String(name);
        }
        if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            os["kernel"] = Value::String(kernel.trim().to_owned());
        }
    }
    os
}

/// `https://bank.example:8443/some/path?x` -> `https://bank.example:8443`.
fn bank_origin(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

fn record_json(record: &LogRecord) -> Value {
    let mut value = json!({
        "time": record.time,
        "level": record.level,
        "source": record.source,
        "process": record.process,
        "message": record.text(),
    });
    if let Some(event) = &record.event {
        value["event"] = event.clone();
    }
    value
}

/// The bundle, redacted; the second value counts what redaction cut.
pub fn collect(facts: &Facts, log: &LogFile, events: usize) -> (Value, usize) {
    let records = log.records();
    let mut transports: BTreeSet<String> = facts
        .devices
        .iter()
        .filter_map(|d| d["transport"].as_str().map(str::to_owned))
        .collect();
    transports.extend(
        records
            .iter()
            .filter_map(|r| r.fields.get("transport").cloned()),
    );
    let flow_events: Vec<Value> = {
        let with_events: Vec<&LogRecord> = records.iter().filter(|r| r.event.is_some()).collect();
        let skip = with_events.len().saturating_sub(events);
        with_events[skip..].iter().map(|r| record_json(r)).collect()
    };
    let problems: Vec<Value> = {
        let bad: Vec<&LogRecord> = records
            .iter()
            .filter(|r| r.level != LogLevel::Info)
            .collect();
        let skip = bad.len().saturating_sub(events);
        bad[skip..].iter().map(|r| record_json(r)).collect()
    };
    let generated = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut bundle = json!({
        "generatedAt": generated,
        "program": facts.program,
        "version": facts.version,
        "protocolVersion": firmware_protocol::message::PROTOCOL_VERSION,
        "os": os_summary(),
        "bank": facts.bank_url.as_deref().and_then(bank_origin),
        "pairingKeys": facts.key_protection,
        "logDirectory": log.dir().display().to_string(),
        "logRecords": records.len(),
        "transportsSeen": transports,
        "devices": facts.devices,
        "recentFlowEvents": flow_events,
        "recentProblems": problems,
    });
    let redactions = redact_json(&mut bundle);
    (bundle, redactions)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::logfile::LogSource;

    #[test]
    fn the_bundle_has_what_support_needs_and_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path());
        let mut opened = LogRecord::now(LogLevel::Info, LogSource::Device, "opened");
        opened.fields.insert("transport".into(), "ble".into());
        log.append(opened).unwrap();
        log.append(LogRecord::flow_event(
            "MAC checked",
            json!({"type": "payment", "mac": "00112233445566778899aabbccddeeff", "amount": "12.34"}),
        ))
        .unwrap();
        log.append(LogRecord::now(
            LogLevel::Error,
            LogSource::Bank,
            "refused token 0123456789abcdef0123",
        ))
        .unwrap();
        let facts = Facts {
            program: "pinbridge".into(),
            version: "0.1.0".into(),
            bank_url: Some("https://user:pw@bank.example:8443/v1?x=1".into()),
            key_protection: Protection::KeyStore,
            devices: vec![json!({"transport": "usb", "serial": "PB-1", "sessionKey": "k"})],
        };
        let (bundle, _) = collect(&facts, &log, 10);
        assert_eq!(bundle["bank"], "https://bank.example:8443");
        assert_eq!(bundle["transportsSeen"], json!(["ble", "usb"]));
        assert_eq!(bundle["pairingKeys"], "keyStore");
        assert_eq!(bundle["recentFlowEvents"].as_array().unwrap().len(), 1);
        assert_eq!(bundle["recentFlowEvents"][0]["event"]["amount"], "12.34");
        assert_eq!(bundle["recentProblems"].as_array().unwrap().len(), 1);
        assert_eq!(bundle["os"]["family"], std::env::consts::OS);
        let text = bundle.to_string();
        for secret in [
            "00112233445566778899",
            "0123456789abcdef0123",
            "pw@",
            "\"k\"",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
