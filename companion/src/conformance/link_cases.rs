//! Link-layer cases (PROTOCOL.md §2) that need nothing but the link: INIT, PING, WINK,
//! refusals, damaged and out-of-order frames, acknowledged delivery.

use std::time::Duration;

use firmware_protocol::link::{
    Body, Capabilities, ChannelId, Command, ErrorCode, Frame, RetransmitPolicy,
};
use firmware_protocol::message::{GetStatus, Request, Response};

use super::probe::{Seen, UserScript, describe};
use super::{Case, Ctx, Outcome, case_fn, fail, foreign_channel};
use crate::transport::TransportKind;

/// How long the kit waits for an answer that is due at once.
const ANSWER_WINDOW: Duration = Duration::from_millis(1000);

/// How long the kit listens to be sure nothing comes.
const QUIET_WINDOW: Duration = Duration::from_millis(400);

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "link.init.allocate",
            section: "2.6.2",
            title: "INIT on broadcast allocates a channel",
            expected: "INIT answer on broadcast echoing the nonce, an assignable channel, version 1, the link's MTU",
            after: &[],
            run: case_fn!(init_allocate),
        },
        Case {
            id: "link.init.resync",
            section: "2.6.3",
            title: "INIT on an open channel resynchronises it",
            expected: "INIT answer on that channel with the same id; sequence numbers back to 0",
            after: &["link.init.allocate"],
            run: case_fn!(init_resync),
        },
        Case {
            id: "link.ping.echo",
            section: "2.5",
            title: "PING is echoed",
            expected: "PING with the same 300-byte payload (a multi-packet frame)",
            after: &[],
            run: case_fn!(ping_echo),
        },
        Case {
            id: "link.wink",
            section: "2.5",
            title: "WINK as the capabilities say",
            expected: "WINK if INIT capability bit 0 is set, else ERROR INVALID_COMMAND",
            after: &[],
            run: case_fn!(wink),
        },
        Case {
            id: "link.cmd.unknown",
            section: "2.8",
            title: "unknown command refused",
            expected: "ERROR INVALID_COMMAND for command 0xA5",
            after: &[],
            run: case_fn!(cmd_unknown),
        },
        Case {
            id: "link.cmd.device-only",
            section: "2.5",
            title: "KEEPALIVE from the host refused",
            expected: "ERROR INVALID_COMMAND (a device never receives KEEPALIVE)",
            after: &[],
            run: case_fn!(cmd_device_only),
        },
        Case {
            id: "link.channel.unopened",
            section: "2.6.4",
            title: "a channel never allocated is refused",
            expected: "ERROR INVALID_CHANNEL on that channel",
            after: &[],
            run: case_fn!(channel_unopened),
        },
        Case {
            id: "link.channel.broadcast",
            section: "2.6.1",
            title: "only INIT on broadcast",
            expected: "ERROR INVALID_CHANNEL for PING on ffffffff",
            after: &[],
            run: case_fn!(channel_broadcast),
        },
        Case {
            id: "link.channel.zero",
            section: "2.6.1",
            title: "channel 00000000 is dropped",
            expected: "no answer to PING on 00000000, and the link still works",
            after: &[],
            run: case_fn!(channel_zero),
        },
        Case {
            id: "link.length.oversize",
            section: "2.4",
            title: "BCNT above the maximum refused at the init packet",
            expected: "ERROR MESSAGE_TOO_LARGE for BCNT = max + 1",
            after: &[],
            run: case_fn!(length_oversize),
        },
        Case {
            id: "link.length.padding",
            section: "2.3",
            title: "nonzero padding refused",
            expected: "ERROR INVALID_LENGTH",
            after: &[],
            run: case_fn!(length_padding),
        },
        Case {
            id: "link.length.payload",
            section: "2.5",
            title: "payload length wrong for the command",
            expected: "ERROR INVALID_LENGTH for a 2-byte ACK",
            after: &[],
            run: case_fn!(length_payload),
        },
        Case {
            id: "link.crc.bad",
            section: "2.8",
            title: "bad CRC from the host",
            expected: "NACK CRC_MISMATCH, no ACK; the same MSG resent intact is then ACKed and answered",
            after: &[],
            run: case_fn!(crc_bad),
        },
        Case {
            id: "link.seq.gap",
            section: "2.8",
            title: "continuation out of order",
            expected: "NACK INVALID_SEQUENCE",
            after: &[],
            run: case_fn!(seq_gap),
        },
        Case {
            id: "link.reassembly.timeout",
            section: "2.8",
            title: "a frame left unfinished expires",
            expected: "NACK MESSAGE_TIMEOUT between 3000 and 3100 ms after its last packet",
            after: &[],
            run: case_fn!(reassembly_timeout),
        },
        Case {
            id: "link.msg.ack-first",
            section: "2.9.2",
            title: "ACK before the answer",
            expected: "ACK of the request's number, then the answer MSG with the device's number 0, 1, ...",
            after: &[],
            run: case_fn!(ack_first),
        },
        Case {
            id: "link.msg.duplicate",
            section: "2.9.2",
            title: "duplicate MSG (its ACK was lost)",
            expected: "ACK again, nothing delivered (no second answer)",
            after: &["link.msg.ack-first"],
            run: case_fn!(msg_duplicate),
        },
        Case {
            id: "link.msg.stale",
            section: "2.9.2",
            title: "out-of-sync MSG number",
            expected: "nothing: no ACK, no answer",
            after: &[],
            run: case_fn!(msg_stale),
        },
        Case {
            id: "link.msg.retransmit",
            section: "2.9.3",
            title: "unacknowledged answer is retransmitted",
            expected: "the same answer MSG again after 200 ms + 20 ms/packet, and at once on NACK",
            after: &[],
            run: case_fn!(retransmit),
        },
        Case {
            id: "link.msg.given-up",
            section: "2.9.3",
            title: "a request after a given-up answer is that answer's ACK",
            expected: "6 sends of the unacknowledged answer, then the next request answered under the next number",
            after: &[],
            run: case_fn!(given_up),
        },
        Case {
            id: "link.cancel.idle",
            section: "2.10",
            title: "CANCEL with no transaction is ignored",
            expected: "nothing",
            after: &[],
            run: case_fn!(cancel_idle),
        },
    ]
}

async fn init_allocate(ctx: &mut Ctx) -> Outcome {
    let init = ctx.chan.init;
    let mtu = ctx.probe.mtu();
    if init.version != 1 {
        return fail(format!("link version {}", init.version));
    }
    if init.mtu != mtu {
        return fail(format!("MTU {} on a link of {}", init.mtu.get(), mtu.get()));
    }
    Ok(format!(
        "channel {}, version 1, MTU {}, capabilities {:#04x}",
        init.channel,
        init.mtu.get(),
        init.capabilities.0
    ))
}

async fn init_resync(ctx: &mut Ctx) -> Outcome {
    let (answer, before) = ctx.probe.init(ctx.chan.id).await?;
    let Some(answer) = answer else {
        return fail(format!(
            "no INIT answer on {}: {}",
            ctx.chan.id,
            describe(&before)
        ));
    };
    if answer.channel != ctx.chan.id {
        return fail(format!("the answer assigned {} instead", answer.channel));
    }
    ctx.chan.tx = 0;
    ctx.chan.rx = 0;
    match ctx.ask(&Request::GetStatus(GetStatus)).await? {
        Response::Status(_) => Ok(format!(
            "same channel {}; a MSG numbered 0 was then answered",
            answer.channel
        )),
        other => fail(super::describe_response(&other)),
    }
}

async fn ping_echo(ctx: &mut Ctx) -> Outcome {
    let payload: Vec<u8> = (0..300u32)
        .map(|i| u8::try_from((i * 7 + 3) % 256).unwrap_or(0))
        .collect();
    let chan = ctx.chan.id;
    ctx.probe
        .send_frame(&Frame::new(chan, Body::Ping(payload.clone())))
        .await?;
    let (found, before) = ctx
        .probe
        .wait_for(ANSWER_WINDOW, |s| {
            matches!(s.frame_on(chan), Some(Body::Ping(_)))
        })
        .await?;
    match found.as_ref().and_then(|s| s.frame_on(chan)) {
        Some(Body::Ping(echo)) if *echo == payload => Ok("300 bytes echoed".into()),
        Some(Body::Ping(echo)) => fail(format!("PING of {} different bytes", echo.len())),
        _ => fail(describe(&before)),
    }
}

async fn expect_error(ctx: &mut Ctx, on: ChannelId, code: ErrorCode) -> Outcome {
    let (found, before) = ctx
        .probe
        .wait_for(ANSWER_WINDOW, |s: &Seen| s.is_error(on, code))
        .await?;
    match found {
        Some(_) => Ok(format!("ERROR {code:?}")),
        None => fail(describe(&before)),
    }
}

async fn wink(ctx: &mut Ctx) -> Outcome {
    let chan = ctx.chan.id;
    let supported = ctx.chan.init.capabilities.contains(Capabilities::WINK);
    ctx.probe.send_frame(&Frame::new(chan, Body::Wink)).await?;
    if !supported {
        return expect_error(ctx, chan, ErrorCode::InvalidCommand).await;
    }
    let (found, before) = ctx
        .probe
        .wait_for(ANSWER_WINDOW, |s| {
            matches!(s.frame_on(chan), Some(Body::Wink))
        })
        .await?;
    match found {
        Some(_) => Ok("WINK answered (capability bit 0 set)".into()),
        None => fail(describe(&before)),
    }
}

async fn cmd_unknown(ctx: &mut Ctx) -> Outcome {
    let packets = ctx.probe.raw_frame(ctx.chan.id, 0xA5, 0, &[]);
    ctx.probe.send_packets(&packets).await?;
    expect_error(ctx, ctx.chan.id, ErrorCode::InvalidCommand).await
}

async fn cmd_device_only(ctx: &mut Ctx) -> Outcome {
    let packets = ctx
        .probe
        .raw_frame(ctx.chan.id, Command::Keepalive.byte(), 1, &[0x01]);
    ctx.probe.send_packets(&packets).await?;
    expect_error(ctx, ctx.chan.id, ErrorCode::InvalidCommand).await
}

async fn channel_unopened(ctx: &mut Ctx) -> Outcome {
    let foreign = foreign_channel(ctx.chan.id);
    ctx.probe.listen(foreign);
    let packets = ctx
        .probe
        .raw_frame(foreign, Command::Ping.byte(), 2, &[1, 2]);
    ctx.probe.send_packets(&packets).await?;
    expect_error(ctx, foreign, ErrorCode::InvalidChannel).await
}

async fn channel_broadcast(ctx: &mut Ctx) -> Outcome {
    let packets = ctx
        .probe
        .raw_frame(ChannelId::BROADCAST, Command::Ping.byte(), 2, &[1, 2]);
    ctx.probe.send_packets(&packets).await?;
    expect_error(ctx, ChannelId::BROADCAST, ErrorCode::InvalidChannel).await
}

async fn channel_zero(ctx: &mut Ctx) -> Outcome {
    let packets = ctx
        .probe
        .raw_frame(ChannelId::RESERVED, Command::Ping.byte(), 2, &[1, 2]);
    ctx.probe.send_packets(&packets).await?;
    let seen = ctx.probe.collect(QUIET_WINDOW).await?;
    if !seen.is_empty() {
        return fail(describe(&seen));
    }
    ping_echo(ctx)
        .await
        .map(|_| "dropped; PING on the own channel still echoed".into())
}

async fn length_oversize(ctx: &mut Ctx) -> Outcome {
    let max = ctx.probe.mtu().max_payload_len();
    let declared = u16::try_from(max + 1).unwrap_or(u16::MAX);
    let data = vec![0u8; ctx.probe.mtu().get()];
    let mut packets = ctx
        .probe
        .raw_frame(ctx.chan.id, Command::Msg.byte(), declared, &data);
    packets.truncate(1);
    ctx.probe.send_packets(&packets).await?;
    expect_error(ctx, ctx.chan.id, ErrorCode::MessageTooLarge)
        .await
        .map(|seen| format!("{seen} for BCNT {declared}"))
}

async fn length_padding(ctx: &mut Ctx) -> Outcome {
    let mut packets = ctx
        .probe
        .raw_frame(ctx.chan.id, Command::Ping.byte(), 4, &[1, 2, 3, 4]);
    if let Some(last) = packets.first_mut().and_then(|p| p.last_mut()) {
        *last = 0x55;
    }
    ctx.probe.send_packets(&packets).await?;
    expect_error(ctx, ctx.chan.id, ErrorCode::InvalidLength).await
}

async fn length_payload(ctx: &mut Ctx) -> Outcome {
    let packets = ctx
        .probe
        .raw_frame(ctx.chan.id, Command::Ack.byte(), 2, &[0, 0]);
    ctx.probe.send_packets(&packets).await?;
    expect_error(ctx, ctx.chan.id, ErrorCode::InvalidLength).await
}

fn get_status_bytes(ctx: &mut Ctx) -> Result<Vec<u8>, super::Why> {
    let id = ctx.request_id();
    Request::GetStatus(GetStatus)
        .encode(id)
        .map_err(|e| super::Why::Fail(format!("cannot encode GetStatus: {e}")))
}

async fn crc_bad(ctx: &mut Ctx) -> Outcome {
    let message = get_status_bytes(ctx)?;
    let chan = ctx.chan.id;
    let mut payload = vec![ctx.chan.tx];
    payload.extend_from_slice(&message);
    let declared = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut packets = ctx
        .probe
        .raw_frame(chan, Command::Msg.byte(), declared, &payload);
    // The CRC follows the payload; the request fits the init packet.
    if let Some(byte) = packets
        .first_mut()
        .and_then(|p| p.get_mut(7 + payload.len()))
    {
        *byte ^= 0xFF;
    }
    ctx.probe.send_packets(&packets).await?;
    let (found, before) = ctx
        .probe
        .wait_for(ANSWER_WINDOW, |s| {
            matches!(
                s.frame_on(chan),
                Some(Body::Nack {
                    reason: ErrorCode::CrcMismatch
                })
            )
        })
        .await?;
    if found.is_none() {
        return fail(describe(&before));
    }
    let after = ctx.probe.collect(QUIET_WINDOW).await?;
    if let Some(extra) = after.iter().find(|s| s.frame_on(chan).is_some()) {
        return fail(format!("NACK, then {}", super::probe::describe_one(extra)));
    }
    let (_, _, exchange) = ctx.exchange_raw(&message, &UserScript::default()).await?;
    if !exchange.acked {
        return fail("NACK; the intact MSG was answered without an ACK");
    }
    Ok("NACK CRC_MISMATCH; the intact resend was ACKed and answered".into())
}

fn long_ping(ctx: &Ctx) -> Vec<Vec<u8>> {
    let payload = vec![0x42u8; 200];
    ctx.probe
        .raw_frame(ctx.chan.id, Command::Ping.byte(), 200, &payload)
}

async fn seq_gap(ctx: &mut Ctx) -> Outcome {
    let packets = long_ping(ctx);
    let chan = ctx.chan.id;
    let (Some(first), Some(third)) = (packets.first(), packets.get(2)) else {
        return fail("cannot build a 4-packet PING");
    };
    ctx.probe
        .send_packets(&[first.clone(), third.clone()])
        .await?;
    let (found, before) = ctx
        .probe
        .wait_for(ANSWER_WINDOW, |s| {
            matches!(
                s.frame_on(chan),
                Some(Body::Nack {
                    reason: ErrorCode::InvalidSequence
                })
            )
        })
        .await?;
    match found {
        Some(_) => Ok("NACK INVALID_SEQUENCE for continuation 1 after the init packet".into()),
        None => fail(describe(&before)),
    }
}

async fn reassembly_timeout(ctx: &mut Ctx) -> Outcome {
    let tolerance = ctx.tolerance_ms;
    let packets = long_ping(ctx);
    let chan = ctx.chan.id;
    let Some(first) = packets.first() else {
        return fail("cannot build a 4-packet PING");
    };
    ctx.probe.send_packets(std::slice::from_ref(first)).await?;
    let sent = ctx.probe.now_ms();
    let (found, before) = ctx
        .probe
        .wait_for(Duration::from_millis(3100 + 2 * tolerance + 400), |s| {
            matches!(
                s.frame_on(chan),
                Some(Body::Nack {
                    reason: ErrorCode::MessageTimeout
                })
            )
        })
        .await?;
    let Some(found) = found else {
        return fail(describe(&before));
    };
    let after = found.at_ms.saturating_sub(sent);
    if after + tolerance < 3000 || after > 3100 + tolerance {
        return fail(format!("NACK MESSAGE_TIMEOUT after {after} ms"));
    }
    Ok(format!("NACK MESSAGE_TIMEOUT after {after} ms"))
}

async fn ack_first(ctx: &mut Ctx) -> Outcome {
    let message = get_status_bytes(ctx)?;
    let expected_rx = ctx.chan.rx;
    let (_, response, exchange) = ctx.exchange_raw(&message, &UserScript::default()).await?;
    if !exchange.acked {
        return fail(format!(
            "{} without an ACK before it",
            super::describe_response(&response)
        ));
    }
    Ok(format!(
        "ACK after {} ms, answer MSG number {expected_rx} after {} ms",
        exchange
            .ack_ms
            .unwrap_or(0)
            .saturating_sub(exchange.sent_ms),
        exchange.answer_ms.saturating_sub(exchange.sent_ms)
    ))
}

async fn msg_duplicate(ctx: &mut Ctx) -> Outcome {
    let message = get_status_bytes(ctx)?;
    ctx.exchange_raw(&message, &UserScript::default()).await?;
    let chan = ctx.chan.id;
    let seq = ctx.chan.tx.wrapping_sub(1);
    ctx.probe
        .send_frame(&Frame::new(
            chan,
            Body::Msg {
                seq,
                message: message.clone(),
            },
        ))
        .await?;
    let seen = ctx.probe.collect(ANSWER_WINDOW).await?;
    let on_chan: Vec<Seen> = seen
        .into_iter()
        .filter(|s| s.frame_on(chan).is_some())
        .collect();
    let acks = on_chan
        .iter()
        .filter(|s| matches!(s.frame_on(chan), Some(Body::Ack { seq: s2 }) if *s2 == seq))
        .count();
    let answers = on_chan
        .iter()
        .filter(|s| matches!(s.frame_on(chan), Some(Body::Msg { .. })))
        .count();
    if acks == 1 && answers == 0 {
        Ok(format!("ACK({seq}) again, no answer"))
    } else {
        fail(describe(&on_chan))
    }
}

async fn msg_stale(ctx: &mut Ctx) -> Outcome {
    let message = get_status_bytes(ctx)?;
    let chan = ctx.chan.id;
    let seq = ctx.chan.tx.wrapping_add(7);
    ctx.probe
        .send_frame(&Frame::new(chan, Body::Msg { seq, message }))
        .await?;
    let seen = ctx.probe.collect(QUIET_WINDOW).await?;
    let on_chan: Vec<Seen> = seen
        .into_iter()
        .filter(|s| s.frame_on(chan).is_some())
        .collect();
    if on_chan.is_empty() {
        Ok(format!(
            "MSG numbered {seq} (expected {}) ignored",
            ctx.chan.tx
        ))
    } else {
        fail(describe(&on_chan))
    }
}

async fn retransmit(ctx: &mut Ctx) -> Outcome {
    let tolerance = ctx.tolerance_ms;
    let message = get_status_bytes(ctx)?;
    let chan = ctx.chan.id;
    let rx = ctx.chan.rx;
    ctx.probe.send_request(&ctx.chan.clone(), &message).await?;
    let is_answer =
        |s: &Seen| matches!(s.frame_on(chan), Some(Body::Msg { seq, .. }) if *seq == rx);
    let (first, before) = ctx.probe.wait_for(ANSWER_WINDOW, is_answer).await?;
    let Some(first) = first else {
        return fail(format!("no answer: {}", describe(&before)));
    };
    ctx.chan.tx = ctx.chan.tx.wrapping_add(1);
    let Some(Body::Msg {
        message: answer, ..
    }) = first.frame_on(chan).cloned()
    else {
        return fail("no answer");
    };
    let packets = Frame::new(
        chan,
        Body::Msg {
            seq: rx,
            message: answer.clone(),
        },
    )
    .to_packets(ctx.probe.mtu())
    .map(|p| p.len())
    .unwrap_or(1);
    let policy = match ctx.probe.kind() {
        TransportKind::Ble => RetransmitPolicy::BLE,
        _ => RetransmitPolicy::STANDARD,
    };
    let rto = policy.timeout_ms(packets);
    let (again, before) = ctx
        .probe
        .wait_for(Duration::from_millis(rto + 2 * tolerance + 300), is_answer)
        .await?;
    let Some(again) = again else {
        return fail(format!("no retransmission: {}", describe(&before)));
    };
    let gap = again.at_ms.saturating_sub(first.at_ms);
    let same =
        matches!(again.frame_on(chan), Some(Body::Msg { message, .. }) if *message == answer);
    if !same || gap + tolerance < rto || gap > rto + 2 * tolerance {
        return fail(format!(
            "retransmission after {gap} ms (RTO {rto} ms), {}",
            if same {
                "same bytes"
            } else {
                "different bytes"
            }
        ));
    }
    ctx.probe
        .send_frame(&Frame::new(
            chan,
            Body::Nack {
                reason: ErrorCode::CrcMismatch,
            },
        ))
        .await?;
    let nacked = ctx.probe.now_ms();
    let (third, before) = ctx
        .probe
        .wait_for(Duration::from_millis(rto), is_answer)
        .await?;
    let Some(third) = third else {
        return fail(format!(
            "retransmitted after {gap} ms, but not on NACK: {}",
            describe(&before)
        ));
    };
    let on_nack = third.at_ms.saturating_sub(nacked);
    ctx.probe
        .send_frame(&Frame::new(chan, Body::Ack { seq: rx }))
        .await?;
    ctx.chan.rx = ctx.chan.rx.wrapping_add(1);
    if on_nack > tolerance {
        return fail(format!("retransmitted {on_nack} ms after the NACK"));
    }
    Ok(format!(
        "same MSG after {gap} ms (RTO {rto} ms), again {on_nack} ms after a NACK"
    ))
}

async fn given_up(ctx: &mut Ctx) -> Outcome {
    let tolerance = ctx.tolerance_ms;
    let message = get_status_bytes(ctx)?;
    let chan = ctx.chan.id;
    let rx = ctx.chan.rx;
    let policy = match ctx.probe.kind() {
        TransportKind::Ble => RetransmitPolicy::BLE,
        _ => RetransmitPolicy::STANDARD,
    };
    let sends = u64::from(policy.max_retransmissions) + 1;
    ctx.probe.send_request(&ctx.chan.clone(), &message).await?;
    // Never acknowledged: every transmission and the give-up fit in this window.
    let packets = ctx.probe.mtu().packet_count(1 + 256); // more than a Status answer: a longer window
    let window = (policy.timeout_ms(packets) + 2 * tolerance) * (sends + 1);
    let seen = ctx.probe.collect(Duration::from_millis(window)).await?;
    let answers = seen
        .iter()
        .filter(|s| matches!(s.frame_on(chan), Some(Body::Msg { seq, .. }) if *seq == rx))
        .count();
    ctx.chan.tx = ctx.chan.tx.wrapping_add(1);
    if answers as u64 != sends {
        return fail(format!("{answers} sends of the answer, not {sends}"));
    }
    ctx.probe.send_request(&ctx.chan.clone(), &message).await?;
    let next = rx.wrapping_add(1);
    let (found, before) = ctx
        .probe
        .wait_for(
            ANSWER_WINDOW,
            |s| matches!(s.frame_on(chan), Some(Body::Msg { seq, .. }) if *seq == next),
        )
        .await?;
    if found.is_none() {
        return fail(format!(
            "no answer numbered {next} to the next request: {}",
            describe(&before)
        ));
    }
    ctx.chan.tx = ctx.chan.tx.wrapping_add(1);
    ctx.probe
        .send_frame(&Frame::new(chan, Body::Ack { seq: next }))
        .await?;
    ctx.chan.rx = next.wrapping_add(1);
    Ok(format!(
        "{sends} sends, then the next request answered as MSG {next}"
    ))
}

async fn cancel_idle(ctx: &mut Ctx) -> Outcome {
    let chan = ctx.chan.id;
    ctx.probe
        .send_frame(&Frame::new(chan, Body::Cancel))
        .await?;
    let seen = ctx.probe.collect(QUIET_WINDOW).await?;
    if seen.is_empty() {
        Ok("nothing".into())
    } else {
        fail(describe(&seen))
    }
}
