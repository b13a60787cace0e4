//! A minimal device for the bank's tests, built directly on firmware-protocol's crypto: it
//! plays the PIN pad's side of every bank-protected payload (PROTOCOL.md §3.6) and nothing
//! else (no link layer, no host verification: the bank never sees those).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bank_sandbox::certificate;
use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::crypto::keys::{KeyBlockProtectionKey, PinKey};
use firmware_protocol::crypto::pinblock::{Pan, Pin};
use firmware_protocol::device_side::{self, SessionKeys};
use firmware_protocol::message::{
    self, ApprovePayment, BankChallenge, BankCommand, BankCommandKind, BankResult, Capabilities,
    EcPublicKey, EcdsaSignature, Enrol, Enrolled, ErrorResponse, GetIntegrityReport, Indicator,
    Info, Initialise, Initialised, KeysLoaded, LoadSessionKeys, Nonce, OperatorReset, PinBlock,
    Request, Response, Sha256Digest, SignConfirmation, StatusCode, VerifyBankResponse,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The session keys, unwrapped by firmware-protocol's device side.
pub type Session = SessionKeys;

pub struct TestDevice {
    pub serial: String,
    pub attestation: EcdsaSigningKey,
    pub certificate: Vec<u8>,
    pub firmware_hash: [u8; 32],
    pub management: EcdsaVerifyingKey,
    pub operator: EcdsaVerifyingKey,
    pub last_sequence: u64,
    pub kbpk: Option<KeyBlockProtectionKey>,
    pub pan: Option<String>,
    pub session: Option<Session>,
    pub last_bank_counter: u64,
    pub device_counter: u64,
    pub rng: ChaCha20Rng,
}

pub fn encode(response: Response) -> String {
    hex::encode(response.encode(0).expect("encode response"))
}

pub fn decode_request(hex_text: &str) -> Request {
    let bytes = hex::decode(hex_text).expect("hex");
    message::decode_request(&bytes).expect("request").1
}

pub fn error(status: StatusCode) -> String {
    encode(Response::Error(ErrorResponse {
        status,
        indicator: Indicator::Danger,
        detail: String::new(),
    }))
}

fn unwrap_checked<U: firmware_protocol::crypto::keys::Usage>(
    kbpk: &KeyBlockProtectionKey,
    wrapped: &message::WrappedKey,
    what: &'static str,
) -> Result<firmware_protocol::crypto::keys::Key<U>, StatusCode> {
    device_side::unwrap_key(kbpk, wrapped, what).map_err(|e| e.status_code())
}

pub const FIRMWARE_HASH: [u8; 32] = [0x11; 32];
pub const APP_HASH: [u8; 32] = [0x22; 32];

impl TestDevice {
    /// A manufactured device with a certificate from `ca`.
    pub fn manufacture(
        serial: &str,
        ca: &EcdsaSigningKey,
        management: EcdsaVerifyingKey,
        operator: EcdsaVerifyingKey,
        seed: u8,
    ) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let attestation = EcdsaSigningKey::generate(&mut rng);
        let certificate =
            certificate::issue(ca, serial, &attestation.verifying_key(), 0, u64::MAX).unwrap();
        Self {
            serial: serial.into(),
            attestation,
            certificate,
            firmware_hash: FIRMWARE_HASH,
            management,
            operator,
            last_sequence: 0,
            kbpk: None,
            pan: None,
            session: None,
            last_bank_counter: 0,
            device_counter: 0,
            rng,
        }
    }

    pub fn info(&self) -> String {
        encode(Response::Info(Info {
            protocol_version: 1,
            capabilities: Capabilities(0x3FF),
            max_message_len: 4096,
            link_mtu: 64,
            serial: self.serial.clone(),
            firmware_version: "1.0.0".into(),
            firmware_hash: Sha256Digest(self.firmware_hash),
            attestation_public_key: EcPublicKey::from(&self.attestation.verifying_key()),
            certificate: self.certificate.clone(),
        }))
    }

    fn check_bank_signature(
        &mut self,
        key: EcdsaVerifyingKey,
        domain: SignatureDomain,
        signed: &[u8],
        signature: &EcdsaSignature,
        serial: &str,
        sequence: u64,
    ) -> Result<(), StatusCode> {
        if serial != self.serial {
            return Err(StatusCode::WrongDevice);
        }
        key.verify(domain, signed, signature)
            .map_err(|_| StatusCode::BadSignature)?;
        if sequence <= self.last_sequence {
            return Err(StatusCode::StaleBankCounter);
        }
        self.last_sequence = sequence;
        Ok(())
    }

    /// Initialise → Initialised (or the refusal status).
    pub fn initialise(&mut self, request_hex: &str) -> Result<String, StatusCode> {
        let Request::Initialise(init) = decode_request(request_hex) else {
            panic!("not Initialise")
        };
        self.initialise_request(&init)
    }

    pub fn initialise_request(&mut self, init: &Initialise) -> Result<String, StatusCode> {
        let signed = init.signed_bytes().unwrap();
        self.check_bank_signature(
            self.management,
            Initialise::SIGNATURE_DOMAIN,
            &signed,
            &init.signature,
            &init.device_serial,
            init.sequence,
        )?;
        let kbpk =
            device_side::unwrap_kbpk(&self.attestation, init).map_err(|e| e.status_code())?;
        let kcv = device_side::kcv_of(kbpk.material()).unwrap();
        self.kbpk = Some(kbpk);
        Ok(encode(Response::Initialised(Initialised { kcv })))
    }

    /// Enrol → Enrolled with `pin` (entered twice on the keypad).
    pub fn enrol(&mut self, request_hex: &str, pin: &str) -> Result<String, StatusCode> {
        let Request::Enrol(enrol) = decode_request(request_hex) else {
            panic!("not Enrol")
        };
        let signed = enrol.signed_bytes().unwrap();
        self.check_bank_signature(
            self.management,
            Enrol::SIGNATURE_DOMAIN,
            &signed,
            &enrol.signature,
            &enrol.device_serial,
            enrol.sequence,
        )?;
        let kbpk = self.kbpk.as_ref().ok_or(StatusCode::NotInitialised)?;
        let pin_key: PinKey = unwrap_checked(kbpk, &enrol.pin_key, "pin_key")?;
        let block = self.pin_block(&pin_key, &enrol.pin_account_number, pin);
        self.pan = Some(enrol.pin_account_number.clone());
        self.device_counter = 0;
        Ok(encode(Response::Enrolled(Enrolled { pin_block: block })))
    }

    fn pin_block(&mut self, key: &PinKey, pan: &str, pin: &str) -> PinBlock {
        let pan = Pan::new(pan).unwrap();
        device_side::iso4_pin_block(key, &Pin::new(pin).unwrap(), &pan, &mut self.rng).unwrap()
    }

    pub fn integrity_report(&self, request_hex: &str) -> String {
        let Request::GetIntegrityReport(get) = decode_request(request_hex) else {
            panic!()
        };
        self.integrity_report_for(&get, &self.attestation)
    }

    pub fn integrity_report_for(&self, get: &GetIntegrityReport, key: &EcdsaSigningKey) -> String {
        let report = device_side::integrity_report(
            key,
            get,
            self.serial.clone(),
            "1.0.0".into(),
            self.firmware_hash,
        )
        .unwrap();
        encode(Response::IntegrityReport(report))
    }

    pub fn load_session_keys(&mut self, request_hex: &str) -> Result<String, StatusCode> {
        let Request::LoadSessionKeys(load) = decode_request(request_hex) else {
            panic!()
        };
        self.load_session_keys_request(&load)
    }

    pub fn load_session_keys_request(
        &mut self,
        load: &LoadSessionKeys,
    ) -> Result<String, StatusCode> {
        let kbpk = self.kbpk.as_ref().ok_or(StatusCode::NotInitialised)?;
        self.session = Some(SessionKeys::unwrap(kbpk, load).map_err(|e| e.status_code())?);
        Ok(encode(Response::KeysLoaded(KeysLoaded {
            session_id: load.session_id,
        })))
    }

    pub fn challenge(&mut self, request_hex: &str) -> String {
        let Request::BankChallenge(challenge) = decode_request(request_hex) else {
            panic!()
        };
        self.challenge_request(&challenge)
    }

    pub fn challenge_request(&mut self, challenge: &BankChallenge) -> String {
        let session = self.session.as_ref().expect("session");
        assert_eq!(session.id, challenge.session_id);
        let mut nonce = [0u8; 16];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut nonce);
        let session = self.session.as_ref().expect("session");
        let response = session.challenge_response(challenge, Nonce(nonce)).unwrap();
        encode(Response::ChallengeResponse(response))
    }

    /// ApprovePayment → PaymentApproved: checks the bank MAC and counter as the device does,
    /// then the customer types `pin`.
    pub fn approve(&mut self, request_hex: &str, pin: &str) -> Result<String, StatusCode> {
        let Request::ApprovePayment(approve) = decode_request(request_hex) else {
            panic!()
        };
        let session = self.session.as_ref().ok_or(StatusCode::NoSession)?;
        if approve.session_id != session.id {
            return Err(StatusCode::SessionMismatch);
        }
        if !approve.bank_mac_verifies(&session.response_key) {
            return Err(StatusCode::BadBankMac);
        }
        if approve.counter <= self.last_bank_counter {
            return Err(StatusCode::StaleBankCounter);
        }
        self.last_bank_counter = approve.counter;
        Ok(self.approve_unchecked(&approve, pin))
    }

    /// Signs an approval without checking the bank MAC (a compromised or tricked device).
    pub fn approve_unchecked(&mut self, approve: &ApprovePayment, pin: &str) -> String {
        let pan = Pan::new(self.pan.as_deref().expect("enrolled")).unwrap();
        self.device_counter += 1;
        let session = self.session.as_ref().expect("session");
        let approved = session
            .approve_payment(
                approve,
                &Pin::new(pin).unwrap(),
                &pan,
                self.device_counter,
                &mut self.rng,
            )
            .unwrap();
        encode(Response::PaymentApproved(approved))
    }

    /// VerifyBankResponse → the verdict, if the bank MAC is genuine.
    pub fn verify_bank_response(&self, request_hex: &str) -> Result<BankResult, StatusCode> {
        let Request::VerifyBankResponse(answer) = decode_request(request_hex) else {
            panic!()
        };
        let session = self.session.as_ref().ok_or(StatusCode::NoSession)?;
        if !answer.bank_mac_verifies(&session.response_key) || answer.session_id != session.id {
            return Err(StatusCode::BadBankMac);
        }
        Ok(answer.result)
    }

    pub fn sign_confirmation(&self, request_hex: &str) -> String {
        let Request::SignConfirmation(sign) = decode_request(request_hex) else {
            panic!()
        };
        self.sign_confirmation_with(&sign, &self.attestation)
    }

    pub fn sign_confirmation_with(&self, sign: &SignConfirmation, key: &EcdsaSigningKey) -> String {
        encode(Response::ConfirmationSignature(
            device_side::confirmation_signature(key, sign).unwrap(),
        ))
    }

    /// A signed BankCommand: verifies it and returns the command.
    pub fn bank_command(&mut self, request_hex: &str) -> Result<BankCommandKind, StatusCode> {
        let Request::BankCommand(command) = decode_request(request_hex) else {
            panic!()
        };
        self.check_bank_command(&command)
    }

    pub fn check_bank_command(
        &mut self,
        command: &BankCommand,
    ) -> Result<BankCommandKind, StatusCode> {
        let signed = command.signed_bytes().unwrap();
        self.check_bank_signature(
            self.management,
            BankCommand::SIGNATURE_DOMAIN,
            &signed,
            &command.signature,
            &command.device_serial,
            command.sequence,
        )?;
        if command.command == BankCommandKind::Wipe {
            self.kbpk = None;
            self.session = None;
        }
        Ok(command.command)
    }

    /// An OperatorReset token: verifies it with the operator key and resets the device.
    pub fn operator_reset(&mut self, request_hex: &str) -> Result<(), StatusCode> {
        let Request::OperatorReset(reset) = decode_request(request_hex) else {
            panic!()
        };
        self.check_operator_reset(&reset)
    }

    pub fn check_operator_reset(&mut self, reset: &OperatorReset) -> Result<(), StatusCode> {
        let signed = reset.signed_bytes().unwrap();
        self.check_bank_signature(
            self.operator,
            OperatorReset::SIGNATURE_DOMAIN,
            &signed,
            &reset.signature,
            &reset.device_serial,
            reset.sequence,
        )?;
        self.kbpk = None;
        self.session = None;
        self.pan = None;
        Ok(())
    }
}

pub fn decode_verify_response(hex_text: &str) -> VerifyBankResponse {
    match decode_request(hex_text) {
        Request::VerifyBankResponse(v) => v,
        other => panic!("expected VerifyBankResponse, got {other:?}"),
    }
}

pub fn decode_approve(hex_text: &str) -> ApprovePayment {
    match decode_request(hex_text) {
        Request::ApprovePayment(a) => a,
        other => panic!("expected ApprovePayment, got {other:?}"),
    }
}

pub fn encode_request(request: Request) -> String {
    hex::encode(request.encode(0).unwrap())
}
