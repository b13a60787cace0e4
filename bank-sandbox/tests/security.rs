//! The bank's doors (issue 14, "bank and companion edges"): login throttling that an
//! outsider cannot turn against a customer, staff sign-in limits and token lifetime, every
//! refusal in the JSON error shape, a private database file. Over real HTTP, on SQLite and
//! (with PINBRIDGE_PG_URL) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use bank_sandbox::bank::BankConfig;
use bank_sandbox::throttle::ThrottlePolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::device::APP_HASH;
use support::{Db, TestBank};

const PIN: &str = "4321";

async fn bank(db: Db) -> Option<TestBank> {
    TestBank::start(db, BankConfig::default()).await
}

/// Anyone who has read a device's public Info can start logins and send garbage: none of it
/// counts against the device, so the customer's own login still works. The source that sends
/// it is limited instead.
async fn malformed_logins_do_not_lock_the_customer_out(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-S001", 101, "alice", PIN).await;
    let config = BankConfig::default();
    let policy = ThrottlePolicy::default();
    for attempt in 0..config.throttle_after_failures + 2 {
        let (status, body) = t
            .post("/v1/login", None, json!({"info": device.info()}))
            .await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}: {body}");
        let login = body["login_id"].as_str().unwrap().to_owned();
        // Not a device message at all.
        let (status, body) = t
            .post(
                &format!("/v1/login/{login}/integrity"),
                None,
                json!({"integrity_report": "zz", "app_hash": hex::encode(APP_HASH)}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // A well-formed report whose signature is not the device's.
        let (status, body) = t
            .post("/v1/login", None, json!({"info": device.info()}))
            .await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}: {body}");
        let login = body["login_id"].as_str().unwrap().to_owned();
        let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
        let mut forged = hex::decode(report).unwrap();
        let last = forged.len() - 1;
        forged[last] ^= 0x01;
        let (status, body) = t
            .post(
                &format!("/v1/login/{login}/integrity"),
                None,
                json!({"integrity_report": hex::encode(forged), "app_hash": hex::encode(APP_HASH)}),
            )
            .await;
        assert!(status.is_client_error(), "{status} {body}");
        assert_ne!(body["error"], "login_throttled", "{body}");
    }
    // The device itself was never refused: its login goes through.
    t.login(&mut device).await;

    // The source sending garbage is stopped after the per-source limit.
    let mut refused = None;
    for _ in 0..=policy.login_source_failures {
        let (status, body) = t.post("/v1/login", None, json!({"info": "00"})).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(body);
            break;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let refused = refused.expect("the source was never limited");
    assert_eq!(refused["error"], "source_throttled", "{refused}");
    assert!(refused["retry_after_ms"].as_i64().unwrap() > 0, "{refused}");
}

/// Wrong staff passwords are limited per user name and per source; the right password is
/// then refused too until the wait is over.
async fn staff_sign_in_is_throttled(db: Db) {
    let Some(t) = bank(db).await else { return };
    let policy = ThrottlePolicy::default();
    for attempt in 0..policy.staff_user_failures {
        let (status, body) = t
            .post(
                "/v1/staff/login",
                None,
                json!({"username": "teller", "password": format!("wrong-{attempt}")}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, body) = t
        .post(
            "/v1/staff/login",
            None,
            json!({"username": "teller", "password": "teller-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "staff_throttled", "{body}");
    assert!(body["retry_after_ms"].as_i64().unwrap() > 0, "{body}");
    // Another user from the same source is not blocked by the teller's throttle...
    let (status, body) = t
        .post(
            "/v1/staff/login",
            None,
            json!({"username": "admin", "password": "admin-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // ...but spraying user names from one source is.
    let mut refused = None;
    for n in 0..=policy.staff_source_failures {
        let (status, body) = t
            .post(
                "/v1/staff/login",
                None,
                json!({"username": format!("nobody-{n}"), "password": "guess-guess"}),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(body);
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let refused = refused.expect("the source was never limited");
    assert_eq!(refused["error"], "source_throttled", "{refused}");
}

/// Stored staff hashes use Argon2id at or above OWASP's recommendation (19 MiB, 2 passes,
/// 1 lane); tokens are short-lived and end at logout.
async fn staff_passwords_and_tokens(db: Db) {
    let Some(t) = bank(db).await else { return };
    let store = t.bank.store();
    let row = sqlx::query(&store.q("SELECT password_hash FROM staff WHERE username = ?"))
        .bind("teller")
        .fetch_one(store.reader())
        .await
        .unwrap();
    let hash: String = sqlx::Row::try_get(&row, "password_hash").unwrap();
    let parsed = argon2::PasswordHash::new(&hash).unwrap();
    assert_eq!(parsed.algorithm.as_str(), "argon2id", "{hash}");
    let params = argon2::Params::try_from(&parsed).unwrap();
    assert!(params.m_cost() >= 19 * 1024, "{hash}");
    assert!(params.t_cost() >= 2, "{hash}");
    assert!(params.p_cost() >= 1, "{hash}");

    let (status, body) = t
        .post(
            "/v1/staff/login",
            None,
            json!({"username": "teller", "password": "teller-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let lifetime = body["expires_at"].as_i64().unwrap() - now;
    assert!(
        lifetime <= 15 * 60_000 + 5_000,
        "staff tokens live {lifetime} ms"
    );
    let (status, body) = t.get("/v1/customers/alice/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t.post("/v1/staff/logout", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t.get("/v1/customers/alice/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "unauthorized", "{body}");
}

async fn raw(
    t: &TestBank,
    request: reqwest::RequestBuilder,
) -> (StatusCode, Option<String>, Value) {
    let _ = t;
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.unwrap();
    let value = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, content_type, value)
}

/// POSTs headers announcing a 3 MiB body and 1 KiB of it; returns the status, the head and
/// the body of the answer.
async fn too_large(t: &TestBank) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = t.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        3 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'a'; 1024]).await.unwrap();
    // The bank answers at once; read until the announced body length is in (the connection
    // may stay open, waiting for the rest of the request).
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("the bank did not answer a too-large request")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Refusals the framework produces (body too large, wrong method, wrong media type) carry the
/// same `{"error", "message"}` JSON as the bank's own.
async fn every_refusal_is_json(db: Db) {
    let Some(t) = bank(db).await else { return };
    // Too large: announced, so the bank answers before the body is sent (sending it whole
    // would race the bank closing the connection after its answer).
    let (status, head, body) = too_large(&t).await;
    assert_eq!(status, 413, "{head}{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    assert_eq!(body["error"], "payload_too_large", "{body}");
    let cases = [
        (
            t.client.put(format!("{}/v1/login", t.url)).body("{}"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            // GET lists the customer's payments (the history) and POST prepares one.
            t.client.delete(format!("{}/v1/payments", t.url)),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            t.client
                .post(format!("{}/v1/login", t.url))
                .header("content-type", "text/plain")
                .body(r#"{"info":"00"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            t.client.get(format!("{}/nowhere", t.url)),
            StatusCode::NOT_FOUND,
            "no_route",
        ),
    ];
    for (request, status, code) in cases {
        let (got, content_type, body) = raw(&t, request).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{status}: {body}"
        );
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].is_string(), "{body}");
    }
}

/// The SQLite database holds password hashes, PIN verification values and wrapped keys: the
/// file and its WAL and shared-memory files are the bank's alone.
#[cfg(unix)]
async fn the_database_file_is_private(db: Db) {
    use std::os::unix::fs::PermissionsExt;
    if matches!(db, Db::Postgres) {
        return;
    }
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-S002", 102, "alice", PIN).await;
    t.login(&mut device).await;
    let base = t.dir.path().join("bank.db");
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", base.display());
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{path} is {mode:o}");
    }
}

/// The app (or a flaky network) may send one approval several times at once: every copy
/// gets the stored decision, and the payment is journaled once.
async fn concurrent_copies_of_an_approval_get_the_decision(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-S003", 103, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let before = t.balance("alice").await;
    for round in 0..3 {
        let prepared = t.prepare(&token, 700, &format!("burst-{round}")).await;
        let transaction = prepared["transaction_id"].as_str().unwrap().to_owned();
        let approval = device
            .approve(prepared["approve_payment"].as_str().unwrap(), PIN)
            .unwrap();
        let answers = futures_util::future::join_all(
            (0..16).map(|_| t.submit(&token, &transaction, &approval)),
        )
        .await;
        let mut responses = std::collections::BTreeSet::new();
        for (status, body) in &answers {
            assert_eq!(*status, StatusCode::OK, "round {round}: {body}");
            assert_eq!(body["result"], "approved", "{body}");
            responses.insert(body["verify_bank_response"].as_str().unwrap().to_owned());
        }
        assert_eq!(responses.len(), 1, "different answers: {responses:?}");
        let fresh = answers
            .iter()
            .filter(|(_, b)| b["replayed"] == false)
            .count();
        assert_eq!(fresh, 1, "one copy decided, the others replayed");
        assert_eq!(t.journal_count(&transaction).await, 1);
    }
    assert_eq!(t.balance("alice").await, before - 3 * 700);
}

/// `POST /v1/logout` ends a customer session at the bank: its token is refused at once.
async fn logout_revokes_the_session_token(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-S004", 104, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let (status, body) = t.get("/v1/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t.post("/v1/logout", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["logged_out"], true, "{body}");
    let (status, body) = t.get("/v1/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = t.post("/v1/payments", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = t.post("/v1/logout", Some(&token), json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The device logs in again as usual.
    t.login(&mut device).await;
}

/// A confirmation answered with a signature that does not verify is not left pending for
/// the next try: it is declined, and nothing is paid.
async fn a_bad_confirmation_signature_declines_it(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-S005", 105, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let before = t.balance("alice").await;
    let (status, created) = t
        .post(
            "/v1/confirmations",
            Some(&t.terminal),
            json!({
                "customer_id": "alice",
                "payee_account": "FR7630006000011234567890189",
                "payee_name": "Web Shop",
                "amount_minor": 4_200,
                "currency": "EUR",
                "reference": "basket 8",
                "idempotency_key": "basket-8",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let transaction = created["transaction_id"].as_str().unwrap().to_owned();
    let (_, pending) = t.get("/v1/session/confirmations", Some(&token)).await;
    let sign = pending["confirmations"][0]["sign_confirmation"]
        .as_str()
        .unwrap()
        .to_owned();
    let firmware_protocol::message::Request::SignConfirmation(request) =
        support::device::decode_request(&sign)
    else {
        panic!("not a SignConfirmation: {sign}")
    };
    let stranger = firmware_protocol::crypto::ecdsa::EcdsaSigningKey::generate(
        &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([5; 32]),
    );
    let forged = device.sign_confirmation_with(&request, &stranger);
    let path = format!("/v1/confirmations/{transaction}/signature");
    let (status, body) = t
        .post(
            &path,
            Some(&token),
            json!({"confirmation_signature": forged}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_signature", "{body}");
    let (_, view) = t
        .get(
            &format!("/v1/confirmations/{transaction}"),
            Some(&t.terminal),
        )
        .await;
    assert_eq!(view["status"], "declined", "{view}");
    let (_, pending) = t.get("/v1/session/confirmations", Some(&token)).await;
    assert_eq!(pending["confirmations"], json!([]), "{pending}");
    let (status, body) = t
        .post(
            &path,
            Some(&token),
            json!({"confirmation_signature": device.sign_confirmation(&sign)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(t.balance("alice").await, before);
    assert_eq!(t.journal_count(&transaction).await, 0);
}

/// Intrusion reports the bank records (a KCV mismatch at initialisation or at login) are
/// listed for tellers and operators, by device.
async fn intrusion_reports_are_listed_for_staff(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.device("PP-S006", 106);
    let (status, body) = t
        .post(
            "/v1/devices/initialise",
            Some(&t.teller),
            json!({"info": device.info()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    device
        .initialise(body["initialise"].as_str().unwrap())
        .unwrap();
    let wrong = support::device::encode(firmware_protocol::message::Response::Initialised(
        firmware_protocol::message::Initialised {
            kcv: firmware_protocol::message::Kcv::new(&[0, 1, 2, 3, 4]).unwrap(),
        },
    ));
    let (status, body) = t
        .post(
            "/v1/devices/PP-S006/initialise/complete",
            Some(&t.teller),
            json!({"initialised": wrong}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    for token in [&t.teller, &t.operator] {
        let (status, body) = t
            .get("/v1/intrusion-reports?serial=PP-S006", Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let reports = body["reports"].as_array().unwrap();
        assert_eq!(reports.len(), 1, "{body}");
        assert_eq!(reports[0]["serial"], "PP-S006", "{body}");
        assert!(
            reports[0]["detail"].as_str().unwrap().contains("KCV"),
            "{body}"
        );
        assert!(reports[0]["created_at"].as_i64().unwrap() > 0, "{body}");
    }
    let (status, body) = t.get("/v1/intrusion-reports", Some(&t.teller)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reports"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = t
        .get("/v1/intrusion-reports?serial=PP-NONE", Some(&t.teller))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reports"], json!([]), "{body}");
    let (status, _) = t.get("/v1/intrusion-reports", Some(&t.terminal)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
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

on_both_databases!(
    malformed_logins_do_not_lock_the_customer_out,
    staff_sign_in_is_throttled,
    staff_passwords_and_tokens,
    every_refusal_is_json,
    the_database_file_is_private,
    concurrent_copies_of_an_approval_get_the_decision,
    logout_revokes_the_session_token,
    a_bad_confirmation_signature_declines_it,
    intrusion_reports_are_listed_for_staff,
);
