//! Golden vectors (`tests/vectors/messages.json`): one example of every message type,
//! checked both ways (decode(hex) == value, encode(value) == hex), with the JSON `fields`
//! checked against the decoded value and the MAC/signature input of every authenticated
//! payload checked against `auth_input_hex`.
//!
//! `cargo test -p firmware-protocol --test message_vectors -- --ignored write_vectors`
//! rewrites the file from [`examples`]; the hand-built hex in the note (see PROTOCOL.md
//! §3.10) is checked separately below and must not change when it does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure report

use firmware_protocol::crypto::ecdsa::SignatureDomain;
use firmware_protocol::message::*;
use serde_json::{Value, json};

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/messages.json");

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn string_of(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

fn arr<const N: usize>(seed: u8) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = seed.wrapping_add(i as u8);
    }
    out
}

fn key(seed: u8) -> EcPublicKey {
    let mut raw = arr::<65>(seed);
    raw[0] = 0x04;
    EcPublicKey::new(raw).unwrap()
}

// TR-31 texts of the right shape (version D header, usage, hex body); the body bytes are
// placeholders, not a cryptogram under any key.
const KBPK_BLOCK: &str = "D0112K1AX00E00003F1A0C2E5B7D9E8F00112233445566778899AABBCCDDEEFF0123456789ABCDEF0F1E2D3C4B5A69788796A5B4C3D2E1F0";
const PIN_KEY_BLOCK: &str = "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34";
const MAC_KEY_BLOCK: &str = "D0112M6AG00E00004A7C1E2D3B5F6A7980C1D2E3F405162738495A6B7C8D9EAFB0C1D2E3F405162738495A6B7C8D9EAFB0C1D2E3F4051627";
const RESPONSE_KEY_BLOCK: &str = "D0112M6AV00E00009988776655443322110FFEEDDCCBBAA99887766554433221100F0E1D2C3B4A5968778695A4B3C2D1E0F00112233445566";

fn wrapped(block: &str, kcv: [u8; 5]) -> WrappedKey {
    WrappedKey {
        key_block: KeyBlock::new(block).unwrap(),
        kcv: Kcv::new(&kcv).unwrap(),
    }
}

fn session() -> SessionId {
    SessionId(arr(0x50))
}

fn payment() -> PaymentDetails {
    PaymentDetails {
        payer_account: "DE89370400440532013000".into(),
        payee_account: "FR1420041010050500013M02606".into(),
        payee_name: "Boulangerie Dupré".into(),
        amount_minor: 12_345,
        currency: CurrencyCode::new("EUR").unwrap(),
        currency_exponent: 2,
        reference: "Invoice 2024-117".into(),
        bank_transaction_id: "TX-000042".into(),
    }
}

fn bank_challenge() -> BankChallenge {
    BankChallenge {
        session_id: session(),
        bank_nonce: Nonce(arr(0xB0)),
    }
}

fn approve_payment() -> ApprovePayment {
    ApprovePayment {
        session_id: session(),
        payment: payment(),
        counter: 7,
        bank_mac: MacTag(arr(0xC0)),
    }
}

fn change_pin() -> ChangePin {
    ChangePin {
        session_id: session(),
        counter: 8,
        pin_length_min: 4,
        pin_length_max: 6,
        bank_mac: MacTag(arr(0xC8)),
    }
}

fn get_integrity_report() -> GetIntegrityReport {
    GetIntegrityReport {
        nonce: Nonce(arr(0x90)),
    }
}

/// One example of every message type, with a request id each.
fn examples() -> Vec<(&'static str, u32, Body)> {
    let req = |name, id, r: Request| (name, id, Body::Request(r));
    let resp = |name, id, r: Response| (name, id, Body::Response(r));
    let inner = Request::BankChallenge(bank_challenge());
    let envelope = HostVerified {
        host_id: HostId::from_array(arr(0x11)),
        counter: 42,
        inner: inner.encode(0x0000_0101).unwrap(),
        mac: MacTag(arr(0xE0)),
    };
    vec![
        req("GetInfo", 1, Request::GetInfo(GetInfo)),
        req("GetStatus", 2, Request::GetStatus(GetStatus)),
        req(
            "Ping",
            3,
            Request::Ping(Ping {
                payload: vec![0xDE, 0xAD, 0xBE, 0xEF],
            }),
        ),
        req(
            "Cancel",
            4,
            Request::Cancel(Cancel {
                target_request_id: 3,
            }),
        ),
        req(
            "PairBegin",
            5,
            Request::PairBegin(PairBegin {
                host_public_key: key(0x20),
                host_commitment: Sha256Digest(arr(0x70)),
                host_name: "LAPTOP-ALICE".into(),
            }),
        ),
        req(
            "PairConfirm",
            6,
            Request::PairConfirm(PairConfirm {
                host_nonce: Nonce(arr(0x30)),
            }),
        ),
        req(
            "Unpair",
            7,
            Request::Unpair(Unpair {
                host_id: HostId::from_array(arr(0x11)),
            }),
        ),
        req("HostVerified", 0x0101, Request::HostVerified(envelope)),
        req(
            "Initialise",
            8,
            Request::Initialise(Initialise {
                device_serial: "PB-2024-000123".into(),
                sequence: 1,
                bank_public_key: key(0x40),
                kbpk: wrapped(KBPK_BLOCK, [0x1A, 0x2B, 0x3C, 0x4D, 0x5E]),
                signature: EcdsaSignature::from_array(arr(0xA0)),
            }),
        ),
        req(
            "Enrol",
            9,
            Request::Enrol(Enrol {
                device_serial: "PB-2024-000123".into(),
                sequence: 2,
                customer_id: "CUST-0099".into(),
                pin_account_number: "4000001234567899".into(),
                pin_length_min: 4,
                pin_length_max: 6,
                pin_key: wrapped(PIN_KEY_BLOCK, [0x08, 0x79, 0x0C, 0x9E, 0x1F]),
                signature: EcdsaSignature::from_array(arr(0xA1)),
            }),
        ),
        req(
            "OperatorReset",
            10,
            Request::OperatorReset(OperatorReset {
                device_serial: "PB-2024-000123".into(),
                sequence: 5,
                operator_id: "op-jmartin".into(),
                signature: EcdsaSignature::from_array(arr(0xA2)),
            }),
        ),
        req(
            "BankCommand",
            11,
            Request::BankCommand(BankCommand {
                device_serial: "PB-2024-000123".into(),
                sequence: 6,
                command: BankCommandKind::Lock,
                reason: "Reported lost".into(),
                signature: EcdsaSignature::from_array(arr(0xA3)),
            }),
        ),
        req(
            "GetIntegrityReport",
            12,
            Request::GetIntegrityReport(get_integrity_report()),
        ),
        req(
            "LoadSessionKeys",
            13,
            Request::LoadSessionKeys(LoadSessionKeys {
                session_id: session(),
                pin_key: wrapped(PIN_KEY_BLOCK, [0x08, 0x79, 0x0C, 0x9E, 0x1F]),
                mac_key: wrapped(MAC_KEY_BLOCK, [0x6A, 0x11, 0x5C, 0x70, 0x02]),
                response_key: wrapped(RESPONSE_KEY_BLOCK, [0xC3, 0x0D, 0x94, 0x21, 0xEE]),
            }),
        ),
        req(
            "BankChallenge",
            14,
            Request::BankChallenge(bank_challenge()),
        ),
        req(
            "ApprovePayment",
            15,
            Request::ApprovePayment(approve_payment()),
        ),
        req(
            "VerifyBankResponse",
            16,
            Request::VerifyBankResponse(VerifyBankResponse {
                session_id: session(),
                bank_transaction_id: "TX-000042".into(),
                device_counter: 31,
                result: BankResult::Approved,
                bank_mac: MacTag(arr(0xD0)),
            }),
        ),
        req(
            "SignConfirmation",
            17,
            Request::SignConfirmation(SignConfirmation {
                payment: payment(),
                nonce: Nonce(arr(0x80)),
            }),
        ),
        req(
            "VendorRequest",
            18,
            Request::Vendor(Vendor {
                message_type: 0x7001,
                body: b"diag".to_vec(),
            }),
        ),
        resp(
            "Error",
            15,
            Response::Error(ErrorResponse {
                status: StatusCode::BadBankMac,
                indicator: Indicator::Danger,
                detail: "bank MAC did not verify".into(),
            }),
        ),
        resp(
            "Info",
            1,
            Response::Info(Info {
                protocol_version: 1,
                capabilities: Capabilities(
                    Capabilities::USB
                        | Capabilities::TR31_AES
                        | Capabilities::PIN_BLOCK_ISO4
                        | Capabilities::MAC_AES_CMAC
                        | Capabilities::CONFIRMATION_SIGNING
                        | Capabilities::INTEGRITY_REPORT,
                ),
                max_message_len: 4095,
                link_mtu: 64,
                serial: "PB-2024-000123".into(),
                firmware_version: "1.4.2".into(),
                firmware_hash: Sha256Digest(arr(0x10)),
                attestation_public_key: key(0x60),
                certificate: string_of(48, 0x30),
            }),
        ),
        resp(
            "Status",
            2,
            Response::Status(Status {
                lifecycle: Lifecycle::Bound,
                tampered: false,
                lock: LockState::Unlocked,
                indicator: Indicator::Safe,
                paired_hosts: 1,
                session_active: true,
                bank_sequence: 6,
                locks_in_seconds: Some(86_400),
            }),
        ),
        resp(
            "Pong",
            3,
            Response::Pong(Pong {
                payload: vec![0xDE, 0xAD, 0xBE, 0xEF],
            }),
        ),
        resp(
            "CancelResult",
            4,
            Response::CancelResult(CancelResult {
                target_request_id: 3,
                cancelled: true,
            }),
        ),
        resp(
            "PairChallenge",
            5,
            Response::PairChallenge(PairChallenge {
                device_public_key: key(0x21),
                device_nonce: Nonce(arr(0x71)),
            }),
        ),
        resp(
            "PairResult",
            6,
            Response::PairResult(PairResult {
                host_id: HostId::from_array(arr(0x11)),
                device_confirmation: MacTag(arr(0x31)),
            }),
        ),
        resp(
            "Initialised",
            8,
            Response::Initialised(Initialised {
                kcv: Kcv::new(&[0x1A, 0x2B, 0x3C, 0x4D, 0x5E]).unwrap(),
            }),
        ),
        resp(
            "Enrolled",
            9,
            Response::Enrolled(Enrolled {
                pin_block: PinBlock::new(PinBlockFormat::Iso4, &arr::<16>(0xF0)).unwrap(),
            }),
        ),
        resp(
            "IntegrityReport",
            12,
            Response::IntegrityReport(IntegrityReport {
                device_serial: "PB-2024-000123".into(),
                firmware_version: "1.4.2".into(),
                firmware_hash: Sha256Digest(arr(0x10)),
                signature: EcdsaSignature::from_array(arr(0xA4)),
            }),
        ),
        resp(
            "KeysLoaded",
            13,
            Response::KeysLoaded(KeysLoaded {
                session_id: session(),
            }),
        ),
        resp(
            "ChallengeResponse",
            14,
            Response::ChallengeResponse(ChallengeResponse {
                device_nonce: Nonce(arr(0xB8)),
                mac: MacTag(arr(0xE8)),
            }),
        ),
        resp(
            "PaymentApproved",
            15,
            Response::PaymentApproved(PaymentApproved {
                pin_block: PinBlock::new(PinBlockFormat::Iso4, &arr::<16>(0xF8)).unwrap(),
                device_counter: 31,
                mac: MacTag(arr(0xE4)),
            }),
        ),
        resp(
            "IndicatorSet",
            16,
            Response::IndicatorSet(IndicatorSet {
                indicator: Indicator::Safe,
                result: BankResult::Approved,
                display_text: "Approved".into(),
            }),
        ),
        resp(
            "ConfirmationSignature",
            17,
            Response::ConfirmationSignature(ConfirmationSignature {
                signature: EcdsaSignature::from_array(arr(0xA5)),
            }),
        ),
        resp(
            "VendorResponse",
            18,
            Response::Vendor(Vendor {
                message_type: 0xF001,
                body: vec![0x00, 0x01],
            }),
        ),
        // Added with the owner's operations (PROTOCOL.md 6.12, 6.13): appended so the
        // earlier vectors keep their place in the file.
        req("WipeDevice", 19, Request::WipeDevice(WipeDevice)),
        req("ChangePin", 20, Request::ChangePin(change_pin())),
        req(
            "VerifyPinChange",
            21,
            Request::VerifyPinChange(VerifyPinChange {
                session_id: session(),
                device_counter: 32,
                result: PinChangeResult::OldPinIncorrect,
                pin_tries_left: 2,
                bank_mac: MacTag(arr(0xD8)),
            }),
        ),
        resp(
            "DeviceWiped",
            19,
            Response::DeviceWiped(DeviceWiped {
                device_serial: "PB-2024-000123".into(),
                bank_sequence: 6,
                signature: EcdsaSignature::from_array(arr(0xA6)),
            }),
        ),
        resp(
            "PinChangeEntered",
            20,
            Response::PinChangeEntered(PinChangeEntered {
                old_pin_block: PinBlock::new(PinBlockFormat::Iso4, &arr::<16>(0xF8)).unwrap(),
                new_pin_block: PinBlock::new(PinBlockFormat::Iso4, &arr::<16>(0x08)).unwrap(),
                device_counter: 32,
                mac: MacTag(arr(0xE6)),
            }),
        ),
    ]
}

/// The exact bytes an authenticated example's MAC is computed over, or its ECDSA signature
/// hashes (SHA-256): for a signature that is the §4.4 domain label, `0x00`, then the §3.6
/// input (PROTOCOL.md §3.6), so a C implementation can hash `auth_input_hex` as it stands.
fn auth_input(body: &Body) -> Option<(Vec<u8>, String)> {
    fn signed(
        domain: SignatureDomain,
        input: Result<Vec<u8>, MessageError>,
        key: &str,
    ) -> (Result<Vec<u8>, MessageError>, String) {
        (
            input.map(|bytes| domain.signed_bytes(&bytes)),
            format!(
                "ECDSA P-256/SHA-256, {key}, domain {} (PROTOCOL.md 4.4)",
                domain.label()
            ),
        )
    }
    let mac = |input, key: &str| (input, key.to_string());
    let result = match body {
        Body::Request(Request::HostVerified(m)) => mac(
            m.mac_input(),
            "AES-CMAC, host request MAC key (PROTOCOL.md 4.2)",
        ),
        Body::Request(Request::Initialise(m)) => signed(
            Initialise::SIGNATURE_DOMAIN,
            m.signed_bytes(),
            "bank management key",
        ),
        Body::Request(Request::Enrol(m)) => signed(
            Enrol::SIGNATURE_DOMAIN,
            m.signed_bytes(),
            "bank management key",
        ),
        Body::Request(Request::OperatorReset(m)) => signed(
            OperatorReset::SIGNATURE_DOMAIN,
            m.signed_bytes(),
            "bank operator key",
        ),
        Body::Request(Request::BankCommand(m)) => signed(
            BankCommand::SIGNATURE_DOMAIN,
            m.signed_bytes(),
            "bank management key",
        ),
        Body::Request(Request::ApprovePayment(m)) => {
            mac(m.mac_input(), "AES-CMAC, session response key (bank MAC)")
        }
        Body::Request(Request::VerifyBankResponse(m)) => {
            mac(m.mac_input(), "AES-CMAC, session response key (bank MAC)")
        }
        Body::Request(Request::SignConfirmation(m)) => signed(
            SignConfirmation::SIGNATURE_DOMAIN,
            m.signed_bytes(),
            "device attestation key; the signature is the ConfirmationSignature answer",
        ),
        Body::Response(Response::ChallengeResponse(m)) => mac(
            m.mac_input(&bank_challenge()),
            "AES-CMAC, session MAC key (device MAC); request = BankChallenge example",
        ),
        Body::Response(Response::PaymentApproved(m)) => mac(
            m.mac_input(&approve_payment()),
            "AES-CMAC, session MAC key (device MAC); request = ApprovePayment example",
        ),
        Body::Request(Request::ChangePin(m)) => {
            mac(m.mac_input(), "AES-CMAC, session response key (bank MAC)")
        }
        Body::Request(Request::VerifyPinChange(m)) => {
            mac(m.mac_input(), "AES-CMAC, session response key (bank MAC)")
        }
        Body::Response(Response::PinChangeEntered(m)) => mac(
            m.mac_input(&change_pin()),
            "AES-CMAC, session MAC key (device MAC); request = ChangePin example",
        ),
        Body::Response(Response::DeviceWiped(m)) => signed(
            DeviceWiped::SIGNATURE_DOMAIN,
            m.signed_bytes(),
            "device attestation key; request = WipeDevice (empty body)",
        ),
        Body::Response(Response::IntegrityReport(m)) => signed(
            IntegrityReport::SIGNATURE_DOMAIN,
            m.signed_bytes(&get_integrity_report()),
            "device attestation key; request = GetIntegrityReport example",
        ),
        _ => return None,
    };
    Some((result.0.expect("examples are in range"), result.1))
}

fn payment_fields(p: &PaymentDetails) -> Value {
    json!({
        "payer_account": p.payer_account,
        "payee_account": p.payee_account,
        "payee_name": p.payee_name,
        "amount_minor": p.amount_minor,
        "currency": p.currency.as_str(),
        "currency_exponent": p.currency_exponent,
        "reference": p.reference,
        "bank_transaction_id": p.bank_transaction_id,
    })
}

fn wrapped_fields(w: &WrappedKey) -> Value {
    json!({ "key_block": w.key_block.as_str(), "kcv": hex_of(w.kcv.as_bytes()) })
}

fn pin_block_fields(p: &PinBlock) -> Value {
    json!({ "format": p.format().to_wire(), "block": hex_of(p.wire_block()) })
}

/// The decoded value as JSON: integers and enums as numbers, byte strings as hex, text as
/// strings, an absent optional as null.
fn fields(body: &Body) -> Value {
    match body {
        Body::Request(r) => match r {
            Request::GetInfo(_) | Request::GetStatus(_) => json!({}),
            Request::Ping(m) => json!({ "payload": hex_of(&m.payload) }),
            Request::Cancel(m) => json!({ "target_request_id": m.target_request_id }),
            Request::PairBegin(m) => json!({
                "host_public_key": hex_of(m.host_public_key.as_bytes()),
                "host_commitment": hex_of(&m.host_commitment.0),
                "host_name": m.host_name,
            }),
            Request::PairConfirm(m) => {
                json!({ "host_nonce": hex_of(&m.host_nonce.0) })
            }
            Request::Unpair(m) => json!({ "host_id": hex_of(m.host_id.as_bytes()) }),
            Request::HostVerified(m) => json!({
                "host_id": hex_of(m.host_id.as_bytes()),
                "counter": m.counter,
                "inner": hex_of(&m.inner),
                "mac": hex_of(&m.mac.0),
            }),
            Request::Initialise(m) => json!({
                "device_serial": m.device_serial,
                "sequence": m.sequence,
                "bank_public_key": hex_of(m.bank_public_key.as_bytes()),
                "kbpk": wrapped_fields(&m.kbpk),
                "signature": hex_of(m.signature.as_bytes()),
            }),
            Request::Enrol(m) => json!({
                "device_serial": m.device_serial,
                "sequence": m.sequence,
                "customer_id": m.customer_id,
                "pin_account_number": m.pin_account_number,
                "pin_length_min": m.pin_length_min,
                "pin_length_max": m.pin_length_max,
                "pin_key": wrapped_fields(&m.pin_key),
                "signature": hex_of(m.signature.as_bytes()),
            }),
            Request::OperatorReset(m) => json!({
                "device_serial": m.device_serial,
                "sequence": m.sequence,
                "operator_id": m.operator_id,
                "signature": hex_of(m.signature.as_bytes()),
            }),
            Request::BankCommand(m) => json!({
                "device_serial": m.device_serial,
                "sequence": m.sequence,
                "command": m.command.to_wire(),
                "reason": m.reason,
                "signature": hex_of(m.signature.as_bytes()),
            }),
            Request::GetIntegrityReport(m) => json!({ "nonce": hex_of(&m.nonce.0) }),
            Request::LoadSessionKeys(m) => json!({
                "session_id": hex_of(&m.session_id.0),
                "pin_key": wrapped_fields(&m.pin_key),
                "mac_key": wrapped_fields(&m.mac_key),
                "response_key": wrapped_fields(&m.response_key),
            }),
            Request::BankChallenge(m) => json!({
                "session_id": hex_of(&m.session_id.0),
                "bank_nonce": hex_of(&m.bank_nonce.0),
            }),
            Request::ApprovePayment(m) => json!({
                "session_id": hex_of(&m.session_id.0),
                "payment": payment_fields(&m.payment),
                "counter": m.counter,
                "bank_mac": hex_of(&m.bank_mac.0),
            }),
            Request::VerifyBankResponse(m) => json!({
                "session_id": hex_of(&m.session_id.0),
                "bank_transaction_id": m.bank_transaction_id,
                "device_counter": m.device_counter,
                "result": m.result.to_wire(),
                "bank_mac": hex_of(&m.bank_mac.0),
            }),
            Request::SignConfirmation(m) => json!({
                "payment": payment_fields(&m.payment),
                "nonce": hex_of(&m.nonce.0),
            }),
            Request::WipeDevice(_) => json!({}),
            Request::ChangePin(m) => json!({
                "session_id": hex_of(&m.session_id.0),
                "counter": m.counter,
                "pin_length_min": m.pin_length_min,
                "pin_length_max": m.pin_length_max,
                "bank_mac": hex_of(&m.bank_mac.0),
            }),
            Request::VerifyPinChange(m) => json!({
                "session_id": hex_of(&m.session_id.0),
                "device_counter": m.device_counter,
                "result": m.result.to_wire(),
                "pin_tries_left": m.pin_tries_left,
                "bank_mac": hex_of(&m.bank_mac.0),
            }),
            Request::Vendor(m) => json!({ "body": hex_of(&m.body) }),
        },
        Body::Response(r) => match r {
            Response::Error(m) => json!({
                "status": m.status.code(),
                "indicator": m.indicator.to_wire(),
                "detail": m.detail,
            }),
            Response::Info(m) => json!({
                "protocol_version": m.protocol_version,
                "capabilities": m.capabilities.0,
                "max_message_len": m.max_message_len,
                "link_mtu": m.link_mtu,
                "serial": m.serial,
                "firmware_version": m.firmware_version,
                "firmware_hash": hex_of(&m.firmware_hash.0),
                "attestation_public_key": hex_of(m.attestation_public_key.as_bytes()),
                "certificate": hex_of(&m.certificate),
            }),
            Response::Status(m) => json!({
                "lifecycle": m.lifecycle.to_wire(),
                "tampered": m.tampered,
                "lock": m.lock.to_wire(),
                "indicator": m.indicator.to_wire(),
                "paired_hosts": m.paired_hosts,
                "session_active": m.session_active,
                "bank_sequence": m.bank_sequence,
                "locks_in_seconds": m.locks_in_seconds,
            }),
            Response::Pong(m) => json!({ "payload": hex_of(&m.payload) }),
            Response::CancelResult(m) => json!({
                "target_request_id": m.target_request_id,
                "cancelled": m.cancelled,
            }),
            Response::PairChallenge(m) => json!({
                "device_public_key": hex_of(m.device_public_key.as_bytes()),
                "device_nonce": hex_of(&m.device_nonce.0),
            }),
            Response::PairResult(m) => json!({
                "host_id": hex_of(m.host_id.as_bytes()),
                "device_confirmation": hex_of(&m.device_confirmation.0),
            }),
            Response::Initialised(m) => json!({ "kcv": hex_of(m.kcv.as_bytes()) }),
            Response::Enrolled(m) => json!({ "pin_block": pin_block_fields(&m.pin_block) }),
            Response::IntegrityReport(m) => json!({
                "device_serial": m.device_serial,
                "firmware_version": m.firmware_version,
                "firmware_hash": hex_of(&m.firmware_hash.0),
                "signature": hex_of(m.signature.as_bytes()),
            }),
            Response::KeysLoaded(m) => json!({ "session_id": hex_of(&m.session_id.0) }),
            Response::ChallengeResponse(m) => json!({
                "device_nonce": hex_of(&m.device_nonce.0),
                "mac": hex_of(&m.mac.0),
            }),
            Response::PaymentApproved(m) => json!({
                "pin_block": pin_block_fields(&m.pin_block),
                "device_counter": m.device_counter,
                "mac": hex_of(&m.mac.0),
            }),
            Response::IndicatorSet(m) => json!({
                "indicator": m.indicator.to_wire(),
                "result": m.result.to_wire(),
                "display_text": m.display_text,
            }),
            Response::ConfirmationSignature(m) => {
                json!({ "signature": hex_of(m.signature.as_bytes()) })
            }
            Response::DeviceWiped(m) => json!({
                "device_serial": m.device_serial,
                "bank_sequence": m.bank_sequence,
                "signature": hex_of(m.signature.as_bytes()),
            }),
            Response::PinChangeEntered(m) => json!({
                "old_pin_block": pin_block_fields(&m.old_pin_block),
                "new_pin_block": pin_block_fields(&m.new_pin_block),
                "device_counter": m.device_counter,
                "mac": hex_of(&m.mac.0),
            }),
            Response::Vendor(m) => json!({ "body": hex_of(&m.body) }),
        },
    }
}

fn vector_entry(name: &str, request_id: u32, body: &Body) -> Value {
    let message = Message {
        request_id,
        body: body.clone(),
    };
    let bytes = message.encode().expect("examples are in range");
    let mut entry = json!({
        "name": name,
        "direction": match body { Body::Request(_) => "request", Body::Response(_) => "response" },
        "message_type": format!("0x{:04x}", body.message_type()),
        "request_id": request_id,
        "fields": fields(body),
        "hex": hex_of(&bytes),
    });
    if let Some((input, covered_by)) = auth_input(body) {
        entry["auth_input_hex"] = json!(hex_of(&input));
        entry["auth_covered_by"] = json!(covered_by);
    }
    entry
}

fn load() -> Value {
    let text = std::fs::read_to_string(VECTORS_PATH).expect("tests/vectors/messages.json exists");
    serde_json::from_str(&text).expect("valid JSON")
}

/// Rewrites the file, keeping the hand-written header (description, note, hand_built). A
/// generator, not a check, so it runs only when asked for by name.
#[test]
#[ignore = "generator: rewrites tests/vectors/messages.json; run with --ignored write_vectors"]
fn write_vectors() {
    let mut document = load();
    let vectors: Vec<Value> = examples()
        .iter()
        .map(|(name, id, body)| vector_entry(name, *id, body))
        .collect();
    document["vectors"] = Value::Array(vectors);
    let text = serde_json::to_string_pretty(&document).expect("serialises") + "\n";
    std::fs::write(VECTORS_PATH, text).expect("writable");
}

#[test]
fn every_vector_decodes_to_its_value_and_encodes_to_its_hex() {
    let document = load();
    let vectors = document["vectors"].as_array().expect("vectors array");
    let examples = examples();
    assert_eq!(vectors.len(), examples.len(), "one vector per example");
    for ((name, request_id, body), vector) in examples.iter().zip(vectors) {
        assert_eq!(vector["name"], *name);
        let hex_text = vector["hex"].as_str().expect("hex");
        let bytes = hex::decode(hex_text).expect("hex decodes");
        let expected = Message {
            request_id: *request_id,
            body: body.clone(),
        };
        let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, expected, "{name}: decode(hex) == value");
        assert_eq!(
            hex_of(&expected.encode().unwrap()),
            hex_text,
            "{name}: encode(value) == hex"
        );
        assert_eq!(
            vector["fields"],
            fields(&decoded.body),
            "{name}: fields match the decoded value"
        );
        assert_eq!(vector["request_id"], json!(request_id), "{name}");
        assert_eq!(
            vector["message_type"],
            json!(format!("0x{:04x}", body.message_type())),
            "{name}"
        );
        match auth_input(body) {
            Some((input, _)) => assert_eq!(
                vector["auth_input_hex"],
                json!(hex_of(&input)),
                "{name}: auth input"
            ),
            None => assert!(
                vector.get("auth_input_hex").is_none(),
                "{name}: no auth input"
            ),
        }
    }
}

#[test]
fn vectors_cover_every_message_type() {
    let examples = examples();
    let mut types: Vec<u16> = examples
        .iter()
        .map(|(_, _, body)| body.message_type())
        .collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), examples.len(), "no type twice");
    // 21 request types + 17 response types + one vendor example each way.
    assert_eq!(types.len(), 21 + 17 + 2);
}

/// The two hand-built encodings of PROTOCOL.md §3.10, written byte by byte from the layout
/// tables (not from the encoder), must equal both the encoder's output and the JSON.
#[test]
fn hand_built_vectors_match() {
    let document = load();
    let hand = document["hand_built"].as_array().expect("hand_built array");
    assert_eq!(hand.len(), 2);
    for entry in hand {
        let name = entry["name"].as_str().expect("name");
        let hand_hex: String = entry["hex"]
            .as_str()
            .expect("hex")
            .split_whitespace()
            .collect();
        let vector = document["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .find(|v| v["name"] == name)
            .expect("a vector of that name");
        assert_eq!(
            vector["hex"].as_str(),
            Some(hand_hex.as_str()),
            "{name}: hand-built hex == vector"
        );
        if let Some(auth) = entry.get("auth_input_hex") {
            let hand_auth: String = auth.as_str().expect("hex").split_whitespace().collect();
            assert_eq!(
                vector["auth_input_hex"].as_str(),
                Some(hand_auth.as_str()),
                "{name}: hand-built auth input"
            );
        }
    }
}
