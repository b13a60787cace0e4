//! The control API: loopback HTTP/JSON for QA and tests (what Speculos' REST API and
//! Trezor's DebugLink are for other devices). Every route takes the device index (0 for the
//! first device of `--count N`).
//!
//! | Method and path | Body | Does |
//! |---|---|---|
//! | `GET /devices` | | every device's view |
//! | `GET /devices/{i}` | | state, display, connections, faults |
//! | `GET /devices/{i}/display` | | `{"lines": [...]}` |
//! | `GET /devices/{i}/indicator` | | `{"indicator": "safe", "history": [...]}` |
//! | `POST /devices/{i}/keys` | `{"keys": ["1", "2", "enter"]}` | press keys |
//! | `POST /devices/{i}/pin` | `{"pin": "1234"}` | type digits, then Enter |
//! | `POST /devices/{i}/confirm` | | press Enter |
//! | `POST /devices/{i}/cancel` | | press Cancel |
//! | `POST /devices/{i}/tamper` | `{"open": true}` | trip (or close) the tamper switch |
//! | `POST /devices/{i}/clock` | `{"advance_ms": 60000}` | move the device clock |
//! | `GET`/`PUT /devices/{i}/faults` | [`Faults`] | read / set fault injection |
//! | `POST /devices/{i}/firmware` | `{"modified": true}` | simulate modified firmware |
//! | `POST /devices/{i}/board` | `{"board_id": "other"}` | move the secure store to another board |
//! | `POST /devices/{i}/power-cycle` | `{"off_ms": 60000}` | power off that long, restart from the store |
//! | `GET /devices/{i}/events?since=N` | | the event log from index N |
//!
//! Nothing secret comes out: the view and the log hold no PIN digit and no key (a typed
//! PIN is never echoed, key presses are logged as `digit`).
//!
//! Only local tools may drive it. A web page open on the same machine can send requests to
//! loopback (a form or a no-cors `fetch` is a bodyless cross-site POST that needs no
//! preflight), and a DNS-rebinding page can make its own host name resolve to 127.0.0.1. So
//! every request must name a loopback `Host` (`127.0.0.1`, `[::1]`, `localhost`, with any
//! port), and a request from a browser must come from a loopback origin: an `Origin` that is
//! not loopback (or `null`) or `Sec-Fetch-Site: cross-site` is refused with 403
//! `cross_site_request` before any handler runs. curl, reqwest and the tests send neither
//! header.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::hardware::indicator_name;
use crate::sim::{ControlError, Faults, SimHandle, parse_key};

type Devices = Arc<Vec<SimHandle>>;

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            ControlError::NoDevice(_) => StatusCode::NOT_FOUND,
            ControlError::NotDigits | ControlError::UnknownKey(_) => StatusCode::BAD_REQUEST,
            ControlError::PromptGone(_) => StatusCode::CONFLICT,
            ControlError::Restart(_) | ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

fn device(devices: &Devices, index: usize) -> Result<&SimHandle, ControlError> {
    devices.get(index).ok_or(ControlError::NoDevice(index))
}

/// The control API's routes over `devices`.
pub fn router(devices: Vec<SimHandle>) -> Router {
    Router::new()
        .route("/devices", get(list))
        .route("/devices/{index}", get(view))
        .route("/devices/{index}/display", get(display))
        .route("/devices/{index}/indicator", get(indicator))
        .route("/devices/{index}/keys", post(keys))
        .route("/devices/{index}/pin", post(pin))
        .route("/devices/{index}/confirm", post(confirm))
        .route("/devices/{index}/cancel", post(cancel))
        .route("/devices/{index}/tamper", post(tamper))
        .route("/devices/{index}/clock", post(clock))
        .route("/devices/{index}/faults", get(get_faults).put(put_faults))
        .route("/devices/{index}/firmware", post(firmware))
        .route("/devices/{index}/board", post(board))
        .route("/devices/{index}/power-cycle", post(power_cycle))
        .route("/devices/{index}/language", put(language))
        .route("/devices/{index}/events", get(events))
        .layer(axum::middleware::from_fn(local_callers_only))
        .with_state(Arc::new(devices))
}

/// Whether `host` (a Host header value or an origin's host, with or without a port) names
/// this machine's loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why a request is not from a local tool, if it is not.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if let Some(host) = text(header::HOST)
        && !is_loopback_host(host)
    {
        return Some("the Host is not a loopback name (DNS rebinding?)");
    }
    if let Some(origin) = text(header::ORIGIN) {
        let local = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| is_loopback_host(rest.split('/').next().unwrap_or_default()));
        if !local {
            return Some("the request comes from a web page of another origin");
        }
    }
    if text(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return Some("the browser marks the request cross-site");
    }
    None
}

/// Refuses requests that are not from a local tool (see the module documentation).
async fn local_callers_only(request: Request, next: Next) -> Response {
    if let Some(reason) = cross_site(request.headers()) {
        tracing::warn!(reason, path = %request.uri().path(), "control API refused a cross-site request");
        return (
            StatusCode::FORBIDDEN,
            Json(json!({ "error": "cross_site_request", "message": reason })),
        )
            .into_response();
    }
    next.run(request).await
}

/// Serves the control API on `listener` (loopback only: the caller binds it). Needs a Tokio
/// runtime; returns the task and the address.
pub fn spawn(
    devices: Vec<SimHandle>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let address = listener.local_addr()?;
    let app = router(devices);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "control API stopped");
        }
    });
    Ok((address, task))
}

async fn list(State(devices): State<Devices>) -> Json<serde_json::Value> {
    let views: Vec<_> = devices.iter().map(SimHandle::view).collect();
    Json(json!(views))
}

async fn view(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
) -> Result<Json<serde_json::Value>, ControlError> {
    Ok(Json(json!(device(&devices, index)?.view())))
}

async fn display(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
) -> Result<Json<serde_json::Value>, ControlError> {
    Ok(Json(json!({ "lines": device(&devices, index)?.display() })))
}

async fn indicator(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    Ok(Json(json!({
        "indicator": indicator_name(handle.indicator()),
        "history": handle.indicator_history(),
    })))
}

#[derive(Deserialize)]
struct KeysBody {
    keys: Vec<String>,
    /// The prompt the keys are meant for (`prompt_id` of the device view): refused with 409
    /// if another prompt, or none, is on the screen by then.
    #[serde(default)]
    prompt_id: Option<u64>,
}

async fn keys(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(body): Json<KeysBody>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    let keys = body
        .keys
        .iter()
        .map(|k| parse_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    match body.prompt_id {
        Some(prompt_id) => handle.press_for(prompt_id, &keys)?,
        None => handle.press(&keys),
    }
    Ok(Json(json!({ "pressed": keys.len() })))
}

#[derive(Deserialize)]
struct PinBody {
    pin: String,
}

async fn pin(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(body): Json<PinBody>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let body = zeroize::Zeroizing::new(body.pin);
    device(&devices, index)?.type_pin(&body)?;
    Ok(Json(json!({ "typed_digits": body.len() })))
}

async fn confirm(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
) -> Result<Json<serde_json::Value>, ControlError> {
    device(&devices, index)?.confirm();
    Ok(Json(json!({ "pressed": "enter" })))
}

async fn cancel(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
) -> Result<Json<serde_json::Value>, ControlError> {
    device(&devices, index)?.cancel();
    Ok(Json(json!({ "pressed": "cancel" })))
}

#[derive(Deserialize)]
struct TamperBody {
    #[serde(default = "yes")]
    open: bool,
}

fn yes() -> bool {
    true
}

async fn tamper(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    body: Option<Json<TamperBody>>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let open = body.is_none_or(|Json(body)| body.open);
    let handle = device(&devices, index)?;
    handle.set_tamper(open);
    Ok(Json(
        json!({ "tamper_switch_open": open, "state": handle.view() }),
    ))
}

#[derive(Deserialize)]
struct ClockBody {
    advance_ms: u64,
}

async fn clock(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(body): Json<ClockBody>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    handle.advance_clock(body.advance_ms);
    Ok(Json(
        json!({ "advanced_ms": body.advance_ms, "state": handle.view() }),
    ))
}

async fn get_faults(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
) -> Result<Json<Faults>, ControlError> {
    Ok(Json(device(&devices, index)?.view().faults))
}

async fn put_faults(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(faults): Json<Faults>,
) -> Result<Json<Faults>, ControlError> {
    let handle = device(&devices, index)?;
    handle.set_faults(faults);
    Ok(Json(handle.view().faults))
}

#[derive(Deserialize)]
struct FirmwareBody {
    modified: bool,
}

async fn firmware(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(body): Json<FirmwareBody>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    let patched: &[u8] = b"pinpad-sim firmware, modified by QA";
    handle.set_firmware(body.modified.then_some(patched));
    Ok(Json(json!({ "state": handle.view() })))
}

#[derive(Deserialize)]
struct BoardBody {
    board_id: String,
}

async fn board(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(body): Json<BoardBody>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    handle.set_board_id(body.board_id.as_bytes());
    Ok(Json(json!({ "state": handle.view() })))
}

#[derive(Deserialize)]
struct LanguageBody {
    language: crate::device::Language,
}

/// The device's display language setting (`{"language": "zh-CN"}`), as its settings menu.
async fn language(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(body): Json<LanguageBody>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    handle.set_display_language(body.language)?;
    Ok(Json(json!({ "state": handle.view() })))
}

#[derive(Deserialize)]
struct PowerCycleBody {
    off_ms: u64,
}

async fn power_cycle(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Json(body): Json<PowerCycleBody>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    handle.power_cycle(body.off_ms)?;
    Ok(Json(json!({ "state": handle.view() })))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    since: usize,
}

async fn events(
    State(devices): State<Devices>,
    Path(index): Path<usize>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let handle = device(&devices, index)?;
    Ok(Json(
        json!({ "since": query.since, "events": handle.events(query.since) }),
    ))
}
