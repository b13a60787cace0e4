//! The `pinbridge` binary refuses bad payment input before it contacts the device or the bank,
//! with a specific reason and code (issue 17 items 2 and 6), and survives a reader that closes
//! its pipe early.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

/// `pinbridge` with no reachable device or bank: a command that gets past input checking
/// fails on the connection (a device error kind), not on the input.
fn pinbridge(state: &std::path::Path, locale: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pinbridge"))
        .env("PINBRIDGE_BANK_URL", "http://127.0.0.1:1")
        .env("PINBRIDGE_DEVICE", "sim:127.0.0.1:1")
        .env("PINBRIDGE_STATE_DIR", state)
        .env("PINBRIDGE_LOG_DIR", state.join("logs"))
        .env_remove("LC_NUMERIC")
        .env("LC_ALL", locale)
        .env("LANG", locale)
        .args(args)
        .output()
        .unwrap()
}

fn pay(locale: &str, to: &str, amount: &str, currency: &str) -> (String, String) {
    let state = tempfile::tempdir().unwrap();
    let output = pinbridge(
        state.path(),
        locale,
        &[
            "--json",
            "pay",
            "--to",
            to,
            "--payee-name",
            "Shop SARL",
            "--amount",
            amount,
            "--currency",
            currency,
        ],
    );
    assert!(!output.status.success());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    (
        error["error"]["code"].as_str().unwrap().to_owned(),
        error["error"]["message"].as_str().unwrap().to_owned(),
    )
}

const IBAN: &str = "FR7630006000011234567890189";

#[test]
fn an_unknown_currency_is_named_as_such() {
    let (code, message) = pay("en_US.UTF-8", IBAN, "12.34", "XYZ");
    assert_eq!(code, "unknown_currency", "{message}");
    assert!(message.contains("ISO 4217"), "{message}");
}

#[test]
fn a_bad_iban_checksum_and_a_two_digit_account_never_reach_the_pin_pad() {
    let (code, message) = pay("en_US.UTF-8", "FR7630006000011234567890188", "1", "EUR");
    assert_eq!(code, "invalid_iban", "{message}");
    let (code, message) = pay("en_US.UTF-8", "12", "1", "EUR");
    assert_eq!(code, "invalid_account", "{message}");
}

#[test]
fn twelve_comma_thirty_four_follows_the_locale() {
    for locale in ["en_US.UTF-8", "zh_CN.UTF-8", "C"] {
        let (code, message) = pay(locale, IBAN, "12,34", "EUR");
        assert_eq!(code, "invalid_amount", "{locale}: {message}");
        assert!(message.contains("decimal separator"), "{message}");
    }
    // Where the comma is the decimal separator the amount is accepted: the command goes on
    // to the (unreachable) device.
    let (code, message) = pay("de_DE.UTF-8", IBAN, "12,34", "EUR");
    assert_eq!(code, "deviceNotFound", "{message}");
}

/// The `--json` error of `pinbridge args...` with no reachable device or bank.
fn json_error(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let state = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinbridge"));
    command
        .env("PINBRIDGE_STATE_DIR", state.path())
        .env("PINBRIDGE_LOG_DIR", state.path().join("logs"))
        .env_remove("PINBRIDGE_DEVICE")
        .env_remove("PINBRIDGE_BANK_URL")
        .env_remove("PINBRIDGE_STAFF_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .arg("--json")
        .args(args);
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
    error["error"].clone()
}

/// Every failure, not only a flow's, carries the kind the desktop app reports for it (issue
/// 13): before, anything outside a payment or confirmation flow was coded `failed`.
#[test]
fn every_failure_carries_the_app_error_kind() {
    let unreachable = [("PINBRIDGE_DEVICE", "sim:127.0.0.1:1")];
    for args in [&["pair"][..], &["login"], &["device", "info"]] {
        let mut env = unreachable.to_vec();
        env.push(("PINBRIDGE_BANK_URL", "http://127.0.0.1:1"));
        let error = json_error(args, &env);
        assert_eq!(error["kind"], "deviceNotFound", "{args:?}: {error}");
        assert_eq!(error["code"], error["kind"], "{args:?}: {error}");
    }
    let error = json_error(&["pair"], &[]);
    assert_eq!(error["kind"], "invalidInput", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("--device"),
        "{error}"
    );
    let error = json_error(
        &["staff", "init", "--staff-user", "clerk"],
        &[("PINBRIDGE_BANK_URL", "http://127.0.0.1:1")],
    );
    assert_eq!(error["kind"], "staffAuthRequired", "{error}");
    // A finer code stays beside the kind.
    let error = json_error(
        &[
            "pay",
            "--to",
            IBAN,
            "--payee-name",
            "Shop",
            "--amount",
            "1,2,3",
            "--currency",
            "EUR",
        ],
        &unreachable,
    );
    assert_eq!(error["kind"], "invalidInput", "{error}");
    assert_eq!(error["code"], "invalid_amount", "{error}");
}

#[test]
fn the_payee_name_is_required() {
    let state = tempfile::tempdir().unwrap();
    let output = pinbridge(
        state.path(),
        "C",
        &["pay", "--to", IBAN, "--amount", "1", "--currency", "EUR"],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--payee-name"));
}

#[test]
fn logs_export_into_a_reader_that_stops_after_one_line_exits_cleanly() {
    let state = tempfile::tempdir().unwrap();
    // Far more than a pipe holds, so the export is still writing when the reader goes.
    let mut log = std::fs::File::create(state.path().join("pinbridge.log")).unwrap();
    for n in 0..20_000 {
        writeln!(
            log,
            r#"{{"time":"2026-01-01T00:00:00Z","level":"info","source":"app","process":"pinbridge","pid":1,"message":"device_pay {n} padding padding"}}"#
        )
        .unwrap();
    }
    drop(log);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinbridge"))
        .env("PINBRIDGE_STATE_DIR", state.path())
        .env("PINBRIDGE_LOG_DIR", state.path())
        .args(["logs", "export"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read one line, then close the pipe.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("device_pay"), "{first}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}

/// `pinbridge demo | head -1`: the demo goes on printing after the reader left; it ends
/// quietly instead of panicking on the closed pipe (println! did).
#[test]
fn the_demo_into_a_reader_that_stops_after_one_line_exits_cleanly() {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinbridge"))
        .env("PINBRIDGE_STATE_DIR", state.path())
        .env("PINBRIDGE_LOG_DIR", state.path())
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("PinBridge demo"), "{first}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}
