//! A device's life after issue through real processes (issue 14, CN101093566A): the
//! activation record checked before every payment, the identity lock and the deletion of
//! payment data after T, the T1 power-off lock lifted by the bank at login, staff unlock,
//! rebind to a replacement PIN pad, and what a PIN pad answered to a bank command reported
//! back to the bank for staff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pinbridge_e2e::{PAY, SERIAL, World};

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The simulator's own board (device_sim::hardware::DEFAULT_BOARD_ID).
const OWN_BOARD: &str = "pinpad-sim virtual board";

fn move_to_board(world: &World, board: &str) {
    let (status, body) = world.control_post(
        "/devices/0/board",
        &serde_json::json!({ "board_id": board }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
}

/// The PIN pad's secure store now runs on another board (a clone): the next payment is
/// refused and locks the payment functions; logins are refused and reported to staff; once
/// the genuine board is back and staff unlocked it, the next login relays the Unlock and the
/// customer pays.
#[test]
fn a_store_on_another_board_locks_payments_until_staff_unlock_the_genuine_one() {
    let world = World::start();
    world.provision();
    move_to_board(&world, "a cloned board");

    let refused = world.pinbridge(PAY);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("activation record"),
        "{}",
        text(&refused)
    );
    let state = world.device_state();
    assert_eq!(state["lock"], "locked_identity", "{state}");
    assert_eq!(world.journal_total(), 0);

    let login = world.pinbridge(&["login"]);
    assert!(!login.status.success(), "{}", text(&login));
    // The device's refusal is what the customer is told (the bank records it too).
    assert!(
        text(&login).contains("activation record"),
        "{}",
        text(&login)
    );
    let reports = world.pinbridge_ok(&["--json", "staff", "intrusions", "--serial", SERIAL]);
    let reports: serde_json::Value = serde_json::from_slice(&reports.stdout).unwrap();
    assert!(
        reports["reports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["detail"].as_str().unwrap().contains("identity mismatch")),
        "{reports}"
    );

    move_to_board(&world, OWN_BOARD);
    world.pinbridge_ok(&["staff", "unlock", "--serial", SERIAL]);
    let paid = world.pinbridge_ok(PAY);
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");
    assert_eq!(world.device_state()["lock"], "unlocked");
}

/// An identity lock held longer than T (1 hour) deletes the payment data on the device.
#[test]
fn an_identity_lock_held_longer_than_t_deletes_the_payment_data() {
    let world = World::start();
    world.provision();
    move_to_board(&world, "a cloned board");
    assert!(!world.pinbridge(PAY).status.success());
    let (status, body) = world.control_post("/devices/0/clock", r#"{"advance_ms": 3600001}"#);
    assert_eq!(status, 200, "{body}");
    let state = world.device_state();
    assert_eq!(state["lifecycle"], "revoked", "{state}");
    assert_eq!(state["paired_hosts"], 0, "{state}");
}

/// Off for longer than T1 (7 days): the PIN pad comes back locked; the next login, having
/// verified a fresh integrity report, relays the bank's Unlock and the payment goes through.
#[test]
fn a_pin_pad_off_longer_than_t1_is_unlocked_by_the_bank_at_the_next_login() {
    let world = World::start();
    world.provision();
    let week = 7 * 24 * 3600 * 1000_u64;
    let (status, body) = world.control_post(
        "/devices/0/power-cycle",
        &format!(r#"{{"off_ms": {}}}"#, week + 60_000),
    );
    assert_eq!(status, 200, "{body}");
    let state = world.device_state();
    assert_eq!(state["lock"], "locked_power_off", "{state}");

    let paid = world.pinbridge_ok(PAY);
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");
    assert_eq!(world.device_state()["lock"], "unlocked");
    let unlocks = world.journal_query(
        "SELECT COUNT(*) FROM device_commands WHERE kind = 'unlock' AND issued_by = 'login';",
    );
    assert_eq!(unlocks, 1);
    // The login that relayed the Unlock told the bank what the PIN pad answered.
    assert_eq!(
        world.journal_query(
            "SELECT COUNT(*) FROM device_command_results r JOIN device_commands c \
             ON c.serial = r.serial AND c.sequence = r.sequence \
             WHERE c.kind = 'unlock' AND r.outcome = 'applied';"
        ),
        1
    );
}

/// Enrols alice on the PIN pad through staff commands and returns her loss-report code.
fn provision_with_loss_code(world: &World) -> String {
    world.pinbridge_ok(&["staff", "init"]);
    let enrolled = world.pinbridge_ok(&["--json", "staff", "enrol", "--customer", "alice"]);
    let enrolled: serde_json::Value = serde_json::from_slice(&enrolled.stdout).unwrap();
    world.pinbridge_ok(&["pair", "--name", "E2E-PC"]);
    enrolled["lossReportCode"]
        .as_str()
        .unwrap_or_else(|| panic!("no loss-report code: {enrolled}"))
        .to_owned()
}

/// The customer reports the PIN pad lost from any computer, with no PIN pad and no login,
/// using the code from enrolment: a wrong code is refused; the right one revokes the device
/// at the bank and the PC the PIN pad is plugged into wipes it within seconds.
#[test]
fn a_customer_reports_the_pin_pad_lost_and_the_pc_it_is_plugged_into_wipes_it() {
    let world = World::start();
    let code = provision_with_loss_code(&world);
    let (watcher, lines) = world.pinbridge_spawn(&["confirm", "--watch"]);
    pinbridge_e2e::wait_for_line(
        &lines,
        "watching for bank events",
        std::time::Duration::from_secs(60),
    );
    let report = [
        "device",
        "report-lost",
        "--serial",
        SERIAL,
        "--customer",
        "alice",
    ];
    let wrong = world.pinbridge_env(
        &report,
        &[(
            "PINBRIDGE_LOSS_REPORT_CODE",
            Some("0000-0000-0000-0000-0000"),
        )],
    );
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("loss-report code"),
        "{}",
        text(&wrong)
    );
    assert_eq!(world.device_state()["lifecycle"], "bound");

    let reported = world.pinbridge_env(
        &report,
        &[
            ("PINBRIDGE_LOSS_REPORT_CODE", Some(code.as_str())),
            ("PINBRIDGE_DEVICE", None),
            ("PINBRIDGE_STAFF_USER", None),
            ("PINBRIDGE_STAFF_PASSWORD", None),
        ],
    );
    assert!(reported.status.success(), "{}", text(&reported));
    pinbridge_e2e::wait_for_line(
        &lines,
        "bank command wipe applied",
        std::time::Duration::from_secs(10),
    );
    assert_eq!(world.device_state()["lifecycle"], "revoked");
    drop(watcher);
    assert!(!world.pinbridge(&["login"]).status.success());
}

/// A teller makes the PIN pad forget every paired computer (the customer's PC was stolen)
/// with no PIN pad at hand: at its next login the PIN pad gets the order first and forgets
/// the PC; the customer pairs the computer they still have again and pays.
#[test]
fn staff_unpair_by_serial_reaches_the_pin_pad_at_its_next_login() {
    let confirm_again = "[[device.step]]\non = \"confirm\"\nafter_ms = 50\nconfirm = true\n";
    let world = World::start_with(&format!("{confirm_again}{}", pinbridge_e2e::pay_with_pin()));
    world.provision();
    world.pinbridge_ok(&["staff", "unpair", "--serial", SERIAL]);
    assert_eq!(world.device_state()["paired_hosts"], 1);

    let login = world.pinbridge(&["login"]);
    assert!(!login.status.success(), "{}", text(&login));
    assert_eq!(world.device_state()["paired_hosts"], 0);
    assert!(
        text(&login).to_lowercase().contains("pair"),
        "{}",
        text(&login)
    );

    world.pinbridge_ok(&["pair", "--name", "E2E-PC-2"]);
    let paid = world.pinbridge_ok(PAY);
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");
    assert_eq!(
        world.journal_query("SELECT forget_hosts_pending FROM devices;"),
        0,
        "a completed login ends the order"
    );
}

/// Logout ends the session at both ends: the bank revokes the token, and the PIN pad drops
/// its session keys (the bank's signed EndSession, relayed by `pinbridge logout`). Until then
/// the session is kept for the next commands (issue 17 item 6).
#[test]
fn logout_leaves_no_session_keys_on_the_pin_pad() {
    let world = World::start();
    world.provision();
    world.pinbridge_ok(&["login"]);
    let state = world.device_state();
    assert_eq!(
        state["session_active"], true,
        "kept for the next command: {state}"
    );
    assert_eq!(state["paired_hosts"], 1, "{state}");
    let paid = world.pinbridge_ok(PAY);
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");
    world.pinbridge_ok(&["logout"]);
    assert_eq!(world.device_state()["session_active"], false);
}

/// A second PIN pad (`serial`) from the same CA and bank keys as the world's, served by its
/// own simulator with a keypad that types [`pinbridge_e2e::PIN`] at enrolment's two PIN
/// prompts, confirms pairing and types the PIN at the first payment. Returns the server and
/// its `sim:` address.
fn second_pin_pad(world: &World, serial: &str) -> (pinbridge_e2e::Running, String) {
    let bins = pinbridge_e2e::binaries();
    let state = world.dir.path().join(format!("{serial}.json"));
    pinbridge_e2e::run_ok(
        std::process::Command::new(&bins.sim)
            .args(["init", "--serial", serial, "--state"])
            .arg(&state)
            .arg("--ca-key")
            .arg(world.dir.path().join("ca.json"))
            .arg("--bank-keys")
            .arg(world.dir.path().join("bank-keys.json")),
    );
    let pin = format!("pin = \"{}\"", pinbridge_e2e::PIN);
    let step = |on: &str, action: &str| {
        format!("[[device.step]]\non = \"{on}\"\nafter_ms = 50\n{action}\n")
    };
    let scenario = format!(
        "[[device]]\nindex = 0\n{}{}{}{}",
        step("pin", &pin),
        step("pin", &pin),
        step("confirm", "confirm = true"),
        step("pin", &pin)
    );
    let scenario_file = world.dir.path().join(format!("{serial}.toml"));
    std::fs::write(&scenario_file, scenario).unwrap();
    let (sim, lines) = pinbridge_e2e::spawn_server(
        std::process::Command::new(&bins.sim)
            .args(["serve", "--state"])
            .arg(&state)
            .args(["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .arg("--scenario")
            .arg(&scenario_file),
        &["device 0 "],
    );
    let address = lines[0].rsplit(' ').next().unwrap().to_owned();
    (sim, format!("sim:{address}"))
}

/// Staff move alice from her lost PIN pad (not here) to a replacement with `pinbridge staff
/// rebind`: a replacement that is not initialised, and a customer other than the one the bank
/// has bound to the lost PIN pad, are refused before anything is revoked (the old code
/// revoked the lost PIN pad, then failed, or enrolled the wrong customer);
/// the right one revokes the lost PIN pad, binds the new one after the PIN is chosen on its
/// keypad, and alice pays with it; the lost one is wiped when it next tries to log in.
#[test]
fn staff_rebind_moves_the_customer_to_a_replacement_pin_pad() {
    let world = World::start();
    world.provision();
    let (_sim, new_pad) = second_pin_pad(&world, "E2E-2");
    let on_new = [("PINBRIDGE_DEVICE", Some(new_pad.as_str()))];
    let revoked = || world.journal_query("SELECT COUNT(*) FROM devices WHERE state = 'revoked';");

    // A replacement the bank has not initialised cannot take alice: refused before anything
    // is revoked (it revoked her PIN pad, then failed to enrol her on the new one).
    let early = world.pinbridge_env(
        &["staff", "rebind", "--from", SERIAL, "--customer", "alice"],
        &on_new,
    );
    assert!(!early.status.success(), "{}", text(&early));
    assert!(text(&early).contains("not initialised"), "{}", text(&early));
    assert_eq!(revoked(), 0, "nothing revoked");
    // The replacement is initialised at the branch first, as any new PIN pad.
    let initialised = world.pinbridge_env(&["staff", "init"], &on_new);
    assert!(initialised.status.success(), "{}", text(&initialised));

    let wrong = world.pinbridge_env(
        &["staff", "rebind", "--from", SERIAL, "--customer", "bob"],
        &on_new,
    );
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("bound to customer alice"),
        "{}",
        text(&wrong)
    );
    assert_eq!(revoked(), 0, "nothing revoked");

    let moved = world.pinbridge_env(
        &[
            "--json",
            "staff",
            "rebind",
            "--from",
            SERIAL,
            "--customer",
            "alice",
        ],
        &on_new,
    );
    assert!(moved.status.success(), "{}", text(&moved));
    let moved: serde_json::Value = serde_json::from_slice(&moved.stdout).unwrap();
    assert_eq!(moved["revoked"], SERIAL, "{moved}");
    assert_eq!(moved["bound"], "E2E-2", "{moved}");
    assert!(moved["lossReportCode"].is_string(), "{moved}");
    assert_eq!(
        world.journal_query(
            "SELECT COUNT(*) FROM devices WHERE serial = 'E2E-1' AND state = 'revoked';"
        ),
        1
    );
    assert_eq!(
        world.journal_query(
            "SELECT COUNT(*) FROM bindings WHERE device_serial = 'E2E-2' \
             AND customer_id = 'alice' AND status = 'active';"
        ),
        1
    );

    let paired = world.pinbridge_env(&["pair", "--name", "E2E-PC"], &on_new);
    assert!(paired.status.success(), "{}", text(&paired));
    let paid = world.pinbridge_env(PAY, &on_new);
    assert!(paid.status.success(), "{}", text(&paid));
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");

    // The lost PIN pad turns up: its login is refused and it is wiped.
    assert!(!world.pinbridge(&["login"]).status.success());
    assert_eq!(world.device_state()["lifecycle"], "revoked");
}

/// What the PIN pad did with a bank command reaches the bank: the watcher that relays a
/// staff lock reports the PIN pad's answer, and staff read it by serial (`pinbridge staff
/// device`), marked as the relaying app's word; a report about a command the bank never
/// issued is refused.
#[test]
fn a_pin_pad_answer_to_a_bank_command_is_reported_to_the_bank_and_shown_to_staff() {
    let world = World::start();
    world.provision();
    let (_watcher, lines) = world.pinbridge_spawn(&["confirm", "--watch"]);
    pinbridge_e2e::wait_for_line(
        &lines,
        "watching for bank events",
        std::time::Duration::from_secs(60),
    );
    world.pinbridge_ok(&["staff", "lock", "--serial", SERIAL]);
    pinbridge_e2e::wait_for_line(
        &lines,
        "bank command lock applied",
        std::time::Duration::from_secs(10),
    );
    assert_eq!(world.device_state()["lock"], "locked_by_bank");

    let record = world.pinbridge_ok(&["--json", "staff", "device", "--serial", SERIAL]);
    let record: serde_json::Value = serde_json::from_slice(&record.stdout).unwrap();
    let lock = &record["commands"][0];
    assert_eq!(lock["command"], "lock", "{record}");
    assert_eq!(lock["result"]["outcome"], "applied", "{record}");
    assert_eq!(lock["result"]["lock"], "locked_by_bank", "{record}");
    assert_eq!(lock["result"]["evidence"], "app_report", "{record}");
    let human = world.pinbridge_ok(&["staff", "device", "--serial", SERIAL]);
    assert!(
        text(&human).contains("lock (by teller): applied (device: bound, locked_by_bank)"),
        "{}",
        text(&human)
    );
    assert!(
        text(&human).contains("not signed by the device"),
        "{}",
        text(&human)
    );

    // Anyone may post a report, but only about a command the bank issued to that serial.
    let body = serde_json::json!({"bank_command": "00", "device_answer": "00"}).to_string();
    let (status, answer) = pinbridge_e2e::send_raw(
        world.bank_address,
        format!(
            "POST /v1/devices/{SERIAL}/command-result HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(status, 400, "{answer}");
}
