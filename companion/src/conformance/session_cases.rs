//! Cases that need a device state or a user: the test bank's signed commands (§3.6, §4.3),
//! a prompt on the screen for keepalive, CANCEL and busy (§2.10), pairing and host
//! verification (§4.1, §4.2), and tamper (§6.6).

use std::time::Duration;

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::crypto::host_auth::HostSigner;
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{Key, KeyAlgorithm, KeyBlockProtectionKey};
use firmware_protocol::crypto::pairing::{
    HostPairing, PairingNonce, PairingPublicKey, derive_initialisation_kek, initialisation_context,
};
use firmware_protocol::crypto::tr31::{
    self, Algorithm, Exportability, Header, KeyContext, KeyLengthMasking, KeyUsageCode, KeyVersion,
    ModeOfUse, Version,
};
use firmware_protocol::link::{Body, ErrorCode, Frame, KeepaliveStatus};
use firmware_protocol::message::{
    EcPublicKey, EcdsaSignature, GetStatus, Indicator, Initialise, Kcv, KeyBlock, Lifecycle,
    MacTag, Nonce, OperatorReset, PairBegin, PairConfirm, Request, Response, Sha256Digest,
    StatusCode, WrappedKey,
};
use zeroize::Zeroizing;

use super::probe::{Seen, UserScript, describe};
use super::{
    Case, Ctx, Outcome, Paired, Why, case_fn, describe_response, expect, expect_status, fail,
};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "bank.reset",
            section: "3.4",
            title: "OperatorReset signed by the test bank",
            expected: "Status: Manufactured, not tampered (the device starts the bank cases from scratch)",
            after: &["msg.getinfo"],
            run: case_fn!(bank_reset),
        },
        Case {
            id: "bank.initialise.bad-signature",
            section: "3.8",
            title: "Initialise with a wrong signature",
            expected: "Error(BadSignature)",
            after: &["bank.reset"],
            run: case_fn!(initialise_bad_signature),
        },
        Case {
            id: "bank.initialise.wrong-device",
            section: "3.8",
            title: "Initialise for another serial",
            expected: "Error(WrongDevice)",
            after: &["bank.reset"],
            run: case_fn!(initialise_wrong_device),
        },
        Case {
            id: "bank.initialise",
            section: "4.3",
            title: "Initialise: KBPK under the ECDH KEK",
            expected: "Initialised with the 5-byte KCV of the KBPK; Status Initialised",
            after: &["bank.reset"],
            run: case_fn!(initialise),
        },
        Case {
            id: "bank.replay.sequence",
            section: "3.6",
            title: "replayed bank-signed command",
            expected: "Error(StaleBankCounter) for an OperatorReset already accepted",
            after: &["bank.initialise"],
            run: case_fn!(replay_sequence),
        },
        Case {
            id: "bank.initialise.again",
            section: "3.8",
            title: "Initialise of an initialised device",
            expected: "Error(WrongState)",
            after: &["bank.initialise"],
            run: case_fn!(initialise_again),
        },
        Case {
            id: "link.keepalive.interval",
            section: "2.10",
            title: "KEEPALIVE while a prompt waits for the user",
            expected: "KEEPALIVE 02 (confirm) on the owner channel, the first and every next within 250 ms",
            after: &["msg.getstatus"],
            run: case_fn!(keepalive_interval),
        },
        Case {
            id: "link.cancel.prompt",
            section: "2.10",
            title: "link CANCEL during a prompt",
            expected: "ERROR CANCELLED and no answer MSG; the device then serves the next request",
            after: &["msg.getstatus"],
            run: case_fn!(cancel_prompt),
        },
        Case {
            id: "link.init.abort",
            section: "2.6.3",
            title: "INIT on the owner channel during a prompt",
            expected: "INIT answer on the channel, no answer MSG to the aborted request; the device then serves the next request",
            after: &["link.init.resync"],
            run: case_fn!(init_abort),
        },
        Case {
            id: "link.busy.other-channel",
            section: "2.10",
            title: "another channel during a transaction",
            expected: "INIT on broadcast served; PING on the new channel refused with ERROR CHANNEL_BUSY",
            after: &["msg.getstatus"],
            run: case_fn!(busy_other_channel),
        },
        Case {
            id: "link.busy.same-channel",
            section: "2.10",
            title: "a second request on the owner channel",
            expected: "ACK, then ERROR CHANNEL_BUSY",
            after: &["msg.getstatus"],
            run: case_fn!(busy_same_channel),
        },
        Case {
            id: "pair.commitment",
            section: "4.1",
            title: "PairConfirm whose nonce breaks the commitment",
            expected: "Error(PairingConfirmationFailed), no prompt",
            after: &["msg.getstatus"],
            run: case_fn!(pair_commitment),
        },
        Case {
            id: "pair.no-begin",
            section: "6.9",
            title: "PairConfirm with no pairing in progress",
            expected: "Error(WrongState) (the last PairConfirm used the pairing up)",
            after: &["pair.commitment"],
            run: case_fn!(pair_no_begin),
        },
        Case {
            id: "pair.cancel-key",
            section: "6.2",
            title: "Cancel on the keypad at the pairing code",
            expected: "Error(UserCancelled)",
            after: &["msg.getstatus"],
            run: case_fn!(pair_cancel_key),
        },
        Case {
            id: "pair.confirm",
            section: "4.1",
            title: "pairing confirmed on the keypad",
            expected: "PairResult whose host id and device confirmation match the host's derivation; one more paired host",
            after: &["msg.getstatus"],
            run: case_fn!(pair_confirm),
        },
        Case {
            id: "host.verified",
            section: "3.7",
            title: "request in the host-verified envelope",
            expected: "the inner request's answer (Status) with the envelope's request id",
            after: &["pair.confirm"],
            run: case_fn!(host_verified),
        },
        Case {
            id: "host.replay",
            section: "4.2",
            title: "replayed host counter",
            expected: "Error(ReplayedCounter) for an envelope already accepted",
            after: &["pair.confirm"],
            run: case_fn!(host_replay),
        },
        Case {
            id: "host.bad-mac",
            section: "4.2",
            title: "envelope with a wrong MAC",
            expected: "Error(BadHostMac) with indicator danger (§6.5)",
            after: &["pair.confirm"],
            run: case_fn!(host_bad_mac),
        },
        Case {
            id: "host.bad-envelope",
            section: "3.7",
            title: "inner request id differs from the envelope's",
            expected: "Error(BadEnvelope)",
            after: &["pair.confirm"],
            run: case_fn!(host_bad_envelope),
        },
    ]
}

/// A valid P-256 point (the generator), for requests refused before it is used.
pub(crate) fn dummy_point() -> Result<EcPublicKey, Why> {
    const G: &str = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
    let bytes: [u8; 65] = hex::decode(G)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| Why::Fail("the P-256 generator does not decode".into()))?;
    EcPublicKey::new(bytes).map_err(message_error)
}

/// A PairBegin for a device expected to refuse it (state, lock, tamper).
pub(crate) fn refused_pair_begin() -> Result<Request, Why> {
    Ok(Request::PairBegin(PairBegin {
        host_public_key: dummy_point()?,
        host_commitment: Sha256Digest([0; 32]),
        host_name: "CONFORMANCE".into(),
    }))
}

fn serial(ctx: &Ctx) -> Result<String, Why> {
    ctx.info
        .as_ref()
        .map(|info| info.serial.clone())
        .ok_or_else(|| Why::Skip("needs msg.getinfo".into()))
}

fn message_error(e: impl std::fmt::Display) -> Why {
    Why::Fail(format!("cannot build the request: {e}"))
}

/// An Initialise with a zero signature, for a device that refuses it before checking it.
pub(crate) fn unsigned_initialise(ctx: &Ctx) -> Result<Request, Why> {
    Ok(Request::Initialise(Initialise {
        device_serial: serial(ctx).unwrap_or_else(|_| "CONFORMANCE".into()),
        sequence: u64::MAX,
        bank_public_key: dummy_point()?,
        kbpk: WrappedKey {
            key_block: KeyBlock::new("D0016K1AB00N0000").map_err(message_error)?,
            kcv: Kcv::new(&[0; 5]).map_err(message_error)?,
        },
        signature: EcdsaSignature::from_array([0; 64]),
    }))
}

pub(crate) async fn next_sequence(ctx: &mut Ctx) -> Result<u64, Why> {
    let status = ctx.status().await?;
    let last = status
        .bank_sequence
        .max(ctx.bank_state.last_sequence.unwrap_or(0));
    Ok(last + 1)
}

pub(crate) fn operator_reset(ctx: &Ctx, sequence: u64) -> Result<Request, Why> {
    let bank = ctx.bank()?;
    let mut request = OperatorReset {
        device_serial: serial(ctx)?,
        sequence,
        operator_id: "CONFORMANCE".into(),
        signature: EcdsaSignature::from_array([0; 64]),
    };
    let signed = request.signed_bytes().map_err(message_error)?;
    request.signature = bank.operator.sign(SignatureDomain::OperatorReset, &signed);
    Ok(Request::OperatorReset(request))
}

/// OperatorReset with a fresh sequence; the Status it answers with.
pub(crate) async fn reset(ctx: &mut Ctx) -> Result<Response, Why> {
    let sequence = next_sequence(ctx).await?;
    let request = operator_reset(ctx, sequence)?;
    let response = ctx.ask(&request).await?;
    if matches!(response, Response::Status(_)) {
        ctx.bank_state.last_sequence = Some(sequence);
        ctx.bank_state.used_reset = Some(request.encode(ctx.request_id()).map_err(message_error)?);
        ctx.bank_state.kbpk = None;
        ctx.paired = None;
    }
    Ok(response)
}

async fn bank_reset(ctx: &mut Ctx) -> Outcome {
    ctx.bank()?;
    match reset(ctx).await? {
        Response::Status(status)
            if status.lifecycle == Lifecycle::Manufactured && !status.tampered =>
        {
            Ok("Status: Manufactured".into())
        }
        Response::Status(status) => fail(format!(
            "Status {:?}, tampered {}",
            status.lifecycle, status.tampered
        )),
        other => fail(describe_response(&other)),
    }
}

/// A signed Initialise carrying a fresh KBPK; with the KBPK.
fn build_initialise(
    ctx: &mut Ctx,
    sequence: u64,
    device_serial: String,
) -> Result<(Initialise, KeyBlockProtectionKey), Why> {
    let info = ctx
        .info
        .clone()
        .ok_or_else(|| Why::Skip("needs msg.getinfo".into()))?;
    let attestation = EcdsaVerifyingKey::from_sec1_bytes(info.attestation_public_key.as_bytes())
        .map_err(|e| Why::Fail(format!("Info.attestation_public_key: {e}")))?;
    let key_bytes: Zeroizing<[u8; 32]> = Zeroizing::new(ctx.probe.random_bytes());
    let kbpk: KeyBlockProtectionKey =
        Key::new(KeyAlgorithm::Aes, key_bytes.as_slice()).map_err(message_error)?;
    let ephemeral = EcdsaSigningKey::generate(ctx.probe.rng());
    let kek = derive_initialisation_kek(
        &ephemeral,
        &attestation,
        &initialisation_context(&device_serial, sequence),
    );
    let header = Header::new(
        Version::D,
        KeyUsageCode::K1,
        Algorithm::Aes,
        ModeOfUse::EncryptDecrypt,
        KeyVersion::UNUSED,
        Exportability::NonExportable,
    )
    .with_key_context(KeyContext::ExchangeOnly);
    let block = tr31::wrap(
        &kek,
        &header,
        kbpk.material(),
        KeyLengthMasking::AlgorithmMaximum,
        ctx.probe.rng(),
    )
    .map_err(message_error)?;
    let check = kcv::compute(
        kbpk.material(),
        KcvMethod::standard_for(kbpk.material().algorithm()),
    );
    let mut request = Initialise {
        device_serial,
        sequence,
        bank_public_key: EcPublicKey::new(ephemeral.verifying_key().to_sec1_bytes())
            .map_err(message_error)?,
        kbpk: WrappedKey {
            key_block: KeyBlock::new(&block).map_err(message_error)?,
            kcv: Kcv::new(check.as_bytes()).map_err(message_error)?,
        },
        signature: EcdsaSignature::from_array([0; 64]),
    };
    let signed = request.signed_bytes().map_err(message_error)?;
    request.signature = ctx
        .bank()?
        .management
        .sign(SignatureDomain::BankCommand, &signed);
    Ok((request, kbpk))
}

async fn initialise_bad_signature(ctx: &mut Ctx) -> Outcome {
    let sequence = next_sequence(ctx).await?;
    let serial = serial(ctx)?;
    let (mut request, _) = build_initialise(ctx, sequence, serial)?;
    let mut signature = request.signature.to_bytes();
    signature[10] ^= 0x01;
    request.signature = EcdsaSignature::from_array(signature);
    expect_status(
        &ctx.ask(&Request::Initialise(request)).await?,
        StatusCode::BadSignature,
    )
}

async fn initialise_wrong_device(ctx: &mut Ctx) -> Outcome {
    let sequence = next_sequence(ctx).await?;
    let serial = serial(ctx)?;
    let other: String = format!("X{serial}").chars().take(32).collect();
    let (request, _) = build_initialise(ctx, sequence, other)?;
    expect_status(
        &ctx.ask(&Request::Initialise(request)).await?,
        StatusCode::WrongDevice,
    )
}

async fn initialise(ctx: &mut Ctx) -> Outcome {
    let sequence = next_sequence(ctx).await?;
    let serial = serial(ctx)?;
    let (request, kbpk) = build_initialise(ctx, sequence, serial)?;
    let expected = kcv::compute(
        kbpk.material(),
        KcvMethod::standard_for(kbpk.material().algorithm()),
    );
    let kcv = expect::<Initialise>(ctx.ask(&Request::Initialise(request)).await?)?.kcv;
    ctx.bank_state.last_sequence = Some(sequence);
    if kcv.as_bytes() != expected.as_bytes() {
        return fail(format!(
            "Initialised with KCV {}, not {}",
            hex::encode(kcv.as_bytes()),
            hex::encode(expected.as_bytes())
        ));
    }
    ctx.bank_state.kbpk = Some(kbpk);
    let status = ctx.status().await?;
    if status.lifecycle != Lifecycle::Initialised {
        return fail(format!("Initialised, then Status {:?}", status.lifecycle));
    }
    Ok(format!(
        "Initialised, KCV {}; Status Initialised",
        hex::encode(kcv.as_bytes())
    ))
}

async fn replay_sequence(ctx: &mut Ctx) -> Outcome {
    let Some(bytes) = ctx.bank_state.used_reset.clone() else {
        return Err(Why::Skip("needs bank.reset".into()));
    };
    let (_, response, _) = ctx.exchange_raw(&bytes, &UserScript::default()).await?;
    expect_status(&response, StatusCode::StaleBankCounter)
}

async fn initialise_again(ctx: &mut Ctx) -> Outcome {
    let sequence = next_sequence(ctx).await?;
    let serial = serial(ctx)?;
    let (request, _) = build_initialise(ctx, sequence, serial)?;
    expect_status(
        &ctx.ask(&Request::Initialise(request)).await?,
        StatusCode::WrongState,
    )
}

/// A device that can show a prompt without the bank: Initialised or Bound, unlocked, not
/// tampered. Else SKIP.
async fn require_prompt_state(ctx: &mut Ctx) -> Result<(), Why> {
    let status = ctx.status().await?;
    let ready = matches!(status.lifecycle, Lifecycle::Initialised | Lifecycle::Bound)
        && !status.tampered
        && status.lock == firmware_protocol::message::LockState::Unlocked;
    if ready {
        Ok(())
    } else {
        Err(Why::Skip(format!(
            "needs an initialised, unlocked device to show a prompt (it is {:?}{}); give --bank-keys",
            status.lifecycle,
            if status.tampered { ", tampered" } else { "" }
        )))
    }
}

/// PairBegin, then PairConfirm sent; returns once the PairConfirm is ACKed (the prompt is
/// then up, waiting for the user).
async fn start_prompt(ctx: &mut Ctx) -> Result<HostPairing, Why> {
    require_prompt_state(ctx).await?;
    let pairing = HostPairing::start(ctx.probe.rng());
    let begin = Request::PairBegin(PairBegin {
        host_public_key: EcPublicKey::new(*pairing.public_key().as_bytes())
            .map_err(message_error)?,
        host_commitment: Sha256Digest(*pairing.commitment().as_bytes()),
        host_name: "CONFORMANCE".into(),
    });
    match ctx.ask(&begin).await? {
        Response::PairChallenge(_) => {}
        other => return fail(format!("{} to PairBegin", describe_response(&other))),
    }
    let id = ctx.request_id();
    let confirm = Request::PairConfirm(PairConfirm {
        host_nonce: Nonce(*pairing.nonce().as_bytes()),
    })
    .encode(id)
    .map_err(message_error)?;
    let chan = ctx.chan;
    ctx.probe.send_request(&chan, &confirm).await?;
    let (ack, before) = ctx
        .probe
        .wait_for(
            Duration::from_millis(1000),
            |s| matches!(s.frame_on(chan.id), Some(Body::Ack { seq }) if *seq == chan.tx),
        )
        .await?;
    if ack.is_none() {
        return fail(format!("PairConfirm not ACKed: {}", describe(&before)));
    }
    ctx.chan.tx = ctx.chan.tx.wrapping_add(1);
    Ok(pairing)
}

/// Ends a prompt the kit opened: CANCEL, then INIT on the channel whatever happened (a
/// device that ignores CANCEL still drops the request on resync, §2.6.3).
async fn end_prompt(ctx: &mut Ctx) {
    let chan = ctx.chan.id;
    let _ = ctx.probe.send_frame(&Frame::new(chan, Body::Cancel)).await;
    let _ = ctx
        .probe
        .wait_for(Duration::from_millis(500), |s| {
            matches!(s.frame_on(chan), Some(Body::Error(_)))
        })
        .await;
    if let Ok((Some(init), _)) = ctx.probe.init(chan).await {
        ctx.chan.tx = 0;
        ctx.chan.rx = 0;
        ctx.chan.init = init;
    }
}

async fn keepalive_interval(ctx: &mut Ctx) -> Outcome {
    start_prompt(ctx).await?;
    let acked = ctx.probe.now_ms();
    let chan = ctx.chan.id;
    let seen = ctx.probe.collect(Duration::from_millis(1200)).await;
    end_prompt(ctx).await;
    let seen = seen?;
    let keepalives: Vec<(u64, KeepaliveStatus)> = seen
        .iter()
        .filter_map(|s| match s.frame_on(chan) {
            Some(Body::Keepalive(status)) => Some((s.at_ms, *status)),
            _ => None,
        })
        .collect();
    if keepalives.is_empty() {
        return fail(format!("no KEEPALIVE in 1200 ms: {}", describe(&seen)));
    }
    let mut last = acked;
    let mut longest = 0;
    for (at, _) in &keepalives {
        longest = longest.max(at.saturating_sub(last));
        last = *at;
    }
    longest = longest.max((acked + 1200).saturating_sub(last));
    let statuses_ok = keepalives
        .iter()
        .all(|(_, status)| *status == KeepaliveStatus::AwaitingUser);
    let seen_text = format!(
        "{} KEEPALIVEs in 1200 ms, longest gap {longest} ms, status {}",
        keepalives.len(),
        keepalives
            .first()
            .map_or(String::from("-"), |(_, s)| format!("{s:?}"))
    );
    if longest > 250 + ctx.tolerance_ms || !statuses_ok {
        return fail(seen_text);
    }
    Ok(seen_text)
}

async fn cancel_prompt(ctx: &mut Ctx) -> Outcome {
    start_prompt(ctx).await?;
    let chan = ctx.chan.id;
    ctx.probe
        .send_frame(&Frame::new(chan, Body::Cancel))
        .await?;
    let (found, before) = ctx
        .probe
        .wait_for(Duration::from_millis(1000), |s| {
            s.is_error(chan, ErrorCode::Cancelled)
        })
        .await?;
    if found.is_none() {
        end_prompt(ctx).await;
        return fail(describe(&before));
    }
    let after = ctx.probe.collect(Duration::from_millis(400)).await?;
    if let Some(answer) = after
        .iter()
        .find(|s| matches!(s.frame_on(chan), Some(Body::Msg { .. })))
    {
        return fail(format!(
            "ERROR CANCELLED, then {}",
            super::probe::describe_one(answer)
        ));
    }
    let status = ctx.status().await?;
    Ok(format!(
        "ERROR CANCELLED, no answer; GetStatus then answered ({:?})",
        status.lifecycle
    ))
}

async fn init_abort(ctx: &mut Ctx) -> Outcome {
    start_prompt(ctx).await?;
    let chan = ctx.chan.id;
    let (answer, before) = ctx.probe.init(chan).await?;
    let Some(init) = answer else {
        end_prompt(ctx).await;
        return fail(format!("no INIT answer on {chan}: {}", describe(&before)));
    };
    ctx.chan.tx = 0;
    ctx.chan.rx = 0;
    ctx.chan.init = init;
    let after = ctx.probe.collect(Duration::from_millis(400)).await?;
    if let Some(answer) = after
        .iter()
        .find(|s| matches!(s.frame_on(chan), Some(Body::Msg { .. })))
    {
        return fail(format!(
            "INIT answered, then {}",
            super::probe::describe_one(answer)
        ));
    }
    match ctx.ask(&Request::GetStatus(GetStatus)).await? {
        Response::Status(_) => Ok("INIT answered on the channel; no answer to the aborted PairConfirm; GetStatus then answered".into()),
        other => fail(format!("INIT answered, then {} to GetStatus", describe_response(&other))),
    }
}

async fn pair_no_begin(ctx: &mut Ctx) -> Outcome {
    require_prompt_state(ctx).await?;
    let host_nonce = Nonce(ctx.probe.random_bytes());
    let response = ctx
        .ask(&Request::PairConfirm(PairConfirm { host_nonce }))
        .await?;
    expect_status(&response, StatusCode::WrongState)
}

async fn busy_other_channel(ctx: &mut Ctx) -> Outcome {
    start_prompt(ctx).await?;
    let result = busy_other_channel_inner(ctx).await;
    end_prompt(ctx).await;
    result
}

async fn busy_other_channel_inner(ctx: &mut Ctx) -> Outcome {
    let other = match ctx.probe.open().await {
        Ok(other) => other,
        Err(error) => return fail(format!("INIT on broadcast not served: {error}")),
    };
    ctx.probe
        .send_frame(&Frame::new(other.id, Body::Ping(vec![1, 2, 3])))
        .await?;
    let (found, before) = ctx
        .probe
        .wait_for(Duration::from_millis(1000), |s: &Seen| {
            s.is_error(other.id, ErrorCode::ChannelBusy)
        })
        .await?;
    match found {
        Some(_) => Ok(format!(
            "INIT answered (channel {}); PING there: ERROR CHANNEL_BUSY",
            other.id
        )),
        None => {
            let there: Vec<Seen> = before
                .into_iter()
                .filter(|s| {
                    s.frame_on(other.id).is_some()
                        || !matches!(s.what, super::probe::Received::Frame(_))
                })
                .collect();
            fail(format!("PING on {}: {}", other.id, describe(&there)))
        }
    }
}

async fn busy_same_channel(ctx: &mut Ctx) -> Outcome {
    start_prompt(ctx).await?;
    let result = busy_same_channel_inner(ctx).await;
    end_prompt(ctx).await;
    result
}

async fn busy_same_channel_inner(ctx: &mut Ctx) -> Outcome {
    let id = ctx.request_id();
    let message = Request::GetStatus(GetStatus)
        .encode(id)
        .map_err(message_error)?;
    let chan = ctx.chan;
    ctx.probe.send_request(&chan, &message).await?;
    let (found, before) = ctx
        .probe
        .wait_for(Duration::from_millis(1000), |s: &Seen| {
            s.is_error(chan.id, ErrorCode::ChannelBusy)
        })
        .await?;
    let acked = before
        .iter()
        .any(|s| matches!(s.frame_on(chan.id), Some(Body::Ack { seq }) if *seq == chan.tx));
    match (acked, found) {
        (true, Some(_)) => Ok("ACK, then ERROR CHANNEL_BUSY".into()),
        _ => {
            let not_keepalive: Vec<Seen> = before
                .into_iter()
                .filter(|s| !matches!(s.frame_on(chan.id), Some(Body::Keepalive(_))))
                .collect();
            fail(describe(&not_keepalive))
        }
    }
}

async fn pair_commitment(ctx: &mut Ctx) -> Outcome {
    require_prompt_state(ctx).await?;
    let pairing = HostPairing::start(ctx.probe.rng());
    let begin = Request::PairBegin(PairBegin {
        host_public_key: EcPublicKey::new(*pairing.public_key().as_bytes())
            .map_err(message_error)?,
        host_commitment: Sha256Digest(*pairing.commitment().as_bytes()),
        host_name: "CONFORMANCE".into(),
    });
    match ctx.ask(&begin).await? {
        Response::PairChallenge(_) => {}
        other => return fail(format!("{} to PairBegin", describe_response(&other))),
    }
    let mut nonce = *pairing.nonce().as_bytes();
    nonce[0] ^= 0x80;
    let response = ctx
        .ask(&Request::PairConfirm(PairConfirm {
            host_nonce: Nonce(nonce),
        }))
        .await?;
    expect_status(&response, StatusCode::PairingConfirmationFailed)
}

/// PairBegin/PairConfirm with the user pressing `keys` at the code.
async fn pair_with(ctx: &mut Ctx, keys: &[&str]) -> Result<(HostPairing, Response, Vec<u8>), Why> {
    require_prompt_state(ctx).await?;
    ctx.hook()?;
    let pairing = HostPairing::start(ctx.probe.rng());
    let begin = Request::PairBegin(PairBegin {
        host_public_key: EcPublicKey::new(*pairing.public_key().as_bytes())
            .map_err(message_error)?,
        host_commitment: Sha256Digest(*pairing.commitment().as_bytes()),
        host_name: "CONFORMANCE".into(),
    });
    let challenge = expect::<PairBegin>(ctx.ask(&begin).await?)?;
    let user = UserScript {
        presses: vec![keys.iter().map(|k| (*k).to_owned()).collect()],
        key_by_key: false,
    };
    let (response, _) = ctx
        .ask_with(
            &Request::PairConfirm(PairConfirm {
                host_nonce: Nonce(*pairing.nonce().as_bytes()),
            }),
            &user,
        )
        .await?;
    let mut device = challenge.device_public_key.as_bytes().to_vec();
    device.extend_from_slice(challenge.device_nonce.as_bytes());
    Ok((pairing, response, device))
}

async fn pair_cancel_key(ctx: &mut Ctx) -> Outcome {
    let (_, response, _) = pair_with(ctx, &["cancel"]).await?;
    expect_status(&response, StatusCode::UserCancelled)
}

async fn pair_confirm(ctx: &mut Ctx) -> Outcome {
    let before = ctx.status().await?.paired_hosts;
    let (pairing, response, device) = pair_with(ctx, &["enter"]).await?;
    let result = expect::<PairConfirm>(response)?;
    let (key, nonce) = device.split_at(65);
    let device_public = PairingPublicKey::from_sec1_bytes(key)
        .map_err(|e| Why::Fail(format!("PairChallenge key: {e}")))?;
    let device_nonce = PairingNonce::from_slice(nonce)
        .map_err(|e| Why::Fail(format!("PairChallenge nonce: {e}")))?;
    let outcome = pairing.finish(&device_public, &device_nonce);
    if outcome.host_id() != result.host_id {
        return fail("PairResult host id differs from the host's derivation");
    }
    if outcome
        .check_device_confirmation(&result.device_confirmation.0)
        .is_err()
    {
        return fail("PairResult device confirmation does not verify");
    }
    let after = ctx.status().await?.paired_hosts;
    ctx.paired = Some(Paired {
        signer: HostSigner::new(outcome.host_id(), outcome.host_pairing_key()),
    });
    if after != before.saturating_add(1) {
        return fail(format!("PairResult, but paired hosts {before} -> {after}"));
    }
    Ok(format!(
        "PairResult verified (code {}); paired hosts {before} -> {after}",
        outcome.comparison_code()
    ))
}

async fn host_verified(ctx: &mut Ctx) -> Outcome {
    let (response, _) = ctx
        .ask_verified_with(&Request::GetStatus(GetStatus), &UserScript::default())
        .await?;
    expect::<GetStatus>(response).map(|_| "Status".into())
}

async fn host_replay(ctx: &mut Ctx) -> Outcome {
    let (id, envelope) = ctx.envelope(&Request::GetStatus(GetStatus))?;
    let bytes = envelope.encode(id).map_err(message_error)?;
    let (_, first, _) = ctx.exchange_raw(&bytes, &UserScript::default()).await?;
    if !matches!(first, Response::Status(_)) {
        return fail(format!(
            "the first envelope got {}",
            describe_response(&first)
        ));
    }
    let (_, again, _) = ctx.exchange_raw(&bytes, &UserScript::default()).await?;
    expect_status(&again, StatusCode::ReplayedCounter)
}

async fn host_bad_mac(ctx: &mut Ctx) -> Outcome {
    let (id, envelope) = ctx.envelope(&Request::GetStatus(GetStatus))?;
    let Request::HostVerified(mut envelope) = envelope else {
        return fail("no envelope");
    };
    envelope.mac = MacTag({
        let mut mac = envelope.mac.0;
        mac[0] ^= 0x01;
        mac
    });
    let bytes = Request::HostVerified(envelope)
        .encode(id)
        .map_err(message_error)?;
    let (_, response, _) = ctx.exchange_raw(&bytes, &UserScript::default()).await?;
    match response {
        Response::Error(error)
            if error.status == StatusCode::BadHostMac && error.indicator == Indicator::Danger =>
        {
            Ok("Error(BadHostMac), indicator danger".into())
        }
        Response::Error(error) => fail(format!(
            "Error({:?}), indicator {:?}",
            error.status, error.indicator
        )),
        other => fail(describe_response(&other)),
    }
}

async fn host_bad_envelope(ctx: &mut Ctx) -> Outcome {
    let (id, envelope) = ctx.envelope(&Request::GetStatus(GetStatus))?;
    let bytes = envelope
        .encode(id.wrapping_add(1000))
        .map_err(message_error)?;
    let (_, response, _) = ctx.exchange_raw(&bytes, &UserScript::default()).await?;
    expect_status(&response, StatusCode::BadEnvelope)
}
