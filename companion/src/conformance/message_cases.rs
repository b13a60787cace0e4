//! Message-layer cases (PROTOCOL.md §3) that need no bank and no user: the requests every
//! device answers in every state, and the refusals of what does not decode.

use firmware_protocol::message::{
    BankChallenge, Cancel, GetInfo, GetStatus, HostId, HostVerified, Lifecycle, MacTag, Nonce,
    PairBegin, Ping, Request, Response, SessionId, StatusCode,
};

use super::probe::UserScript;
use super::{Case, Ctx, Outcome, Why, case_fn, describe_response, expect, expect_status, fail};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "msg.getinfo",
            section: "3.4",
            title: "GetInfo",
            expected: "Info with the request id, protocol version 1, max_message_len 4095 and link_mtu of this link (§6.10)",
            after: &[],
            run: case_fn!(get_info),
        },
        Case {
            id: "msg.getstatus",
            section: "3.4",
            title: "GetStatus",
            expected: "Status",
            after: &[],
            run: case_fn!(get_status),
        },
        Case {
            id: "msg.ping",
            section: "3.4",
            title: "Ping",
            expected: "Pong with the same payload",
            after: &[],
            run: case_fn!(ping),
        },
        Case {
            id: "msg.cancel",
            section: "3.4",
            title: "message-layer Cancel over the link",
            expected: "CancelResult naming the target, cancelled false (no request is ever in progress, §2.10)",
            after: &[],
            run: case_fn!(cancel),
        },
        Case {
            id: "msg.version",
            section: "3.5",
            title: "unsupported header version",
            expected: "Error(UnsupportedVersion) with the request id",
            after: &[],
            run: case_fn!(version),
        },
        Case {
            id: "msg.unknown-type",
            section: "3.5",
            title: "undefined request type",
            expected: "Error(UnknownMessage)",
            after: &[],
            run: case_fn!(unknown_type),
        },
        Case {
            id: "msg.vendor",
            section: "3.3",
            title: "vendor request the device may not implement",
            expected: "Error(UnknownMessage), or a vendor response",
            after: &[],
            run: case_fn!(vendor),
        },
        Case {
            id: "msg.short",
            section: "3.5",
            title: "message shorter than the header",
            expected: "Error(MalformedMessage) with request id 0",
            after: &[],
            run: case_fn!(short),
        },
        Case {
            id: "msg.trailing",
            section: "3.1",
            title: "byte after the last field",
            expected: "Error(MalformedMessage) with the request id",
            after: &[],
            run: case_fn!(trailing),
        },
        Case {
            id: "msg.response-type",
            section: "3.5",
            title: "a response type sent as a request",
            expected: "Error(MalformedMessage)",
            after: &[],
            run: case_fn!(response_type),
        },
        Case {
            id: "msg.bad-text",
            section: "3.2",
            title: "text field with a bidirectional override",
            expected: "Error(MalformedMessage) for a host name holding U+202E",
            after: &[],
            run: case_fn!(bad_text),
        },
        Case {
            id: "msg.not-paired",
            section: "3.7",
            title: "host-verified request sent bare",
            expected: "Error(NotPaired) (Error(Tampered) on a tampered device, §3.8)",
            after: &[],
            run: case_fn!(not_paired),
        },
        Case {
            id: "msg.unknown-host",
            section: "3.7",
            title: "envelope from a host never paired",
            expected: "Error(UnknownHost)",
            after: &[],
            run: case_fn!(unknown_host),
        },
        Case {
            id: "msg.lifecycle",
            section: "3.8",
            title: "request not allowed in the device's state",
            expected: "Manufactured: PairBegin -> NotInitialised; Initialised/Bound: Initialise -> WrongState; Revoked: Revoked; tampered: Tampered",
            after: &["msg.getstatus"],
            run: case_fn!(lifecycle),
        },
    ]
}

async fn get_info(ctx: &mut Ctx) -> Outcome {
    let info = expect::<GetInfo>(ctx.ask(&Request::GetInfo(GetInfo)).await?)?;
    let mtu = ctx.probe.mtu().get();
    let seen = format!(
        "serial {}, firmware {}, protocol {}, max_message_len {}, link_mtu {}",
        info.serial,
        info.firmware_version,
        info.protocol_version,
        info.max_message_len,
        info.link_mtu
    );
    let good = info.protocol_version == 1
        && info.max_message_len == 4095
        && usize::from(info.link_mtu) == mtu;
    ctx.info = Some(info);
    if good { Ok(seen) } else { fail(seen) }
}

async fn get_status(ctx: &mut Ctx) -> Outcome {
    let status = ctx.status().await?;
    Ok(format!(
        "{:?}, tampered {}, {:?}, indicator {:?}, {} paired hosts, bank sequence {}",
        status.lifecycle,
        status.tampered,
        status.lock,
        status.indicator,
        status.paired_hosts,
        status.bank_sequence
    ))
}

async fn ping(ctx: &mut Ctx) -> Outcome {
    let payload: Vec<u8> = (0..=255u8).collect();
    match ctx
        .ask(&Request::Ping(Ping {
            payload: payload.clone(),
        }))
        .await?
    {
        Response::Pong(pong) if pong.payload == payload => Ok("256 bytes echoed".into()),
        Response::Pong(_) => fail("Pong with another payload"),
        other => fail(describe_response(&other)),
    }
}

async fn cancel(ctx: &mut Ctx) -> Outcome {
    let target = 0x00C0_FFEE;
    match ctx
        .ask(&Request::Cancel(Cancel {
            target_request_id: target,
        }))
        .await?
    {
        Response::CancelResult(result)
            if result.target_request_id == target && !result.cancelled =>
        {
            Ok("CancelResult, cancelled false".into())
        }
        Response::CancelResult(result) => fail(format!(
            "CancelResult target {}, cancelled {}",
            result.target_request_id, result.cancelled
        )),
        other => fail(describe_response(&other)),
    }
}

/// Sends raw bytes; PASS if the answer is `Error(status)` with request id `id`.
async fn raw_refusal(ctx: &mut Ctx, bytes: &[u8], id: u32, status: StatusCode) -> Outcome {
    let (answer_id, response, _) = ctx.exchange_raw(bytes, &UserScript::default()).await?;
    let seen = expect_status(&response, status)?;
    if answer_id != id {
        return fail(format!("{seen} with request id {answer_id}, not {id}"));
    }
    Ok(format!("{seen}, request id {answer_id}"))
}

fn header(version: u8, message_type: u16, id: u32) -> Vec<u8> {
    let mut bytes = vec![version];
    bytes.extend_from_slice(&message_type.to_be_bytes());
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes
}

async fn version(ctx: &mut Ctx) -> Outcome {
    let id = ctx.request_id();
    raw_refusal(
        ctx,
        &header(2, 0x0002, id),
        id,
        StatusCode::UnsupportedVersion,
    )
    .await
}

async fn unknown_type(ctx: &mut Ctx) -> Outcome {
    let id = ctx.request_id();
    raw_refusal(ctx, &header(1, 0x0FFF, id), id, StatusCode::UnknownMessage).await
}

async fn vendor(ctx: &mut Ctx) -> Outcome {
    let id = ctx.request_id();
    let (answer_id, response, _) = ctx
        .exchange_raw(&header(1, 0x7ABC, id), &UserScript::default())
        .await?;
    if answer_id != id {
        return fail(format!("request id {answer_id}, not {id}"));
    }
    match response {
        Response::Error(error) if error.status == StatusCode::UnknownMessage => {
            Ok("Error(UnknownMessage): vendor type 0x7abc not implemented".into())
        }
        Response::Vendor(vendor) => Ok(format!("vendor response {:#06x}", vendor.message_type)),
        other => fail(describe_response(&other)),
    }
}

async fn short(ctx: &mut Ctx) -> Outcome {
    raw_refusal(ctx, &[0x01, 0x00, 0x02], 0, StatusCode::MalformedMessage).await
}

async fn trailing(ctx: &mut Ctx) -> Outcome {
    let id = ctx.request_id();
    let mut bytes = header(1, 0x0001, id);
    bytes.push(0);
    raw_refusal(ctx, &bytes, id, StatusCode::MalformedMessage).await
}

async fn response_type(ctx: &mut Ctx) -> Outcome {
    let id = ctx.request_id();
    raw_refusal(
        ctx,
        &header(1, 0x8001, id),
        id,
        StatusCode::MalformedMessage,
    )
    .await
}

async fn bad_text(ctx: &mut Ctx) -> Outcome {
    let id = ctx.request_id();
    let request = Request::PairBegin(PairBegin {
        host_public_key: super::session_cases::dummy_point()?,
        host_commitment: firmware_protocol::message::Sha256Digest([0; 32]),
        host_name: "PC-XYZ".into(),
    });
    let mut bytes = request.encode(id).map_err(|e| Why::Fail(e.to_string()))?;
    // "XYZ" -> U+202E RIGHT-TO-LEFT OVERRIDE (3 bytes of UTF-8): same length, bad text.
    let at = bytes.len() - 3;
    bytes[at..].copy_from_slice("\u{202E}".as_bytes());
    raw_refusal(ctx, &bytes, id, StatusCode::MalformedMessage).await
}

async fn tampered(ctx: &mut Ctx) -> Result<bool, Why> {
    Ok(ctx.status().await?.tampered)
}

async fn not_paired(ctx: &mut Ctx) -> Outcome {
    let want = if tampered(ctx).await? {
        StatusCode::Tampered
    } else {
        StatusCode::NotPaired
    };
    let request = Request::BankChallenge(BankChallenge {
        session_id: SessionId([0x11; 16]),
        bank_nonce: Nonce([0x22; 16]),
    });
    expect_status(&ctx.ask(&request).await?, want)
}

async fn unknown_host(ctx: &mut Ctx) -> Outcome {
    let want = if tampered(ctx).await? {
        StatusCode::Tampered
    } else {
        StatusCode::UnknownHost
    };
    let id = ctx.request_id();
    let inner = Request::GetStatus(GetStatus)
        .encode(id)
        .map_err(|e| Why::Fail(e.to_string()))?;
    let envelope = Request::HostVerified(HostVerified {
        host_id: HostId::from_array(ctx.probe.random_bytes()),
        counter: 1,
        inner,
        mac: MacTag([0x5A; 16]),
    });
    let bytes = envelope.encode(id).map_err(|e| Why::Fail(e.to_string()))?;
    raw_refusal(ctx, &bytes, id, want).await
}

async fn lifecycle(ctx: &mut Ctx) -> Outcome {
    let status = ctx.status().await?;
    let pair_begin = super::session_cases::refused_pair_begin;
    let (request, want) = if status.tampered {
        (pair_begin()?, StatusCode::Tampered)
    } else {
        match status.lifecycle {
            Lifecycle::Manufactured => (pair_begin()?, StatusCode::NotInitialised),
            Lifecycle::Revoked => (pair_begin()?, StatusCode::Revoked),
            Lifecycle::Initialised | Lifecycle::Bound => (
                super::session_cases::unsigned_initialise(ctx)?,
                StatusCode::WrongState,
            ),
        }
    };
    let response = ctx.ask(&request).await?;
    expect_status(&response, want)
        .map(|seen| format!("{:?}: {} -> {seen}", status.lifecycle, request.name()))
}
