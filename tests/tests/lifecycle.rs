//! A device's life after issue through real processes (issue 14, CN101093566A): the
//! activation record checked before every payment, the identity lock and the deletion of
//! payment data after T, the T1 power-off lock lifted by the bank at login, and staff unlock.

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
/// its session keys (the bank's signed EndSession, relayed when the command ends).
#[test]
fn a_command_that_logged_in_leaves_no_session_keys_on_the_pin_pad() {
    let world = World::start();
    world.provision();
    world.pinbridge_ok(&["login"]);
    let state = world.device_state();
    assert_eq!(state["session_active"], false, "{state}");
    assert_eq!(state["paired_hosts"], 1, "{state}");
    let paid = world.pinbridge_ok(PAY);
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");
    assert_eq!(world.device_state()["session_active"], false);
}
