//! The customer's own PIN pad operations at the bank (PROTOCOL.md §6.12, §6.13), over real
//! HTTP on SQLite and (with PINBRIDGE_PG_URL) PostgreSQL: change PIN (the old PIN verified with
//! the payments' wrong-PIN counter, the new one checked by the next payment, replays and forged
//! answers refused) and the owner's wipe receipt (binding ended, device ready for a new
//! initialisation, a stale or forged receipt refused); and what a device answered to a bank
//! command, as the relaying app reports it (recorded only for a command the bank issued,
//! shown to staff with the device).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bank_sandbox::bank::BankConfig;
use firmware_protocol::crypto::ecdsa::EcdsaSigningKey;
use firmware_protocol::crypto::pinblock::{Pan, Pin};
use firmware_protocol::message::{
    ChangePin, DeviceWiped, EcdsaSignature, Indicator, Lifecycle, LockState, PinChangeResult,
    Request, Response, Status,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::device::{TestDevice, decode_request, encode};
use support::{Db, TestBank};

const PIN: &str = "4321";
const NEW_PIN: &str = "8642";

async fn bank(db: Db) -> Option<TestBank> {
    TestBank::start(db, BankConfig::default()).await
}

/// What the PIN pad does with a ChangePin (bank MAC and counter checked as for a payment):
/// the customer types `current`, then `new` twice.
fn enter(device: &mut TestDevice, change_hex: &str, current: &str, new: &str) -> String {
    let Request::ChangePin(request) = decode_request(change_hex) else {
        panic!("not a ChangePin")
    };
    let session = device.session.as_ref().expect("session");
    assert_eq!(request.session_id, session.id);
    assert!(
        request.bank_mac_verifies(&session.response_key),
        "the bank MACs the ChangePin"
    );
    assert!(
        request.counter > device.last_bank_counter,
        "a fresh bank counter"
    );
    device.last_bank_counter = request.counter;
    entered(device, &request, current, new)
}

fn entered(device: &mut TestDevice, request: &ChangePin, current: &str, new: &str) -> String {
    device.device_counter += 1;
    let counter = device.device_counter;
    let pan = Pan::new(device.pan.as_deref().expect("enrolled")).unwrap();
    let session = device.session.as_ref().expect("session");
    let answer = session
        .pin_change_entered(
            request,
            &Pin::new(current).unwrap(),
            &Pin::new(new).unwrap(),
            &pan,
            counter,
            &mut ChaCha20Rng::from_seed([counter as u8; 32]),
        )
        .unwrap();
    encode(Response::PinChangeEntered(answer))
}

async fn prepare(t: &TestBank, token: &str) -> Value {
    let (status, body) = t.post("/v1/pin/change", Some(token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn submit(t: &TestBank, token: &str, change_id: &str, answer: &str) -> (StatusCode, Value) {
    t.post(
        &format!("/v1/pin/change/{change_id}/entered"),
        Some(token),
        json!({"pin_change_entered": answer}),
    )
    .await
}

/// Prepare, enter on the device, submit; the bank's answer.
async fn change(
    t: &TestBank,
    token: &str,
    device: &mut TestDevice,
    current: &str,
    new: &str,
) -> (StatusCode, Value) {
    let prepared = prepare(t, token).await;
    let answer = enter(
        device,
        prepared["change_pin"].as_str().unwrap(),
        current,
        new,
    );
    submit(t, token, prepared["change_id"].as_str().unwrap(), &answer).await
}

fn verdict(device: &TestDevice, body: &Value) -> (PinChangeResult, u8) {
    let Request::VerifyPinChange(verdict) =
        decode_request(body["verify_pin_change"].as_str().unwrap())
    else {
        panic!("not a VerifyPinChange: {body}")
    };
    let session = device.session.as_ref().unwrap();
    assert!(
        verdict.bank_mac_verifies(&session.response_key),
        "the verdict is MACed"
    );
    assert_eq!(verdict.device_counter, device.device_counter);
    (verdict.result, verdict.pin_tries_left)
}

async fn changed_pin_is_the_one_payments_check(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-OWN-1", 41, "alice", PIN).await;
    let token = t.login(&mut device).await;
    // A payment first: its session caches the PIN facts; the change must not leave them stale.
    let (_, body) = t.pay(&token, &mut device, 100, PIN).await;
    assert_eq!(body["result"], "approved", "{body}");

    let (status, body) = change(&t, &token, &mut device, PIN, NEW_PIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "changed");
    assert_eq!(verdict(&device, &body), (PinChangeResult::Changed, 0));

    // The same session, and a new one: the new PIN pays, the old one is wrong.
    let (_, body) = t.pay(&token, &mut device, 100, NEW_PIN).await;
    assert_eq!(body["result"], "approved", "{body}");
    let (_, body) = t.pay(&token, &mut device, 100, PIN).await;
    assert_eq!(body["result"], "pin_incorrect", "{body}");
    let token = t.login(&mut device).await;
    let (_, body) = t.pay(&token, &mut device, 100, NEW_PIN).await;
    assert_eq!(body["result"], "approved", "{body}");
}

async fn wrong_current_pin_counts_toward_blocking(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-OWN-2", 42, "alice", PIN).await;
    let token = t.login(&mut device).await;
    // One wrong PIN in a payment, one in a PIN change: one try left.
    let (_, body) = t.pay(&token, &mut device, 100, "0000").await;
    assert_eq!(body["pin_tries_left"], 2);
    let (status, body) = change(&t, &token, &mut device, "0000", NEW_PIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "old_pin_incorrect");
    assert_eq!(body["pin_tries_left"], 1);
    assert_eq!(
        verdict(&device, &body),
        (PinChangeResult::OldPinIncorrect, 1)
    );
    // The third wrong one blocks: nothing changed, and logins are refused.
    let (_, body) = change(&t, &token, &mut device, "1111", NEW_PIN).await;
    assert_eq!(body["result"], "pin_blocked");
    assert_eq!(verdict(&device, &body).0, PinChangeResult::PinBlocked);
    let (_, body) = t.pay(&token, &mut device, 100, PIN).await;
    assert_eq!(body["result"], "account_blocked");
    let (status, _) = t.post("/v1/pin/change", Some(&token), json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no PIN change on a blocked PIN"
    );
    let (status, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    assert_eq!(status, StatusCode::LOCKED, "{body}");
}

async fn replayed_forged_and_cancelled_answers_change_nothing(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-OWN-3", 43, "alice", PIN).await;
    let token = t.login(&mut device).await;

    // A forged MAC (a PC that made up the answer): refused, no try counted.
    let prepared = prepare(&t, &token).await;
    let change_hex = prepared["change_pin"].as_str().unwrap();
    let id = prepared["change_id"].as_str().unwrap();
    let answer = enter(&mut device, change_hex, PIN, NEW_PIN);
    let mut forged = hex::decode(&answer).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (status, body) = submit(&t, &token, id, &hex::encode(forged)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_mac");
    // The genuine answer is then decided; sent again it gets the same stored verdict.
    let (status, first) = submit(&t, &token, id, &answer).await;
    assert_eq!(
        (status, &first["result"]),
        (StatusCode::OK, &json!("changed"))
    );
    let (status, again) = submit(&t, &token, id, &answer).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["replayed"], true);
    assert_eq!(again["verify_pin_change"], first["verify_pin_change"]);
    // A new PIN change answered with an old device counter: a replay.
    let prepared = prepare(&t, &token).await;
    let Request::ChangePin(request) = decode_request(prepared["change_pin"].as_str().unwrap())
    else {
        panic!()
    };
    device.device_counter -= 1;
    let stale = entered(&mut device, &request, NEW_PIN, PIN);
    let (status, body) = submit(&t, &token, prepared["change_id"].as_str().unwrap(), &stale).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "replayed_counter");
    // The device's refusal (the two new entries differed): relayed, the change is closed.
    let prepared = prepare(&t, &token).await;
    let (status, body) = submit(
        &t,
        &token,
        prepared["change_id"].as_str().unwrap(),
        &support::device::error(firmware_protocol::message::StatusCode::PinMismatch),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "device_refused");
    // Still the new PIN, still three tries.
    let (_, body) = t.pay(&token, &mut device, 100, NEW_PIN).await;
    assert_eq!(body["result"], "approved", "{body}");
    // No session: refused.
    let (status, _) = t.post("/v1/pin/change", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn concurrent_copies_of_an_answer_get_the_stored_verdict(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-OWN-5", 45, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let prepared = prepare(&t, &token).await;
    let id = prepared["change_id"].as_str().unwrap();
    let answer = enter(
        &mut device,
        prepared["change_pin"].as_str().unwrap(),
        PIN,
        NEW_PIN,
    );
    let copies = four_copies_at_once(&t, &token, id, &answer).await;
    for (status, body) in &copies {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["result"], "changed", "{body}");
    }
    assert_eq!(
        copies.iter().filter(|(_, b)| b["replayed"] == true).count(),
        copies.len() - 1,
        "one decision, the other copies get it"
    );
    // Decided once: the wrong-PIN count was not touched and the new PIN pays.
    let (_, body) = t.pay(&token, &mut device, 100, NEW_PIN).await;
    assert_eq!(body["result"], "approved", "{body}");
}

async fn four_copies_at_once(
    t: &TestBank,
    token: &str,
    id: &str,
    answer: &str,
) -> Vec<(StatusCode, Value)> {
    let (a, b, c, d) = tokio::join!(
        submit(t, token, id, answer),
        submit(t, token, id, answer),
        submit(t, token, id, answer),
        submit(t, token, id, answer),
    );
    vec![a, b, c, d]
}

fn receipt(device: &TestDevice, sequence: u64, key: &EcdsaSigningKey) -> String {
    let mut wiped = DeviceWiped {
        device_serial: device.serial.clone(),
        bank_sequence: sequence,
        signature: EcdsaSignature::from_array([0; 64]),
    };
    wiped.signature = key.sign(
        DeviceWiped::SIGNATURE_DOMAIN,
        &wiped.signed_bytes().unwrap(),
    );
    encode(Response::DeviceWiped(wiped))
}

async fn wipe_receipt_ends_the_binding(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-OWN-4", 44, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let path = format!("/v1/devices/{}/wiped", device.serial);
    // Signed by another key, or for an older enrolment: refused.
    let stranger = EcdsaSigningKey::generate(&mut ChaCha20Rng::from_seed([9; 32]));
    let (status, body) = t
        .post(
            &path,
            None,
            json!({"device_wiped": receipt(&device, device.last_sequence, &stranger)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "wipe_receipt_refused");
    let (status, body) = t
        .post(
            &path,
            None,
            json!({"device_wiped": receipt(&device, device.last_sequence - 1, &device.attestation)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "stale_wipe_receipt");

    let genuine = receipt(&device, device.last_sequence, &device.attestation);
    let (status, body) = t.post(&path, None, json!({"device_wiped": genuine})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["binding_ended"], true);
    assert_eq!(body["state"], "registered");
    // The session ended, logins are refused, the customer can be bound anew.
    let (status, _) = t.get("/v1/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    // The device (wiped, keeping its sequence) is initialised and enrolled again; the old
    // receipt then no longer ends anything.
    device.kbpk = None;
    device.session = None;
    t.initialise(&mut device).await;
    t.enrol(&mut device, "alice", NEW_PIN).await;
    let (status, body) = t.post(&path, None, json!({"device_wiped": genuine})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "stale_wipe_receipt");
}

macro_rules! on_both_databases {
    ($($flow:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $flow() {
                    super::$flow(super::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $flow() {
                    super::$flow(super::Db::Postgres).await;
                }
            )*
        }
    };
}

/// The device's Status after a command, as a relaying app reports it.
fn status_answer(lock: LockState, bank_sequence: u64) -> String {
    encode(Response::Status(Status {
        lifecycle: Lifecycle::Bound,
        tampered: false,
        lock,
        indicator: Indicator::Off,
        paired_hosts: 1,
        session_active: false,
        bank_sequence,
        locks_in_seconds: None,
    }))
}

/// Staff issue `command` for the device; returns the signed command (hex) and its sequence.
async fn issue(t: &TestBank, serial: &str, command: &str) -> (String, u64) {
    let (status, body) = t
        .post(
            &format!("/v1/devices/{serial}/commands"),
            Some(&t.teller),
            json!({"command": command, "reason": "test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hex = body["bank_command"].as_str().unwrap().to_owned();
    let Request::BankCommand(sent) = decode_request(&hex) else {
        panic!("not a BankCommand")
    };
    (hex, sent.sequence)
}

/// Issue 14: the device's answer to a bank command reached nobody but the relaying app. Now
/// the app reports it; the bank records it for a command it issued (only), reads "applied"
/// the way the protocol defines it, keeps an applied report over a later stale refusal, and
/// shows staff each command with its result.
async fn command_results_are_recorded_for_issued_commands_only(db: Db) {
    let Some(t) = bank(db).await else { return };
    t.provision("PP-CR-1", 41, "alice", PIN).await;
    t.provision("PP-CR-2", 42, "bob", PIN).await;
    let path = "/v1/devices/PP-CR-1/command-result";
    let (lock, sequence) = issue(&t, "PP-CR-1", "lock").await;

    // Not yet reported: staff see the command with no result.
    let (status, view) = t.get("/v1/devices/PP-CR-1", Some(&t.teller)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["commands"][0]["command"], "lock", "{view}");
    assert_eq!(view["commands"][0]["sequence"], sequence);
    assert!(view["commands"][0]["result"].is_null(), "{view}");

    // A command the bank never issued (a changed reason, so a broken signature), one for
    // another serial, an answer that is not a BankCommand's, and garbage: refused, nothing
    // recorded.
    let Request::BankCommand(mut forged) = decode_request(&lock) else {
        panic!()
    };
    forged.reason = "forged".into();
    let forged = support::device::encode_request(Request::BankCommand(forged));
    let applied = status_answer(LockState::LockedByBank, sequence);
    let (status, body) = t
        .post(
            path,
            None,
            json!({"bank_command": forged, "device_answer": applied}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "unknown_command");
    let (status, body) = t
        .post(
            "/v1/devices/PP-CR-2/command-result",
            None,
            json!({"bank_command": lock, "device_answer": applied}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = t
        .post(
            path,
            None,
            json!({"bank_command": lock, "device_answer": encode(Response::Pong(Default::default()))}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = t
        .post(
            path,
            None,
            json!({"bank_command": "zz", "device_answer": applied}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, view) = t.get("/v1/devices/PP-CR-1", Some(&t.teller)).await;
    assert!(view["commands"][0]["result"].is_null(), "{view}");

    // A state that is not the command's, then the genuine one, then the same command relayed
    // again and refused as stale: the applied report stays.
    let (status, body) = t
        .post(
            path,
            None,
            json!({"bank_command": lock, "device_answer": status_answer(LockState::Unlocked, sequence)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "not_applied");
    let (status, body) = t
        .post(
            path,
            None,
            json!({"bank_command": lock, "device_answer": applied}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "applied");
    assert_eq!(body["evidence"], "app_report");
    let stale = support::device::error(firmware_protocol::message::StatusCode::StaleBankCounter);
    let (status, body) = t
        .post(
            path,
            None,
            json!({"bank_command": lock, "device_answer": stale}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "refused");
    // A lock state with a bank sequence older than the command's is not this command applied.
    let (unlock, unlock_sequence) = issue(&t, "PP-CR-1", "unlock").await;
    let (_, body) = t
        .post(
            path,
            None,
            json!({"bank_command": unlock, "device_answer": status_answer(LockState::Unlocked, unlock_sequence - 1)}),
        )
        .await;
    assert_eq!(body["outcome"], "not_applied", "{body}");

    let (_, view) = t.get("/v1/devices/PP-CR-1", Some(&t.teller)).await;
    let commands = view["commands"].as_array().unwrap();
    assert_eq!(commands[0]["command"], "unlock", "{view}");
    assert_eq!(commands[0]["result"]["outcome"], "not_applied", "{view}");
    assert_eq!(commands[1]["command"], "lock", "{view}");
    let result = &commands[1]["result"];
    assert_eq!(result["outcome"], "applied", "{view}");
    assert_eq!(result["lock"], "locked_by_bank", "{view}");
    assert_eq!(result["lifecycle"], "bound", "{view}");
    assert_eq!(result["reports"], 2, "{view}");
    assert_eq!(result["evidence"], "app_report", "{view}");
}

on_both_databases!(
    changed_pin_is_the_one_payments_check,
    wrong_current_pin_counts_toward_blocking,
    replayed_forged_and_cancelled_answers_change_nothing,
    wipe_receipt_ends_the_binding,
    concurrent_copies_of_an_answer_get_the_stored_verdict,
    command_results_are_recorded_for_issued_commands_only,
);
