//! Enrolment, login and payment with the kit as the test bank (PROTOCOL.md §3.9, §5, §6.2,
//! §6.3, §6.5): every MAC, signature and PIN block the device produces is checked with the
//! keys the kit gave it.

use firmware_protocol::crypto::ecdsa::{EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{Key, KeyAlgorithm, KeyMaterial, MacKey, PinKey, Usage};
use firmware_protocol::crypto::pinblock::{self, EncipheredPinBlock, Pan};
use firmware_protocol::crypto::tr31::{
    self, Algorithm, Exportability, Header, KeyContext, KeyLengthMasking, KeyUsageCode, KeyVersion,
    ModeOfUse, Version,
};
use firmware_protocol::link::KeepaliveStatus;
use firmware_protocol::message::{
    ApprovePayment, BankChallenge, BankResult, CurrencyCode, EcdsaSignature, Enrol,
    GetIntegrityReport, Indicator, Kcv, KeyBlock, LoadSessionKeys, MacTag, Nonce, PaymentDetails,
    PinBlock, PinBlockFormat, Request, Response, SessionId, StatusCode, WrappedKey,
};
use zeroize::Zeroizing;

use super::probe::UserScript;
use super::{Case, Ctx, Outcome, Why, case_fn, describe_response, expect, expect_status, fail};

/// The kit's test PIN (typed on the test unit through the hook).
pub(super) const TEST_PIN: &str = "739164";
/// The PAN field of the binding (a test number).
const TEST_PAN: &str = "4000001234567899";
const PIN_MAX: u8 = 6;

/// What the enrolment and login cases left for the later ones.
#[derive(Default)]
pub(crate) struct FlowState {
    pin_key: Option<PinKey>,
    pin_keepalives: Option<Vec<KeepaliveStatus>>,
    pub(super) session: Option<SessionKeys>,
    /// The last bank counter sent (ApprovePayment and ChangePin share it, PROTOCOL.md §6.12).
    pub(super) payment_counter: u64,
    /// The device counter of the last PIN change the device sent (owner_cases).
    pub(super) pin_change_counter: Option<u64>,
    approved: Option<(Request, u64, String)>,
}

pub(super) struct SessionKeys {
    pub(super) id: SessionId,
    pub(super) pin_key: PinKey,
    pub(super) mac_key: MacKey,
    pub(super) response_key: MacKey,
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "bank.enrol",
            section: "6.2",
            title: "Enrol: the PIN chosen twice on the keypad",
            expected: "Enrolled with a format 4 PIN block of the typed PIN under the given PIN key",
            after: &["bank.initialise"],
            run: case_fn!(enrol),
        },
        Case {
            id: "bank.integrity-report",
            section: "4.4",
            title: "integrity report over the bank's nonce",
            expected: "IntegrityReport signed by the attestation key (domain device-attestation) over nonce and report",
            after: &["msg.getinfo"],
            run: case_fn!(integrity_report),
        },
        Case {
            id: "bank.login",
            section: "3.9",
            title: "login: session keys and the bank challenge",
            expected: "KeysLoaded for the session; ChallengeResponse whose MAC verifies under the session MAC key",
            after: &["bank.enrol", "pair.confirm"],
            run: case_fn!(login),
        },
        Case {
            id: "bank.payment",
            section: "3.9",
            title: "payment approved with the PIN, bank response verified",
            expected: "PaymentApproved (MAC verifies, PIN block holds the typed PIN); IndicatorSet safe, \"Approved\"",
            after: &["bank.login"],
            run: case_fn!(payment),
        },
        Case {
            id: "link.keepalive.pin-entry",
            section: "2.5",
            title: "KEEPALIVE during PIN entry",
            expected: "KEEPALIVE 03 EE MM at the payment PIN, MM = the binding's maximum, EE = 1, 2, ... as each digit is typed",
            after: &["bank.payment"],
            run: case_fn!(keepalive_pin_entry),
        },
        Case {
            id: "bank.payment.replay",
            section: "6.3",
            title: "replayed ApprovePayment counter",
            expected: "Error(StaleBankCounter)",
            after: &["bank.payment"],
            run: case_fn!(payment_replay),
        },
        Case {
            id: "bank.payment.bad-mac",
            section: "6.5",
            title: "ApprovePayment with a wrong bank MAC",
            expected: "Error(BadBankMac) with indicator danger",
            after: &["bank.login"],
            run: case_fn!(payment_bad_mac),
        },
    ]
}

fn build_error(e: impl std::fmt::Display) -> Why {
    Why::Fail(format!("cannot build the request: {e}"))
}

fn fresh_key<U: Usage>(ctx: &mut Ctx) -> Result<Key<U>, Why> {
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(ctx.probe.random_bytes());
    Key::new(KeyAlgorithm::Aes, bytes.as_slice()).map_err(build_error)
}

fn wrap(
    ctx: &mut Ctx,
    key: &KeyMaterial,
    code: KeyUsageCode,
    mode: ModeOfUse,
) -> Result<WrappedKey, Why> {
    let header = Header::new(
        Version::D,
        code,
        Algorithm::Aes,
        mode,
        KeyVersion::UNUSED,
        Exportability::NonExportable,
    )
    .with_key_context(KeyContext::ExchangeOnly);
    let kbpk = ctx
        .bank_state
        .kbpk
        .clone()
        .ok_or_else(|| Why::Skip("needs bank.initialise".into()))?;
    let block = tr31::wrap(
        &kbpk,
        &header,
        key,
        KeyLengthMasking::AlgorithmMaximum,
        ctx.probe.rng(),
    )
    .map_err(build_error)?;
    let check = kcv::compute(key, KcvMethod::standard_for(key.algorithm()));
    Ok(WrappedKey {
        key_block: KeyBlock::new(&block).map_err(build_error)?,
        kcv: Kcv::new(check.as_bytes()).map_err(build_error)?,
    })
}

fn pin_presses() -> UserScript {
    let mut keys: Vec<String> = TEST_PIN.chars().map(String::from).collect();
    keys.push("enter".into());
    UserScript {
        presses: vec![keys.clone(), keys],
        key_by_key: false,
    }
}

/// The PIN inside a format 4 block, or why not.
pub(super) fn pin_of(block: &PinBlock, key: &PinKey) -> Result<Zeroizing<String>, String> {
    if block.format() != PinBlockFormat::Iso4 {
        return Err(format!("PIN block format {:?}, not 4", block.format()));
    }
    let pan = Pan::new(TEST_PAN).map_err(|e| e.to_string())?;
    let enciphered =
        EncipheredPinBlock::from_bytes(pinblock::PinBlockFormat::Iso4, block.enciphered())
            .map_err(|e| e.to_string())?;
    let pin = pinblock::decrypt_pin(&enciphered, Some(&pan), key)
        .map_err(|e| format!("the PIN block does not decipher: {e}"))?;
    Ok(Zeroizing::new(pin.reveal_digits().to_owned()))
}

async fn enrol(ctx: &mut Ctx) -> Outcome {
    ctx.hook()?;
    let pin_key: PinKey = fresh_key(ctx)?;
    let wrapped = wrap(
        ctx,
        pin_key.material(),
        KeyUsageCode::P0,
        ModeOfUse::EncryptOnly,
    )?;
    let sequence = super::session_cases::next_sequence(ctx).await?;
    let device_serial = ctx
        .info
        .as_ref()
        .map(|info| info.serial.clone())
        .ok_or_else(|| Why::Skip("needs msg.getinfo".into()))?;
    let mut request = Enrol {
        device_serial,
        sequence,
        customer_id: "conformance-customer".into(),
        pin_account_number: TEST_PAN.into(),
        pin_length_min: 4,
        pin_length_max: PIN_MAX,
        pin_key: wrapped,
        signature: EcdsaSignature::from_array([0; 64]),
    };
    let signed = request.signed_bytes().map_err(build_error)?;
    request.signature = ctx
        .bank()?
        .management
        .sign(SignatureDomain::BankCommand, &signed);
    let (response, _) = ctx
        .ask_with(&Request::Enrol(request), &pin_presses())
        .await?;
    let block = expect::<Enrol>(response)?.pin_block;
    ctx.bank_state.last_sequence = Some(sequence);
    match pin_of(&block, &pin_key) {
        Ok(pin) if pin.as_str() == TEST_PIN => {
            ctx.flow.pin_key = Some(pin_key);
            Ok("Enrolled; the format 4 PIN block holds the typed PIN".into())
        }
        Ok(_) => fail("Enrolled, but the PIN block holds another PIN"),
        Err(error) => fail(format!("Enrolled, but {error}")),
    }
}

async fn keepalive_pin_entry(ctx: &mut Ctx) -> Outcome {
    let statuses = ctx.flow.pin_keepalives.clone().unwrap_or_default();
    let entries: Vec<(u8, u8)> = statuses
        .iter()
        .filter_map(|s| match s {
            KeepaliveStatus::PinEntry(progress) => Some((progress.entered(), progress.max())),
            _ => None,
        })
        .collect();
    let digits = u8::try_from(TEST_PIN.len()).unwrap_or(u8::MAX);
    let mut counts: Vec<u8> = entries.iter().map(|(entered, _)| *entered).collect();
    counts.dedup();
    let every_digit = (0..=digits).all(|n| counts.contains(&n));
    let all_max = entries.iter().all(|(_, max)| *max == PIN_MAX);
    let seen = format!(
        "{} PIN-entry KEEPALIVEs, max {}, counts {counts:?}",
        entries.len(),
        entries
            .first()
            .map_or(String::from("-"), |(_, max)| max.to_string()),
    );
    if entries.is_empty() || !all_max || !every_digit {
        return fail(seen);
    }
    Ok(seen)
}

async fn integrity_report(ctx: &mut Ctx) -> Outcome {
    let info = ctx
        .info
        .clone()
        .ok_or_else(|| Why::Skip("needs msg.getinfo".into()))?;
    let request = GetIntegrityReport {
        nonce: Nonce(ctx.probe.random_bytes()),
    };
    let report =
        expect::<GetIntegrityReport>(ctx.ask(&Request::GetIntegrityReport(request)).await?)?;
    let key = EcdsaVerifyingKey::from_sec1_bytes(info.attestation_public_key.as_bytes())
        .map_err(|e| Why::Fail(format!("Info.attestation_public_key: {e}")))?;
    let signed = report.signed_bytes(&request).map_err(build_error)?;
    if key
        .verify(
            SignatureDomain::DeviceAttestation,
            &signed,
            &report.signature,
        )
        .is_err()
    {
        return fail("IntegrityReport whose signature does not verify");
    }
    if report.device_serial != info.serial || report.firmware_hash != info.firmware_hash {
        return fail("IntegrityReport naming another serial or firmware than Info");
    }
    Ok("IntegrityReport signature verifies under the attestation key".into())
}

async fn login(ctx: &mut Ctx) -> Outcome {
    let pin_key: PinKey = fresh_key(ctx)?;
    let mac_key: MacKey = fresh_key(ctx)?;
    let response_key: MacKey = fresh_key(ctx)?;
    let id = SessionId(ctx.probe.random_bytes());
    let load = LoadSessionKeys {
        session_id: id,
        pin_key: wrap(
            ctx,
            pin_key.material(),
            KeyUsageCode::P0,
            ModeOfUse::EncryptOnly,
        )?,
        mac_key: wrap(
            ctx,
            mac_key.material(),
            KeyUsageCode::M6,
            ModeOfUse::MacGenerateOnly,
        )?,
        response_key: wrap(
            ctx,
            response_key.material(),
            KeyUsageCode::M6,
            ModeOfUse::MacVerifyOnly,
        )?,
    };
    let (response, _) = ctx
        .ask_verified_with(&Request::LoadSessionKeys(load), &UserScript::default())
        .await?;
    match response {
        Response::KeysLoaded(loaded) if loaded.session_id == id => {}
        other => return fail(describe_response(&other)),
    }
    let challenge = BankChallenge {
        session_id: id,
        bank_nonce: Nonce(ctx.probe.random_bytes()),
    };
    let (response, _) = ctx
        .ask_verified_with(&Request::BankChallenge(challenge), &UserScript::default())
        .await?;
    let answer = expect::<BankChallenge>(response).map_err(|why| why.after("KeysLoaded"))?;
    if !answer.mac_verifies(&mac_key, &challenge) {
        return fail("ChallengeResponse whose MAC does not verify under the session MAC key");
    }
    ctx.flow.session = Some(SessionKeys {
        id,
        pin_key,
        mac_key,
        response_key,
    });
    Ok("KeysLoaded; ChallengeResponse MAC verifies".into())
}

/// The kit's test payment: EUR 123.45 to a test shop.
pub(crate) fn test_payment(transaction: &str) -> Result<PaymentDetails, Why> {
    Ok(PaymentDetails {
        payer_account: "DE89370400440532013000".into(),
        payee_account: "FR7630006000011234567890189".into(),
        payee_name: "Conformance Shop".into(),
        amount_minor: 12_345,
        currency: CurrencyCode::new("EUR").map_err(build_error)?,
        currency_exponent: 2,
        reference: "conformance".into(),
        bank_transaction_id: transaction.into(),
    })
}

/// The VerifyBankResponse of the payment `bank.payment` approved (already answered once).
pub(crate) fn verify_again(ctx: &Ctx) -> Result<Option<Request>, Why> {
    let (Some((_, device_counter, transaction)), Some(session)) =
        (ctx.flow.approved.as_ref(), ctx.flow.session.as_ref())
    else {
        return Ok(None);
    };
    let verify = super::bank_command_cases::bank_response(
        session.id,
        transaction,
        *device_counter,
        &session.response_key,
    )?;
    Ok(Some(Request::VerifyBankResponse(verify)))
}

/// A BankChallenge for the session `bank.login` loaded.
pub(crate) fn current_challenge(ctx: &mut Ctx) -> Result<Option<Request>, Why> {
    let Some(id) = ctx.flow.session.as_ref().map(|session| session.id) else {
        return Ok(None);
    };
    Ok(Some(Request::BankChallenge(BankChallenge {
        session_id: id,
        bank_nonce: Nonce(ctx.probe.random_bytes()),
    })))
}

/// A LoadSessionKeys with three fresh keys for a new session (not remembered), when a
/// session was loaded before.
pub(crate) fn fresh_session_keys(ctx: &mut Ctx) -> Result<Option<LoadSessionKeys>, Why> {
    if ctx.flow.session.is_none() {
        return Ok(None);
    }
    let pin_key: PinKey = fresh_key(ctx)?;
    let mac_key: MacKey = fresh_key(ctx)?;
    let response_key: MacKey = fresh_key(ctx)?;
    Ok(Some(LoadSessionKeys {
        session_id: SessionId(ctx.probe.random_bytes()),
        pin_key: wrap(
            ctx,
            pin_key.material(),
            KeyUsageCode::P0,
            ModeOfUse::EncryptOnly,
        )?,
        mac_key: wrap(
            ctx,
            mac_key.material(),
            KeyUsageCode::M6,
            ModeOfUse::MacGenerateOnly,
        )?,
        response_key: wrap(
            ctx,
            response_key.material(),
            KeyUsageCode::M6,
            ModeOfUse::MacVerifyOnly,
        )?,
    }))
}

fn approve(ctx: &mut Ctx, counter: u64, good_mac: bool) -> Result<Request, Why> {
    let session = ctx
        .flow
        .session
        .as_ref()
        .ok_or_else(|| Why::Skip("needs bank.login".into()))?;
    let mut request = ApprovePayment {
        session_id: session.id,
        payment: test_payment(&format!("CONF-{counter}"))?,
        counter,
        bank_mac: MacTag([0; 16]),
    };
    request
        .seal_bank_mac(&session.response_key)
        .map_err(build_error)?;
    if !good_mac {
        request.bank_mac.0[0] ^= 0x01;
    }
    Ok(Request::ApprovePayment(request))
}

async fn payment(ctx: &mut Ctx) -> Outcome {
    ctx.flow.payment_counter += 1;
    let counter = ctx.flow.payment_counter;
    let request = approve(ctx, counter, true)?;
    let user = UserScript {
        presses: pin_presses().presses.into_iter().take(1).collect(),
        key_by_key: true,
    };
    let (response, exchange) = ctx.ask_verified_with(&request, &user).await?;
    ctx.flow.pin_keepalives = Some(exchange.keepalives.iter().map(|(_, s)| *s).collect());
    let approved = expect::<ApprovePayment>(response)?;
    let Request::ApprovePayment(sent) = &request else {
        return fail("no ApprovePayment");
    };
    let Some(session) = ctx.flow.session.as_ref() else {
        return Err(Why::Skip("needs bank.login".into()));
    };
    let input = approved.mac_input(sent).map_err(build_error)?;
    if !approved.mac.verifies(&session.mac_key, &input) {
        return fail("PaymentApproved whose MAC does not verify under the session MAC key");
    }
    match pin_of(&approved.pin_block, &session.pin_key) {
        Ok(pin) if pin.as_str() == TEST_PIN => {}
        Ok(_) => return fail("PaymentApproved holding another PIN"),
        Err(error) => return fail(format!("PaymentApproved, but {error}")),
    }
    let transaction = sent.payment.bank_transaction_id.clone();
    let verify = super::bank_command_cases::bank_response(
        session.id,
        &transaction,
        approved.device_counter,
        &session.response_key,
    )?;
    ctx.flow.approved = Some((request.clone(), approved.device_counter, transaction));
    let (response, _) = ctx
        .ask_verified_with(&Request::VerifyBankResponse(verify), &UserScript::default())
        .await?;
    approved_verdict(
        response,
        "Approved",
        "PaymentApproved",
        "VerifyBankResponse",
    )
    .map(|shown| {
        format!(
            "PaymentApproved (device counter {}, MAC and PIN block verified); {shown}",
            approved.device_counter
        )
    })
}

/// The device's answer to an approved bank verdict: IndicatorSet safe, Approved, showing
/// `text` (PROTOCOL.md §6.4); `answered` and `verify` name the exchange for a failure.
pub(crate) fn approved_verdict(
    response: Response,
    text: &str,
    answered: &str,
    verify: &str,
) -> Result<String, Why> {
    match response {
        Response::IndicatorSet(set)
            if set.indicator == Indicator::Safe
                && set.result == BankResult::Approved
                && set.display_text == text =>
        {
            Ok(format!("IndicatorSet safe, Approved, \"{text}\""))
        }
        Response::IndicatorSet(set) => fail(format!(
            "IndicatorSet {:?}, {:?}, {:?}",
            set.indicator, set.result, set.display_text
        )),
        other => fail(format!(
            "{answered}, then {} to {verify}",
            describe_response(&other)
        )),
    }
}

async fn payment_replay(ctx: &mut Ctx) -> Outcome {
    let Some((request, _, _)) = ctx.flow.approved.clone() else {
        return Err(Why::Skip("needs bank.payment".into()));
    };
    let (response, _) = ctx
        .ask_verified_with(&request, &UserScript::default())
        .await?;
    expect_status(&response, StatusCode::StaleBankCounter)
}

async fn payment_bad_mac(ctx: &mut Ctx) -> Outcome {
    let counter = ctx.flow.payment_counter + 1;
    let request = approve(ctx, counter, false)?;
    let (response, _) = ctx
        .ask_verified_with(&request, &UserScript::default())
        .await?;
    match response {
        Response::Error(error)
            if error.status == StatusCode::BadBankMac && error.indicator == Indicator::Danger =>
        {
            Ok("Error(BadBankMac), indicator danger".into())
        }
        Response::Error(error) => fail(format!(
            "Error({:?}), indicator {:?}",
            error.status, error.indicator
        )),
        other => fail(describe_response(&other)),
    }
}
