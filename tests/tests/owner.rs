//! The customer's own PIN pad operations through real processes (issue 14 item 7; PROTOCOL.md
//! §6.12, §6.13): the bank, the PIN pad simulator with a scripted keypad, and the `pinbridge`
//! CLI. Change the PIN on the keypad, then pay with the new one (approved) and the old one
//! (refused); a wrong current PIN counts toward blocking like a wrong payment PIN; the owner's
//! wipe returns the PIN pad to the factory state and ends the binding at the bank.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pinbridge_e2e::{PAY, PIN, World, payment_step, pin_leaks};

/// The new PIN (the enrolment policy is 4-6 digits).
const NEW_PIN: &str = "250817";

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn pin(pin: &str) -> String {
    payment_step(&format!("pin = \"{pin}\""))
}

/// One PIN change on the keypad: current PIN, new PIN, new PIN again.
fn change_keys(current: &str, new: &str) -> String {
    format!("{}{}{}", pin(current), pin(new), pin(new))
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", text(output)))
}

#[test]
fn a_changed_pin_pays_and_the_old_one_no_longer_does() {
    let world = World::start_with(&format!(
        "{}{}{}",
        change_keys(PIN, NEW_PIN),
        pin(NEW_PIN),
        pin(PIN)
    ));
    world.provision();

    let changed = world.pinbridge_ok(&["--json", "pin", "change"]);
    let changed = json(&changed);
    assert_eq!(changed["pinChange"]["bankResult"], "changed", "{changed}");
    assert_eq!(
        changed["pinChange"]["displayText"], "PIN changed",
        "{changed}"
    );
    assert_eq!(changed["pinChange"]["indicator"], "safe", "{changed}");
    assert!(
        world.device_display().iter().any(|l| l == "PIN changed"),
        "the PIN pad shows the outcome: {:?}",
        world.device_display()
    );

    let paid = json(&world.pinbridge_ok(PAY));
    assert_eq!(paid["payment"]["bankResult"], "approved", "{paid}");

    let refused = world.pinbridge(PAY);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("wrong PIN"), "{}", text(&refused));
    assert_eq!(
        world.journal_total(),
        1,
        "only the payment with the new PIN"
    );

    // Neither PIN crossed the PC: not in the bank's traffic nor on the device link.
    for (what, bytes) in [
        ("bank traffic", world.bank_proxy.bytes()),
        ("device link", world.link_proxy.bytes()),
    ] {
        assert!(pin_leaks(&bytes).is_empty(), "old PIN in the {what}");
        assert!(
            !bytes
                .windows(NEW_PIN.len())
                .any(|w| w == NEW_PIN.as_bytes()),
            "new PIN in the {what}"
        );
    }
}

#[test]
fn a_wrong_current_pin_counts_toward_blocking_like_a_payment_pin() {
    let world = World::start_with(&format!(
        "{}{}{}",
        change_keys("111111", NEW_PIN),
        pin("222222"),
        change_keys("333333", NEW_PIN),
    ));
    world.provision();

    let wrong = world.pinbridge(&["--json", "pin", "change"]);
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(text(&wrong).contains("2 tries left"), "{}", text(&wrong));
    assert!(
        world
            .device_display()
            .iter()
            .any(|l| l == "Wrong PIN: not changed, 2 tries left"),
        "{:?}",
        world.device_display()
    );

    // The same counter: a wrong payment PIN leaves one try.
    let paid = world.pinbridge(PAY);
    assert!(text(&paid).contains("1 try left"), "{}", text(&paid));

    let blocked = world.pinbridge(&["--json", "pin", "change"]);
    assert!(!blocked.status.success(), "{}", text(&blocked));
    assert!(text(&blocked).contains("pin_blocked"), "{}", text(&blocked));
    let login = world.pinbridge(&["login"]);
    assert!(!login.status.success(), "{}", text(&login));
    assert_eq!(world.journal_total(), 0);
}

#[test]
fn the_owner_wipes_the_pin_pad_and_the_bank_ends_the_binding() {
    // X at the first wipe prompt, OK at the second.
    let world = World::start_with(
        "[[device.step]]\non = \"confirm\"\nafter_ms = 50\ncancel = true\n\
         [[device.step]]\non = \"confirm\"\nafter_ms = 50\nconfirm = true\n",
    );
    world.provision();
    let kept = world.pinbridge(&["--json", "device", "wipe"]);
    assert!(!kept.status.success(), "{}", text(&kept));
    assert!(text(&kept).contains("cancelled"), "{}", text(&kept));
    let screen = world.device_display();
    assert!(
        screen.iter().any(|l| l == "Cancelled: not wiped"),
        "{screen:?}"
    );
    assert_eq!(world.device_state()["lifecycle"], "bound");
    assert_eq!(
        world.journal_query("SELECT COUNT(*) FROM bindings WHERE status = 'active';"),
        1
    );

    let wiped = json(&world.pinbridge_ok(&["--json", "device", "wipe"]));
    assert_eq!(wiped["bankNotified"], true, "{wiped}");
    assert_eq!(wiped["pairingForgotten"], true, "{wiped}");
    let state = world.device_state();
    assert_eq!(state["lifecycle"], "manufactured", "{state}");
    assert_eq!(state["paired_hosts"], 0, "{state}");
    let screen = world.device_display();
    assert!(screen.iter().any(|l| l == "Not initialised"), "{screen:?}");
    assert!(
        screen
            .iter()
            .any(|l| l == "Wiped: keys and pairings erased"),
        "{screen:?}"
    );
    assert_eq!(
        world.journal_query("SELECT COUNT(*) FROM bindings WHERE status = 'active';"),
        0
    );
    assert_eq!(
        world.journal_query("SELECT COUNT(*) FROM devices WHERE state = 'registered';"),
        1
    );

    // Nothing logs in with it any more, and nothing pays.
    let login = world.pinbridge(&["login"]);
    assert!(!login.status.success(), "{}", text(&login));
    assert!(!world.pinbridge(PAY).status.success());
    // The uninitialised PIN pad is ready for its next owner: staff initialise it again.
    world.pinbridge_ok(&["staff", "init"]);
    assert_eq!(world.device_state()["lifecycle"], "initialised");
}
