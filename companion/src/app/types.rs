//! The shapes the app's screens see (ui/README.md is the contract; ui/src/api/types.ts is
//! generated from these by ts-rs, `cargo test -p pinbridge-app --test contract`): device
//! status, progress of long operations, and each operation's result.

use serde::{Deserialize, Serialize};

use super::lifecycle_types::BankCommandKind;
use crate::devices::{DeviceEvent, DeviceInfo, DeviceState};
use crate::flows::{FlowEvent, Step};
use crate::transport::TransportKind;

/// The transport, as the screens name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum TransportName {
    /// USB.
    Usb,
    /// Bluetooth LE.
    Ble,
    /// A software PIN pad (`pinpad-sim`, or one running inside the app).
    Sim,
}

/// Where the device is in its life, as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Lifecycle {
    /// Made, no bank keys.
    Manufactured,
    /// Bank keys installed.
    Initialised,
    /// Bound to a customer.
    Bound,
    /// Revoked by the bank.
    Revoked,
}

/// The tamper flag, as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum TamperState {
    /// No tamper event.
    Clear,
    /// Tampered: refuses everything until an operator reset.
    Tampered,
}

/// The lock, as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum LockState {
    /// Usable.
    Unlocked,
    /// Locked until the bank unlocks it.
    Locked,
}

/// The device's security light, mirrored as the device reports it; the app never sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Indicator {
    /// Dark.
    Off,
    /// Steady green.
    Safe,
    /// Blinking red.
    Danger,
}

/// Firmware identity as the device reports (and signs) it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Firmware {
    /// Version text.
    pub version: String,
    /// Hex SHA-256 of the image.
    pub hash: String,
}

/// The app's genuine check of a connected PIN pad (CN102610045A; Ledger Live's and Trezor
/// Suite's "genuine check"): its certificate and a signed integrity report over a fresh nonce
/// of the app's own, checked as `pinbridge device info` checks them ([`crate::integrity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Genuine {
    /// Not connected: not checked yet.
    Unchecked,
    /// Every check passed, the issuing CA included.
    Genuine,
    /// A check failed (`genuine_failures` names each).
    NotGenuine,
    /// Every check made passed, but no trusted device CA is configured: the issuer was not
    /// checked.
    NotVerified,
}

/// One device on the Devices screen (`DeviceStatus` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatus {
    /// `usb:1-4.2`, `sim:127.0.0.1:7001`: the id commands take.
    pub device_id: String,
    /// Display name.
    pub name: String,
    /// Transport.
    pub transport: TransportName,
    /// Serial number; empty until the device has told it.
    pub serial: String,
    /// This app has a session open to it.
    pub connected: bool,
    /// As reported by the device.
    pub lifecycle: Lifecycle,
    /// As reported by the device.
    pub tamper: TamperState,
    /// As reported by the device.
    pub lock: LockState,
    /// As reported by the device.
    pub indicator: Indicator,
    /// This app holds a pairing key for it.
    pub paired: bool,
    /// The customer it is bound to at the bank.
    pub customer_id: Option<String>,
    /// As reported by the device.
    pub firmware: Firmware,
    /// The genuine check made when this app connected.
    pub genuine: Genuine,
    /// Each check that failed, in words naming it (empty unless `NotGenuine`).
    pub genuine_failures: Vec<String>,
    /// A software PIN pad whose keypad QA can drive.
    pub mock: bool,
}

impl DeviceStatus {
    /// The status of a listed device that this app has no session with.
    ///
    /// The manager knows only what the transport tells before any message is exchanged
    /// (address, USB serial and product name, BLE local name). What only the device can say
    /// (lifecycle, tamper, lock, indicator, firmware) is learnt when a session is opened
    /// (`device_connect`, still to come); until then those fields hold their neutral values
    /// and `connected` is false, which the screens show as "not connected" rather than safe.
    pub fn from_listing(device: &DeviceInfo) -> Self {
        let id = device.id();
        let transport = match id.kind {
            TransportKind::Usb => TransportName::Usb,
            TransportKind::Ble => TransportName::Ble,
            TransportKind::Sim | TransportKind::InProcess => TransportName::Sim,
        };
        // Only a PIN pad running inside the app has a keypad the app can press: a `pinpad-sim`
        // process is driven through its own control API, not from here.
        let mock = id.kind == TransportKind::InProcess;
        let name = device.identity.name.clone().unwrap_or_else(|| {
            let what = match transport {
                TransportName::Usb => "USB PIN pad",
                TransportName::Ble => "Bluetooth PIN pad",
                TransportName::Sim => "Simulated PIN pad",
            };
            format!("{what} ({})", id.address)
        });
        DeviceStatus {
            device_id: id.to_string(),
            name,
            transport,
            serial: device.identity.serial.clone().unwrap_or_default(),
            connected: false,
            lifecycle: Lifecycle::Manufactured,
            tamper: TamperState::Clear,
            lock: LockState::Unlocked,
            indicator: Indicator::Off,
            paired: false,
            customer_id: None,
            firmware: Firmware {
                version: String::new(),
                hash: String::new(),
            },
            genuine: Genuine::Unchecked,
            genuine_failures: Vec::new(),
            mock,
        }
    }
}

impl DeviceStatus {
    /// Takes what the device itself reported (GetStatus) over the neutral listing values.
    pub fn apply_reported(&mut self, reported: &firmware_protocol::message::Status) {
        use firmware_protocol::message::Indicator as I;
        self.lifecycle = reported.lifecycle.into();
        self.tamper = if reported.tampered {
            TamperState::Tampered
        } else {
            TamperState::Clear
        };
        self.lock = reported.lock.into();
        self.indicator = match reported.indicator {
            I::Safe => Indicator::Safe,
            I::Danger => Indicator::Danger,
            I::Off => Indicator::Off,
        };
    }
}

impl From<firmware_protocol::message::Lifecycle> for Lifecycle {
    fn from(reported: firmware_protocol::message::Lifecycle) -> Self {
        use firmware_protocol::message::Lifecycle as L;
        match reported {
            L::Manufactured => Lifecycle::Manufactured,
            L::Initialised => Lifecycle::Initialised,
            L::Bound => Lifecycle::Bound,
            L::Revoked => Lifecycle::Revoked,
        }
    }
}

impl From<firmware_protocol::message::LockState> for LockState {
    fn from(reported: firmware_protocol::message::LockState) -> Self {
        match reported {
            firmware_protocol::message::LockState::Unlocked => LockState::Unlocked,
            // Whoever locked it, the screens show one lock (the device page says why).
            _ => LockState::Locked,
        }
    }
}

/// Every listed device, as the screens show it. Devices that are configured but do not answer
/// (a simulator address with nothing listening) are left out: there is nothing to use.
pub fn statuses(devices: &[DeviceInfo]) -> Vec<DeviceStatus> {
    devices
        .iter()
        .filter(|d| d.state != DeviceState::Unreachable)
        .map(DeviceStatus::from_listing)
        .collect()
}

/// What a long device operation is doing (`Stage` in ui/src/api/types.ts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Talking to the bank.
    ContactingBank,
    /// Sending to the device.
    SendingToDevice,
    /// The device waits for the user.
    WaitingForUser,
    /// Sending the device's answer to the bank.
    SendingToBank,
    /// The device checks the bank's answer.
    VerifyingResponse,
    /// Finished.
    Done,
}

/// Progress of one long operation (`DeviceProgress`, tag `type`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum DeviceProgress {
    /// A stage starts.
    Stage {
        /// Which.
        stage: Stage,
    },
    /// The device's own display, verbatim.
    Display {
        /// Lines.
        lines: Vec<String>,
    },
    /// PIN entry on the device keypad: a count, never the digits.
    Pin {
        /// Digits entered.
        entered: u8,
        /// Most digits possible.
        length: u8,
    },
    /// The device's indicator.
    Indicator {
        /// As the device reports it.
        indicator: Indicator,
    },
}

/// The stage a companion flow step belongs to.
pub fn stage_of(step: Step) -> Stage {
    match step {
        Step::BankInitialise
        | Step::BankEnrol
        | Step::LoginBegin
        | Step::PreparePayment
        | Step::Revoke => Stage::ContactingBank,
        Step::BankCompleteInitialise | Step::BankCompleteEnrol | Step::BankApproval => {
            Stage::SendingToBank
        }
        Step::DeviceVerify => Stage::VerifyingResponse,
        Step::ReadDeviceInfo
        | Step::DeviceInitialise
        | Step::DeviceEnrol
        | Step::PairBegin
        | Step::PairConfirm
        | Step::IntegrityReport
        | Step::LoadSessionKeys
        | Step::BankChallenge
        | Step::DeviceApprove
        | Step::SignConfirmation
        | Step::RelayBankCommand
        | Step::OperatorReset => Stage::SendingToDevice,
    }
}

/// The contract's progress for a companion flow event (`None`: nothing the screens show).
pub fn progress_of(event: &FlowEvent) -> Option<DeviceProgress> {
    match event {
        FlowEvent::Step { step } => Some(DeviceProgress::Stage {
            stage: stage_of(*step),
        }),
        FlowEvent::WaitingForUser => Some(DeviceProgress::Stage {
            stage: Stage::WaitingForUser,
        }),
        FlowEvent::PinEntry { entered, max, .. } => Some(DeviceProgress::Pin {
            entered: *entered,
            length: *max,
        }),
        FlowEvent::DeviceDecision { indicator, .. } => Some(DeviceProgress::Indicator {
            indicator: indicator_named(indicator),
        }),
        _ => None,
    }
}

pub(crate) fn indicator_named(name: &str) -> Indicator {
    match name {
        "safe" => Indicator::Safe,
        "danger" => Indicator::Danger,
        _ => Indicator::Off,
    }
}

/// `pairing_begin`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PairingStart {
    /// Names this pairing in `pairing_confirm` / `pairing_cancel`.
    pub pairing_id: String,
    /// Six digits, also on the device's display.
    pub code: String,
}

/// `login`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LoginSession {
    /// The bank's session id.
    pub session_id: String,
    /// The customer.
    pub customer_id: String,
    /// Their name.
    pub customer_name: String,
    /// The device logged in with.
    pub device_id: String,
    /// Accounts to pay from.
    pub accounts: Vec<String>,
}

/// `payment_prepare`'s argument.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    /// From `login`.
    pub session_id: String,
    /// One of the session's accounts.
    pub from_account: String,
    /// Payee.
    pub payee_name: String,
    /// Payee account.
    pub payee_account: String,
    /// Integer minor units as a decimal string.
    pub amount_minor: String,
    /// ISO 4217.
    pub currency: String,
    /// Free text.
    pub reference: String,
}

/// `payment_prepare`'s result: what the bank prepared (and the device will show).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PreparedPayment {
    /// The bank's transaction id.
    pub payment_id: String,
    /// Payer account.
    pub from_account: String,
    /// Payee.
    pub payee_name: String,
    /// Payee account.
    pub payee_account: String,
    /// Minor units.
    pub amount_minor: String,
    /// ISO 4217.
    pub currency: String,
    /// Free text.
    pub reference: String,
}

/// How a device operation ended, as the device decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The bank said yes and the device verified it.
    Approved,
    /// A genuine no from the bank.
    Declined,
    /// Signed (confirmation).
    Signed,
    /// The user said no on the device.
    Rejected,
    /// The device refused (tampered, bank answer failed its check).
    Refused,
}

/// Why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum OutcomeReason {
    /// Nothing to explain.
    None,
    /// The bank did not verify the PIN.
    WrongPin,
    /// Not enough money.
    InsufficientFunds,
    /// The bank's answer failed the device's check.
    BankResponseInvalid,
    /// The device is tampered.
    Tampered,
    /// The host was not verified.
    HostNotVerified,
    /// The user said no.
    UserRejected,
    /// The bank blocked the PIN (too many wrong PINs, or blocked before): only the bank
    /// unblocks it, so the customer is told to call it rather than to try again.
    PinBlocked,
}

/// `payment_approve`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    /// The payment.
    pub payment_id: String,
    /// As the device decided.
    pub outcome: Outcome,
    /// As the device reports it.
    pub indicator: Indicator,
    /// Why.
    pub reason: OutcomeReason,
    /// The device's display at the end.
    pub device_lines: Vec<String>,
    /// The bank's journal reference (its transaction id) when approved.
    pub bank_reference: Option<String>,
    /// After a wrong PIN, how many tries the bank still allows before it blocks the PIN
    /// (`None` when the bank did not say, or the PIN was not the reason).
    pub pin_tries_left: Option<u32>,
}

/// Staff roles as the app names them; the bank's `teller` is a `clerk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum StaffRole {
    /// Branch clerk (the bank's teller).
    Clerk,
    /// Service operator (tamper reset).
    Operator,
}

/// `staff_sign_in`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StaffSession {
    /// Sign-in name.
    pub staff_id: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: StaffRole,
    /// What the bank lets this role do to a PIN pad here ([`StaffRole::actions`]): the screen
    /// offers only these.
    pub actions: Vec<StaffAction>,
    /// What it may do by serial to a PIN pad that is not here (looking one up is for every
    /// role).
    pub serial_actions: Vec<super::SerialAction>,
}

/// Which staff action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum StaffAction {
    /// Bank keys installed.
    Initialise,
    /// PIN chosen on the device, bound.
    Enrol,
    /// Bound.
    Bind,
    /// Revoked.
    Revoke,
    /// Customer moved to another device.
    Rebind,
    /// Operator tamper reset.
    TamperReset,
}

/// A staff action's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct StaffActionResult {
    /// Which.
    pub action: StaffAction,
    /// The device.
    pub device_id: String,
    /// Plain words, no secrets.
    pub detail: String,
    /// The device afterwards.
    pub device: DeviceStatus,
}

/// A QA fault (tag `kind`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fault {
    /// Hold every device answer this long (stays until cleared).
    Delay {
        /// Milliseconds (at most 30 000).
        ms: u64,
    },
    /// Lose the next packet (retransmitted).
    Drop,
    /// Damage the next packet (its CRC catches it).
    Corrupt,
    /// Close the link after the next packet.
    Disconnect,
    /// Answer the next request BUSY.
    Busy,
    /// The device times out waiting for a key.
    UserTooSlow,
}

/// `confirmation_approve`'s result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConfirmationResult {
    /// The request.
    pub request_id: String,
    /// As the device decided.
    pub outcome: Outcome,
    /// As the device reports it.
    pub indicator: Indicator,
    /// Why.
    pub reason: OutcomeReason,
    /// The device's display at the end.
    pub device_lines: Vec<String>,
}

/// One pushed request (`ConfirmationRequest` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConfirmationRequest {
    /// The bank's id for this request.
    pub request_id: String,
    /// The merchant's order id.
    pub order_id: String,
    /// The customer's account to pay from.
    pub payer_account: String,
    /// Who is paid.
    pub payee_name: String,
    /// Their account.
    pub payee_account: String,
    /// Integer minor units as a decimal string.
    pub amount_minor: String,
    /// ISO 4217 code.
    pub currency: String,
    /// ISO-8601 time the bank pushed it.
    pub received_at: String,
}

/// What the core tells every window, as it happens (the shell's `AppEvent` adds log lines).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum CoreEvent {
    /// The whole device list after any change.
    Devices {
        /// The list.
        devices: Vec<DeviceStatus>,
    },
    /// What a device's own display shows now (mock devices: read from the device itself).
    #[serde(rename_all = "camelCase")]
    DeviceDisplay {
        /// The device.
        device_id: String,
        /// Its display, line by line.
        lines: Vec<String>,
        /// The prompt on the display, if one waits for a key (mock devices; a key press names
        /// it so a key never goes to a prompt the user has not seen). `None`: the keypad is
        /// idle and a key would be discarded.
        prompt_id: Option<u64>,
    },
    /// The bank pushed a confirmation request.
    ConfirmationPushed {
        /// The request.
        request: ConfirmationRequest,
    },
    /// The bank sent a connected device a signed command (staff or the customer revoked,
    /// locked or unlocked it) and this app relayed it: what the device did.
    #[serde(rename_all = "camelCase")]
    BankCommand {
        /// The device.
        device_id: String,
        /// Its serial.
        serial: String,
        /// What the bank commanded.
        command: BankCommandKind,
        /// The device obeyed (its state after it says so); `false`: `message` says why not.
        applied: bool,
        /// The device's lifecycle after it (`revoked` after a wipe); `None`: it did not answer.
        lifecycle: Option<Lifecycle>,
        /// Its lock after it; `None`: it did not answer.
        lock: Option<LockState>,
        /// The customer session on this device ended (the bank ends it for a wipe or lock).
        session_ended: bool,
        /// Plain words for the customer: what the bank did and what it means.
        message: String,
    },
    /// A connected device's link went away or came back (unplug and replug).
    #[serde(rename_all = "camelCase")]
    DeviceLink {
        /// The device.
        device_id: String,
        /// What happened.
        link: LinkState,
        /// Plain words for the user: what happened and what to do.
        message: String,
    },
    /// Whether the bank answers changed (a call reached it or failed on the way, a probe).
    BankReach {
        /// Reachable, unreachable or unknown.
        reach: super::BankReach,
        /// Why it is unreachable (English, for the tooltip's details); `None` otherwise.
        reason: Option<String>,
    },
}

/// A connected device's link after an unplug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum LinkState {
    /// Unplugged (or out of range): the app reconnects when the device is back.
    Reconnecting,
    /// Back, with the same pairing and the same customer session.
    Reconnected,
    /// Back, but the device restarted and forgot the customer session: log in again.
    SessionLost,
}

/// Words for the log about one manager event.
pub fn describe(event: &DeviceEvent) -> String {
    match event {
        DeviceEvent::Arrived(device) => format!("PIN pad found: {device}"),
        DeviceEvent::Left(id) => format!("PIN pad gone: {id}"),
        DeviceEvent::Changed(device) => format!("PIN pad changed: {device}"),
        DeviceEvent::SourceFailed { kind, message } => {
            format!("could not look for {kind} PIN pads: {message}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::DeviceIdentity;

    #[test]
    fn a_listed_sim_device_has_the_contract_shape() {
        let device = DeviceInfo::new(
            DeviceIdentity::new(TransportKind::Sim, "127.0.0.1:7001"),
            DeviceState::Available,
        );
        let json = serde_json::to_value(DeviceStatus::from_listing(&device)).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({
                "deviceId": "sim:127.0.0.1:7001",
                "name": "Simulated PIN pad (127.0.0.1:7001)",
                "transport": "sim",
                "serial": "",
                "connected": false,
                "lifecycle": "manufactured",
                "tamper": "clear",
                "lock": "unlocked",
                "indicator": "off",
                "paired": false,
                "customerId": null,
                "firmware": {"version": "", "hash": ""},
                "genuine": "unchecked",
                "genuineFailures": [],
                "mock": false,
            })
        );
    }

    #[test]
    fn usb_devices_keep_their_serial_and_name_and_are_not_mock() {
        let mut identity = DeviceIdentity::new(TransportKind::Usb, "1-4.2");
        identity.serial = Some("PB-0042".into());
        identity.name = Some("PinBridge PIN pad".into());
        let status = DeviceStatus::from_listing(&DeviceInfo::new(identity, DeviceState::InUse));
        assert_eq!(status.device_id, "usb:1-4.2");
        assert_eq!(status.serial, "PB-0042");
        assert_eq!(status.name, "PinBridge PIN pad");
        assert_eq!(status.transport, TransportName::Usb);
        assert!(!status.mock);
    }

    #[test]
    fn unreachable_simulators_are_not_listed() {
        let at = |port: u16, state| {
            DeviceInfo::new(
                DeviceIdentity::new(TransportKind::Sim, format!("127.0.0.1:{port}")),
                state,
            )
        };
        let listed = statuses(&[
            at(1, DeviceState::Available),
            at(2, DeviceState::Unreachable),
        ]);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].device_id, "sim:127.0.0.1:1");
    }
}
