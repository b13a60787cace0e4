//! `pinbridge demo`: the embedded default, the whole chain in one process.
//!
//! This is a composition root (with `main.rs`), the only place besides tests that names the
//! mock device and the sandbox bank: it starts a sandbox bank (its HTTP API on 127.0.0.1:0
//! over a temporary SQLite file, seeded with the demo staff, customers and accounts) and one
//! mock PIN pad served over the sim link on 127.0.0.1:0, with a scripted keypad that types the
//! demo PIN and confirms prompts. Then it runs the library's flows exactly as against real
//! ones: initialise -> enrol -> pair -> login -> payment, and asks the bank how many journal
//! entries the payment has. The PIN is typed on the simulated keypad and never printed.

use std::sync::Arc;
use std::time::Duration;

use bank_sandbox::bank::{Bank, BankConfig};
use companion::bank::{BankClient, BankError, BankSettings};
use companion::flows::{self, FlowError, FlowEvent, PaymentOrder};
use companion::keystore::{KeyStore, KeyStoreError};
use companion::session::{Session, SessionError};
use companion::transport::sim::SimTransport;
use device_sim::certificate::CaKey;
use device_sim::device::{Device, FIRMWARE_VERSION, Manufacture, firmware_image_hash};
use device_sim::hardware::{Clock, SecureStore, VirtualHardware};
use device_sim::server::ServedDevice;
use device_sim::sim::{SimCore, SimHandle};
use firmware_protocol::link::Mtu;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The PIN the demo customer types on the simulated keypad. It stays on the device side.
pub const DEMO_PIN: &str = "271828";
/// The demo device's serial.
pub const DEMO_SERIAL: &str = "PB-DEMO-0001";
/// The seeded customer the demo binds.
pub const DEMO_CUSTOMER: &str = "alice";

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Starting the embedded bank or device failed.
    #[error("cannot start the embedded {what}: {reason}")]
    Setup {
        /// Which part.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A flow failed.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The bank client failed.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// The device session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The key store failed.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// The payment did not end approved.
    #[error("the payment was not approved: bank {bank}, device {device}")]
    NotApproved {
        /// The bank's verdict.
        bank: String,
        /// The device's decision.
        device: String,
    },
}

fn setup(what: &'static str) -> impl FnOnce(String) -> DemoError {
    move |reason| DemoError::Setup { what, reason }
}

/// The embedded sandbox bank, served on loopback until dropped.
pub struct EmbeddedBank {
    /// Base URL.
    pub url: String,
    /// The bank itself (journal queries).
    pub bank: Arc<Bank>,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for EmbeddedBank {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl EmbeddedBank {
    /// Starts a seeded bank trusting `ca`, the sim firmware and this companion build.
    pub async fn start(ca: &CaKey) -> Result<Self, DemoError> {
        let dir = tempfile::tempdir().map_err(|e| setup("bank")(e.to_string()))?;
        let database = format!("sqlite://{}", dir.path().join("bank.db").display());
        let bank = bank_sandbox::server::open_bank(
            &database,
            &dir.path().join("bank.master-key"),
            BankConfig::default(),
        )
        .await
        .map_err(|e| setup("bank")(e.to_string()))?;
        bank_sandbox::seed::seed(&bank)
            .await
            .map_err(|e| setup("bank")(e.to_string()))?;
        bank.trust_ca(&ca.public_key().to_sec1_bytes(), "demo device CA")
            .await
            .map_err(|e| setup("bank")(e.to_string()))?;
        bank.allow_hash(
            "firmware",
            &firmware_image_hash(FIRMWARE_VERSION),
            "pinpad-sim",
        )
        .await
        .map_err(|e| setup("bank")(e.to_string()))?;
        bank.allow_hash("app", &flows::app_build_hash(), "pinbridge")
            .await
            .map_err(|e| setup("bank")(e.to_string()))?;
        let bank = Arc::new(bank);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| setup("bank")(e.to_string()))?;
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| setup("bank")(e.to_string()))?
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let served = bank.clone();
        tokio::spawn(async move {
            let _ = bank_sandbox::server::serve_plain(listener, served, async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Self {
            url,
            bank,
            stop: Some(stop),
            _dir: dir,
        })
    }

    /// Journal entries for a transaction, read from the bank's store.
    pub async fn journal_entries(&self, transaction_id: &str) -> Result<i64, DemoError> {
        let store = self.bank.store();
        let row =
            sqlx::query(&store.q("SELECT COUNT(*) AS n FROM journal WHERE transaction_id = ?"))
                .bind(transaction_id.to_owned())
                .fetch_one(store.reader())
                .await
                .map_err(|e| setup("bank journal query")(e.to_string()))?;
        sqlx::Row::try_get::<i64, _>(&row, "n")
            .map_err(|e| setup("bank journal query")(e.to_string()))
    }
}

/// One mock PIN pad served over the sim link on loopback.
pub struct EmbeddedDevice {
    /// The link address (`sim:ADDRESS` for the CLI).
    pub address: std::net::SocketAddr,
    /// In-process control (keypad, tamper switch, display).
    pub handle: SimHandle,
    served: ServedDevice,
}

impl Drop for EmbeddedDevice {
    fn drop(&mut self) {
        self.served.stop();
    }
}

impl EmbeddedDevice {
    /// Manufactures a device certified by `ca` that trusts `bank`'s keys, and serves it.
    pub async fn start(ca: &CaKey, bank: &Bank, serial: &str) -> Result<Self, DemoError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| setup("device")(e.to_string()))?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut settings = Manufacture::new(serial);
        settings.bank_management_key = Some(bank.management_public_key());
        settings.bank_operator_key = Some(bank.operator_public_key());
        let device = Device::manufacture(&settings, ca, &mut rng)
            .map_err(|e| setup("device")(e.to_string()))?;
        let hw = VirtualHardware::with(
            seed,
            Clock::System { offset_ms: 0 },
            SecureStore::Memory(None),
        );
        let handle = SimHandle::new(SimCore::new(device, hw, Mtu::SIM));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| setup("device")(e.to_string()))?;
        let served = ServedDevice::spawn(handle.clone(), listener)
            .map_err(|e| setup("device")(e.to_string()))?;
        Ok(Self {
            address: served.address,
            handle,
            served,
        })
    }
}

/// A scripted keypad: at every PIN prompt types `pin` and presses Enter; confirms every other
/// prompt. Runs until aborted. It presses only for the prompt on the screen and waits for the
/// device's activity, never on a timer (`device_sim::scripted`); a non-zero `key_delay` paces
/// the digits one at a time so the host sees the count grow.
pub fn script_keypad(
    handle: SimHandle,
    pin: &'static str,
    key_delay: Duration,
) -> tokio::task::JoinHandle<()> {
    device_sim::scripted::spawn_scripted_keypad(
        handle,
        Box::new(move || zeroize::Zeroizing::new(pin.to_owned())),
        if key_delay.is_zero() {
            device_sim::scripted::Pace::AllAtOnce
        } else {
            device_sim::scripted::Pace::Paced(key_delay)
        },
    )
}

/// Runs the demo. In text mode each line is printed as it happens; the returned JSON is the
/// summary (`--json` prints it alone).
pub async fn run(json_mode: bool) -> Result<Value, DemoError> {
    let mut events_log: Vec<Value> = Vec::new();
    let say = |line: &str| {
        if !json_mode {
            companion::output::emit(line);
        }
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| setup("CA")(e.to_string()))?;
    let ca = CaKey::generate(&mut ChaCha20Rng::from_seed(seed));
    let bank = EmbeddedBank::start(&ca).await?;
    say(&format!("PinBridge demo: sandbox bank on {}", bank.url));
    let device = EmbeddedDevice::start(&ca, &bank.bank, DEMO_SERIAL).await?;
    say(&format!(
        "PinBridge demo: mock PIN pad {DEMO_SERIAL} on sim:{} (keypad scripted)",
        device.address
    ));
    let keypad = script_keypad(device.handle.clone(), DEMO_PIN, Duration::from_millis(40));
    let state = tempfile::tempdir().map_err(|e| setup("state dir")(e.to_string()))?;
    let keystore = KeyStore::in_memory(state.path());

    let client = BankClient::new(&BankSettings {
        url: bank.url.clone(),
        ca_pem: None,
    })?;
    let transport = SimTransport::connect(device.address)
        .await
        .map_err(SessionError::from)?;
    let mut session = Session::open(Box::new(transport)).await?;

    let mut on_event = |event: FlowEvent| {
        if !json_mode {
            companion::output::emit(&event.to_string());
        }
        events_log.push(serde_json::to_value(&event).unwrap_or(Value::Null));
    };

    if !json_mode {
        companion::output::emit("\n1. Initialise (branch teller)");
    }
    let teller = client.staff_login("teller", "teller-password").await?;
    let serial = flows::initialise(&mut session, &client, &teller, &mut on_event).await?;
    if !json_mode {
        companion::output::emit(&format!(
            "\n2. Enrol and bind customer {DEMO_CUSTOMER} (PIN chosen on the keypad)"
        ));
    }
    flows::enrol(
        &mut session,
        &client,
        &teller,
        &serial,
        DEMO_CUSTOMER,
        &mut on_event,
    )
    .await?;
    if !json_mode {
        companion::output::emit("\n3. Pair this computer with the PIN pad");
    }
    let mut host = flows::pair(&mut session, "PINBRIDGE-DEMO", &mut on_event).await?;
    keystore.save(&host)?;
    if !json_mode {
        companion::output::emit(&format!(
            "    host pairing key stored encrypted (AES-256-GCM) in {}",
            state.path().display()
        ));
        companion::output::emit("\n4. Log in at the bank through the PIN pad");
    }
    let login = flows::login(&mut session, &client, &mut host, &mut on_event).await?;
    keystore.save(&host)?;
    if !json_mode {
        companion::output::emit("\n5. Pay 12.34 EUR to Shop SARL (PIN on the PIN pad)");
    }
    let mut key = [0u8; 8];
    getrandom::fill(&mut key).map_err(|e| setup("idempotency key")(e.to_string()))?;
    let order = PaymentOrder {
        payee_account: "FR7630006000011234567890189".into(),
        payee_name: "Shop SARL".into(),
        amount_minor: 1234,
        currency: "EUR".into(),
        reference: "pinbridge demo".into(),
        idempotency_key: hex::encode(key),
    };
    let outcome = flows::pay(
        &mut session,
        &client,
        &login,
        &mut host,
        &order,
        &mut on_event,
    )
    .await?;
    keystore.save(&host)?;
    keypad.abort();
    let status = client
        .get(
            &format!("/v1/payments/{}", outcome.transaction_id),
            Some(&login.token),
        )
        .await?;
    let journal = bank.journal_entries(&outcome.transaction_id).await?;
    let accounts = client.get("/v1/accounts", Some(&login.token)).await?;
    let balance = accounts["accounts"][0]["balance_minor"].as_i64();
    if !outcome.approved() {
        return Err(DemoError::NotApproved {
            bank: outcome.bank_result,
            device: outcome.device_result,
        });
    }
    if !json_mode {
        companion::output::emit(&format!(
            "\n6. The bank's books: payment {} is {} ({}), {} journal entr{}; {}'s balance now {}",
            outcome.transaction_id,
            status["status"].as_str().unwrap_or("?"),
            status["result"].as_str().unwrap_or("?"),
            journal,
            if journal == 1 { "y" } else { "ies" },
            DEMO_CUSTOMER,
            balance.map_or("?".into(), |b| flows::format_amount(b.unsigned_abs(), 2)),
        ));
        companion::output::emit(
            "\nApproved: the PIN pad verified the bank's answer (indicator safe).",
        );
    }
    Ok(json!({
        "result": "approved",
        "transactionId": outcome.transaction_id,
        "bankResult": outcome.bank_result,
        "deviceResult": outcome.device_result,
        "indicator": outcome.indicator,
        "journalEntries": journal,
        "paymentStatus": status["status"],
        "balanceMinor": balance,
        "serial": serial,
        "events": events_log,
    }))
}
