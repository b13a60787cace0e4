//! What kind of failure an error is, decided where the error is born (the bank client, the
//! device session, the flows, the device manager) and shared by the desktop app and the CLI:
//! the app's `{ kind, message }` rejections and the CLI's `--json` error codes use these names.

use serde::{Deserialize, Serialize};

/// Why an operation failed, as the screens and scripts tell failures apart. Serialised in
/// lowerCamelCase (`deviceNotFound`): the app's IPC contract (ui/README.md, "Errors").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// No device with that id is listed.
    DeviceNotFound,
    /// The device went away during the operation.
    DeviceDisconnected,
    /// Another program or session is using the device.
    DeviceBusy,
    /// The device or the bank did not answer in time.
    Timeout,
    /// The user cancelled on the device or in the app.
    UserCancelled,
    /// The device gave up waiting for a key press.
    UserTooSlow,
    /// The device reports a tamper event.
    Tampered,
    /// The device is locked until the bank unlocks it.
    Locked,
    /// The bank revoked the device.
    Revoked,
    /// This computer holds no pairing key for the device.
    NotPaired,
    /// The device has no bank keys yet.
    NotInitialised,
    /// No PIN enrolled for the customer.
    NotEnrolled,
    /// The device is not bound to a customer.
    NotBound,
    /// Pairing did not complete.
    PairingFailed,
    /// A key's check value did not match.
    KeyCheckFailed,
    /// The bank refused the firmware or app build.
    IntegrityFailed,
    /// A damaged frame from the device.
    CorruptFrame,
    /// The bank could not be reached.
    BankUnreachable,
    /// The bank said no.
    BankRejected,
    /// The operation needs a customer session.
    NotLoggedIn,
    /// The operation needs staff sign-in.
    StaffAuthRequired,
    /// Staff credentials were wrong.
    StaffAuthFailed,
    /// The signed-in staff role may not do this.
    StaffNotAllowed,
    /// An argument is malformed or out of range.
    InvalidInput,
    /// The thing asked for does not exist.
    NotFound,
    /// A fault in the program itself (files, tasks).
    Internal,
    /// The production build has no bank profile (or an invalid one): no flow can reach a bank.
    NoBankProfile,
}

impl ErrorKind {
    /// Every kind, in the contract's order.
    pub const ALL: [ErrorKind; 27] = [
        ErrorKind::DeviceNotFound,
        ErrorKind::DeviceDisconnected,
        ErrorKind::DeviceBusy,
        ErrorKind::Timeout,
        ErrorKind::UserCancelled,
        ErrorKind::UserTooSlow,
        ErrorKind::Tampered,
        ErrorKind::Locked,
        ErrorKind::Revoked,
        ErrorKind::NotPaired,
        ErrorKind::NotInitialised,
        ErrorKind::NotEnrolled,
        ErrorKind::NotBound,
        ErrorKind::PairingFailed,
        ErrorKind::KeyCheckFailed,
        ErrorKind::IntegrityFailed,
        ErrorKind::CorruptFrame,
        ErrorKind::BankUnreachable,
        ErrorKind::BankRejected,
        ErrorKind::NotLoggedIn,
        ErrorKind::StaffAuthRequired,
        ErrorKind::StaffAuthFailed,
        ErrorKind::StaffNotAllowed,
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::Internal,
        ErrorKind::NoBankProfile,
    ];

    /// The contract's name (`deviceNotFound`), also the CLI's `--json` error code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::DeviceNotFound => "deviceNotFound",
            ErrorKind::DeviceDisconnected => "deviceDisconnected",
            ErrorKind::DeviceBusy => "deviceBusy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::UserCancelled => "userCancelled",
            ErrorKind::UserTooSlow => "userTooSlow",
            ErrorKind::Tampered => "tampered",
            ErrorKind::Locked => "locked",
            ErrorKind::Revoked => "revoked",
            ErrorKind::NotPaired => "notPaired",
            ErrorKind::NotInitialised => "notInitialised",
            ErrorKind::NotEnrolled => "notEnrolled",
            ErrorKind::NotBound => "notBound",
            ErrorKind::PairingFailed => "pairingFailed",
            ErrorKind::KeyCheckFailed => "keyCheckFailed",
            ErrorKind::IntegrityFailed => "integrityFailed",
            ErrorKind::CorruptFrame => "corruptFrame",
            ErrorKind::BankUnreachable => "bankUnreachable",
            ErrorKind::BankRejected => "bankRejected",
            ErrorKind::NotLoggedIn => "notLoggedIn",
            ErrorKind::StaffAuthRequired => "staffAuthRequired",
            ErrorKind::StaffAuthFailed => "staffAuthFailed",
            ErrorKind::StaffNotAllowed => "staffNotAllowed",
            ErrorKind::InvalidInput => "invalidInput",
            ErrorKind::NotFound => "notFound",
            ErrorKind::Internal => "internal",
            ErrorKind::NoBankProfile => "noBankProfile",
        }
    }

    /// A few words for the kind, the start of an error's text.
    pub fn words(self) -> &'static str {
        match self {
            ErrorKind::DeviceNotFound => "device not found",
            ErrorKind::DeviceDisconnected => "device disconnected",
            ErrorKind::DeviceBusy => "device busy",
            ErrorKind::Timeout => "timed out",
            ErrorKind::UserCancelled => "cancelled",
            ErrorKind::UserTooSlow => "too slow",
            ErrorKind::Tampered => "tampered",
            ErrorKind::Locked => "locked",
            ErrorKind::Revoked => "revoked",
            ErrorKind::NotPaired => "not paired",
            ErrorKind::NotInitialised => "not initialised",
            ErrorKind::NotEnrolled => "not enrolled",
            ErrorKind::NotBound => "not bound",
            ErrorKind::PairingFailed => "pairing failed",
            ErrorKind::KeyCheckFailed => "key check failed",
            ErrorKind::IntegrityFailed => "integrity check failed",
            ErrorKind::CorruptFrame => "corrupt frame",
            ErrorKind::BankUnreachable => "bank unreachable",
            ErrorKind::BankRejected => "bank rejected",
            ErrorKind::NotLoggedIn => "not logged in",
            ErrorKind::StaffAuthRequired => "staff sign-in required",
            ErrorKind::StaffAuthFailed => "staff sign-in failed",
            ErrorKind::StaffNotAllowed => "not allowed for this staff role",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::NotFound => "not found",
            ErrorKind::Internal => "internal error",
            ErrorKind::NoBankProfile => "no bank profile",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_serialises_under_its_contract_name_in_the_contracts_order() {
        // ui/README.md's list, in its order.
        let contract = "deviceNotFound deviceDisconnected deviceBusy timeout userCancelled \
            userTooSlow tampered locked revoked notPaired notInitialised notEnrolled notBound \
            pairingFailed keyCheckFailed integrityFailed corruptFrame bankUnreachable \
            bankRejected notLoggedIn staffAuthRequired staffAuthFailed staffNotAllowed \
            invalidInput notFound internal noBankProfile";
        let names: Vec<String> = ErrorKind::ALL
            .iter()
            .map(|kind| {
                let json = serde_json::to_value(kind).unwrap_or_default();
                assert_eq!(json, kind.as_str());
                kind.as_str().to_owned()
            })
            .collect();
        assert_eq!(
            names.join(" "),
            contract.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
