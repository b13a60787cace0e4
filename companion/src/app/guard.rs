//! Unsafe paths blocked before any bank call (issue 17 item 3): a payment is not prepared at
//! the bank for a device that is not connected, tampered, locked, revoked or not paired with
//! this computer. Each refusal is the kind the screens explain, with the action that fixes it
//! in the words. Before, a tampered device was offered the payment form and the bank prepared
//! the payment before the device refused it.

use super::ops::refresh_status;
use super::{AppCore, AppError, Lifecycle, LockState, TamperState, statuses};

impl AppCore {
    /// Why `device_id` may not be used for a payment now, or `Ok` if it may. Asks a real
    /// device for its state first (a tamper or lock since the last answer counts); a mock
    /// device is read in process.
    pub(super) async fn payment_blocker(&self, device_id: &str) -> Result<(), AppError> {
        if !self.tables().slots.contains_key(device_id)
            && super::lock(&self.reconnecting).contains_key(device_id)
        {
            // Unplugged for a moment: the payment waits for it to come back, and the device
            // checks itself again then (nothing is approved without it).
            return Ok(());
        }
        let slot = self.slot(device_id)?;
        if self.mock(device_id).is_none() {
            refresh_status(&slot).await;
        }
        let listed = statuses(&self.devices.devices())
            .into_iter()
            .filter(|d| d.device_id == device_id)
            .collect();
        let Some(device) = self.describe(listed).into_iter().next() else {
            return Err(AppError::DeviceDisconnected(format!(
                "{} is not listed any more; plug it in and connect it on the Devices screen",
                slot.serial
            )));
        };
        let serial = &slot.serial;
        if device.tamper == TamperState::Tampered {
            return Err(AppError::Tampered(format!(
                "{serial} reports tampering and has erased its keys; nothing was sent to the bank. Take it to your bank for an operator reset"
            )));
        }
        if device.lifecycle == Lifecycle::Revoked {
            return Err(AppError::Revoked(format!(
                "{serial} was revoked by the bank; nothing was sent to the bank. Ask your bank for a new device"
            )));
        }
        if device.lock == LockState::Locked {
            return Err(AppError::Locked(format!(
                "{serial} is locked; nothing was sent to the bank. Log in again so the bank can unlock it, or call your bank"
            )));
        }
        if !device.paired {
            return Err(AppError::NotPaired(format!(
                "{serial} is not paired with this computer; nothing was sent to the bank. Pair it on the Pairing screen"
            )));
        }
        Ok(())
    }
}
