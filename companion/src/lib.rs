//! Everything the PinBridge desktop app does, without a window: the `pinbridge` CLI and the
//! desktop shell are thin layers over this crate.

pub mod crypto_tool;
pub mod demo;
pub mod devices;
pub mod session;
pub mod transport;
