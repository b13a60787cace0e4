//! The bank's flows, independent of HTTP: device registry and initialisation, enrolment,
//! login, payments, out-of-band confirmations, bank commands, staff.

mod command_results;
mod confirm;
mod devices;
mod history;
mod lifecycle;
mod login;
mod owner;
mod payments;
mod staff;

pub use command_results::{CommandRecord, CommandResult};
pub use confirm::{ConfirmationRequest, ConfirmationView};
pub use devices::{CommandKind, DeviceView};
pub use history::{DEFAULT_PAGE, HistoryEntry, HistoryPage, MAX_PAGE};
pub use login::LoginComplete;
pub use owner::{PinChangeDecision, PreparedPinChange};
pub use payments::{PaymentDecision, PaymentRequest, PreparedPayment};
pub use staff::{Role, StaffIdentity};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::http::StatusCode;
use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;
use firmware_protocol::crypto::keys::{MacKey, PinKey};
use firmware_protocol::message::{
    self, Answer, Command, ErrorResponse, Response, SealError, UnexpectedAnswer,
};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::broadcast;

use crate::error::{BankError, BankResult};
use crate::hsm::{MasterKey, SealedBankKeys, SealedKey, SoftHsm};
use crate::store::Store;
use crate::util::now_ms;

/// Timing and policy knobs.
#[derive(Clone, Debug)]
pub struct BankConfig {
    /// How long a login may take from `login` to the challenge answer.
    pub login_ttl_ms: i64,
    /// How long the device has to answer the bank challenge.
    pub challenge_ttl_ms: i64,
    /// Session lifetime after a successful login.
    pub session_ttl_ms: i64,
    /// How long an out-of-band confirmation waits for the device.
    pub confirmation_ttl_ms: i64,
    /// Wrong PINs in a row that lock the binding.
    pub max_wrong_pins: i64,
    /// Failed logins in a row that throttle a device.
    pub throttle_after_failures: i64,
    /// How long a throttled device must wait.
    pub throttle_ms: i64,
    /// Staff token lifetime (short: a staff token opens customers, devices and allow-lists;
    /// the CLI signs in per command).
    pub staff_token_ttl_ms: i64,
}

impl Default for BankConfig {
    fn default() -> Self {
        Self {
            login_ttl_ms: 120_000,
            challenge_ttl_ms: 30_000,
            session_ttl_ms: 30 * 60_000,
            confirmation_ttl_ms: 5 * 60_000,
            max_wrong_pins: 3,
            throttle_after_failures: 5,
            throttle_ms: 5 * 60_000,
            staff_token_ttl_ms: 15 * 60_000,
        }
    }
}

/// Something pushed to a customer's app over server-sent events.
#[derive(Clone, Debug, Serialize)]
pub struct BankEvent {
    /// SSE event name: `confirmation` or `bank_command`.
    pub event: &'static str,
    /// JSON payload.
    pub data: serde_json::Value,
}

/// A logged-in device session with its keys opened, cached in memory.
pub(crate) struct ActiveSession {
    pub session_id: message::SessionId,
    pub device_serial: String,
    pub binding_id: String,
    pub customer_id: String,
    pub pin_key: PinKey,
    pub mac_key: MacKey,
    pub response_key: MacKey,
    pub expires_at: i64,
    /// The binding's PIN account number and verification value, read on the first payment:
    /// both are fixed once a binding is active (a rebind is a new binding).
    pub binding_pin: std::sync::OnceLock<BindingPin>,
    /// The payment this session prepared last, until its approval comes: what deciding it
    /// needs, so the approval does not read it back. Its state is checked again when the
    /// decision is written.
    pub last_prepared: Mutex<Option<PreparedFacts>>,
    /// Payer accounts this session has paid from, by (account asked for, currency): an
    /// account's owner, currency and exponent never change (only its balance, which the
    /// debit checks in the write), so the lookup is made once per session. The default
    /// account of a currency stays the one found first for the session's lifetime.
    pub payer_accounts: Mutex<Vec<(Option<String>, String, payments::Account)>>,
    /// The bank payment counter this process last issued in the session, or the binding's
    /// when the session was opened here (-1: not known): the next prepare expects the one
    /// after it (see `payments::prepare`). Without it a session's first payment took the
    /// step-by-step path, and a thousand sessions starting at once queued behind them.
    pub last_counter: std::sync::atomic::AtomicI64,
}

/// A prepared device payment as the decision needs it.
pub(crate) struct PreparedFacts {
    pub transaction_id: String,
    /// The request the bank MACed and the device approves.
    pub approve: message::ApprovePayment,
    pub payer: String,
    pub payee: String,
    pub amount: i64,
    pub currency: String,
}

impl ActiveSession {
    pub(crate) fn remember_prepared(&self, facts: PreparedFacts) {
        *self.last_prepared.lock().unwrap_or_else(|p| p.into_inner()) = Some(facts);
    }

    /// The last bank payment counter this process issued in the session, if any.
    pub(crate) fn last_counter(&self) -> Option<i64> {
        let last = self.last_counter.load(std::sync::atomic::Ordering::Relaxed);
        (last >= 0).then_some(last)
    }

    pub(crate) fn remember_counter(&self, counter: i64) {
        self.last_counter
            .fetch_max(counter, std::sync::atomic::Ordering::Relaxed);
    }

    /// The remembered payment if it is `transaction_id` (taken: an approval is decided once;
    /// a retry reads the store and gets the stored decision).
    pub(crate) fn take_prepared(&self, transaction_id: &str) -> Option<PreparedFacts> {
        let mut last = self.last_prepared.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref()?.transaction_id == transaction_id {
            last.take()
        } else {
            None
        }
    }
}

/// What PIN verification needs from the binding.
pub(crate) struct BindingPin {
    pub pin_account_number: String,
    pub pvv: Vec<u8>,
}

impl std::fmt::Debug for ActiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSession")
            .field("session_id", &self.session_id)
            .field("device_serial", &self.device_serial)
            .field("customer_id", &self.customer_id)
            .finish_non_exhaustive()
    }
}

/// What one process keeps in memory: opened sessions (a cache of the `sessions` table, whose
/// keys are sealed there) and the event streams of the customers connected to it.
#[derive(Default)]
struct Local {
    sessions: RwLock<HashMap<[u8; 32], Arc<ActiveSession>>>,
    events: Mutex<HashMap<String, broadcast::Sender<BankEvent>>>,
}

impl Local {
    fn deliver(&self, customer_id: &str, event: BankEvent) {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = events.get(customer_id) {
            // No subscriber is fine: the app fetches pending items when it connects.
            let _ = sender.send(event);
        }
    }

    fn forget_device(&self, serial: &str) {
        self.sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.device_serial != serial);
    }
}

/// PostgreSQL channel of customer events: `{"customer", "event", "data"}`.
const EVENTS_CHANNEL: &str = "pinbridge_events";
/// PostgreSQL channel of ended sessions: `device:<serial>` (lock, wipe, reset, logout).
const SESSIONS_CHANNEL: &str = "pinbridge_sessions";

/// Event names that cross processes (`BankEvent::event` is a static name).
const EVENT_NAMES: [&str; 2] = ["confirmation", "bank_command"];

/// The bank.
///
/// Several bank processes may serve one PostgreSQL database: everything a call needs is in
/// the database (login steps and nonces, sessions and their sealed keys, counters, throttles,
/// staff tokens, pending confirmations), and what a process caches is told to the others:
/// customer events and ended sessions go out as `NOTIFY` and every process `LISTEN`s, so an
/// event reaches the customer's app whichever process it is connected to. The payment
/// writes also check in the database that the session is still active. SQLite is one
/// process (one writer).
pub struct Bank {
    pub(crate) store: Store,
    pub(crate) hsm: SoftHsm,
    pub(crate) config: BankConfig,
    local: Arc<Local>,
    /// PostgreSQL: notifications to send, in order, by one task.
    notify: Option<tokio::sync::mpsc::UnboundedSender<(&'static str, String)>>,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("store", &self.store.backend())
            .field("hsm", &self.hsm)
            .finish_non_exhaustive()
    }
}

const KEY_NAMES: [&str; 3] = ["management", "operator", "pin_verification"];

impl Bank {
    /// Opens the bank over `store`: loads its keys (generating them on first start) with
    /// `master`.
    pub async fn open(store: Store, master: MasterKey, config: BankConfig) -> BankResult<Self> {
        let sealed =
            match load_bank_keys(&store).await? {
                Some(sealed) => sealed,
                None => {
                    let fresh = SoftHsm::generate_bank_keys(&master)?;
                    let mut tx = store.begin().await?;
                    for (name, key) in KEY_NAMES.iter().zip([
                        &fresh.management,
                        &fresh.operator,
                        &fresh.pin_verification,
                    ]) {
                        sqlx::query(&store.q(
                            "INSERT INTO bank_keys (name, key_block, created_at) VALUES (?, ?, ?)",
                        ))
                        .bind(*name)
                        .bind(key.0.clone())
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    fresh
                }
            };
        let hsm = SoftHsm::open_bank_keys(master, &sealed).map_err(|e| {
            BankError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "master_key_mismatch",
                format!("the stored bank keys do not open with this master key: {e}"),
            )
        })?;
        let local = Arc::new(Local::default());
        let notify = match store.postgres_url() {
            Some(url) => Some(start_cross_process(url, &store, local.clone()).await?),
            None => None,
        };
        Ok(Self {
            store,
            hsm,
            config,
            local,
            notify,
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The bank's public keys, which devices get at manufacture.
    pub fn management_public_key(&self) -> EcdsaVerifyingKey {
        self.hsm.management_public_key()
    }

    /// The bank operator public key.
    pub fn operator_public_key(&self) -> EcdsaVerifyingKey {
        self.hsm.operator_public_key()
    }

    /// Subscribes to a customer's events (those of every bank process on PostgreSQL).
    pub fn subscribe(&self, customer_id: &str) -> broadcast::Receiver<BankEvent> {
        let mut events = self.local.events.lock().unwrap_or_else(|p| p.into_inner());
        events
            .entry(customer_id.to_owned())
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
    }

    /// Sends an event to the customer's apps, on whichever bank process they listen.
    pub(crate) fn publish(&self, customer_id: &str, event: BankEvent) {
        match &self.notify {
            Some(notify) => {
                let payload = serde_json::json!({
                    "customer": customer_id,
                    "event": event.event,
                    "data": event.data,
                });
                // Delivered here too, by this process's own listener.
                let _ = notify.send((EVENTS_CHANNEL, payload.to_string()));
            }
            None => self.local.deliver(customer_id, event),
        }
    }

    pub(crate) fn cache_session(&self, token_hash: [u8; 32], session: Arc<ActiveSession>) {
        self.local
            .sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token_hash, session);
    }

    pub(crate) fn cached_session(&self, token_hash: &[u8; 32]) -> Option<Arc<ActiveSession>> {
        self.local
            .sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token_hash)
            .cloned()
    }

    /// Drops every cached session of a device (revoke, lock, reset), in every process.
    pub(crate) fn forget_device_sessions(&self, serial: &str) {
        self.local.forget_device(serial);
        if let Some(notify) = &self.notify {
            let _ = notify.send((SESSIONS_CHANNEL, format!("device:{serial}")));
        }
    }

    pub(crate) fn open_key<U: firmware_protocol::crypto::keys::Usage>(
        &self,
        sealed: Option<String>,
    ) -> BankResult<firmware_protocol::crypto::keys::Key<U>> {
        let sealed = sealed.ok_or_else(|| BankError::internal(&"missing stored key"))?;
        Ok(self.hsm.open(&sealed)?)
    }
}

/// Starts this process's part of the cross-process delivery (PostgreSQL): a listener on
/// both channels, connected before this returns (so no later event is missed), that delivers
/// events to the local subscribers and drops ended sessions from the local cache; and a
/// task sending this process's notifications in order. A notification is sent after the
/// transaction it tells of has committed; one lost while a listener reconnects costs an app
/// nothing it cannot fetch again (pending confirmations and commands are read on connect),
/// and an ended session is refused by the payment writes whatever a cache holds.
async fn start_cross_process(
    url: &str,
    store: &Store,
    local: Arc<Local>,
) -> BankResult<tokio::sync::mpsc::UnboundedSender<(&'static str, String)>> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener
        .listen_all([EVENTS_CHANNEL, SESSIONS_CHANNEL])
        .await?;
    tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(notification) => {
                    dispatch(&local, notification.channel(), notification.payload())
                }
                Err(e) => {
                    // recv reconnects on its next call; a pause keeps a dead server from
                    // spinning this loop.
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    let (sender, mut queue) = tokio::sync::mpsc::unbounded_channel::<(&'static str, String)>();
    let pool = store.writer().clone();
    tokio::spawn(async move {
        while let Some((channel, payload)) = queue.recv().await {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::error!(error = %e, channel, "NOTIFY failed: the event is not delivered live");
            }
        }
    });
    Ok(sender)
}

fn dispatch(local: &Local, channel: &str, payload: &str) {
    if channel == SESSIONS_CHANNEL {
        if let Some(serial) = payload.strip_prefix("device:") {
            local.forget_device(serial);
        }
        return;
    }
    let Ok(message) = serde_json::from_str::<serde_json::Value>(payload) else {
        tracing::warn!(channel, "unreadable notification");
        return;
    };
    let name = message["event"].as_str().unwrap_or_default();
    let (Some(customer), Some(event)) = (
        message["customer"].as_str(),
        EVENT_NAMES.iter().find(|known| **known == name),
    ) else {
        tracing::warn!(name, "notification of an unknown event");
        return;
    };
    local.deliver(
        customer,
        BankEvent {
            event,
            data: message["data"].clone(),
        },
    );
}

async fn load_bank_keys(store: &Store) -> BankResult<Option<SealedBankKeys>> {
    let rows = sqlx::query("SELECT name, key_block FROM bank_keys")
        .fetch_all(store.writer())
        .await?;
    let mut found: HashMap<String, String> = HashMap::new();
    for row in rows {
        found.insert(row.try_get("name")?, row.try_get("key_block")?);
    }
    let mut take = |name: &str| found.remove(name).map(SealedKey);
    match (
        take("management"),
        take("operator"),
        take("pin_verification"),
    ) {
        (Some(management), Some(operator), Some(pin_verification)) => Ok(Some(SealedBankKeys {
            management,
            operator,
            pin_verification,
        })),
        (None, None, None) => Ok(None),
        _ => Err(BankError::internal(&"the bank key table is incomplete")),
    }
}

/// Decodes a device response given in hex.
pub(crate) fn device_response(hex_text: &str, field: &str) -> BankResult<Response> {
    let bytes = hex::decode(hex_text.trim())
        .map_err(|_| BankError::invalid(format!("{field}: not hexadecimal")))?;
    let (_, response) = message::decode_response(&bytes)
        .map_err(|e| BankError::invalid(format!("{field}: not a device response: {e}")))?;
    Ok(response)
}

/// Decodes the device's answer to command `C` given in hex: the response `C` names; a device
/// `Error` becomes a `device_refused` refusal naming its status, any other response is invalid.
pub(crate) fn device_answer<C: Command>(hex_text: &str, field: &str) -> BankResult<C::Response> {
    match C::answer(device_response(hex_text, field)?) {
        Answer::Done(answer) => Ok(answer),
        Answer::Refused(error) => Err(device_refused(&error)),
        Answer::Unexpected(unexpected) => Err(unexpected_answer(field, unexpected)),
    }
}

/// The app relayed an answer of another type than the request's (PROTOCOL.md §3.3).
pub(crate) fn unexpected_answer(field: &str, unexpected: UnexpectedAnswer) -> BankError {
    BankError::invalid(format!("{field}: {unexpected}"))
}

pub(crate) fn device_refused(error: &ErrorResponse) -> BankError {
    BankError::conflict(
        "device_refused",
        format!("the device refused: {:?} ({})", error.status, error.detail),
    )
    .with("device_status", error.status.as_str())
    .with("device_status_code", error.status.code())
}

/// Encodes a request for the device (request id 0: the app may rewrite the header's request
/// id, which no MAC or signature covers).
pub(crate) fn encode_request(request: message::Request) -> BankResult<String> {
    Ok(hex::encode(
        request.encode(0).map_err(|e| BankError::internal(&e))?,
    ))
}

/// The bytes of a message this bank encoded as hex ([`encode_request`]), to store: hex of
/// its own that does not decode is the bank's fault, never a message stored empty.
pub(crate) fn encoded_bytes(hex_text: &str) -> BankResult<Vec<u8>> {
    hex::decode(hex_text).map_err(|e| BankError::internal(&e))
}

/// A MAC the bank could not make (`seal_bank_mac`, the one definition in firmware-protocol):
/// a message that does not encode is the caller's data; a key that is not AES is ours.
pub(crate) fn seal_refused(error: SealError) -> BankError {
    match error {
        SealError::Message(e) => BankError::invalid(e.to_string()),
        SealError::Mac(e) => BankError::internal(&e),
    }
}

/// Seconds since the epoch, for certificate validity.
pub(crate) fn now_seconds() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use firmware_protocol::message::{GetInfo, Indicator, Pong, StatusCode};

    use super::*;

    fn hex_of(response: Response) -> String {
        response.encode(0).map(hex::encode).unwrap_or_default()
    }

    #[test]
    fn a_relayed_answer_of_another_type_is_invalid_and_names_both_types() {
        let pong = hex_of(Response::Pong(Pong { payload: vec![] }));
        let error = device_answer::<GetInfo>(&pong, "info").unwrap_err();
        assert_eq!(error.code, "invalid_request", "{error}");
        assert_eq!(
            error.message,
            "info: the PIN pad answered GetInfo with Pong (type 0x8003), not Info"
        );
        let refusal = hex_of(Response::Error(ErrorResponse {
            status: StatusCode::KcvMismatch,
            indicator: Indicator::Off,
            detail: String::new(),
        }));
        let error = device_answer::<GetInfo>(&refusal, "info").unwrap_err();
        assert_eq!(error.code, "device_refused");
        assert_eq!(error.extra["device_status"], "KcvMismatch");
    }
}
