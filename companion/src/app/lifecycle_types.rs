//! The app core's types for a device's life after issue: the bank's commands as the app relays
//! them, logout's result, and acting on a PIN pad that is not here (by serial, loss report).
//! Re-exported with the rest of [`super::types`] (`companion::app::*`).

use serde::Serialize;

/// What staff may do to a PIN pad that is not here, by its serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum SerialAction {
    /// Revoked (lost or stolen): logins refused, a signed wipe queued.
    Revoke,
    /// Payment functions locked until unlocked.
    Lock,
    /// A lock lifted.
    Unlock,
    /// The PIN pad forgets every paired computer (a lost PC).
    Unpair,
}

/// The bank's record of a PIN pad, by serial (staff's by-serial screen; the confirmation
/// names the device and its customer from it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct BankDevice {
    /// Serial.
    pub serial: String,
    /// The bank's lifecycle state (`initialised`, `bound`, `revoked`, ...).
    pub state: String,
    /// Locked by the bank.
    pub locked: bool,
    /// The customer it is bound to, if any.
    pub customer_id: Option<String>,
    /// Its latest signed commands, newest first, with what the PIN pad answered to each.
    pub commands: Vec<DeviceCommandRecord>,
}

/// A signed command the bank issued for a PIN pad, and what the PIN pad answered to it as
/// the app that relayed it reported (the PIN pad does not sign that answer: it is that app's
/// word, docs/SECURITY.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DeviceCommandRecord {
    /// The bank's sequence number of the command.
    pub sequence: i64,
    /// `lock`, `unlock`, `wipe`, `forget_hosts`, `end_session`, `operator_reset`, ...
    pub command: String,
    /// Who issued it (a staff user, `login`, `customer ...`).
    pub issued_by: String,
    /// When (ms since the epoch).
    pub issued_at: i64,
    /// `applied`, `not_applied` or `refused`; `None`: no answer reported yet.
    pub outcome: Option<String>,
    /// The PIN pad's state in its answer (`bound, locked_by_bank`) or its refusal.
    pub detail: Option<String>,
}

impl DeviceCommandRecord {
    /// One entry of the bank's `commands` list (GET /v1/devices/{serial}).
    pub fn from_bank(value: &serde_json::Value) -> Self {
        let result = &value["result"];
        let detail = match (
            result["lifecycle"].as_str(),
            result["lock"].as_str(),
            result["device_error"].as_str(),
        ) {
            (Some(lifecycle), Some(lock), _) => Some(format!("{lifecycle}, {lock}")),
            (_, _, Some(error)) => Some(error.to_owned()),
            _ => None,
        };
        Self {
            sequence: value["sequence"].as_i64().unwrap_or_default(),
            command: value["command"].as_str().unwrap_or("unknown").to_owned(),
            issued_by: value["issued_by"].as_str().unwrap_or_default().to_owned(),
            issued_at: value["issued_at"].as_i64().unwrap_or_default(),
            outcome: result["outcome"].as_str().map(str::to_owned),
            detail,
        }
    }
}

/// A customer's loss report, as the bank took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LossReport {
    /// The PIN pad reported lost.
    pub serial: String,
    /// Plain words: what the bank did and what happens next.
    pub message: String,
}

/// A signed command of the bank for a device (PROTOCOL.md §3.4 BankCommand).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum BankCommandKind {
    /// Revoked (lost or stolen): the device wipes its keys and pairings.
    Wipe,
    /// Payment functions locked until the bank unlocks them.
    Lock,
    /// A lock lifted.
    Unlock,
    /// The device forgets every paired computer (a lost PC).
    ForgetHosts,
    /// The session keys dropped (logout).
    EndSession,
}

impl BankCommandKind {
    /// The bank's name for it (`wipe`, `forget_hosts`, ...); `None`: not a command this app
    /// knows (the device still checks and obeys or refuses it).
    pub fn from_bank(name: &str) -> Option<Self> {
        Some(match name {
            "wipe" => Self::Wipe,
            "lock" => Self::Lock,
            "unlock" => Self::Unlock,
            "forget_hosts" => Self::ForgetHosts,
            "end_session" => Self::EndSession,
            _ => return None,
        })
    }

    /// The command on the wire.
    pub fn wire(self) -> firmware_protocol::message::BankCommandKind {
        use firmware_protocol::message::BankCommandKind as Wire;
        match self {
            Self::Wipe => Wire::Wipe,
            Self::Lock => Wire::Lock,
            Self::Unlock => Wire::Unlock,
            Self::ForgetHosts => Wire::ForgetHosts,
            Self::EndSession => Wire::EndSession,
        }
    }
}

/// `logout`'s result: whether each end dropped the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LogoutResult {
    /// The bank revoked the session token.
    pub bank_ended: bool,
    /// The device dropped its session keys (it said so in its status).
    pub device_cleared: bool,
    /// Plain words: what ended where, and what did not.
    pub message: String,
}
