//! What flows report while they run. Serialised as camelCase JSON with a `type` tag for the
//! desktop app. By construction no variant holds a PIN, a PIN digit, a key or a token: PIN
//! entry is a count.

use std::fmt;

use serde::Serialize;

/// A step of a flow, about to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// Reading the device's Info.
    ReadDeviceInfo,
    /// The bank checks the device certificate and prepares its keys.
    BankInitialise,
    /// The device installs the bank's key-block protection key.
    DeviceInitialise,
    /// The bank compares the key check value.
    BankCompleteInitialise,
    /// The bank prepares the enrolment of a customer.
    BankEnrol,
    /// The customer chooses a PIN on the device keypad (twice).
    DeviceEnrol,
    /// The bank stores the PIN verification value and binds the device.
    BankCompleteEnrol,
    /// Pairing: keys exchanged with the device.
    PairBegin,
    /// Pairing: the user confirms the code on the device.
    PairConfirm,
    /// Login: the bank checks the device is registered, bound and not revoked.
    LoginBegin,
    /// Login: the device signs an integrity report.
    IntegrityReport,
    /// Login: the device installs fresh session keys.
    LoadSessionKeys,
    /// Login: the device answers the bank's challenge.
    BankChallenge,
    /// Payment: the bank prepares it.
    PreparePayment,
    /// Payment: the device shows it and the customer enters the PIN.
    DeviceApprove,
    /// Payment: the bank verifies MAC, counter and PIN and journals it.
    BankApproval,
    /// Payment: the device checks the bank's answer.
    DeviceVerify,
    /// Out-of-band confirmation: shown and signed on the device.
    SignConfirmation,
    /// Staff revoke a device.
    Revoke,
    /// A bank-signed command is relayed to the device.
    RelayBankCommand,
    /// An operator resets a tampered device.
    OperatorReset,
}

impl Step {
    /// Words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Step::ReadDeviceInfo => "reading the PIN pad's identity",
            Step::BankInitialise => "bank: checking the device certificate, preparing its keys",
            Step::DeviceInitialise => "PIN pad: installing the bank's key-block protection key",
            Step::BankCompleteInitialise => "bank: comparing the key check value",
            Step::BankEnrol => "bank: preparing the enrolment",
            Step::DeviceEnrol => "PIN pad: the customer chooses a PIN (twice) on the keypad",
            Step::BankCompleteEnrol => "bank: storing the PIN verification value, binding",
            Step::PairBegin => "pairing: exchanging keys with the PIN pad",
            Step::PairConfirm => "pairing: confirm the code on the PIN pad",
            Step::LoginBegin => "bank: is the device registered, bound, not revoked?",
            Step::IntegrityReport => "PIN pad: signing a firmware integrity report",
            Step::LoadSessionKeys => "PIN pad: installing fresh session keys",
            Step::BankChallenge => "PIN pad: answering the bank's challenge",
            Step::PreparePayment => "bank: preparing the payment",
            Step::DeviceApprove => "PIN pad: check the payment and enter the PIN",
            Step::BankApproval => "bank: verifying MAC, counter and PIN; journaling",
            Step::DeviceVerify => "PIN pad: checking the bank's answer",
            Step::SignConfirmation => "PIN pad: confirm and sign the payment",
            Step::Revoke => "bank: revoking the device",
            Step::RelayBankCommand => "PIN pad: applying the bank's signed command",
            Step::OperatorReset => "PIN pad: applying the operator's reset",
        }
    }
}

/// One thing a flow reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FlowEvent {
    /// A step starts.
    Step {
        /// Which.
        step: Step,
    },
    /// The device waits for the user (confirm a code or a payment).
    WaitingForUser,
    /// PIN entry on the device: how many digits, never which.
    PinEntry {
        /// Digits entered.
        entered: u8,
        /// Most digits possible.
        max: u8,
        /// `●●○○`.
        dots: String,
    },
    /// The device is busy with another program; retrying.
    DeviceBusy {
        /// Retry number.
        retry: u32,
    },
    /// Cancelling the request on the device.
    Cancelling,
    /// Pairing: the code both sides show; the user checks they match.
    ComparisonCode {
        /// Six digits.
        code: String,
    },
    /// Pairing done.
    Paired {
        /// The device.
        serial: String,
        /// The pairing's public id (hex).
        host_id: String,
    },
    /// Logged in at the bank.
    LoggedIn {
        /// The customer.
        customer_id: String,
        /// The device.
        serial: String,
    },
    /// The payment the device is about to show (the same bytes it will MAC).
    PaymentShown {
        /// Bank transaction id.
        transaction_id: String,
        /// Payee.
        payee_name: String,
        /// Payee account.
        payee_account: String,
        /// Amount, decimal point placed.
        amount: String,
        /// ISO 4217.
        currency: String,
    },
    /// The bank's verdict on the approval.
    BankVerdict {
        /// Bank transaction id.
        transaction_id: String,
        /// `approved`, `pin_incorrect`, ...
        result: String,
        /// The bank had already decided (a resent approval).
        replayed: bool,
        /// PIN tries left.
        pin_tries_left: Option<i64>,
    },
    /// What the device decided after checking the bank's answer.
    DeviceDecision {
        /// The verdict the device accepted.
        result: String,
        /// `safe` or `danger`.
        indicator: String,
        /// What its display shows.
        display_text: String,
    },
    /// A signed bank command (wipe, lock, unlock) reached the device; what it reports now.
    BankCommandApplied {
        /// The device.
        serial: String,
        /// `wipe`, `lock` or `unlock`.
        command: String,
        /// The device's lifecycle state after it (`revoked` after a wipe).
        lifecycle: String,
        /// Its lock state after it.
        lock: String,
    },
    /// An out-of-band confirmation was decided.
    ConfirmationDecided {
        /// Bank transaction id.
        transaction_id: String,
        /// `approved` / `declined`.
        status: String,
    },
}

/// One line for people (the CLI's progress display).
impl fmt::Display for FlowEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line: String = match self {
            FlowEvent::Step { step } => format!("  - {}", step.describe()),
            FlowEvent::WaitingForUser => "    waiting for the user on the PIN pad".into(),
            FlowEvent::PinEntry { dots, .. } => format!("    PIN {dots}"),
            FlowEvent::DeviceBusy { retry } => format!("    PIN pad busy, retry {retry}"),
            FlowEvent::Cancelling => "    cancelling".into(),
            FlowEvent::ComparisonCode { code } => {
                format!("    pairing code {code}: check the PIN pad shows the same")
            }
            FlowEvent::Paired { serial, host_id } => {
                format!("    paired with {serial} (host id {host_id})")
            }
            FlowEvent::LoggedIn {
                customer_id,
                serial,
            } => format!("    logged in: customer {customer_id} on {serial}"),
            FlowEvent::PaymentShown {
                payee_name,
                payee_account,
                amount,
                currency,
                ..
            } => format!(
                "    the PIN pad shows: pay {amount} {currency} to {payee_name} ({payee_account})"
            ),
            FlowEvent::BankVerdict {
                result, replayed, ..
            } => format!(
                "    bank verdict: {result}{}",
                if *replayed { " (replayed)" } else { "" }
            ),
            FlowEvent::DeviceDecision {
                result,
                indicator,
                display_text,
            } => format!(
                "    PIN pad decided: {result}, indicator {indicator}, display \"{display_text}\""
            ),
            FlowEvent::ConfirmationDecided {
                transaction_id,
                status,
            } => format!("    confirmation {transaction_id}: {status}"),
            FlowEvent::BankCommandApplied {
                serial,
                command,
                lifecycle,
                lock,
            } => format!(
                "    bank command {command} applied on {serial}: the PIN pad is {lifecycle}, {lock}"
            ),
        };
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_as_camel_case_with_a_type_tag() {
        let value = serde_json::to_value(FlowEvent::PinEntry {
            entered: 2,
            max: 4,
            dots: "●●○○".into(),
        })
        .unwrap_or_default();
        assert_eq!(value["type"], "pinEntry");
        assert_eq!(value["entered"], 2);
        let value = serde_json::to_value(FlowEvent::Step {
            step: Step::DeviceApprove,
        })
        .unwrap_or_default();
        assert_eq!(value["step"], "deviceApprove");
        let value = serde_json::to_value(FlowEvent::BankVerdict {
            transaction_id: "T".into(),
            result: "approved".into(),
            replayed: false,
            pin_tries_left: None,
        })
        .unwrap_or_default();
        assert_eq!(value["transactionId"], "T");
    }
}
