//! The owner's operations on the device (PROTOCOL.md §6.12, §6.13): change the PIN on the
//! keypad (current PIN, new PIN, new PIN again; the bank verifies the current one), and the
//! owner's wipe back to `Manufactured`, confirmed on the keypad, with a signed receipt for
//! the bank. Every outcome writes its own screen.

use firmware_protocol::message::{
    BankResult, ChangePin, DeviceWiped, EcdsaSignature, Indicator, IndicatorSet, Lifecycle,
    LockState, PinChangeResult, Response, StatusCode, VerifyPinChange,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::texts::{Language, Text};
use super::{
    Device, Operation, PinEntry, Refusal, Running, Step, internal, payload_refusal, pin_of, refuse,
};
use crate::hardware::{EventKind, Hardware};

/// Which of the three PIN entries of a PIN change is on the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PinChangeStage {
    /// The PIN the bank knows today.
    Current,
    /// The new PIN, first time.
    New,
    /// The new PIN again.
    Again,
}

/// The PIN change in progress: the request and the digits of the earlier entries (zeroized
/// when the operation ends, whichever way).
pub(super) struct PinChange {
    pub(super) request: Box<ChangePin>,
    pub(super) stage: PinChangeStage,
    pub(super) current: Option<Zeroizing<Vec<u8>>>,
    pub(super) new_first: Option<Zeroizing<Vec<u8>>>,
    pub(super) entry: PinEntry,
}

fn change_prompt(stage: PinChangeStage, request: &ChangePin, language: Language) -> Vec<String> {
    let ask = match stage {
        PinChangeStage::Current => Text::EnterCurrentPin,
        PinChangeStage::New => Text::ChooseNewPin(request.pin_length_min, request.pin_length_max),
        PinChangeStage::Again => Text::NewPinAgain,
    };
    [Text::ChangePin, ask, Text::PinLine, Text::KeysEnter]
        .into_iter()
        .map(|text| text.render(language))
        .collect()
}

/// The screen for the bank's verdict, and the `BankResult` that `IndicatorSet` reports for it
/// (PROTOCOL.md §6.12 maps one to the other).
fn verdict_screen(result: PinChangeResult, tries_left: u8) -> (Text<'static>, BankResult) {
    match result {
        PinChangeResult::Changed => (Text::PinChanged, BankResult::Approved),
        PinChangeResult::OldPinIncorrect => (
            Text::WrongPinNotChanged(tries_left),
            BankResult::PinIncorrect,
        ),
        PinChangeResult::PinBlocked => (Text::PinBlocked, BankResult::AccountBlocked),
        PinChangeResult::Declined => (Text::DeclinedPinNotChanged, BankResult::Declined),
        PinChangeResult::SystemError => (Text::BankErrorPinNotChanged, BankResult::SystemError),
    }
}

impl Device {
    /// `ChangePin`: checked like `ApprovePayment` (session, bank counter, bank MAC under the
    /// response key, an intrusion if forged), then the first of three PIN prompts.
    pub(super) fn change_pin<H: Hardware>(
        &mut self,
        request_id: u32,
        request: ChangePin,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.accept_bank_request(
            &request.session_id,
            request.counter,
            |key| request.bank_mac_verifies(key),
            "PIN change",
            hw,
        )?;
        let current_max = self
            .binding
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotBound, "no binding"))?
            .pin_length_max;
        // The counter is consumed now: the same ChangePin cannot start a second entry.
        self.last_payment_counter = request.counter;
        self.volatile.pending_payment = None;
        self.volatile.pending_pin_change = None;
        self.bank_contact(hw);
        self.persist_or_refuse(hw)?;
        let prompt = change_prompt(PinChangeStage::Current, &request, self.language);
        self.start(
            request_id,
            Operation::ChangePin(Box::new(PinChange {
                request: Box::new(request),
                stage: PinChangeStage::Current,
                current: None,
                new_first: None,
                entry: PinEntry::new(current_max),
            })),
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    /// OK during a PIN change: the next prompt (`None`), or the answer.
    pub(super) fn change_pin_enter<H: Hardware>(
        &mut self,
        running: &mut Running,
        hw: &mut H,
    ) -> Option<Result<Response, Refusal>> {
        let Operation::ChangePin(change) = &mut running.operation else {
            return Some(Err(internal("not a PIN change")));
        };
        let entered = change.entry.entered();
        let next = match change.stage {
            PinChangeStage::Current => {
                let min = self.binding.as_ref().map_or(4, |b| b.pin_length_min);
                if entered < min {
                    // Too short: a real PIN pad beeps and keeps waiting (as for a payment).
                    return None;
                }
                change.current = Some(Zeroizing::new(change.entry.digits.to_vec()));
                change.entry.max = change.request.pin_length_max;
                PinChangeStage::New
            }
            PinChangeStage::New => {
                let (min, max) = (change.request.pin_length_min, change.request.pin_length_max);
                if entered < min || entered > max {
                    return Some(Err(refuse(
                        StatusCode::PinPolicy,
                        format!("the new PIN must have {min}-{max} digits"),
                    )));
                }
                change.new_first = Some(Zeroizing::new(change.entry.digits.to_vec()));
                PinChangeStage::Again
            }
            PinChangeStage::Again => {
                let same = change
                    .new_first
                    .as_ref()
                    .is_some_and(|first| bool::from(first.as_slice().ct_eq(&change.entry.digits)));
                if !same {
                    return Some(Err(refuse(
                        StatusCode::PinMismatch,
                        "the two entries of the new PIN differ",
                    )));
                }
                return Some(self.finish_pin_change(change, hw));
            }
        };
        change.entry.clear();
        change.stage = next;
        // A new prompt: keys typed ahead of it are not taken for it.
        running.prompt = change_prompt(next, &change.request, self.language);
        running.prompt_id = self.next_prompt_id();
        hw.discard_keys();
        None
    }

    /// Both PINs enciphered under the session PIN key, the device counter, the MAC.
    fn finish_pin_change<H: Hardware>(
        &mut self,
        change: &PinChange,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        let current = pin_of(change.current.as_deref().map_or(&[], |d| d.as_slice()))?;
        let new = change.entry.pin()?;
        let (pan, session) = self.pin_session()?;
        let device_counter = self.device_counter.saturating_add(1);
        let response = session
            .pin_change_entered(
                &change.request,
                &current,
                &new,
                &pan,
                device_counter,
                hw.rng(),
            )
            .map_err(payload_refusal)?;
        self.device_counter = device_counter;
        self.volatile.pending_pin_change = Some(device_counter);
        self.outcome(vec![self.say(Text::SentToBank)], hw);
        self.persist_or_refuse(hw)?;
        Ok(Response::PinChangeEntered(response))
    }

    /// `VerifyPinChange`: the bank's verdict, MAC-checked like `VerifyBankResponse` (a forged
    /// one is an intrusion), shown on the screen.
    pub(super) fn verify_pin_change<H: Hardware>(
        &mut self,
        request: VerifyPinChange,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.accept_bank_verdict(
            &request.session_id,
            |key| request.bank_mac_verifies(key),
            "PIN change verdict MAC does not verify",
            hw,
        )?;
        if self.volatile.pending_pin_change != Some(request.device_counter) {
            return Err(refuse(
                StatusCode::TransactionMismatch,
                "no PIN change sent with that device counter",
            ));
        }
        self.volatile.pending_pin_change = None;
        self.bank_contact(hw);
        self.set_indicator(Indicator::Safe, hw);
        let (verdict, result) = verdict_screen(request.result, request.pin_tries_left);
        let text = self.say(verdict);
        self.outcome(vec![text.clone()], hw);
        // The device's event record stays in one language (support reads it).
        hw.record(EventKind::State {
            change: format!(
                "PIN change verdict verified: {}",
                verdict.render(Language::En)
            ),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::IndicatorSet(IndicatorSet {
            indicator: Indicator::Safe,
            result,
            display_text: text,
        })))
    }

    /// `WipeDevice`: ask the owner on the keypad.
    pub(super) fn wipe_device<H: Hardware>(
        &mut self,
        request_id: u32,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let prompt = [
            Text::WipeQuestion,
            Text::WipeErases,
            Text::WipePaymentData,
            Text::WipeBindingEnds,
            Text::KeysWipe,
        ]
        .into_iter()
        .map(|text| self.say(text))
        .collect();
        self.start(request_id, Operation::Wipe, prompt, hw);
        Ok(Step::Pending)
    }

    /// OK on the wipe prompt: everything the bank and the owner gave the device goes; the
    /// attestation identity and the bank sequence stay (so no old bank-signed message can be
    /// replayed), and the receipt is signed.
    pub(super) fn finish_wipe<H: Hardware>(&mut self, hw: &mut H) -> Result<Response, Refusal> {
        self.wipe_bank_data();
        self.volatile.pending_pin_change = None;
        self.lifecycle = Lifecycle::Manufactured;
        self.lock = LockState::Unlocked;
        self.locked_since_ms = 0;
        self.set_indicator(Indicator::Off, hw);
        self.outcome(vec![self.say(Text::Wiped)], hw);
        hw.record(EventKind::State {
            change: "wiped by its owner".into(),
        });
        self.persist_or_refuse(hw)?;
        let mut receipt = DeviceWiped {
            device_serial: self.serial.clone(),
            bank_sequence: self.bank_sequence,
            signature: EcdsaSignature::from_array([0; 64]),
        };
        let signed = receipt.signed_bytes().map_err(internal)?;
        receipt.signature = self
            .attestation
            .sign(DeviceWiped::SIGNATURE_DOMAIN, &signed);
        Ok(Response::DeviceWiped(receipt))
    }
}
