//! Everything the PinBridge desktop app does, without a window: the `pinbridge` CLI and the
//! desktop shell are thin layers over this crate. It never imports the mock device or the
//! sandbox bank: only the binary's demo (feature `embedded`) wires them in.

pub mod app;
pub mod bank;
pub mod conformance;
pub mod crypto_tool;
pub mod devices;
pub mod diagnostics;
pub mod error;
pub mod flows;
pub mod input;
pub mod integrity;
pub mod keystore;
pub mod logfile;
pub mod output;
pub mod private_file;
pub mod redaction;
pub mod session;
pub mod transport;
