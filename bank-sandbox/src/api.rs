//! The HTTP JSON API (axum). Binary fields are lower-case hex; device messages are whole
//! encoded messages (header + body). Staff and device sessions authenticate with
//! `Authorization: Bearer <token>`. The route table is built through [`Routes`] so the list
//! the server serves can be compared with `openapi.json` (a test does).

mod history;
mod owner;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Path, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::bank::{
    Bank, BankEvent, CommandKind, ConfirmationRequest, PaymentDecision, PaymentRequest, Role,
    StaffIdentity,
};
use crate::error::{BankError, BankResult};
use crate::throttle::{ThrottlePolicy, Throttles, source_throttled, staff_throttled};

/// The OpenAPI document, as checked in beside the crate.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What the handlers share: the bank and this server's failure throttles.
#[derive(Clone, Debug)]
pub struct AppState {
    bank: Arc<Bank>,
    throttles: Arc<Throttles>,
}

impl FromRef<AppState> for Arc<Bank> {
    fn from_ref(state: &AppState) -> Self {
        state.bank.clone()
    }
}

impl FromRef<AppState> for Arc<Throttles> {
    fn from_ref(state: &AppState) -> Self {
        state.throttles.clone()
    }
}

type Json = axum::Json<Value>;

/// The caller's address (the TCP peer; `None` when the server runs without connection info,
/// e.g. a router driven in process).
#[derive(Debug)]
pub struct Source(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip()),
        ))
    }
}

/// A router that remembers which (method, path) pairs it serves.
pub struct Routes {
    router: Router<AppState>,
    list: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        route: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, route);
        self.list.push((method, path));
        self
    }

    fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("get", path, get(handler))
    }

    fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("post", path, post(handler))
    }

    /// The (method, path) pairs served, in axum's `{param}` syntax.
    pub fn list(&self) -> &[(&'static str, &'static str)] {
        &self.list
    }
}

fn routes() -> Routes {
    Routes::new()
        .get("/health", health)
        .get("/openapi.json", openapi)
        .get("/v1/bank/keys", bank_keys)
        // Staff.
        .post("/v1/staff/login", staff_login)
        .post("/v1/staff/logout", staff_logout)
        .post("/v1/admin/staff", admin_create_staff)
        .post("/v1/admin/trusted-cas", admin_trust_ca)
        .post("/v1/admin/allowed-hashes", admin_allow_hash)
        .post("/v1/customers", create_customer)
        .post("/v1/customers/{customer_id}/accounts", create_account)
        .get("/v1/customers/{customer_id}/accounts", customer_accounts)
        .post("/v1/devices/initialise", initialise_begin)
        .get("/v1/devices/{serial}", device_view)
        .post(
            "/v1/devices/{serial}/initialise/complete",
            initialise_complete,
        )
        .post("/v1/devices/{serial}/enrol", enrol_begin)
        .post("/v1/devices/{serial}/enrol/complete", enrol_complete)
        .post("/v1/devices/{serial}/revoke", revoke)
        .post("/v1/devices/{serial}/commands", device_command)
        .post("/v1/devices/{serial}/operator-reset", operator_reset)
        .post("/v1/devices/{serial}/report-lost", report_lost)
        .post("/v1/devices/{serial}/wiped", owner::device_wiped)
        .post("/v1/devices/{serial}/command-result", owner::command_result)
        .get("/v1/intrusion-reports", intrusion_reports)
        .post("/v1/confirmations", create_confirmation)
        .get("/v1/confirmations/{transaction_id}", confirmation_view)
        // Device sessions.
        .post("/v1/login", login_begin)
        .post("/v1/login/{login_id}/integrity", login_integrity)
        .post("/v1/login/{login_id}/keys", login_keys)
        .post("/v1/login/{login_id}/challenge", login_challenge)
        .post("/v1/logout", logout)
        .get("/v1/accounts", accounts)
        .post("/v1/payments", prepare_payment)
        .get("/v1/payments", history::payment_history)
        .get("/v1/payments/{transaction_id}", payment_status)
        .post("/v1/payments/{transaction_id}/approval", approve_payment)
        .post("/v1/pin/change", owner::pin_change_prepare)
        .post(
            "/v1/pin/change/{change_id}/entered",
            owner::pin_change_entered,
        )
        .get("/v1/session/confirmations", pending_confirmations)
        .post(
            "/v1/confirmations/{transaction_id}/signature",
            submit_confirmation,
        )
        .get("/v1/events", events)
}

/// The (method, path) pairs the server answers.
pub fn route_list() -> Vec<(&'static str, &'static str)> {
    routes().list
}

/// The application for `bank`, with the default throttles.
pub fn router(bank: Arc<Bank>) -> Router {
    router_with(bank, &ThrottlePolicy::default())
}

/// The application for `bank` with the given throttles. Serve it with connection info
/// (`into_make_service_with_connect_info::<SocketAddr>`) so refusals are counted per source.
pub fn router_with(bank: Arc<Bank>, policy: &ThrottlePolicy) -> Router {
    let state = AppState {
        bank,
        throttles: Arc::new(Throttles::new(policy)),
    };
    routes()
        .router
        .fallback(|| async {
            BankError::not_found("no_route", "no such API route").into_response()
        })
        .layer(axum::middleware::from_fn(json_bodies_only))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(refusals_as_json))
        .with_state(state)
}

/// The largest request body: the API's bodies are a few device messages in hex (a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Request bodies are JSON: a body of another declared type is refused (415) before any
/// handler reads it. A form or `text/plain` body is what a cross-site page can send without
/// a preflight. A body announced larger than [`MAX_BODY`] is refused (413) before it is read.
async fn json_bodies_only(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return BankError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies are at most {MAX_BODY} bytes"),
        )
        .into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_none_or(|v| v.as_bytes() != b"0");
    let json = declared.as_deref().is_none_or(|t| t == "application/json");
    if request.method() == Method::POST && has_body && !json {
        return BankError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request bodies are application/json",
        )
        .into_response();
    }
    next.run(request).await
}

/// Refusals made by the framework rather than the bank (body too large, method not
/// allowed, a body that cannot be read) get the bank's JSON error shape too.
async fn refusals_as_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_stream {
        return response;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take that method (see the Allow header)",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "request bodies are application/json",
        ),
        StatusCode::NOT_FOUND => ("no_route", "no such API route"),
        s if s.is_server_error() => ("internal_error", "the bank failed; nothing was changed"),
        _ => ("invalid_request", "the request could not be read"),
    };
    let (mut parts, _) = response.into_parts();
    let body = json!({ "error": code, "message": message }).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Runs a device-login step for `source`: refused at once if the source used up its
/// failures; every refusal (malformed, forged or the device's own) counts for the source.
async fn login_step<T>(
    throttles: &Throttles,
    source: &Source,
    step: impl std::future::Future<Output = BankResult<T>>,
) -> BankResult<T> {
    if let Some(wait) = throttles.login_sources.blocked(&source.0) {
        return Err(source_throttled(wait));
    }
    let result = step.await;
    if let Err(error) = &result
        && error.status.is_client_error()
        && error.status != StatusCode::TOO_MANY_REQUESTS
    {
        throttles.login_sources.failed(&source.0);
    }
    result
}

fn bearer(headers: &HeaderMap) -> BankResult<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| BankError::unauthorized("missing Authorization: Bearer token"))
}

async fn staff(bank: &Bank, headers: &HeaderMap, allowed: &[Role]) -> BankResult<StaffIdentity> {
    let identity = bank.staff_identity(bearer(headers)?).await?;
    identity.require(allowed)?;
    Ok(identity)
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> BankResult<T> {
    serde_json::from_slice(body).map_err(|e| BankError::invalid(format!("JSON body: {e}")))
}

fn hex_bytes(text: &str, field: &str) -> BankResult<Vec<u8>> {
    hex::decode(text.trim()).map_err(|_| BankError::invalid(format!("{field}: not hexadecimal")))
}

fn ok(value: Value) -> BankResult<Json> {
    Ok(axum::Json(value))
}

fn created(value: Value) -> BankResult<(StatusCode, Json)> {
    Ok((StatusCode::CREATED, axum::Json(value)))
}

async fn health() -> Json {
    axum::Json(json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn bank_keys(State(bank): State<Arc<Bank>>) -> BankResult<Json> {
    let cas = sqlx::query("SELECT key_id FROM trusted_cas")
        .fetch_all(bank.store().reader())
        .await?;
    let ids: Vec<String> = cas
        .iter()
        .filter_map(|r| sqlx::Row::try_get::<String, _>(r, "key_id").ok())
        .collect();
    ok(json!({
        "management_public_key": hex::encode(bank.management_public_key().to_sec1_bytes()),
        "operator_public_key": hex::encode(bank.operator_public_key().to_sec1_bytes()),
        "trusted_ca_key_ids": ids,
    }))
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn staff_login(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    body: Bytes,
) -> BankResult<Json> {
    if let Some(wait) = throttles.staff_sources.blocked(&source.0) {
        return Err(source_throttled(wait));
    }
    let c: Credentials = parse(&body)?;
    let password = zeroize::Zeroizing::new(c.password);
    if let Some(wait) = throttles.staff_users.blocked(&c.username) {
        throttles.staff_sources.failed(&source.0);
        return Err(staff_throttled(wait));
    }
    match bank.staff_login(&c.username, &password).await {
        Ok(token) => {
            throttles.staff_users.succeeded(&c.username);
            ok(token)
        }
        Err(error) => {
            if error.status == StatusCode::UNAUTHORIZED {
                throttles.staff_users.failed(&c.username);
                throttles.staff_sources.failed(&source.0);
            }
            Err(error)
        }
    }
}

async fn staff_logout(State(bank): State<Arc<Bank>>, headers: HeaderMap) -> BankResult<Json> {
    bank.staff_logout(bearer(&headers)?).await?;
    ok(json!({ "logged_out": true }))
}

#[derive(Deserialize)]
struct NewStaff {
    username: String,
    password: String,
    role: Role,
}

async fn admin_create_staff(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<(StatusCode, Json)> {
    staff(&bank, &headers, &[Role::Admin]).await?;
    let s: NewStaff = parse(&body)?;
    bank.create_staff(&s.username, &s.password, s.role).await?;
    created(json!({ "username": s.username, "role": s.role }))
}

#[derive(Deserialize)]
struct NewCa {
    public_key: String,
    #[serde(default)]
    label: String,
}

async fn admin_trust_ca(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<(StatusCode, Json)> {
    staff(&bank, &headers, &[Role::Admin]).await?;
    let ca: NewCa = parse(&body)?;
    let key_id = bank
        .trust_ca(&hex_bytes(&ca.public_key, "public_key")?, &ca.label)
        .await?;
    created(json!({ "key_id": key_id }))
}

#[derive(Deserialize)]
struct NewHash {
    kind: String,
    hash: String,
    #[serde(default)]
    label: String,
}

async fn admin_allow_hash(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<(StatusCode, Json)> {
    staff(&bank, &headers, &[Role::Admin]).await?;
    let h: NewHash = parse(&body)?;
    bank.allow_hash(&h.kind, &hex_bytes(&h.hash, "hash")?, &h.label)
        .await?;
    created(json!({ "kind": h.kind, "hash": h.hash.to_lowercase() }))
}

#[derive(Deserialize)]
struct NewCustomer {
    customer_id: String,
    name: String,
    pin_account_number: String,
}

async fn create_customer(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<(StatusCode, Json)> {
    staff(&bank, &headers, &[Role::Teller]).await?;
    let c: NewCustomer = parse(&body)?;
    bank.create_customer(&c.customer_id, &c.name, &c.pin_account_number)
        .await?;
    created(json!({ "customer_id": c.customer_id }))
}

#[derive(Deserialize)]
struct NewAccount {
    account_number: String,
    name: String,
    currency: String,
    #[serde(default = "two")]
    exponent: u8,
    #[serde(default)]
    balance_minor: i64,
}

fn two() -> u8 {
    2
}

async fn create_account(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(customer_id): Path<String>,
    body: Bytes,
) -> BankResult<(StatusCode, Json)> {
    staff(&bank, &headers, &[Role::Teller]).await?;
    let a: NewAccount = parse(&body)?;
    bank.create_account(
        &a.account_number,
        Some(&customer_id),
        &a.name,
        &a.currency,
        a.exponent,
        a.balance_minor,
    )
    .await?;
    created(json!({ "account_number": a.account_number, "customer_id": customer_id }))
}

async fn customer_accounts(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(customer_id): Path<String>,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Teller]).await?;
    ok(bank.accounts_of(&customer_id).await?)
}

#[derive(Deserialize)]
struct InfoBody {
    info: String,
}

async fn initialise_begin(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<Json> {
    let who = staff(&bank, &headers, &[Role::Teller]).await?;
    let b: InfoBody = parse(&body)?;
    ok(bank.begin_initialisation(&b.info, &who.username).await?)
}

#[derive(Deserialize)]
struct InitialisedBody {
    initialised: String,
}

async fn initialise_complete(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Teller]).await?;
    let b: InitialisedBody = parse(&body)?;
    ok(bank
        .complete_initialisation(&serial, &b.initialised)
        .await?)
}

#[derive(Deserialize)]
struct EnrolBody {
    customer_id: String,
    #[serde(default = "four")]
    pin_length_min: u8,
    #[serde(default = "six")]
    pin_length_max: u8,
}

fn four() -> u8 {
    4
}

fn six() -> u8 {
    6
}

async fn enrol_begin(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let who = staff(&bank, &headers, &[Role::Teller]).await?;
    let b: EnrolBody = parse(&body)?;
    ok(bank
        .begin_enrolment(
            &serial,
            &b.customer_id,
            b.pin_length_min,
            b.pin_length_max,
            &who.username,
        )
        .await?)
}

#[derive(Deserialize)]
struct EnrolledBody {
    enrolled: String,
}

async fn enrol_complete(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Teller]).await?;
    let b: EnrolledBody = parse(&body)?;
    ok(bank.complete_enrolment(&serial, &b.enrolled).await?)
}

#[derive(Deserialize)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

async fn revoke(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let who = staff(&bank, &headers, &[Role::Teller]).await?;
    let b: ReasonBody = if body.is_empty() {
        ReasonBody {
            reason: String::new(),
        }
    } else {
        parse(&body)?
    };
    let reason = if b.reason.is_empty() {
        "Reported lost"
    } else {
        &b.reason
    };
    ok(bank
        .issue_command(&serial, CommandKind::Wipe, reason, &who.username)
        .await?)
}

#[derive(Deserialize)]
struct CommandBody {
    command: CommandKind,
    #[serde(default)]
    reason: String,
}

async fn device_command(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let who = staff(&bank, &headers, &[Role::Teller]).await?;
    let b: CommandBody = parse(&body)?;
    ok(bank
        .issue_command(&serial, b.command, &b.reason, &who.username)
        .await?)
}

#[derive(Deserialize)]
struct ReportLostBody {
    customer_id: String,
    loss_report_code: String,
}

/// The customer's own loss report: no session (the device is gone), the loss-report code
/// from enrolment instead; refusals count toward the source's throttle like device logins.
async fn report_lost(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    login_step(&throttles, &source, async {
        let b: ReportLostBody = parse(&body)?;
        ok(bank
            .report_lost(&serial, &b.customer_id, &b.loss_report_code)
            .await?)
    })
    .await
}

async fn operator_reset(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(serial): Path<String>,
) -> BankResult<Json> {
    let who = staff(&bank, &headers, &[Role::Operator]).await?;
    ok(bank.operator_reset(&serial, &who.username).await?)
}

#[derive(Deserialize)]
struct IntrusionQuery {
    serial: Option<String>,
}

async fn intrusion_reports(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<IntrusionQuery>,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Teller, Role::Operator]).await?;
    ok(bank.intrusion_reports(query.serial.as_deref()).await?)
}

async fn device_view(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(serial): Path<String>,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Teller, Role::Operator]).await?;
    ok(serde_json::to_value(bank.device_view(&serial).await?).unwrap_or_default())
}

async fn create_confirmation(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<(StatusCode, Json)> {
    let who = staff(&bank, &headers, &[Role::Terminal]).await?;
    let r: ConfirmationRequest = parse(&body)?;
    let view = bank.create_confirmation(&r, &who.username).await?;
    created(serde_json::to_value(view).unwrap_or_default())
}

async fn confirmation_view(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(transaction_id): Path<String>,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Terminal]).await?;
    ok(serde_json::to_value(bank.confirmation_view(&transaction_id).await?).unwrap_or_default())
}

async fn login_begin(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    body: Bytes,
) -> BankResult<Json> {
    login_step(&throttles, &source, async {
        let b: InfoBody = parse(&body)?;
        ok(bank.login_begin(&b.info).await?)
    })
    .await
}

#[derive(Deserialize)]
struct IntegrityBody {
    integrity_report: String,
    app_hash: String,
}

async fn login_integrity(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    Path(login_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    login_step(&throttles, &source, async {
        let b: IntegrityBody = parse(&body)?;
        ok(bank
            .login_integrity(&login_id, &b.integrity_report, &b.app_hash)
            .await?)
    })
    .await
}

#[derive(Deserialize)]
struct KeysBody {
    keys_loaded: String,
}

async fn login_keys(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    Path(login_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    login_step(&throttles, &source, async {
        let b: KeysBody = parse(&body)?;
        ok(bank.login_keys(&login_id, &b.keys_loaded).await?)
    })
    .await
}

#[derive(Deserialize)]
struct ChallengeBody {
    challenge_response: String,
}

async fn login_challenge(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    Path(login_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    login_step(&throttles, &source, async {
        let b: ChallengeBody = parse(&body)?;
        ok(serde_json::to_value(
            bank.login_challenge(&login_id, &b.challenge_response)
                .await?,
        )
        .unwrap_or_default())
    })
    .await
}

async fn logout(State(bank): State<Arc<Bank>>, headers: HeaderMap) -> BankResult<Json> {
    let end = bank.logout(bearer(&headers)?).await?;
    ok(json!({ "logged_out": true, "bank_command": end }))
}

async fn accounts(State(bank): State<Arc<Bank>>, headers: HeaderMap) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    ok(bank.accounts_of(&session.customer_id).await?)
}

async fn prepare_payment(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    let r: PaymentRequest = parse(&body)?;
    ok(serde_json::to_value(bank.prepare_payment(&session, &r).await?).unwrap_or_default())
}

async fn payment_status(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(transaction_id): Path<String>,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    ok(bank
        .payment_status(&session.customer_id, &transaction_id)
        .await?)
}

/// The device's answer in a JSON body: the hex text of its `field` (`payment_approved`,
/// `pin_change_entered`). One decoder for the payment and the PIN change handlers.
fn device_answer(body: &Bytes, field: &'static str) -> BankResult<String> {
    let body: Value = parse(body)?;
    body.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BankError::invalid(format!("JSON body: missing field `{field}`")))
}

/// Decides a device answer once. Copies of one answer sent at once: all but one lose the race
/// for the device counter, after the winner's decision committed (the counter and the decision
/// are one write). Asked again, the bank answers them from the store with that decision
/// (`replayed`); a genuine replay (other bytes, or another payment) keeps its refusal.
async fn decided_once<T, Fut>(decide: impl Fn() -> Fut, replayed: fn(&T) -> bool) -> BankResult<T>
where
    Fut: Future<Output = BankResult<T>>,
{
    match decide().await {
        Err(refused) if refused.code == "replayed_counter" => {
            decide().await.ok().filter(replayed).ok_or(refused)
        }
        other => other,
    }
}

async fn approve_payment(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(transaction_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    let answer = device_answer(&body, "payment_approved")?;
    let decide = || bank.approve_payment(&session, &transaction_id, &answer);
    let decided = decided_once(decide, |d: &PaymentDecision| d.replayed).await?;
    ok(serde_json::to_value(decided).unwrap_or_default())
}

async fn pending_confirmations(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    ok(json!({
        "confirmations": bank.pending_confirmations(&session.customer_id).await?,
    }))
}

#[derive(Deserialize)]
struct SignatureBody {
    confirmation_signature: String,
}

async fn submit_confirmation(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(transaction_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    let b: SignatureBody = parse(&body)?;
    ok(serde_json::to_value(
        bank.submit_confirmation(&session, &transaction_id, &b.confirmation_signature)
            .await?,
    )
    .unwrap_or_default())
}

fn sse_event(event: &BankEvent) -> Event {
    Event::default()
        .event(event.event)
        .data(event.data.to_string())
}

/// Server-sent events for the logged-in customer: `ready` (subscribed), every pending
/// confirmation, then new confirmations and bank commands as they happen.
async fn events(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
) -> BankResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let session = bank.session(bearer(&headers)?).await?;
    // Subscribe before reading the pending list, so nothing falls between the two.
    let receiver = bank.subscribe(&session.customer_id);
    let pending = bank.pending_confirmations(&session.customer_id).await?;
    // `ready` first: the subscription is in place, nothing issued from now on is missed.
    let ready = Event::default()
        .event("ready")
        .data(json!({ "serial": session.device_serial }).to_string());
    let initial = stream::iter(
        std::iter::once(Ok(ready)).chain(pending.into_iter().map(|view| {
            Ok(sse_event(&BankEvent {
                event: "confirmation",
                data: serde_json::to_value(view).unwrap_or_default(),
            }))
        })),
    );
    let live = stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((Ok(sse_event(&event)), receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(
        Sse::new(initial.chain(live))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
}
