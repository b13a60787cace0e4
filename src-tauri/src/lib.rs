//! The PinBridge desktop shell: Tauri commands and events over the `companion` library, and
//! nothing else. The screens (ui/) call the commands by name; ui/README.md is the contract.
//!
//! Every command is listed in build.rs's app manifest, so the runtime checks each call against
//! the window's capability (capabilities/main.json) and refuses anything not granted there.
//!
//! Two flavours (README, "Two flavours"): the production build (default features) links no
//! sandbox code, registers no `qa_*` command and takes its bank from the bank profile
//! (`profile.rs`); the sandbox build (`--features sandbox`) adds the embedded default (an
//! in-process sandbox bank and mock PIN pads) and the QA commands, and says so in its title.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use companion::app::{AppCore, CoreConfig, EmbeddedStatus};
use companion::bank::BankSettings;
use companion::devices::DeviceManager;
use tauri::{Builder, Manager, Runtime};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub mod commands;
#[cfg(feature = "sandbox")]
pub mod embedded;
pub mod error;
pub mod events;
pub mod logs;
#[cfg(feature = "sandbox")]
pub mod qa;

// The settings store and the bank profile live in the core (the CLI can read them too).
pub use companion::app::{profile, settings};

/// Which flavour this build is: `sandbox` or `production`.
pub const FLAVOUR: &str = if cfg!(feature = "sandbox") {
    "sandbox"
} else {
    "production"
};

/// Registration and the command lists, from the one table (src/command_table.rs).
macro_rules! command_table {
    (plain: [$($plain:ident),* $(,)?], flow: [$($flow:ident),* $(,)?], qa: [$($qa:ident),* $(,)?] $(,)?) => {
        /// The commands that start or drive a flow with the bank (and need one): refused with
        /// `noBankProfile` when the production build has no valid bank profile.
        pub const FLOW_COMMANDS: &[&str] = &[$(stringify!($flow)),*];
        /// Every flavour's commands.
        pub const COMMANDS: &[&str] = &[$(stringify!($plain),)* $(stringify!($flow)),*];
        /// The sandbox flavour's QA commands.
        pub const QA_COMMANDS: &[&str] = &[$(stringify!($qa)),*];

        /// Every command this flavour has.
        fn commands<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![
                $(commands::$plain,)*
                $(commands::$flow,)*
                $(#[cfg(feature = "sandbox")] qa::$qa,)*
            ]
        }
    };
}
include!("command_table.rs");

use crate::error::AppError;
use crate::events::{AppEvent, LogLine, Subscribers};
use crate::logs::LogRing;
use crate::profile::ProfileInfo;
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
    /// Where the app keeps its data (pairing keys, the last device used, the embedded
    /// sandbox's files);
    /// `None`: the platform's data directory for the app (`~/.local/share/<identifier>`).
    pub data_dir: Option<PathBuf>,
    /// Start the embedded default (sandbox bank and mock PIN pad) when no bank URL is
    /// configured. On in the app; tests of other parts turn it off. The sandbox flavour only.
    pub embedded_default: bool,
    /// The bank profile to read (production flavour); `None`: the OS's path
    /// ([`profile::default_path`]).
    pub bank_profile: Option<PathBuf>,
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
            bank_profile: None,
        }
    }
}

/// The state every command reads: managed by Tauri, one per app.
#[derive(Debug)]
pub struct AppState {
    /// The app's version (from tauri.conf.json / Cargo.toml).
    pub version: String,
    /// Settings in memory and on disk.
    pub settings: Arc<SettingsStore>,
    /// The log ring.
    pub logs: LogRing,
    /// Pages listening for app events.
    pub subscribers: Subscribers,
    /// SHA-256 of the running executable, computed on first use.
    pub build_hash: tokio::sync::OnceCell<String>,
    /// The app's core: devices, sessions, pairings, logins, payments, staff, confirmations.
    pub core: Arc<AppCore>,
    /// The in-process mock PIN pads (sandbox flavour).
    #[cfg(feature = "sandbox")]
    pub mocks: embedded::MockDevices,
    /// The bank profile as loaded (production flavour); `None` in the sandbox flavour.
    pub profile: Option<ProfileInfo>,
}

impl AppState {
    /// Why no flow may start: the production build without a valid bank profile.
    pub fn no_bank(&self) -> Option<AppError> {
        match &self.profile {
            Some(ProfileInfo::Missing { path }) => Some(AppError::NoBankProfile(format!(
                "no bank is configured: the administrator installs the bank's profile at {path}"
            ))),
            Some(ProfileInfo::Invalid { error, .. }) => Some(AppError::NoBankProfile(format!(
                "the installed bank profile is not valid: {error}"
            ))),
            Some(ProfileInfo::Loaded { .. }) | None => None,
        }
    }
}

/// The app's context (configuration, capabilities, assets) for any runtime: the real one
/// (Wry) in the app, the mock runtime in the tests.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    #[cfg_attr(not(feature = "sandbox"), allow(unused_mut))]
    let mut context = tauri::generate_context!();
    // The sandbox says so in the title bar, whatever the page does.
    #[cfg(feature = "sandbox")]
    for window in &mut context.config_mut().app.windows {
        window.title = format!("{} — SANDBOX", window.title);
    }
    context
}

/// The command handler: [`commands`] behind the bank-profile gate.
fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    let commands = commands();
    move |invoke: tauri::ipc::Invoke<R>| {
        if FLOW_COMMANDS.contains(&invoke.message.command())
            && let Some(state) = invoke.message.webview_ref().try_state::<AppState>()
            && let Some(error) = state.no_bank()
        {
            tracing::warn!("{} refused: {error}", invoke.message.command());
            invoke.resolver.reject(error);
            return true;
        }
        commands(invoke)
    }
}

/// Adds the commands and the start-up work (settings, device watch, event forwarding) to a
/// builder.
pub fn build<R: Runtime>(builder: Builder<R>, options: ShellOptions) -> Builder<R> {
    builder.invoke_handler(handler()).setup(move |app| {
        let config_dir = match options.config_dir {
            Some(dir) => dir,
            None => app.path().app_config_dir()?,
        };
        let (settings, recovered) = SettingsStore::load_or_recover(&config_dir)?;
        if let Some(words) = recovered {
            tracing::warn!("{words}");
        }
        #[cfg(feature = "sandbox")]
        let (settings, discovery, profile) = {
            let discovery = settings.discovery();
            (settings, discovery, None)
        };
        #[cfg(not(feature = "sandbox"))]
        let (settings, discovery, profile) = apply_profile(settings, &options.bank_profile);
        let data_dir = match options.data_dir {
            Some(dir) => dir,
            None => app.path().app_data_dir()?,
        };
        let settings = Arc::new(settings);
        let embedded = cfg!(feature = "sandbox")
            && options.embedded_default
            && settings.settings().bank_url.is_empty();
        let subscribers = Subscribers::default();
        let manager = DeviceManager::with_platform_sources(&discovery.to_config());
        #[cfg(feature = "sandbox")]
        let mocks = embedded::MockDevices::default();
        #[cfg(feature = "sandbox")]
        mocks.set_display_language(embedded::display_language(settings.settings().language));
        #[cfg(feature = "sandbox")]
        let manager = manager.with_source(Arc::new(mocks.clone()));
        let bank_settings = settings.clone();
        let emit_to = subscribers.clone();
        let core = Arc::new(
            AppCore::new(CoreConfig {
                keys: companion::keystore::KeyStore::new(data_dir.join("pairings")),
                bank: Arc::new(move || {
                    let settings = bank_settings.settings();
                    BankSettings {
                        url: settings.bank_url,
                        ca_pem: settings.bank_ca_pem.map(String::into_bytes),
                    }
                }),
                embedded: if embedded {
                    EmbeddedStatus::Starting
                } else {
                    EmbeddedStatus::Off
                },
                emit: Arc::new(move |event| emit_to.emit(&AppEvent::from(event))),
                devices: manager,
                #[cfg(feature = "sandbox")]
                mocks: Some(Arc::new(mocks.clone())),
                #[cfg(not(feature = "sandbox"))]
                mocks: None,
                device_cas: trusted_device_cas(),
            })
            // The last device used is connected again by itself when it is listed (at start, on
            // plug-in): a restart keeps the device and, with its pairing stored, the pairing.
            .remembering_last_device(data_dir.join("last-device.json")),
        );
        // A pairing store of the old format (its key in a file beside it) moves into the OS
        // key store now, on the first start, and its key file is deleted.
        if let Err(error) = companion::keystore::KeyStore::new(data_dir.join("pairings")).load() {
            tracing::warn!("pairing key store: {error}");
        }
        tracing::info!(
            "PinBridge {} ({FLAVOUR} build) started; settings in {}",
            app.package_info().version,
            settings.path().display()
        );
        let state = AppState {
            version: app.package_info().version.to_string(),
            settings,
            logs: options.logs,
            subscribers,
            build_hash: tokio::sync::OnceCell::new(),
            core: core.clone(),
            #[cfg(feature = "sandbox")]
            mocks: mocks.clone(),
            profile,
        };
        forward_logs(&state);
        // The header's bank fact: is the bank there? (Waits for the embedded one to start.)
        let probe = core.clone();
        tauri::async_runtime::spawn(async move { probe.probe_bank().await });
        tauri::async_runtime::spawn(core.clone().watch_devices(options.device_poll_interval));
        tauri::async_runtime::spawn(core.clone().watch_mocks());
        #[cfg(feature = "sandbox")]
        if embedded {
            tauri::async_runtime::spawn(embedded::start_embedded(
                core,
                mocks,
                data_dir.join("embedded"),
            ));
        }
        app.manage(state);
        Ok(())
    })
}

/// The production build's bank: the profile's URL, CA and transports, or no bank at all.
#[cfg(not(feature = "sandbox"))]
fn apply_profile(
    settings: SettingsStore,
    path: &Option<PathBuf>,
) -> (SettingsStore, settings::Discovery, Option<ProfileInfo>) {
    use crate::profile::Transport;
    use crate::settings::BankPolicy;
    let path = path.clone().unwrap_or_else(profile::default_path);
    let loaded = profile::load(&path);
    let info = ProfileInfo::of(&path, &loaded);
    let mut discovery = settings.discovery();
    let policy = match loaded {
        Ok(profile) => {
            tracing::info!(
                "bank profile {}: {} at {}",
                path.display(),
                profile.display_name,
                profile.url
            );
            discovery.usb &= profile.allows(Transport::Usb);
            discovery.ble &= profile.allows(Transport::Ble);
            if !profile.allows(Transport::Sim) {
                discovery.sim_devices.clear();
            }
            BankPolicy::Profile {
                url: profile.url,
                ca_pem: profile.ca_pem,
                user_override: profile.allow_user_override,
            }
        }
        Err(error) => {
            tracing::warn!("no bank: {error}");
            BankPolicy::Unprovisioned
        }
    };
    (settings.with_policy(policy), discovery, Some(info))
}

/// Every new log line goes to the subscribed pages.
fn forward_logs(state: &AppState) {
    let mut lines = state.logs.subscribe();
    let subscribers = state.subscribers.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match lines.recv().await {
                Ok(entry) => subscribers.emit(&AppEvent::Log(LogLine::Log { entry })),
                // Lines missed while the pages were slow are still in the ring.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Runs the desktop app until its window closes.
pub fn run() -> ExitCode {
    let logs = LogRing::with_file(
        LogRing::DEFAULT_CAPACITY,
        companion::logfile::LogFile::at_default_dir(),
    );
    // The ring is the only sink: it redacts before it stores or writes the log file, so no
    // secret reaches a terminal or a file. PINBRIDGE_LOG_STDERR=1 echoes its (redacted) lines for debugging.
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

/// The device-issuing CAs the genuine check trusts: `PINBRIDGE_DEVICE_CA` (SEC1 hex,
/// comma-separated), as for `pinbridge device info`. A key that does not parse is logged and
/// left out (the devices it issued then show "not verified" or "not genuine", never more).
fn trusted_device_cas() -> Vec<firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey> {
    std::env::var("PINBRIDGE_DEVICE_CA")
        .unwrap_or_default()
        .split(',')
        .filter(|text| !text.trim().is_empty())
        .filter_map(|text| {
            companion::integrity::ca_from_hex(text)
                .map_err(|error| tracing::warn!("PINBRIDGE_DEVICE_CA {error}"))
                .ok()
        })
        .collect()
}
