//! The one error the app's operations fail with: a kind (decided where the error was born) and
//! plain words. Serialises as `{ "kind": "<lowerCamelCase>", "message": "..." }`, the app's
//! contract (ui/README.md, "Errors"); the CLI prints the same kind as its `--json` code.

use serde::Serialize;

use crate::error::ErrorKind;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[error("{}: {message}", kind.words())]
pub struct AppError {
    /// What kind of failure (the screens explain each kind in plain words).
    pub kind: ErrorKind,
    /// The details, shown under "Details".
    pub message: String,
    /// For a payment that failed: whether the bank recorded it as paid (`false`: nothing was
    /// paid). Absent where no payment was under way, so the screens never guess.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub paid: Option<bool>,
}

impl AppError {
    /// An error of `kind` with these words.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
            paid: None,
        }
    }

    /// The same error, saying whether the payment under way was paid.
    pub fn with_paid(mut self, paid: bool) -> Self {
        self.paid = Some(paid);
        self
    }

    /// The contract's name for the kind (`deviceNotFound`, ...).
    pub fn kind(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// The kinds as constructors: `AppError::InvalidInput("...")` reads as the contract does.
macro_rules! constructors {
    ($($name:ident),* $(,)?) => {
        #[allow(non_snake_case, missing_docs)]
        impl AppError {
            $(pub fn $name(message: impl Into<String>) -> Self {
                AppError::new(ErrorKind::$name, message)
            })*
        }
    };
}

constructors!(
    DeviceNotFound,
    DeviceDisconnected,
    DeviceBusy,
    Timeout,
    UserCancelled,
    UserTooSlow,
    Tampered,
    Locked,
    Revoked,
    NotPaired,
    NotInitialised,
    NotEnrolled,
    NotBound,
    PairingFailed,
    KeyCheckFailed,
    IntegrityFailed,
    CorruptFrame,
    BankUnreachable,
    BankRejected,
    NotLoggedIn,
    StaffAuthRequired,
    StaffAuthFailed,
    StaffNotAllowed,
    InvalidInput,
    NotFound,
    Internal,
    NoBankProfile,
);

impl From<crate::session::SessionError> for AppError {
    fn from(error: crate::session::SessionError) -> Self {
        AppError::new(error.kind(), error.to_string())
    }
}

impl From<crate::bank::BankError> for AppError {
    fn from(error: crate::bank::BankError) -> Self {
        AppError::new(error.kind(), error.to_string())
    }
}

impl From<crate::flows::FlowError> for AppError {
    fn from(error: crate::flows::FlowError) -> Self {
        AppError::new(error.kind(), error.to_string())
    }
}

impl From<crate::devices::DeviceError> for AppError {
    fn from(error: crate::devices::DeviceError) -> Self {
        AppError::new(error.kind(), error.to_string())
    }
}

impl From<crate::keystore::KeyStoreError> for AppError {
    fn from(error: crate::keystore::KeyStoreError) -> Self {
        AppError::new(error.kind(), format!("pairing key store: {error}"))
    }
}

impl From<crate::input::InputError> for AppError {
    fn from(error: crate::input::InputError) -> Self {
        AppError::InvalidInput(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_kind_and_message_only() {
        let json =
            serde_json::to_value(AppError::DeviceNotFound("sim:127.0.0.1:1")).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"kind": "deviceNotFound", "message": "sim:127.0.0.1:1"})
        );
    }

    #[test]
    fn bank_refusals_are_classified_by_their_code_not_their_words() {
        let refused = |status: u16, code: &str, message: &str| crate::bank::BankError::Refused {
            status,
            code: code.into(),
            message: message.into(),
            details: serde_json::Value::Null,
        };
        let revoked = AppError::from(refused(403, "device_revoked", "whatever the bank says"));
        assert_eq!(revoked.kind, ErrorKind::Revoked);
        // The words alone never decide: a message naming revocation under another code.
        let other = AppError::from(refused(409, "conflict", "device_revoked"));
        assert_eq!(other.kind, ErrorKind::BankRejected);
        assert_eq!(
            AppError::from(refused(401, "unauthorised", "")).kind,
            ErrorKind::NotLoggedIn
        );
    }
}
