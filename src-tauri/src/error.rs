//! The one error type every command rejects with: `{ kind, message }` (ui/README.md,
//! "Errors"). It is the app core's: kinds are decided where errors are born (the bank client
//! by the bank's error code, the device session by the device's status code), so the CLI and
//! the app report the same kinds.

pub use companion::app::AppError;
pub use companion::error::ErrorKind;
