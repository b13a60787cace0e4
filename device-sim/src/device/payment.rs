//! Payments (PROTOCOL.md §6.1): ApprovePayment shown on the screen and approved with the
//! PIN, and the bank's verdict (VerifyBankResponse), MAC-checked, on the indicator.

use firmware_protocol::display::format_money;
use firmware_protocol::message::{
    ApprovePayment, Indicator, IndicatorSet, PaymentDetails, Response, StatusCode,
    VerifyBankResponse,
};

use super::texts::{Language, Text};
use super::{Device, Operation, PinEntry, Refusal, Step, payload_refusal, refuse};
use crate::hardware::{EventKind, Hardware};

pub(super) struct PendingPayment {
    pub(super) transaction_id: String,
    pub(super) device_counter: u64,
}

/// The review lines of a payment (§6.4): labels in `language`; the amount as
/// `firmware_protocol::display` formats it and the other values as authenticated, in every
/// language.
pub(super) fn payment_lines(payment: &PaymentDetails, language: Language) -> Vec<String> {
    let money = format_money(
        payment.currency.as_str(),
        payment.amount_minor,
        payment.currency_exponent,
    );
    let mut lines = vec![
        Text::Pay(&money).render(language),
        Text::To(&payment.payee_name).render(language),
        Text::Account(&payment.payee_account).render(language),
        Text::From(&payment.payer_account).render(language),
    ];
    if !payment.reference.is_empty() {
        lines.push(Text::Reference(&payment.reference).render(language));
    }
    lines
}

impl Device {
    pub(super) fn approve_payment<H: Hardware>(
        &mut self,
        request_id: u32,
        request: ApprovePayment,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.accept_bank_request(
            &request.session_id,
            request.counter,
            |key| request.bank_mac_verifies(key),
            "payment",
            hw,
        )?;
        let binding = self
            .binding
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NotBound, "no binding"))?;
        let max = binding.pin_length_max;
        self.last_payment_counter = request.counter;
        self.volatile.pending_payment = None;
        self.bank_contact(hw);
        self.persist_or_refuse(hw)?;
        let mut prompt = payment_lines(&request.payment, self.language);
        prompt.push(self.say(Text::PinLine));
        prompt.push(self.say(Text::KeysApprove));
        self.start(
            request_id,
            Operation::ApprovePayment {
                request: Box::new(request),
                entry: PinEntry::new(max),
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    pub(super) fn verify_bank_response<H: Hardware>(
        &mut self,
        request: VerifyBankResponse,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        self.accept_bank_verdict(
            &request.session_id,
            |key| request.bank_mac_verifies(key),
            "bank response MAC does not verify",
            hw,
        )?;
        let matches = self
            .volatile
            .pending_payment
            .as_ref()
            .is_some_and(|pending| {
                pending.transaction_id == request.bank_transaction_id
                    && pending.device_counter == request.device_counter
            });
        if !matches {
            return Err(refuse(
                StatusCode::TransactionMismatch,
                "no approved payment with that transaction id and device counter",
            ));
        }
        self.volatile.pending_payment = None;
        self.bank_contact(hw);
        self.set_indicator(Indicator::Safe, hw);
        let text = self.say(Text::BankResult(request.result));
        self.outcome(vec![text.clone()], hw);
        // The device's event record stays in one language (support reads it).
        hw.record(EventKind::State {
            change: format!(
                "bank response verified: {}",
                Text::BankResult(request.result).render(Language::En)
            ),
        });
        self.persist_or_refuse(hw)?;
        Ok(Step::Respond(Response::IndicatorSet(IndicatorSet {
            indicator: Indicator::Safe,
            result: request.result,
            display_text: text,
        })))
    }

    pub(super) fn finish_payment<H: Hardware>(
        &mut self,
        request: &ApprovePayment,
        entry: &PinEntry,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        let pin = entry.pin()?;
        let (pan, session) = self.pin_session()?;
        let device_counter = self.device_counter.saturating_add(1);
        let response = session
            .approve_payment(request, &pin, &pan, device_counter, hw.rng())
            .map_err(payload_refusal)?;
        self.device_counter = device_counter;
        self.volatile.pending_payment = Some(PendingPayment {
            transaction_id: request.payment.bank_transaction_id.clone(),
            device_counter,
        });
        self.outcome(vec![self.say(Text::SentToBank)], hw);
        self.persist_or_refuse(hw)?;
        Ok(Response::PaymentApproved(response))
    }
}
