//! The commands through Tauri's real IPC path (argument mapping, the ACL, error
//! serialisation, channels) on the mock runtime: no window, no webview process.

// Test harness helpers: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use companion::logfile::LogFile;
use pinbridge_app::logs::{LogLevel, LogRing, LogSource};
use pinbridge_app::{AppState, ShellOptions};
use serde_json::{Value, json};
use tauri::test::MockRuntime;
use tauri::{App, Manager, WebviewWindow};

use support::{Captured, Messages, invoke, seed_settings, start_app};

struct Harness {
    app: App<MockRuntime>,
    main: WebviewWindow<MockRuntime>,
    channel_messages: Captured,
    config_dir: tempfile::TempDir,
}

/// The app as `run()` builds it, on the mock runtime, with its setup run (which creates the
/// `main` window from tauri.conf.json) and every channel message captured.
fn start(sim_devices: &[SocketAddr]) -> Harness {
    let config_dir = tempfile::tempdir().unwrap();
    seed_settings(config_dir.path(), sim_devices);
    // The production build takes its bank from a profile; this one lets the user override it
    // (the settings tests set their own URL) and allows the simulators the device tests use.
    let profile = config_dir.path().join("bank.toml");
    std::fs::write(
        &profile,
        format!(
            "display_name = \"Test Bank\"\nurl = \"{PROFILE_URL}\"\n\
             transports = [\"usb\", \"sim\"]\nallow_user_override = true\n"
        ),
    )
    .unwrap();
    let options = ShellOptions {
        config_dir: Some(config_dir.path().to_owned()),
        // As `run()` has it: the ring writes the log file (here in the test's directory).
        logs: LogRing::with_file(100, LogFile::new(config_dir.path().join("logs"))),
        device_poll_interval: Duration::from_millis(100),
        data_dir: Some(config_dir.path().join("data")),
        embedded_default: false,
        bank_profile: Some(profile),
    };
    let (app, main, channel_messages) = start_app(options);
    Harness {
        app,
        main,
        channel_messages,
        config_dir,
    }
}

/// The bank of the production build's profile in these tests.
const PROFILE_URL: &str = "https://profile.bank.example/api";

/// The bank URL with nothing configured: the profile's, or empty (embedded) in the sandbox.
fn default_bank_url() -> &'static str {
    if cfg!(feature = "sandbox") {
        ""
    } else {
        PROFILE_URL
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn app_info_reports_the_version_and_the_sha256_of_the_running_executable() {
    let h = start(&[]);
    let info = invoke(&h.main, "app_info", json!({})).unwrap();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["backend"], "tauri");
    assert_eq!(info["embedded"], false);
    assert_eq!(info["flavour"], pinbridge_app::FLAVOUR);
    // The test binary is the running executable here; coreutils' sha256sum is the
    // independent computation.
    let exe = std::env::current_exe().unwrap();
    let sha256sum = std::process::Command::new("sha256sum")
        .arg(&exe)
        .output()
        .unwrap();
    let expected = String::from_utf8(sha256sum.stdout).unwrap();
    let expected = expected.split_whitespace().next().unwrap();
    assert_eq!(expected.len(), 64);
    assert_eq!(info["buildHash"], expected);
}

#[test]
fn settings_round_trip_through_ipc_and_persist_as_json() {
    let h = start(&[]);
    let before = invoke(&h.main, "settings_get", json!({})).unwrap();
    assert_eq!(before["bankUrl"], default_bank_url());
    let wanted = json!({
        "bankUrl": " https://bank.example/api ",
        "bankCaPem": null,
        "language": "zh-CN",
        "theme": "dark",
    });
    let saved = invoke(&h.main, "settings_set", json!({ "settings": wanted })).unwrap();
    assert_eq!(saved["bankUrl"], "https://bank.example/api");
    assert_eq!(invoke(&h.main, "settings_get", json!({})).unwrap(), saved);
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(h.config_dir.path().join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk["language"], "zh-CN");
    assert_eq!(on_disk["theme"], "dark");
    assert_eq!(
        on_disk["discovery"]["usb"], false,
        "the discovery section is kept"
    );
}

#[test]
fn invalid_settings_are_refused_as_invalid_input_with_kind_and_message() {
    let h = start(&[]);
    let bad = json!({
        "bankUrl": "http://bank.example",
        "bankCaPem": null,
        "language": "en",
        "theme": "light",
    });
    let error = invoke(&h.main, "settings_set", json!({ "settings": bad })).unwrap_err();
    assert_eq!(error["kind"], "invalidInput");
    assert!(error["message"].as_str().unwrap().contains("https"));
    assert_eq!(
        error.as_object().unwrap().len(),
        2,
        "exactly kind and message"
    );
    assert_eq!(
        invoke(&h.main, "settings_get", json!({})).unwrap()["theme"],
        "system"
    );
}

#[test]
fn device_list_and_status_show_the_configured_simulator_that_answers() {
    let listening = TcpListener::bind("127.0.0.1:0").unwrap();
    let live = listening.local_addr().unwrap();
    // A port nobody listens on: configured, unreachable, not listed.
    let dead = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let h = start(&[live, dead]);
    let devices = invoke(&h.main, "device_list", json!({})).unwrap();
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 1, "{devices:?}");
    let id = format!("sim:{live}");
    assert_eq!(devices[0]["deviceId"], id);
    assert_eq!(devices[0]["transport"], "sim");
    assert_eq!(devices[0]["connected"], false);
    // A pinpad-sim process is not a mock the app can press keys on (only in-process ones are).
    assert_eq!(devices[0]["mock"], false);

    let status = invoke(&h.main, "device_status", json!({ "deviceId": id })).unwrap();
    assert_eq!(status, devices[0]);

    let missing = invoke(
        &h.main,
        "device_status",
        json!({ "deviceId": format!("sim:{dead}") }),
    )
    .unwrap_err();
    assert_eq!(missing["kind"], "deviceNotFound");
}

#[test]
fn events_subscribe_sends_the_device_list_then_log_lines_and_device_changes() {
    let listening = TcpListener::bind("127.0.0.1:0").unwrap();
    let live = listening.local_addr().unwrap();
    let h = start(&[live]);
    let result = invoke(
        &h.main,
        "events_subscribe",
        json!({ "onEvent": "__CHANNEL__:77" }),
    );
    assert_eq!(result, Ok(Value::Null));

    let on_channel = |messages: &Messages, pred: &dyn Fn(&Value) -> bool| {
        messages
            .iter()
            .filter(|(id, m)| *id == 77 && pred(m))
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>()
    };
    let wait = |what: &str, pred: &dyn Fn(&Messages) -> bool| {
        h.channel_messages.wait_for(what, WAIT, |m| pred(m));
    };
    // First message: the list as the manager knows it.
    wait("the first devices event", &|m| {
        !on_channel(m, &|m| m["type"] == "devices").is_empty()
    });

    // A log line made by a command arrives as a `log` event, in the contract's shape.
    let state = h.app.state::<AppState>();
    state.logs.push(
        LogLevel::Warn,
        LogSource::Device,
        "key 00112233445566778899aabbccddeeff lost",
    );
    wait("the log event", &|m| {
        !on_channel(m, &|m| m["type"] == "log" && m["entry"]["level"] == "warn").is_empty()
    });
    let logged = on_channel(&h.channel_messages.lock(), &|m| {
        m["type"] == "log" && m["entry"]["level"] == "warn"
    });
    assert_eq!(logged[0]["entry"]["message"], "key [redacted] lost");
    assert_eq!(logged[0]["entry"]["source"], "device");

    // The simulator going away is noticed by the background watch and pushed as a new list.
    wait("the simulator to be listed", &|m| {
        !on_channel(m, &|m| {
            m["type"] == "devices" && m["devices"].as_array().is_some_and(|d| d.len() == 1)
        })
        .is_empty()
    });
    drop(listening);
    wait("the empty list after the simulator stopped", &|m| {
        let lists = on_channel(m, &|m| m["type"] == "devices");
        lists
            .last()
            .is_some_and(|m| m["devices"].as_array().is_some_and(|d| d.is_empty()))
    });
}

#[test]
fn confirmations_list_is_empty_until_the_bank_pushes_one() {
    let h = start(&[]);
    assert_eq!(
        invoke(&h.main, "confirmations_list", json!({})),
        Ok(json!([]))
    );
}

#[test]
fn logs_list_and_export_return_redacted_lines() {
    let h = start(&[]);
    let state = h.app.state::<AppState>();
    for i in 0..5 {
        state
            .logs
            .push(LogLevel::Info, LogSource::App, &format!("line {i}"));
    }
    state.logs.push(
        LogLevel::Error,
        LogSource::Bank,
        "mac fedcba9876543210fedcba9876543210 bad",
    );
    let newest = invoke(&h.main, "logs_list", json!({ "limit": 2 })).unwrap();
    let newest = newest.as_array().unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0]["message"], "line 4");
    assert_eq!(newest[1]["message"], "mac [redacted] bad");
    assert!(newest[0]["seq"].as_u64() < newest[1]["seq"].as_u64());

    let export = invoke(&h.main, "logs_export", json!({})).unwrap();
    assert!(
        export["fileName"]
            .as_str()
            .unwrap()
            .starts_with("pinbridge-log-")
    );
    assert_eq!(export["savedTo"], Value::Null);
    assert!(export["redactions"].as_u64().unwrap() >= 1);
    let content = export["content"].as_str().unwrap();
    assert!(
        content
            .lines()
            .any(|l| l.contains(" ERROR bank ") && l.ends_with("mac [redacted] bad")),
        "{content}"
    );
    assert!(!content.contains("fedcba98"));
    // What the screen showed is in the file, for the next start and for support.
    let on_disk = std::fs::read_to_string(h.config_dir.path().join("logs/pinbridge.log")).unwrap();
    assert!(
        on_disk.contains("line 4") && !on_disk.contains("fedcba98"),
        "{on_disk}"
    );
}

#[test]
fn diagnostics_export_gives_the_support_bundle_without_secrets() {
    let h = start(&[]);
    let state = h.app.state::<AppState>();
    state.logs.push(
        LogLevel::Warn,
        LogSource::Device,
        "session key 00112233445566778899aabbccddeeff refused",
    );
    let export = invoke(&h.main, "diagnostics_export", json!({})).unwrap();
    assert!(
        export["fileName"]
            .as_str()
            .unwrap()
            .starts_with("pinbridge-diagnostics-")
    );
    let content = export["content"].as_str().unwrap();
    let bundle: Value = serde_json::from_str(content).unwrap();
    assert!(
        bundle["program"]
            .as_str()
            .unwrap()
            .starts_with("PinBridge app ("),
        "{bundle}"
    );
    assert_eq!(bundle["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(bundle["os"]["family"], std::env::consts::OS);
    assert_eq!(bundle["pairingKeys"], "none");
    let problems = bundle["recentProblems"].as_array().unwrap();
    assert_eq!(
        problems.last().unwrap()["message"],
        "session key [redacted] refused"
    );
    assert!(!content.contains("00112233"), "{content}");
}

#[test]
fn the_acl_refuses_commands_the_capability_does_not_grant() {
    let h = start(&[]);
    // Granted to `main`: works.
    assert!(invoke(&h.main, "settings_get", json!({})).is_ok());

    // Plugin commands (no plugin is granted) and a name outside the app manifest: refused
    // before any handler runs.
    for cmd in [
        "app_shutdown",
        "plugin:fs|read_text_file",
        "plugin:shell|execute",
    ] {
        let refused = invoke(&h.main, cmd, json!({})).unwrap_err();
        let text = refused.as_str().unwrap_or_default();
        assert!(text.contains("not allowed"), "{cmd}: {refused}");
    }

    // The same granted command from a window the capability does not name: refused.
    let other = tauri::WebviewWindowBuilder::new(&h.app, "other", Default::default())
        .build()
        .unwrap();
    for (cmd, args) in [
        ("settings_get", json!({})),
        (
            "qa_key_press",
            json!({"deviceId": "in-process:PB-SIM-0001", "key": "ok"}),
        ),
    ] {
        let refused = invoke(&other, cmd, args).unwrap_err();
        assert!(
            refused.as_str().unwrap_or_default().contains("not allowed"),
            "{cmd}: {refused}"
        );
    }
}

#[test]
fn a_malformed_argument_is_rejected_before_the_command_runs() {
    let h = start(&[]);
    let refused = invoke(&h.main, "logs_list", json!({ "limit": "all" })).unwrap_err();
    assert!(
        refused.as_str().unwrap_or_default().contains("limit"),
        "{refused}"
    );
}
