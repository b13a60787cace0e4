//! The production flavour (no `sandbox` feature) through Tauri's real IPC path (mock runtime):
//! no QA command exists or is granted, and without a valid bank profile every flow command
//! refuses with `noBankProfile` while the app itself (settings, logs, devices) keeps working.

#![cfg(not(feature = "sandbox"))]
// Test harness helpers: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the other IPC tests; this one needs only part of it.
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pinbridge_app::logs::LogRing;
use pinbridge_app::{FLOW_COMMANDS, ShellOptions};
use serde_json::{Value, json};
use tauri::WebviewWindow;
use tauri::test::MockRuntime;

use support::{invoke, seed_settings, start_app};

const QA_COMMANDS: &[&str] = &[
    "qa_mock_start",
    "qa_mock_stop",
    "qa_key_press",
    "qa_trip_tamper",
    "qa_inject_fault",
    "qa_clear_faults",
    "qa_push_confirmation",
];

struct Harness {
    _app: tauri::App<MockRuntime>,
    main: WebviewWindow<MockRuntime>,
    _dir: tempfile::TempDir,
}

/// The production app with `profile` (or none) as its bank profile.
fn start(profile: Option<&str>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    seed_settings(dir.path(), &[]);
    let path = dir.path().join("bank.toml");
    if let Some(text) = profile {
        std::fs::write(&path, text).unwrap();
    }
    let options = ShellOptions {
        config_dir: Some(dir.path().to_owned()),
        logs: LogRing::new(100),
        device_poll_interval: Duration::from_secs(60),
        data_dir: Some(dir.path().join("data")),
        embedded_default: true,
        bank_profile: Some(path),
    };
    let (app, main, _captured) = start_app(options);
    Harness {
        _app: app,
        main,
        _dir: dir,
    }
}

fn assert_every_flow_refused(h: &Harness, naming: &str) {
    for cmd in FLOW_COMMANDS {
        let refused = invoke(&h.main, cmd, json!({})).unwrap_err();
        assert_eq!(refused["kind"], "noBankProfile", "{cmd}: {refused}");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains(naming), "{cmd}: {message}");
    }
}

#[test]
fn with_no_profile_every_flow_command_refuses_with_no_bank_profile() {
    let h = start(None);
    let info = invoke(&h.main, "app_info", json!({})).unwrap();
    assert_eq!(info["flavour"], "production");
    // Even with the embedded default asked for: the production build has none.
    assert_eq!(info["embedded"], false);
    assert_eq!(info["bankProfile"]["status"], "missing");
    assert!(
        info["bankProfile"]["path"]
            .as_str()
            .unwrap()
            .ends_with("bank.toml")
    );
    assert_every_flow_refused(&h, "bank.toml");

    // The rest of the app still works, but no bank can be typed in instead of a profile.
    let settings = invoke(&h.main, "settings_get", json!({})).unwrap();
    assert_eq!(settings["bankUrl"], "");
    let typed = json!({"bankUrl": "https://bank.example", "bankCaPem": null,
                       "language": "en", "theme": "dark"});
    let refused = invoke(&h.main, "settings_set", json!({ "settings": typed })).unwrap_err();
    assert_eq!(refused["kind"], "invalidInput");
    assert!(invoke(&h.main, "logs_list", json!({"limit": 10})).is_ok());
}

#[test]
fn an_invalid_profile_is_reported_naming_the_field_and_blocks_the_flows() {
    let h = start(Some(
        "display_name = \"Bank\"\nurl = \"http://bank.example\"\ntransports = [\"usb\"]\n",
    ));
    let info = invoke(&h.main, "app_info", json!({})).unwrap();
    assert_eq!(info["bankProfile"]["status"], "invalid");
    let error = info["bankProfile"]["error"].as_str().unwrap();
    assert!(error.contains("field `url`"), "{error}");
    assert_every_flow_refused(&h, "field `url`");
}

#[test]
fn a_valid_profile_sets_a_read_only_bank_and_lets_the_flows_through() {
    let h = start(Some(
        "display_name = \"Example Bank\"\nurl = \"https://bank.example/api\"\ntransports = [\"usb\"]\n",
    ));
    let info = invoke(&h.main, "app_info", json!({})).unwrap();
    assert_eq!(
        info["bankProfile"],
        json!({"status": "loaded", "path": info["bankProfile"]["path"].clone(),
               "displayName": "Example Bank", "url": "https://bank.example/api",
               "userOverride": false})
    );
    let settings = invoke(&h.main, "settings_get", json!({})).unwrap();
    assert_eq!(settings["bankUrl"], "https://bank.example/api");
    let moved = json!({"bankUrl": "https://other.example", "bankCaPem": null,
                       "language": "en", "theme": "dark"});
    let refused = invoke(&h.main, "settings_set", json!({ "settings": moved })).unwrap_err();
    assert_eq!(refused["kind"], "invalidInput");
    // Past the gate: the command itself answers (no such device here).
    let answer: Value = invoke(
        &h.main,
        "device_connect",
        json!({"deviceId": "usb:none", "onProgress": "__CHANNEL__:1"}),
    )
    .unwrap_err();
    assert_ne!(answer["kind"], "noBankProfile", "{answer}");
}

#[test]
fn no_qa_command_exists_or_is_granted() {
    let h = start(None);
    for cmd in QA_COMMANDS {
        let refused = invoke(
            &h.main,
            cmd,
            json!({"deviceId": "in-process:PB-SIM-0001", "key": "ok"}),
        )
        .unwrap_err();
        assert!(
            refused.as_str().unwrap_or_default().contains("not allowed"),
            "{cmd}: {refused}"
        );
    }
    // The capability files the production build reads (build.rs: capabilities/*.json).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let capability: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let granted = capability["permissions"].as_array().unwrap();
        assert!(!granted.is_empty());
        for permission in granted {
            let name = permission.as_str().unwrap();
            assert!(
                !name.contains("qa-") && !name.contains("qa_"),
                "{} grants {name}",
                file.display()
            );
        }
    }
}

/// The value of `key` in the top-level dict of an XML property list (strings only).
fn plist_string(plist: &str, key: &str) -> Option<String> {
    let after = plist
        .split_once(&format!("<key>{key}</key>"))?
        .1
        .trim_start();
    let value = after.strip_prefix("<string>")?;
    Some(value.split_once("</string>")?.0.to_owned())
}

#[test]
fn the_packages_declare_what_each_os_asks_of_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf: Value =
        serde_json::from_slice(&std::fs::read(root.join("tauri.conf.json")).unwrap()).unwrap();
    let bundle = &conf["bundle"];
    // macOS ends an app at its first Bluetooth scan when Info.plist has no usage text; the
    // bundler merges src-tauri/Info.plist, and the texts are translated for each language.
    let plist = std::fs::read_to_string(root.join("Info.plist")).unwrap();
    let usage = plist_string(&plist, "NSBluetoothAlwaysUsageDescription").unwrap();
    assert!(usage.contains("PIN pad"), "{usage}");
    let files = bundle["macOS"]["files"].as_object().unwrap();
    for language in ["en", "zh-Hans"] {
        let source = files[&format!("Resources/{language}.lproj/InfoPlist.strings")]
            .as_str()
            .unwrap();
        let strings = std::fs::read_to_string(root.join(source)).unwrap();
        assert!(
            strings.contains("\"NSBluetoothAlwaysUsageDescription\" = \""),
            "{language}: {strings}"
        );
        assert!(plist.contains(&format!("<string>{language}</string>")));
    }
    // Windows: WebView2 installed by the installer when missing; installers in both of the
    // app's languages.
    let windows = &bundle["windows"];
    assert_eq!(windows["webviewInstallMode"]["type"], "embedBootstrapper");
    assert_eq!(
        windows["nsis"]["languages"],
        json!(["English", "SimpChinese"])
    );
    assert_eq!(windows["wix"]["language"], json!(["en-US", "zh-CN"]));
    // Linux: the udev rule that lets a desktop user open the PIN pad without root.
    let rule = bundle["linux"]["deb"]["files"]["/usr/lib/udev/rules.d/70-pinbridge.rules"]
        .as_str()
        .unwrap();
    assert!(root.join(rule).is_file());
}
