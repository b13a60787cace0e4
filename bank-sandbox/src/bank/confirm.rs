//! Out-of-band confirmations (patent 8446183): a second terminal starts a payment, the bank
//! pushes it to the customer's app (server-sent events), the device signs it with its
//! attestation key, and the bank verifies the signature against the device certificate
//! before paying.

use firmware_protocol::message::{
    self, Answer, BankResult as Verdict, Command, Nonce, Request, SignConfirmation,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{
    ActiveSession, Bank, BankEvent, PaymentRequest, device_refused, encode_request,
    unexpected_answer,
};
use crate::certificate::DeviceCertificate;
use crate::error::{BankError, BankResult};
use crate::util::{self, now_ms};

/// A payment a terminal asks the customer to confirm on their device.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ConfirmationRequest {
    /// The customer who must confirm.
    pub customer_id: String,
    /// The payment.
    #[serde(flatten)]
    pub payment: PaymentRequest,
}

/// A confirmation as the terminal and the app see it.
#[derive(Clone, Debug, Serialize)]
pub struct ConfirmationView {
    /// Bank transaction id (also the confirmation id).
    pub transaction_id: String,
    /// `pending_confirmation`, `approved`, `declined`, `expired`.
    pub status: String,
    /// Verdict once decided.
    pub result: Option<&'static str>,
    /// The SignConfirmation request for the device (hex).
    pub sign_confirmation: String,
    /// Payee.
    pub payee_name: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// When the device's signature must have arrived (Unix ms).
    pub expires_at: i64,
}

fn view(row: &sqlx::any::AnyRow) -> BankResult<ConfirmationView> {
    Ok(ConfirmationView {
        transaction_id: row.try_get("transaction_id")?,
        status: row.try_get("status")?,
        result: row
            .try_get::<Option<i64>, _>("result")?
            .and_then(|r| u8::try_from(r).ok())
            .and_then(Verdict::from_wire)
            .map(Verdict::as_str),
        sign_confirmation: hex::encode(row.try_get::<Vec<u8>, _>("request")?),
        payee_name: row.try_get("payee_name")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        expires_at: row.try_get("expires_at")?,
    })
}

const VIEW_COLUMNS: &str =
    "transaction_id, status, result, request, payee_name, amount_minor, currency, expires_at";

impl Bank {
    /// Terminal: creates a payment that needs the customer's confirmation on their device
    /// and pushes it to their app.
    pub async fn create_confirmation(
        &self,
        request: &ConfirmationRequest,
        terminal: &str,
    ) -> BankResult<ConfirmationView> {
        let binding = sqlx::query(
            &self
                .store
                .q("SELECT binding_id FROM bindings WHERE customer_id = ? AND status = 'active'"),
        )
        .bind(request.customer_id.clone())
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| {
            BankError::conflict(
                "customer_not_bound",
                "the customer has no bound device to confirm with",
            )
        })?;
        let binding_id: String = binding.try_get("binding_id")?;
        let payment = &request.payment;
        let payer = self
            .payer_account(
                &request.customer_id,
                payment.payer_account.as_deref(),
                &payment.currency,
            )
            .await?;
        if let Some(row) = self
            .idempotent_replay(&request.customer_id, payment, &payer.account_number)
            .await?
        {
            let id: String = row.try_get("transaction_id")?;
            return self.confirmation_view(&id).await;
        }
        self.check_payee_currency(&payment.payee_account, &payment.currency)
            .await?;
        let transaction_id = util::time_ordered_id("TX-")?;
        let details = Self::payment_details(payment, &payer, &transaction_id)?;
        let sign = SignConfirmation {
            payment: details,
            nonce: Nonce(util::random_bytes::<16>()?),
        };
        let encoded = encode_request(Request::SignConfirmation(sign))?;
        let now = now_ms();
        sqlx::query(&self.store.q(
            "INSERT INTO payments (transaction_id, kind, customer_id, binding_id, idempotency_key, payer_account, \
             payee_account, payee_name, amount_minor, currency, exponent, reference, request, status, created_by, \
             created_at, expires_at) \
             VALUES (?, 'confirmation', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending_confirmation', ?, ?, ?)",
        ))
        .bind(transaction_id.clone())
        .bind(request.customer_id.clone())
        .bind(binding_id)
        .bind(payment.idempotency_key.clone())
        .bind(payer.account_number.clone())
        .bind(payment.payee_account.clone())
        .bind(payment.payee_name.clone())
        .bind(payment.amount_minor as i64)
        .bind(payment.currency.clone())
        .bind(i64::from(payer.exponent))
        .bind(payment.reference.clone())
        .bind(super::encoded_bytes(&encoded)?)
        .bind(terminal)
        .bind(now)
        .bind(now + self.config.confirmation_ttl_ms)
        .execute(self.store.writer())
        .await?;
        let view = self.confirmation_view(&transaction_id).await?;
        self.publish(
            &request.customer_id,
            BankEvent {
                event: "confirmation",
                data: serde_json::to_value(&view).unwrap_or_default(),
            },
        );
        tracing::info!(transaction_id, terminal, "confirmation requested");
        Ok(view)
    }

    /// One confirmation.
    pub async fn confirmation_view(&self, transaction_id: &str) -> BankResult<ConfirmationView> {
        let sql = format!(
            "SELECT {VIEW_COLUMNS} FROM payments WHERE transaction_id = ? AND kind = 'confirmation'"
        );
        let row = sqlx::query(&self.store.q(&sql))
            .bind(transaction_id)
            .fetch_optional(self.store.writer())
            .await?
            .ok_or_else(|| BankError::not_found("unknown_confirmation", "no such confirmation"))?;
        view(&row)
    }

    /// The customer's confirmations still waiting for the device.
    pub async fn pending_confirmations(
        &self,
        customer_id: &str,
    ) -> BankResult<Vec<ConfirmationView>> {
        let rows = sqlx::query(&self.store.q(&pending_sql()))
            .bind(customer_id)
            .bind(now_ms())
            .fetch_all(self.store.reader())
            .await?;
        rows.iter().map(view).collect()
    }

    /// The device's answer to SignConfirmation: a signature verified against the device
    /// certificate pays; a device refusal (the user declined) declines.
    pub(crate) async fn submit_confirmation(
        &self,
        session: &ActiveSession,
        transaction_id: &str,
        answer_hex: &str,
    ) -> BankResult<ConfirmationView> {
        let row = sqlx::query(&self.store.q(
            "SELECT customer_id, binding_id, status, request, payer_account, payee_account, amount_minor, currency, \
             expires_at FROM payments WHERE transaction_id = ? AND kind = 'confirmation'",
        ))
        .bind(transaction_id)
        .fetch_optional(self.store.writer())
        .await?
        .ok_or_else(|| BankError::not_found("unknown_confirmation", "no such confirmation"))?;
        if row.try_get::<String, _>("customer_id")? != session.customer_id {
            return Err(BankError::not_found(
                "unknown_confirmation",
                "no such confirmation",
            ));
        }
        if row.try_get::<String, _>("status")? != "pending_confirmation" {
            return Err(BankError::conflict(
                "payment_already_decided",
                "the confirmation is already decided",
            ));
        }
        if row.try_get::<i64, _>("expires_at")? < now_ms() {
            self.decide_confirmation(transaction_id, "expired", None)
                .await?;
            return Err(BankError::conflict(
                "confirmation_expired",
                "the confirmation expired",
            ));
        }
        let bytes = hex::decode(answer_hex.trim())
            .map_err(|_| BankError::invalid("confirmation_signature: not hexadecimal"))?;
        let (_, response) = message::decode_response(&bytes)
            .map_err(|e| BankError::invalid(format!("confirmation_signature: {e}")))?;
        let signature = match SignConfirmation::answer(response) {
            Answer::Done(s) => s.signature,
            Answer::Refused(e) => {
                self.decide_confirmation(transaction_id, "declined", Some(Verdict::Declined))
                    .await?;
                return Err(device_refused(&e));
            }
            Answer::Unexpected(unexpected) => {
                return Err(unexpected_answer("confirmation_signature", unexpected));
            }
        };
        let request: Vec<u8> = row.try_get("request")?;
        let sign = match message::decode_request(&request) {
            Ok((_, Request::SignConfirmation(s))) => s,
            _ => return Err(BankError::internal(&"stored SignConfirmation")),
        };
        let binding_id: String = row.try_get("binding_id")?;
        let serial: String =
            sqlx::query(&self.store.q(
                "SELECT device_serial FROM bindings WHERE binding_id = ? AND status = 'active'",
            ))
            .bind(binding_id)
            .fetch_optional(self.store.reader())
            .await?
            .ok_or_else(|| BankError::conflict("device_not_bound", "the binding ended"))?
            .try_get("device_serial")?;
        let device = self.device(&serial).await?;
        let key = DeviceCertificate::decode(&device.certificate)
            .map(|c| c.attestation_public_key)
            .map_err(|e| BankError::internal(&e))?;
        let verified = key.verify(
            SignConfirmation::SIGNATURE_DOMAIN,
            &sign
                .signed_bytes()
                .map_err(|e| BankError::invalid(e.to_string()))?,
            &signature,
        );
        if verified.is_err() {
            // Not the device's confirmation: declined, not left pending for another try (a
            // relay that can forge tries has nothing to gain from them).
            self.decide_confirmation(transaction_id, "declined", Some(Verdict::Declined))
                .await?;
            tracing::warn!(
                transaction_id,
                serial,
                "confirmation signature rejected; declined"
            );
            return Err(BankError::rejected(
                "bad_signature",
                "the confirmation signature does not verify against the device certificate; the confirmation is declined",
            ));
        }
        let amount: i64 = row.try_get("amount_minor")?;
        let payer: String = row.try_get("payer_account")?;
        let payee: String = row.try_get("payee_account")?;
        let currency: String = row.try_get("currency")?;
        let mut tx = self.store.begin().await?;
        let verdict = super::payments::transfer(
            &self.store,
            &mut tx,
            transaction_id,
            &payer,
            &payee,
            amount,
            &currency,
        )
        .await?;
        let status = if verdict == Verdict::Approved {
            "approved"
        } else {
            "declined"
        };
        let claimed = sqlx::query(&self.store.q(
            "UPDATE payments SET status = ?, result = ?, approval = ?, decided_at = ? \
             WHERE transaction_id = ? AND status = 'pending_confirmation'",
        ))
        .bind(status)
        .bind(i64::from(verdict.to_wire()))
        .bind(bytes)
        .bind(now_ms())
        .bind(transaction_id)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            return Err(BankError::conflict(
                "payment_already_decided",
                "decided concurrently",
            ));
        }
        tx.commit().await?;
        self.confirmation_view(transaction_id).await
    }

    async fn decide_confirmation(
        &self,
        transaction_id: &str,
        status: &str,
        verdict: Option<Verdict>,
    ) -> BankResult<()> {
        sqlx::query(&self.store.q(
            "UPDATE payments SET status = ?, result = ?, decided_at = ? WHERE transaction_id = ? \
             AND status = 'pending_confirmation'",
        ))
        .bind(status)
        .bind(verdict.map(|v| i64::from(v.to_wire())))
        .bind(now_ms())
        .bind(transaction_id)
        .execute(self.store.writer())
        .await?;
        Ok(())
    }
}

/// The customer's pending confirmations (customer, now): the only lookup of payments by
/// status, which the SQLite schema indexes for these rows alone.
fn pending_sql() -> String {
    format!(
        "SELECT {VIEW_COLUMNS} FROM payments WHERE customer_id = ? AND kind = 'confirmation' \
         AND status = 'pending_confirmation' AND expires_at > ? ORDER BY created_at"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sqlx::Row;

    use crate::store::Store;

    /// The pending-confirmations lookup goes through the partial index of pending rows
    /// (migrations/sqlite/0007), not through all of the customer's payments.
    #[tokio::test]
    async fn sqlite_pending_confirmations_use_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        let plan: Vec<String> =
            sqlx::query(&format!("EXPLAIN QUERY PLAN {}", super::pending_sql()))
                .bind("C")
                .bind(0_i64)
                .fetch_all(store.reader())
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect();
        assert!(
            plan.iter()
                .any(|d| d.contains("USING INDEX payments_pending_confirmations")),
            "{plan:?}"
        );
    }
}
