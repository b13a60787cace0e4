//! The btleplug side of the BLE transport: adapters, scanning, and [`GattLink`] over a real
//! peripheral (BlueZ on Linux, CoreBluetooth on macOS, WinRT on Windows).

use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{Central, CentralEvent, Characteristic, Manager as _, Peripheral as _};
use btleplug::api::{ScanFilter, WriteType};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::StreamExt;

use super::adapter::{AdapterSummary, choose_adapter};
use super::{BleError, BleOperation, GattEvent, GattEvents, GattLink, SERVICE_UUID};
use crate::transport::{DeviceIdentity, TransportKind};

/// Maps a btleplug error during `operation` on `device`.
pub fn map_btleplug_error(
    error: btleplug::Error,
    operation: BleOperation,
    device: &str,
) -> BleError {
    let device = device.to_owned();
    match error {
        btleplug::Error::PermissionDenied => BleError::PermissionDenied { operation },
        btleplug::Error::DeviceNotFound => BleError::NotFound { wanted: device },
        btleplug::Error::NotConnected => BleError::Disconnected { device },
        btleplug::Error::NoAdapterAvailable => BleError::NoAdapter,
        btleplug::Error::TimedOut(_) => BleError::Timeout { device, operation },
        other => BleError::Backend {
            device,
            operation,
            message: other.to_string(),
        },
    }
}

/// The adapter to scan and connect from: `wanted` by name (`hci1`), or the one
/// [`choose_adapter`] picks (never one that is advertising; an error when several fit).
pub async fn select_adapter(wanted: Option<&str>) -> Result<Adapter, BleError> {
    let map = |e| map_btleplug_error(e, BleOperation::Scan, "Bluetooth");
    let manager = Manager::new().await.map_err(map)?;
    let adapters = manager.adapters().await.map_err(map)?;
    let mut summaries = Vec::with_capacity(adapters.len());
    for adapter in &adapters {
        // BlueZ: "hci0 (usb:v1D6Bp0246d0537)"; other platforms: a name of their own.
        let info = adapter.adapter_info().await.map_err(map)?;
        let name = info
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let advertising = advertising(&name).await;
        summaries.push(AdapterSummary { name, advertising });
    }
    let index = choose_adapter(&summaries, wanted)?;
    tracing::debug!(adapter = %summaries[index].name, ?summaries, "Bluetooth adapter chosen");
    adapters.into_iter().nth(index).ok_or(BleError::NoAdapter)
}

/// Whether BlueZ has advertisements registered on adapter `name` (D-Bus
/// `org.bluez.LEAdvertisingManager1.ActiveInstances`); false where that cannot be asked.
#[cfg(target_os = "linux")]
async fn advertising(name: &str) -> bool {
    use dbus::blocking::Connection;
    use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
    let path = format!("/org/bluez/{name}");
    tokio::task::spawn_blocking(move || {
        let connection = Connection::new_system().ok()?;
        let proxy = connection.with_proxy("org.bluez", path, Duration::from_millis(500));
        proxy
            .get::<u8>("org.bluez.LEAdvertisingManager1", "ActiveInstances")
            .ok()
    })
    .await
    .ok()
    .flatten()
    .is_some_and(|instances| instances > 0)
}

#[cfg(not(target_os = "linux"))]
async fn advertising(_name: &str) -> bool {
    false
}

/// [`select_adapter`] with no adapter named.
pub async fn default_adapter() -> Result<Adapter, BleError> {
    select_adapter(None).await
}

/// A PIN pad seen while scanning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BleListing {
    /// Peripheral id and advertised name.
    pub identity: DeviceIdentity,
    /// Already connected (by this program or the system).
    pub connected: bool,
}

/// Scans for `window` for peripherals advertising the PinBridge service.
///
/// Only peripherals heard in this scan (BlueZ gives them an RSSI) or connected count: the
/// system also lists every peripheral it has seen before, and one that stopped advertising
/// (switched off, out of range) is not there to connect to. BlueZ forgets the RSSIs when the
/// scan stops, so they are read before it does.
pub async fn scan(adapter: &Adapter, window: Duration) -> Result<Vec<BleListing>, BleError> {
    let map = |e| map_btleplug_error(e, BleOperation::Scan, "Bluetooth");
    adapter
        .start_scan(ScanFilter {
            services: vec![SERVICE_UUID],
        })
        .await
        .map_err(map)?;
    tokio::time::sleep(window).await;
    let found = listings(adapter).await;
    let _ = adapter.stop_scan().await;
    found
}

async fn listings(adapter: &Adapter) -> Result<Vec<BleListing>, BleError> {
    let map = |e| map_btleplug_error(e, BleOperation::Scan, "Bluetooth");
    let peripherals = adapter.peripherals().await.map_err(map)?;
    let mut found = Vec::new();
    for peripheral in peripherals {
        let Ok(Some(properties)) = peripheral.properties().await else {
            continue;
        };
        // Some platforms ignore the scan filter: check the advertisement ourselves.
        if !properties.services.contains(&SERVICE_UUID) {
            continue;
        }
        let connected = peripheral.is_connected().await.unwrap_or(false);
        if properties.rssi.is_none() && !connected {
            continue;
        }
        let mut identity = DeviceIdentity::new(TransportKind::Ble, peripheral.id().to_string());
        identity.name = properties.local_name.or(properties.advertisement_name);
        identity.serial = identity.name.as_deref().and_then(super::serial_from_name);
        found.push(BleListing {
            identity,
            connected,
        });
    }
    Ok(found)
}

/// [`GattLink`] over a btleplug peripheral.
#[derive(Debug, Clone)]
pub struct PeripheralLink {
    adapter: Adapter,
    peripheral: Peripheral,
    identity: DeviceIdentity,
}

impl PeripheralLink {
    /// The peripheral whose id displays as `address` (from [`scan`]).
    pub async fn find(adapter: &Adapter, address: &str) -> Result<Self, BleError> {
        let peripherals = adapter
            .peripherals()
            .await
            .map_err(|e| map_btleplug_error(e, BleOperation::Scan, address))?;
        let peripheral = peripherals
            .into_iter()
            .find(|p| p.id().to_string() == address)
            .ok_or_else(|| BleError::NotFound {
                wanted: address.to_owned(),
            })?;
        let mut identity = DeviceIdentity::new(TransportKind::Ble, address);
        if let Ok(Some(properties)) = peripheral.properties().await {
            identity.name = properties.local_name.or(properties.advertisement_name);
            identity.serial = identity.name.as_deref().and_then(super::serial_from_name);
        }
        Ok(PeripheralLink {
            adapter: adapter.clone(),
            peripheral,
            identity,
        })
    }

    fn map(&self, operation: BleOperation) -> impl Fn(btleplug::Error) -> BleError + '_ {
        move |e| map_btleplug_error(e, operation, &self.identity.to_string())
    }
}

#[async_trait]
impl GattLink for PeripheralLink {
    fn identity(&self) -> DeviceIdentity {
        self.identity.clone()
    }

    async fn connect(&self) -> Result<(), BleError> {
        let connected = self
            .peripheral
            .is_connected()
            .await
            .map_err(self.map(BleOperation::Connect))?;
        if !connected {
            self.peripheral
                .connect()
                .await
                .map_err(self.map(BleOperation::Connect))?;
        }
        Ok(())
    }

    async fn characteristics(&self) -> Result<Vec<Characteristic>, BleError> {
        self.peripheral
            .discover_services()
            .await
            .map_err(self.map(BleOperation::Discover))?;
        Ok(self.peripheral.characteristics().into_iter().collect())
    }

    async fn read(&self, characteristic: &Characteristic) -> Result<Vec<u8>, BleError> {
        self.peripheral
            .read(characteristic)
            .await
            .map_err(self.map(BleOperation::Read))
    }

    async fn write(
        &self,
        characteristic: &Characteristic,
        value: &[u8],
        write_type: WriteType,
    ) -> Result<(), BleError> {
        self.peripheral
            .write(characteristic, value, write_type)
            .await
            .map_err(self.map(BleOperation::Write))
    }

    async fn subscribe(&self, characteristic: &Characteristic) -> Result<GattEvents, BleError> {
        // Listen before subscribing so no early notification is missed.
        let notifications = self
            .peripheral
            .notifications()
            .await
            .map_err(self.map(BleOperation::Subscribe))?;
        let central_events = self
            .adapter
            .events()
            .await
            .map_err(self.map(BleOperation::Subscribe))?;
        self.peripheral
            .subscribe(characteristic)
            .await
            .map_err(self.map(BleOperation::Subscribe))?;
        let id = self.peripheral.id();
        let notifications = notifications.map(|n| GattEvent::Notification {
            characteristic: n.uuid,
            value: n.value,
        });
        let drops = central_events.filter_map(move |event| {
            let ours =
                matches!(&event, CentralEvent::DeviceDisconnected(dropped) if *dropped == id);
            async move { ours.then_some(GattEvent::Disconnected) }
        });
        Ok(Box::pin(futures::stream::select(notifications, drops)))
    }

    async fn disconnect(&self) -> Result<(), BleError> {
        self.peripheral
            .disconnect()
            .await
            .map_err(self.map(BleOperation::Disconnect))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btleplug_errors_map_to_specific_ones() {
        assert!(matches!(
            map_btleplug_error(
                btleplug::Error::PermissionDenied,
                BleOperation::Connect,
                "d"
            ),
            BleError::PermissionDenied {
                operation: BleOperation::Connect
            }
        ));
        assert!(matches!(
            map_btleplug_error(btleplug::Error::NotConnected, BleOperation::Write, "d"),
            BleError::Disconnected { .. }
        ));
        assert!(matches!(
            map_btleplug_error(btleplug::Error::NoAdapterAvailable, BleOperation::Scan, "d"),
            BleError::NoAdapter
        ));
        assert!(matches!(
            map_btleplug_error(
                btleplug::Error::TimedOut(Duration::from_secs(1)),
                BleOperation::Read,
                "d"
            ),
            BleError::Timeout {
                operation: BleOperation::Read,
                ..
            }
        ));
        let other = map_btleplug_error(
            btleplug::Error::RuntimeError("dbus went away".into()),
            BleOperation::Discover,
            "ble:AA",
        );
        assert!(other.to_string().contains("dbus went away"), "{other}");
    }
}
