//! The commands the screens invoke, by the names in ui/README.md. Each is a typed async
//! function returning `Result<T, AppError>`; Tauri maps the camelCase argument names the page
//! sends to these snake_case parameters.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tauri::ipc::Channel;
use tauri::{Runtime, State, Webview};

use crate::AppState;
use crate::confirmations::ConfirmationRequest;
use crate::devices::DeviceStatus;
use crate::error::AppError;
use crate::events::AppEvent;
use crate::logs::{LogEntry, LogExport};
use crate::settings::Settings;

/// What `app_info` returns (`AppInfo` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// The app's version.
    pub version: String,
    /// Hex SHA-256 of the running executable: the app's part of the integrity report.
    pub build_hash: String,
    /// Always `tauri` here (the UI's MockBackend says `mock`).
    pub backend: &'static str,
    /// Whether the in-process sandbox bank and mock device are running.
    pub embedded: bool,
    /// `production` or `sandbox` (the screens hide QA and mark the sandbox by it).
    pub flavour: &'static str,
    /// The bank profile (production flavour; `None` in the sandbox).
    pub bank_profile: Option<crate::profile::ProfileInfo>,
}

/// Hex SHA-256 of the file this process was started from.
pub fn hash_executable() -> Result<String, AppError> {
    let path = std::env::current_exe().map_err(|error| {
        AppError::Internal(format!("cannot locate the app's executable: {error}"))
    })?;
    let unreadable = |error: std::io::Error| {
        AppError::Internal(format!("cannot read {}: {error}", path.display()))
    };
    let mut file = std::fs::File::open(&path).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 16];
    loop {
        let read = std::io::Read::read(&mut file, &mut buffer).map_err(unreadable)?;
        match buffer.get(..read) {
            Some([]) | None => break,
            Some(chunk) => hasher.update(chunk),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The app's version and build hash.
#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo, AppError> {
    let build_hash = state
        .build_hash
        .get_or_try_init(|| async {
            tauri::async_runtime::spawn_blocking(hash_executable)
                .await
                .map_err(|error| AppError::Internal(format!("hashing stopped: {error}")))?
        })
        .await?
        .clone();
    Ok(AppInfo {
        version: state.version.clone(),
        build_hash,
        backend: "tauri",
        embedded: state.settings.settings().bank_url.is_empty()
            && !matches!(
                state.flows.embedded_status(),
                crate::flows::EmbeddedStatus::Off
            ),
        flavour: crate::FLAVOUR,
        bank_profile: state.profile.clone(),
    })
}

/// Sends app-wide events (device list changes, log lines) to `on_event`, starting with the
/// current device list. One channel per page: subscribing again replaces the old one.
#[tauri::command]
pub async fn events_subscribe<R: Runtime>(
    webview: Webview<R>,
    state: State<'_, AppState>,
    on_event: Channel<AppEvent>,
) -> Result<(), AppError> {
    let devices = crate::flows::list_now(&state);
    on_event
        .send(AppEvent::Devices { devices })
        .map_err(|error| AppError::Internal(format!("cannot reach the page: {error}")))?;
    state.subscribers.subscribe(webview.label(), on_event);
    tracing::info!("events: {} page(s) subscribed", state.subscribers.count());
    Ok(())
}

/// Every PIN pad on the enabled transports, rescanned now.
#[tauri::command]
pub async fn device_list(state: State<'_, AppState>) -> Result<Vec<DeviceStatus>, AppError> {
    Ok(crate::flows::list(&state).await)
}

/// One PIN pad's status, rescanned now.
#[tauri::command]
pub async fn device_status(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<DeviceStatus, AppError> {
    crate::flows::list(&state)
        .await
        .into_iter()
        .find(|d| d.device_id == device_id)
        .ok_or_else(|| AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed")))
}

/// Confirmation requests the bank pushed and the customer has not answered yet.
#[tauri::command]
pub async fn confirmations_list(
    state: State<'_, AppState>,
) -> Result<Vec<ConfirmationRequest>, AppError> {
    Ok(state.confirmations.list())
}

/// The newest `limit` log lines, oldest first.
#[tauri::command]
pub async fn logs_list(state: State<'_, AppState>, limit: u32) -> Result<Vec<LogEntry>, AppError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(state.logs.list(limit))
}

/// The whole log as text, secrets redacted, for the page to offer as a download.
#[tauri::command]
pub async fn logs_export(state: State<'_, AppState>) -> Result<LogExport, AppError> {
    let export = state.logs.export();
    tracing::info!(
        "log exported ({} lines, {} secrets redacted)",
        export.content.lines().count(),
        export.redactions
    );
    Ok(export)
}

/// The support bundle (versions, OS, transports seen, devices, the last flow events and
/// problems from the log file; nothing secret), as pretty JSON for the page to offer as a
/// download: the same bundle as `pinbridge diagnostics` (companion::diagnostics).
#[tauri::command]
pub async fn diagnostics_export(state: State<'_, AppState>) -> Result<LogExport, AppError> {
    let devices = crate::devices::statuses(&state.devices.devices())
        .into_iter()
        .filter_map(|d| serde_json::to_value(d).ok())
        .collect();
    let settings = state.settings.settings();
    let facts = companion::diagnostics::Facts {
        program: format!("PinBridge app ({} build)", crate::FLAVOUR),
        version: state.version.clone(),
        bank_url: (!settings.bank_url.is_empty()).then_some(settings.bank_url),
        key_protection: state.flows.pairing_protection(),
        devices,
    };
    let log = state
        .logs
        .file()
        .cloned()
        .unwrap_or_else(companion::logfile::LogFile::at_default_dir);
    let (bundle, redactions) =
        companion::diagnostics::collect(&facts, &log, companion::diagnostics::DEFAULT_EVENTS);
    let content =
        serde_json::to_string_pretty(&bundle).map_err(|e| AppError::Internal(e.to_string()))?;
    tracing::info!("diagnostics exported ({redactions} secrets redacted)");
    Ok(LogExport {
        file_name: format!(
            "pinbridge-diagnostics-{}.json",
            time::OffsetDateTime::now_utc().unix_timestamp()
        ),
        content,
        redactions,
        saved_to: None,
    })
}

/// The current settings.
#[tauri::command]
pub async fn settings_get(state: State<'_, AppState>) -> Result<Settings, AppError> {
    Ok(state.settings.settings())
}

/// Checks, saves and returns new settings (as normalised), or `invalidInput`.
#[tauri::command]
pub async fn settings_set(
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Settings, AppError> {
    match state.settings.set(settings) {
        Ok(saved) => {
            let bank = if saved.bank_url.is_empty() {
                "embedded sandbox"
            } else {
                saved.bank_url.as_str()
            };
            tracing::info!("settings saved (bank: {bank})");
            Ok(saved)
        }
        Err(error) => {
            tracing::warn!("settings refused: {error}");
            Err(error)
        }
    }
}
