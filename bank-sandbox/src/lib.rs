//! The PinBridge sandbox bank: the online bank, its HSM and its database on the other end
//! of the relay. See README.md beside this crate for the API, the formats it decides and how
//! to run it.

pub mod api;
pub mod bank;
pub mod certificate;
mod credits;
pub mod error;
pub mod hsm;
pub mod store;
pub mod throttle;
pub mod util;

pub use bank::{Bank, BankConfig};
pub use error::{BankError, BankResult};
pub mod load;
pub mod seed;
pub mod server;
pub mod tls;
