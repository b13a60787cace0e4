//! Out-of-band confirmation (8446183): a payment started elsewhere, shown on the device and
//! signed with the attestation key once the user approves.

use firmware_protocol::device_side;
use firmware_protocol::message::{Response, SignConfirmation};

use super::texts::Text;
use super::{Device, Operation, Refusal, Step, payload_refusal, payment_lines};
use crate::hardware::Hardware;

impl Device {
    pub(super) fn sign_confirmation<H: Hardware>(
        &mut self,
        request_id: u32,
        request: SignConfirmation,
        hw: &mut H,
    ) -> Result<Step, Refusal> {
        let mut prompt = vec![self.say(Text::ConfirmPayment)];
        prompt.extend(payment_lines(&request.payment, self.language));
        prompt.push(self.say(Text::KeysConfirm));
        self.start(
            request_id,
            Operation::SignConfirmation {
                request: Box::new(request),
            },
            prompt,
            hw,
        );
        Ok(Step::Pending)
    }

    /// OK on the confirmation prompt: the signature the bank verifies against the device
    /// certificate.
    pub(super) fn finish_confirmation<H: Hardware>(
        &mut self,
        request: &SignConfirmation,
        hw: &mut H,
    ) -> Result<Response, Refusal> {
        let answer = device_side::confirmation_signature(&self.attestation, request)
            .map_err(payload_refusal)?;
        self.outcome(vec![self.say(Text::PaymentConfirmed)], hw);
        Ok(Response::ConfirmationSignature(answer))
    }
}
