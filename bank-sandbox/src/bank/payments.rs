//! Payments (CN102004977A 107-110, CN103106582A): the bank prepares the canonical message
//! and MACs it with the session response key; the device's approval is checked (MAC under
//! the session MAC key over the very request the bank issued, device counter, PIN in the
//! HSM), journaled exactly once and answered with a MACed verdict.

use firmware_protocol::message::{
    self, Answer, ApprovePayment, BankResult as Verdict, Command, CurrencyCode, MacTag,
    PaymentDetails, Request, VerifyBankResponse,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{
    ActiveSession, Bank, BindingPin, PreparedFacts, device_refused, encode_request, seal_refused,
    unexpected_answer,
};
use crate::error::{BankError, BankResult};
use crate::store::{Backend, bulk_job};

/// Internal code: a concurrent prepare with the same idempotency key committed first.
const IDEMPOTENCY_RACE: &str = "idempotency_race";
use crate::util::{self, now_ms};

mod ledger;
mod prepare;
mod settle;
use ledger::{
    DEBIT, Decision, PAYEE_OTHER_CURRENCY, already_journaled, currency_mismatch, payee_currency,
    record_decision, session_active, session_ended,
};
pub(crate) use ledger::{Transfer, transfer};
use prepare::{NewPayment, write_prepared};
use settle::{Advance, settle_bulk, settle_in_one_statement, settled_in_bulk};

/// A payment the app asks the bank to prepare.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PaymentRequest {
    /// Payer account (default: the customer's first account in `currency`).
    #[serde(default)]
    pub payer_account: Option<String>,
    /// Payee account.
    pub payee_account: String,
    /// Payee name as the device will show it.
    pub payee_name: String,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// Reference text.
    #[serde(default)]
    pub reference: String,
    /// Client-chosen key: preparing twice with the same key returns the same payment.
    pub idempotency_key: String,
}

/// A prepared payment.
#[derive(Clone, Debug, Serialize)]
pub struct PreparedPayment {
    /// Bank transaction id.
    pub transaction_id: String,
    /// `prepared`, `approved`, `declined` or `cancelled`.
    pub status: String,
    /// The ApprovePayment request for the device (hex).
    pub approve_payment: String,
    /// The bank payment counter in it.
    pub counter: i64,
}

/// The bank's verdict on a device approval.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentDecision {
    /// Bank transaction id.
    pub transaction_id: String,
    /// `approved`, `pin_incorrect`, `insufficient_funds`, `account_blocked`, ...
    pub result: &'static str,
    /// The VerifyBankResponse request for the device (hex).
    pub verify_bank_response: String,
    /// Whether this answer repeats an earlier decision (an idempotent retry).
    pub replayed: bool,
    /// PIN tries left before the binding locks (after a wrong PIN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_tries_left: Option<i64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub account_number: String,
    pub currency: String,
    pub exponent: u8,
}

impl Account {
    fn from_row(row: &sqlx::any::AnyRow) -> BankResult<Self> {
        let exponent: i64 = row.try_get("exponent")?;
        Ok(Self {
            account_number: row.try_get("account_number")?,
            currency: row.try_get("currency")?,
            exponent: u8::try_from(exponent).map_err(|_| {
                BankError::internal(&format!("stored currency exponent {exponent}"))
            })?,
        })
    }
}

impl Bank {
    /// The payer account for a customer: the named one (must be theirs) or their first in
    /// the currency.
    pub(crate) async fn payer_account(
        &self,
        customer_id: &str,
        requested: Option<&str>,
        currency: &str,
    ) -> BankResult<Account> {
        let row = match requested {
            Some(number) => sqlx::query(&self.store.q(
                "SELECT account_number, currency, exponent FROM accounts WHERE account_number = ? AND customer_id = ?",
            ))
            .bind(number)
            .bind(customer_id)
            .fetch_optional(self.store.reader())
            .await?,
            None => sqlx::query(&self.store.q(
                "SELECT account_number, currency, exponent FROM accounts WHERE customer_id = ? AND currency = ? \
                 ORDER BY account_number LIMIT 1",
            ))
            .bind(customer_id)
            .bind(currency)
            .fetch_optional(self.store.reader())
            .await?,
        }
        .ok_or_else(|| BankError::not_found("unknown_account", "no such payer account for this customer"))?;
        let account = Account::from_row(&row)?;
        if account.currency != currency {
            return Err(BankError::invalid(format!(
                "the payer account is in {}, not {currency}",
                account.currency
            )));
        }
        Ok(account)
    }

    /// Fills the session's payer-account cache with all the customer's accounts, as
    /// [`Self::payer_account`] would find them (each by its number, and the first of each
    /// currency as that currency's default): read once when the session opens, so that a
    /// thousand sessions' first payments do not each wait for a read.
    pub(crate) async fn preload_payer_accounts(&self, session: &ActiveSession) -> BankResult<()> {
        let rows = sqlx::query(&self.store.q(
            "SELECT account_number, currency, exponent FROM accounts WHERE customer_id = ? \
             ORDER BY account_number LIMIT 8",
        ))
        .bind(session.customer_id.clone())
        .fetch_all(self.store.reader())
        .await?;
        let mut accounts = session
            .payer_accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for row in rows {
            let account = Account::from_row(&row)?;
            let currency = account.currency.clone();
            if !accounts
                .iter()
                .any(|(asked, c, _)| asked.is_none() && *c == currency)
            {
                accounts.push((None, currency.clone(), account.clone()));
            }
            accounts.push((Some(account.account_number.clone()), currency, account));
        }
        Ok(())
    }

    /// [`Self::payer_account`] through the session's cache.
    async fn session_payer_account(
        &self,
        session: &ActiveSession,
        request: &PaymentRequest,
    ) -> BankResult<Account> {
        let cached = |accounts: &Vec<(Option<String>, String, Account)>| {
            accounts
                .iter()
                .find(|(asked, currency, _)| {
                    *asked == request.payer_account && *currency == request.currency
                })
                .map(|(_, _, account)| account.clone())
        };
        let lock = || {
            session
                .payer_accounts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        if let Some(account) = cached(&lock()) {
            return Ok(account);
        }
        let account = self
            .payer_account(
                &session.customer_id,
                request.payer_account.as_deref(),
                &request.currency,
            )
            .await?;
        let mut accounts = lock();
        // A session asks for a handful of accounts; the cap only bounds a misbehaving one.
        if cached(&accounts).is_none() && accounts.len() < 32 {
            accounts.push((
                request.payer_account.clone(),
                request.currency.clone(),
                account.clone(),
            ));
        }
        Ok(account)
    }

    /// Refuses a payment in `currency` to an account of this bank held in another currency
    /// (it could not be credited), before anything is prepared or debited.
    pub(crate) async fn check_payee_currency(&self, payee: &str, currency: &str) -> BankResult<()> {
        match sqlx::query(&self.store.q(PAYEE_OTHER_CURRENCY))
            .bind(payee)
            .bind(currency)
            .fetch_optional(self.store.reader())
            .await?
        {
            Some(row) => Err(currency_mismatch(
                payee,
                &row.try_get::<String, _>(0)?,
                currency,
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn payment_details(
        request: &PaymentRequest,
        payer: &Account,
        transaction_id: &str,
    ) -> BankResult<PaymentDetails> {
        if request.amount_minor == 0 || i64::try_from(request.amount_minor).is_err() {
            return Err(BankError::invalid("amount_minor must be positive"));
        }
        if request.idempotency_key.is_empty() || request.idempotency_key.len() > 128 {
            return Err(BankError::invalid("idempotency_key: 1 to 128 characters"));
        }
        Ok(PaymentDetails {
            payer_account: payer.account_number.clone(),
            payee_account: request.payee_account.clone(),
            payee_name: request.payee_name.clone(),
            amount_minor: request.amount_minor,
            currency: CurrencyCode::new(&request.currency)
                .map_err(|e| BankError::invalid(e.to_string()))?,
            currency_exponent: payer.exponent,
            reference: request.reference.clone(),
            bank_transaction_id: transaction_id.to_owned(),
        })
    }

    /// Looks up an earlier payment with the same idempotency key: the same payment again
    /// gives its stored row; a different one is a conflict.
    pub(crate) async fn idempotent_replay(
        &self,
        customer_id: &str,
        request: &PaymentRequest,
        payer: &str,
    ) -> BankResult<Option<sqlx::any::AnyRow>> {
        let row = sqlx::query(&self.store.q(
            "SELECT transaction_id, status, request, bank_counter, payer_account, payee_account, payee_name, \
             amount_minor, currency, reference FROM payments WHERE customer_id = ? AND idempotency_key = ?",
        ))
        .bind(customer_id)
        .bind(request.idempotency_key.clone())
        .fetch_optional(self.store.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let same = row.try_get::<String, _>("payer_account")? == payer
            && row.try_get::<String, _>("payee_account")? == request.payee_account
            && row.try_get::<String, _>("payee_name")? == request.payee_name
            && row.try_get::<i64, _>("amount_minor")? == request.amount_minor as i64
            && row.try_get::<String, _>("currency")? == request.currency
            && row.try_get::<String, _>("reference")? == request.reference;
        if !same {
            return Err(BankError::conflict(
                "idempotency_conflict",
                "this idempotency key was used for a different payment",
            ));
        }
        Ok(Some(row))
    }

    /// Prepares a payment for the logged-in device: the ApprovePayment request, MACed under
    /// the session response key with the next bank payment counter.
    pub(crate) async fn prepare_payment(
        &self,
        session: &ActiveSession,
        request: &PaymentRequest,
    ) -> BankResult<PreparedPayment> {
        let payer = self.session_payer_account(session, request).await?;
        // No lookup of the idempotency key first: the insert below fails on the unique
        // (customer, key) index when it was used before, and only then is the stored payment
        // read. A new payment (the usual case) costs no extra query.
        let transaction_id = util::time_ordered_id("TX-")?;
        let details = Self::payment_details(request, &payer, &transaction_id)?;
        let payment = NewPayment {
            transaction_id: transaction_id.clone(),
            customer_id: session.customer_id.clone(),
            binding_id: session.binding_id.clone(),
            session_id: session.session_id,
            response_key: session.response_key.clone(),
            idempotency_key: request.idempotency_key.clone(),
            details,
            expires_at: session.expires_at,
        };
        let last_counter = session.last_counter();
        let (step, expected) =
            match last_counter.filter(|_| self.store.backend() == Backend::Postgres) {
                Some(last) => {
                    let bulk = payment.bulk(last)?;
                    (Some(bulk.step), Some(bulk.expected))
                }
                None => (None, None),
            };
        let written = self
            .store
            .write_bulk(
                step,
                bulk_job(move |conn, row| {
                    Box::pin(async move {
                        let bulk = expected.zip(row);
                        write_prepared(conn, &payment, last_counter, bulk).await
                    })
                }),
            )
            .await;
        let (counter, encoded, approve) = match written {
            Ok(done) => done,
            // The key was used before (or by a concurrent prepare, committed by the time
            // the failed insert is answered): the same payment again gets the stored one.
            Err(e) if e.code == IDEMPOTENCY_RACE => {
                let row = self
                    .idempotent_replay(&session.customer_id, request, &payer.account_number)
                    .await?
                    .ok_or_else(|| BankError::internal(&"idempotency key taken, no payment"))?;
                return Ok(PreparedPayment {
                    transaction_id: row.try_get("transaction_id")?,
                    status: row.try_get("status")?,
                    approve_payment: hex::encode(row.try_get::<Vec<u8>, _>("request")?),
                    counter: row.try_get::<Option<i64>, _>("bank_counter")?.unwrap_or(0),
                });
            }
            Err(e) => return Err(e),
        };
        session.remember_counter(counter);
        session.remember_prepared(PreparedFacts {
            transaction_id: transaction_id.clone(),
            approve,
            payer: payer.account_number,
            payee: request.payee_account.clone(),
            amount: request.amount_minor as i64,
            currency: request.currency.clone(),
        });
        Ok(PreparedPayment {
            transaction_id,
            status: "prepared".into(),
            approve_payment: encoded,
            counter,
        })
    }

    /// Checks the device's approval and decides the payment, journaling it exactly once.
    pub(crate) async fn approve_payment(
        &self,
        session: &ActiveSession,
        transaction_id: &str,
        approval_hex: &str,
    ) -> BankResult<PaymentDecision> {
        let approval_bytes = hex::decode(approval_hex.trim())
            .map_err(|_| BankError::invalid("payment_approved: not hexadecimal"))?;
        // The payment this session prepared last is known without a query (the usual case);
        // any other is read, and a decided one answered from the store.
        let facts = match session.take_prepared(transaction_id) {
            // Decided already through another process (or a concurrent copy of this
            // approval): the store has the decision, and a copy of the approval gets it.
            Some(facts) => match self.decide(session, facts, &approval_bytes).await {
                Err(e) if matches!(e.code, "replayed_counter" | "payment_already_decided") => {
                    return match self
                        .prepared_facts(session, transaction_id, &approval_bytes)
                        .await?
                    {
                        Err(stored) => Ok(stored),
                        Ok(_) => Err(e),
                    };
                }
                decided => return decided,
            },
            None => match self
                .prepared_facts(session, transaction_id, &approval_bytes)
                .await?
            {
                Ok(facts) => facts,
                Err(replayed) => return Ok(replayed),
            },
        };
        self.decide(session, facts, &approval_bytes).await
    }

    /// Decides a prepared payment on the device's approval: MAC, counter, PIN, money, and
    /// the stored decision, journaled exactly once.
    async fn decide(
        &self,
        session: &ActiveSession,
        facts: PreparedFacts,
        approval_bytes: &[u8],
    ) -> BankResult<PaymentDecision> {
        let transaction_id = facts.transaction_id.clone();
        let transaction_id = transaction_id.as_str();
        let approval_bytes = approval_bytes.to_vec();
        let (_, response) = message::decode_response(&approval_bytes).map_err(|e| {
            BankError::invalid(format!("payment_approved: not a device response: {e}"))
        })?;
        let approved = match ApprovePayment::answer(response) {
            Answer::Done(approved) => approved,
            Answer::Refused(e) => {
                sqlx::query(&self.store.q(
                    "UPDATE payments SET status = 'cancelled', decided_at = ? WHERE transaction_id = ? AND status = 'prepared'",
                ))
                .bind(now_ms())
                .bind(transaction_id)
                .execute(self.store.writer())
                .await?;
                return Err(device_refused(&e));
            }
            Answer::Unexpected(unexpected) => {
                return Err(unexpected_answer("payment_approved", unexpected));
            }
        };
        if !approved.mac_verifies(&session.mac_key, &facts.approve) {
            tracing::warn!(
                transaction_id,
                serial = session.device_serial,
                "payment approval MAC rejected"
            );
            return Err(BankError::rejected(
                "bad_mac",
                "the approval's MAC does not verify over the payment the bank prepared \
                 (tampered payee, amount or currency, or another key)",
            ));
        }
        let pin = self.binding_pin(session).await?;
        // Checked now, used only if the binding is not PIN-locked (read in the transaction).
        let pin_matches = self.hsm.verify_pin(
            &session.pin_key,
            &approved.pin_block,
            &pin.pin_account_number,
            session.binding_id.as_bytes(),
            &pin.pvv,
        );
        let device_counter = i64::try_from(approved.device_counter)
            .map_err(|_| BankError::rejected("replayed_counter", "device counter out of range"))?;
        let PreparedFacts {
            amount,
            payer,
            payee,
            currency,
            ..
        } = facts;

        let binding_id = session.binding_id.clone();
        let (session_id, response_key) = (session.session_id, session.response_key.clone());
        let max_wrong_pins = self.config.max_wrong_pins;
        let tx_id = transaction_id.to_owned();
        let serial = session.device_serial.clone();
        let device_counter_wire = approved.device_counter;
        let transaction_id_owned = transaction_id.to_owned();
        // The MACed VerifyBankResponse for a verdict.
        let respond = move |verdict: Verdict| -> BankResult<String> {
            let mut answer = VerifyBankResponse {
                session_id,
                bank_transaction_id: transaction_id_owned.clone(),
                device_counter: device_counter_wire,
                result: verdict,
                bank_mac: MacTag([0; 16]),
            };
            answer.seal_bank_mac(&response_key).map_err(seal_refused)?;
            encode_request(Request::VerifyBankResponse(answer))
        };
        // PostgreSQL, the usual case (PIN right): the decision's share of the batch's bulk
        // statement, with both responses MACed here rather than on the writer.
        let session_hex = hex::encode(session_id.0);
        let bulk = if self.store.backend() == Backend::Postgres && pin_matches {
            let responses = (
                respond(Verdict::Approved)?,
                respond(Verdict::InsufficientFunds)?,
            );
            let transfer = Transfer {
                transaction_id,
                payer: &payer,
                payee: &payee,
                amount,
                currency: &currency,
            };
            let advance = Advance {
                binding_id: &binding_id,
                session_hex: &session_hex,
            };
            let step = settle_bulk(
                &advance,
                &transfer,
                device_counter,
                approval_bytes.clone(),
                (&responses.0, &responses.1),
            )?;
            Some((step, responses))
        } else {
            None
        };
        let (step, responses) = bulk.unzip();
        let (verdict, encoded, pin_tries_left) = self
            .store
            .write_bulk(step, bulk_job(move |conn, row| {
                Box::pin(async move {
                    if let (Some(row), Some((approved, short))) = (row, responses) {
                        let transfer = Transfer {
                            transaction_id: &tx_id,
                            payer: &payer,
                            payee: &payee,
                            amount,
                            currency: &currency,
                        };
                        if let Some(verdict) = settled_in_bulk(conn, &row, &transfer)? {
                            let encoded = if verdict == Verdict::Approved { approved } else { short };
                            return Ok((verdict, encoded, None));
                        }
                        // Nothing written: the steps below find out what stopped it.
                    } else if conn.is_postgres() && pin_matches {
                        // PostgreSQL, the usual case (PIN right, none wrong before, not locked):
                        // counter, session check, debit, journal and decision in one statement.
                        let transfer = Transfer {
                            transaction_id: &tx_id,
                            payer: &payer,
                            payee: &payee,
                            amount,
                            currency: &currency,
                        };
                        let approved = respond(Verdict::Approved)?;
                        let short = respond(Verdict::InsufficientFunds)?;
                        let advance = Advance {
                            binding_id: &binding_id,
                            session_hex: &session_hex,
                        };
                        if let Some(verdict) = settle_in_one_statement(
                            conn,
                            Some(advance),
                            &transfer,
                            device_counter,
                            approval_bytes.clone(),
                            (&approved, &short),
                        )
                        .await?
                        {
                            let encoded = if verdict == Verdict::Approved { approved } else { short };
                            return Ok((verdict, encoded, None));
                        }
                        // Nothing written: the steps below find out what stopped it.
                    }
                    // Advancing the counter, checking that the session is still active (another
                    // bank process may have ended it) and reading the PIN state is one statement.
                    let advanced = match conn
                        .fetch_optional(
                            "UPDATE bindings SET device_counter = ? WHERE binding_id = ? AND device_counter < ? \
                             AND EXISTS (SELECT 1 FROM sessions WHERE session_id = ? AND stage = 'active' \
                             AND expires_at > ?) RETURNING pin_locked, wrong_pin_count",
                            vec![
                                device_counter.into(),
                                binding_id.as_str().into(),
                                device_counter.into(),
                                session_hex.as_str().into(),
                                now_ms().into(),
                            ],
                        )
                        .await?
                    {
                        Some(row) => row,
                        None if !session_active(conn, &session_hex).await? => return Err(session_ended()),
                        None => {
                            return Err(BankError::rejected(
                                "replayed_counter",
                                "the device counter is not greater than the last accepted: a replayed approval",
                            ));
                        }
                    };
                    let pin_locked = advanced.int(0)? != 0;
                    let wrong_before = advanced.int(1)?;
                    let pin_ok = !pin_locked && pin_matches;
                    let mut pin_tries_left = None;
                    let verdict = if pin_locked {
                        Verdict::AccountBlocked
                    } else if !pin_ok {
                        let wrong = conn
                            .fetch_optional(
                                "UPDATE bindings SET wrong_pin_count = wrong_pin_count + 1 WHERE binding_id = ? \
                                 RETURNING wrong_pin_count",
                                vec![binding_id.as_str().into()],
                            )
                            .await?
                            .ok_or_else(|| BankError::unauthorized("the device is no longer bound"))?
                            .int(0)?;
                        if wrong >= max_wrong_pins {
                            conn.execute(
                                "UPDATE bindings SET pin_locked = 1 WHERE binding_id = ?",
                                vec![binding_id.as_str().into()],
                            )
                            .await?;
                            tracing::warn!(serial, "binding locked after wrong PINs");
                        }
                        pin_tries_left = Some((max_wrong_pins - wrong).max(0));
                        Verdict::PinIncorrect
                    } else {
                        if wrong_before != 0 {
                            conn.execute(
                                "UPDATE bindings SET wrong_pin_count = 0 WHERE binding_id = ?",
                                vec![binding_id.as_str().into()],
                            )
                            .await?;
                        }
                        if conn.is_postgres() {
                            // PostgreSQL: debit, journal and decision in one statement.
                            let transfer = Transfer {
                                transaction_id: &tx_id,
                                payer: &payer,
                                payee: &payee,
                                amount,
                                currency: &currency,
                            };
                            let approved = respond(Verdict::Approved)?;
                            let short = respond(Verdict::InsufficientFunds)?;
                            let verdict = settle_in_one_statement(
                                conn,
                                None,
                                &transfer,
                                device_counter,
                                approval_bytes,
                                (&approved, &short),
                            )
                            .await?
                            .ok_or_else(|| BankError::internal(&"settlement without a counter step"))?;
                            let encoded = if verdict == Verdict::Approved { approved } else { short };
                            return Ok((verdict, encoded, None));
                        }
                        if conn.execute(DEBIT, vec![amount.into(), payer.as_str().into(), amount.into()]).await? == 1 {
                            Verdict::Approved
                        } else {
                            Verdict::InsufficientFunds
                        }
                    };
                    let encoded = respond(verdict)?;
                    let decision = Decision {
                        transaction_id: &tx_id,
                        verdict,
                        device_counter,
                        approval: approval_bytes,
                        response: super::encoded_bytes(&encoded)?,
                    };
                    let transfer = Transfer {
                        transaction_id: &tx_id,
                        payer: &payer,
                        payee: &payee,
                        amount,
                        currency: &currency,
                    };
                    record_decision(conn, decision, &transfer).await?;
                    Ok::<_, BankError>((verdict, encoded, pin_tries_left))
                })
            }))
            .await?;
        Ok(PaymentDecision {
            transaction_id: transaction_id.to_owned(),
            result: verdict.as_str(),
            verify_bank_response: encoded,
            replayed: false,
            pin_tries_left,
        })
    }

    /// A prepared payment of this session from the store: `Err` carries the stored decision
    /// when it is decided already (an idempotent retry of the same approval).
    async fn prepared_facts(
        &self,
        session: &ActiveSession,
        transaction_id: &str,
        approval_bytes: &[u8],
    ) -> BankResult<Result<PreparedFacts, PaymentDecision>> {
        let row = sqlx::query(&self.store.q(
            "SELECT kind, customer_id, session_id, status, request, approval, response, result, payer_account, \
             payee_account, amount_minor, currency FROM payments WHERE transaction_id = ?",
        ))
        .bind(transaction_id)
        // A prepared payment was committed before it was answered, so a reader sees it; the
        // decision re-checks its state inside the write transaction.
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| BankError::not_found("unknown_payment", "no such payment"))?;
        if row.try_get::<String, _>("customer_id")? != session.customer_id
            || row.try_get::<String, _>("kind")? != "device"
        {
            return Err(BankError::not_found("unknown_payment", "no such payment"));
        }
        if row.try_get::<Option<String>, _>("session_id")?.as_deref()
            != Some(hex::encode(session.session_id.0).as_str())
        {
            return Err(BankError::conflict(
                "session_mismatch",
                "the payment was prepared in another session",
            ));
        }
        let status: String = row.try_get("status")?;
        if status != "prepared" {
            return self
                .replay_decision(transaction_id, &row, approval_bytes)
                .map(Err);
        }
        let request: Vec<u8> = row.try_get("request")?;
        let approve = match message::decode_request(&request) {
            Ok((_, Request::ApprovePayment(a))) => a,
            _ => return Err(BankError::internal(&"stored ApprovePayment")),
        };
        Ok(Ok(PreparedFacts {
            transaction_id: transaction_id.to_owned(),
            approve,
            payer: row.try_get("payer_account")?,
            payee: row.try_get("payee_account")?,
            amount: row.try_get("amount_minor")?,
            currency: row.try_get("currency")?,
        }))
    }

    /// The binding's PIN account number and PVV, from the session once read.
    async fn binding_pin<'s>(&self, session: &'s ActiveSession) -> BankResult<&'s BindingPin> {
        if let Some(pin) = session.binding_pin.get() {
            return Ok(pin);
        }
        let binding = sqlx::query(
            &self
                .store
                .q("SELECT pin_account_number, pvv FROM bindings WHERE binding_id = ?"),
        )
        .bind(session.binding_id.clone())
        .fetch_one(self.store.reader())
        .await?;
        let pin = BindingPin {
            pin_account_number: binding.try_get("pin_account_number")?,
            pvv: binding
                .try_get::<Option<Vec<u8>>, _>("pvv")?
                .unwrap_or_default(),
        };
        Ok(session.binding_pin.get_or_init(|| pin))
    }

    fn replay_decision(
        &self,
        transaction_id: &str,
        row: &sqlx::any::AnyRow,
        approval_bytes: &[u8],
    ) -> BankResult<PaymentDecision> {
        let stored: Option<Vec<u8>> = row.try_get("approval")?;
        let response: Option<Vec<u8>> = row.try_get("response")?;
        let result: Option<i64> = row.try_get("result")?;
        match (stored, response, result) {
            (Some(stored), Some(response), Some(result)) if stored == approval_bytes => {
                let verdict = u8::try_from(result)
                    .ok()
                    .and_then(Verdict::from_wire)
                    .ok_or_else(|| BankError::internal(&"stored verdict"))?;
                Ok(PaymentDecision {
                    transaction_id: transaction_id.to_owned(),
                    result: verdict.as_str(),
                    verify_bank_response: hex::encode(response),
                    replayed: true,
                    pin_tries_left: None,
                })
            }
            _ => Err(BankError::conflict(
                "payment_already_decided",
                format!(
                    "the payment is already {}",
                    row.try_get::<String, _>("status").unwrap_or_default()
                ),
            )),
        }
    }

    /// A payment's state, for its customer.
    pub(crate) async fn payment_status(
        &self,
        customer_id: &str,
        transaction_id: &str,
    ) -> BankResult<serde_json::Value> {
        let row = sqlx::query(&self.store.q(
            "SELECT kind, status, result, payer_account, payee_account, payee_name, amount_minor, currency, reference \
             FROM payments WHERE transaction_id = ? AND customer_id = ?",
        ))
        .bind(transaction_id)
        .bind(customer_id)
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| BankError::not_found("unknown_payment", "no such payment"))?;
        let result = row
            .try_get::<Option<i64>, _>("result")?
            .and_then(|r| u8::try_from(r).ok())
            .and_then(Verdict::from_wire)
            .map(Verdict::as_str);
        Ok(serde_json::json!({
            "transaction_id": transaction_id,
            "kind": row.try_get::<String, _>("kind")?,
            "status": row.try_get::<String, _>("status")?,
            "result": result,
            "payer_account": row.try_get::<String, _>("payer_account")?,
            "payee_account": row.try_get::<String, _>("payee_account")?,
            "payee_name": row.try_get::<String, _>("payee_name")?,
            "amount_minor": row.try_get::<i64, _>("amount_minor")?,
            "currency": row.try_get::<String, _>("currency")?,
            "reference": row.try_get::<String, _>("reference")?,
        }))
    }

    /// The customer's accounts and balances.
    pub(crate) async fn accounts_of(&self, customer_id: &str) -> BankResult<serde_json::Value> {
        let rows = sqlx::query(&self.store.q(
            "SELECT account_number, name, currency, exponent, balance_minor FROM accounts WHERE customer_id = ? \
             ORDER BY account_number",
        ))
        .bind(customer_id)
        .fetch_all(self.store.reader())
        .await?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in rows {
            accounts.push(serde_json::json!({
                "account_number": row.try_get::<String, _>("account_number")?,
                "name": row.try_get::<String, _>("name")?,
                "currency": row.try_get::<String, _>("currency")?,
                "exponent": row.try_get::<i64, _>("exponent")?,
                "balance_minor": row.try_get::<i64, _>("balance_minor")?,
            }));
        }
        Ok(serde_json::json!({ "customer_id": customer_id, "accounts": accounts }))
    }
}
