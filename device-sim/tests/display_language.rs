//! The display language is a setting of the PIN pad (PROTOCOL.md §6.1, issue 17 item 7): set
//! at manufacture or on the device, kept across restarts; with zh-CN every prompt and outcome
//! screen is in Chinese, while what the MACs cover (the amount as
//! `firmware_protocol::display` formats it, payee, accounts, reference) is shown as it is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::device::Language;
use device_sim::hardware::KeyPress;
use firmware_protocol::display::format_money;
use firmware_protocol::message::{
    BankResult, Cancel, Nonce, Request, Response, SignConfirmation, StatusCode,
};
use support::{PIN, Rig, SERIAL, response, status_of};

fn shown(rig: &Rig) -> String {
    rig.hw.display().join("\n")
}

fn chinese() -> Rig {
    let mut rig = Rig::ready();
    rig.device
        .set_display_language(Language::ZhCn, &mut rig.hw)
        .unwrap();
    rig
}

#[test]
fn the_language_is_the_devices_setting_english_unless_set_and_kept_across_a_restart() {
    let mut rig = Rig::ready();
    assert_eq!(rig.device.display_language(), Language::En);
    rig.device.poll(&mut rig.hw);
    assert!(shown(&rig).contains("Paired with"), "{}", shown(&rig));

    rig.device
        .set_display_language(Language::ZhCn, &mut rig.hw)
        .unwrap();
    assert_eq!(rig.device.snapshot().display_language, "zh-CN");
    assert_eq!(
        rig.hw.display(),
        [format!("PinBridge {SERIAL}"), "就绪".to_string()].as_slice(),
        "the idle screen is redrawn at once, in place of the passing outcome"
    );
    rig.restart();
    assert_eq!(rig.device.display_language(), Language::ZhCn);

    let factory = Rig::with_settings(|settings| settings.display_language = Language::ZhCn);
    assert_eq!(factory.device.display_language(), Language::ZhCn);
    assert_eq!("zh-CN".parse::<Language>(), Ok(Language::ZhCn));
    assert!("fr".parse::<Language>().is_err());
}

#[test]
fn a_zh_cn_payment_review_and_pin_entry_are_chinese_around_the_same_amount() {
    let mut rig = chinese();
    let payment = rig.bank.payment(123_456, "TX-1");
    let money = format_money(
        payment.payment.currency.as_str(),
        payment.payment.amount_minor,
        payment.payment.currency_exponent,
    );
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    let screen = rig.hw.display().to_vec();
    assert_eq!(money, "EUR 1,234.56");
    assert_eq!(screen[0], format!("支付 {money}"), "{screen:?}");
    assert_eq!(screen[1], "收款人：ACME Widgets GmbH");
    assert_eq!(screen[2], "收款账号：DE89370400440532013000");
    assert_eq!(screen[3], "付款账号：DE02120300000000202051");
    assert_eq!(screen[4], "附言：Invoice 2026-117");
    assert_eq!(screen[5].trim_end(), "密码：");
    assert!(screen[6].contains("确认键"), "{screen:?}");

    rig.keys(&[KeyPress::Digit(5), KeyPress::Digit(8)]);
    assert!(shown(&rig).contains("密码： **"), "{}", shown(&rig));
    rig.keys(&[KeyPress::Clear, KeyPress::Clear]);
    let (_, answer) = response(rig.type_pin(PIN).answer().unwrap());
    assert!(matches!(answer, Response::PaymentApproved(_)), "{answer:?}");
    assert!(shown(&rig).contains("已发送至银行"), "{}", shown(&rig));
}

#[test]
fn zh_cn_verdicts_are_chinese_on_the_screen_and_in_indicator_set() {
    for (result, words) in [
        (BankResult::Approved, "已批准"),
        (BankResult::PinIncorrect, "已拒绝：密码错误"),
        (BankResult::InsufficientFunds, "已拒绝：余额不足"),
        (BankResult::SystemError, "银行错误：未支付"),
    ] {
        let mut rig = chinese();
        let approved = rig.approved("TX-1");
        let verdict = rig.bank.verdict("TX-1", approved.device_counter, result);
        match rig.request_hv(Request::VerifyBankResponse(verdict)) {
            Response::IndicatorSet(set) => {
                assert_eq!(set.result, result);
                assert_eq!(set.display_text, words);
            }
            other => panic!("{other:?}"),
        }
        assert!(shown(&rig).contains(words), "{}", shown(&rig));
    }
}

#[test]
fn zh_cn_cancelled_timed_out_and_cancelled_by_the_computer() {
    let mut rig = chinese();
    let payment = rig.bank.payment(100, "TX-1");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    assert!(shown(&rig).contains("已取消：未支付"), "{}", shown(&rig));

    let payment = rig.bank.payment(100, "TX-2");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    rig.hw.advance_clock(121_000);
    let (_, answer) = response(rig.device.poll(&mut rig.hw).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserTimeout);
    assert!(shown(&rig).contains("已超时：未支付"), "{}", shown(&rig));

    let payment = rig.bank.payment(100, "TX-3");
    let (id, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    rig.start(Request::Cancel(Cancel {
        target_request_id: id,
    }));
    assert!(
        shown(&rig).contains("已被电脑取消：未支付"),
        "{}",
        shown(&rig)
    );
}

#[test]
fn a_zh_cn_confirmation_prompt_and_its_rejection_are_chinese() {
    let mut rig = chinese();
    let request = SignConfirmation {
        payment: rig.bank.payment_details(50_000, "OOB-1"),
        nonce: Nonce([0x5A; 16]),
    };
    let (_, outcome) = rig.start_hv(Request::SignConfirmation(request));
    assert!(outcome.is_pending());
    let screen = shown(&rig);
    assert!(screen.starts_with("确认付款\n支付 EUR 500.00"), "{screen}");
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    assert!(shown(&rig).contains("已拒绝：未确认"), "{}", shown(&rig));
}

#[test]
fn a_zh_cn_pairing_code_and_enrolment_are_chinese() {
    let mut rig = Rig::with_settings(|settings| settings.display_language = Language::ZhCn);
    rig.initialise();
    rig.device.poll(&mut rig.hw);
    assert!(shown(&rig).contains("已由银行初始化"), "{}", shown(&rig));
    let request = rig.bank.enrol(SERIAL);
    let (_, outcome) = rig.start(Request::Enrol(request));
    assert!(outcome.is_pending());
    assert!(shown(&rig).contains("请设置密码"), "{}", shown(&rig));
    rig.type_pin(PIN);
    assert!(
        shown(&rig).contains("请再次输入相同的密码"),
        "{}",
        shown(&rig)
    );
    rig.type_pin(PIN);
    assert!(shown(&rig).contains("已绑定"), "{}", shown(&rig));

    // The pairing prompt: the code is the same digits, the words around it Chinese.
    let host = firmware_protocol::crypto::pairing::HostPairing::start(&mut rig.host_rng);
    let begin = firmware_protocol::message::PairBegin {
        host_public_key: firmware_protocol::message::EcPublicKey::from(host.public_key()),
        host_commitment: firmware_protocol::message::Sha256Digest(*host.commitment().as_bytes()),
        host_name: "LAPTOP".into(),
    };
    assert!(matches!(
        rig.request(Request::PairBegin(begin)),
        Response::PairChallenge(_)
    ));
    assert!(
        shown(&rig).contains("正在与 LAPTOP 配对"),
        "{}",
        shown(&rig)
    );
    let (_, outcome) = rig.start(Request::PairConfirm(
        firmware_protocol::message::PairConfirm {
            host_nonce: Nonce(*host.nonce().as_bytes()),
        },
    ));
    assert!(outcome.is_pending());
    let screen = rig.hw.display().to_vec();
    assert_eq!(screen[0], "与 LAPTOP 配对？");
    assert!(screen[1].starts_with("配对码："), "{screen:?}");
    assert!(
        screen[1][("配对码：".len())..]
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    assert!(shown(&rig).contains("已取消：未配对"), "{}", shown(&rig));
}

#[test]
fn the_zh_cn_idle_screens_are_chinese() {
    let mut rig = Rig::with_settings(|settings| settings.display_language = Language::ZhCn);
    rig.device.poll(&mut rig.hw);
    assert!(shown(&rig).contains("未初始化"), "{}", shown(&rig));
    let mut rig = chinese();
    rig.hw.advance_clock(device_sim::device::OUTCOME_SCREEN_MS);
    rig.device.poll(&mut rig.hw);
    assert_eq!(
        rig.hw.display(),
        [format!("PinBridge {SERIAL}"), "就绪".to_string()].as_slice()
    );
}
