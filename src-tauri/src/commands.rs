//! The commands the screens invoke, by the names in the command table (command_table.rs).
//! Each is a thin typed wrapper over the app core (`companion::app`) returning
//! `Result<T, AppError>`; Tauri maps the camelCase argument names the page sends to these
//! snake_case parameters, and a long operation's progress goes to its `onProgress` channel.

use std::sync::Arc;

use companion::app::{
    BankDevice, ConfirmationRequest, ConfirmationResult, DeviceProgress, DeviceStatus,
    EmbeddedStatus, LoginSession, LogoutResult, LossReport, PairingStart, PaymentHistory,
    PaymentRequest, PaymentResult, PinChangeResult, PreparedPayment, ProgressSink, SerialAction,
    StaffActionResult, StaffSession, WipeResult,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tauri::ipc::Channel;
use tauri::{Runtime, State, Webview};

use crate::AppState;
use crate::error::AppError;
use crate::events::AppEvent;
use crate::logs::{LogEntry, LogExport};
use crate::settings::Settings;

/// A command's progress channel as the core's progress sink.
fn progress(channel: Channel<DeviceProgress>) -> ProgressSink {
    Arc::new(move |progress| {
        // A page that went away no longer listens; the operation goes on.
        let _ = channel.send(progress);
    })
}

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
            && !matches!(state.core.embedded_status(), EmbeddedStatus::Off),
        flavour: crate::FLAVOUR,
        bank_profile: state.profile.clone(),
    })
}

/// Sends app-wide events (device list changes, log lines) to `on_event`, starting with the
/// current device list and the bank's reachability. One channel per page: subscribing again replaces the old one.
#[tauri::command]
pub async fn events_subscribe<R: Runtime>(
    webview: Webview<R>,
    state: State<'_, AppState>,
    on_event: Channel<AppEvent>,
) -> Result<(), AppError> {
    let devices = state.core.device_list_now();
    on_event
        .send(AppEvent::from(companion::app::CoreEvent::Devices {
            devices,
        }))
        .map_err(|error| AppError::Internal(format!("cannot reach the page: {error}")))?;
    on_event
        .send(AppEvent::from(state.core.bank_reach()))
        .map_err(|error| AppError::Internal(format!("cannot reach the page: {error}")))?;
    state.subscribers.subscribe(webview.label(), on_event);
    tracing::info!("events: {} page(s) subscribed", state.subscribers.count());
    Ok(())
}

/// Every PIN pad on the enabled transports, rescanned now.
#[tauri::command]
pub async fn device_list(state: State<'_, AppState>) -> Result<Vec<DeviceStatus>, AppError> {
    Ok(state.core.device_list().await)
}

/// One PIN pad's status, rescanned now.
#[tauri::command]
pub async fn device_status(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<DeviceStatus, AppError> {
    state.core.device_status(&device_id).await
}

/// What the pairing key store needs from the user: with no OS key store, a passphrase.
#[tauri::command]
pub fn key_store_status(state: State<'_, AppState>) -> companion::keystore::PassphraseNeed {
    state.core.key_store_need()
}

/// The passphrase the user typed for the pairing key store (no OS key store here). Taken into
/// zeroizing memory at once; the page keeps no copy after the call.
#[tauri::command]
pub fn key_store_unlock(
    state: State<'_, AppState>,
    passphrase: String,
) -> Result<companion::keystore::PassphraseNeed, AppError> {
    state.core.key_store_unlock(passphrase)
}

/// Confirmation requests the bank pushed and the customer has not answered yet.
#[tauri::command]
pub async fn confirmations_list(
    state: State<'_, AppState>,
) -> Result<Vec<ConfirmationRequest>, AppError> {
    Ok(state.core.confirmations().list())
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
    let devices = state
        .core
        .device_list()
        .await
        .into_iter()
        .filter_map(|d| serde_json::to_value(d).ok())
        .collect();
    let settings = state.settings.settings();
    let facts = companion::diagnostics::Facts {
        program: format!("PinBridge app ({} build)", crate::FLAVOUR),
        version: state.version.clone(),
        bank_url: (!settings.bank_url.is_empty()).then_some(settings.bank_url),
        key_protection: state.core.pairing_protection(),
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
    let before = state.settings.settings();
    match state.settings.set(settings) {
        Ok(saved) => {
            // A new bank address applies at the next call; what was known of the old one is
            // forgotten and the new one probed (the header's bank fact).
            if before.bank_url != saved.bank_url || before.bank_ca_pem != saved.bank_ca_pem {
                state.core.bank_changed();
            }
            let bank = if saved.bank_url.is_empty() {
                "embedded sandbox"
            } else {
                saved.bank_url.as_str()
            };
            tracing::info!("settings saved (bank: {bank})");
            // The sandbox's mock PIN pads speak the app's language.
            #[cfg(feature = "sandbox")]
            state
                .mocks
                .set_display_language(crate::embedded::display_language(saved.language));
            Ok(saved)
        }
        Err(error) => {
            tracing::warn!("settings refused: {error}");
            Err(error)
        }
    }
}

/// Opens a session with a device and asks it who and how it is.
#[tauri::command]
pub async fn device_connect(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<DeviceStatus, AppError> {
    state.core.connect(&device_id).await
}

/// Closes the session with a device.
#[tauri::command]
pub async fn device_disconnect(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<(), AppError> {
    state.core.disconnect(&device_id);
    Ok(())
}

/// Starts pairing: keys exchanged with the device, which shows the comparison code.
#[tauri::command]
pub async fn pairing_begin(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<PairingStart, AppError> {
    state.core.pairing_begin(&device_id).await
}

/// Waits for the user to confirm the code on the device; stores the pairing key.
#[tauri::command]
pub async fn pairing_confirm(
    state: State<'_, AppState>,
    pairing_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<DeviceStatus, AppError> {
    state
        .core
        .pairing_confirm(&pairing_id, progress(on_progress))
        .await
}

/// Cancels a pairing in progress (the device's prompt is cancelled too).
#[tauri::command]
pub async fn pairing_cancel(
    state: State<'_, AppState>,
    pairing_id: String,
) -> Result<(), AppError> {
    state.core.pairing_cancel(&pairing_id).await;
    Ok(())
}

/// Logs the customer in at the bank through the paired device.
#[tauri::command]
pub async fn login(
    state: State<'_, AppState>,
    device_id: String,
    customer_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<LoginSession, AppError> {
    state
        .core
        .login(&device_id, &customer_id, progress(on_progress))
        .await
}

/// Ends a customer session at the bank and on the device (its session keys dropped); says
/// what ended where.
#[tauri::command]
pub async fn logout(
    state: State<'_, AppState>,
    session_id: String,
) -> Result<LogoutResult, AppError> {
    state.core.logout(&session_id).await
}

/// The bank prepares (and MACs) the payment the device will show.
#[tauri::command]
pub async fn payment_prepare(
    state: State<'_, AppState>,
    request: PaymentRequest,
) -> Result<PreparedPayment, AppError> {
    state.core.payment_prepare(request).await
}

/// The device shows the payment and takes the PIN; the result is what the device decided.
#[tauri::command]
pub async fn payment_approve(
    state: State<'_, AppState>,
    payment_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<PaymentResult, AppError> {
    state
        .core
        .payment_approve(&payment_id, progress(on_progress))
        .await
}

/// Cancels a payment: the device's prompt is cancelled and the payment cannot be sent.
#[tauri::command]
pub async fn payment_cancel(
    state: State<'_, AppState>,
    payment_id: String,
) -> Result<(), AppError> {
    state.core.payment_cancel(&payment_id);
    Ok(())
}

/// Staff sign-in at the bank; the bank's teller is a clerk here.
#[tauri::command]
pub async fn staff_sign_in(
    state: State<'_, AppState>,
    staff_id: String,
    password: String,
) -> Result<StaffSession, AppError> {
    state.core.staff_sign_in(&staff_id, &password).await
}

/// Staff: the bank's record of a PIN pad by serial (for the confirmation naming it and its
/// customer).
#[tauri::command]
pub async fn staff_device_lookup(
    state: State<'_, AppState>,
    serial: String,
) -> Result<BankDevice, AppError> {
    state.core.staff_device_lookup(&serial).await
}

/// Staff: revoke, lock, unlock or unpair a PIN pad by serial, with no PIN pad here.
#[tauri::command]
pub async fn staff_by_serial(
    state: State<'_, AppState>,
    serial: String,
    action: SerialAction,
) -> Result<BankDevice, AppError> {
    state.core.staff_by_serial(&serial, action).await
}

/// Staff: moves the customer of a PIN pad that is not here (by serial) to the one connected
/// here; the customer chooses a PIN on its keypad.
#[tauri::command]
pub async fn staff_rebind_by_serial(
    state: State<'_, AppState>,
    from_serial: String,
    to_device_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<StaffActionResult, AppError> {
    state
        .core
        .staff_rebind_by_serial(&from_serial, &to_device_id, progress(on_progress))
        .await
}

/// The logged-in customer's payments, newest first, a page at a time (`before`: the previous
/// page's `nextBefore`).
#[tauri::command]
pub async fn payment_history(
    state: State<'_, AppState>,
    session_id: String,
    before: Option<String>,
) -> Result<PaymentHistory, AppError> {
    state
        .core
        .payment_history(&session_id, before.as_deref())
        .await
}

/// The logged-in customer changes their PIN on the PIN pad's keypad.
#[tauri::command]
pub async fn pin_change(
    state: State<'_, AppState>,
    session_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<PinChangeResult, AppError> {
    state
        .core
        .pin_change(&session_id, progress(on_progress))
        .await
}

/// The owner wipes the connected PIN pad (confirmed on its keypad); the bank is told.
#[tauri::command]
pub async fn device_wipe(
    state: State<'_, AppState>,
    device_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<WipeResult, AppError> {
    state
        .core
        .device_wipe(&device_id, progress(on_progress))
        .await
}

/// The customer reports their PIN pad lost with the loss-report code from enrolment.
#[tauri::command]
pub async fn device_report_lost(
    state: State<'_, AppState>,
    serial: String,
    customer_id: String,
    code: String,
) -> Result<LossReport, AppError> {
    state.core.report_lost(&serial, &customer_id, &code).await
}

/// Staff sign-out.
#[tauri::command]
pub async fn staff_sign_out(state: State<'_, AppState>) -> Result<(), AppError> {
    state.core.staff_sign_out();
    Ok(())
}

/// Staff: initialise a device at the bank.
#[tauri::command]
pub async fn staff_initialise(
    state: State<'_, AppState>,
    device_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<StaffActionResult, AppError> {
    state
        .core
        .staff_initialise(&device_id, progress(on_progress))
        .await
}

/// Staff: the customer chooses a PIN on the device; the bank binds the device.
#[tauri::command]
pub async fn staff_enrol(
    state: State<'_, AppState>,
    device_id: String,
    customer_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<StaffActionResult, AppError> {
    state
        .core
        .staff_enrol(&device_id, &customer_id, progress(on_progress))
        .await
}

/// Staff: confirms a binding the bank made at enrolment.
#[tauri::command]
pub async fn staff_bind(
    state: State<'_, AppState>,
    device_id: String,
    customer_id: String,
) -> Result<StaffActionResult, AppError> {
    state.core.staff_bind(&device_id, &customer_id).await
}

/// Staff: revoke a device (lost or stolen).
#[tauri::command]
pub async fn staff_revoke(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<StaffActionResult, AppError> {
    state.core.staff_revoke(&device_id).await
}

/// Staff: moves the customer to another device.
#[tauri::command]
pub async fn staff_rebind(
    state: State<'_, AppState>,
    from_device_id: String,
    to_device_id: String,
) -> Result<StaffActionResult, AppError> {
    state
        .core
        .staff_rebind(&from_device_id, &to_device_id)
        .await
}

/// Operator: resets a tampered device with an operator-signed token.
#[tauri::command]
pub async fn staff_tamper_reset(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<StaffActionResult, AppError> {
    state.core.staff_tamper_reset(&device_id).await
}

/// A pushed request, approved (or not) on the device and signed with the device key.
#[tauri::command]
pub async fn confirmation_approve(
    state: State<'_, AppState>,
    request_id: String,
    device_id: String,
    on_progress: Channel<DeviceProgress>,
) -> Result<ConfirmationResult, AppError> {
    state
        .core
        .confirmation_approve(&request_id, &device_id, progress(on_progress))
        .await
}
