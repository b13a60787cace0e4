//! The sandbox flavour's QA commands (`--features sandbox`): start and stop mock PIN pads,
//! press their keys, trip their tamper switch, arm link faults, and have the sandbox's web-shop
//! terminal push a confirmation request. Granted by capabilities/sandbox/qa.json only.

use std::sync::Arc;

use companion::app::confirmations::{now_rfc3339, request_from_bank};
use companion::app::{ConfirmationRequest, DeviceStatus, Fault};
use companion::bank::ConfirmationOrder;
use tauri::State;

use crate::AppState;
use crate::embedded::{self, Embedded, Key, MockDevice};
use crate::error::AppError;

fn mock(state: &AppState, device_id: &str) -> Result<Arc<MockDevice>, AppError> {
    state.mocks.by_id(device_id).ok_or_else(|| {
        if state
            .core
            .devices()
            .devices()
            .iter()
            .any(|d| d.id().to_string() == device_id)
        {
            AppError::InvalidInput("only a mock device has an on-screen keypad and QA controls")
        } else {
            AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed"))
        }
    })
}

/// The running embedded sandbox (waits while it starts).
async fn embedded(state: &AppState) -> Result<Arc<Embedded>, AppError> {
    state
        .core
        .embedded()
        .await?
        .keep_alive
        .clone()
        .downcast::<Embedded>()
        .map_err(|_| AppError::Internal("the embedded bank is not the sandbox's"))
}

/// QA: starts another mock PIN pad (manufactured: staff initialise and enrol it).
#[tauri::command]
pub async fn qa_mock_start(
    state: State<'_, AppState>,
    name: String,
) -> Result<DeviceStatus, AppError> {
    let embedded = embedded(&state).await?;
    let (serial, n) = state.mocks.next_serial();
    let name = match name.trim() {
        "" => format!("PinPad Sim {n}"),
        given => given.chars().take(40).collect(),
    };
    let device = embedded
        .start_device(&state.mocks, &serial, &name)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    tracing::info!(target: "pinbridge_app::qa", "mock device {} started", device.serial);
    state.core.devices().refresh().await;
    state.core.device_status(&device.device_id()).await
}

/// QA: stops a mock PIN pad.
#[tauri::command]
pub async fn qa_mock_stop(state: State<'_, AppState>, device_id: String) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    state.core.forget_device(&device_id);
    state.mocks.remove(&device_id);
    tracing::info!(target: "pinbridge_app::qa", "mock device {} stopped", device.serial);
    state.core.devices().refresh().await;
    Ok(())
}

/// QA: a key on the mock device's keypad. The key goes straight to the device; the log
/// never names a digit.
#[tauri::command]
pub async fn qa_key_press(
    state: State<'_, AppState>,
    device_id: String,
    key: String,
    prompt_id: Option<u64>,
) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    let key = Key::parse(&key)
        .ok_or_else(|| AppError::InvalidInput("a key is 0-9, ok, cancel or clear"))?;
    if embedded::press(&device, key, prompt_id) {
        tracing::info!(target: "pinbridge_app::qa", "{}: key pressed ({})", device.serial, key.public_name());
    } else {
        tracing::info!(target: "pinbridge_app::qa", "{}: key dropped ({}): its prompt is no longer on the device", device.serial, key.public_name());
    }
    Ok(())
}

/// QA: trips the mock device's tamper switch (it wipes its keys).
#[tauri::command]
pub async fn qa_trip_tamper(state: State<'_, AppState>, device_id: String) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    embedded::trip_tamper(&device);
    tracing::error!(target: "companion::devices", "{}: tamper switch tripped; keys wiped", device.serial);
    Ok(())
}

/// QA: arms a fault on the mock device's link.
#[tauri::command]
pub async fn qa_inject_fault(
    state: State<'_, AppState>,
    device_id: String,
    fault: Fault,
) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    embedded::apply_fault(&device, &fault);
    tracing::warn!(target: "pinbridge_app::qa", "{}: fault armed: {fault:?}", device.serial);
    Ok(())
}

/// QA: clears every fault.
#[tauri::command]
pub async fn qa_clear_faults(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<(), AppError> {
    let device = mock(&state, &device_id)?;
    embedded::clear_faults(&device);
    tracing::info!(target: "pinbridge_app::qa", "{}: faults cleared", device.serial);
    Ok(())
}

/// QA: the sandbox's web-shop terminal creates a payment that needs confirmation on the device,
/// for the customer the mock device is bound to. The bank pushes it on the customer's event
/// stream; a logged-in app receives it from there (at the next login otherwise).
#[tauri::command]
pub async fn qa_push_confirmation(
    state: State<'_, AppState>,
    device_id: String,
) -> Result<ConfirmationRequest, AppError> {
    let device = mock(&state, &device_id)?;
    let embedded = embedded(&state).await?;
    let customer_id = state
        .core
        .customer_of(&device_id)
        .ok_or_else(|| AppError::NotBound(format!("{} has no customer", device.serial)))?;
    let account = embedded::SANDBOX_CUSTOMERS
        .iter()
        .find(|c| c.customer_id == customer_id)
        .map(|c| c.account)
        .ok_or_else(|| AppError::NotFound(format!("no sandbox account for {customer_id}")))?;
    let client = embedded.client()?;
    let (terminal, password) = embedded::SANDBOX_TERMINAL;
    let token = client.staff_login(terminal, password).await?;
    let n = state.core.next_number();
    let mut key = [0u8; 8];
    getrandom::fill(&mut key).map_err(|e| AppError::Internal(e.to_string()))?;
    let order = ConfirmationOrder {
        customer_id,
        payer_account: account.to_owned(),
        payee_account: "6222080011223344".into(),
        payee_name: "JD.com".into(),
        amount_minor: 1000 + (n % 9) * 1150,
        currency: "CNY".into(),
        reference: format!("ORD-{}", 7800 + n),
        idempotency_key: hex::encode(key),
    };
    let view = client.create_confirmation(&token, &order).await?;
    // The bank sends it to the customer's event stream, which the logged-in app listens to:
    // no shortcut into the inbox here.
    let request = request_from_bank(&view, now_rfc3339())?;
    tracing::info!(
        target: "pinbridge_app::qa",
        "{}: the sandbox's web-shop terminal created request {}",
        device.serial,
        request.order_id
    );
    Ok(request)
}
