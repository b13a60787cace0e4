//! Security edges through real processes (issue 14): private files on both sides, and a PIN
//! scan that looks for the PIN the device actually keeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pinbridge_e2e::{PAY, PIN, World, files_under, pin_leaks};

/// The PIN length the sandbox bank's enrolment allows by default (`pin_length_max`): the
/// device keeps at most this many of the digits typed.
const ENROLMENT_PIN_MAX: usize = 6;

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Everything the companion writes (the log with payees, amounts and customer ids; the
/// sealed pairing store) and the bank's SQLite files are readable by their owner only.
#[cfg(unix)]
#[test]
fn logs_state_and_database_files_are_private() {
    let world = World::start();
    world.provision();
    world.pinbridge_ok(&["login"]);
    world.pinbridge_ok(PAY);
    let export = world.state.path().join("exported-events.txt");
    world.pinbridge_ok(&["logs", "export", "--out", export.to_str().unwrap()]);

    let files = files_under(world.state.path());
    let names: Vec<String> = files
        .iter()
        .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().any(|n| n == "pinbridge.log"), "{names:?}");
    for (path, _) in &files {
        assert_eq!(mode(path), 0o600, "{} is not private", path.display());
    }
    let mut database = world.database.clone().into_os_string();
    let base = database.clone();
    for suffix in ["", "-wal", "-shm"] {
        database.clone_from(&base);
        database.push(suffix);
        let path = std::path::PathBuf::from(&database);
        if suffix.is_empty() || path.exists() {
            assert_eq!(mode(&path), 0o600, "{} is not private", path.display());
        }
    }
}

/// The device keeps the first [`ENROLMENT_PIN_MAX`] digits typed: a payment typed with only
/// those is approved, so that is the PIN a leak would show, and the scan must find it.
#[test]
fn the_pin_scan_looks_for_the_pin_the_device_keeps() {
    let kept = &PIN[..PIN.len().min(ENROLMENT_PIN_MAX)];
    let world = World::start_with(&pinbridge_e2e::payment_step(&format!("pin = \"{kept}\"")));
    world.provision();
    world.pinbridge_ok(&["login"]);
    let paid = world.pinbridge_ok(PAY);
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");

    let bcd: Vec<u8> = kept
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = pair[0] - b'0';
            let low = pair.get(1).map_or(0x0f, |d| d - b'0');
            (high << 4) | low
        })
        .collect();
    for planted in [kept.as_bytes().to_vec(), bcd] {
        let mut bytes = b"{\"noise\": \"before\"} ".to_vec();
        bytes.extend_from_slice(&planted);
        bytes.extend_from_slice(b" after");
        assert!(
            !pin_leaks(&bytes).is_empty(),
            "a leak of the PIN the device keeps ({} digits) goes unseen by the scan",
            kept.len()
        );
    }
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A staff password on the command line shows in every user's process list: refused, with
/// the ways that keep it private named. A password file works; with neither, and no
/// terminal to prompt on, the command says what is missing.
#[test]
fn the_staff_password_never_comes_from_the_command_line() {
    let world = World::start();
    let output = world.pinbridge(&["staff", "init", "--staff-password", "teller-password"]);
    assert!(!output.status.success(), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("process list"), "{message}");
    assert!(message.contains("--staff-password-file"), "{message}");

    let file = world.state.path().join("staff-password");
    std::fs::write(&file, "teller-password\n").unwrap();
    let output = world.pinbridge_env(
        &[
            "--json",
            "staff",
            "init",
            "--staff-password-file",
            file.to_str().unwrap(),
        ],
        &[("PINBRIDGE_STAFF_PASSWORD", None)],
    );
    assert!(output.status.success(), "{}", text(&output));

    let output = world.pinbridge_env(
        &["staff", "enrol", "--customer", "alice"],
        &[("PINBRIDGE_STAFF_PASSWORD", None)],
    );
    assert!(!output.status.success(), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("PINBRIDGE_STAFF_PASSWORD"), "{message}");
}

/// The command line keeps one bank session between commands (issue 17 item 6): `login` then
/// `pay` is one login, and `pinbridge logout` ends it at the bank (the token revoked), not
/// left alive for the rest of its 30 minutes.
#[test]
fn commands_share_one_bank_session_and_logout_ends_it() {
    let world = World::start();
    world.provision();
    world.pinbridge_ok(&["login"]);
    let paid = world.pinbridge_ok(PAY);
    let paid: serde_json::Value = serde_json::from_slice(&paid.stdout).unwrap();
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");
    let active = world.journal_query("SELECT COUNT(*) FROM sessions WHERE stage = 'active';");
    assert_eq!(active, 1, "one login for both commands");
    world.pinbridge_ok(&["logout"]);
    let active = world.journal_query("SELECT COUNT(*) FROM sessions WHERE stage = 'active';");
    assert_eq!(active, 0, "sessions left alive at the bank");
    let ended = world.journal_query("SELECT COUNT(*) FROM sessions WHERE stage = 'ended';");
    assert_eq!(ended, 1, "the one login ended");
}

/// A lost PIN pad still plugged into a PC with `pinbridge confirm --watch` running: a teller
/// revokes it from another PC (no device there), and the watcher relays the bank's signed
/// wipe at once: the PIN pad is revoked within seconds, its keys gone.
#[test]
fn a_staff_revoke_reaches_a_watched_pin_pad_within_seconds() {
    let world = World::start();
    world.provision();
    let (watcher, lines) = world.pinbridge_spawn(&["confirm", "--watch"]);
    pinbridge_e2e::wait_for_line(
        &lines,
        "watching for bank events",
        std::time::Duration::from_secs(60),
    );
    assert_eq!(world.device_state()["lifecycle"], "bound");

    world.pinbridge_ok(&[
        "staff",
        "revoke",
        "--serial",
        pinbridge_e2e::SERIAL,
        "--reason",
        "Reported stolen",
    ]);
    let applied = pinbridge_e2e::wait_for_line(
        &lines,
        "bank command wipe applied",
        std::time::Duration::from_secs(10),
    );
    eprintln!("{applied}");
    assert!(applied.contains("revoked"), "{applied}");
    let state = world.device_state();
    assert_eq!(state["lifecycle"], "revoked", "{state}");
    drop(watcher);
}

/// A teller locks a PIN pad by serial from a PC it is not connected to; the PC it is plugged
/// into relays the signed lock at once. The bank's intrusion reports are listed for staff.
#[test]
fn a_staff_lock_by_serial_reaches_a_watched_pin_pad_and_intrusions_are_listed() {
    let world = World::start();
    world.provision();
    let (watcher, lines) = world.pinbridge_spawn(&["confirm", "--watch"]);
    pinbridge_e2e::wait_for_line(
        &lines,
        "watching for bank events",
        std::time::Duration::from_secs(60),
    );
    world.pinbridge_ok(&["staff", "lock", "--serial", pinbridge_e2e::SERIAL]);
    let applied = pinbridge_e2e::wait_for_line(
        &lines,
        "bank command lock applied",
        std::time::Duration::from_secs(10),
    );
    eprintln!("{applied}");
    let state = world.device_state();
    assert_eq!(state["lock"], "locked_by_bank", "{state}");
    drop(watcher);

    let listed = world.pinbridge_ok(&["--json", "staff", "intrusions"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["reports"], serde_json::json!([]), "{listed}");
}
