//! The language PinBridge hosts and PIN pads speak.
//!
//! - [`link`]: fixed-size packets per transport MTU, channels, CRC, keepalive, retransmission.
//! - [`message`]: typed, versioned requests and responses with documented byte layouts.
//! - [`crypto`]: PIN blocks, MACs, key check values, TR-31 key blocks, DUKPT.
//!
//! Everything here is pure: no I/O, no clocks, no global RNG. Time and randomness are
//! arguments, so the same code runs in firmware (`no_std` + `alloc`), in the desktop app and
//! in tests. See `PROTOCOL.md` beside this crate for the wire format.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod crypto;
pub mod device_side;
pub mod display;
pub mod lifecycle;
pub mod link;
pub mod message;
