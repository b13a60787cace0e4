//! Shared proptest strategies for the message-layer tests: one strategy per message type,
//! producing values inside every documented field range (PROTOCOL.md §3).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firmware_protocol::message::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// The character rule of PROTOCOL.md §3.2, restated independently of the crate's code.
pub fn allowed_char(c: char) -> bool {
    let bidi = matches!(c as u32, 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069);
    !(c.is_control() || bidi)
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range(' ', '~'),
        2 => proptest::char::range('\u{a0}', '\u{17f}'),
        1 => any::<char>(),
    ]
    .prop_filter("displayable", |c| allowed_char(*c))
}

/// A string whose UTF-8 length is within `limit`.
pub fn text(limit: LengthLimit) -> impl Strategy<Value = String> {
    vec(any_char(), 0..=limit.max).prop_map(move |chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > limit.max {
                break;
            }
            s.push(c);
        }
        while s.len() < limit.min {
            s.push('x');
        }
        s
    })
}

pub fn bytes(limit: LengthLimit) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), limit.min..=limit.max)
}

fn array<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    vec(any::<u8>(), N).prop_map(|v| v.try_into().unwrap_or([0; N]))
}

pub fn host_id() -> impl Strategy<Value = HostId> {
    array::<8>().prop_map(HostId::from_array)
}
pub fn nonce() -> impl Strategy<Value = Nonce> {
    array::<16>().prop_map(Nonce)
}
pub fn session_id() -> impl Strategy<Value = SessionId> {
    array::<16>().prop_map(SessionId)
}
pub fn mac() -> impl Strategy<Value = MacTag> {
    array::<16>().prop_map(MacTag)
}
pub fn signature() -> impl Strategy<Value = EcdsaSignature> {
    array::<64>().prop_map(EcdsaSignature::from_array)
}
pub fn digest() -> impl Strategy<Value = Sha256Digest> {
    array::<32>().prop_map(Sha256Digest)
}
pub fn public_key() -> impl Strategy<Value = EcPublicKey> {
    array::<65>().prop_map(|mut raw| {
        raw[0] = 0x04;
        EcPublicKey::new(raw).expect("0x04 prefix")
    })
}
pub fn currency() -> impl Strategy<Value = CurrencyCode> {
    "[A-Z]{3}".prop_map(|code| CurrencyCode::new(&code).expect("three capitals"))
}
pub fn kcv() -> impl Strategy<Value = Kcv> {
    bytes(limits::KCV).prop_map(|raw| Kcv::new(&raw).expect("3..=16 bytes"))
}
pub fn key_block(max: usize) -> impl Strategy<Value = KeyBlock> {
    vec(0x20u8..=0x7e, limits::KEY_BLOCK.min..=max).prop_map(|raw| {
        KeyBlock::new(&String::from_utf8(raw).expect("ASCII")).expect("printable, in range")
    })
}
pub fn wrapped_key(max_block: usize) -> impl Strategy<Value = WrappedKey> {
    (key_block(max_block), kcv()).prop_map(|(key_block, kcv)| WrappedKey { key_block, kcv })
}
pub fn pin_block() -> impl Strategy<Value = PinBlock> {
    prop_oneof![
        array::<8>().prop_map(|b| PinBlock::new(PinBlockFormat::Iso0, &b).expect("8 bytes")),
        array::<16>().prop_map(|b| PinBlock::new(PinBlockFormat::Iso4, &b).expect("16 bytes")),
    ]
}
pub fn digits(limit: LengthLimit) -> impl Strategy<Value = String> {
    vec(b'0'..=b'9', limit.min..=limit.max).prop_map(|d| String::from_utf8(d).expect("ASCII"))
}
fn pick<T: Copy + core::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

pub fn payment() -> impl Strategy<Value = PaymentDetails> {
    (
        text(limits::ACCOUNT),
        text(limits::ACCOUNT),
        text(limits::PAYEE_NAME),
        any::<u64>(),
        currency(),
        0u8..=limits::MAX_CURRENCY_EXPONENT,
        text(limits::REFERENCE),
        text(limits::TRANSACTION_ID),
    )
        .prop_map(
            |(
                payer_account,
                payee_account,
                payee_name,
                amount_minor,
                currency,
                currency_exponent,
                reference,
                bank_transaction_id,
            )| PaymentDetails {
                payer_account,
                payee_account,
                payee_name,
                amount_minor,
                currency,
                currency_exponent,
                reference,
                bank_transaction_id,
            },
        )
}

pub fn request() -> impl Strategy<Value = Request> {
    let pairing = prop_oneof![
        (public_key(), digest(), text(limits::HOST_NAME)).prop_map(|(k, c, name)| {
            Request::PairBegin(PairBegin {
                host_public_key: k,
                host_commitment: c,
                host_name: name,
            })
        }),
        nonce().prop_map(|n| Request::PairConfirm(PairConfirm { host_nonce: n })),
        host_id().prop_map(|h| Request::Unpair(Unpair { host_id: h })),
        (
            host_id(),
            any::<u64>(),
            bytes(LengthLimit::new(7, 600)),
            mac()
        )
            .prop_map(|(host_id, counter, inner, mac)| Request::HostVerified(
                HostVerified {
                    host_id,
                    counter,
                    inner,
                    mac
                }
            )),
    ];
    let bank = prop_oneof![
        (
            text(limits::SERIAL),
            any::<u64>(),
            public_key(),
            wrapped_key(1024),
            signature()
        )
            .prop_map(
                |(device_serial, sequence, bank_public_key, kbpk, signature)| {
                    Request::Initialise(Initialise {
                        device_serial,
                        sequence,
                        bank_public_key,
                        kbpk,
                        signature,
                    })
                }
            ),
        (
            text(limits::SERIAL),
            any::<u64>(),
            text(limits::CUSTOMER_ID),
            digits(limits::PIN_ACCOUNT),
            (4u8..=12).prop_flat_map(|min| (Just(min), min..=12)),
            wrapped_key(1024),
            signature()
        )
            .prop_map(
                |(device_serial, sequence, customer_id, pan, (min, max), pin_key, signature)| {
                    Request::Enrol(Enrol {
                        device_serial,
                        sequence,
                        customer_id,
                        pin_account_number: pan,
                        pin_length_min: min,
                        pin_length_max: max,
                        pin_key,
                        signature,
                    })
                }
            ),
        (
            text(limits::SERIAL),
            any::<u64>(),
            text(limits::OPERATOR_ID),
            signature()
        )
            .prop_map(|(device_serial, sequence, operator_id, signature)| {
                Request::OperatorReset(OperatorReset {
                    device_serial,
                    sequence,
                    operator_id,
                    signature,
                })
            }),
        (
            text(limits::SERIAL),
            any::<u64>(),
            pick(BankCommandKind::ALL),
            text(limits::COMMAND_REASON),
            signature()
        )
            .prop_map(|(device_serial, sequence, command, reason, signature)| {
                Request::BankCommand(BankCommand {
                    device_serial,
                    sequence,
                    command,
                    reason,
                    signature,
                })
            }),
    ];
    let session = prop_oneof![
        nonce().prop_map(|nonce| Request::GetIntegrityReport(GetIntegrityReport { nonce })),
        // Three maximal blocks (3 x 1026) plus KCVs still fit the 4095-byte cap.
        (
            session_id(),
            wrapped_key(1024),
            wrapped_key(1024),
            wrapped_key(1024)
        )
            .prop_map(|(session_id, pin_key, mac_key, response_key)| {
                Request::LoadSessionKeys(LoadSessionKeys {
                    session_id,
                    pin_key,
                    mac_key,
                    response_key,
                })
            }),
        (session_id(), nonce()).prop_map(|(session_id, bank_nonce)| {
            Request::BankChallenge(BankChallenge {
                session_id,
                bank_nonce,
            })
        }),
        (session_id(), payment(), any::<u64>(), mac()).prop_map(
            |(session_id, payment, counter, bank_mac)| {
                Request::ApprovePayment(ApprovePayment {
                    session_id,
                    payment,
                    counter,
                    bank_mac,
                })
            }
        ),
        (
            session_id(),
            text(limits::TRANSACTION_ID),
            any::<u64>(),
            pick(BankResult::ALL),
            mac()
        )
            .prop_map(
                |(session_id, bank_transaction_id, device_counter, result, bank_mac)| {
                    Request::VerifyBankResponse(VerifyBankResponse {
                        session_id,
                        bank_transaction_id,
                        device_counter,
                        result,
                        bank_mac,
                    })
                }
            ),
        (payment(), nonce()).prop_map(|(payment, nonce)| {
            Request::SignConfirmation(SignConfirmation { payment, nonce })
        }),
    ];
    let owner = prop_oneof![
        Just(Request::WipeDevice(WipeDevice)),
        (
            session_id(),
            any::<u64>(),
            (4u8..=12).prop_flat_map(|min| (Just(min), min..=12)),
            mac()
        )
            .prop_map(
                |(session_id, counter, (pin_length_min, pin_length_max), bank_mac)| {
                    Request::ChangePin(ChangePin {
                        session_id,
                        counter,
                        pin_length_min,
                        pin_length_max,
                        bank_mac,
                    })
                }
            ),
        (
            session_id(),
            any::<u64>(),
            pick(PinChangeResult::ALL),
            any::<u8>(),
            mac()
        )
            .prop_map(
                |(session_id, device_counter, result, pin_tries_left, bank_mac)| {
                    Request::VerifyPinChange(VerifyPinChange {
                        session_id,
                        device_counter,
                        result,
                        pin_tries_left,
                        bank_mac,
                    })
                }
            ),
    ];
    prop_oneof![
        Just(Request::GetInfo(GetInfo)),
        Just(Request::GetStatus(GetStatus)),
        bytes(limits::PING_PAYLOAD).prop_map(|payload| Request::Ping(Ping { payload })),
        any::<u32>().prop_map(|target_request_id| Request::Cancel(Cancel { target_request_id })),
        pairing,
        bank,
        session,
        owner,
        (
            message_type::VENDOR_REQUEST_FIRST..=message_type::VENDOR_REQUEST_LAST,
            bytes(LengthLimit::new(0, limits::VENDOR_BODY.max))
        )
            .prop_map(|(message_type, body)| Request::Vendor(Vendor { message_type, body })),
    ]
}

pub fn status_code() -> impl Strategy<Value = StatusCode> {
    prop_oneof![
        pick(StatusCode::ALL).prop_filter("Ok is not an error", |s| *s != StatusCode::Ok),
        (VENDOR_STATUS_FIRST..=u16::MAX).prop_map(StatusCode::Vendor),
    ]
}

pub fn response() -> impl Strategy<Value = Response> {
    let identity = prop_oneof![
        (
            status_code(),
            pick(Indicator::ALL),
            text(limits::ERROR_DETAIL)
        )
            .prop_map(
                |(status, indicator, detail)| Response::Error(ErrorResponse {
                    status,
                    indicator,
                    detail
                })
            ),
        (
            (any::<u8>(), any::<u32>(), any::<u16>(), any::<u16>()),
            text(limits::SERIAL),
            text(limits::FIRMWARE_VERSION),
            digest(),
            public_key(),
            bytes(limits::CERTIFICATE)
        )
            .prop_map(
                |(
                    (protocol_version, caps, max_message_len, link_mtu),
                    serial,
                    firmware_version,
                    firmware_hash,
                    attestation_public_key,
                    certificate,
                )| {
                    Response::Info(Info {
                        protocol_version,
                        capabilities: Capabilities(caps),
                        max_message_len,
                        link_mtu,
                        serial,
                        firmware_version,
                        firmware_hash,
                        attestation_public_key,
                        certificate,
                    })
                }
            ),
        (
            pick(Lifecycle::ALL),
            any::<bool>(),
            pick(LockState::ALL),
            pick(Indicator::ALL),
            any::<u8>(),
            any::<bool>(),
            any::<u64>(),
            proptest::option::of(any::<u32>())
        )
            .prop_map(
                |(
                    lifecycle,
                    tampered,
                    lock,
                    indicator,
                    paired_hosts,
                    session_active,
                    bank_sequence,
                    locks_in_seconds,
                )| {
                    Response::Status(Status {
                        lifecycle,
                        tampered,
                        lock,
                        indicator,
                        paired_hosts,
                        session_active,
                        bank_sequence,
                        locks_in_seconds,
                    })
                }
            ),
        bytes(limits::PING_PAYLOAD).prop_map(|payload| Response::Pong(Pong { payload })),
        (any::<u32>(), any::<bool>()).prop_map(|(target_request_id, cancelled)| {
            Response::CancelResult(CancelResult {
                target_request_id,
                cancelled,
            })
        }),
    ];
    let flows = prop_oneof![
        (public_key(), nonce()).prop_map(|(device_public_key, device_nonce)| {
            Response::PairChallenge(PairChallenge {
                device_public_key,
                device_nonce,
            })
        }),
        (host_id(), mac()).prop_map(|(host_id, device_confirmation)| {
            Response::PairResult(PairResult {
                host_id,
                device_confirmation,
            })
        }),
        kcv().prop_map(|kcv| Response::Initialised(Initialised { kcv })),
        pin_block().prop_map(|pin_block| Response::Enrolled(Enrolled { pin_block })),
        (
            text(limits::SERIAL),
            text(limits::FIRMWARE_VERSION),
            digest(),
            signature()
        )
            .prop_map(
                |(device_serial, firmware_version, firmware_hash, signature)| {
                    Response::IntegrityReport(IntegrityReport {
                        device_serial,
                        firmware_version,
                        firmware_hash,
                        signature,
                    })
                }
            ),
        session_id().prop_map(|session_id| Response::KeysLoaded(KeysLoaded { session_id })),
        (nonce(), mac()).prop_map(|(device_nonce, mac)| {
            Response::ChallengeResponse(ChallengeResponse { device_nonce, mac })
        }),
        (pin_block(), any::<u64>(), mac()).prop_map(|(pin_block, device_counter, mac)| {
            Response::PaymentApproved(PaymentApproved {
                pin_block,
                device_counter,
                mac,
            })
        }),
        (
            pick(Indicator::ALL),
            pick(BankResult::ALL),
            text(limits::DISPLAY_TEXT)
        )
            .prop_map(|(indicator, result, display_text)| {
                Response::IndicatorSet(IndicatorSet {
                    indicator,
                    result,
                    display_text,
                })
            }),
        signature().prop_map(|signature| {
            Response::ConfirmationSignature(ConfirmationSignature { signature })
        }),
        (text(limits::SERIAL), any::<u64>(), signature()).prop_map(
            |(device_serial, bank_sequence, signature)| {
                Response::DeviceWiped(DeviceWiped {
                    device_serial,
                    bank_sequence,
                    signature,
                })
            }
        ),
        (pin_block(), pin_block(), any::<u64>(), mac()).prop_map(
            |(old_pin_block, new_pin_block, device_counter, mac)| {
                Response::PinChangeEntered(PinChangeEntered {
                    old_pin_block,
                    new_pin_block,
                    device_counter,
                    mac,
                })
            }
        ),
        (
            message_type::VENDOR_RESPONSE_FIRST..=message_type::VENDOR_RESPONSE_LAST,
            bytes(LengthLimit::new(0, limits::VENDOR_BODY.max))
        )
            .prop_map(|(message_type, body)| Response::Vendor(Vendor { message_type, body })),
    ];
    prop_oneof![identity, flows]
}

pub fn message() -> impl Strategy<Value = Message> {
    (
        any::<u32>(),
        prop_oneof![
            request().prop_map(Body::Request),
            response().prop_map(Body::Response)
        ],
    )
        .prop_map(|(request_id, body)| Message { request_id, body })
}
