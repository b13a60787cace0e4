//! Test harness: a real bank-sandbox server on a loopback port over a real database file
//! (SQLite in a temp dir, or a fresh PostgreSQL database), a reqwest client, staff tokens,
//! and the test device.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod device;

use std::sync::Arc;

use bank_sandbox::bank::{Bank, BankConfig};
use bank_sandbox::server::{open_bank, serve_plain};
use firmware_protocol::crypto::ecdsa::EcdsaSigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::oneshot;

use device::{APP_HASH, FIRMWARE_HASH, TestDevice};

/// Which database a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server URL for store tests: `PINBRIDGE_PG_URL`. Without it the PostgreSQL
/// tests skip, except under CI (`CI=true`), where a missing database is a failure.
pub fn postgres_url() -> Option<String> {
    match std::env::var("PINBRIDGE_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("CI=true but PINBRIDGE_PG_URL is not set: run scripts/postgres.sh first");
            }
            eprintln!("skipped: PINBRIDGE_PG_URL is not set (scripts/postgres.sh starts a server)");
            None
        }
    }
}

/// A fresh, empty PostgreSQL database on the server at `base`; returns its URL.
pub async fn fresh_postgres_database(base: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("pbtest_{}", hex::encode(rand_bytes::<8>()));
    let mut admin = sqlx::AnyConnection::connect(base)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    admin.close().await.ok();
    // Replace the database path of the URL (postgres://user@host:port/db?params).
    let (without_query, query) = match base.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (base, None),
    };
    let scheme_end = without_query.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match without_query[scheme_end..].find('/') {
        Some(i) => &without_query[..scheme_end + i],
        None => without_query,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

pub fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).unwrap();
    out
}

pub struct TestBank {
    pub url: String,
    pub client: reqwest::Client,
    pub bank: Arc<Bank>,
    pub ca: EcdsaSigningKey,
    pub admin: String,
    pub teller: String,
    pub operator: String,
    pub terminal: String,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestBank {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestBank {
    /// Starts a bank on `db` (None when PostgreSQL is not available and may be skipped).
    pub async fn start(db: Db, config: BankConfig) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match db {
            Db::Sqlite => format!("sqlite://{}", dir.path().join("bank.db").display()),
            Db::Postgres => fresh_postgres_database(&postgres_url()?).await,
        };
        Some(Self::start_on(dir, database_url, config).await)
    }

    pub async fn start_on(
        dir: tempfile::TempDir,
        database_url: String,
        config: BankConfig,
    ) -> Self {
        let bank = open_bank(&database_url, &dir.path().join("master.key"), config)
            .await
            .expect("open bank");
        bank_sandbox::seed::seed(&bank).await.expect("seed");
        let ca = EcdsaSigningKey::generate(&mut ChaCha20Rng::from_seed(rand_bytes::<32>()));
        bank.trust_ca(&ca.verifying_key().to_sec1_bytes(), "test CA")
            .await
            .unwrap();
        bank.allow_hash("firmware", &FIRMWARE_HASH, "test firmware")
            .await
            .unwrap();
        bank.allow_hash("app", &APP_HASH, "test app").await.unwrap();
        let bank = Arc::new(bank);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn({
            let bank = bank.clone();
            async move {
                serve_plain(listener, bank, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            }
        });
        let mut test = Self {
            url,
            client: reqwest::Client::new(),
            bank,
            ca,
            admin: String::new(),
            teller: String::new(),
            operator: String::new(),
            terminal: String::new(),
            database_url,
            dir,
            stop: Some(stop),
            server: Some(server),
        };
        for (user, password, _) in bank_sandbox::seed::DEMO_STAFF {
            let (status, body) = test
                .post(
                    "/v1/staff/login",
                    None,
                    json!({"username": user, "password": password}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let token = body["token"].as_str().unwrap().to_owned();
            match *user {
                "admin" => test.admin = token,
                "teller" => test.teller = token,
                "operator" => test.operator = token,
                _ => test.terminal = token,
            }
        }
        test
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.url)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("HTTP");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("HTTP");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn device(&self, serial: &str, seed: u8) -> TestDevice {
        TestDevice::manufacture(
            serial,
            &self.ca,
            self.bank.management_public_key(),
            self.bank.operator_public_key(),
            seed,
        )
    }

    /// Initialisation through the teller API.
    pub async fn initialise(&self, device: &mut TestDevice) {
        let (status, body) = self
            .post(
                "/v1/devices/initialise",
                Some(&self.teller),
                json!({"info": device.info()}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let initialised = device
            .initialise(body["initialise"].as_str().unwrap())
            .unwrap();
        let (status, body) = self
            .post(
                &format!("/v1/devices/{}/initialise/complete", device.serial),
                Some(&self.teller),
                json!({"initialised": initialised}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Enrolment through the teller API, the customer choosing `pin` on the device.
    pub async fn enrol(&self, device: &mut TestDevice, customer: &str, pin: &str) {
        let (status, body) = self
            .post(
                &format!("/v1/devices/{}/enrol", device.serial),
                Some(&self.teller),
                json!({"customer_id": customer}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let enrolled = device.enrol(body["enrol"].as_str().unwrap(), pin).unwrap();
        let (status, body) = self
            .post(
                &format!("/v1/devices/{}/enrol/complete", device.serial),
                Some(&self.teller),
                json!({"enrolled": enrolled}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], "bound");
    }

    pub async fn provision(&self, serial: &str, seed: u8, customer: &str, pin: &str) -> TestDevice {
        let mut device = self.device(serial, seed);
        self.initialise(&mut device).await;
        self.enrol(&mut device, customer, pin).await;
        device
    }

    /// The four login steps; returns the session token.
    pub async fn login(&self, device: &mut TestDevice) -> String {
        let (status, body) = self
            .post("/v1/login", None, json!({"info": device.info()}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let login = body["login_id"].as_str().unwrap().to_owned();
        let report = device.integrity_report(body["get_integrity_report"].as_str().unwrap());
        let (status, body) = self
            .post(
                &format!("/v1/login/{login}/integrity"),
                None,
                json!({"integrity_report": report, "app_hash": hex::encode(APP_HASH)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let loaded = device
            .load_session_keys(body["load_session_keys"].as_str().unwrap())
            .unwrap();
        let (status, body) = self
            .post(
                &format!("/v1/login/{login}/keys"),
                None,
                json!({"keys_loaded": loaded}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = device.challenge(body["bank_challenge"].as_str().unwrap());
        let (status, body) = self
            .post(
                &format!("/v1/login/{login}/challenge"),
                None,
                json!({"challenge_response": answer}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["session_token"].as_str().unwrap().to_owned()
    }

    pub async fn prepare(&self, token: &str, amount: u64, key: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/payments",
                Some(token),
                json!({
                    "payee_account": "FR7630006000011234567890189",
                    "payee_name": "Shop SARL",
                    "amount_minor": amount,
                    "currency": "EUR",
                    "reference": "order 42",
                    "idempotency_key": key,
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn submit(
        &self,
        token: &str,
        transaction: &str,
        approval: &str,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/payments/{transaction}/approval"),
            Some(token),
            json!({"payment_approved": approval}),
        )
        .await
    }

    /// Prepare, approve on the device with `pin`, submit; returns the bank's answer.
    pub async fn pay(
        &self,
        token: &str,
        device: &mut TestDevice,
        amount: u64,
        pin: &str,
    ) -> (StatusCode, Value) {
        let key = hex::encode(rand_bytes::<8>());
        let prepared = self.prepare(token, amount, &key).await;
        let approval = device
            .approve(prepared["approve_payment"].as_str().unwrap(), pin)
            .unwrap();
        self.submit(
            token,
            prepared["transaction_id"].as_str().unwrap(),
            &approval,
        )
        .await
    }

    pub async fn balance(&self, customer: &str) -> i64 {
        let (status, body) = self
            .get(
                &format!("/v1/customers/{customer}/accounts"),
                Some(&self.teller),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accounts"][0]["balance_minor"].as_i64().unwrap()
    }

    pub async fn journal_count(&self, transaction: &str) -> i64 {
        let store = self.bank.store();
        let row =
            sqlx::query(&store.q("SELECT COUNT(*) AS n FROM journal WHERE transaction_id = ?"))
                .bind(transaction)
                .fetch_one(store.reader())
                .await
                .unwrap();
        sqlx::Row::try_get::<i64, _>(&row, "n").unwrap()
    }
}
