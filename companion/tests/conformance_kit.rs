//! The conformance kit against pinpad-sim: `pinbridge conformance` (the real binary) passes on
//! the reference device (its change-PIN and wipe cases, §6.12 and §6.13, included), and each deliberately non-conforming scenario
//! (`device_sim::nonconforming`) fails exactly the cases that check the rule it breaks, and
//! no other.
//!
//! The device is served in process over the real sim link (TCP) with its control API as the
//! test hook; the kit runs as a child process with the test bank's keys and writes its JSON
//! report, which the test reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

use companion::conformance::testbank::TestBank;
use device_sim::certificate::CaKey;
use device_sim::device::{Device, Manufacture};
use device_sim::hardware::{Clock, SecureStore, VirtualHardware};
use device_sim::nonconforming::Nonconformity;
use device_sim::server::ServedDevice;
use device_sim::sim::{SimCore, SimHandle};
use firmware_protocol::link::Mtu;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    seed
}

struct Run {
    exit_code: i32,
    report: serde_json::Value,
    text: String,
}

impl Run {
    fn ids(&self, verdict: &str) -> BTreeSet<String> {
        self.report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|case| case["verdict"] == verdict)
            .map(|case| case["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// One kit at a time: the kit measures the device's timers (to 100 ms), and six runs at once
/// on a two-core machine measure the machine instead.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serves a fresh test unit (manufactured with the test bank's public keys), breaking the
/// protocol as `scenario` says, and runs `pinbridge conformance` against it.
async fn run_kit(scenario: Option<Nonconformity>) -> Run {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let bank_file = dir.path().join("test-bank.json");
    let bank = TestBank::generate(&mut ChaCha20Rng::from_seed(seed()));
    bank.save(&bank_file).unwrap();

    let ca = CaKey::generate(&mut ChaCha20Rng::from_seed(seed()));
    let mut settings = Manufacture::new("CONF-TEST-1");
    settings.bank_management_key = Some(bank.management.verifying_key());
    settings.bank_operator_key = Some(bank.operator.verifying_key());
    let device_seed = seed();
    let device =
        Device::manufacture(&settings, &ca, &mut ChaCha20Rng::from_seed(device_seed)).unwrap();
    let hw = VirtualHardware::with(
        device_seed,
        Clock::System { offset_ms: 0 },
        SecureStore::Memory(None),
    );
    let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = ServedDevice::spawn_nonconforming(handle.clone(), listener, scenario).unwrap();
    let control_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (control, _control_task) =
        device_sim::control::spawn(vec![handle], control_listener).unwrap();

    let report_file = dir.path().join("report.json");
    let device_arg = format!("sim:{}", served.address);
    let control_arg = format!("http://{control}");
    let output = {
        let bank_file = bank_file.clone();
        let report_file = report_file.clone();
        tokio::task::spawn_blocking(move || {
            assert_cmd::Command::cargo_bin("pinbridge")
                .unwrap()
                .env_remove("PINBRIDGE_DEVICE")
                .args(["--device", &device_arg, "conformance", "--bank-keys"])
                .arg(&bank_file)
                .args(["--sim-control", &control_arg, "--report"])
                .arg(&report_file)
                .timeout(std::time::Duration::from_secs(120))
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = read_report(&report_file, &text, &output.stderr);
    Run {
        exit_code: output.status.code().unwrap_or(-1),
        report,
        text,
    }
}

fn read_report(path: &Path, stdout: &str, stderr: &[u8]) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(stderr)
        )
    });
    serde_json::from_slice(&bytes).unwrap()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

fn assert_fails_exactly(run: &Run, expected: &[&str]) {
    assert_eq!(run.ids("fail"), set(expected), "{}", run.text);
    assert!(run.ids("skip").is_empty(), "{}", run.text);
    assert_eq!(
        run.exit_code,
        if expected.is_empty() { 0 } else { 1 },
        "{}",
        run.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_device_passes_every_case() {
    let run = run_kit(None).await;
    assert_fails_exactly(&run, &[]);
    let cases = run.report["cases"].as_array().unwrap();
    // Every case names its PROTOCOL.md section, and the summary adds up.
    assert!(
        cases
            .iter()
            .all(|c| c["section"].as_str().is_some_and(|s| !s.is_empty()))
    );
    assert_eq!(run.report["summary"]["pass"], cases.len());
    for id in [
        "link.crc.bad",
        "link.msg.given-up",
        "link.keepalive.interval",
        "link.busy.other-channel",
        "bank.initialise",
        "bank.replay.sequence",
        "pair.confirm",
        "host.replay",
        "bank.enrol",
        "bank.login",
        "bank.payment",
        "bank.payment.replay",
        "link.keepalive.pin-entry",
        "owner.change-pin",
        "owner.change-pin.verify-mismatch",
        "owner.change-pin.differ",
        "owner.change-pin.bad-mac",
        "owner.wipe.cancel",
        "owner.wipe",
        "tamper.reset",
    ] {
        assert!(
            run.ids("pass").contains(id),
            "{id} did not run:\n{}",
            run.text
        );
    }
    // One line per case in the human summary, with verdict, id and section.
    assert!(
        run.text
            .lines()
            .any(|l| l.starts_with("PASS link.crc.bad") && l.contains("§2.8")),
        "{}",
        run.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_crc_on_errors_fails_the_refusal_cases_only() {
    let run = run_kit(Some(Nonconformity::WrongCrc)).await;
    assert_fails_exactly(
        &run,
        &[
            "link.cmd.unknown",
            "link.cmd.device-only",
            "link.channel.unopened",
            "link.channel.broadcast",
            "link.length.oversize",
            "link.length.padding",
            "link.length.payload",
            "link.cancel.prompt",
            "link.busy.other-channel",
            "link.busy.same-channel",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoring_busy_fails_the_busy_cases_only() {
    let run = run_kit(Some(Nonconformity::IgnoreBusy)).await;
    assert_fails_exactly(&run, &["link.busy.other-channel", "link.busy.same-channel"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_keepalive_fails_the_keepalive_cases_only() {
    let run = run_kit(Some(Nonconformity::NoKeepalive)).await;
    assert_fails_exactly(
        &run,
        &["link.keepalive.interval", "link.keepalive.pin-entry"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoring_cancel_fails_the_cancel_case_only() {
    let run = run_kit(Some(Nonconformity::IgnoreCancel)).await;
    assert_fails_exactly(&run, &["link.cancel.prompt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bank_keys_and_hook_those_cases_are_skipped_with_the_reason() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let ca = CaKey::generate(&mut ChaCha20Rng::from_seed(seed()));
    let device_seed = seed();
    let device = Device::manufacture(
        &Manufacture::new("CONF-TEST-2"),
        &ca,
        &mut ChaCha20Rng::from_seed(device_seed),
    )
    .unwrap();
    let hw = VirtualHardware::with(
        device_seed,
        Clock::System { offset_ms: 0 },
        SecureStore::Memory(None),
    );
    let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = ServedDevice::spawn(handle, listener).unwrap();
    let transport = companion::transport::sim::SimTransport::connect(served.address)
        .await
        .unwrap();
    let report = companion::conformance::run(
        Box::new(transport),
        companion::conformance::Options {
            address: format!("sim:{}", served.address),
            ..Default::default()
        },
    )
    .await;
    assert!(report.passed(), "{}", report.to_text());
    let skipped: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.verdict == companion::conformance::report::Verdict::Skip)
        .collect();
    let skipped_ids: BTreeSet<&str> = skipped.iter().map(|c| c.id).collect();
    for id in [
        "bank.initialise",
        "pair.confirm",
        "link.keepalive.interval",
        "owner.change-pin",
        "owner.wipe",
        "tamper.trip",
    ] {
        assert!(skipped_ids.contains(id), "{}", report.to_text());
    }
    // Each says why: the missing keys, or the case it builds on.
    assert!(
        skipped.iter().all(|c| c.seen.contains("needs")),
        "{}",
        report.to_text()
    );
    // The link and message cases ran.
    assert!(report.summary.pass >= 30, "{}", report.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_of_another_bank_refuses_the_kits_reset() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // The device trusts its own bank's keys; the kit holds a test bank's.
    let own_bank = TestBank::generate(&mut ChaCha20Rng::from_seed(seed()));
    let test_bank = TestBank::generate(&mut ChaCha20Rng::from_seed(seed()));
    let ca = CaKey::generate(&mut ChaCha20Rng::from_seed(seed()));
    let mut settings = Manufacture::new("CONF-TEST-3");
    settings.bank_management_key = Some(own_bank.management.verifying_key());
    settings.bank_operator_key = Some(own_bank.operator.verifying_key());
    let device_seed = seed();
    let device =
        Device::manufacture(&settings, &ca, &mut ChaCha20Rng::from_seed(device_seed)).unwrap();
    let hw = VirtualHardware::with(
        device_seed,
        Clock::System { offset_ms: 0 },
        SecureStore::Memory(None),
    );
    let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = ServedDevice::spawn(handle.clone(), listener).unwrap();
    let transport = companion::transport::sim::SimTransport::connect(served.address)
        .await
        .unwrap();
    let report = companion::conformance::run(
        Box::new(transport),
        companion::conformance::Options {
            address: format!("sim:{}", served.address),
            bank: Some(test_bank),
            ..Default::default()
        },
    )
    .await;
    let reset = report.cases.iter().find(|c| c.id == "bank.reset").unwrap();
    assert_eq!(reset.verdict, companion::conformance::report::Verdict::Fail);
    assert!(reset.seen.contains("BadSignature"), "{}", report.to_text());
    // Nothing the bank signs took effect.
    assert_eq!(handle.view().state.bank_sequence, 0);
}
