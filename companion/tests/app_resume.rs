//! The last device used is remembered across app restarts (issue 17 item 4), in either build:
//! a new core over the same data finds it again when it is plugged in (the device manager's
//! hotplug event), connects by itself, and with the pairing in the key store the customer logs
//! in and pays without pairing again.

// Test harness: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_support;
mod flows_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use app_support::{DEVICE, Harness, progress, start};
use companion::app::{AppCore, CoreConfig, CoreEvent, EmbeddedStatus, Outcome};
use companion::bank::BankSettings;
use companion::devices::DeviceManager;
use tokio::sync::broadcast;

/// A core as the app builds it at start, over the harness's bank and plug, with its data
/// (pairings, last device) in `data`.
fn app_core(h: &Harness, data: &Path, events: broadcast::Sender<CoreEvent>) -> Arc<AppCore> {
    let url = h.world.url.clone();
    Arc::new(
        AppCore::new(CoreConfig {
            keys: companion::keystore::KeyStore::in_memory(data.join("pairings")),
            bank: Arc::new(move || BankSettings {
                url: url.clone(),
                ca_pem: None,
            }),
            embedded: EmbeddedStatus::Off,
            emit: Arc::new(move |event| {
                let _ = events.send(event);
            }),
            devices: DeviceManager::new().with_source(h.plug.clone()),
            mocks: None,
            device_cas: Vec::new(),
        })
        .remembering_last_device(data.join("last-device.json")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_last_device_connects_by_itself_when_plugged_in_and_stays_paired() {
    let h = start().await;
    let data = tempfile::tempdir().unwrap();
    {
        let (events, _) = broadcast::channel(256);
        let first = app_core(&h, data.path(), events);
        first.connect(DEVICE).await.unwrap();
        let start = first.pairing_begin(DEVICE).await.unwrap();
        let paired = first
            .pairing_confirm(&start.pairing_id, progress().0)
            .await
            .unwrap();
        assert!(paired.paired);
        let last = first
            .last_device()
            .expect("the connected device is remembered");
        assert_eq!(last.serial, "PB-TEST-1");
        assert_eq!(last.transport, "usb");
    }
    // The app is off; the PIN pad is unplugged meanwhile.
    h.plug.set(false);

    let (events, mut seen) = broadcast::channel(256);
    let second = app_core(&h, data.path(), events);
    assert_eq!(
        second.last_device().map(|d| d.serial),
        Some("PB-TEST-1".to_owned())
    );
    tokio::spawn(second.clone().watch_devices(Duration::from_secs(60)));
    // Plugged in again: connected by itself, and still paired.
    h.plug.set(true);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let CoreEvent::Devices { devices } = seen.recv().await.unwrap()
                && devices
                    .iter()
                    .any(|d| d.device_id == DEVICE && d.connected && d.paired)
            {
                return;
            }
        }
    })
    .await
    .expect("the last device did not connect by itself, paired");

    let session = second.login(DEVICE, "alice", progress().0).await.unwrap();
    let prepared = second
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let result = second
        .payment_approve(&prepared.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Approved, "{result:?}");
}
