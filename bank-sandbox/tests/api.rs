//! API tests: every flow and every refusal of the "Done when", over real HTTP,
//! against a real SQLite file and (with PINBRIDGE_PG_URL) a real PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use bank_sandbox::bank::BankConfig;
use firmware_protocol::crypto::ecdsa::EcdsaSigningKey;
use firmware_protocol::message::{
    BankCommandKind, BankResult, CurrencyCode, Request, StatusCode as DeviceStatus,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::StatusCode;
use serde_json::json;
use support::device::{self, APP_HASH};
use support::{Db, TestBank};

const PIN: &str = "4321";

async fn bank(db: Db) -> Option<TestBank> {
    TestBank::start(db, BankConfig::default()).await
}

async fn happy_path(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0001", 1, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let before = t.balance("alice").await;

    let prepared = t.prepare(&token, 12_345, "order-1").await;
    let transaction = prepared["transaction_id"].as_str().unwrap().to_owned();
    // Preparing again with the same idempotency key gives the same payment.
    let again = t.prepare(&token, 12_345, "order-1").await;
    assert_eq!(again["transaction_id"], prepared["transaction_id"]);
    assert_eq!(again["approve_payment"], prepared["approve_payment"]);

    let approval = device
        .approve(prepared["approve_payment"].as_str().unwrap(), PIN)
        .unwrap();
    let (status, decision) = t.submit(&token, &transaction, &approval).await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["result"], "approved");
    assert_eq!(decision["replayed"], false);
    let verdict = device
        .verify_bank_response(decision["verify_bank_response"].as_str().unwrap())
        .unwrap();
    assert_eq!(verdict, BankResult::Approved);
    assert_eq!(t.balance("alice").await, before - 12_345);
    assert_eq!(t.journal_count(&transaction).await, 1);

    // The app retrying the same approval gets the same answer and nothing is journaled twice.
    let (status, retry) = t.submit(&token, &transaction, &approval).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(retry["replayed"], true);
    assert_eq!(
        retry["verify_bank_response"],
        decision["verify_bank_response"]
    );
    assert_eq!(t.journal_count(&transaction).await, 1);
    assert_eq!(t.balance("alice").await, before - 12_345);

    let (status, view) = t
        .get(&format!("/v1/payments/{transaction}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "approved");
    // Same key, different payment: refused.
    let (status, body) = t
        .post(
            "/v1/payments",
            Some(&token),
            json!({"payee_account": "X", "payee_name": "Y", "amount_minor": 1, "currency": "EUR", "idempotency_key": "order-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "idempotency_conflict");
}

async fn bad_mac(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0002", 2, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let prepared = t.prepare(&token, 500, "k1").await;
    let approval = device
        .approve(prepared["approve_payment"].as_str().unwrap(), PIN)
        .unwrap();
    // Flip one bit of the MAC (the last 16 bytes of the message).
    let mut bytes = hex::decode(&approval).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let (status, body) = t
        .submit(
            &token,
            prepared["transaction_id"].as_str().unwrap(),
            &hex::encode(bytes),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_mac");
    assert_eq!(
        t.journal_count(prepared["transaction_id"].as_str().unwrap())
            .await,
        0
    );
    // The genuine approval still goes through.
    let (status, body) = t
        .submit(
            &token,
            prepared["transaction_id"].as_str().unwrap(),
            &approval,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "approved");
}

async fn tampered_amount(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0003", 3, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let before = t.balance("alice").await;
    let prepared = t.prepare(&token, 1_000, "k1").await;
    let transaction = prepared["transaction_id"].as_str().unwrap();
    let mut approve = device::decode_approve(prepared["approve_payment"].as_str().unwrap());
    approve.payment.amount_minor = 100_000;
    // The device refuses a tampered request: the bank's MAC no longer matches.
    assert_eq!(
        device.approve(
            &device::encode_request(Request::ApprovePayment(approve.clone())),
            PIN
        ),
        Err(DeviceStatus::BadBankMac)
    );
    // A device tricked into approving it anyway: the bank refuses, since the device MACs the
    // payment it displayed, not the one the bank prepared.
    let approval = device.approve_unchecked(&approve, PIN);
    let (status, body) = t.submit(&token, transaction, &approval).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_mac");
    // Same for a changed currency or payee.
    let mut approve = device::decode_approve(prepared["approve_payment"].as_str().unwrap());
    approve.payment.currency = CurrencyCode::new("USD").unwrap();
    approve.payment.payee_account = "ATTACKER".into();
    let (status, body) = t
        .submit(
            &token,
            transaction,
            &device.approve_unchecked(&approve, PIN),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(t.balance("alice").await, before);
    assert_eq!(t.journal_count(transaction).await, 0);
}

async fn replayed_counter(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0004", 4, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let (status, body) = t.pay(&token, &mut device, 100, PIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The next approval reuses the device counter of the first one.
    let prepared = t.prepare(&token, 200, "k2").await;
    device.device_counter -= 1;
    let approval = device
        .approve(prepared["approve_payment"].as_str().unwrap(), PIN)
        .unwrap();
    let (status, body) = t
        .submit(
            &token,
            prepared["transaction_id"].as_str().unwrap(),
            &approval,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "replayed_counter");
    assert_eq!(
        t.journal_count(prepared["transaction_id"].as_str().unwrap())
            .await,
        0
    );
}

async fn wrong_pin_three_times(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0005", 5, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let before = t.balance("alice").await;
    for tries_left in [2, 1, 0] {
        let (status, body) = t.pay(&token, &mut device, 100, "9999").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["result"], "pin_incorrect");
        assert_eq!(body["pin_tries_left"], tries_left);
        let verdict = device
            .verify_bank_response(body["verify_bank_response"].as_str().unwrap())
            .unwrap();
        assert_eq!(verdict, BankResult::PinIncorrect);
    }
    // Locked: even the right PIN is refused now, and logins are refused.
    let (status, body) = t.pay(&token, &mut device, 100, PIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "account_blocked");
    assert_eq!(t.balance("alice").await, before);
    let (status, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    assert_eq!(status, StatusCode::LOCKED, "{body}");
    assert_eq!(body["error"], "pin_locked");
}

async fn right_pin_resets_wrong_count(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0006", 6, "alice", PIN).await;
    let token = t.login(&mut device).await;
    for _ in 0..2 {
        let (_, body) = t.pay(&token, &mut device, 100, "0000").await;
        assert_eq!(body["result"], "pin_incorrect");
    }
    let (_, body) = t.pay(&token, &mut device, 100, PIN).await;
    assert_eq!(body["result"], "approved");
    let (_, body) = t.pay(&token, &mut device, 100, "0000").await;
    assert_eq!(body["pin_tries_left"], 2);
}

async fn insufficient_funds(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0007", 7, "bob", PIN).await;
    let token = t.login(&mut device).await;
    let (status, body) = t.pay(&token, &mut device, 10_000_000, PIN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], "insufficient_funds");
}

async fn revoked_device_and_rebind(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut old = t.provision("PP-0010", 10, "alice", PIN).await;
    let token = t.login(&mut old).await;
    let (_, body) = t.pay(&token, &mut old, 1_000, PIN).await;
    assert_eq!(body["result"], "approved");
    let balance = t.balance("alice").await;

    // Enrolling a second device while the first is bound is refused.
    let mut new = t.device("PP-0011", 11);
    t.initialise(&mut new).await;
    let (status, body) = t
        .post(
            "/v1/devices/PP-0011/enrol",
            Some(&t.teller),
            json!({"customer_id": "alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "customer_already_bound");

    // Loss report: revoke. The answer carries a signed wipe the old device accepts.
    let (status, body) = t
        .post(
            "/v1/devices/PP-0010/revoke",
            Some(&t.teller),
            json!({"reason": "Reported lost"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wipe = body["bank_command"].as_str().unwrap().to_owned();
    // The old session is dead and logins are refused, handing out the wipe again.
    let (status, _) = t.get("/v1/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = t.post("/v1/login", None, json!({"info": old.info()})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "device_revoked");
    assert_eq!(body["bank_command"].as_str().unwrap(), wipe);
    assert_eq!(old.bank_command(&wipe), Ok(BankCommandKind::Wipe));

    // Rebind: the new device takes over the customer and the account moves with it.
    t.enrol(&mut new, "alice", "2468").await;
    let token = t.login(&mut new).await;
    let (status, accounts) = t.get("/v1/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accounts["accounts"][0]["balance_minor"], balance);
    let (_, body) = t.pay(&token, &mut new, 500, "2468").await;
    assert_eq!(body["result"], "approved");
    assert_eq!(t.balance("alice").await, balance - 500);
}

async fn login_start(t: &TestBank, info: String) -> serde_json::Value {
    let (status, body) = t.post("/v1/login", None, json!({"info": info})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn integrity_allow_lists(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0020", 20, "alice", PIN).await;
    device.firmware_hash = [0x99; 32];
    let body = login_start(&t, device.info()).await;
    let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
    let (status, refusal) = t
        .post(
            &format!("/v1/login/{}/integrity", body["login_id"].as_str().unwrap()),
            None,
            json!({"integrity_report": report, "app_hash": hex::encode(APP_HASH)}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refusal}");
    assert_eq!(refusal["error"], "firmware_hash_not_allowed");
    assert_eq!(refusal["failed"], json!(["firmware_hash"]));

    device.firmware_hash = device::FIRMWARE_HASH;
    let body = login_start(&t, device.info()).await;
    let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
    let (status, refusal) = t
        .post(
            &format!("/v1/login/{}/integrity", body["login_id"].as_str().unwrap()),
            None,
            json!({"integrity_report": report, "app_hash": hex::encode([0x77; 32])}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refusal}");
    assert_eq!(refusal["error"], "app_hash_not_allowed");
    assert_eq!(refusal["failed"], json!(["app_hash"]));

    // A report signed by another key (or over another nonce) is refused.
    let body = login_start(&t, device.info()).await;
    let Request::GetIntegrityReport(get) =
        device::decode_request(body["get_integrity_report"].as_str().unwrap())
    else {
        panic!()
    };
    let stranger = EcdsaSigningKey::generate(&mut ChaCha20Rng::from_seed([9; 32]));
    let report = device.integrity_report_for(&get, &stranger);
    let (status, refusal) = t
        .post(
            &format!("/v1/login/{}/integrity", body["login_id"].as_str().unwrap()),
            None,
            json!({"integrity_report": report, "app_hash": hex::encode(APP_HASH)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
    assert_eq!(refusal["error"], "integrity_report_invalid");
}

async fn kcv_mismatch(db: Db) {
    let Some(t) = bank(db).await else { return };
    // At initialisation: the device reports another KCV; nothing is installed.
    let mut device = t.device("PP-0030", 30);
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
    let wrong = device::encode(firmware_protocol::message::Response::Initialised(
        firmware_protocol::message::Initialised {
            kcv: firmware_protocol::message::Kcv::new(&[0, 1, 2, 3, 4]).unwrap(),
        },
    ));
    let (status, refusal) = t
        .post(
            "/v1/devices/PP-0030/initialise/complete",
            Some(&t.teller),
            json!({"initialised": wrong}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
    assert_eq!(refusal["error"], "kcv_mismatch");
    let (_, view) = t.get("/v1/devices/PP-0030", Some(&t.teller)).await;
    assert_eq!(view["state"], "initialising");
    // Enrolment is refused until initialisation succeeds.
    let (status, _) = t
        .post(
            "/v1/devices/PP-0030/enrol",
            Some(&t.teller),
            json!({"customer_id": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // At login: the device refuses the session keys (KCV mismatch); the login ends.
    let device = t.provision("PP-0031", 31, "bob", PIN).await;
    let (_, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    let login = body["login_id"].as_str().unwrap().to_owned();
    let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
    let (_, body) = t
        .post(
            &format!("/v1/login/{login}/integrity"),
            None,
            json!({"integrity_report": report, "app_hash": hex::encode(APP_HASH)}),
        )
        .await;
    assert!(body["load_session_keys"].is_string(), "{body}");
    let (status, refusal) = t
        .post(
            &format!("/v1/login/{login}/keys"),
            None,
            json!({"keys_loaded": device::error(DeviceStatus::KcvMismatch)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refusal}");
    assert_eq!(refusal["error"], "device_refused");
    assert_eq!(refusal["device_status"], "KcvMismatch");
    let (status, _) = t
        .post(
            &format!("/v1/login/{login}/keys"),
            None,
            json!({"keys_loaded": "00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the login is over");
}

async fn expired_challenge(db: Db) {
    let config = BankConfig {
        challenge_ttl_ms: 1,
        ..BankConfig::default()
    };
    let Some(t) = TestBank::start(db, config).await else {
        return;
    };
    let mut device = t.provision("PP-0040", 40, "alice", PIN).await;
    let (_, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    let login = body["login_id"].as_str().unwrap().to_owned();
    let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
    let (_, body) = t
        .post(
            &format!("/v1/login/{login}/integrity"),
            None,
            json!({"integrity_report": report, "app_hash": hex::encode(APP_HASH)}),
        )
        .await;
    let loaded = device
        .load_session_keys(body["load_session_keys"].as_str().unwrap())
        .unwrap();
    let (_, body) = t
        .post(
            &format!("/v1/login/{login}/keys"),
            None,
            json!({"keys_loaded": loaded}),
        )
        .await;
    let answer = device.challenge(body["bank_challenge"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, refusal) = t
        .post(
            &format!("/v1/login/{login}/challenge"),
            None,
            json!({"challenge_response": answer}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
    assert_eq!(refusal["error"], "challenge_expired");
}

async fn bad_challenge_mac_and_throttling(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0050", 50, "alice", PIN).await;
    for attempt in 0..5 {
        let (status, body) = t
            .post("/v1/login", None, json!({"info": device.info()}))
            .await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}: {body}");
        let login = body["login_id"].as_str().unwrap().to_owned();
        let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
        let (_, body) = t
            .post(
                &format!("/v1/login/{login}/integrity"),
                None,
                json!({"integrity_report": report, "app_hash": hex::encode(APP_HASH)}),
            )
            .await;
        let loaded = device
            .load_session_keys(body["load_session_keys"].as_str().unwrap())
            .unwrap();
        let (_, body) = t
            .post(
                &format!("/v1/login/{login}/keys"),
                None,
                json!({"keys_loaded": loaded}),
            )
            .await;
        let mut answer =
            hex::decode(device.challenge(body["bank_challenge"].as_str().unwrap())).unwrap();
        let last = answer.len() - 1;
        answer[last] ^= 0x80;
        let (status, refusal) = t
            .post(
                &format!("/v1/login/{login}/challenge"),
                None,
                json!({"challenge_response": hex::encode(answer)}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
        assert_eq!(refusal["error"], "bad_mac");
    }
    let (status, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "login_throttled");
    // A teller's unlock lifts the throttle.
    let (status, body) = t
        .post(
            "/v1/devices/PP-0050/commands",
            Some(&t.teller),
            json!({"command": "unlock", "reason": "customer verified"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    t.login(&mut device).await;
}

async fn untrusted_certificate(db: Db) {
    let Some(t) = bank(db).await else { return };
    let rogue_ca = EcdsaSigningKey::generate(&mut ChaCha20Rng::from_seed([66; 32]));
    let device = device::TestDevice::manufacture(
        "PP-0060",
        &rogue_ca,
        t.bank.management_public_key(),
        t.bank.operator_public_key(),
        60,
    );
    let (status, body) = t
        .post(
            "/v1/devices/initialise",
            Some(&t.teller),
            json!({"info": device.info()}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "device_not_trusted");
    // An unknown device cannot log in.
    let (status, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "unknown_device");
}

async fn staff_roles(db: Db) {
    let Some(t) = bank(db).await else { return };
    let device = t.device("PP-0070", 70);
    let (status, body) = t
        .post(
            "/v1/devices/initialise",
            Some(&t.operator),
            json!({"info": device.info()}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "forbidden");
    let (status, _) = t
        .post(
            "/v1/devices/initialise",
            None,
            json!({"info": device.info()}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = t
        .post(
            "/v1/devices/PP-0070/operator-reset",
            Some(&t.teller),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t
        .post(
            "/v1/staff/login",
            None,
            json!({"username": "teller", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Admin creates a teller who can then work.
    let (status, body) = t
        .post(
            "/v1/admin/staff",
            Some(&t.admin),
            json!({"username": "carol", "password": "carol-password", "role": "teller"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = t
        .post(
            "/v1/staff/login",
            None,
            json!({"username": "carol", "password": "carol-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "teller");
    // Customers and accounts through the teller API.
    let (status, body) = t
        .post(
            "/v1/customers",
            Some(&t.teller),
            json!({"customer_id": "dave", "name": "Dave", "pin_account_number": "4000001111111111"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = t
        .post(
            "/v1/customers/dave/accounts",
            Some(&t.teller),
            json!({"account_number": "DE00DAVE", "name": "Dave current", "currency": "EUR", "balance_minor": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(t.balance("dave").await, 5000);
}

async fn lock_unlock_and_operator_reset(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0080", 80, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let (status, body) = t
        .post(
            "/v1/devices/PP-0080/commands",
            Some(&t.teller),
            json!({"command": "lock", "reason": "Suspicious activity"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        device.bank_command(body["bank_command"].as_str().unwrap()),
        Ok(BankCommandKind::Lock)
    );
    let (status, _) = t.get("/v1/accounts", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a lock ends the session");
    let (status, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "device_locked");
    let (_, body) = t
        .post(
            "/v1/devices/PP-0080/commands",
            Some(&t.teller),
            json!({"command": "unlock"}),
        )
        .await;
    assert_eq!(
        device.bank_command(body["bank_command"].as_str().unwrap()),
        Ok(BankCommandKind::Unlock)
    );
    t.login(&mut device).await;

    // A replayed (older) command is refused by the device: sequences only grow.
    let (_, body) = t
        .post(
            "/v1/devices/PP-0080/commands",
            Some(&t.teller),
            json!({"command": "lock"}),
        )
        .await;
    let lock = body["bank_command"].as_str().unwrap().to_owned();
    assert_eq!(device.bank_command(&lock), Ok(BankCommandKind::Lock));
    assert_eq!(
        device.bank_command(&lock),
        Err(DeviceStatus::StaleBankCounter)
    );

    // Tamper: the operator's reset token verifies with the operator key; the device is then
    // initialised and enrolled again.
    let (status, body) = t
        .post(
            "/v1/devices/PP-0080/operator-reset",
            Some(&t.operator),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    device
        .operator_reset(body["operator_reset"].as_str().unwrap())
        .unwrap();
    let (_, view) = t.get("/v1/devices/PP-0080", Some(&t.operator)).await;
    assert_eq!(view["state"], "registered");
    assert_eq!(view["locked_by_bank"], false);
    t.initialise(&mut device).await;
    t.enrol(&mut device, "alice", "1357").await;
    let token = t.login(&mut device).await;
    let (_, body) = t.pay(&token, &mut device, 100, "1357").await;
    assert_eq!(body["result"], "approved");
}

async fn inactivity_lock_is_lifted_at_login(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0090", 90, "alice", PIN).await;
    let (_, body) = t
        .post("/v1/login", None, json!({"info": device.info()}))
        .await;
    let login = body["login_id"].as_str().unwrap().to_owned();
    let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
    let (_, body) = t
        .post(
            &format!("/v1/login/{login}/integrity"),
            None,
            json!({"integrity_report": report, "app_hash": hex::encode(APP_HASH)}),
        )
        .await;
    let load = body["load_session_keys"].as_str().unwrap().to_owned();
    let (status, body) = t
        .post(
            &format!("/v1/login/{login}/keys"),
            None,
            json!({"keys_loaded": device::error(DeviceStatus::Locked)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "device_locked_inactivity");
    assert_eq!(
        device.bank_command(body["bank_command"].as_str().unwrap()),
        Ok(BankCommandKind::Unlock)
    );
    assert_eq!(body["load_session_keys"], load);
    let loaded = device.load_session_keys(&load).unwrap();
    let (status, body) = t
        .post(
            &format!("/v1/login/{login}/keys"),
            None,
            json!({"keys_loaded": loaded}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn out_of_band_confirmation(db: Db) {
    let Some(t) = bank(db).await else { return };
    let mut device = t.provision("PP-0100", 100, "alice", PIN).await;
    let token = t.login(&mut device).await;
    let before = t.balance("alice").await;

    // The app listens for events.
    let mut events = t
        .client
        .get(format!("{}/v1/events", t.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);

    // A second terminal starts a payment that needs the device.
    let request = json!({
        "customer_id": "alice",
        "payee_account": "FR7630006000011234567890189",
        "payee_name": "Web Shop",
        "amount_minor": 4_200,
        "currency": "EUR",
        "reference": "basket 7",
        "idempotency_key": "basket-7",
    });
    let (status, created) = t
        .post("/v1/confirmations", Some(&t.terminal), request.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "pending_confirmation");
    let transaction = created["transaction_id"].as_str().unwrap().to_owned();
    let (status, _) = t.post("/v1/confirmations", Some(&t.teller), request).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only terminals create confirmations"
    );

    // It arrives over server-sent events.
    let mut text = String::new();
    while !text.contains(&transaction) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
            .await
            .expect("event in time")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: confirmation"), "{text}");
    let (_, pending) = t.get("/v1/session/confirmations", Some(&token)).await;
    assert_eq!(pending["confirmations"][0]["transaction_id"], transaction);
    let sign = pending["confirmations"][0]["sign_confirmation"]
        .as_str()
        .unwrap()
        .to_owned();

    // The device's signature is accepted and pays (a forged one declines the confirmation:
    // tests/security.rs).
    let path = format!("/v1/confirmations/{transaction}/signature");
    let (status, body) = t
        .post(
            &path,
            Some(&token),
            json!({"confirmation_signature": device.sign_confirmation(&sign)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved");
    assert_eq!(t.balance("alice").await, before - 4_200);
    assert_eq!(t.journal_count(&transaction).await, 1);
    let (_, view) = t
        .get(
            &format!("/v1/confirmations/{transaction}"),
            Some(&t.terminal),
        )
        .await;
    assert_eq!(view["status"], "approved");
    assert_eq!(view["result"], "approved");
    // Signing twice does not pay twice.
    let (status, _) = t
        .post(
            &path,
            Some(&token),
            json!({"confirmation_signature": device.sign_confirmation(&sign)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(t.journal_count(&transaction).await, 1);

    // The user declining on the device declines the payment.
    let (_, created) = t
        .post(
            "/v1/confirmations",
            Some(&t.terminal),
            json!({"customer_id": "alice", "payee_account": "X1", "payee_name": "Other",
                   "amount_minor": 1, "currency": "EUR", "idempotency_key": "basket-8"}),
        )
        .await;
    let transaction = created["transaction_id"].as_str().unwrap();
    let (status, body) = t
        .post(
            &format!("/v1/confirmations/{transaction}/signature"),
            Some(&token),
            json!({"confirmation_signature": device::error(DeviceStatus::UserCancelled)}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, view) = t
        .get(
            &format!("/v1/confirmations/{transaction}"),
            Some(&t.terminal),
        )
        .await;
    assert_eq!(view["status"], "declined");
}

async fn malformed_inputs(db: Db) {
    let Some(t) = bank(db).await else { return };
    for body in [
        json!({"info": "zz"}),
        json!({"info": "0100"}),
        json!({"nope": 1}),
    ] {
        let (status, reply) = t.post("/v1/login", None, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
        assert_eq!(reply["error"], "invalid_request");
    }
    let (status, reply) = t.get("/v1/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["error"], "no_route");
    let (status, _) = t.get("/v1/accounts", Some("00")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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
    happy_path,
    bad_mac,
    tampered_amount,
    replayed_counter,
    wrong_pin_three_times,
    right_pin_resets_wrong_count,
    insufficient_funds,
    revoked_device_and_rebind,
    integrity_allow_lists,
    kcv_mismatch,
    expired_challenge,
    bad_challenge_mac_and_throttling,
    untrusted_certificate,
    staff_roles,
    lock_unlock_and_operator_reset,
    inactivity_lock_is_lifted_at_login,
    out_of_band_confirmation,
    malformed_inputs,
);
