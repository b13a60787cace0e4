//! Tauri's build step, with an app manifest: every command the app defines is listed here, so
//! tauri-build generates an `allow-<command>` permission for each and the runtime refuses any
//! command a window's capability does not grant.

use tauri_build::{AppManifest, Attributes};

fn main() {
    let manifest = AppManifest::new().commands(&[
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
        "qa_mock_start",
        "qa_mock_stop",
        "qa_key_press",
        "qa_trip_tamper",
        "qa_inject_fault",
        "qa_clear_faults",
        "qa_push_confirmation",
        "confirmation_approve",
    ]);
    if let Err(error) = tauri_build::try_build(Attributes::new().app_manifest(manifest)) {
        // A build script reports failure by exiting non-zero; the message says which file.
        println!("cargo::error=tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
