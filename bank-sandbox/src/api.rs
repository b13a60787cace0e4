//! The HTTP JSON API (axum). Binary fields are lower-case hex; device messages are whole
//! encoded messages (header + body). Staff and device sessions authenticate with
//! `Authorization: Bearer <token>`. The route table is built through [`Routes`] so the list
//! the server serves can be compared with `openapi.json` (a test does).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::bank::{
    Bank, BankEvent, CommandKind, ConfirmationRequest, PaymentRequest, Role, StaffIdentity,
};
use crate::error::{BankError, BankResult};

/// The OpenAPI document, as checked in beside the crate.
pub const OPENAPI: &str = include_str!("../openapi.json");

type AppState = Arc<Bank>;
type Json = axum::Json<Value>;

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
        .post("/v1/confirmations", create_confirmation)
        .get("/v1/confirmations/{transaction_id}", confirmation_view)
        // Device sessions.
        .post("/v1/login", login_begin)
        .post("/v1/login/{login_id}/integrity", login_integrity)
        .post("/v1/login/{login_id}/keys", login_keys)
        .post("/v1/login/{login_id}/challenge", login_challenge)
        .get("/v1/accounts", accounts)
        .post("/v1/payments", prepare_payment)
        .get("/v1/payments/{transaction_id}", payment_status)
        .post("/v1/payments/{transaction_id}/approval", approve_payment)
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

/// The application for `bank`.
pub fn router(bank: Arc<Bank>) -> Router {
    routes()
        .router
        .fallback(|| async {
            BankError::not_found("no_route", "no such API route").into_response()
        })
        .with_state(bank)
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

async fn bank_keys(State(bank): State<AppState>) -> BankResult<Json> {
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

async fn staff_login(State(bank): State<AppState>, body: Bytes) -> BankResult<Json> {
    let c: Credentials = parse(&body)?;
    ok(bank.staff_login(&c.username, &c.password).await?)
}

#[derive(Deserialize)]
struct NewStaff {
    username: String,
    password: String,
    role: Role,
}

async fn admin_create_staff(
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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

async fn operator_reset(
    State(bank): State<AppState>,
    headers: HeaderMap,
    Path(serial): Path<String>,
) -> BankResult<Json> {
    let who = staff(&bank, &headers, &[Role::Operator]).await?;
    ok(bank.operator_reset(&serial, &who.username).await?)
}

async fn device_view(
    State(bank): State<AppState>,
    headers: HeaderMap,
    Path(serial): Path<String>,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Teller, Role::Operator]).await?;
    ok(serde_json::to_value(bank.device_view(&serial).await?).unwrap_or_default())
}

async fn create_confirmation(
    State(bank): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<(StatusCode, Json)> {
    let who = staff(&bank, &headers, &[Role::Terminal]).await?;
    let r: ConfirmationRequest = parse(&body)?;
    let view = bank.create_confirmation(&r, &who.username).await?;
    created(serde_json::to_value(view).unwrap_or_default())
}

async fn confirmation_view(
    State(bank): State<AppState>,
    headers: HeaderMap,
    Path(transaction_id): Path<String>,
) -> BankResult<Json> {
    staff(&bank, &headers, &[Role::Terminal]).await?;
    ok(serde_json::to_value(bank.confirmation_view(&transaction_id).await?).unwrap_or_default())
}

async fn login_begin(State(bank): State<AppState>, body: Bytes) -> BankResult<Json> {
    let b: InfoBody = parse(&body)?;
    ok(bank.login_begin(&b.info).await?)
}

#[derive(Deserialize)]
struct IntegrityBody {
    integrity_report: String,
    app_hash: String,
}

async fn login_integrity(
    State(bank): State<AppState>,
    Path(login_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let b: IntegrityBody = parse(&body)?;
    ok(bank
        .login_integrity(&login_id, &b.integrity_report, &b.app_hash)
        .await?)
}

#[derive(Deserialize)]
struct KeysBody {
    keys_loaded: String,
}

async fn login_keys(
    State(bank): State<AppState>,
    Path(login_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let b: KeysBody = parse(&body)?;
    ok(bank.login_keys(&login_id, &b.keys_loaded).await?)
}

#[derive(Deserialize)]
struct ChallengeBody {
    challenge_response: String,
}

async fn login_challenge(
    State(bank): State<AppState>,
    Path(login_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let b: ChallengeBody = parse(&body)?;
    ok(serde_json::to_value(
        bank.login_challenge(&login_id, &b.challenge_response)
            .await?,
    )
    .unwrap_or_default())
}

async fn accounts(State(bank): State<AppState>, headers: HeaderMap) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    ok(bank.accounts_of(&session.customer_id).await?)
}

async fn prepare_payment(
    State(bank): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    let r: PaymentRequest = parse(&body)?;
    ok(serde_json::to_value(bank.prepare_payment(&session, &r).await?).unwrap_or_default())
}

async fn payment_status(
    State(bank): State<AppState>,
    headers: HeaderMap,
    Path(transaction_id): Path<String>,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    ok(bank
        .payment_status(&session.customer_id, &transaction_id)
        .await?)
}

#[derive(Deserialize)]
struct ApprovalBody {
    payment_approved: String,
}

async fn approve_payment(
    State(bank): State<AppState>,
    headers: HeaderMap,
    Path(transaction_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    let b: ApprovalBody = parse(&body)?;
    ok(serde_json::to_value(
        bank.approve_payment(&session, &transaction_id, &b.payment_approved)
            .await?,
    )
    .unwrap_or_default())
}

async fn pending_confirmations(
    State(bank): State<AppState>,
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
    State(bank): State<AppState>,
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

/// Server-sent events for the logged-in customer: first every pending confirmation, then
/// new confirmations and bank commands as they happen.
async fn events(
    State(bank): State<AppState>,
    headers: HeaderMap,
) -> BankResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let session = bank.session(bearer(&headers)?).await?;
    // Subscribe before reading the pending list, so nothing falls between the two.
    let receiver = bank.subscribe(&session.customer_id);
    let pending = bank.pending_confirmations(&session.customer_id).await?;
    let initial = stream::iter(pending.into_iter().map(|view| {
        Ok(sse_event(&BankEvent {
            event: "confirmation",
            data: serde_json::to_value(view).unwrap_or_default(),
        }))
    }));
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
