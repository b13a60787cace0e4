//! Load generator: N concurrent device sessions, each provisioned through the teller API,
//! logged in, then paying in a loop (prepare + device approval + bank verdict check), with a
//! protocol-level soft device built on firmware-protocol's crypto. Reports payments per
//! second and latency percentiles. Used by `bank-sandbox load` and the crash test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use firmware_protocol::crypto::ecdsa::EcdsaSigningKey;
use firmware_protocol::crypto::keys::{KeyBlockProtectionKey, PinKey};
use firmware_protocol::crypto::pinblock::{Pan, Pin};
use firmware_protocol::device_side::{self, SessionKeys};
use firmware_protocol::message::{
    self, BankResult as Verdict, Capabilities, EcPublicKey, Enrolled, Info, Initialised,
    KeysLoaded, Nonce, PinBlock, Request, Response, Sha256Digest,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::certificate;
use crate::util;

/// Firmware hash the load devices report (allowed by the generator through the admin API).
pub const LOAD_FIRMWARE_HASH: [u8; 32] = [0x4C; 32];
/// App build hash the load generator reports.
pub const LOAD_APP_HASH: [u8; 32] = [0x41; 32];
const PIN: &str = "2580";

/// Load generator arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Bank base URL.
    #[arg(long, default_value = "http://127.0.0.1:8443")]
    pub url: String,
    /// Further processes of the same bank (same database): the calls, each session's too,
    /// go to `--url` and these in turn, so consecutive calls of a session (login steps,
    /// prepare, approval) land on different processes.
    #[arg(long = "also-url")]
    pub also_urls: Vec<String>,
    /// Concurrent device sessions.
    #[arg(long, default_value_t = 50)]
    pub sessions: usize,
    /// Payments per session.
    #[arg(long, default_value_t = 20)]
    pub payments: usize,
    /// Stop after this many seconds of payments, whatever is left.
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
    /// Admin user (trusts the generator's CA, allows its hashes).
    #[arg(long, default_value = "admin")]
    pub admin: String,
    /// Admin password.
    #[arg(long, default_value = "admin-password")]
    pub admin_password: String,
    /// Teller user (creates customers, initialises and enrols devices).
    #[arg(long, default_value = "teller")]
    pub teller: String,
    /// Teller password.
    #[arg(long, default_value = "teller-password")]
    pub teller_password: String,
    /// Prefix of the customers and device serials this run creates (default: random).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Open loop: offered payments per second over all sessions, each session paying on its
    /// own fixed schedule whatever the answers take (latency counts from the scheduled
    /// start). Without it, closed loop: each session pays `--payments` times back to back.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: seconds of offered load.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Process id of the server, to report its CPU time during the payment phase
    /// (Linux `/proc`; the server must run on this machine).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also report the payments, p50 and p99 of each window of this many seconds of the
    /// payment phase (by when each payment was due or began), e.g. 60 for a soak.
    #[arg(long)]
    pub interval_seconds: Option<f64>,
    /// Worker threads of the load generator's runtime (`bank-sandbox load` only): 1 keeps it
    /// on one core, leaving the other to the server on a 2-core machine.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
}

impl LoadArgs {
    /// Closed-loop arguments with the default staff credentials.
    pub fn closed_loop(url: &str, sessions: usize, payments: usize) -> Self {
        Self {
            url: url.to_owned(),
            also_urls: Vec::new(),
            sessions,
            payments,
            max_seconds: 120,
            admin: "admin".into(),
            admin_password: "admin-password".into(),
            teller: "teller".into(),
            teller_password: "teller-password".into(),
            prefix: None,
            rate: None,
            duration: 10.0,
            server_pid: None,
            interval_seconds: None,
            client_threads: 1,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// `closed` (each session pays back to back) or `open` (scheduled arrivals at `--rate`).
    pub mode: &'static str,
    /// Sessions that logged in.
    pub sessions: usize,
    /// Open loop: payments per second offered (scheduled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_per_second: Option<f64>,
    /// Open loop: payments scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<usize>,
    /// Payments the bank approved (acknowledged).
    pub payments: usize,
    /// Requests that failed (HTTP or protocol errors).
    pub errors: usize,
    /// The first failure, to tell a refused session from a dead server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Seconds of the payment phase, until the last answer.
    pub seconds: f64,
    /// Approved payments per second in the payment phase (achieved rate).
    pub payments_per_second: f64,
    /// Median payment latency (prepare + approval), milliseconds; in open loop counted from
    /// the scheduled start, so time spent waiting behind a slow earlier payment is included.
    pub p50_ms: f64,
    /// 90th percentile payment latency, milliseconds.
    pub p90_ms: f64,
    /// 99th percentile payment latency, milliseconds.
    pub p99_ms: f64,
    /// Slowest payment, milliseconds.
    pub max_ms: f64,
    /// CPU seconds (user + system) the load generator used in the payment phase.
    pub client_cpu_seconds: f64,
    /// CPU seconds the server used in the payment phase (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU microseconds per acknowledged payment (with `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_payment: Option<f64>,
    /// CPU seconds the whole machine was busy in the payment phase (all processes; more
    /// than client + server means something else ran too). Linux `/proc/stat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_cpu_seconds: Option<f64>,
    /// Load generator CPU microseconds per acknowledged payment.
    pub client_cpu_us_per_payment: f64,
    /// Seconds spent provisioning and logging in.
    pub setup_seconds: f64,
    /// With `--interval-seconds`: each window of the payment phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals: Option<Vec<Interval>>,
}

/// One window of the payment phase (`--interval-seconds`).
#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    /// Start of the window, seconds into the payment phase.
    pub from_second: f64,
    /// Payments due (open loop) or begun (closed loop) in the window and acknowledged.
    pub payments: usize,
    /// Their median latency, milliseconds.
    pub p50_ms: f64,
    /// Their 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

/// Per-window figures of `timed` ((offset into the phase, latency) pairs).
fn intervals(timed: &[(Duration, Duration)], window: f64) -> Vec<Interval> {
    let mut buckets: Vec<Vec<Duration>> = Vec::new();
    for (offset, latency) in timed {
        let bucket = (offset.as_secs_f64() / window) as usize;
        if buckets.len() <= bucket {
            buckets.resize_with(bucket + 1, Vec::new);
        }
        buckets[bucket].push(*latency);
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(i, mut latencies)| {
            latencies.sort();
            Interval {
                from_second: i as f64 * window,
                payments: latencies.len(),
                p50_ms: percentile(&latencies, 50.0),
                p99_ms: percentile(&latencies, 99.0),
            }
        })
        .collect()
}

/// An acknowledged payment: the bank answered `approved` with a verified MAC.
#[derive(Clone, Debug, Serialize)]
pub struct Ack {
    /// Transaction id.
    pub transaction_id: String,
    /// Customer.
    pub customer_id: String,
    /// Amount.
    pub amount_minor: i64,
}

/// Acknowledged payments, shared with the caller while the run goes on.
pub type Acks = Arc<Mutex<Vec<Ack>>>;

/// A soft device speaking the bank-protected payloads (PROTOCOL.md §3.6) through
/// firmware-protocol's device side, the same rules the simulated PIN pad follows.
struct SoftDevice {
    serial: String,
    attestation: EcdsaSigningKey,
    certificate: Vec<u8>,
    kbpk: Option<KeyBlockProtectionKey>,
    pan: String,
    session: Option<SessionKeys>,
    counter: u64,
}

fn decode_request(text: &str) -> anyhow::Result<Request> {
    let bytes = hex::decode(text).context("hex")?;
    Ok(message::decode_request(&bytes)?.1)
}

fn encode(response: Response) -> anyhow::Result<String> {
    Ok(hex::encode(response.encode(0)?))
}

fn field<'a>(body: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    body[name]
        .as_str()
        .ok_or_else(|| anyhow!("answer without {name}: {body}"))
}

impl SoftDevice {
    fn new(serial: String, ca: &EcdsaSigningKey) -> anyhow::Result<Self> {
        let attestation = util::with_rng(EcdsaSigningKey::generate)?;
        let certificate =
            certificate::issue(ca, &serial, &attestation.verifying_key(), 0, u64::MAX)?;
        Ok(Self {
            serial,
            attestation,
            certificate,
            kbpk: None,
            pan: String::new(),
            session: None,
            counter: 0,
        })
    }

    fn info(&self) -> anyhow::Result<String> {
        encode(Response::Info(Info {
            protocol_version: 1,
            capabilities: Capabilities(0x3FF),
            max_message_len: 4096,
            link_mtu: 64,
            serial: self.serial.clone(),
            firmware_version: "load-1".into(),
            firmware_hash: Sha256Digest(LOAD_FIRMWARE_HASH),
            attestation_public_key: EcPublicKey::from(&self.attestation.verifying_key()),
            certificate: self.certificate.clone(),
        }))
    }

    fn initialise(&mut self, text: &str) -> anyhow::Result<String> {
        let Request::Initialise(init) = decode_request(text)? else {
            bail!("not Initialise")
        };
        let kbpk = device_side::unwrap_kbpk(&self.attestation, &init)?;
        let kcv = device_side::kcv_of(kbpk.material())?;
        self.kbpk = Some(kbpk);
        encode(Response::Initialised(Initialised { kcv }))
    }

    fn pin_block(&self, key: &PinKey) -> anyhow::Result<PinBlock> {
        let (pin, pan) = (Pin::new(PIN)?, Pan::new(&self.pan)?);
        Ok(util::with_rng(|rng| {
            device_side::iso4_pin_block(key, &pin, &pan, rng)
        })??)
    }

    fn enrol(&mut self, text: &str) -> anyhow::Result<String> {
        let Request::Enrol(enrol) = decode_request(text)? else {
            bail!("not Enrol")
        };
        let kbpk = self.kbpk.as_ref().context("not initialised")?;
        let pin_key: PinKey = device_side::unwrap_key(kbpk, &enrol.pin_key, "pin_key")?;
        self.pan = enrol.pin_account_number.clone();
        let pin_block = self.pin_block(&pin_key)?;
        encode(Response::Enrolled(Enrolled { pin_block }))
    }

    fn integrity(&self, text: &str) -> anyhow::Result<String> {
        let Request::GetIntegrityReport(get) = decode_request(text)? else {
            bail!("not GetIntegrityReport")
        };
        encode(Response::IntegrityReport(device_side::integrity_report(
            &self.attestation,
            &get,
            self.serial.clone(),
            "load-1".into(),
            LOAD_FIRMWARE_HASH,
        )?))
    }

    fn load_keys(&mut self, text: &str) -> anyhow::Result<String> {
        let Request::LoadSessionKeys(load) = decode_request(text)? else {
            bail!("not LoadSessionKeys")
        };
        let kbpk = self.kbpk.as_ref().context("not initialised")?;
        self.session = Some(SessionKeys::unwrap(kbpk, &load)?);
        encode(Response::KeysLoaded(KeysLoaded {
            session_id: load.session_id,
        }))
    }

    fn challenge(&self, text: &str) -> anyhow::Result<String> {
        let Request::BankChallenge(challenge) = decode_request(text)? else {
            bail!("not BankChallenge")
        };
        let session = self.session.as_ref().context("no session")?;
        let nonce = Nonce(util::random_bytes::<16>()?);
        encode(Response::ChallengeResponse(
            session.challenge_response(&challenge, nonce)?,
        ))
    }

    fn approve(&mut self, text: &str) -> anyhow::Result<String> {
        let Request::ApprovePayment(approve) = decode_request(text)? else {
            bail!("not ApprovePayment")
        };
        let session = self.session.as_ref().context("no session")?;
        if !approve.bank_mac_verifies(&session.response_key) {
            bail!("bad bank MAC on ApprovePayment");
        }
        let (pin, pan) = (Pin::new(PIN)?, Pan::new(&self.pan)?);
        let counter = self.counter + 1;
        let approved =
            util::with_rng(|rng| session.approve_payment(&approve, &pin, &pan, counter, rng))??;
        self.counter = counter;
        encode(Response::PaymentApproved(approved))
    }

    fn verdict(&self, text: &str) -> anyhow::Result<Verdict> {
        let Request::VerifyBankResponse(answer) = decode_request(text)? else {
            bail!("not VerifyBankResponse")
        };
        let session = self.session.as_ref().context("no session")?;
        if answer.session_id != session.id || !answer.bank_mac_verifies(&session.response_key) {
            bail!("bad bank MAC on VerifyBankResponse");
        }
        Ok(answer.result)
    }
}

/// An HTTP client for the bank API.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    /// The bank's processes, taken in turn call by call.
    urls: Arc<[String]>,
    turn: Arc<std::sync::atomic::AtomicUsize>,
}

impl Api {
    fn url(&self) -> &str {
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.urls[turn % self.urls.len()]
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url()))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }

    async fn staff_token(&self, user: &str, password: &str) -> anyhow::Result<String> {
        let body = self
            .post(
                "/v1/staff/login",
                None,
                json!({"username": user, "password": password}),
            )
            .await?;
        Ok(field(&body, "token")?.to_owned())
    }
}

struct Provisioned {
    device: SoftDevice,
    customer: String,
    token: String,
}

async fn provision(
    api: &Api,
    teller: &str,
    ca: &EcdsaSigningKey,
    prefix: &str,
    index: usize,
) -> anyhow::Result<Provisioned> {
    let customer = format!("{prefix}-c{index}");
    // A 16-digit PAN per customer.
    let pan = format!("49{:014}", index);
    api.post(
        "/v1/customers",
        Some(teller),
        json!({"customer_id": customer, "name": format!("Load {index}"), "pin_account_number": pan}),
    )
    .await?;
    api.post(
        &format!("/v1/customers/{customer}/accounts"),
        Some(teller),
        json!({"account_number": format!("{prefix}A{index}"), "name": "load", "currency": "EUR",
               "balance_minor": 1_000_000_000_000i64}),
    )
    .await?;
    let mut device = SoftDevice::new(format!("{prefix}-d{index}"), ca)?;
    let body = api
        .post(
            "/v1/devices/initialise",
            Some(teller),
            json!({"info": device.info()?}),
        )
        .await?;
    let initialised = device.initialise(field(&body, "initialise")?)?;
    api.post(
        &format!("/v1/devices/{}/initialise/complete", device.serial),
        Some(teller),
        json!({"initialised": initialised}),
    )
    .await?;
    let body = api
        .post(
            &format!("/v1/devices/{}/enrol", device.serial),
            Some(teller),
            json!({"customer_id": customer}),
        )
        .await?;
    let enrolled = device.enrol(field(&body, "enrol")?)?;
    api.post(
        &format!("/v1/devices/{}/enrol/complete", device.serial),
        Some(teller),
        json!({"enrolled": enrolled}),
    )
    .await?;
    let token = login(api, &mut device).await?;
    Ok(Provisioned {
        device,
        customer,
        token,
    })
}

async fn login(api: &Api, device: &mut SoftDevice) -> anyhow::Result<String> {
    let body = api
        .post("/v1/login", None, json!({"info": device.info()?}))
        .await?;
    let login = field(&body, "login_id")?.to_owned();
    let report = device.integrity(field(&body, "get_integrity_report")?)?;
    let body = api
        .post(
            &format!("/v1/login/{login}/integrity"),
            None,
            json!({"integrity_report": report, "app_hash": hex::encode(LOAD_APP_HASH)}),
        )
        .await?;
    let loaded = device.load_keys(field(&body, "load_session_keys")?)?;
    let body = api
        .post(
            &format!("/v1/login/{login}/keys"),
            None,
            json!({"keys_loaded": loaded}),
        )
        .await?;
    let answer = device.challenge(field(&body, "bank_challenge")?)?;
    let body = api
        .post(
            &format!("/v1/login/{login}/challenge"),
            None,
            json!({"challenge_response": answer}),
        )
        .await?;
    Ok(field(&body, "session_token")?.to_owned())
}

async fn pay(api: &Api, session: &mut Provisioned, index: usize) -> anyhow::Result<Ack> {
    let amount = 1 + (index % 97) as i64;
    let body = api
        .post(
            "/v1/payments",
            Some(&session.token),
            json!({"payee_account": "FR7630006000011234567890189", "payee_name": "Load Shop",
                   "amount_minor": amount, "currency": "EUR", "reference": format!("load {index}"),
                   "idempotency_key": format!("{}-{index}", session.device.serial)}),
        )
        .await?;
    let transaction = field(&body, "transaction_id")?.to_owned();
    let approval = session.device.approve(field(&body, "approve_payment")?)?;
    let body = api
        .post(
            &format!("/v1/payments/{transaction}/approval"),
            Some(&session.token),
            json!({"payment_approved": approval}),
        )
        .await?;
    let verdict = session
        .device
        .verdict(field(&body, "verify_bank_response")?)?;
    if verdict != Verdict::Approved {
        bail!("payment {transaction} not approved: {verdict:?}");
    }
    Ok(Ack {
        transaction_id: transaction,
        customer_id: session.customer.clone(),
        amount_minor: amount,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted
        .get(rank.min(sorted.len() - 1))
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Runs the load; acknowledged payments are appended to `acks` as they happen.
pub async fn run_with(args: LoadArgs, acks: Acks) -> anyhow::Result<LoadReport> {
    let api = Api {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(args.sessions.max(1))
            .timeout(Duration::from_secs(30))
            .build()?,
        urls: std::iter::once(&args.url)
            .chain(&args.also_urls)
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect(),
        turn: Arc::default(),
    };
    let prefix = args.prefix.clone().unwrap_or_else(|| {
        format!(
            "L{}",
            hex::encode(util::random_bytes::<3>().unwrap_or_default())
        )
    });
    let admin = api.staff_token(&args.admin, &args.admin_password).await?;
    let teller = api.staff_token(&args.teller, &args.teller_password).await?;
    let ca = util::with_rng(EcdsaSigningKey::generate)?;
    api.post(
        "/v1/admin/trusted-cas",
        Some(&admin),
        json!({"public_key": hex::encode(ca.verifying_key().to_sec1_bytes()), "label": "load generator"}),
    )
    .await?;
    for (kind, hash) in [("firmware", LOAD_FIRMWARE_HASH), ("app", LOAD_APP_HASH)] {
        api.post(
            "/v1/admin/allowed-hashes",
            Some(&admin),
            json!({"kind": kind, "hash": hex::encode(hash)}),
        )
        .await?;
    }

    let setup_started = Instant::now();
    let ca = Arc::new(ca);
    let mut provisioning = Vec::with_capacity(args.sessions);
    // Provision with bounded parallelism: it is setup, not what is measured.
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    for index in 0..args.sessions {
        let (api, teller, ca, prefix, gate) = (
            api.clone(),
            teller.clone(),
            ca.clone(),
            prefix.clone(),
            gate.clone(),
        );
        provisioning.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            provision(&api, &teller, &ca, &prefix, index).await
        }));
    }
    let mut sessions = Vec::with_capacity(args.sessions);
    for task in provisioning {
        sessions.push(task.await??);
    }
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    let client_cpu_before = cpu_seconds("self");
    let machine_cpu_before = machine_busy_seconds();
    let server_cpu_before = args
        .server_pid
        .and_then(|pid| cpu_seconds(&pid.to_string()));
    let errors = Arc::new(Failures::default());
    let started = Instant::now();
    let (mode, offered, scheduled, workers) = match args.rate {
        Some(rate) => {
            let plan = OpenLoopPlan::new(rate, args.duration, sessions.len())?;
            let workers = sessions
                .into_iter()
                .enumerate()
                .map(|(index, session)| {
                    let (api, acks, errors) = (api.clone(), acks.clone(), errors.clone());
                    let plan = plan.clone();
                    tokio::spawn(async move {
                        open_loop_session(&api, session, index, &plan, started, &acks, &errors)
                            .await
                    })
                })
                .collect::<Vec<_>>();
            ("open", Some(rate), Some(plan.total()), workers)
        }
        None => {
            let deadline = started + Duration::from_secs(args.max_seconds);
            let payments = args.payments;
            let workers = sessions
                .into_iter()
                .map(|session| {
                    let (api, acks, errors) = (api.clone(), acks.clone(), errors.clone());
                    tokio::spawn(async move {
                        closed_loop_session(
                            &api, session, payments, started, deadline, &acks, &errors,
                        )
                        .await
                    })
                })
                .collect::<Vec<_>>();
            ("closed", None, None, workers)
        }
    };
    let mut timed = Vec::new();
    for worker in workers {
        if let Ok(mut measured) = worker.await {
            timed.append(&mut measured);
        }
    }
    let windows = args
        .interval_seconds
        .filter(|w| *w > 0.0)
        .map(|w| intervals(&timed, w));
    let mut latencies: Vec<Duration> = timed.into_iter().map(|(_, latency)| latency).collect();
    let seconds = started.elapsed().as_secs_f64();
    let client_cpu = cpu_used(client_cpu_before, cpu_seconds("self"));
    let machine_cpu = cpu_used(machine_cpu_before, machine_busy_seconds());
    let server_cpu = args
        .server_pid
        .and_then(|pid| cpu_used(server_cpu_before, cpu_seconds(&pid.to_string())));
    latencies.sort();
    let payments = latencies.len();
    let per_payment = |cpu: f64| {
        if payments > 0 {
            cpu * 1e6 / payments as f64
        } else {
            0.0
        }
    };
    Ok(LoadReport {
        mode,
        sessions: args.sessions,
        offered_per_second: offered,
        scheduled,
        payments,
        errors: errors.count.load(std::sync::atomic::Ordering::Relaxed),
        first_error: errors
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        seconds,
        payments_per_second: if seconds > 0.0 {
            payments as f64 / seconds
        } else {
            0.0
        },
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        client_cpu_seconds: client_cpu.unwrap_or(0.0),
        server_cpu_seconds: server_cpu,
        server_cpu_us_per_payment: server_cpu.map(per_payment),
        machine_cpu_seconds: machine_cpu,
        client_cpu_us_per_payment: per_payment(client_cpu.unwrap_or(0.0)),
        setup_seconds,
        intervals: windows,
    })
}

/// One session paying back to back until `payments` are done or the deadline passes; a
/// failed payment (dead server, refused session) ends the session. Returns (start, latency) pairs.
async fn closed_loop_session(
    api: &Api,
    mut session: Provisioned,
    payments: usize,
    started: Instant,
    deadline: Instant,
    acks: &Acks,
    errors: &Failures,
) -> Vec<(Duration, Duration)> {
    let mut latencies = Vec::with_capacity(payments);
    for index in 0..payments {
        if Instant::now() > deadline {
            break;
        }
        let begun = Instant::now();
        match pay(api, &mut session, index).await {
            Ok(ack) => {
                latencies.push((begun - started, begun.elapsed()));
                acks.lock().unwrap_or_else(|p| p.into_inner()).push(ack);
            }
            Err(e) => {
                errors.record(&e);
                break;
            }
        }
    }
    latencies
}

/// Failed payments: how many, and the first one's error.
#[derive(Default)]
struct Failures {
    count: std::sync::atomic::AtomicUsize,
    first: Mutex<Option<String>>,
}

impl Failures {
    fn record(&self, error: &anyhow::Error) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(format!("{error:#}"));
        }
    }
}

/// The open-loop schedule: every session pays once per `period`, session `i` shifted by
/// `i / sessions` of a period, so the arrivals over all sessions are evenly spaced at `rate`.
#[derive(Clone, Debug)]
struct OpenLoopPlan {
    period: Duration,
    per_session: usize,
    sessions: usize,
    /// Time to let every session task start before the first arrival.
    lead_in: Duration,
}

impl OpenLoopPlan {
    fn new(rate: f64, duration: f64, sessions: usize) -> anyhow::Result<Self> {
        if !(rate.is_finite() && rate > 0.0 && duration.is_finite() && duration > 0.0) {
            bail!("--rate and --duration must be positive");
        }
        if sessions == 0 {
            bail!("--sessions must be at least 1");
        }
        let period = Duration::from_secs_f64(sessions as f64 / rate);
        let per_session = ((duration * rate) / sessions as f64).round().max(1.0) as usize;
        Ok(Self {
            period,
            per_session,
            sessions,
            lead_in: Duration::from_millis(200),
        })
    }

    fn total(&self) -> usize {
        self.per_session * self.sessions
    }

    /// When session `index` starts its `n`th payment.
    fn arrival(&self, started: Instant, index: usize, n: usize) -> Instant {
        let phase = self.period.mul_f64(index as f64 / self.sessions as f64);
        started + self.lead_in + phase + self.period.mul_f64(n as f64)
    }
}

/// One session paying on its schedule. A device approves one payment at a time (its counter
/// must increase), so a payment due while the previous one is still running starts when it
/// ends, and its latency still counts from when it was due (no coordinated omission). A
/// failed payment ends the session.
async fn open_loop_session(
    api: &Api,
    mut session: Provisioned,
    index: usize,
    plan: &OpenLoopPlan,
    started: Instant,
    acks: &Acks,
    errors: &Failures,
) -> Vec<(Duration, Duration)> {
    let mut latencies = Vec::with_capacity(plan.per_session);
    for n in 0..plan.per_session {
        let due = plan.arrival(started, index, n);
        tokio::time::sleep_until(due.into()).await;
        match pay(api, &mut session, n).await {
            Ok(ack) => {
                latencies.push((due.saturating_duration_since(started), due.elapsed()));
                acks.lock().unwrap_or_else(|p| p.into_inner()).push(ack);
            }
            Err(e) => {
                errors.record(&e);
                break;
            }
        }
    }
    latencies
}

/// User + system CPU seconds of a process (`self` or a pid) from `/proc/PID/stat`, whose
/// times are in clock ticks of 1/100 s (USER_HZ on Linux). `None` where there is no `/proc`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 0-based 11 and 12 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Busy CPU seconds of the whole machine since boot: the `cpu` line of `/proc/stat` but
/// idle and iowait (clock ticks of 1/100 s).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        // user nice system idle iowait irq softirq steal; guest time is counted in user.
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle) / 100.0)
}

fn cpu_used(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// Runs the load and returns the report.
pub async fn run(args: LoadArgs) -> anyhow::Result<Value> {
    let report = run_with(args, Arc::new(Mutex::new(Vec::new()))).await?;
    Ok(serde_json::to_value(report)?)
}
