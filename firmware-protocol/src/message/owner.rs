//! The customer's own operations on their PIN pad (issue 14 item 7, as Trezor and Ledger
//! offer them): change the PIN on the device's keypad, bank-verified, and wipe the device.
//! Kept apart from `request.rs` / `response.rs` so those stay one screen of layouts each.
//!
//! Change PIN is a session operation shaped like a payment (PROTOCOL.md §6.12): the bank
//! prepares [`ChangePin`] under the session response key with the next bank counter; the
//! device asks for the current PIN, the new PIN and the new PIN again, and answers
//! [`PinChangeEntered`]: both PINs enciphered under the session PIN key, its device counter
//! and a MAC under the session MAC key over the request and the answer. The bank checks the
//! old PIN (same wrong-PIN counter as payments), stores the new verification value and sends
//! its MACed verdict in [`VerifyPinChange`], which the device shows.
//!
//! Wipe is the owner's reset (PROTOCOL.md §6.13): [`WipeDevice`] from any host, confirmed
//! on the keypad, answered by [`DeviceWiped`], a receipt signed by the attestation key that
//! the app hands to the bank so the binding ends there too.

use alloc::string::String;

use super::codec::{Reader, Writer};
use super::types::{EcdsaSignature, MacTag, PinBlock, SessionId};
use super::{MessageError, WireBody, limits};

pub(crate) fn check_pin_lengths(field: &'static str, min: u8, max: u8) -> Result<(), MessageError> {
    if min < limits::MIN_PIN_DIGITS || min > max || max > limits::MAX_PIN_DIGITS {
        return Err(MessageError::InvalidValue {
            field,
            reason: "PIN lengths must satisfy 4 <= min <= max <= 12",
        });
    }
    Ok(())
}

/// Change PIN: the bank's MACed order to take the current and a new PIN on the keypad
/// (answered by `PinChangeEntered`). Needs the host-verified envelope and a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChangePin {
    /// The current session.
    pub session_id: SessionId,
    /// The bank counter, shared with `ApprovePayment.counter`: strictly greater than the last
    /// the device accepted from either.
    pub counter: u64,
    /// Fewest digits the bank accepts for the new PIN, 4..=12.
    pub pin_length_min: u8,
    /// Most digits the bank accepts for the new PIN, `pin_length_min..=12`.
    pub pin_length_max: u8,
    /// MAC over [`ChangePin::mac_input`] under the session response key.
    pub bank_mac: MacTag,
}

impl WireBody for ChangePin {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        let session_id = SessionId::read(r, "ChangePin.session_id")?;
        let counter = r.u64("ChangePin.counter")?;
        let pin_length_min = r.u8("ChangePin.pin_length_min")?;
        let pin_length_max = r.u8("ChangePin.pin_length_max")?;
        check_pin_lengths("ChangePin.pin_length_max", pin_length_min, pin_length_max)?;
        Ok(Self {
            session_id,
            counter,
            pin_length_min,
            pin_length_max,
            bank_mac: MacTag::read(r, "ChangePin.bank_mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.session_id.write(w);
        w.u64(self.counter);
        check_pin_lengths(
            "ChangePin.pin_length_max",
            self.pin_length_min,
            self.pin_length_max,
        )?;
        w.u8(self.pin_length_min);
        w.u8(self.pin_length_max);
        self.bank_mac.write(w);
        Ok(())
    }
}

/// Answer to `ChangePin`: the user entered the current PIN and the same new PIN twice. Both
/// PIN blocks are ISO 9564 format 4 under the session PIN key with the bound account number;
/// the MAC under the session MAC key covers the whole request and this answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PinChangeEntered {
    /// The current PIN, enciphered.
    pub old_pin_block: PinBlock,
    /// The new PIN, enciphered.
    pub new_pin_block: PinBlock,
    /// The device counter, shared with `PaymentApproved.device_counter`: one more than the
    /// device's previous approval or PIN change.
    pub device_counter: u64,
    /// MAC over [`PinChangeEntered::mac_input`].
    pub mac: MacTag,
}

impl WireBody for PinChangeEntered {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            old_pin_block: PinBlock::read(
                r,
                "PinChangeEntered.old_pin_block_format",
                "PinChangeEntered.old_pin_block",
            )?,
            new_pin_block: PinBlock::read(
                r,
                "PinChangeEntered.new_pin_block_format",
                "PinChangeEntered.new_pin_block",
            )?,
            device_counter: r.u64("PinChangeEntered.device_counter")?,
            mac: MacTag::read(r, "PinChangeEntered.mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.old_pin_block.write(w);
        self.new_pin_block.write(w);
        w.u64(self.device_counter);
        self.mac.write(w);
        Ok(())
    }
}

super::types::wire_enum!(
    /// The bank's verdict on a PIN change, as carried in `VerifyPinChange`.
    PinChangeResult {
        /// The old PIN verified; the new PIN is the one the bank checks from now on.
        Changed = 0 => "changed",
        /// The old PIN did not verify (it counts toward blocking); nothing changed.
        OldPinIncorrect = 1 => "old_pin_incorrect",
        /// The PIN is blocked (this or earlier wrong PINs); nothing changed.
        PinBlocked = 2 => "pin_blocked",
        /// Refused for another reason (bank policy); nothing changed.
        Declined = 3 => "declined",
        /// The bank failed; nothing changed.
        SystemError = 4 => "system_error",
    }
);

/// The bank's MACed verdict on the PIN change the device sent. The device checks it, shows
/// it and answers `IndicatorSet` (or `Error(BadBankMac)` with the indicator at danger).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerifyPinChange {
    /// The current session.
    pub session_id: SessionId,
    /// The device counter of the `PinChangeEntered` this answers.
    pub device_counter: u64,
    /// The verdict.
    pub result: PinChangeResult,
    /// Tries left before the PIN is blocked (meaningful with `OldPinIncorrect`, else 0).
    pub pin_tries_left: u8,
    /// MAC over [`VerifyPinChange::mac_input`] under the session response key.
    pub bank_mac: MacTag,
}

impl WireBody for VerifyPinChange {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            session_id: SessionId::read(r, "VerifyPinChange.session_id")?,
            device_counter: r.u64("VerifyPinChange.device_counter")?,
            result: PinChangeResult::read(r, "VerifyPinChange.result")?,
            pin_tries_left: r.u8("VerifyPinChange.pin_tries_left")?,
            bank_mac: MacTag::read(r, "VerifyPinChange.bank_mac")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        self.session_id.write(w);
        w.u64(self.device_counter);
        self.result.write(w);
        w.u8(self.pin_tries_left);
        self.bank_mac.write(w);
        Ok(())
    }
}

/// The owner's wipe: the device asks for confirmation on its keypad and, once given, erases
/// its bank keys, binding, pairings, session and payment data and returns to `Manufactured`
/// (answered by `DeviceWiped`). Empty body; no host verification (the keypad is the consent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct WipeDevice;

impl WireBody for WipeDevice {
    fn read(_: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self)
    }
    fn write(&self, _: &mut Writer) -> Result<(), MessageError> {
        Ok(())
    }
}

/// Answer to `WipeDevice`: the receipt the bank needs to end the binding, signed by the
/// attestation key over [`DeviceWiped::signed_bytes`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceWiped {
    /// The device's serial.
    pub device_serial: String,
    /// The last bank sequence the device had accepted (kept through the wipe): the bank ends
    /// a binding only for a receipt at or above the sequence of that binding's `Enrol`, so a
    /// receipt from before a later enrolment does not end the later binding.
    pub bank_sequence: u64,
    /// ECDSA P-256 by the attestation key, domain `device-attestation`.
    pub signature: EcdsaSignature,
}

impl WireBody for DeviceWiped {
    fn read(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            device_serial: r.string("DeviceWiped.device_serial", limits::SERIAL)?,
            bank_sequence: r.u64("DeviceWiped.bank_sequence")?,
            signature: EcdsaSignature::read(r, "DeviceWiped.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) -> Result<(), MessageError> {
        w.string(
            "DeviceWiped.device_serial",
            &self.device_serial,
            limits::SERIAL,
        )?;
        w.u64(self.bank_sequence);
        self.signature.write(w);
        Ok(())
    }
}
