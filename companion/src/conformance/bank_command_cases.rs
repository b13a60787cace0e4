//! What a bound, logged-in device refuses or does besides a plain payment: the session and
//! pending-payment checks (§3.8 step 9, §6.9), a refused key load that keeps the old keys
//! (§5.1), out-of-band confirmation (§3.6, §4.4), bank lock and unlock (§3.8 step 8), and
//! unpairing (§6.9).

use firmware_protocol::crypto::ecdsa::{EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::message::{
    BankChallenge, BankCommand, BankCommandKind, BankResult, EcdsaSignature, GetStatus, Indicator,
    Kcv, LockState, MacTag, Nonce, Request, Response, SessionId, SignConfirmation, StatusCode,
    Unpair, VerifyBankResponse,
};

use super::payment_cases::{self, FlowState};
use super::probe::UserScript;
use super::session_cases::{next_sequence, refused_pair_begin};
use super::{Case, Ctx, Outcome, Why, case_fn, describe_response, expect, expect_status, fail};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "bank.verify.mismatch",
            section: "6.9",
            title: "bank response for a payment no longer pending",
            expected: "Error(TransactionMismatch) (checked after the bank MAC)",
            after: &["bank.payment"],
            run: case_fn!(verify_mismatch),
        },
        Case {
            id: "bank.session-mismatch",
            section: "3.8",
            title: "BankChallenge for another session",
            expected: "Error(SessionMismatch)",
            after: &["bank.login"],
            run: case_fn!(session_mismatch),
        },
        Case {
            id: "bank.keys.kcv-mismatch",
            section: "5.1",
            title: "LoadSessionKeys with a wrong KCV",
            expected: "Error(KcvMismatch) with indicator danger; the old session still answers",
            after: &["bank.login"],
            run: case_fn!(kcv_mismatch),
        },
        Case {
            id: "bank.confirmation",
            section: "4.4",
            title: "out-of-band confirmation approved on the keypad",
            expected: "ConfirmationSignature verifying under the attestation key, domain oob-confirmation",
            after: &["bank.enrol", "pair.confirm"],
            run: case_fn!(confirmation),
        },
        Case {
            id: "bank.command.lock",
            section: "3.8",
            title: "BankCommand Lock, then Unlock",
            expected: "Status LockedByBank; PairBegin -> Error(LockedByBank); Unlock -> Status Unlocked",
            after: &["bank.initialise"],
            run: case_fn!(lock_unlock),
        },
        Case {
            id: "host.unpair",
            section: "6.9",
            title: "Unpair of the sender",
            expected: "Status with one paired host less; the next envelope -> Error(UnknownHost)",
            after: &["pair.confirm"],
            run: case_fn!(unpair),
        },
    ]
}

fn build_error(e: impl std::fmt::Display) -> Why {
    Why::Fail(format!("cannot build the request: {e}"))
}

async fn verify_mismatch(ctx: &mut Ctx) -> Outcome {
    let Some(verify) = payment_cases::verify_again(ctx)? else {
        return Err(Why::Skip("needs bank.payment".into()));
    };
    let (response, _) = ctx
        .ask_verified_with(&verify, &UserScript::default())
        .await?;
    expect_status(&response, StatusCode::TransactionMismatch)
}

async fn session_mismatch(ctx: &mut Ctx) -> Outcome {
    let challenge = Request::BankChallenge(BankChallenge {
        session_id: SessionId(ctx.probe.random_bytes()),
        bank_nonce: Nonce(ctx.probe.random_bytes()),
    });
    let (response, _) = ctx
        .ask_verified_with(&challenge, &UserScript::default())
        .await?;
    expect_status(&response, StatusCode::SessionMismatch)
}

async fn kcv_mismatch(ctx: &mut Ctx) -> Outcome {
    let Some(mut load) = payment_cases::fresh_session_keys(ctx)? else {
        return Err(Why::Skip("needs bank.login".into()));
    };
    let mut kcv = load.mac_key.kcv.as_bytes().to_vec();
    if let Some(byte) = kcv.first_mut() {
        *byte ^= 0xFF;
    }
    load.mac_key.kcv = Kcv::new(&kcv).map_err(build_error)?;
    let (response, _) = ctx
        .ask_verified_with(&Request::LoadSessionKeys(load), &UserScript::default())
        .await?;
    match &response {
        Response::Error(error)
            if error.status == StatusCode::KcvMismatch && error.indicator == Indicator::Danger => {}
        Response::Error(error) => {
            return fail(format!(
                "Error({:?}), indicator {:?}",
                error.status, error.indicator
            ));
        }
        other => return fail(describe_response(other)),
    }
    let Some(challenge) = payment_cases::current_challenge(ctx)? else {
        return Err(Why::Skip("needs bank.login".into()));
    };
    let (after, _) = ctx
        .ask_verified_with(&challenge, &UserScript::default())
        .await?;
    match after {
        Response::ChallengeResponse(_) => Ok(
            "Error(KcvMismatch), indicator danger; the old session answered a BankChallenge".into(),
        ),
        other => fail(format!(
            "Error(KcvMismatch), then the old session got {}",
            describe_response(&other)
        )),
    }
}

async fn confirmation(ctx: &mut Ctx) -> Outcome {
    ctx.hook()?;
    let info = ctx
        .info
        .clone()
        .ok_or_else(|| Why::Skip("needs msg.getinfo".into()))?;
    let request = SignConfirmation {
        payment: payment_cases::test_payment("CONF-OOB-1")?,
        nonce: Nonce(ctx.probe.random_bytes()),
    };
    let user = UserScript {
        presses: vec![vec!["enter".into()]],
        key_by_key: false,
    };
    let (response, _) = ctx
        .ask_verified_with(&Request::SignConfirmation(request.clone()), &user)
        .await?;
    let signature = expect::<SignConfirmation>(response)?.signature;
    let key = EcdsaVerifyingKey::from_sec1_bytes(info.attestation_public_key.as_bytes())
        .map_err(|e| Why::Fail(format!("Info.attestation_public_key: {e}")))?;
    let signed = request.signed_bytes().map_err(build_error)?;
    if key
        .verify(SignatureDomain::OutOfBandConfirmation, &signed, &signature)
        .is_err()
    {
        return fail("ConfirmationSignature that does not verify");
    }
    Ok("ConfirmationSignature verifies under the attestation key".into())
}

async fn bank_command(ctx: &mut Ctx, command: BankCommandKind) -> Result<Response, Why> {
    let sequence = next_sequence(ctx).await?;
    let device_serial = ctx
        .info
        .as_ref()
        .map(|info| info.serial.clone())
        .ok_or_else(|| Why::Skip("needs msg.getinfo".into()))?;
    let mut request = BankCommand {
        device_serial,
        sequence,
        command,
        reason: "Conformance test".into(),
        signature: EcdsaSignature::from_array([0; 64]),
    };
    let signed = request.signed_bytes().map_err(build_error)?;
    request.signature = ctx
        .bank()?
        .management
        .sign(SignatureDomain::BankCommand, &signed);
    let response = ctx.ask(&Request::BankCommand(request)).await?;
    if matches!(response, Response::Status(_)) {
        ctx.bank_state.last_sequence = Some(sequence);
    }
    Ok(response)
}

async fn lock_unlock(ctx: &mut Ctx) -> Outcome {
    match bank_command(ctx, BankCommandKind::Lock).await? {
        Response::Status(status) if status.lock == LockState::LockedByBank => {}
        Response::Status(status) => return fail(format!("Lock, then Status {:?}", status.lock)),
        other => return fail(format!("{} to Lock", describe_response(&other))),
    }
    let refused = ctx.ask(&refused_pair_begin()?).await?;
    let refused = expect_status(&refused, StatusCode::LockedByBank);
    let unlocked = bank_command(ctx, BankCommandKind::Unlock).await?;
    let refused = refused?;
    match unlocked {
        Response::Status(status) if status.lock == LockState::Unlocked => Ok(format!(
            "Status LockedByBank; PairBegin -> {refused}; Unlock -> Status Unlocked"
        )),
        Response::Status(status) => fail(format!("Unlock, then Status {:?}", status.lock)),
        other => fail(format!("{} to Unlock", describe_response(&other))),
    }
}

async fn unpair(ctx: &mut Ctx) -> Outcome {
    let Some(host_id) = ctx.paired.as_ref().map(|paired| paired.signer.host_id()) else {
        return Err(Why::Skip("needs pair.confirm".into()));
    };
    let before = ctx.status().await?.paired_hosts;
    let (response, _) = ctx
        .ask_verified_with(&Request::Unpair(Unpair { host_id }), &UserScript::default())
        .await?;
    let after = expect::<Unpair>(response)?.paired_hosts;
    let (next, _) = ctx
        .ask_verified_with(&Request::GetStatus(GetStatus), &UserScript::default())
        .await?;
    ctx.paired = None;
    ctx.flow = FlowState::default();
    if after != before.saturating_sub(1) {
        return fail(format!("Status, paired hosts {before} -> {after}"));
    }
    expect_status(&next, StatusCode::UnknownHost)
        .map(|seen| format!("paired hosts {before} -> {after}; the next envelope: {seen}"))
}

/// A VerifyBankResponse MAC'd for `result` (used by the payment module as well).
pub(crate) fn bank_response(
    session_id: SessionId,
    transaction: &str,
    device_counter: u64,
    key: &firmware_protocol::crypto::keys::MacKey,
) -> Result<VerifyBankResponse, Why> {
    let mut verify = VerifyBankResponse {
        session_id,
        bank_transaction_id: transaction.to_owned(),
        device_counter,
        result: BankResult::Approved,
        bank_mac: MacTag([0; 16]),
    };
    verify.seal_bank_mac(key).map_err(build_error)?;
    Ok(verify)
}
