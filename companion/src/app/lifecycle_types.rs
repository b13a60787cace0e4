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
