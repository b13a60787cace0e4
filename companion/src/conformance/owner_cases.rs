//! The customer's own operations with the kit as the test bank: change PIN (PROTOCOL.md
//! §6.12: ChangePin, the three keypad entries, PinChangeEntered, VerifyPinChange) and the
//! owner's wipe (§6.13: WipeDevice, the keypad consent, the signed DeviceWiped). The PIN
//! cases run while the kit's session and pairing hold (after the payment cases); the wipe
//! cases after the bank commands, since a wipe erases what they use.

use firmware_protocol::crypto::ecdsa::EcdsaVerifyingKey;
use firmware_protocol::message::{
    ChangePin, DeviceWiped, GetStatus, Indicator, Lifecycle, LockState, MacTag, PinChangeResult,
    Request, Response, StatusCode, VerifyPinChange, WipeDevice,
};

use super::payment_cases::{SessionKeys, TEST_PIN, approved_verdict, pin_of};
use super::probe::UserScript;
use super::{Case, Ctx, Outcome, Why, case_fn, describe_response, expect_status, fail};

/// The new PIN the kit types (4 to 6 digits, as the ChangePin allows).
const NEW_PIN: &str = "250817";

pub(crate) fn pin_cases() -> Vec<Case> {
    vec![
        Case {
            id: "owner.change-pin",
            section: "6.12",
            title: "ChangePin: current PIN, new PIN twice on the keypad; VerifyPinChange Changed",
            expected: "PinChangeEntered (MAC under the session MAC key over the ChangePin, PIN blocks hold the typed PINs, device counter +1); IndicatorSet safe, Approved, \"PIN changed\"",
            after: &["bank.payment"],
            run: case_fn!(change_pin),
        },
        Case {
            id: "owner.change-pin.verify-mismatch",
            section: "6.12",
            title: "VerifyPinChange for a PIN change no longer pending",
            expected: "Error(TransactionMismatch) (checked after the bank MAC)",
            after: &["owner.change-pin"],
            run: case_fn!(verify_mismatch),
        },
        Case {
            id: "owner.change-pin.differ",
            section: "6.12",
            title: "ChangePin whose two new PIN entries differ",
            expected: "Error(PinMismatch)",
            after: &["bank.login"],
            run: case_fn!(entries_differ),
        },
        Case {
            id: "owner.change-pin.bad-mac",
            section: "6.12",
            title: "ChangePin with a wrong bank MAC",
            expected: "Error(BadBankMac) with indicator danger",
            after: &["bank.login"],
            run: case_fn!(change_pin_bad_mac),
        },
    ]
}

pub(crate) fn wipe_cases() -> Vec<Case> {
    vec![
        Case {
            id: "owner.wipe.cancel",
            section: "6.13",
            title: "WipeDevice, X on the keypad",
            expected: "Error(UserCancelled); still Bound",
            after: &["bank.enrol"],
            run: case_fn!(wipe_cancelled),
        },
        Case {
            id: "owner.wipe",
            section: "6.13",
            title: "WipeDevice, OK on the keypad",
            expected: "DeviceWiped (serial, the kept bank sequence, signed by the attestation key, domain device-attestation); Status Manufactured, unlocked, no paired host, same bank sequence",
            after: &["owner.wipe.cancel"],
            run: case_fn!(wipe),
        },
    ]
}

fn build_error(e: impl std::fmt::Display) -> Why {
    Why::Fail(format!("cannot build the request: {e}"))
}

fn session(ctx: &Ctx) -> Result<&SessionKeys, Why> {
    ctx.flow
        .session
        .as_ref()
        .ok_or_else(|| Why::Skip("needs bank.login".into()))
}

/// A ChangePin with the next bank counter (shared with payments), MACed under the session
/// response key (`good_mac: false` flips a bit of the MAC).
fn change_request(ctx: &mut Ctx, good_mac: bool) -> Result<ChangePin, Why> {
    let counter = ctx.flow.payment_counter + 1;
    let session = session(ctx)?;
    let mut request = ChangePin {
        session_id: session.id,
        counter,
        pin_length_min: 4,
        pin_length_max: 6,
        bank_mac: MacTag([0; 16]),
    };
    request
        .seal_bank_mac(&session.response_key)
        .map_err(build_error)?;
    if !good_mac {
        request.bank_mac.0[0] ^= 0x01;
    }
    Ok(request)
}

/// The keypad: each PIN typed, then Enter.
fn typed(pins: &[&str]) -> UserScript {
    UserScript {
        presses: pins
            .iter()
            .map(|pin| {
                let mut keys: Vec<String> = pin.chars().map(String::from).collect();
                keys.push("enter".into());
                keys
            })
            .collect(),
        key_by_key: false,
    }
}

/// The bank's MACed verdict for the PIN change the device sent with `device_counter`.
fn verdict(ctx: &Ctx, device_counter: u64) -> Result<VerifyPinChange, Why> {
    let session = session(ctx)?;
    let mut verify = VerifyPinChange {
        session_id: session.id,
        device_counter,
        result: PinChangeResult::Changed,
        pin_tries_left: 3,
        bank_mac: MacTag([0; 16]),
    };
    verify
        .seal_bank_mac(&session.response_key)
        .map_err(build_error)?;
    Ok(verify)
}

async fn change_pin(ctx: &mut Ctx) -> Outcome {
    ctx.hook()?;
    let request = change_request(ctx, true)?;
    ctx.flow.payment_counter = request.counter;
    let user = typed(&[TEST_PIN, NEW_PIN, NEW_PIN]);
    let (response, _) = ctx
        .ask_verified_with(&Request::ChangePin(request.clone()), &user)
        .await?;
    let entered = match response {
        Response::PinChangeEntered(entered) => entered,
        other => return fail(describe_response(&other)),
    };
    let session = session(ctx)?;
    if !entered.mac_verifies(&session.mac_key, &request) {
        return fail("PinChangeEntered whose MAC does not verify under the session MAC key");
    }
    for (what, block, pin) in [
        ("current", &entered.old_pin_block, TEST_PIN),
        ("new", &entered.new_pin_block, NEW_PIN),
    ] {
        match pin_of(block, &session.pin_key) {
            Ok(held) if held.as_str() == pin => {}
            Ok(_) => return fail(format!("the {what} PIN block holds another PIN")),
            Err(error) => return fail(format!("the {what} PIN block: {error}")),
        }
    }
    ctx.flow.pin_change_counter = Some(entered.device_counter);
    let verify = verdict(ctx, entered.device_counter)?;
    let (response, _) = ctx
        .ask_verified_with(&Request::VerifyPinChange(verify), &UserScript::default())
        .await?;
    approved_verdict(
        response,
        "PIN changed",
        "PinChangeEntered",
        "VerifyPinChange",
    )
    .map(|shown| {
        format!(
            "PinChangeEntered (device counter {}, MAC and both PIN blocks verified); {shown}",
            entered.device_counter
        )
    })
}

async fn verify_mismatch(ctx: &mut Ctx) -> Outcome {
    let Some(counter) = ctx.flow.pin_change_counter else {
        return Err(Why::Skip("needs owner.change-pin".into()));
    };
    let verify = verdict(ctx, counter)?;
    let (response, _) = ctx
        .ask_verified_with(&Request::VerifyPinChange(verify), &UserScript::default())
        .await?;
    expect_status(&response, StatusCode::TransactionMismatch)
}

async fn entries_differ(ctx: &mut Ctx) -> Outcome {
    ctx.hook()?;
    let request = change_request(ctx, true)?;
    // The counter is consumed once the MAC verifies (PROTOCOL.md §6.3), whatever follows.
    ctx.flow.payment_counter = request.counter;
    let user = typed(&[TEST_PIN, NEW_PIN, "111111"]);
    let (response, _) = ctx
        .ask_verified_with(&Request::ChangePin(request), &user)
        .await?;
    expect_status(&response, StatusCode::PinMismatch)
}

async fn change_pin_bad_mac(ctx: &mut Ctx) -> Outcome {
    let request = change_request(ctx, false)?;
    let (response, _) = ctx
        .ask_verified_with(&Request::ChangePin(request), &UserScript::default())
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

async fn wipe_cancelled(ctx: &mut Ctx) -> Outcome {
    ctx.hook()?;
    let user = UserScript {
        presses: vec![vec!["cancel".into()]],
        key_by_key: false,
    };
    let (response, _) = ctx
        .ask_with(&Request::WipeDevice(WipeDevice), &user)
        .await?;
    let refused = expect_status(&response, StatusCode::UserCancelled)?;
    let status = ctx.status().await?;
    if status.lifecycle != Lifecycle::Bound {
        return fail(format!("{refused}, then {:?}", status.lifecycle));
    }
    Ok(format!("{refused}; still Bound"))
}

async fn wipe(ctx: &mut Ctx) -> Outcome {
    ctx.hook()?;
    let info = ctx
        .info
        .clone()
        .ok_or_else(|| Why::Skip("needs msg.getinfo".into()))?;
    let before = ctx.status().await?;
    let user = UserScript {
        presses: vec![vec!["enter".into()]],
        key_by_key: false,
    };
    let (response, _) = ctx
        .ask_with(&Request::WipeDevice(WipeDevice), &user)
        .await?;
    let receipt: DeviceWiped = match response {
        Response::DeviceWiped(receipt) => receipt,
        other => return fail(describe_response(&other)),
    };
    // Whatever the receipt says, the kit's pairing and session are gone with the wipe.
    ctx.paired = None;
    ctx.flow.session = None;
    if receipt.device_serial != info.serial || receipt.bank_sequence != before.bank_sequence {
        return fail(format!(
            "DeviceWiped for {} with bank sequence {} (the device is {}, sequence {})",
            receipt.device_serial, receipt.bank_sequence, info.serial, before.bank_sequence
        ));
    }
    let key = EcdsaVerifyingKey::from_sec1_bytes(info.attestation_public_key.as_bytes())
        .map_err(|e| Why::Fail(format!("Info.attestation_public_key: {e}")))?;
    let signed = receipt.signed_bytes().map_err(build_error)?;
    if key
        .verify(DeviceWiped::SIGNATURE_DOMAIN, &signed, &receipt.signature)
        .is_err()
    {
        return fail("DeviceWiped whose signature does not verify under the attestation key");
    }
    let after = match ctx.ask(&Request::GetStatus(GetStatus)).await? {
        Response::Status(status) => status,
        other => return fail(format!("DeviceWiped, then {}", describe_response(&other))),
    };
    if after.lifecycle != Lifecycle::Manufactured
        || after.lock != LockState::Unlocked
        || after.paired_hosts != 0
        || after.session_active
        || after.bank_sequence != before.bank_sequence
    {
        return fail(format!(
            "DeviceWiped, then {:?}, {:?}, {} paired hosts, session {}, bank sequence {}",
            after.lifecycle,
            after.lock,
            after.paired_hosts,
            after.session_active,
            after.bank_sequence
        ));
    }
    Ok(format!(
        "DeviceWiped signed by the attestation key (bank sequence {} kept); Status Manufactured, unlocked, no paired host",
        receipt.bank_sequence
    ))
}
