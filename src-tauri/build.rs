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
    ]);
    if let Err(error) = tauri_build::try_build(Attributes::new().app_manifest(manifest)) {
        // A build script reports failure by exiting non-zero; the message says which file.
        println!("cargo::error=tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
