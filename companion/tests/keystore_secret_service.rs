//! Pairing keys in a real Secret Service (GNOME Keyring in a private D-Bus session): run by
//! `scripts/keystore-test.sh`, which starts and unlocks the daemon; ignored by a plain
//! `cargo test`, which has no key store to talk to.
//!
//! - `pinbridge pair` files the sealing key in the Secret Service, the state directory holds
//!   only the sealed store, and a new process (`pinbridge login`) opens it: the pairing
//!   survives a restart.
//! - A copy of the state directory without the user's key store opens nothing: `pinbridge
//!   login` with it is refused before anything reaches the PIN pad, and neither the sealing
//!   key nor the pairing key is anywhere in the copy.
//! - A store of the first format (key file beside it) moves into the Secret Service on first
//!   use and its key file is deleted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use companion::keystore::secrets::{OsSecretStore, SecretStore};
use companion::keystore::{KeyStore, KeyStoreError, Protection};
use flows_support::World;

const NEEDS: &str = "needs a Secret Service: run scripts/keystore-test.sh";

fn pinbridge(world: &World, state: &Path, logs: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinbridge"));
    command
        .env("PINBRIDGE_BANK_URL", &world.url)
        .env("PINBRIDGE_DEVICE", format!("sim:{}", world.device_address))
        .env("PINBRIDGE_STATE_DIR", state)
        .env("PINBRIDGE_LOG_DIR", logs)
        // The OS key store and nothing else.
        .env_remove("PINBRIDGE_KEYSTORE_PASSPHRASE")
        .env("PINBRIDGE_STAFF_USER", "teller")
        .env("PINBRIDGE_STAFF_PASSWORD", "teller-password")
        .stdin(Stdio::null())
        .args(args);
    command
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The account the store's header names in the key store.
fn account(dir: &Path) -> String {
    let sealed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("host-keys.enc")).unwrap()).unwrap();
    assert_eq!(sealed["sealing"]["kind"], "keyStore", "{sealed}");
    sealed["sealing"]["account"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Secret Service: run scripts/keystore-test.sh"]
async fn pairing_keys_live_in_the_secret_service_and_survive_a_restart() {
    let secret_service = OsSecretStore::platform().expect(NEEDS);
    let world = World::start().await;
    let state = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    for args in [
        &["staff", "init"][..],
        &["staff", "enrol", "--customer", "alice"][..],
        &["pair", "--name", "KEYRING-TEST"][..],
    ] {
        let output = run(pinbridge(&world, state.path(), logs.path(), args)).await;
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Only the sealed store: its key is in the Secret Service.
    assert_eq!(files(state.path()), ["host-keys.enc"]);
    let account = account(state.path());
    let sealing_key = secret_service.get(&account).unwrap().expect("filed");
    assert_eq!(sealing_key.len(), 32);
    assert_eq!(
        KeyStore::new(state.path()).protection(),
        Protection::KeyStore
    );

    // A new process (the restart) opens the store from the Secret Service and logs in.
    let login = run(pinbridge(
        &world,
        state.path(),
        logs.path(),
        &["--json", "login"],
    ))
    .await;
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let login: serde_json::Value = serde_json::from_slice(&login.stdout).unwrap();
    assert_eq!(login["loggedIn"], true, "{login}");
    let host = KeyStore::new(state.path())
        .find("PB-TEST-1")
        .unwrap()
        .unwrap();

    // The thief copies the state directory; their machine's key store lacks the key (here:
    // it is removed from this one).
    let stolen = tempfile::tempdir().unwrap();
    std::fs::copy(
        state.path().join("host-keys.enc"),
        stolen.path().join("host-keys.enc"),
    )
    .unwrap();
    assert!(secret_service.delete(&account).unwrap());
    let thief = run(pinbridge(
        &world,
        stolen.path(),
        logs.path(),
        &["--json", "login"],
    ))
    .await;
    assert!(!thief.status.success());
    let error = String::from_utf8_lossy(&thief.stderr);
    assert!(
        error.contains("is not in the Secret Service")
            && error.contains("pair this computer again"),
        "{error}"
    );
    assert!(matches!(
        KeyStore::new(stolen.path()).load(),
        Err(KeyStoreError::KeyMissing { .. })
    ));
    // Nothing in the copy is the sealing key or the pairing key, in bytes or in hex.
    let bytes = std::fs::read(stolen.path().join("host-keys.enc")).unwrap();
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    for secret in [sealing_key.as_slice(), host.pairing_key.reveal_bytes()] {
        assert!(!bytes.windows(32).any(|w| w == secret));
        assert!(!text.contains(&hex::encode(secret)));
    }
}

#[test]
#[ignore = "needs a Secret Service: run scripts/keystore-test.sh"]
fn a_key_file_store_migrates_into_the_secret_service() {
    let secret_service: Arc<OsSecretStore> = OsSecretStore::platform().expect(NEEDS);
    let dir = tempfile::tempdir().unwrap();
    // The first format, as the companion wrote it before: the key file beside the store.
    let key = [0x42u8; 32];
    std::fs::write(dir.path().join("host-keys.key"), hex::encode(key)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(dir.path().join("host-keys.key"), private).unwrap();
    }
    let plain = serde_json::json!([{
        "serial": "PB-OLD-1",
        "host_id": "0102030405060708",
        "pairing_key": hex::encode([0x5au8; 32]),
        "next_counter": 9,
    }]);
    let nonce = [3u8; 12];
    let ciphertext = Aes256Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain.to_string().as_bytes(),
                aad: b"PinBridge/companion/host-keys/v1",
            },
        )
        .unwrap();
    std::fs::write(
        dir.path().join("host-keys.enc"),
        serde_json::json!({"nonce": hex::encode(nonce), "ciphertext": hex::encode(ciphertext)})
            .to_string(),
    )
    .unwrap();

    let store = KeyStore::new(dir.path());
    assert_eq!(store.protection(), Protection::LegacyKeyFile);
    assert_eq!(store.load().unwrap().len(), 1);
    assert_eq!(files(dir.path()), ["host-keys.enc"]);
    let account = account(dir.path());
    assert!(secret_service.get(&account).unwrap().is_some());
    // A fresh store object (nothing cached) opens it from the Secret Service.
    let host = KeyStore::new(dir.path()).find("PB-OLD-1").unwrap().unwrap();
    assert_eq!(host.pairing_key.reveal_bytes(), &[0x5a; 32]);
    assert_eq!(host.next_counter, 9);
    assert!(secret_service.delete(&account).unwrap());
}
