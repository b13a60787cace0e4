//! The PinBridge desktop shell: Tauri commands and events over the `companion` library, and
//! nothing else. The screens (ui/) call the commands by name; ui/README.md is the contract.
//!
//! Every command is listed in build.rs's app manifest, so the runtime checks each call against
//! the window's capability (capabilities/main.json) and refuses anything not granted there.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use companion::devices::{DeviceEvent, DeviceManager};
use tauri::{Builder, Manager, Runtime};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub mod commands;
pub mod confirmations;
pub mod devices;
pub mod embedded;
pub mod error;
pub mod events;
pub mod flows;
pub mod logs;
pub mod settings;

use crate::confirmations::ConfirmationInbox;
use crate::events::{AppEvent, Subscribers};
use crate::flows::{EmbeddedStatus, Flows};
use crate::logs::LogRing;
use crate::settings::SettingsStore;

/// What the shell is started with.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// Where `settings.json` lives; `None`: the platform's config directory for the app
    /// (`~/.config/<identifier>` on Linux).
    pub config_dir: Option<PathBuf>,
    /// The log ring the process's tracing subscriber feeds.
    pub logs: LogRing,
    /// How often transports without hotplug notifications (simulators, BLE) are rescanned.
    pub device_poll_interval: Duration,
    /// Where the app keeps its data (pairing keys, the embedded bank's per-run files);
    /// `None`: the platform's data directory for the app (`~/.local/share/<identifier>`).
    pub data_dir: Option<PathBuf>,
    /// Start the embedded default (sandbox bank and mock PIN pad) when no bank URL is
    /// configured. On in the app; tests of other parts turn it off.
    pub embedded_default: bool,
}

impl ShellOptions {
    /// The defaults for a desktop run: platform config directory, a two-second rescan.
    pub fn new(logs: LogRing) -> Self {
        ShellOptions {
            config_dir: None,
            logs,
            device_poll_interval: Duration::from_secs(2),
            data_dir: None,
            embedded_default: true,
        }
    }
}

/// The state every command reads: managed by Tauri, one per app.
#[derive(Debug)]
pub struct AppState {
    /// The app's version (from tauri.conf.json / Cargo.toml).
    pub version: String,
    /// Settings in memory and on disk.
    pub settings: SettingsStore,
    /// The log ring.
    pub logs: LogRing,
    /// Pages listening for app events.
    pub subscribers: Subscribers,
    /// PIN pads on the transports the settings enable.
    pub devices: DeviceManager,
    /// SHA-256 of the running executable, computed on first use.
    pub build_hash: tokio::sync::OnceCell<String>,
    /// Confirmation requests the bank pushed.
    pub confirmations: ConfirmationInbox,
    /// Device sessions, pairings, logins, payments, staff, the embedded default.
    pub flows: Arc<Flows>,
}

/// The app's context (configuration, capabilities, assets) for any runtime: the real one
/// (Wry) in the app, the mock runtime in the tests.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Adds the commands and the start-up work (settings, device watch, event forwarding) to a
/// builder.
pub fn build<R: Runtime>(builder: Builder<R>, options: ShellOptions) -> Builder<R> {
    builder
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::events_subscribe,
            commands::device_list,
            commands::device_status,
            commands::confirmations_list,
            commands::logs_list,
            commands::logs_export,
            commands::settings_get,
            commands::settings_set,
            flows::device_connect,
            flows::device_disconnect,
            flows::pairing_begin,
            flows::pairing_confirm,
            flows::pairing_cancel,
            flows::login,
            flows::logout,
            flows::payment_prepare,
            flows::payment_approve,
            flows::payment_cancel,
            flows::staff_sign_in,
            flows::staff_sign_out,
            flows::staff_initialise,
            flows::staff_enrol,
            flows::staff_bind,
            flows::staff_revoke,
            flows::staff_rebind,
            flows::staff_tamper_reset,
            flows::qa_mock_start,
            flows::qa_mock_stop,
            flows::qa_key_press,
            flows::qa_trip_tamper,
            flows::qa_inject_fault,
            flows::qa_clear_faults,
            flows::qa_push_confirmation,
            flows::confirmation_approve,
        ])
        .setup(move |app| {
            let config_dir = match options.config_dir {
                Some(dir) => dir,
                None => app.path().app_config_dir()?,
            };
            let (settings, recovered) = SettingsStore::load_or_recover(&config_dir)?;
            if let Some(words) = recovered {
                tracing::warn!("{words}");
            }
            let discovery = settings.discovery();
            let data_dir = match options.data_dir {
                Some(dir) => dir,
                None => app.path().app_data_dir()?,
            };
            let embedded = options.embedded_default && settings.settings().bank_url.is_empty();
            let flows = Arc::new(Flows::new(
                data_dir.join("pairings"),
                if embedded {
                    EmbeddedStatus::Starting
                } else {
                    EmbeddedStatus::Off
                },
            ));
            let manager = DeviceManager::with_platform_sources(&discovery.to_config())
                .with_source(Arc::new(flows.mocks.clone()));
            tracing::info!(
                "PinBridge {} started; settings in {}",
                app.package_info().version,
                settings.path().display()
            );
            let state = AppState {
                version: app.package_info().version.to_string(),
                settings,
                logs: options.logs,
                subscribers: Subscribers::default(),
                devices: manager,
                build_hash: tokio::sync::OnceCell::new(),
                confirmations: ConfirmationInbox::default(),
                flows,
            };
            forward_logs(&state);
            watch_devices(&state, options.device_poll_interval);
            tauri::async_runtime::spawn(flows::watch_mock_devices(&state));
            if embedded {
                tauri::async_runtime::spawn(flows::start_embedded(
                    state.flows.clone(),
                    state.devices.clone(),
                    data_dir.join("embedded"),
                ));
            }
            app.manage(state);
            Ok(())
        })
}

/// Every new log line goes to the subscribed pages.
fn forward_logs(state: &AppState) {
    let mut lines = state.logs.subscribe();
    let subscribers = state.subscribers.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match lines.recv().await {
                Ok(entry) => subscribers.emit(&AppEvent::Log { entry }),
                // Lines missed while the pages were slow are still in the ring.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Keeps the device list current and pushes it to the pages after every change.
fn watch_devices(state: &AppState, poll_interval: Duration) {
    let manager = state.devices.clone();
    let subscribers = state.subscribers.clone();
    let flows = state.flows.clone();
    tauri::async_runtime::spawn(async move {
        let mut changes = manager.subscribe();
        let _watch = manager.watch(poll_interval).await;
        loop {
            match changes.recv().await {
                Ok(event) => {
                    let words = devices::describe(&event);
                    if matches!(event, DeviceEvent::SourceFailed { .. }) {
                        tracing::warn!(target: "companion::devices", "{words}");
                    } else {
                        tracing::info!(target: "companion::devices", "{words}");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
            subscribers.emit(&AppEvent::Devices {
                devices: flows.describe(devices::statuses(&manager.devices())),
            });
        }
    });
}

/// Runs the desktop app until its window closes.
pub fn run() -> ExitCode {
    let logs = LogRing::new(LogRing::DEFAULT_CAPACITY);
    // The ring is the only sink: it redacts before it stores, so no secret reaches a terminal
    // or a file either. PINBRIDGE_LOG_STDERR=1 echoes its (redacted) lines for debugging.
    let _ = tracing_subscriber::registry().with(logs.layer()).try_init();
    if std::env::var_os("PINBRIDGE_LOG_STDERR").is_some() {
        let mut lines = logs.subscribe();
        std::thread::spawn(move || {
            while let Ok(entry) = lines.blocking_recv() {
                eprintln!(
                    "{} {:?} {:?} {}",
                    entry.time, entry.level, entry.source, entry.message
                );
            }
        });
    }
    let app = build(tauri::Builder::default(), ShellOptions::new(logs));
    match app.run(context()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pinbridge-app: {error}");
            ExitCode::FAILURE
        }
    }
}
