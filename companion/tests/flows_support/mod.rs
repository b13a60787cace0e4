//! In-process harness for the flow tests: a seeded sandbox bank served on loopback over a
//! temporary SQLite file, one mock PIN pad served over the sim link, a scripted keypad, and a
//! session and bank client from the companion library.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use bank_sandbox::bank::{Bank, BankConfig};
use companion::bank::{BankClient, BankSettings, BearerToken};
use companion::flows::{self, BankSession, FlowEvent, PaymentOrder};
use companion::keystore::PairedHost;
use companion::session::Session;
use companion::transport::sim::SimTransport;
use device_sim::certificate::CaKey;
use device_sim::device::{Device, FIRMWARE_VERSION, Manufacture, firmware_image_hash};
use device_sim::hardware::{Clock, SecureStore, VirtualHardware};
use device_sim::server::ServedDevice;
use device_sim::sim::{SimCore, SimHandle};
use firmware_protocol::link::Mtu;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::oneshot;

/// A test PIN no other part of the system uses.
pub const PIN: &str = "583920";
pub const WRONG_PIN: &str = "111111";

pub struct World {
    pub url: String,
    pub device_address: std::net::SocketAddr,
    pub bank: Arc<Bank>,
    pub client: BankClient,
    pub teller: BearerToken,
    pub operator: BearerToken,
    pub device: SimHandle,
    /// The CA that certified the device (the bank trusts it).
    pub ca: firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey,
    pub session: Session,
    pub pin: Arc<Mutex<&'static str>>,
    /// Confirmation prompts the keypad cancels next.
    pub decline: Arc<std::sync::atomic::AtomicUsize>,
    pub events: Arc<Mutex<Vec<FlowEvent>>>,
    served: ServedDevice,
    keypad: tokio::task::JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        self.keypad.abort();
        self.served.stop();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    seed
}

impl World {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("bank.db").display());
        let bank = bank_sandbox::server::open_bank(
            &database,
            &dir.path().join("bank.master-key"),
            BankConfig::default(),
        )
        .await
        .unwrap();
        bank_sandbox::seed::seed(&bank).await.unwrap();
        let ca = CaKey::generate(&mut ChaCha20Rng::from_seed(seed()));
        bank.trust_ca(&ca.public_key().to_sec1_bytes(), "test CA")
            .await
            .unwrap();
        bank.allow_hash("firmware", &firmware_image_hash(FIRMWARE_VERSION), "sim")
            .await
            .unwrap();
        bank.allow_hash("app", &flows::app_build_hash(), "companion")
            .await
            .unwrap();
        // The `pinbridge` binary measures its own executable at login.
        let cli: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(std::fs::read(env!("CARGO_BIN_EXE_pinbridge")).unwrap()).into()
        };
        bank.allow_hash("app", &cli, "pinbridge CLI").await.unwrap();
        let bank = Arc::new(bank);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let served_bank = bank.clone();
        tokio::spawn(async move {
            let _ = bank_sandbox::server::serve_plain(listener, served_bank, async {
                let _ = stopped.await;
            })
            .await;
        });

        let mut settings = Manufacture::new("PB-TEST-1");
        settings.bank_management_key = Some(bank.management_public_key());
        settings.bank_operator_key = Some(bank.operator_public_key());
        let device_seed = seed();
        let device =
            Device::manufacture(&settings, &ca, &mut ChaCha20Rng::from_seed(device_seed)).unwrap();
        let hw = VirtualHardware::with(
            device_seed,
            Clock::System { offset_ms: 0 },
            SecureStore::Memory(None),
        );
        let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let served = ServedDevice::spawn(handle.clone(), listener).unwrap();
        let pin = Arc::new(Mutex::new(PIN));
        let decline = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let keypad = keypad(handle.clone(), pin.clone(), decline.clone());
        let transport = SimTransport::connect(served.address).await.unwrap();
        let session = Session::open(Box::new(transport)).await.unwrap();
        let client = BankClient::new(&BankSettings { url, ca_pem: None }).unwrap();
        let teller = client
            .staff_login("teller", "teller-password")
            .await
            .unwrap();
        let operator = client
            .staff_login("operator", "operator-password")
            .await
            .unwrap();
        Self {
            url: client.url().to_owned(),
            device_address: served.address,
            bank,
            client,
            teller,
            operator,
            device: handle,
            ca: ca.public_key(),
            session,
            pin,
            decline,
            events: Arc::new(Mutex::new(Vec::new())),
            served,
            keypad,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// The customer walks away: nothing is typed on the keypad from now on, so the device
    /// waits at its next prompt (a flow stays in the middle).
    pub fn stop_keypad(&self) {
        self.keypad.abort();
    }

    pub fn sink(&self) -> impl FnMut(FlowEvent) + Send + use<> {
        let events = self.events.clone();
        move |e| events.lock().unwrap().push(e)
    }

    /// Initialise, enrol alice with [`PIN`], pair.
    pub async fn provision_and_pair(&mut self) -> PairedHost {
        let mut sink = self.sink();
        flows::provision(
            &mut self.session,
            &self.client,
            &self.teller,
            "alice",
            &mut sink,
        )
        .await
        .unwrap();
        flows::pair(&mut self.session, "TEST-PC", &mut sink)
            .await
            .unwrap()
    }

    pub async fn login(&mut self, host: &mut PairedHost) -> BankSession {
        let mut sink = self.sink();
        flows::login(&mut self.session, &self.client, host, &mut sink)
            .await
            .unwrap()
    }

    /// A `pinbridge` command against this world's bank and PIN pad, with `state` as its state
    /// directory (teller credentials and a key-store passphrase set, English number format).
    pub fn cli(&self, state: &std::path::Path, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pinbridge"));
        command
            .env("PINBRIDGE_BANK_URL", &self.url)
            .env("PINBRIDGE_DEVICE", format!("sim:{}", self.device_address))
            .env("PINBRIDGE_STATE_DIR", state)
            .env("PINBRIDGE_LOG_DIR", state.join("logs"))
            .env("PINBRIDGE_KEYSTORE_PASSPHRASE", "a test passphrase")
            .env("PINBRIDGE_STAFF_USER", "teller")
            .env("PINBRIDGE_STAFF_PASSWORD", "teller-password")
            .env("LC_ALL", "en_US.UTF-8")
            .args(args);
        command
    }

    /// Runs [`World::cli`] to its end; it must succeed.
    pub async fn run_cli(&self, state: &std::path::Path, args: &[&str]) -> std::process::Output {
        let mut command = self.cli(state, args);
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    pub async fn journal_entries(&self, transaction_id: &str) -> i64 {
        let store = self.bank.store();
        let row =
            sqlx::query(&store.q("SELECT COUNT(*) AS n FROM journal WHERE transaction_id = ?"))
                .bind(transaction_id.to_owned())
                .fetch_one(store.reader())
                .await
                .unwrap();
        sqlx::Row::try_get::<i64, _>(&row, "n").unwrap()
    }
}

pub fn order(amount_minor: u64) -> PaymentOrder {
    PaymentOrder {
        payee_account: "FR7630006000011234567890189".into(),
        payee_name: "Shop SARL".into(),
        amount_minor,
        currency: "EUR".into(),
        reference: "flow test".into(),
        idempotency_key: hex::encode(&seed()[..8]),
    }
}

/// Types the current PIN at every PIN prompt and confirms other prompts, for the prompt on
/// the screen only, waiting on the device's activity (`device_sim::scripted`); the next
/// `decline` confirmation prompts are cancelled instead (the customer declines).
fn keypad(
    handle: SimHandle,
    pin: Arc<Mutex<&'static str>>,
    decline: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    device_sim::scripted::spawn_scripted_keypad_choosing(
        handle,
        Box::new(move || zeroize::Zeroizing::new(pin.lock().unwrap().to_string())),
        device_sim::scripted::Pace::KeyByKey,
        Box::new(move || {
            decline
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_err()
        }),
    )
}
