//! What the user sees and presses: the operation waiting for the user, its prompt with the
//! PIN stars, the keys (digits, clear, cancel, OK) and the outcome screen that follows, and
//! the idle screen. A key pressed while no prompt is shown is discarded (§4 "what you see is
//! what you sign").

use firmware_protocol::crypto::keys::PinKey;
use firmware_protocol::crypto::pairing::PairingOutcome;
use firmware_protocol::crypto::pinblock::Pin;
use firmware_protocol::message::{
    ApprovePayment, Enrol, Lifecycle, LockState, Response, SignConfirmation, StatusCode,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;
use zeroize::Zeroizing;

use super::texts::{Language, Refused, Text, Undone};
use super::{Device, Progress, Refusal, refuse};
use crate::hardware::{Hardware, KeyPress};

/// Digits typed so far; zeroized on drop, never shown.
pub(super) struct PinEntry {
    pub(super) digits: Zeroizing<Vec<u8>>,
    pub(super) max: u8,
}

impl PinEntry {
    pub(super) fn new(max: u8) -> Self {
        Self {
            digits: Zeroizing::new(Vec::with_capacity(12)),
            max,
        }
    }

    pub(super) fn entered(&self) -> u8 {
        u8::try_from(self.digits.len()).unwrap_or(u8::MAX)
    }

    pub(super) fn clear(&mut self) {
        self.digits.zeroize();
    }

    /// The digits as a PIN, refused with `PinPolicy` if they are not 4-12 digits.
    pub(super) fn pin(&self) -> Result<Pin, Refusal> {
        pin_of(&self.digits)
    }
}

/// `digits` (ASCII) as a PIN: `PinPolicy` if they are not 4-12 digits.
pub(super) fn pin_of(digits: &[u8]) -> Result<Pin, Refusal> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| Pin::new(s).ok())
        .ok_or_else(|| refuse(StatusCode::PinPolicy, "PIN must be 4-12 digits"))
}

pub(super) enum Operation {
    Enrol {
        request: Box<Enrol>,
        pin_key: PinKey,
        first: Option<Zeroizing<Vec<u8>>>,
        entry: PinEntry,
    },
    ConfirmPairing {
        outcome: Box<PairingOutcome>,
        host_name: String,
    },
    ApprovePayment {
        request: Box<ApprovePayment>,
        entry: PinEntry,
    },
    SignConfirmation {
        request: Box<SignConfirmation>,
    },
    /// The owner's PIN change (§6.12): three PIN entries.
    ChangePin(Box<super::owner::PinChange>),
    /// The owner's wipe (§6.13): OK or X.
    Wipe,
}

impl Operation {
    pub(super) fn pin_entry_mut(&mut self) -> Option<&mut PinEntry> {
        match self {
            Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. } => Some(entry),
            Operation::ChangePin(change) => Some(&mut change.entry),
            Operation::ConfirmPairing { .. }
            | Operation::SignConfirmation { .. }
            | Operation::Wipe => None,
        }
    }

    pub(super) fn pin_entered(&self) -> Option<u8> {
        match self {
            Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. } => {
                Some(entry.entered())
            }
            Operation::ChangePin(change) => Some(change.entry.entered()),
            Operation::ConfirmPairing { .. }
            | Operation::SignConfirmation { .. }
            | Operation::Wipe => None,
        }
    }
}

/// How an operation waiting for the user ended without the user's OK.
#[derive(Clone, Copy)]
pub(super) enum Ended {
    /// X on the keypad.
    ByUser,
    /// No key within the user timeout.
    TimedOut,
    /// The host cancelled it (link CANCEL or a Cancel request).
    ByHost,
}

impl Operation {
    /// What did not happen, for the outcome screen ("not paid").
    pub(super) fn not_done(&self) -> Undone {
        match self {
            Operation::Enrol { .. } => Undone::NotEnrolled,
            Operation::ApprovePayment { .. } => Undone::NotPaid,
            Operation::ConfirmPairing { .. } => Undone::NotPaired,
            Operation::SignConfirmation { .. } => Undone::NotConfirmed,
            Operation::ChangePin(_) => Undone::PinNotChanged,
            Operation::Wipe => Undone::NotWiped,
        }
    }

    /// The outcome screen of an operation that ended as `ended`.
    pub(super) fn ended_text(&self, ended: Ended, language: Language) -> String {
        let not_done = self.not_done();
        match (ended, self) {
            (Ended::ByUser, Operation::SignConfirmation { .. }) => Text::Rejected,
            (Ended::ByUser, _) => Text::CancelledOnKeypad(not_done),
            (Ended::TimedOut, _) => Text::TimedOut(not_done),
            (Ended::ByHost, _) => Text::CancelledByComputer(not_done),
        }
        .render(language)
    }
}

/// How long an outcome (approved, declined, cancelled, timed out...) stays on the screen
/// before the neutral idle screen comes back, device clock milliseconds.
pub const OUTCOME_SCREEN_MS: u64 = 15_000;

pub(super) struct Running {
    pub(super) request_id: u32,
    /// The prompt on the screen ([`Snapshot::prompt_id`]).
    pub(super) prompt_id: u64,
    pub(super) deadline_ms: u64,
    pub(super) operation: Operation,
    /// What the display shows; the `pin_line` gets the stars.
    pub(super) prompt: Vec<String>,
    /// The PIN line ([`Text::PinLine`]) in the language the prompt is in.
    pub(super) pin_line: String,
}

impl Running {
    pub(super) fn render<H: Hardware>(&self, hw: &mut H) {
        let entered = self.operation.pin_entered();
        let lines = self
            .prompt
            .iter()
            .map(|line| match entered {
                Some(count) if *line == self.pin_line => {
                    format!("{} {}", self.pin_line, "*".repeat(usize::from(count)))
                }
                _ => line.clone(),
            })
            .collect();
        hw.show(lines);
    }
}

/// A refusal at the end of a prompt, for the outcome screen.
pub(super) fn refusal_text(status: StatusCode) -> Refused {
    match status {
        StatusCode::PinMismatch => Refused::PinsDiffer,
        StatusCode::PinPolicy => Refused::PinLength,
        StatusCode::PairingTableFull => Refused::TooManyComputers,
        StatusCode::NoSession => Refused::SessionEnded,
        _ => Refused::Failed,
    }
}

impl Device {
    pub(super) fn progress(&self) -> Option<Progress> {
        self.volatile
            .running
            .as_ref()
            .map(|running| match &running.operation {
                Operation::Enrol { entry, .. } | Operation::ApprovePayment { entry, .. } => {
                    Progress::PinEntry {
                        entered: entry.entered(),
                        max: entry.max,
                    }
                }
                Operation::ChangePin(change) => Progress::PinEntry {
                    entered: change.entry.entered(),
                    max: change.entry.max,
                },
                Operation::ConfirmPairing { .. }
                | Operation::SignConfirmation { .. }
                | Operation::Wipe => Progress::AwaitingUser,
            })
    }

    /// Ends the operation waiting for the user, with its outcome screen.
    pub(super) fn end_operation_as<H: Hardware>(&mut self, ended: Ended, hw: &mut H) {
        // Dropping the operation zeroizes any PIN digits it held.
        if let Some(running) = self.volatile.running.take() {
            let text = running.operation.ended_text(ended, self.language);
            self.outcome(vec![text], hw);
        }
    }

    /// Shows `lines` as the outcome of what just happened, until [`OUTCOME_SCREEN_MS`] passed
    /// or the next prompt or outcome replaces them.
    pub(super) fn outcome<H: Hardware>(&mut self, lines: Vec<String>, hw: &H) {
        self.volatile.banner = lines;
        self.volatile.banner_until_ms = Some(hw.now_ms().saturating_add(OUTCOME_SCREEN_MS));
    }

    /// The next prompt's id.
    pub(super) fn next_prompt_id(&mut self) -> u64 {
        self.volatile.prompt_seq = self.volatile.prompt_seq.wrapping_add(1);
        self.volatile.prompt_seq
    }

    pub(super) fn refresh_display<H: Hardware>(&mut self, hw: &mut H) {
        if self.volatile.running.is_some() {
            return;
        }
        if self
            .volatile
            .banner_until_ms
            .is_some_and(|until| hw.now_ms() >= until)
        {
            self.volatile.banner.clear();
            self.volatile.banner_until_ms = None;
        }
        let normal = !self.tampered
            && self.integrity_ok()
            && self.lock == LockState::Unlocked
            && matches!(self.lifecycle, Lifecycle::Initialised | Lifecycle::Bound);
        let state = self.say(if self.tampered {
            Text::Tampered
        } else if !self.integrity_ok() {
            Text::FirmwareCheckFailed
        } else {
            match (self.lifecycle, self.lock) {
                (Lifecycle::Revoked, _) => Text::Revoked,
                (Lifecycle::Manufactured, _) => Text::NotInitialised,
                (_, LockState::LockedInactivity) => Text::LockedInactivity,
                (_, LockState::LockedByBank) => Text::LockedByBank,
                (_, LockState::LockedPowerOff) => Text::LockedPowerOff,
                (_, LockState::LockedIdentity) => Text::LockedIdentity,
                (Lifecycle::Initialised, _) => Text::NotEnrolled,
                (Lifecycle::Bound, _) => Text::Ready,
            }
        });
        // An outcome replaces the everyday state line; an abnormal state stays above it.
        let mut lines = vec![format!("PinBridge {}", self.serial)];
        if !normal || self.volatile.banner.is_empty() {
            lines.push(state);
        }
        lines.extend(self.volatile.banner.iter().cloned());
        hw.show(lines);
    }

    pub(super) fn start<H: Hardware>(
        &mut self,
        request_id: u32,
        operation: Operation,
        prompt: Vec<String>,
        hw: &mut H,
    ) {
        let running = Running {
            request_id,
            prompt_id: self.next_prompt_id(),
            deadline_ms: hw.now_ms().saturating_add(self.user_timeout_ms),
            operation,
            prompt,
            pin_line: self.say(Text::PinLine),
        };
        // The prompt replaces any earlier outcome, and only keys pressed from now on count.
        self.volatile.banner.clear();
        self.volatile.banner_until_ms = None;
        running.render(hw);
        hw.discard_keys();
        self.volatile.running = Some(running);
    }

    /// A key during a pending request; returns the answer when the request is done.
    pub(super) fn on_key<H: Hardware>(&mut self, key: KeyPress, hw: &mut H) -> Option<Vec<u8>> {
        let mut running = self.volatile.running.take()?;
        let request_id = running.request_id;
        running.deadline_ms = hw.now_ms().saturating_add(self.user_timeout_ms);
        let result = match key {
            KeyPress::Digit(digit) => {
                if let Some(entry) = running.operation.pin_entry_mut()
                    && entry.entered() < entry.max
                    && digit <= 9
                {
                    entry.digits.push(b'0' + digit);
                }
                None
            }
            KeyPress::Clear => {
                if let Some(entry) = running.operation.pin_entry_mut() {
                    entry.digits.pop();
                }
                None
            }
            // One refusal key: at the pairing code too, the device cannot tell "the codes
            // differ" from "not now" (PROTOCOL.md §6.2).
            KeyPress::Cancel => Some(Err(refuse(
                StatusCode::UserCancelled,
                "cancelled on the device",
            ))),
            KeyPress::Enter => self.on_enter(&mut running, hw),
        };
        match result {
            None => {
                running.render(hw);
                self.volatile.running = Some(running);
                None
            }
            Some(Ok(response)) => {
                drop(running);
                Some(self.encode(request_id, response, hw))
            }
            Some(Err(refusal)) => {
                let text = match key {
                    KeyPress::Cancel => running.operation.ended_text(Ended::ByUser, self.language),
                    _ => self.say(Text::Refused(
                        refusal_text(refusal.status),
                        running.operation.not_done(),
                    )),
                };
                drop(running);
                self.outcome(vec![text], hw);
                Some(self.error_answer(request_id, &refusal, hw))
            }
        }
    }

    /// Enter during a pending request: `None` keep waiting, else the answer.
    pub(super) fn on_enter<H: Hardware>(
        &mut self,
        running: &mut Running,
        hw: &mut H,
    ) -> Option<Result<Response, Refusal>> {
        match &mut running.operation {
            Operation::Enrol {
                request,
                pin_key,
                first,
                entry,
            } => {
                let entered = entry.entered();
                if entered < request.pin_length_min || entered > request.pin_length_max {
                    return Some(Err(refuse(
                        StatusCode::PinPolicy,
                        format!(
                            "PIN must have {}-{} digits",
                            request.pin_length_min, request.pin_length_max
                        ),
                    )));
                }
                match first {
                    None => {
                        *first = Some(Zeroizing::new(entry.digits.to_vec()));
                        entry.clear();
                        // A new prompt: keys typed ahead of it are not taken for it.
                        running.prompt_id = self.next_prompt_id();
                        hw.discard_keys();
                        running.prompt = vec![
                            self.say(Text::EnrolmentFor(&request.customer_id)),
                            self.say(Text::SamePinAgain),
                            self.say(Text::PinLine),
                            self.say(Text::KeysEnter),
                        ];
                        None
                    }
                    Some(first_pin) => {
                        if !bool::from(first_pin.as_slice().ct_eq(entry.digits.as_slice())) {
                            return Some(Err(refuse(
                                StatusCode::PinMismatch,
                                "the two PIN entries differ",
                            )));
                        }
                        Some(self.finish_enrol(request, pin_key, entry, hw))
                    }
                }
            }
            Operation::ApprovePayment { request, entry } => {
                let min = self.binding.as_ref().map_or(4, |b| b.pin_length_min);
                if entry.entered() < min {
                    // Too short: a real PIN pad beeps and keeps waiting.
                    return None;
                }
                Some(self.finish_payment(request, entry, hw))
            }
            Operation::ConfirmPairing { outcome, host_name } => {
                Some(self.finish_pairing(outcome, host_name, hw))
            }
            Operation::ChangePin(_) => self.change_pin_enter(running, hw),
            Operation::Wipe => Some(self.finish_wipe(hw)),
            Operation::SignConfirmation { request } => Some(self.finish_confirmation(request, hw)),
        }
    }
}
