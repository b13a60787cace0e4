//! The device's screen texts in each display language (PROTOCOL.md §6.1 "Display language").
//!
//! The display language is a setting of the PIN pad itself, as on a real terminal: chosen at
//! manufacture (`pinpad-sim init --language`) or later on the device (`pinpad-sim serve
//! --language`, the control API, the app's mock PIN pad), kept in its secure store, never set
//! by a host message (a computer cannot change what the customer reads). What the MACs cover
//! is shown the same in every language: the amount as `firmware_protocol::display` formats it,
//! the currency code, the payee, the accounts and the reference are the authenticated bytes;
//! only the labels and the outcome words around them are translated.

use std::fmt;
use std::str::FromStr;

use firmware_protocol::message::BankResult;
use serde::{Deserialize, Serialize};

/// The language the device's screen is in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    /// English (the reference texts of PROTOCOL.md).
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Language {
    /// Every language the device has texts for.
    pub const ALL: [Language; 2] = [Language::En, Language::ZhCn];

    /// The BCP 47 tag (`en`, `zh-CN`).
    pub fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::ZhCn => "zh-CN",
        }
    }

    /// The language for an app or system locale (`zh-CN`, `zh_CN.UTF-8`, `zh`, `en-GB`...):
    /// Chinese for any `zh`, English otherwise.
    pub fn for_locale(locale: &str) -> Language {
        if locale.to_ascii_lowercase().starts_with("zh") {
            Language::ZhCn
        } else {
            Language::En
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A language tag the device has no texts for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("display language {0:?} is not one of: en, zh-CN")]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;
    fn from_str(tag: &str) -> Result<Self, Self::Err> {
        match tag {
            "en" => Ok(Language::En),
            "zh-CN" => Ok(Language::ZhCn),
            other => Err(UnknownLanguage(other.to_owned())),
        }
    }
}

/// What the device says; [`Text::render`] words it in a language.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Text<'a> {
    // Payment review (§6.4): the values are the authenticated bytes, shown as they are.
    Pay(&'a str),
    To(&'a str),
    Account(&'a str),
    From(&'a str),
    Reference(&'a str),
    ConfirmPayment,
    /// The line that gets one star per PIN digit.
    PinLine,
    KeysApprove,
    KeysEnter,
    KeysConfirm,
    KeysPair,
    KeysWipe,
    SentToBank,
    PaymentConfirmed,
    BankResult(BankResult),
    ForgedResponse,
    // Pairing.
    PairWith(&'a str),
    PairingCode(&'a str),
    SameCode,
    PairingWith(&'a str),
    PairedWith(&'a str),
    // Provisioning and enrolment.
    Initialised,
    EnrolmentFor(&'a str),
    ChoosePin(u8, u8),
    SamePinAgain,
    BoundTo(&'a str),
    // The owner's PIN change and wipe.
    ChangePin,
    EnterCurrentPin,
    ChooseNewPin(u8, u8),
    NewPinAgain,
    PinChanged,
    WrongPinNotChanged(u8),
    PinBlocked,
    DeclinedPinNotChanged,
    BankErrorPinNotChanged,
    WipeQuestion,
    WipeErases,
    WipePaymentData,
    WipeBindingEnds,
    Wiped,
    // How a prompt ended without the OK (§6.1): `Cancelled: not paid`.
    CancelledOnKeypad(Undone),
    TimedOut(Undone),
    CancelledByComputer(Undone),
    Refused(Refused, Undone),
    Rejected,
    // Service states.
    TamperWiped,
    ResetByOperator(&'a str),
    PaymentDataDeleted,
    // The idle screen's state line.
    Tampered,
    FirmwareCheckFailed,
    Revoked,
    NotInitialised,
    LockedInactivity,
    LockedByBank,
    LockedPowerOff,
    LockedIdentity,
    NotEnrolled,
    Ready,
}

/// What did not happen when a prompt ended without the OK.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Undone {
    NotEnrolled,
    NotPaid,
    NotPaired,
    NotConfirmed,
    PinNotChanged,
    NotWiped,
}

/// Why a prompt ended with a refusal.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Refused {
    PinsDiffer,
    PinLength,
    TooManyComputers,
    SessionEnded,
    Failed,
}

impl Undone {
    fn render(self, language: Language) -> &'static str {
        use Undone as U;
        match language {
            Language::En => match self {
                U::NotEnrolled => "not enrolled",
                U::NotPaid => "not paid",
                U::NotPaired => "not paired",
                U::NotConfirmed => "not confirmed",
                U::PinNotChanged => "PIN not changed",
                U::NotWiped => "not wiped",
            },
            Language::ZhCn => match self {
                U::NotEnrolled => "未设置密码",
                U::NotPaid => "未支付",
                U::NotPaired => "未配对",
                U::NotConfirmed => "未确认",
                U::PinNotChanged => "密码未修改",
                U::NotWiped => "未清除",
            },
        }
    }
}

impl Refused {
    fn render(self, language: Language) -> &'static str {
        use Refused as R;
        match language {
            Language::En => match self {
                R::PinsDiffer => "PINs differ",
                R::PinLength => "PIN length not allowed",
                R::TooManyComputers => "Too many computers paired",
                R::SessionEnded => "Session ended",
                R::Failed => "Failed",
            },
            Language::ZhCn => match self {
                R::PinsDiffer => "两次输入的密码不一致",
                R::PinLength => "密码长度不符合要求",
                R::TooManyComputers => "已配对的电脑过多",
                R::SessionEnded => "会话已结束",
                R::Failed => "失败",
            },
        }
    }
}

impl Text<'_> {
    /// The words in `language`.
    pub(crate) fn render(self, language: Language) -> String {
        match language {
            Language::En => self.en(),
            Language::ZhCn => self.zh_cn(),
        }
    }

    fn en(self) -> String {
        use Text as T;
        let en = Language::En;
        match self {
            T::Pay(money) => format!("Pay {money}"),
            T::To(name) => format!("To: {name}"),
            T::Account(account) => format!("Account: {account}"),
            T::From(account) => format!("From: {account}"),
            T::Reference(reference) => format!("Ref: {reference}"),
            T::ConfirmPayment => "Confirm payment".into(),
            T::PinLine => "PIN:".into(),
            T::KeysApprove => "OK = approve, X = cancel".into(),
            T::KeysEnter => "OK = enter, X = cancel".into(),
            T::KeysConfirm => "OK = confirm, X = reject".into(),
            T::KeysPair => "OK = yes, X = no".into(),
            T::KeysWipe => "OK = wipe, X = keep".into(),
            T::SentToBank => "Sent to your bank...".into(),
            T::PaymentConfirmed => "Payment confirmed".into(),
            T::BankResult(result) => match result {
                BankResult::Approved => "Approved",
                BankResult::Declined => "Declined",
                BankResult::PinIncorrect => "Declined: wrong PIN",
                BankResult::InsufficientFunds => "Declined: insufficient funds",
                BankResult::LimitExceeded => "Declined: limit exceeded",
                BankResult::AccountBlocked => "Declined: account blocked",
                BankResult::Duplicate => "Already paid",
                BankResult::SystemError => "Bank error: not paid",
            }
            .into(),
            T::ForgedResponse => "WARNING: forged bank response".into(),
            T::PairWith(host) => format!("Pair with {host}?"),
            T::PairingCode(code) => format!("Code: {code}"),
            T::SameCode => "Same code on the computer?".into(),
            T::PairingWith(host) => format!("Pairing with {host}..."),
            T::PairedWith(host) => format!("Paired with {host}"),
            T::Initialised => "Initialised by the bank".into(),
            T::EnrolmentFor(customer) => format!("Enrolment for {customer}"),
            T::ChoosePin(min, max) => format!("Choose a PIN ({min}-{max} digits)"),
            T::SamePinAgain => "Enter the same PIN again".into(),
            T::BoundTo(customer) => format!("Bound to {customer}"),
            T::ChangePin => "Change PIN".into(),
            T::EnterCurrentPin => "Enter your current PIN".into(),
            T::ChooseNewPin(min, max) => format!("Choose a new PIN ({min}-{max} digits)"),
            T::NewPinAgain => "Enter the new PIN again".into(),
            T::PinChanged => "PIN changed".into(),
            T::WrongPinNotChanged(1) => "Wrong PIN: not changed, 1 try left".into(),
            T::WrongPinNotChanged(n) => format!("Wrong PIN: not changed, {n} tries left"),
            T::PinBlocked => "PIN blocked: contact your bank".into(),
            T::DeclinedPinNotChanged => "Declined: PIN not changed".into(),
            T::BankErrorPinNotChanged => "Bank error: PIN not changed".into(),
            T::WipeQuestion => "Wipe this PIN pad?".into(),
            T::WipeErases => "Erases its keys, pairings".into(),
            T::WipePaymentData => "and payment data; your bank".into(),
            T::WipeBindingEnds => "binding ends.".into(),
            T::Wiped => "Wiped: keys and pairings erased".into(),
            T::CancelledOnKeypad(undone) => format!("Cancelled: {}", undone.render(en)),
            T::TimedOut(undone) => format!("Timed out: {}", undone.render(en)),
            T::CancelledByComputer(undone) => {
                format!("Cancelled by the computer: {}", undone.render(en))
            }
            T::Refused(why, undone) => format!("{}: {}", why.render(en), undone.render(en)),
            T::Rejected => "Rejected: not confirmed".into(),
            T::TamperWiped => "Keys wiped. Service required.".into(),
            T::ResetByOperator(operator) => format!("Reset by operator {operator}"),
            T::PaymentDataDeleted => "Payment data deleted".into(),
            T::Tampered => "TAMPERED - operator reset required".into(),
            T::FirmwareCheckFailed => "Firmware check failed".into(),
            T::Revoked => "Revoked by the bank".into(),
            T::NotInitialised => "Not initialised".into(),
            T::LockedInactivity => "Locked: contact your bank".into(),
            T::LockedByBank => "Locked by your bank".into(),
            T::LockedPowerOff => "Locked: log in to unlock".into(),
            T::LockedIdentity => "Locked: identity changed".into(),
            T::NotEnrolled => "Initialised, not enrolled".into(),
            T::Ready => "Ready".into(),
        }
    }

    fn zh_cn(self) -> String {
        use Text as T;
        let zh = Language::ZhCn;
        match self {
            T::Pay(money) => format!("支付 {money}"),
            T::To(name) => format!("收款人：{name}"),
            T::Account(account) => format!("收款账号：{account}"),
            T::From(account) => format!("付款账号：{account}"),
            T::Reference(reference) => format!("附言：{reference}"),
            T::ConfirmPayment => "确认付款".into(),
            T::PinLine => "密码：".into(),
            T::KeysApprove => "确认键 = 批准，取消键 = 取消".into(),
            T::KeysEnter => "确认键 = 输入，取消键 = 取消".into(),
            T::KeysConfirm => "确认键 = 确认，取消键 = 拒绝".into(),
            T::KeysPair => "确认键 = 是，取消键 = 否".into(),
            T::KeysWipe => "确认键 = 清除，取消键 = 保留".into(),
            T::SentToBank => "已发送至银行……".into(),
            T::PaymentConfirmed => "付款已确认".into(),
            T::BankResult(result) => match result {
                BankResult::Approved => "已批准",
                BankResult::Declined => "已拒绝",
                BankResult::PinIncorrect => "已拒绝：密码错误",
                BankResult::InsufficientFunds => "已拒绝：余额不足",
                BankResult::LimitExceeded => "已拒绝：超出限额",
                BankResult::AccountBlocked => "已拒绝：账户已冻结",
                BankResult::Duplicate => "已支付过",
                BankResult::SystemError => "银行错误：未支付",
            }
            .into(),
            T::ForgedResponse => "警告：银行响应是伪造的".into(),
            T::PairWith(host) => format!("与 {host} 配对？"),
            T::PairingCode(code) => format!("配对码：{code}"),
            T::SameCode => "电脑上的配对码相同吗？".into(),
            T::PairingWith(host) => format!("正在与 {host} 配对……"),
            T::PairedWith(host) => format!("已与 {host} 配对"),
            T::Initialised => "已由银行初始化".into(),
            T::EnrolmentFor(customer) => format!("为 {customer} 设置密码"),
            T::ChoosePin(min, max) => format!("请设置密码（{min}-{max} 位）"),
            T::SamePinAgain => "请再次输入相同的密码".into(),
            T::BoundTo(customer) => format!("已绑定 {customer}"),
            T::ChangePin => "修改密码".into(),
            T::EnterCurrentPin => "请输入当前密码".into(),
            T::ChooseNewPin(min, max) => format!("请设置新密码（{min}-{max} 位）"),
            T::NewPinAgain => "请再次输入新密码".into(),
            T::PinChanged => "密码已修改".into(),
            T::WrongPinNotChanged(n) => format!("密码错误：未修改，还可尝试 {n} 次"),
            T::PinBlocked => "密码已锁定：请联系银行".into(),
            T::DeclinedPinNotChanged => "已拒绝：密码未修改".into(),
            T::BankErrorPinNotChanged => "银行错误：密码未修改".into(),
            T::WipeQuestion => "清除此密码键盘？".into(),
            T::WipeErases => "将删除其密钥、配对".into(),
            T::WipePaymentData => "和付款数据；与银行的".into(),
            T::WipeBindingEnds => "绑定随之结束。".into(),
            T::Wiped => "已清除：密钥和配对已删除".into(),
            T::CancelledOnKeypad(undone) => format!("已取消：{}", undone.render(zh)),
            T::TimedOut(undone) => format!("已超时：{}", undone.render(zh)),
            T::CancelledByComputer(undone) => format!("已被电脑取消：{}", undone.render(zh)),
            T::Refused(why, undone) => format!("{}：{}", why.render(zh), undone.render(zh)),
            T::Rejected => "已拒绝：未确认".into(),
            T::TamperWiped => "密钥已清除，需要维修。".into(),
            T::ResetByOperator(operator) => format!("已由操作员 {operator} 重置"),
            T::PaymentDataDeleted => "付款数据已删除".into(),
            T::Tampered => "已被拆开：需由操作员重置".into(),
            T::FirmwareCheckFailed => "固件校验失败".into(),
            T::Revoked => "已被银行吊销".into(),
            T::NotInitialised => "未初始化".into(),
            T::LockedInactivity => "已锁定：请联系银行".into(),
            T::LockedByBank => "已被银行锁定".into(),
            T::LockedPowerOff => "已锁定：登录后解锁".into(),
            T::LockedIdentity => "已锁定：设备身份已变更".into(),
            T::NotEnrolled => "已初始化，未绑定客户".into(),
            T::Ready => "就绪".into(),
        }
    }
}
