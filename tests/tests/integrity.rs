//! Integrity through real processes (issue 14, CN102610045A): the CLI measures its own
//! executable and the bank's allow-list holds the hash of the binary under test; a modified
//! app or modified PIN pad firmware is refused at login with a message naming which.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use pinbridge_e2e::{KEYSTORE_PASSPHRASE, World, binaries};

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A copy of `pinbridge` with one byte added at the end (it still runs): a modified app.
#[cfg(unix)]
#[test]
fn a_modified_app_is_refused_at_login_naming_the_app() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::start();
    world.provision();
    let modified = world.dir.path().join("pinbridge-modified");
    let mut bytes = std::fs::read(&binaries().pinbridge).unwrap();
    bytes.push(0);
    std::fs::write(&modified, bytes).unwrap();
    std::fs::set_permissions(&modified, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(&modified)
        .env(
            "PINBRIDGE_BANK_URL",
            format!("http://{}", world.bank_proxy.address),
        )
        .env(
            "PINBRIDGE_DEVICE",
            format!("sim:{}", world.link_proxy.address),
        )
        .env("PINBRIDGE_STATE_DIR", world.state.path())
        .env("PINBRIDGE_KEYSTORE_PASSPHRASE", KEYSTORE_PASSPHRASE)
        .env_remove("PINBRIDGE_BANK_CA")
        .args(["--json", "login"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("app_hash"), "{}", text(&output));
    // The genuine binary still logs in.
    world.pinbridge_ok(&["login"]);
}

/// The PIN pad runs modified firmware: its signed integrity report carries a hash the bank
/// does not allow, and the login is refused naming the firmware.
#[test]
fn modified_pin_pad_firmware_is_refused_at_login_naming_the_firmware() {
    let world = World::start();
    world.provision();
    let (status, body) = world.control_post("/devices/0/firmware", r#"{"modified": true}"#);
    assert_eq!(status, 200, "{body}");
    let output = world.pinbridge(&["--json", "login"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("firmware"), "{}", text(&output));
}

fn ca_public_key(ca_file: &std::path::Path) -> String {
    let output = Command::new(&binaries().sim)
        .args(["ca", "show", "--ca-key"])
        .arg(ca_file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// The client's genuine check of the connected PIN pad: its certificate from the trusted CA
/// and a fresh integrity report signed by the certified key. A CA this installation does not
/// trust makes it "not genuine", naming the certificate.
#[test]
fn device_info_says_genuine_only_for_a_pin_pad_of_a_trusted_ca() {
    let world = World::start();
    world.provision();
    let ca = ca_public_key(&world.dir.path().join("ca.json"));
    let info = world.pinbridge_ok(&["--json", "device", "info", "--device-ca", &ca]);
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["genuine"], "genuine", "{info}");
    assert_eq!(info["lifecycle"], "bound", "{info}");
    assert_eq!(info["lock"], "unlocked", "{info}");
    assert_eq!(info["tampered"], false, "{info}");
    assert!(
        info["certificateExpiresInDays"].as_i64().unwrap() > 365,
        "{info}"
    );

    let other = world.dir.path().join("other-ca.json");
    let made = Command::new(&binaries().sim)
        .args(["ca", "new", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let untrusted = ca_public_key(&other);
    let refused = world.pinbridge(&["device", "info", "--device-ca", &untrusted]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("NOT genuine"), "{}", text(&refused));
    assert!(text(&refused).contains("certificate"), "{}", text(&refused));
}

/// The simulator's firmware is its real image: `pinpad-sim init` records the SHA-256 of its
/// own executable (the hash the bank allow-lists), and `serve` measures the executable it
/// runs as at start-up (the PIN pads of every test here pay only because the two agree).
#[test]
fn the_pin_pad_is_manufactured_with_its_real_firmware_image() {
    let world = World::start();
    world.provision();
    let info = Command::new(&binaries().sim)
        .args(["info", "--state"])
        .arg(world.dir.path().join("device.json"))
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    // Manufactured with this pinpad-sim executable as its firmware image.
    use sha2::Digest;
    let own = hex::encode(sha2::Sha256::digest(
        std::fs::read(&binaries().sim).unwrap(),
    ));
    assert_eq!(info["firmware_hash"], own.as_str(), "{info}");
    assert_eq!(info["state"]["integrity_ok"], true, "{info}");
}
