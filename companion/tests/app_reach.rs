//! The bank's reachability the header shows (issue 17 item 3): it was worded from the settings
//! alone; now the core says reachable / unreachable (with the reason) / unknown from what it
//! saw of the bank, probes at start and when the address changes, and tells the windows.

// Test harness: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use companion::app::{AppCore, BankReach, CoreConfig, CoreEvent, EmbeddedStatus};
use companion::bank::BankSettings;
use companion::devices::DeviceManager;
use flows_support::World;
use tokio::sync::broadcast;

/// A loopback address nothing listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

async fn next_reach(events: &mut broadcast::Receiver<CoreEvent>) -> (BankReach, Option<String>) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let CoreEvent::BankReach { reach, reason } = events.recv().await.unwrap() {
                return (reach, reason);
            }
        }
    })
    .await
    .expect("no bankReach event")
}

/// A core whose bank address starts on a closed port and can be changed through the mutex;
/// its events, and the key store's directory (kept alive by the caller).
async fn core_on_a_closed_port() -> (
    Arc<AppCore>,
    Arc<Mutex<String>>,
    broadcast::Receiver<CoreEvent>,
    tempfile::TempDir,
) {
    let url = Arc::new(Mutex::new(closed_port().await));
    let source = url.clone();
    let (events, seen) = broadcast::channel(64);
    let keys = tempfile::tempdir().unwrap();
    let core = Arc::new(AppCore::new(CoreConfig {
        keys: companion::keystore::KeyStore::in_memory(keys.path()),
        bank: Arc::new(move || BankSettings {
            url: source.lock().unwrap().clone(),
            ca_pem: None,
        }),
        embedded: EmbeddedStatus::Off,
        emit: Arc::new(move |event| {
            let _ = events.send(event);
        }),
        devices: DeviceManager::new(),
        mocks: None,
        device_cas: Vec::new(),
    }));
    (core, url, seen, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bank_is_unknown_then_unreachable_with_its_reason_then_reachable_after_a_change() {
    let world = World::start().await;
    let (core, url, mut seen, _keys) = core_on_a_closed_port().await;
    // Nothing asked yet: unknown, never green.
    assert!(matches!(
        core.bank_reach(),
        CoreEvent::BankReach {
            reach: BankReach::Unknown,
            reason: None
        }
    ));

    core.probe_bank().await;
    let (reach, reason) = next_reach(&mut seen).await;
    assert_eq!(reach, BankReach::Unreachable);
    let reason = reason.expect("an unreachable bank says why");
    assert!(!reason.is_empty());

    // The address changes (Settings): unknown at once, then the probe's answer.
    *url.lock().unwrap() = world.url.clone();
    core.bank_changed();
    assert_eq!(next_reach(&mut seen).await, (BankReach::Unknown, None));
    assert_eq!(next_reach(&mut seen).await, (BankReach::Reachable, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_sign_in_that_fails_on_the_way_makes_the_bank_unreachable_and_one_that_is_refused_reachable()
 {
    let world = World::start().await;
    let (core, url, mut seen, _keys) = core_on_a_closed_port().await;
    // Staff screens call the bank too: their failures on the way are news for the header.
    assert!(core.staff_sign_in("T0001", "wrong").await.is_err());
    assert_eq!(next_reach(&mut seen).await.0, BankReach::Unreachable);
    // A refused password is an answer: the bank is there.
    *url.lock().unwrap() = world.url.clone();
    assert!(core.staff_sign_in("T0001", "wrong").await.is_err());
    assert_eq!(next_reach(&mut seen).await, (BankReach::Reachable, None));
}
