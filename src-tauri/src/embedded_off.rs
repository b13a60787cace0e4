//! The production flavour's `embedded` module: no sandbox bank and no mock PIN pads.
//!
//! The production build (no `sandbox` feature) links neither `bank-sandbox` nor `device-sim`.
//! The flows still ask "is this a mock device?" and "is the embedded bank running?"; here the
//! answer is always no, by construction: [`Embedded`] and [`MockDevice`] have no values, so
//! every branch that would use one is unreachable and the compiler proves it.

use std::path::Path;
use std::sync::Arc;

use companion::bank::{BankClient, BankError};

/// The embedded sandbox bank: never exists in this flavour.
#[derive(Debug)]
pub enum Embedded {}

impl Embedded {
    /// Unreachable: there is no embedded bank.
    pub fn run_dir(&self) -> &Path {
        match *self {}
    }

    /// Unreachable: there is no embedded bank.
    pub fn client(&self) -> Result<BankClient, BankError> {
        match *self {}
    }
}

/// A type with no values.
#[derive(Debug)]
enum Never {}

/// An in-process mock PIN pad: never exists in this flavour (it cannot be built).
#[derive(Debug)]
pub struct MockDevice {
    /// Serial.
    pub serial: String,
    /// Display name.
    pub name: String,
    never: Never,
}

impl MockDevice {
    /// Unreachable: there are no mock devices.
    pub fn device_id(&self) -> String {
        match self.never {}
    }
}

/// The mock PIN pads running in this process: always none.
#[derive(Clone, Debug, Default)]
pub struct MockDevices {
    // Built with `Default` like the sandbox flavour's.
    _none: (),
}

impl MockDevices {
    /// No mock devices.
    pub fn all(&self) -> Vec<Arc<MockDevice>> {
        Vec::new()
    }

    /// No mock device has this id.
    pub fn by_id(&self, _device_id: &str) -> Option<Arc<MockDevice>> {
        None
    }
}

/// What a mock device reports about itself (never built in this flavour).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockState {
    /// `manufactured`, `initialised`, `bound`, `revoked`.
    pub lifecycle: &'static str,
    /// The sticky tamper flag.
    pub tampered: bool,
    /// Any lock.
    pub locked: bool,
    /// `off`, `safe`, `danger`.
    pub indicator: &'static str,
    /// Firmware version.
    pub firmware_version: String,
    /// Firmware hash as measured, hex.
    pub firmware_hash: String,
    /// The display.
    pub display: Vec<String>,
    /// The prompt on the display, if any.
    pub prompt_id: Option<u64>,
}

/// Unreachable: there are no mock devices.
pub fn mock_state(device: &MockDevice) -> MockState {
    match device.never {}
}

/// A sandbox staff account (display names for the sandbox's staff IDs); none here.
#[derive(Debug)]
pub struct SandboxStaff {
    /// Staff ID.
    pub staff_id: &'static str,
    /// Display name.
    pub display_name: &'static str,
}

/// No sandbox staff: staff names come from the bank.
pub const SANDBOX_STAFF: &[SandboxStaff] = &[];
