//! The Devices screen's view of the companion's [`DeviceManager`]: `DeviceStatus` as the
//! contract shapes it, and the background watch that pushes the list to subscribers.

use companion::devices::{DeviceEvent, DeviceInfo, DeviceManager, DeviceState};
use companion::transport::TransportKind;
use serde::Serialize;

use crate::error::AppError;

/// The transport, as the screens name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TransportName {
    /// USB.
    Usb,
    /// Bluetooth LE.
    Ble,
    /// A software PIN pad (`pinpad-sim`, or one running inside the app).
    Sim,
}

/// Where the device is in its life, as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Lifecycle {
    /// Made, no bank keys.
    Manufactured,
    /// Bank keys installed.
    Initialised,
    /// Bound to a customer.
    Bound,
    /// Revoked by the bank.
    Revoked,
}

/// The tamper flag, as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TamperState {
    /// No tamper event.
    Clear,
    /// Tampered: refuses everything until an operator reset.
    Tampered,
}

/// The lock, as the device reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LockState {
    /// Usable.
    Unlocked,
    /// Locked until the bank unlocks it.
    Locked,
}

/// The device's security light, mirrored as the device reports it; the app never sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Indicator {
    /// Dark.
    Off,
    /// Steady green.
    Safe,
    /// Blinking red.
    Danger,
}

/// Firmware identity as the device reports (and signs) it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Firmware {
    /// Version text.
    pub version: String,
    /// Hex SHA-256 of the image.
    pub hash: String,
}

/// One device on the Devices screen (`DeviceStatus` in ui/src/api/types.ts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatus {
    /// `usb:1-4.2`, `sim:127.0.0.1:7001`: the id commands take.
    pub device_id: String,
    /// Display name.
    pub name: String,
    /// Transport.
    pub transport: TransportName,
    /// Serial number; empty until the device has told it.
    pub serial: String,
    /// This app has a session open to it.
    pub connected: bool,
    /// As reported by the device.
    pub lifecycle: Lifecycle,
    /// As reported by the device.
    pub tamper: TamperState,
    /// As reported by the device.
    pub lock: LockState,
    /// As reported by the device.
    pub indicator: Indicator,
    /// This app holds a pairing key for it.
    pub paired: bool,
    /// The customer it is bound to at the bank.
    pub customer_id: Option<String>,
    /// As reported by the device.
    pub firmware: Firmware,
    /// A software PIN pad whose keypad QA can drive.
    pub mock: bool,
}

impl DeviceStatus {
    /// The status of a listed device that this app has no session with.
    ///
    /// The manager knows only what the transport tells before any message is exchanged
    /// (address, USB serial and product name, BLE local name). What only the device can say
    /// (lifecycle, tamper, lock, indicator, firmware) is learnt when a session is opened
    /// (`device_connect`, still to come); until then those fields hold their neutral values
    /// and `connected` is false, which the screens show as "not connected" rather than safe.
    pub fn from_listing(device: &DeviceInfo) -> Self {
        let id = device.id();
        let transport = match id.kind {
            TransportKind::Usb => TransportName::Usb,
            TransportKind::Ble => TransportName::Ble,
            TransportKind::Sim | TransportKind::InProcess => TransportName::Sim,
        };
        // Only a PIN pad running inside the app has a keypad the app can press: a `pinpad-sim`
        // process is driven through its own control API, not from here.
        let mock = id.kind == TransportKind::InProcess;
        let name = device.identity.name.clone().unwrap_or_else(|| {
            let what = match transport {
                TransportName::Usb => "USB PIN pad",
                TransportName::Ble => "Bluetooth PIN pad",
                TransportName::Sim => "Simulated PIN pad",
            };
            format!("{what} ({})", id.address)
        });
        DeviceStatus {
            device_id: id.to_string(),
            name,
            transport,
            serial: device.identity.serial.clone().unwrap_or_default(),
            connected: false,
            lifecycle: Lifecycle::Manufactured,
            tamper: TamperState::Clear,
            lock: LockState::Unlocked,
            indicator: Indicator::Off,
            paired: false,
            customer_id: None,
            firmware: Firmware {
                version: String::new(),
                hash: String::new(),
            },
            mock,
        }
    }
}

/// Every listed device, as the screens show it. Devices that are configured but do not answer
/// (a simulator address with nothing listening) are left out: there is nothing to use.
pub fn statuses(devices: &[DeviceInfo]) -> Vec<DeviceStatus> {
    devices
        .iter()
        .filter(|d| d.state != DeviceState::Unreachable)
        .map(DeviceStatus::from_listing)
        .collect()
}

/// Rescans and lists.
pub async fn list(manager: &DeviceManager) -> Vec<DeviceStatus> {
    statuses(&manager.refresh().await)
}

/// Rescans and returns one device's status.
pub async fn status(manager: &DeviceManager, device_id: &str) -> Result<DeviceStatus, AppError> {
    list(manager)
        .await
        .into_iter()
        .find(|d| d.device_id == device_id)
        .ok_or_else(|| AppError::DeviceNotFound(format!("no PIN pad {device_id} is listed")))
}

/// Words for the log about one manager event.
pub fn describe(event: &DeviceEvent) -> String {
    match event {
        DeviceEvent::Arrived(device) => format!("PIN pad found: {device}"),
        DeviceEvent::Left(id) => format!("PIN pad gone: {id}"),
        DeviceEvent::Changed(device) => format!("PIN pad changed: {device}"),
        DeviceEvent::SourceFailed { kind, message } => {
            format!("could not look for {kind} PIN pads: {message}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use companion::transport::DeviceIdentity;

    #[test]
    fn a_listed_sim_device_has_the_contract_shape() {
        let device = DeviceInfo::new(
            DeviceIdentity::new(TransportKind::Sim, "127.0.0.1:7001"),
            DeviceState::Available,
        );
        let json = serde_json::to_value(DeviceStatus::from_listing(&device)).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({
                "deviceId": "sim:127.0.0.1:7001",
                "name": "Simulated PIN pad (127.0.0.1:7001)",
                "transport": "sim",
                "serial": "",
                "connected": false,
                "lifecycle": "manufactured",
                "tamper": "clear",
                "lock": "unlocked",
                "indicator": "off",
                "paired": false,
                "customerId": null,
                "firmware": {"version": "", "hash": ""},
                "mock": false,
            })
        );
    }

    #[test]
    fn usb_devices_keep_their_serial_and_name_and_are_not_mock() {
        let mut identity = DeviceIdentity::new(TransportKind::Usb, "1-4.2");
        identity.serial = Some("PB-0042".into());
        identity.name = Some("PinBridge PIN pad".into());
        let status = DeviceStatus::from_listing(&DeviceInfo::new(identity, DeviceState::InUse));
        assert_eq!(status.device_id, "usb:1-4.2");
        assert_eq!(status.serial, "PB-0042");
        assert_eq!(status.name, "PinBridge PIN pad");
        assert_eq!(status.transport, TransportName::Usb);
        assert!(!status.mock);
    }

    #[test]
    fn unreachable_simulators_are_not_listed() {
        let at = |port: u16, state| {
            DeviceInfo::new(
                DeviceIdentity::new(TransportKind::Sim, format!("127.0.0.1:{port}")),
                state,
            )
        };
        let listed = statuses(&[
            at(1, DeviceState::Available),
            at(2, DeviceState::Unreachable),
        ]);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].device_id, "sim:127.0.0.1:1");
    }
}
