//! The last device this app had a session with, remembered across restarts (issue 17 item 4):
//! when it is listed again, at start or when it is plugged in (the device manager's hotplug
//! events), the app connects to it by itself, so a restart finds the same PIN pad connected
//! and, with its pairing in the key store, paired. The customer logs in again after a restart:
//! a login lives in this process only (its bank session token is never written to disk).
//!
//! The file (`last-device.json` in the app's data directory, 0600) holds the device's serial,
//! transport and device id: nothing secret.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::{AppCore, lock};
use crate::devices::DeviceInfo;

/// The remembered device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastDevice {
    /// Its serial (as its `GetInfo` answered).
    pub serial: String,
    /// The transport it was connected over (`usb`, `ble`, `sim`, `in-process`).
    pub transport: String,
    /// Its device id then (`usb:1-4.2`); a device found under another id with the same
    /// serial (another port) is the same device.
    pub device_id: String,
}

/// The file and what it says now.
#[derive(Debug, Default)]
pub(super) struct LastDeviceFile {
    path: Option<PathBuf>,
    last: std::sync::Mutex<Option<LastDevice>>,
    /// An automatic connect is running (hotplug events come in bursts).
    connecting: AtomicBool,
}

impl LastDeviceFile {
    /// The file at `path`; a missing file is no device, a damaged one is logged and ignored.
    pub(super) fn at(path: PathBuf) -> Self {
        let last = read(&path);
        LastDeviceFile {
            path: Some(path),
            last: std::sync::Mutex::new(last),
            connecting: AtomicBool::new(false),
        }
    }

    pub(super) fn get(&self) -> Option<LastDevice> {
        lock(&self.last).clone()
    }

    fn set(&self, last: Option<LastDevice>) {
        *lock(&self.last) = last.clone();
        let Some(path) = &self.path else {
            return;
        };
        let written = match &last {
            Some(last) => serde_json::to_vec_pretty(last)
                .map_err(std::io::Error::other)
                .and_then(|bytes| write(path, &bytes)),
            None => match std::fs::remove_file(path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
        };
        if let Err(error) = written {
            tracing::warn!(target: "companion::devices", "{}: {error}", path.display());
        }
    }

    /// Whether `info` is the remembered device.
    fn matches(&self, info: &DeviceInfo) -> bool {
        self.get().is_some_and(|last| {
            info.id().to_string() == last.device_id
                || info.identity.serial.as_deref() == Some(last.serial.as_str())
        })
    }
}

fn read(path: &Path) -> Option<LastDevice> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(target: "companion::devices", "{}: {error}", path.display());
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .inspect_err(|error| {
            tracing::warn!(target: "companion::devices", "{} is damaged and ignored: {error}", path.display());
        })
        .ok()
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::private_file::create_dir(dir)?;
    }
    crate::private_file::write_atomic(path, bytes)
}

impl AppCore {
    /// Remembers the last connected device in `path` and reconnects to it when it is listed
    /// (the shell: `<data dir>/last-device.json`). Without it nothing is remembered.
    pub fn remembering_last_device(mut self, path: PathBuf) -> Self {
        self.last = LastDeviceFile::at(path);
        self
    }

    /// The device the app reconnects to by itself, if any.
    pub fn last_device(&self) -> Option<LastDevice> {
        self.last.get()
    }

    /// A session with `serial` was opened: it is the device to come back to.
    pub(super) fn remember_device(&self, serial: &str, device_id: &str) {
        let transport = device_id
            .split_once(':')
            .map_or(device_id, |(kind, _)| kind)
            .to_owned();
        let last = LastDevice {
            serial: serial.to_owned(),
            transport,
            device_id: device_id.to_owned(),
        };
        if self.last.get().as_ref() != Some(&last) {
            self.last.set(Some(last));
        }
    }

    /// Puts back what was remembered before a connect that turned out to be another device.
    pub(super) fn restore_last_device(&self, last: Option<LastDevice>) {
        if self.last.get() != last {
            self.last.set(last);
        }
    }

    /// The user disconnected `serial`: the app no longer connects to it by itself.
    pub(super) fn forget_device_choice(&self, serial: &str) {
        if self.last.get().is_some_and(|last| last.serial == serial) {
            self.last.set(None);
        }
    }

    /// A device was listed (at start or plugged in): if it is the remembered one and has no
    /// session, one is opened now, in the background. A mock PIN pad waits for the embedded
    /// sandbox to be ready (it may still be enrolling the device).
    pub(super) fn resume_if_remembered(self: &Arc<Self>, info: &DeviceInfo) {
        if !self.last.matches(info) {
            return;
        }
        let device_id = info.id().to_string();
        let serial = self.last.get().map(|last| last.serial).unwrap_or_default();
        let connected = self
            .tables()
            .slots
            .iter()
            .any(|(id, slot)| *id == device_id || slot.serial == serial);
        // An unplugged device with a session is followed by `follow_link` instead.
        let following = lock(&self.reconnecting).contains_key(&device_id)
            || lock(&self.reconnecting).values().any(|s| *s == serial);
        if connected || following || self.last.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let core = self.clone();
        tokio::spawn(async move {
            if core.mock(&device_id).is_some() {
                // Enrolment at the first start uses the device; the genuine check needs the
                // sandbox's CA.
                let _ = core.embedded().await;
            }
            match core.connect(&device_id).await {
                Ok(status) => {
                    tracing::info!(target: "companion::devices", "{} connected again by itself (the last device used)", status.serial);
                }
                Err(error) => {
                    tracing::info!(target: "companion::devices", "the last device used, {serial}, is listed but did not connect: {error}");
                }
            }
            core.last.connecting.store(false, Ordering::Release);
        });
    }
}
