//! The one error type every command rejects with: `{ kind, message }` (ui/README.md, "Errors").

use serde::Serialize;

/// Why a command failed. Serialises as `{"kind": "<lowerCamelCase variant>", "message": "..."}`;
/// the screens explain each kind in plain words and show `message` under "Details".
///
/// The kinds are the contract's whole list, so the flows still to come (pairing, login,
/// payment, staff, QA) report through the same type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum AppError {
    /// No device with that id is listed.
    #[error("device not found: {0}")]
    DeviceNotFound(String),
    /// The device went away during the operation.
    #[error("device disconnected: {0}")]
    DeviceDisconnected(String),
    /// Another program or session is using the device.
    #[error("device busy: {0}")]
    DeviceBusy(String),
    /// The device or the bank did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The user cancelled on the device or in the app.
    #[error("cancelled: {0}")]
    UserCancelled(String),
    /// The device gave up waiting for a key press.
    #[error("too slow: {0}")]
    UserTooSlow(String),
    /// The device reports a tamper event.
    #[error("tampered: {0}")]
    Tampered(String),
    /// The device is locked until the bank unlocks it.
    #[error("locked: {0}")]
    Locked(String),
    /// The bank revoked the device.
    #[error("revoked: {0}")]
    Revoked(String),
    /// This app holds no pairing key for the device.
    #[error("not paired: {0}")]
    NotPaired(String),
    /// The device has no bank keys yet.
    #[error("not initialised: {0}")]
    NotInitialised(String),
    /// No PIN enrolled for the customer.
    #[error("not enrolled: {0}")]
    NotEnrolled(String),
    /// The device is not bound to a customer.
    #[error("not bound: {0}")]
    NotBound(String),
    /// Pairing did not complete.
    #[error("pairing failed: {0}")]
    PairingFailed(String),
    /// A key's check value did not match.
    #[error("key check failed: {0}")]
    KeyCheckFailed(String),
    /// The bank refused the firmware or app build.
    #[error("integrity check failed: {0}")]
    IntegrityFailed(String),
    /// A damaged frame from the device.
    #[error("corrupt frame: {0}")]
    CorruptFrame(String),
    /// The bank could not be reached.
    #[error("bank unreachable: {0}")]
    BankUnreachable(String),
    /// The bank said no.
    #[error("bank rejected: {0}")]
    BankRejected(String),
    /// The operation needs a customer session.
    #[error("not logged in: {0}")]
    NotLoggedIn(String),
    /// The operation needs staff sign-in.
    #[error("staff sign-in required: {0}")]
    StaffAuthRequired(String),
    /// Staff credentials were wrong.
    #[error("staff sign-in failed: {0}")]
    StaffAuthFailed(String),
    /// The signed-in staff role may not do this.
    #[error("not allowed for this staff role: {0}")]
    StaffNotAllowed(String),
    /// An argument is malformed or out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A fault in the app itself (files, tasks).
    #[error("internal error: {0}")]
    Internal(String),
    /// The production build has no bank profile (or an invalid one): no flow can reach a bank.
    #[error("no bank profile: {0}")]
    NoBankProfile(String),
}

impl AppError {
    /// The contract's name for this kind (`deviceNotFound`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::DeviceNotFound(_) => "deviceNotFound",
            AppError::DeviceDisconnected(_) => "deviceDisconnected",
            AppError::DeviceBusy(_) => "deviceBusy",
            AppError::Timeout(_) => "timeout",
            AppError::UserCancelled(_) => "userCancelled",
            AppError::UserTooSlow(_) => "userTooSlow",
            AppError::Tampered(_) => "tampered",
            AppError::Locked(_) => "locked",
            AppError::Revoked(_) => "revoked",
            AppError::NotPaired(_) => "notPaired",
            AppError::NotInitialised(_) => "notInitialised",
            AppError::NotEnrolled(_) => "notEnrolled",
            AppError::NotBound(_) => "notBound",
            AppError::PairingFailed(_) => "pairingFailed",
            AppError::KeyCheckFailed(_) => "keyCheckFailed",
            AppError::IntegrityFailed(_) => "integrityFailed",
            AppError::CorruptFrame(_) => "corruptFrame",
            AppError::BankUnreachable(_) => "bankUnreachable",
            AppError::BankRejected(_) => "bankRejected",
            AppError::NotLoggedIn(_) => "notLoggedIn",
            AppError::StaffAuthRequired(_) => "staffAuthRequired",
            AppError::StaffAuthFailed(_) => "staffAuthFailed",
            AppError::StaffNotAllowed(_) => "staffNotAllowed",
            AppError::InvalidInput(_) => "invalidInput",
            AppError::NotFound(_) => "notFound",
            AppError::Internal(_) => "internal",
            AppError::NoBankProfile(_) => "noBankProfile",
        }
    }
}

impl From<companion::session::SessionError> for AppError {
    fn from(error: companion::session::SessionError) -> Self {
        use companion::session::SessionError as E;
        use firmware_protocol::message::StatusCode as S;
        let words = error.to_string();
        match &error {
            _ if error.is_disconnect() => AppError::DeviceDisconnected(words),
            E::NoAnswer { .. } | E::DeviceSilent { .. } | E::RequestTimeout { .. } => {
                AppError::Timeout(words)
            }
            E::DeliveryFailed { .. } => AppError::DeviceDisconnected(words),
            E::Cancelled { .. } => AppError::UserCancelled(words),
            E::DeviceBusy { .. } => AppError::DeviceBusy(words),
            E::LinkRefused { .. } | E::MalformedAnswer { .. } | E::ChannelLost => {
                AppError::CorruptFrame(words)
            }
            E::Refused { status, .. } => match status {
                S::Busy => AppError::DeviceBusy(words),
                S::HostCancelled | S::UserCancelled => AppError::UserCancelled(words),
                S::UserTimeout => AppError::UserTooSlow(words),
                S::Tampered => AppError::Tampered(words),
                S::Locked | S::LockedByBank => AppError::Locked(words),
                S::NotInitialised => AppError::NotInitialised(words),
                S::NotBound => AppError::NotBound(words),
                S::Revoked => AppError::Revoked(words),
                S::IntegrityFailure => AppError::IntegrityFailed(words),
                S::NotPaired | S::UnknownHost | S::BadHostMac => AppError::NotPaired(words),
                S::PairingCodeMismatch | S::PairingConfirmationFailed | S::PairingTableFull => {
                    AppError::PairingFailed(words)
                }
                S::KeyBlockRejected
                | S::WrongKeyUsage
                | S::KcvMismatch
                | S::KeysNotDistinct
                | S::UnsupportedKeyAlgorithm => AppError::KeyCheckFailed(words),
                S::MalformedMessage | S::BadEnvelope => AppError::CorruptFrame(words),
                S::PinMismatch | S::PinPolicy | S::WrongState => AppError::InvalidInput(words),
                S::BadBankMac
                | S::BadSignature
                | S::StaleBankCounter
                | S::SessionMismatch
                | S::TransactionMismatch
                | S::NoSession
                | S::WrongDevice => AppError::BankRejected(words),
                _ => AppError::Internal(words),
            },
            _ => AppError::Internal(words),
        }
    }
}

impl From<companion::bank::BankError> for AppError {
    fn from(error: companion::bank::BankError) -> Self {
        use companion::bank::BankError as E;
        let words = error.to_string();
        match &error {
            E::BadUrl { .. }
            | E::InsecureUrl { .. }
            | E::MissingCa { .. }
            | E::BadCa(_)
            | E::Client(_)
            | E::UntrustedCertificate { .. }
            | E::Redirected { .. }
            | E::Unreachable { .. } => AppError::BankUnreachable(words),
            E::Refused { status, code, .. } => match (status, code.as_str()) {
                (_, "device_revoked") => AppError::Revoked(words),
                (_, "device_locked" | "device_locked_inactivity" | "pin_locked") => {
                    AppError::Locked(words)
                }
                (_, "device_not_bound") => AppError::NotBound(words),
                (
                    _,
                    "device_not_trusted"
                    | "integrity_report_invalid"
                    | "firmware_hash_not_allowed"
                    | "app_hash_not_allowed"
                    | "firmware_and_app_hash_not_allowed",
                ) => AppError::IntegrityFailed(words),
                (_, "kcv_mismatch") => AppError::KeyCheckFailed(words),
                (_, "invalid_request") => AppError::InvalidInput(words),
                (401, _) => AppError::NotLoggedIn(words),
                (403, _) => AppError::StaffNotAllowed(words),
                (404, _) => AppError::NotFound(words),
                _ => AppError::BankRejected(words),
            },
            E::BadAnswer { .. } => AppError::BankRejected(words),
        }
    }
}

impl From<companion::flows::FlowError> for AppError {
    fn from(error: companion::flows::FlowError) -> Self {
        use companion::flows::FlowError as E;
        match error {
            E::Bank(error) => error.into(),
            E::Device(error) => error.into(),
            E::Tampered => AppError::Tampered(E::Tampered.to_string()),
            E::NotPaired => AppError::NotPaired(E::NotPaired.to_string()),
            error @ E::Pairing(_) => AppError::PairingFailed(error.to_string()),
            error @ (E::BadBankMessage { .. } | E::MissingField(_)) => {
                AppError::BankRejected(error.to_string())
            }
            error @ E::UnexpectedAnswer { .. } => AppError::CorruptFrame(error.to_string()),
            error @ E::Encode { .. } => AppError::Internal(error.to_string()),
        }
    }
}

impl From<companion::keystore::KeyStoreError> for AppError {
    fn from(error: companion::keystore::KeyStoreError) -> Self {
        AppError::Internal(format!("pairing key store: {error}"))
    }
}

impl From<companion::devices::DeviceError> for AppError {
    fn from(error: companion::devices::DeviceError) -> Self {
        use companion::devices::DeviceError as E;
        match &error {
            E::NotFound { .. } => AppError::DeviceNotFound(error.to_string()),
            _ => AppError::DeviceDisconnected(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_kind_and_message_only() {
        let json = serde_json::to_value(AppError::DeviceNotFound("sim:127.0.0.1:1".into()))
            .expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({"kind": "deviceNotFound", "message": "sim:127.0.0.1:1"})
        );
    }

    #[test]
    fn every_kind_in_the_contract_serialises_under_its_contract_name() {
        // ui/README.md's list, in its order.
        let contract = "deviceNotFound deviceDisconnected deviceBusy timeout userCancelled \
            userTooSlow tampered locked revoked notPaired notInitialised notEnrolled notBound \
            pairingFailed keyCheckFailed integrityFailed corruptFrame bankUnreachable \
            bankRejected notLoggedIn staffAuthRequired staffAuthFailed staffNotAllowed \
            invalidInput notFound internal noBankProfile";
        let m = String::new;
        let all = [
            AppError::DeviceNotFound(m()),
            AppError::DeviceDisconnected(m()),
            AppError::DeviceBusy(m()),
            AppError::Timeout(m()),
            AppError::UserCancelled(m()),
            AppError::UserTooSlow(m()),
            AppError::Tampered(m()),
            AppError::Locked(m()),
            AppError::Revoked(m()),
            AppError::NotPaired(m()),
            AppError::NotInitialised(m()),
            AppError::NotEnrolled(m()),
            AppError::NotBound(m()),
            AppError::PairingFailed(m()),
            AppError::KeyCheckFailed(m()),
            AppError::IntegrityFailed(m()),
            AppError::CorruptFrame(m()),
            AppError::BankUnreachable(m()),
            AppError::BankRejected(m()),
            AppError::NotLoggedIn(m()),
            AppError::StaffAuthRequired(m()),
            AppError::StaffAuthFailed(m()),
            AppError::StaffNotAllowed(m()),
            AppError::InvalidInput(m()),
            AppError::NotFound(m()),
            AppError::Internal(m()),
            AppError::NoBankProfile(m()),
        ];
        let serialised: Vec<String> = all
            .iter()
            .map(|e| {
                let v = serde_json::to_value(e).expect("serialise");
                assert_eq!(v["kind"], e.kind());
                e.kind().to_owned()
            })
            .collect();
        assert_eq!(
            serialised.join(" "),
            contract.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
