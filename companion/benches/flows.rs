//! Login and payment end to end with a zero-delay scripted keypad (issue 6 item 8; goal: p50
//! at most 5 ms each). Figures: docs/BENCHMARKS.md, "Companion (issue 6)".
//!
//! The whole chain in one process, as `pinbridge demo` runs it: the embedded sandbox bank
//! (HTTP on loopback, SQLite in a temporary directory), one mock PIN pad served over the sim
//! link on loopback, `companion::demo::script_keypad` with no delay between keys, and the
//! library's flows over a `Session` and a `BankClient`. The device is initialised, the
//! customer enrolled and the host paired once; then each iteration is one whole
//! `flows::login` (GetInfo, begin, integrity report, session keys, challenge) or one whole
//! `flows::pay` (prepare, approve with the PIN typed on the keypad, bank verdict and
//! journal, device check) of 0.01 EUR with a fresh idempotency key.
//!
//! After the criterion groups, a plain loop prints p50/p99 of single flows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/percentiles.rs"]
mod percentiles;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use companion::bank::{BankClient, BankSettings};
use companion::flows::{self, BankSession, FlowEvent, PaymentOrder};
use companion::keystore::PairedHost;
use companion::session::Session;
use companion::transport::sim::SimTransport;
use criterion::{Criterion, criterion_group, criterion_main};
use device_sim::certificate::CaKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::runtime::Runtime;

// The demo's composition root lives in the binary (the library never names the mock device
// or the sandbox bank); the benchmark compiles the same file.
#[allow(dead_code)]
#[path = "../src/demo.rs"]
mod demo;

use demo::{DEMO_CUSTOMER, DEMO_PIN, EmbeddedBank, EmbeddedDevice, script_keypad};

struct World {
    // Dropped last: they serve the flows.
    session: Session,
    client: BankClient,
    host: PairedHost,
    login: BankSession,
    payments: u64,
    /// When each step of the current flow began (filled by the event sink).
    steps: Arc<Mutex<Vec<(Instant, String)>>>,
    _keypad: KeypadTask,
    _device: EmbeddedDevice,
    _bank: EmbeddedBank,
}

struct KeypadTask(tokio::task::JoinHandle<()>);

impl Drop for KeypadTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn world() -> World {
    let ca = CaKey::generate(&mut ChaCha20Rng::from_seed([3; 32]));
    let bank = EmbeddedBank::start(&ca).await.unwrap();
    let device = EmbeddedDevice::start(&ca, &bank.bank, "PB-BENCH-0002")
        .await
        .unwrap();
    let keypad = KeypadTask(script_keypad(
        device.handle.clone(),
        DEMO_PIN,
        Duration::ZERO,
    ));
    let client = BankClient::new(&BankSettings {
        url: bank.url.clone(),
        ca_pem: None,
    })
    .unwrap();
    let mut session = Session::open(Box::new(
        SimTransport::connect(device.address).await.unwrap(),
    ))
    .await
    .unwrap();
    let teller = client
        .staff_login("teller", "teller-password")
        .await
        .unwrap();
    flows::provision(&mut session, &client, &teller, DEMO_CUSTOMER, &mut |_| {})
        .await
        .unwrap();
    let mut host = flows::pair(&mut session, "PB-BENCH", &mut |_| {})
        .await
        .unwrap();
    let login = flows::login(&mut session, &client, &mut host, &mut |_| {})
        .await
        .unwrap();
    World {
        session,
        client,
        host,
        login,
        payments: 0,
        steps: Arc::new(Mutex::new(Vec::new())),
        _keypad: keypad,
        _device: device,
        _bank: bank,
    }
}

impl World {
    fn sink(&self) -> impl FnMut(FlowEvent) + Send + use<> {
        let steps = self.steps.clone();
        move |event| {
            if let FlowEvent::Step { step } = event {
                steps
                    .lock()
                    .unwrap()
                    .push((Instant::now(), format!("{step:?}")));
            }
        }
    }

    /// How long each step of the last flow took, up to `end`.
    fn step_times(&self, end: Instant) -> Vec<(String, Duration)> {
        let steps = std::mem::take(&mut *self.steps.lock().unwrap());
        let ends = steps.iter().skip(1).map(|(at, _)| *at).chain([end]);
        steps
            .iter()
            .zip(ends)
            .map(|((at, name), next)| (name.clone(), next - *at))
            .collect()
    }

    async fn login(&mut self) {
        let mut sink = self.sink();
        self.login = flows::login(&mut self.session, &self.client, &mut self.host, &mut sink)
            .await
            .unwrap();
    }

    async fn pay(&mut self) {
        self.payments += 1;
        let order = PaymentOrder {
            payee_account: "FR7630006000011234567890189".into(),
            payee_name: "Shop SARL".into(),
            amount_minor: 1,
            currency: "EUR".into(),
            reference: "bench".into(),
            idempotency_key: format!("bench-{:016x}", self.payments),
        };
        let mut sink = self.sink();
        let outcome = flows::pay(
            &mut self.session,
            &self.client,
            &self.login,
            &mut self.host,
            &order,
            &mut sink,
        )
        .await
        .unwrap();
        assert!(outcome.approved(), "{outcome:?}");
    }
}

fn flows(c: &mut Criterion) {
    let rt = runtime();
    let mut world = rt.block_on(world());
    let mut group = c.benchmark_group("flow");
    group.sample_size(30);
    group.bench_function("login", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    world.login().await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("payment", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    world.pay().await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    const SAMPLES: usize = 200;
    measure(&rt, &mut world, SAMPLES);
}

fn measure(rt: &Runtime, world: &mut World, samples: usize) {
    let (logins, payments, login_steps, payment_steps) = rt.block_on(async {
        let mut logins = Vec::with_capacity(samples);
        let mut payments = Vec::with_capacity(samples);
        let mut login_steps: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
        let mut payment_steps: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
        for _ in 0..samples {
            world.steps.lock().unwrap().clear();
            let start = Instant::now();
            world.login().await;
            let end = Instant::now();
            logins.push(end - start);
            for (step, took) in world.step_times(end) {
                login_steps.entry(step).or_default().push(took);
            }
            let start = Instant::now();
            world.pay().await;
            let end = Instant::now();
            payments.push(end - start);
            for (step, took) in world.step_times(end) {
                payment_steps.entry(step).or_default().push(took);
            }
        }
        (logins, payments, login_steps, payment_steps)
    });
    report("login", logins);
    for (step, took) in login_steps {
        report(&format!("  login step {step}"), took);
    }
    report("payment", payments);
    for (step, took) in payment_steps {
        report(&format!("  payment step {step}"), took);
    }
}

fn report(what: &str, samples: Vec<Duration>) {
    let runs = samples.len();
    if let Some((p50, p99)) = percentiles::p50_p99(samples) {
        println!(
            "{what}: p50 {:.2} ms, p99 {:.2} ms over {runs} runs",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        );
    }
}

criterion_group!(benches, flows);
criterion_main!(benches);
