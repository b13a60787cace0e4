//! The PinBridge PIN pad in software: what QA, tests and demos run instead of hardware.
//!
//! - [`device`]: the device core, a pure state machine ([`device::Device::handle`] takes
//!   request bytes and a [`hardware::Hardware`], answers response bytes or a pending state).
//! - [`hardware`]: the hardware trait and [`hardware::VirtualHardware`] (seeded RNG, virtual
//!   clock, keypad queue, display, indicator, tamper switch, secure store).
//! - [`certificate`]: the issuing CA and the device certificate.
//! - [`link`]: the device end of the link layer (channels, reassembly, acknowledged delivery,
//!   keepalive, cancel), still without I/O.
//! - [`sim`]: one simulated device behind a lock, fault injection, and [`sim::SimHandle`]
//!   (in-process control for Rust tests).
//! - [`server`]: the TCP adapter (64-byte packets back to back); [`control`]: the loopback
//!   HTTP/JSON control API; [`scenario`]: TOML scripts; [`scripted`]: a scripted customer
//!   at the keypad.
//! - `usb_gadget` (Linux): the same device as a real USB device (configfs + FunctionFS);
//!   `ble_peripheral` (Linux): as a Bluetooth LE peripheral (BlueZ over D-Bus).
//!
//! See `README.md` beside this crate for the command line, the control API and the protocol
//! decisions this simulator makes where PROTOCOL.md is silent.

#[cfg(target_os = "linux")]
pub mod ble_peripheral;
pub mod certificate;
pub mod client;
pub mod control;
pub mod device;
pub mod hardware;
pub mod link;
pub mod nonconforming;
pub mod scenario;
pub mod scripted;
pub mod server;
pub mod sim;
#[cfg(target_os = "linux")]
pub mod usb_gadget;
