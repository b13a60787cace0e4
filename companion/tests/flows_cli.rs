//! The `pinbridge` subcommands against an in-process sandbox bank and mock PIN pad: staff
//! initialise and enrol, pair, pay; the PIN never appears in any output or the exported log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use std::process::Output;

use flows_support::World;

async fn pinbridge(world: &World, state: &std::path::Path, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pinbridge"));
    command
        .env("PINBRIDGE_BANK_URL", &world.url)
        .env("PINBRIDGE_DEVICE", format!("sim:{}", world.device_address))
        .env("PINBRIDGE_STATE_DIR", state)
        .env("PINBRIDGE_LOG_DIR", state.join("logs"))
        .env("PINBRIDGE_KEYSTORE_PASSPHRASE", "a test passphrase")
        .env("PINBRIDGE_STAFF_USER", "teller")
        .env("PINBRIDGE_STAFF_PASSWORD", "teller-password")
        .args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn assert_no_pin(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        assert!(
            !stream
                .windows(6)
                .any(|w| w == flows_support::PIN.as_bytes())
        );
        assert!(!stream.windows(3).any(|w| w == [0x58, 0x39, 0x20]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_pair_and_pay_from_the_command_line() {
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for args in [
        &["staff", "init"][..],
        &["staff", "enrol", "--customer", "alice"][..],
        &["pair", "--name", "CLI-TEST"][..],
        &[
            "--json",
            "pay",
            "--to",
            "FR7630006000011234567890189",
            "--payee-name",
            "Shop SARL",
            "--amount",
            "12.34",
            "--currency",
            "EUR",
        ][..],
        &["logs", "export"][..],
    ] {
        let output = pinbridge(&world, state.path(), args).await;
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_no_pin(&output);
        all.push(output);
    }
    let paid: serde_json::Value = serde_json::from_slice(&all[3].stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");
    assert_eq!(paid["payment"]["indicator"], "safe", "{paid}");
    let transaction = paid["payment"]["transactionId"].as_str().unwrap();
    assert_eq!(world.journal_entries(transaction).await, 1);
    let text = String::from_utf8_lossy(&all[1].stdout);
    assert!(text.contains("PIN ●●●●●●"), "{text}");
    // Device waits say how long the customer has and how to cancel (issue 17 item 6).
    assert!(text.contains("2:00 to act; Ctrl-C cancels"), "{text}");
    // The key store holds no pairing key in clear and no key to open it: nothing but the
    // sealed file (the log is in its own directory). Beside it, the kept bank session: a
    // token and what it belongs to, no key and no PIN (tests/cli_session.rs).
    let mut names: Vec<String> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["host-keys.enc", "logs", "session.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_a_remote_bank_is_refused() {
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    let output = pinbridge(
        &world,
        state.path(),
        &["--bank-url", "http://bank.example:8443", "login"],
    )
    .await;
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("plain http"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_lists_the_sim_pin_pad() {
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    let output = pinbridge(&world, state.path(), &["--json", "devices"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let address = world.device_address.to_string();
    // Without --json: aligned text, not JSON-like lines (issue 17 item 6).
    let text = pinbridge(&world, state.path(), &["devices"]).await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(!text.contains("[{") && !text.contains("null"), "{text}");
    assert!(
        text.contains("ADDRESS") && text.contains(&address),
        "{text}"
    );
    let devices = listed["devices"].as_array().unwrap();
    assert!(
        devices
            .iter()
            .any(|d| d["transport"] == "sim" && d["address"] == address.as_str()),
        "{listed}"
    );
}
