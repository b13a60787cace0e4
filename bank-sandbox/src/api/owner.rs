//! HTTP handlers of the customer's own PIN pad operations (PROTOCOL.md §6.12, §6.13): change
//! the PIN (session bearer, like payments) and the owner's wipe receipt (no session: a wiped
//! device has no keys to log in with; the receipt's signature is the proof, and refusals count
//! toward the source's login throttle like a loss report's); and what a device answered to a
//! bank command, as the app that relayed it reports (no session either: a wipe or a lock ends
//! it; the quoted signed command is what ties the report to a real command).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::{Json, Source, bearer, decided_once, device_answer, login_step, ok, parse};
use crate::bank::{Bank, PinChangeDecision};
use crate::error::BankResult;
use crate::throttle::Throttles;

pub(super) async fn pin_change_prepare(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    ok(serde_json::to_value(bank.prepare_pin_change(&session).await?).unwrap_or_default())
}

pub(super) async fn pin_change_entered(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    Path(change_id): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    let session = bank.session(bearer(&headers)?).await?;
    let answer = device_answer(&body, "pin_change_entered")?;
    let decide = || bank.decide_pin_change(&session, &change_id, &answer);
    let decided = decided_once(decide, |d: &PinChangeDecision| d.replayed).await?;
    ok(serde_json::to_value(decided).unwrap_or_default())
}

#[derive(Deserialize)]
struct WipedBody {
    device_wiped: String,
}

pub(super) async fn device_wiped(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    login_step(&throttles, &source, async {
        let b: WipedBody = parse(&body)?;
        ok(bank.device_wiped(&serial, &b.device_wiped).await?)
    })
    .await
}

#[derive(Deserialize)]
struct CommandResultBody {
    bank_command: String,
    device_answer: String,
}

pub(super) async fn command_result(
    State(bank): State<Arc<Bank>>,
    State(throttles): State<Arc<Throttles>>,
    source: Source,
    Path(serial): Path<String>,
    body: Bytes,
) -> BankResult<Json> {
    login_step(&throttles, &source, async {
        let b: CommandResultBody = parse(&body)?;
        ok(bank
            .record_command_result(&serial, &b.bank_command, &b.device_answer)
            .await?)
    })
    .await
}
