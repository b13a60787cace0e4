//! Tauri's build step, with an app manifest: every command the app defines is listed here, so
//! tauri-build generates an `allow-<command>` permission for each and the runtime refuses any
//! command a window's capability does not grant.
//!
//! Per flavour: the production build (no `sandbox` feature) has no `qa_*` command, so it has
//! no `allow-qa-*` permission either, and its capabilities are `capabilities/*.json` only;
//! the sandbox build adds the QA commands and `capabilities/sandbox/`.

use tauri_build::{AppManifest, Attributes};

/// Every flavour's commands.
const COMMANDS: &[&str] = &[
    "app_info",
    "events_subscribe",
    "device_list",
    "device_status",
    "confirmations_list",
    "logs_list",
    "logs_export",
    "settings_get",
    "settings_set",
    "device_connect",
    "device_disconnect",
    "pairing_begin",
    "pairing_confirm",
    "pairing_cancel",
    "login",
    "logout",
    "payment_prepare",
    "payment_approve",
    "payment_cancel",
    "staff_sign_in",
    "staff_sign_out",
    "staff_initialise",
    "staff_enrol",
    "staff_bind",
    "staff_revoke",
    "staff_rebind",
    "staff_tamper_reset",
    "confirmation_approve",
];

/// The sandbox flavour's QA commands.
const QA_COMMANDS: &[&str] = &[
    "qa_mock_start",
    "qa_mock_stop",
    "qa_key_press",
    "qa_trip_tamper",
    "qa_inject_fault",
    "qa_clear_faults",
    "qa_push_confirmation",
];

fn main() {
    let sandbox = std::env::var_os("CARGO_FEATURE_SANDBOX").is_some();
    let mut commands = COMMANDS.to_vec();
    let capabilities = if sandbox {
        commands.extend_from_slice(QA_COMMANDS);
        "./capabilities/**/*.json"
    } else {
        "./capabilities/*.json"
    };
    println!("cargo::rerun-if-changed=capabilities");
    // The manifest wants a 'static list; the build script lives for one run.
    let commands: &'static [&'static str] = Box::leak(commands.into_boxed_slice());
    let manifest = AppManifest::new().commands(commands);
    let attributes = Attributes::new()
        .app_manifest(manifest)
        .capabilities_path_pattern(capabilities);
    if let Err(error) = tauri_build::try_build(attributes) {
        // A build script reports failure by exiting non-zero; the message says which file.
        println!("cargo::error=tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
