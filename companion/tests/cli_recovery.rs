//! A `pinbridge pay` killed while the PIN pad waits for the PIN (Ctrl-C twice, a closed
//! terminal, `kill -9`) leaves nothing that breaks the next command: no "replayed host
//! counter" (issue 17 item 6).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use flows_support::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pay_killed_at_the_pin_prompt_does_not_break_the_next_command() {
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    world.run_cli(state.path(), &["staff", "init"]).await;
    world
        .run_cli(state.path(), &["staff", "enrol", "--customer", "alice"])
        .await;
    world
        .run_cli(state.path(), &["pair", "--name", "CLI-TEST"])
        .await;

    // The customer does not type: the payment waits at its PIN prompt.
    let pin = *world.pin.lock().unwrap();
    *world.pin.lock().unwrap() = "";
    let mut activity = world.device.activity();
    let mut pay = world
        .cli(
            state.path(),
            &[
                "pay",
                "--to",
                "FR7630006000011234567890189",
                "--payee-name",
                "Shop SARL",
                "--amount",
                "12.34",
                "--currency",
                "EUR",
            ],
        )
        .spawn()
        .unwrap();
    while world.device.view().state.waiting_for != Some("pin") {
        activity.changed().await.unwrap();
    }
    // Killed outright: no chance to save anything.
    pay.kill().unwrap();
    pay.wait().unwrap();
    *world.pin.lock().unwrap() = pin;

    let login = world.run_cli(state.path(), &["--json", "login"]).await;
    let text = String::from_utf8_lossy(&login.stdout);
    assert!(text.contains("\"loggedIn\":true"), "{text}");
}

fn pay_args() -> Vec<&'static str> {
    vec![
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
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_say_how_many_tries_are_left_then_blocked() {
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    world.run_cli(state.path(), &["staff", "init"]).await;
    world
        .run_cli(state.path(), &["staff", "enrol", "--customer", "alice"])
        .await;
    world
        .run_cli(state.path(), &["pair", "--name", "CLI-TEST"])
        .await;
    *world.pin.lock().unwrap() = flows_support::WRONG_PIN;
    let mut said = Vec::new();
    for _ in 0..3 {
        let mut pay = world.cli(state.path(), &pay_args());
        let output = tokio::task::spawn_blocking(move || pay.output().unwrap())
            .await
            .unwrap();
        assert!(!output.status.success());
        let error: serde_json::Value = serde_json::from_slice(&output.stderr)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr)));
        said.push((
            error["error"]["code"].as_str().unwrap().to_owned(),
            error["error"]["message"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(said[0].0, "pin_incorrect", "{said:?}");
    assert!(said[0].1.contains("2 tries left"), "{said:?}");
    assert!(said[1].1.contains("1 try left"), "{said:?}");
    assert_eq!(said[2].0, "pin_blocked", "{said:?}");
    assert!(said[2].1.contains("call your bank"), "{said:?}");
}
