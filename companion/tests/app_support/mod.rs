//! The app core's test harness: a sandbox bank and a simulated PIN pad (tests/flows_support),
//! listed by a fake hotplug source at the transport seam so a test can unplug and replug the
//! device, and a core (`companion::app`) whose bank is the sandbox's.

// Test harness: a broken fixture or an impossible state should fail the test loudly. Each test
// crate uses part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::flows_support::World;
use async_trait::async_trait;
use companion::app::{
    AppCore, BankCommandKind, CoreConfig, CoreEvent, DeviceProgress, EmbeddedStatus, LinkState,
    PaymentRequest, ProgressSink,
};
use companion::bank::BankSettings;
use companion::devices::{ChangeStream, DeviceInfo, DeviceManager, DeviceSource, DeviceState};
use companion::flows;
use companion::transport::sim::SimTransport;
use companion::transport::{DeviceIdentity, Transport, TransportError, TransportKind};
use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

/// A USB-like source listing the simulated PIN pad while it is plugged in, with hotplug
/// notifications as libusb gives them.
#[derive(Debug)]
pub struct Plug {
    address: std::net::SocketAddr,
    plugged: Mutex<bool>,
    notify: mpsc::UnboundedSender<()>,
    changes: Mutex<Option<mpsc::UnboundedReceiver<()>>>,
}

impl Plug {
    fn new(address: std::net::SocketAddr) -> Arc<Self> {
        let (notify, changes) = mpsc::unbounded_channel();
        Arc::new(Plug {
            address,
            plugged: Mutex::new(true),
            notify,
            changes: Mutex::new(Some(changes)),
        })
    }

    pub fn set(&self, plugged: bool) {
        *self.plugged.lock().unwrap() = plugged;
        self.notify.send(()).unwrap();
    }
}

#[async_trait]
impl DeviceSource for Plug {
    fn kind(&self) -> TransportKind {
        TransportKind::Usb
    }

    async fn scan(&self) -> Result<Vec<DeviceInfo>, TransportError> {
        if !*self.plugged.lock().unwrap() {
            return Ok(Vec::new());
        }
        let mut identity = DeviceIdentity::new(TransportKind::Usb, "1-1");
        identity.serial = Some("PB-TEST-1".into());
        Ok(vec![DeviceInfo::new(identity, DeviceState::Available)])
    }

    async fn open(&self, device: &DeviceInfo) -> Result<Box<dyn Transport>, TransportError> {
        if !*self.plugged.lock().unwrap() {
            return Err(TransportError::Disconnected {
                device: device.id().to_string(),
            });
        }
        Ok(Box::new(SimTransport::connect(self.address).await?))
    }

    async fn changes(&self) -> Option<ChangeStream> {
        let mut receiver = self.changes.lock().unwrap().take()?;
        Some(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).boxed())
    }
}

pub const DEVICE: &str = "usb:1-1";

pub struct Harness {
    pub world: World,
    pub core: Arc<AppCore>,
    pub plug: Arc<Plug>,
    pub events: broadcast::Sender<CoreEvent>,
    /// The loss-report code the customer got at enrolment.
    pub loss_code: Option<String>,
    pub keys: tempfile::TempDir,
}

/// The world's device initialised and enrolled for alice (by the branch), then listed for a
/// core whose bank is the world's.
pub async fn start() -> Harness {
    start_trusting(|_| Vec::new()).await
}

/// As [`start`], the core trusting the device-issuing CAs `trust` names.
pub async fn start_trusting(trust: fn(&World) -> Vec<EcdsaVerifyingKey>) -> Harness {
    let mut world = World::start().await;
    let device_cas = trust(&world);
    let mut sink = world.sink();
    let serial = flows::initialise(&mut world.session, &world.client, &world.teller, &mut sink)
        .await
        .unwrap();
    let enrolment = flows::enrol(
        &mut world.session,
        &world.client,
        &world.teller,
        &serial,
        "alice",
        &mut sink,
    )
    .await
    .unwrap();
    let loss_code = enrolment
        .loss_report_code
        .map(|code| code.as_str().to_owned());
    let plug = Plug::new(world.device_address);
    let (events, _) = broadcast::channel(256);
    let emit_to = events.clone();
    let url = world.url.clone();
    let keys = tempfile::tempdir().unwrap();
    let core = Arc::new(AppCore::new(CoreConfig {
        keys: companion::keystore::KeyStore::in_memory(keys.path()),
        bank: Arc::new(move || BankSettings {
            url: url.clone(),
            ca_pem: None,
        }),
        embedded: EmbeddedStatus::Off,
        emit: Arc::new(move |event| {
            let _ = emit_to.send(event);
        }),
        devices: DeviceManager::new().with_source(plug.clone()),
        mocks: None,
        device_cas,
    }));
    Harness {
        world,
        core,
        plug,
        events,
        loss_code,
        keys,
    }
}

pub fn progress() -> (ProgressSink, Arc<Mutex<Vec<DeviceProgress>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    (
        Arc::new(move |p| into.lock().unwrap().push(p)),
        seen.clone(),
    )
}

impl Harness {
    pub async fn pair_and_login(&self) -> companion::app::LoginSession {
        self.core.connect(DEVICE).await.unwrap();
        let start = self.core.pairing_begin(DEVICE).await.unwrap();
        assert_eq!(start.code.len(), 6);
        let (sink, _) = progress();
        let paired = self
            .core
            .pairing_confirm(&start.pairing_id, sink)
            .await
            .unwrap();
        assert!(paired.paired);
        let (sink, seen) = progress();
        let session = self.core.login(DEVICE, "alice", sink).await.unwrap();
        assert_eq!(session.customer_id, "alice");
        assert!(!session.accounts.is_empty());
        assert!(seen.lock().unwrap().iter().any(|p| matches!(
            p,
            DeviceProgress::Stage {
                stage: companion::app::Stage::Done
            }
        )));
        session
    }

    pub fn payment(&self, session: &companion::app::LoginSession, account: &str) -> PaymentRequest {
        PaymentRequest {
            session_id: session.session_id.clone(),
            from_account: session.accounts[0].clone(),
            payee_name: "Shop SARL".into(),
            payee_account: account.into(),
            amount_minor: "1250".into(),
            currency: "EUR".into(),
            reference: "core test".into(),
        }
    }

    /// Waits (on the core's events, at most 20 s) for the core to report what the device did
    /// with a bank command of `kind`.
    pub async fn bank_command(
        &self,
        events: &mut broadcast::Receiver<CoreEvent>,
        kind: BankCommandKind,
    ) -> CoreEvent {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let event = events.recv().await.unwrap();
                if matches!(&event, CoreEvent::BankCommand { command, .. } if *command == kind) {
                    return event;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kind:?} bank command reported"))
    }

    /// Staff issue a signed lock or unlock by serial at the bank (no device at the branch).
    pub async fn staff_command(&self, command: &str) {
        self.world
            .client
            .post(
                "/v1/devices/PB-TEST-1/commands",
                Some(&self.world.teller),
                &json!({"command": command, "reason": "core test"}),
            )
            .await
            .unwrap();
    }

    /// The bank's record of a customer session (`active`, `ended`).
    pub async fn session_stage(&self, session_id: &str) -> String {
        let store = self.world.bank.store();
        let row = sqlx::query(&store.q("SELECT stage FROM sessions WHERE session_id = ?"))
            .bind(session_id.to_owned())
            .fetch_one(store.reader())
            .await
            .unwrap();
        sqlx::Row::try_get::<String, _>(&row, "stage").unwrap()
    }

    /// How many payments the bank has prepared (any state): a refusal before the bank call
    /// leaves it unchanged.
    pub async fn payment_count(&self) -> i64 {
        let store = self.world.bank.store();
        let row = sqlx::query(&store.q("SELECT COUNT(*) AS n FROM payments"))
            .fetch_one(store.reader())
            .await
            .unwrap();
        sqlx::Row::try_get::<i64, _>(&row, "n").unwrap()
    }

    /// Waits for the core to announce `link` for the device.
    pub async fn link(&self, events: &mut broadcast::Receiver<CoreEvent>, want: LinkState) {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let CoreEvent::DeviceLink { link, .. } = events.recv().await.unwrap()
                    && link == want
                {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {want:?} event"));
    }
}

/// A progress sink that also hands each progress report to the test as it comes.
pub fn progress_events() -> (ProgressSink, mpsc::UnboundedReceiver<DeviceProgress>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Arc::new(move |p| {
            let _ = tx.send(p);
        }),
        rx,
    )
}
