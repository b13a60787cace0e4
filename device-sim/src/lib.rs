//! The PinBridge PIN pad in software: what QA, tests and demos run instead of hardware.
//!
//! - [`device`]: the device core, a pure state machine ([`device::Device::handle`] takes
//!   request bytes and a [`hardware::Hardware`], answers response bytes or a pending state).
//! - [`hardware`]: the hardware trait and [`hardware::VirtualHardware`] (seeded RNG, virtual
//!   clock, keypad queue, display, indicator, tamper switch, secure store).
//! - [`certificate`]: the issuing CA and the device certificate.
//!
//! See `README.md` beside this crate for the command line, the control API and the protocol
//! decisions this simulator makes where PROTOCOL.md is silent.

pub mod certificate;
pub mod device;
pub mod hardware;
