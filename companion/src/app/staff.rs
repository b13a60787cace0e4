//! Staff operations: sign-in (the bank's teller is the app's clerk), initialise, enrol, bind,
//! revoke, rebind and the operator's tamper reset; by serial, with no PIN pad here: look up,
//! revoke, lock, unlock, unpair and rebind to a PIN pad here; and the customer's own loss
//! report.

use std::sync::Arc;

use firmware_protocol::message::{GetStatus, Request, Response};

use super::lifecycle_types::*;
use super::ops::refresh_status;
use super::types::*;
use super::{AppCore, AppError, Operation, ProgressSink, Slot, StaffEntry, sink_for};
use crate::bank::{BankClient, BankError, BearerToken};
use crate::flows::{self as core, FlowEvent};

impl StaffRole {
    /// What the bank grants the role on a PIN pad here (the sandbox bank's rules: a teller
    /// initialises, enrols and revokes; only an operator resets a tampered PIN pad). The
    /// screens offer nothing else, so staff never press a button the bank then refuses.
    pub fn actions(self) -> Vec<StaffAction> {
        match self {
            StaffRole::Clerk => vec![
                StaffAction::Initialise,
                StaffAction::Enrol,
                StaffAction::Bind,
                StaffAction::Revoke,
                StaffAction::Rebind,
            ],
            StaffRole::Operator => vec![StaffAction::TamperReset],
        }
    }

    /// What the bank grants the role by serial (lock, unlock, unpair and revoke are a
    /// teller's; an operator may look a PIN pad up only).
    pub fn serial_actions(self) -> Vec<SerialAction> {
        match self {
            StaffRole::Clerk => vec![
                SerialAction::Lock,
                SerialAction::Unlock,
                SerialAction::Unpair,
                SerialAction::Revoke,
            ],
            StaffRole::Operator => Vec::new(),
        }
    }
}

impl AppCore {
    /// Staff sign-in at the bank; the bank's teller is a clerk here.
    pub async fn staff_sign_in(
        &self,
        staff_id: &str,
        password: &str,
    ) -> Result<StaffSession, AppError> {
        let result = self.sign_in_at_bank(staff_id, password).await;
        self.saw_bank(&result);
        result
    }

    async fn sign_in_at_bank(
        &self,
        staff_id: &str,
        password: &str,
    ) -> Result<StaffSession, AppError> {
        let bank = self.bank().await?;
        let staff_id = staff_id.trim().to_owned();
        let login = bank
            .staff_sign_in(&staff_id, password)
            .await
            .map_err(|error| match error {
                BankError::Refused { status: 401, .. } => {
                    tracing::warn!(target: "companion::bank", "staff sign-in refused");
                    AppError::StaffAuthFailed("staff ID or password not accepted")
                }
                other => other.into(),
            })?;
        let role = match login.role.as_str() {
            "teller" => StaffRole::Clerk,
            "operator" => StaffRole::Operator,
            other => {
                return Err(AppError::StaffNotAllowed(format!(
                    "the bank's {} role has no staff screen in the app",
                    if other.is_empty() { "unknown" } else { other }
                )));
            }
        };
        let display_name = match (self.embedded_status(), (self.bank)().url.is_empty()) {
            (super::EmbeddedStatus::Ready(sandbox), true) => sandbox
                .staff_names
                .iter()
                .find(|(id, _)| *id == staff_id)
                .map(|(_, name)| name.clone()),
            _ => None,
        }
        .unwrap_or_else(|| staff_id.clone());
        let session = StaffSession {
            staff_id,
            display_name,
            role,
            actions: role.actions(),
            serial_actions: role.serial_actions(),
        };
        tracing::info!(target: "companion::bank", "staff {} signed in ({:?})", session.staff_id, role);
        self.tables().staff = Some(StaffEntry {
            session: session.clone(),
            token: login.token,
            bank,
        });
        Ok(session)
    }

    /// Staff sign-out.
    pub fn staff_sign_out(&self) {
        if let Some(staff) = self.tables().staff.take() {
            tracing::info!(target: "companion::bank", "staff {} signed out", staff.session.staff_id);
        }
    }

    async fn staff_result(
        &self,
        action: StaffAction,
        device_id: &str,
        detail: String,
    ) -> Result<StaffActionResult, AppError> {
        if let Ok(slot) = self.slot(device_id) {
            refresh_status(&slot).await;
        }
        self.push_devices();
        Ok(StaffActionResult {
            action,
            device_id: device_id.to_owned(),
            detail,
            device: self.device_status(device_id).await?,
        })
    }

    /// Staff: initialise a device at the bank (key-block protection key, KCV compared).
    pub async fn staff_initialise(
        &self,
        device_id: &str,
        progress: ProgressSink,
    ) -> Result<StaffActionResult, AppError> {
        let (_, token, bank) = self.staff()?;
        let slot = self.slot(device_id)?;
        let _op = Operation::begin(&slot, progress.clone());
        let mut sink = sink_for(&slot);
        let serial = {
            let mut session = slot.session.lock().await;
            core::initialise(&mut session, &bank, &token, &mut sink).await?
        };
        tracing::info!(target: "companion::bank", "{serial}: initialised; KCV matched");
        progress(DeviceProgress::Stage { stage: Stage::Done });
        self.staff_result(
            StaffAction::Initialise,
            device_id,
            "Key-block protection key installed; the bank matched its check value".into(),
        )
        .await
    }

    /// Staff: the customer chooses a PIN on the device (twice); the bank binds the device.
    pub async fn staff_enrol(
        &self,
        device_id: &str,
        customer_id: &str,
        progress: ProgressSink,
    ) -> Result<StaffActionResult, AppError> {
        let (_, token, bank) = self.staff()?;
        let slot = self.slot(device_id)?;
        let customer_id = customer_id.trim().to_owned();
        let _op = Operation::begin(&slot, progress.clone());
        self.enrol_on(&slot, device_id, &bank, &token, &customer_id)
            .await?;
        tracing::info!(target: "companion::bank", "{}: {customer_id} enrolled and bound", slot.serial);
        progress(DeviceProgress::Stage { stage: Stage::Done });
        self.staff_result(
            StaffAction::Enrol,
            device_id,
            format!("{customer_id} chose a PIN on the device; the bank bound the device"),
        )
        .await
    }

    /// The customer chooses a PIN on the device's keypad and the bank binds the device to them.
    async fn enrol_on(
        &self,
        slot: &Arc<Slot>,
        device_id: &str,
        bank: &BankClient,
        teller: &BearerToken,
        customer_id: &str,
    ) -> Result<(), AppError> {
        let mut sink = sink_for(slot);
        {
            let mut session = slot.session.lock().await;
            core::enrol(
                &mut session,
                bank,
                teller,
                &slot.serial,
                customer_id,
                &mut sink,
            )
            .await?;
        }
        self.set_customer(device_id, Some(customer_id));
        Ok(())
    }

    /// The device is no longer anyone's: its customer and this computer's pairing with it go.
    pub(super) fn forget_binding(&self, device_id: &str, serial: &str) {
        self.set_customer(device_id, None);
        if let Some(keys) = self.keystore_now(device_id) {
            let _ = keys.remove(serial);
        }
    }

    /// Staff: bind. The bank binds a device when the customer enrols on it, so this only
    /// confirms a binding that exists.
    pub async fn staff_bind(
        &self,
        device_id: &str,
        customer_id: &str,
    ) -> Result<StaffActionResult, AppError> {
        self.staff()?;
        match self.customer_of(device_id) {
            Some(bound) if bound.eq_ignore_ascii_case(customer_id.trim()) => {
                self.staff_result(
                    StaffAction::Bind,
                    device_id,
                    format!("the device is bound to {bound}"),
                )
                .await
            }
            _ => Err(AppError::InvalidInput(
                "the bank binds a device to a customer when the customer enrols on it: use Enrol",
            )),
        }
    }

    async fn serial_of(&self, device_id: &str) -> Result<String, AppError> {
        if let Ok(slot) = self.slot(device_id) {
            return Ok(slot.serial.clone());
        }
        let status = self.device_status(device_id).await?;
        if status.serial.is_empty() {
            Err(AppError::DeviceDisconnected(format!(
                "connect {device_id} first, so the app learns its serial"
            )))
        } else {
            Ok(status.serial)
        }
    }

    async fn revoke_device(
        &self,
        device_id: &str,
        token: &BearerToken,
        bank: &BankClient,
    ) -> Result<String, AppError> {
        let serial = self.serial_of(device_id).await?;
        let mut quiet = |_: FlowEvent| {};
        match self.slot(device_id) {
            Ok(slot) => {
                let mut session = slot.session.lock().await;
                core::revoke(
                    Some(&mut session),
                    bank,
                    token,
                    &serial,
                    "revoked by staff",
                    &mut quiet,
                )
                .await?;
            }
            Err(_) => {
                core::revoke(None, bank, token, &serial, "revoked by staff", &mut quiet).await?;
            }
        }
        self.forget_binding(device_id, &serial);
        tracing::warn!(target: "companion::bank", "{serial} revoked");
        Ok(serial)
    }

    /// Staff: revoke a device (lost or stolen); a connected device gets the bank's wipe now.
    pub async fn staff_revoke(&self, device_id: &str) -> Result<StaffActionResult, AppError> {
        let (_, token, bank) = self.staff()?;
        let serial = self.revoke_device(device_id, &token, &bank).await?;
        self.staff_result(
            StaffAction::Revoke,
            device_id,
            format!("{serial} revoked; logins refused"),
        )
        .await
    }

    /// Staff: moves the customer to another device: the old one is revoked, the customer
    /// chooses a PIN on the new one (its keypad), which the bank binds.
    pub async fn staff_rebind(
        &self,
        from_device_id: &str,
        to_device_id: &str,
    ) -> Result<StaffActionResult, AppError> {
        let (_, token, bank) = self.staff()?;
        if from_device_id == to_device_id {
            return Err(AppError::InvalidInput("choose two different devices"));
        }
        let customer_id = self
            .customer_of(from_device_id)
            .ok_or_else(|| AppError::NotBound(format!("{from_device_id} has no customer")))?;
        let to = self.slot(to_device_id)?;
        Self::ready_for_rebind(&to).await?;
        let from_serial = self.revoke_device(from_device_id, &token, &bank).await?;
        self.enrol_on(&to, to_device_id, &bank, &token, &customer_id)
            .await?;
        tracing::info!(target: "companion::bank", "{customer_id} moved from {from_serial} to {}", to.serial);
        self.staff_result(
            StaffAction::Rebind,
            to_device_id,
            format!(
                "{customer_id} moved to {}; {from_serial} revoked",
                to.serial
            ),
        )
        .await
    }

    /// Refuses a replacement that cannot be enrolled now, before a rebind revokes anything
    /// (its own status, asked now: the customer would otherwise be left with no PIN pad).
    async fn ready_for_rebind(to: &Slot) -> Result<(), AppError> {
        let answer = {
            let mut session = to.session.lock().await;
            session.request(&Request::GetStatus(GetStatus)).await?
        };
        let Response::Status(status) = answer else {
            return Err(AppError::Internal(format!(
                "{} answered GetStatus with {}",
                to.serial,
                answer.name()
            )));
        };
        match core::remote::not_ready_for_rebind(&to.serial, &status) {
            Some(why) => Err(AppError::NotInitialised(why)),
            None => Ok(()),
        }
    }

    /// Operator: resets a tampered device with an operator-signed token (back to manufactured).
    pub async fn staff_tamper_reset(&self, device_id: &str) -> Result<StaffActionResult, AppError> {
        let (staff, token, bank) = self.staff()?;
        if staff.role != StaffRole::Operator {
            return Err(AppError::StaffNotAllowed(
                "this needs an operator with tamper-reset authority",
            ));
        }
        let slot = self.slot(device_id)?;
        let mut quiet = |_: FlowEvent| {};
        {
            let mut session = slot.session.lock().await;
            core::operator_reset(&mut session, &bank, &token, &slot.serial, &mut quiet).await?;
        }
        self.forget_binding(device_id, &slot.serial);
        tracing::info!(
            target: "companion::bank",
            "{}: tamper reset with an operator token for {}",
            slot.serial,
            staff.staff_id
        );
        self.staff_result(
            StaffAction::TamperReset,
            device_id,
            "Tamper state cleared with an operator-signed token; initialise the device again"
                .into(),
        )
        .await
    }

    // ----------------------------------------------------------------- by serial

    /// Staff: the bank's record of a PIN pad that need not be here (its state and customer,
    /// for the confirmation that names both).
    pub async fn staff_device_lookup(&self, serial: &str) -> Result<BankDevice, AppError> {
        let (_, token, bank) = self.staff()?;
        let serial = core::remote::serial_part(serial.trim()).map_err(AppError::InvalidInput)?;
        let view = core::remote::device_view(&bank, &token, serial).await?;
        Ok(BankDevice {
            serial: view["serial"].as_str().unwrap_or(serial).to_owned(),
            state: view["state"].as_str().unwrap_or("unknown").to_owned(),
            locked: view["locked_by_bank"].as_bool().unwrap_or(false),
            customer_id: view["customer_id"].as_str().map(str::to_owned),
            commands: view["commands"]
                .as_array()
                .map(|c| c.iter().map(DeviceCommandRecord::from_bank).collect())
                .unwrap_or_default(),
        })
    }

    /// Staff: revoke, lock, unlock or unpair a PIN pad by serial, with no PIN pad here. The
    /// bank signs the command; an app the PIN pad is connected to with a customer logged in
    /// relays it at once, otherwise the PIN pad gets it at its next login attempt. Returns
    /// the bank's record afterwards.
    pub async fn staff_by_serial(
        &self,
        serial: &str,
        action: SerialAction,
    ) -> Result<BankDevice, AppError> {
        let (staff, token, bank) = self.staff()?;
        let serial = core::remote::serial_part(serial.trim()).map_err(AppError::InvalidInput)?;
        let reason = format!("by serial, staff {}", staff.staff_id);
        let mut quiet = |_: FlowEvent| {};
        match action {
            SerialAction::Revoke => {
                core::revoke(None, &bank, &token, serial, &reason, &mut quiet).await?;
            }
            SerialAction::Lock | SerialAction::Unlock | SerialAction::Unpair => {
                let command = match action {
                    SerialAction::Lock => "lock",
                    SerialAction::Unlock => "unlock",
                    _ => "forget_hosts",
                };
                core::remote::device_command(&bank, &token, serial, command, &reason).await?;
            }
        }
        tracing::warn!(target: "companion::bank", "{serial}: {action:?} by serial ({})", staff.staff_id);
        self.staff_device_lookup(serial).await
    }

    /// Staff: moves the customer of a PIN pad that is not here (`from_serial`, lost) to the
    /// one connected (`to_device_id`). The customer is the one the bank has bound to
    /// `from_serial` (the screen's confirmation named them from the same record): the old PIN
    /// pad is revoked first (its wipe goes out as for a revoke), so the customer never has
    /// two, then the customer chooses a PIN on the new one's keypad and the bank binds it.
    pub async fn staff_rebind_by_serial(
        &self,
        from_serial: &str,
        to_device_id: &str,
        progress: ProgressSink,
    ) -> Result<StaffActionResult, AppError> {
        let (staff, token, bank) = self.staff()?;
        let from = core::remote::serial_part(from_serial.trim()).map_err(AppError::InvalidInput)?;
        let to = self.slot(to_device_id)?;
        if to.serial == from {
            return Err(AppError::InvalidInput(
                "the PIN pad being replaced is the one connected here: connect the new one",
            ));
        }
        let record = self.staff_device_lookup(from).await?;
        let customer_id = record.customer_id.ok_or_else(|| {
            AppError::NotBound(format!(
                "the bank has no customer bound to {from}: enrol the customer on the new PIN \
                 pad instead"
            ))
        })?;
        Self::ready_for_rebind(&to).await?;
        let _op = Operation::begin(&to, progress.clone());
        let reason = format!("Replaced by {} (staff {})", to.serial, staff.staff_id);
        let mut quiet = |_: FlowEvent| {};
        core::revoke(None, &bank, &token, from, &reason, &mut quiet).await?;
        tracing::warn!(target: "companion::bank", "{from} revoked: replaced by {}", to.serial);
        self.enrol_on(&to, to_device_id, &bank, &token, &customer_id)
            .await?;
        tracing::info!(target: "companion::bank", "{customer_id} moved from {from} to {}", to.serial);
        progress(DeviceProgress::Stage { stage: Stage::Done });
        self.staff_result(
            StaffAction::Rebind,
            to_device_id,
            format!("{customer_id} moved to {}; {from} revoked", to.serial),
        )
        .await
    }

    /// The customer's own loss report: no PIN pad, no login, no staff; the loss-report code
    /// from their enrolment slip authenticates it. The bank locks the PIN pad at once and
    /// queues a signed wipe.
    pub async fn report_lost(
        &self,
        serial: &str,
        customer_id: &str,
        code: &str,
    ) -> Result<LossReport, AppError> {
        let serial = core::remote::serial_part(serial.trim()).map_err(AppError::InvalidInput)?;
        let code = zeroize::Zeroizing::new(code.trim().to_owned());
        if code.is_empty() {
            return Err(AppError::InvalidInput(
                "the loss-report code from your enrolment slip",
            ));
        }
        let bank = self.bank().await?;
        core::remote::report_lost(&bank, serial, customer_id.trim(), &code).await?;
        tracing::warn!(target: "companion::bank", "{serial} reported lost by its customer");
        Ok(LossReport {
            serial: serial.to_owned(),
            message: format!(
                "{serial} is locked and revoked at the bank: it can no longer log in, and it \
                 wipes itself when it next reaches the bank or a PinBridge app."
            ),
        })
    }
}
