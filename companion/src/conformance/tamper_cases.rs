//! Tamper cases (PROTOCOL.md §6.6), through the device's test hook: they run last, since a
//! tamper wipes what the other cases set up, and the test bank's operator key resets the
//! device afterwards.

use firmware_protocol::message::{Indicator, Lifecycle, Response, StatusCode};

use super::session_cases::{next_sequence, operator_reset, refused_pair_begin, reset};
use super::{Case, Ctx, Outcome, Why, case_fn, describe_response, expect_status, fail};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "tamper.trip",
            section: "6.6",
            title: "tamper switch opened",
            expected: "Status tampered, Manufactured, indicator danger, no paired host; PairBegin -> Error(Tampered)",
            after: &["bank.reset"],
            run: case_fn!(tamper_trip),
        },
        Case {
            id: "tamper.reset-while-open",
            section: "6.6",
            title: "OperatorReset with the switch still open",
            expected: "Error(WrongState)",
            after: &["tamper.trip"],
            run: case_fn!(tamper_reset_while_open),
        },
        Case {
            id: "tamper.reset",
            section: "6.6",
            title: "OperatorReset after the switch is closed",
            expected: "Status not tampered, Manufactured, indicator off",
            after: &["tamper.trip"],
            run: case_fn!(tamper_reset),
        },
    ]
}

async fn tamper_trip(ctx: &mut Ctx) -> Outcome {
    ctx.bank()?;
    let hook = ctx.hook()?.clone();
    hook.tamper(true)
        .await
        .map_err(|e| Why::Fail(format!("test hook: {e}")))?;
    let status = ctx.status().await?;
    ctx.paired = None;
    let seen = format!(
        "tampered {}, {:?}, indicator {:?}, {} paired hosts",
        status.tampered, status.lifecycle, status.indicator, status.paired_hosts
    );
    if !status.tampered
        || status.lifecycle != Lifecycle::Manufactured
        || status.indicator != Indicator::Danger
        || status.paired_hosts != 0
    {
        return fail(seen);
    }
    let refused = ctx.ask(&refused_pair_begin()?).await?;
    expect_status(&refused, StatusCode::Tampered).map(|r| format!("{seen}; PairBegin -> {r}"))
}

async fn tamper_reset_while_open(ctx: &mut Ctx) -> Outcome {
    let sequence = next_sequence(ctx).await?;
    let request = operator_reset(ctx, sequence)?;
    expect_status(&ctx.ask(&request).await?, StatusCode::WrongState)
}

async fn tamper_reset(ctx: &mut Ctx) -> Outcome {
    let hook = ctx.hook()?.clone();
    hook.tamper(false)
        .await
        .map_err(|e| Why::Fail(format!("test hook: {e}")))?;
    match reset(ctx).await? {
        Response::Status(status)
            if !status.tampered
                && status.lifecycle == Lifecycle::Manufactured
                && status.indicator == Indicator::Off =>
        {
            Ok("Status: not tampered, Manufactured, indicator off".into())
        }
        Response::Status(status) => fail(format!(
            "tampered {}, {:?}, indicator {:?}",
            status.tampered, status.lifecycle, status.indicator
        )),
        other => fail(describe_response(&other)),
    }
}
