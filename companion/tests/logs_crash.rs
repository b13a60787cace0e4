//! The log survives the process: a `pinbridge pay` killed with SIGKILL while the PIN pad
//! waits for the customer leaves every flow event it had shown in the log file, and
//! `pinbridge logs export` / `pinbridge diagnostics` give them back with no secret in them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use companion::redaction::redact_hex_runs;
use flows_support::World;

fn pinbridge(world: &World, state: &Path, logs: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinbridge"));
    command
        .env("PINBRIDGE_BANK_URL", &world.url)
        .env("PINBRIDGE_DEVICE", format!("sim:{}", world.device_address))
        .env("PINBRIDGE_STATE_DIR", state)
        .env("PINBRIDGE_LOG_DIR", logs)
        .env(
            "PINBRIDGE_KEYSTORE_PASSPHRASE",
            "logs crash test passphrase",
        )
        .env("PINBRIDGE_STAFF_USER", "teller")
        .env("PINBRIDGE_STAFF_PASSWORD", "teller-password")
        .stdin(Stdio::null());
    command
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

const PAY: [&str; 10] = [
    "pay",
    "--to",
    "FR7630006000011234567890189",
    "--payee-name",
    "Shop SARL",
    "--amount",
    "12.34",
    "--currency",
    "EUR",
    "--reference",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_killed_mid_flow_leaves_its_events_in_the_log_file() {
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    for args in [
        &["staff", "init"][..],
        &["staff", "enrol", "--customer", "alice"][..],
        &["pair", "--name", "CRASH-TEST"][..],
    ] {
        let mut command = pinbridge(&world, state.path(), logs.path());
        command.args(args);
        let output = run(command).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // The customer walks away: the PIN pad will wait at the payment's PIN prompt.
    world.stop_keypad();
    let mut command = pinbridge(&world, state.path(), logs.path());
    command.args(PAY).arg("crash").stdout(Stdio::piped());
    let (shown, status) = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut shown = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let waiting = line.contains("Ctrl-C cancels");
            shown.push(line);
            if waiting {
                // Mid-flow: the device waits for the PIN. SIGKILL: no handler, no flush.
                child.kill().unwrap();
                break;
            }
        }
        (shown, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert!(!status.success(), "killed, not finished: {shown:?}");
    assert!(
        shown.last().is_some_and(|l| l.contains("Ctrl-C cancels")),
        "{shown:?}"
    );

    // Every event the killed process had shown is in the log file, the last one included.
    let log = companion::logfile::LogFile::new(logs.path());
    let records = log.records();
    let flow_messages: Vec<&str> = records
        .iter()
        .filter(|r| r.event.is_some())
        .map(|r| r.message.as_str())
        .collect();
    // As shown, less the countdown note, with account numbers cut as the log cuts them.
    let logged = |line: &str| redact_hex_runs(line.split("  (").next().unwrap()).0;
    for line in &shown {
        let event = logged(line);
        assert!(
            flow_messages.contains(&event.as_str()),
            "{event:?} is not in the log: {flow_messages:?}"
        );
    }
    let last_shown = logged(shown.last().unwrap());
    assert_eq!(flow_messages.last().copied(), Some(last_shown.as_str()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The export and the diagnostics bundle carry them, and nothing secret.
    let mut command = pinbridge(&world, state.path(), logs.path());
    command.args(["logs", "export"]);
    let export = run(command).await;
    assert!(export.status.success());
    let export = String::from_utf8_lossy(&export.stdout).into_owned();
    let mut command = pinbridge(&world, state.path(), logs.path());
    command.args(["--json", "diagnostics", "--events", "100"]);
    let diagnostics = run(command).await;
    assert!(
        diagnostics.status.success(),
        "{}",
        String::from_utf8_lossy(&diagnostics.stderr)
    );
    let bundle: serde_json::Value = serde_json::from_slice(&diagnostics.stdout).unwrap();
    let bundle = &bundle["diagnostics"];
    assert_eq!(bundle["program"], "pinbridge");
    assert_eq!(bundle["pairingKeys"], "passphrase");
    assert!(
        bundle["transportsSeen"]
            .as_array()
            .unwrap()
            .contains(&"sim".into()),
        "{bundle}"
    );
    let last = bundle["recentFlowEvents"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    assert_eq!(last["message"].as_str(), Some(last_shown.as_str()));
    let bundle_text = bundle.to_string();
    let host = companion::keystore::KeyStore::with_passphrase(
        state.path(),
        zeroize::Zeroizing::new("logs crash test passphrase".into()),
    )
    .find("PB-TEST-1")
    .unwrap()
    .unwrap();
    let secrets = [
        flows_support::PIN.to_owned(),
        hex::encode(host.pairing_key.reveal_bytes()),
        hex::encode(host.host_id.as_bytes()),
        "teller-password".to_owned(),
        "logs crash test passphrase".to_owned(),
    ];
    for text in [&export, &bundle_text] {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} in {text}");
        }
        // No hex run long enough to be a key, MAC or token.
        assert!(
            !text
                .split(|c: char| !c.is_ascii_hexdigit())
                .any(|run| run.len() >= 16),
            "{text}"
        );
    }
}
