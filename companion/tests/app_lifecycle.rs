//! A device's life in the app core (issue 14, app side): the bank's commands relayed to the
//! connected device (wipe, lock, unlock, for an unplugged device on replug), logout at both
//! ends, declined confirmations, the genuine check, and acting by serial (harness:
//! tests/app_support).

// Test harness: a broken fixture or an impossible state should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_support;
mod flows_support;

use std::sync::Arc;
use std::time::Duration;

use app_support::{DEVICE, progress, progress_events, start, start_trusting};
use companion::app::{
    AppCore, BankCommandKind, CoreConfig, CoreEvent, DeviceProgress, EmbeddedStatus, Genuine,
    Lifecycle, LinkState, LockState, Outcome, OutcomeReason, PinChangeVerdict, SerialAction,
};
use companion::bank::BankSettings;
use companion::devices::DeviceManager;
use companion::error::ErrorKind;
use serde_json::json;

/// Issue 14 item 1: the app dropped every bank event that was not a confirmation, so a device
/// staff revoked kept its keys while connected. A separate `pinbridge staff revoke` process
/// (another PC, no device there) now wipes the device connected to this app within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_by_staff_elsewhere_is_wiped_within_seconds() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let mut events = h.events.subscribe();
    let state = tempfile::tempdir().unwrap();
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_pinbridge"));
    cli.env("PINBRIDGE_BANK_URL", &h.world.url)
        .env("PINBRIDGE_STATE_DIR", state.path())
        .env("PINBRIDGE_LOG_DIR", state.path().join("logs"))
        .env("PINBRIDGE_KEYSTORE_PASSPHRASE", "a test passphrase")
        .env("PINBRIDGE_STAFF_USER", "teller")
        .env("PINBRIDGE_STAFF_PASSWORD", "teller-password")
        .args([
            "staff",
            "revoke",
            "--serial",
            "PB-TEST-1",
            "--reason",
            "stolen",
        ]);
    let output = tokio::task::spawn_blocking(move || cli.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let CoreEvent::BankCommand {
        device_id,
        applied,
        lifecycle,
        session_ended,
        message,
        ..
    } = h.bank_command(&mut events, BankCommandKind::Wipe).await
    else {
        unreachable!()
    };
    assert_eq!(device_id, DEVICE);
    assert!(applied && session_ended, "{message}");
    assert_eq!(lifecycle, Some(Lifecycle::Revoked));
    assert!(
        message.contains("revoked this PIN pad") && message.contains("wiped"),
        "{message}"
    );
    assert_eq!(h.world.device.view().state.lifecycle, "revoked");
    let status = h.core.device_status(DEVICE).await.unwrap();
    assert_eq!(status.lifecycle, Lifecycle::Revoked, "{status:?}");
    // No payment starts on it: the login ended with it (`NotLoggedIn`), or, while the core
    // is still closing the login, the device is refused as revoked before any bank call.
    let error = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind, ErrorKind::NotLoggedIn | ErrorKind::Revoked),
        "{error}"
    );
}

/// A lock staff issue while the customer is typing a payment's PIN waits for the payment's
/// device exchange (no deadlock, no interleaving), then locks the device and ends the login;
/// the staff unlock reaches the device at the next login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_mid_payment_is_applied_after_it_and_an_unlock_comes_with_the_next_login() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let mut events = h.events.subscribe();
    let prepared = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let (sink, mut seen) = progress_events();
    let payment = {
        let core = h.core.clone();
        let id = prepared.payment_id.clone();
        tokio::spawn(async move { core.payment_approve(&id, sink).await })
    };
    // The payment holds the device: the PIN is being typed.
    tokio::time::timeout(Duration::from_secs(20), async {
        while !matches!(seen.recv().await, Some(DeviceProgress::Pin { .. })) {}
    })
    .await
    .expect("PIN entry");
    h.staff_command("lock").await;
    match payment.await.unwrap() {
        // The payment reached the bank before the lock.
        Ok(result) => assert_eq!(result.outcome, Outcome::Approved, "{result:?}"),
        // The lock ended the bank session first.
        Err(error) => assert_eq!(error.kind, ErrorKind::NotLoggedIn, "{error}"),
    }
    let CoreEvent::BankCommand {
        applied,
        lock,
        session_ended,
        message,
        ..
    } = h.bank_command(&mut events, BankCommandKind::Lock).await
    else {
        unreachable!()
    };
    assert!(applied && session_ended, "{message}");
    assert_eq!(lock, Some(LockState::Locked));
    assert_eq!(h.world.device.view().state.lock, "locked_by_bank");
    let refused = h
        .core
        .login(DEVICE, "alice", progress().0)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Locked, "{refused}");

    h.staff_command("unlock").await;
    let session = h.core.login(DEVICE, "alice", progress().0).await.unwrap();
    assert_eq!(h.world.device.view().state.lock, "unlocked");
    let prepared = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap();
    let result = h
        .core
        .payment_approve(&prepared.payment_id, progress().0)
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Approved, "{result:?}");
}

/// A command the bank sends while the device is unplugged is relayed first when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_for_an_unplugged_device_is_relayed_when_it_is_back() {
    let h = start().await;
    let _watch = tokio::spawn(h.core.clone().watch_devices(Duration::from_secs(3600)));
    h.pair_and_login().await;
    let mut events = h.events.subscribe();
    h.plug.set(false);
    h.link(&mut events, LinkState::Reconnecting).await;
    h.staff_command("lock").await;
    let CoreEvent::BankCommand {
        applied, message, ..
    } = h.bank_command(&mut events, BankCommandKind::Lock).await
    else {
        unreachable!()
    };
    assert!(!applied, "{message}");
    assert!(message.contains("not locked itself yet"), "{message}");
    assert_eq!(h.world.device.view().state.lock, "unlocked");

    h.plug.set(true);
    let CoreEvent::BankCommand { applied, .. } =
        h.bank_command(&mut events, BankCommandKind::Lock).await
    else {
        unreachable!()
    };
    assert!(applied);
    assert_eq!(h.world.device.view().state.lock, "locked_by_bank");
}

/// Issue 14 item 4: logout only forgot the session in the app; the bank token lived on and the
/// device kept its session keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_bank_session_and_the_device_drops_its_session_keys() {
    let h = start().await;
    let session = h.pair_and_login().await;
    assert!(h.world.device.view().state.session_active);
    assert_eq!(h.session_stage(&session.session_id).await, "active");

    let result = h.core.logout(&session.session_id).await.unwrap();
    assert!(result.bank_ended && result.device_cleared, "{result:?}");
    assert_eq!(h.session_stage(&session.session_id).await, "ended");
    assert!(!h.world.device.view().state.session_active);
    let error = h
        .core
        .payment_prepare(h.payment(&session, "FR7630006000011234567890189"))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotLoggedIn, "{error}");
    // The customer logs in again as usual.
    h.core.login(DEVICE, "alice", progress().0).await.unwrap();
}

/// Issue 14 item 5 in the app: a decline on the PIN pad is posted to the bank and shown as the
/// customer's decline; it never holds up the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_confirmation_is_posted_and_the_next_one_is_signed() {
    let h = start().await;
    let mut events = h.events.subscribe();
    h.pair_and_login().await;
    let terminal = h
        .world
        .client
        .staff_login("terminal", "terminal-password")
        .await
        .unwrap();
    for basket in ["basket-31", "basket-32"] {
        h.world
            .client
            .post(
                "/v1/confirmations",
                Some(&terminal),
                &json!({
                    "customer_id": "alice",
                    "payee_account": "FR7630006000011234567890189",
                    "payee_name": "Web Shop",
                    "amount_minor": 1_500,
                    "currency": "EUR",
                    "reference": basket,
                    "idempotency_key": basket,
                }),
            )
            .await
            .unwrap();
    }
    let mut pushed = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while pushed.len() < 2 {
            if let CoreEvent::ConfirmationPushed { request } = events.recv().await.unwrap() {
                pushed.push(request.request_id);
            }
        }
    })
    .await
    .expect("both requests pushed");

    h.world
        .decline
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let declined = h
        .core
        .confirmation_approve(&pushed[0], DEVICE, progress().0)
        .await
        .unwrap();
    assert_eq!(declined.outcome, Outcome::Declined, "{declined:?}");
    assert_eq!(declined.reason, OutcomeReason::UserRejected, "{declined:?}");
    let signed = h
        .core
        .confirmation_approve(&pushed[1], DEVICE, progress().0)
        .await
        .unwrap();
    assert_eq!(signed.outcome, Outcome::Signed, "{signed:?}");
    assert!(h.core.confirmations().list().is_empty());
    for (id, status) in [(&pushed[0], "declined"), (&pushed[1], "approved")] {
        let view = h
            .world
            .client
            .get(&format!("/v1/confirmations/{id}"), Some(&terminal))
            .await
            .unwrap();
        assert_eq!(view["status"], status, "{view}");
    }
    assert_eq!(h.world.journal_entries(&pushed[0]).await, 0);
    assert_eq!(h.world.journal_entries(&pushed[1]).await, 1);
}

/// The app's genuine check (issue 14 items 3 and 7): connect asks the PIN pad for a signed
/// report over a fresh nonce and checks its certificate, as `pinbridge device info` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tells_genuine_not_verified_and_not_genuine_apart() {
    let trusted = start_trusting(|world| vec![world.ca]).await;
    let status = trusted.core.connect(DEVICE).await.unwrap();
    assert_eq!(status.genuine, Genuine::Genuine, "{status:?}");
    assert!(status.genuine_failures.is_empty());
    drop(trusted);

    let unconfigured = start().await;
    let status = unconfigured.core.connect(DEVICE).await.unwrap();
    assert_eq!(status.genuine, Genuine::NotVerified, "{status:?}");
    drop(unconfigured);

    let foreign = start_trusting(|_| {
        use rand_core::SeedableRng;
        let other = device_sim::certificate::CaKey::generate(
            &mut rand_chacha::ChaCha20Rng::from_seed([9; 32]),
        );
        vec![other.public_key()]
    })
    .await;
    let status = foreign.core.connect(DEVICE).await.unwrap();
    assert_eq!(status.genuine, Genuine::NotGenuine, "{status:?}");
    assert!(
        status
            .genuine_failures
            .iter()
            .any(|f| f.starts_with("certificate:")),
        "{status:?}"
    );
    // Listed as seen at connect, not checked again on every listing.
    let again = foreign.core.device_status(DEVICE).await.unwrap();
    assert_eq!(again.genuine, Genuine::NotGenuine);
}

/// Issue 14 item 2 in the app: staff act on a PIN pad that is not plugged into their PC, by
/// serial (the PIN pad here is logged in in another app), and a customer reports theirs lost
/// with the loss-report code, no login and no staff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_lock_by_serial_and_a_customer_loss_report_reach_the_device() {
    let h = start().await;
    h.pair_and_login().await;
    let mut events = h.events.subscribe();
    // The branch: another app, no PIN pad, staff signed in.
    let branch = AppCore::new(CoreConfig {
        keys: companion::keystore::KeyStore::in_memory(h.keys.path().join("branch")),
        bank: {
            let url = h.world.url.clone();
            Arc::new(move || BankSettings {
                url: url.clone(),
                ca_pem: None,
            })
        },
        embedded: EmbeddedStatus::Off,
        emit: Arc::new(|_| {}),
        devices: DeviceManager::new(),
        mocks: None,
        device_cas: Vec::new(),
    });
    branch
        .staff_sign_in("teller", "teller-password")
        .await
        .unwrap();
    let seen = branch.staff_device_lookup("PB-TEST-1").await.unwrap();
    assert_eq!(seen.customer_id.as_deref(), Some("alice"));
    assert!(!seen.locked);
    let bad = branch.staff_device_lookup("../admin").await.unwrap_err();
    assert_eq!(bad.kind, ErrorKind::InvalidInput);
    let after = branch
        .staff_by_serial("PB-TEST-1", SerialAction::Lock)
        .await
        .unwrap();
    assert!(after.locked, "{after:?}");
    let CoreEvent::BankCommand { applied, .. } =
        h.bank_command(&mut events, BankCommandKind::Lock).await
    else {
        unreachable!()
    };
    assert!(applied);
    assert_eq!(h.world.device.view().state.lock, "locked_by_bank");
    // The app that relayed the lock told the bank what the PIN pad answered; staff see it.
    let record = branch.staff_device_lookup("PB-TEST-1").await.unwrap();
    let lock = &record.commands[0];
    assert_eq!(lock.command, "lock", "{record:?}");
    assert_eq!(lock.outcome.as_deref(), Some("applied"), "{record:?}");
    assert_eq!(
        lock.detail.as_deref(),
        Some("bound, locked_by_bank"),
        "{record:?}"
    );

    // Rebind by serial moves a customer to a PIN pad connected where staff are: the branch
    // has none, and the PIN pad being replaced cannot be its own replacement.
    let none_here = branch
        .staff_rebind_by_serial("PB-TEST-1", DEVICE, progress().0)
        .await
        .unwrap_err();
    assert_eq!(none_here.kind, ErrorKind::DeviceDisconnected, "{none_here}");
    h.core
        .staff_sign_in("teller", "teller-password")
        .await
        .unwrap();
    let itself = h
        .core
        .staff_rebind_by_serial("PB-TEST-1", DEVICE, progress().0)
        .await
        .unwrap_err();
    assert_eq!(itself.kind, ErrorKind::InvalidInput, "{itself}");
    let unknown = h
        .core
        .staff_rebind_by_serial("PB-NOT-THERE", DEVICE, progress().0)
        .await
        .unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::NotFound, "{unknown}");
    assert_eq!(h.world.device.view().state.lifecycle, "bound");

    // Unlocked by serial, the customer logs in again; then reports the PIN pad lost.
    branch
        .staff_by_serial("PB-TEST-1", SerialAction::Unlock)
        .await
        .unwrap();
    h.core.login(DEVICE, "alice", progress().0).await.unwrap();
    let code = h
        .loss_code
        .clone()
        .expect("a loss-report code at enrolment");
    let wrong = h
        .core
        .report_lost("PB-TEST-1", "alice", "not-the-code")
        .await
        .unwrap_err();
    assert_ne!(wrong.kind, ErrorKind::Internal, "{wrong}");
    let report = h
        .core
        .report_lost("PB-TEST-1", "alice", &code)
        .await
        .unwrap();
    assert!(report.message.contains("revoked"), "{report:?}");
    let CoreEvent::BankCommand { applied, .. } =
        h.bank_command(&mut events, BankCommandKind::Wipe).await
    else {
        unreachable!()
    };
    assert!(applied);
    assert_eq!(h.world.device.view().state.lifecycle, "revoked");
}

/// The customer's own screens (issue 14 item 7, app side): a PIN change typed on the keypad
/// is told in plain words (changed; a wrong current PIN with the tries left), and the owner's
/// wipe erases the PIN pad, ends the binding at the bank and the login here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_changes_the_pin_and_wipes_the_pin_pad_in_the_app() {
    let h = start().await;
    let session = h.pair_and_login().await;
    let (sink, seen) = progress();
    let changed = h.core.pin_change(&session.session_id, sink).await.unwrap();
    assert_eq!(changed.verdict, PinChangeVerdict::Changed, "{changed:?}");
    assert_eq!(changed.device_text, "PIN changed");
    assert!(changed.message.contains("new PIN"), "{changed:?}");
    // The screens were told to look at the PIN pad while it asked for the PINs.
    assert!(
        seen.lock().unwrap().iter().any(|p| matches!(
            p,
            DeviceProgress::Stage {
                stage: companion::app::Stage::WaitingForUser
            }
        )),
        "{:?}",
        seen.lock().unwrap()
    );

    *h.world.pin.lock().unwrap() = flows_support::WRONG_PIN;
    let wrong = h
        .core
        .pin_change(&session.session_id, progress().0)
        .await
        .unwrap();
    assert_eq!(wrong.verdict, PinChangeVerdict::WrongPin, "{wrong:?}");
    assert_eq!(wrong.tries_left, Some(2), "{wrong:?}");
    assert!(wrong.message.contains("2 tries left"), "{wrong:?}");

    let wiped = h.core.device_wipe(DEVICE, progress().0).await.unwrap();
    assert_eq!(wiped.serial, "PB-TEST-1");
    assert!(wiped.bank_notified, "{wiped:?}");
    assert!(wiped.message.contains("is wiped"), "{wiped:?}");
    assert_eq!(h.world.device.view().state.lifecycle, "manufactured");
    let status = h.core.device_status(DEVICE).await.unwrap();
    assert_eq!(status.customer_id, None, "{status:?}");
    let error = h
        .core
        .pin_change(&session.session_id, progress().0)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotLoggedIn, "{error}");
}

/// Staff at a branch move alice from her PIN pad (logged in in her own app elsewhere) to a
/// replacement connected at the branch, by the old one's serial: the customer is the one the
/// bank has bound to it, the new PIN pad takes her PIN on its keypad and is bound to her, and
/// the old one is wiped through her app within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_rebind_by_serial_moves_the_customer_to_a_pin_pad_at_the_branch() {
    use device_sim::certificate::CaKey;
    use device_sim::device::{Device, Manufacture};
    use device_sim::hardware::{Clock, SecureStore, VirtualHardware};
    use device_sim::server::ServedDevice;
    use device_sim::sim::{SimCore, SimHandle};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    let h = start().await;
    h.pair_and_login().await;
    let mut events = h.events.subscribe();

    // The replacement, from another CA the bank trusts, with the bank's keys.
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let ca = CaKey::generate(&mut ChaCha20Rng::from_seed(seed));
    h.world
        .bank
        .trust_ca(&ca.public_key().to_sec1_bytes(), "branch stock CA")
        .await
        .unwrap();
    let mut settings = Manufacture::new("PB-TEST-2");
    settings.bank_management_key = Some(h.world.bank.management_public_key());
    settings.bank_operator_key = Some(h.world.bank.operator_public_key());
    let device = Device::manufacture(&settings, &ca, &mut ChaCha20Rng::from_seed(seed)).unwrap();
    let hw = VirtualHardware::with(
        seed,
        Clock::System { offset_ms: 0 },
        SecureStore::Memory(None),
    );
    let handle = SimHandle::new(SimCore::new(device, hw, firmware_protocol::link::Mtu::SIM));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = ServedDevice::spawn(handle.clone(), listener).unwrap();
    let keypad = device_sim::scripted::spawn_scripted_keypad_choosing(
        handle.clone(),
        Box::new(|| zeroize::Zeroizing::new(flows_support::PIN.to_owned())),
        device_sim::scripted::Pace::KeyByKey,
        Box::new(|| true),
    );

    // The branch's app sees only the replacement.
    let branch = AppCore::new(CoreConfig {
        keys: companion::keystore::KeyStore::in_memory(h.keys.path().join("branch")),
        bank: {
            let url = h.world.url.clone();
            Arc::new(move || BankSettings {
                url: url.clone(),
                ca_pem: None,
            })
        },
        embedded: EmbeddedStatus::Off,
        emit: Arc::new(|_| {}),
        devices: DeviceManager::new().with_source(Arc::new(companion::devices::SimSource::new(
            vec![served.address],
        ))),
        mocks: None,
        device_cas: Vec::new(),
    });
    let new_pad = format!("sim:{}", served.address);
    branch.connect(&new_pad).await.unwrap();
    branch
        .staff_sign_in("teller", "teller-password")
        .await
        .unwrap();
    // Not initialised yet: refused before the old PIN pad is revoked.
    let early = branch
        .staff_rebind_by_serial("PB-TEST-1", &new_pad, progress().0)
        .await
        .unwrap_err();
    assert_eq!(early.kind, ErrorKind::NotInitialised, "{early}");
    let old = branch.staff_device_lookup("PB-TEST-1").await.unwrap();
    assert_eq!(old.state, "bound", "{old:?}");
    branch
        .staff_initialise(&new_pad, progress().0)
        .await
        .unwrap();
    let (sink, seen) = progress();
    let moved = branch
        .staff_rebind_by_serial("PB-TEST-1", &new_pad, sink)
        .await
        .unwrap();
    assert_eq!(moved.detail, "alice moved to PB-TEST-2; PB-TEST-1 revoked");
    assert_eq!(moved.device.customer_id.as_deref(), Some("alice"));
    assert!(seen.lock().unwrap().iter().any(|p| matches!(
        p,
        DeviceProgress::Stage {
            stage: companion::app::Stage::WaitingForUser
        }
    )));
    assert_eq!(handle.view().state.lifecycle, "bound");
    let record = branch.staff_device_lookup("PB-TEST-2").await.unwrap();
    assert_eq!(record.customer_id.as_deref(), Some("alice"), "{record:?}");
    let old = branch.staff_device_lookup("PB-TEST-1").await.unwrap();
    assert_eq!(old.state, "revoked", "{old:?}");

    // The old PIN pad, connected in alice's app elsewhere, is wiped through it.
    let CoreEvent::BankCommand { applied, .. } =
        h.bank_command(&mut events, BankCommandKind::Wipe).await
    else {
        unreachable!()
    };
    assert!(applied);
    assert_eq!(h.world.device.view().state.lifecycle, "revoked");
    keypad.abort();
    served.stop();
}
