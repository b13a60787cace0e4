//! The one error the app's operations fail with: a kind (decided where the error was born), a
//! finer code where one is known, and plain words. Serialises as `{ "kind": "<lowerCamelCase>",
//! "code": "...", "message": "..." }` (`code` only when known), the app's contract (ui/README.md,
//! "Errors"); the CLI prints the same kind as its `--json` code. The screens word the kind and
//! the code in the app's language; `message` is the technical detail (English) for support.

use serde::Serialize;

use crate::error::ErrorKind;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[error("{}: {message}", kind.words())]
pub struct AppError {
    /// What kind of failure (the screens explain each kind in plain words).
    pub kind: ErrorKind,
    /// A finer, stable code for what happened, from the typed error where it was born: the
    /// PIN pad's refusal (`device.PinPolicy`), the bank's (`bank.pin_locked`), the input's
    /// (`input.invalid_amount`). The screens word it in the app's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub code: Option<String>,
    /// The technical details (English, for support), shown under "Details".
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
            code: None,
            message: message.into(),
            paid: None,
        }
    }

    /// The same error with a finer code.
    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
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

/// The code of a PIN pad's refusal: its status code's name.
fn device_code(error: &crate::session::SessionError) -> Option<String> {
    error.status().map(|status| format!("device.{status:?}"))
}

/// The code of a bank's refusal: the bank's own code.
fn bank_code(error: &crate::bank::BankError) -> Option<String> {
    error.code().map(|code| format!("bank.{code}"))
}

impl From<crate::session::SessionError> for AppError {
    fn from(error: crate::session::SessionError) -> Self {
        AppError::new(error.kind(), error.to_string()).with_code(device_code(&error))
    }
}

impl From<crate::bank::BankError> for AppError {
    fn from(error: crate::bank::BankError) -> Self {
        AppError::new(error.kind(), error.to_string()).with_code(bank_code(&error))
    }
}

impl From<crate::flows::FlowError> for AppError {
    fn from(error: crate::flows::FlowError) -> Self {
        let code = match &error {
            crate::flows::FlowError::Device(device) => device_code(device),
            crate::flows::FlowError::Bank(bank) => bank_code(bank),
            crate::flows::FlowError::Tampered => Some("device.Tampered".into()),
            _ => None,
        };
        AppError::new(error.kind(), error.to_string()).with_code(code)
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
        AppError::InvalidInput(error.to_string()).with_code(Some(format!("input.{}", error.code())))
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

    #[test]
    fn errors_carry_a_typed_code_for_the_screens_to_word() {
        let bank = AppError::from(crate::bank::BankError::Refused {
            status: 423,
            code: "pin_locked".into(),
            message: "too many wrong PINs".into(),
            details: serde_json::Value::Null,
        });
        assert_eq!(bank.code.as_deref(), Some("bank.pin_locked"));
        let device = AppError::from(crate::flows::FlowError::Device(
            crate::session::SessionError::Refused {
                request: "Enrol",
                status: firmware_protocol::message::StatusCode::PinPolicy,
                indicator: firmware_protocol::message::Indicator::Off,
                detail: "PIN must have 4-6 digits".into(),
            },
        ));
        assert_eq!(device.code.as_deref(), Some("device.PinPolicy"));
        let json = serde_json::to_value(&device).unwrap_or_default();
        assert_eq!(json["code"], "device.PinPolicy");
        let input = AppError::from(crate::input::parse_payee_name("").unwrap_err());
        assert_eq!(input.code.as_deref(), Some("input.invalid_payee_name"));
    }
}
