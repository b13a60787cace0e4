//! A bank and a host made from firmware-protocol alone, to drive the device core through the
//! protocol (request bytes in, response bytes out).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations
)]

use device_sim::certificate::CaKey;
use device_sim::device::{Device, Manufacture, Outcome};
use device_sim::hardware::{KeyPress, VirtualHardware};
use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, EcdsaVerifyingKey, SignatureDomain};
use firmware_protocol::crypto::host_auth::HostSigner;
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{
    KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial, MacKey, PinKey,
};
use firmware_protocol::crypto::pairing::{
    HostPairing, PairingNonce, PairingOutcome, PairingPublicKey, derive_initialisation_kek,
    initialisation_context,
};
use firmware_protocol::crypto::pinblock::{self, EncipheredPinBlock, Pan};
use firmware_protocol::crypto::tr31::{
    self, Algorithm, Exportability, Header, KeyLengthMasking, KeyUsageCode, KeyVersion, ModeOfUse,
    Version,
};
use firmware_protocol::message::{
    ApprovePayment, BankChallenge, BankCommand, BankCommandKind, BankResult, CurrencyCode,
    EcPublicKey, EcdsaSignature, Enrol, HostVerified, Initialise, Kcv, KeyBlock, LoadSessionKeys,
    MacTag, Nonce, OperatorReset, PairBegin, PairConfirm, PaymentApproved, PaymentDetails,
    PinBlock, Request, Response, SessionId, Sha256Digest, StatusCode, VerifyBankResponse,
    WrappedKey, decode_response,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

pub const SERIAL: &str = "PP-TEST-0001";
pub const PAN: &str = "4111111111111111";
pub const PIN: &str = "1234";

/// Keys from a session the bank loaded.
pub struct BankSession {
    pub id: SessionId,
    pub pin_key: PinKey,
    pub mac_key: MacKey,
    pub response_key: MacKey,
}

/// The bank and its operator, as far as the device can tell.
pub struct Bank {
    pub rng: ChaCha20Rng,
    pub management: EcdsaSigningKey,
    pub operator: EcdsaSigningKey,
    pub ca: CaKey,
    pub sequence: u64,
    pub kbpk: Option<KeyBlockProtectionKey>,
    pub enrol_pin_key: Option<PinKey>,
    pub session: Option<BankSession>,
    pub payment_counter: u64,
}

fn aes_key(rng: &mut ChaCha20Rng) -> KeyMaterial {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    KeyMaterial::new(KeyAlgorithm::Aes, &bytes).unwrap()
}

pub fn kcv_of(material: &KeyMaterial) -> Kcv {
    let value = kcv::compute(material, KcvMethod::standard_for(material.algorithm()));
    Kcv::new(value.as_bytes()).unwrap()
}

impl Bank {
    pub fn new(seed: u8) -> Self {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let management = EcdsaSigningKey::generate(&mut rng);
        let operator = EcdsaSigningKey::generate(&mut rng);
        let ca = CaKey::generate(&mut rng);
        Self {
            rng,
            management,
            operator,
            ca,
            sequence: 0,
            kbpk: None,
            enrol_pin_key: None,
            session: None,
            payment_counter: 0,
        }
    }

    pub fn manufacture_settings(&self, serial: &str) -> Manufacture {
        let mut settings = Manufacture::new(serial);
        settings.bank_management_key = Some(self.management.verifying_key());
        settings.bank_operator_key = Some(self.operator.verifying_key());
        settings
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    pub fn wrap(
        &mut self,
        under: &KeyBlockProtectionKey,
        usage: KeyUsageCode,
        mode: ModeOfUse,
        key: &KeyMaterial,
    ) -> KeyBlock {
        let header = Header::new(
            Version::D,
            usage,
            Algorithm::Aes,
            mode,
            KeyVersion::UNUSED,
            Exportability::NonExportable,
        );
        let text = tr31::wrap(
            under,
            &header,
            key,
            KeyLengthMasking::default(),
            &mut self.rng,
        )
        .unwrap();
        KeyBlock::new(&text).unwrap()
    }

    pub fn sign(
        &self,
        key: &EcdsaSigningKey,
        domain: SignatureDomain,
        bytes: &[u8],
    ) -> EcdsaSignature {
        EcdsaSignature::from_array(key.sign(domain, bytes).to_bytes())
    }

    pub fn resign_initialise(&self, request: &mut Initialise) {
        request.signature = self.sign(
            &self.management,
            Initialise::SIGNATURE_DOMAIN,
            &request.signed_bytes().unwrap(),
        );
    }

    pub fn resign_enrol(&self, request: &mut Enrol) {
        request.signature = self.sign(
            &self.management,
            Enrol::SIGNATURE_DOMAIN,
            &request.signed_bytes().unwrap(),
        );
    }

    pub fn resign_command(&self, request: &mut BankCommand) {
        request.signature = self.sign(
            &self.management,
            BankCommand::SIGNATURE_DOMAIN,
            &request.signed_bytes().unwrap(),
        );
    }

    /// Initialise for `serial`: a fresh KBPK wrapped under the ECDH KEK.
    pub fn initialise(&mut self, serial: &str, device_key: &EcdsaVerifyingKey) -> Initialise {
        let sequence = self.next_sequence();
        let ephemeral = EcdsaSigningKey::generate(&mut self.rng);
        let kek = derive_initialisation_kek(
            &ephemeral,
            device_key,
            &initialisation_context(serial, sequence),
        );
        let kbpk_material = {
            let mut bytes = [0u8; 32];
            self.rng.fill_bytes(&mut bytes);
            KeyMaterial::new(KeyAlgorithm::Aes, &bytes).unwrap()
        };
        let block = self.wrap(
            &kek,
            KeyUsageCode::K1,
            ModeOfUse::EncryptDecrypt,
            &kbpk_material,
        );
        self.kbpk = Some(
            KeyBlockProtectionKey::new(KeyAlgorithm::Aes, kbpk_material.reveal_bytes()).unwrap(),
        );
        let mut request = Initialise {
            device_serial: serial.into(),
            sequence,
            bank_public_key: EcPublicKey::from(&ephemeral.verifying_key()),
            kbpk: WrappedKey {
                key_block: block,
                kcv: kcv_of(&kbpk_material),
            },
            signature: EcdsaSignature::from_array([0; 64]),
        };
        self.resign_initialise(&mut request);
        request
    }

    pub fn enrol(&mut self, serial: &str) -> Enrol {
        let sequence = self.next_sequence();
        let pin_key = aes_key(&mut self.rng);
        let kbpk = self.kbpk.clone().expect("initialised first");
        let block = self.wrap(&kbpk, KeyUsageCode::P0, ModeOfUse::EncryptDecrypt, &pin_key);
        self.enrol_pin_key = Some(PinKey::new(KeyAlgorithm::Aes, pin_key.reveal_bytes()).unwrap());
        let mut request = Enrol {
            device_serial: serial.into(),
            sequence,
            customer_id: "CUST-42".into(),
            pin_account_number: PAN.into(),
            pin_length_min: 4,
            pin_length_max: 6,
            pin_key: WrappedKey {
                key_block: block,
                kcv: kcv_of(&pin_key),
            },
            signature: EcdsaSignature::from_array([0; 64]),
        };
        self.resign_enrol(&mut request);
        request
    }

    pub fn command(&mut self, serial: &str, command: BankCommandKind, reason: &str) -> BankCommand {
        let mut request = BankCommand {
            device_serial: serial.into(),
            sequence: self.next_sequence(),
            command,
            reason: reason.into(),
            signature: EcdsaSignature::from_array([0; 64]),
        };
        self.resign_command(&mut request);
        request
    }

    pub fn operator_reset(&mut self, serial: &str) -> OperatorReset {
        let mut request = OperatorReset {
            device_serial: serial.into(),
            sequence: self.next_sequence(),
            operator_id: "op-7".into(),
            signature: EcdsaSignature::from_array([0; 64]),
        };
        request.signature = self.sign(
            &self.operator,
            OperatorReset::SIGNATURE_DOMAIN,
            &request.signed_bytes().unwrap(),
        );
        request
    }

    /// Fresh session keys; the bank's copy is kept as `pending`, installed by the caller.
    pub fn session_keys(&mut self) -> (LoadSessionKeys, BankSession) {
        let kbpk = self.kbpk.clone().expect("initialised first");
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        let pin = aes_key(&mut self.rng);
        let mac_key = aes_key(&mut self.rng);
        let response = aes_key(&mut self.rng);
        let request = LoadSessionKeys {
            session_id: SessionId(id),
            pin_key: WrappedKey {
                key_block: self.wrap(&kbpk, KeyUsageCode::P0, ModeOfUse::EncryptDecrypt, &pin),
                kcv: kcv_of(&pin),
            },
            mac_key: WrappedKey {
                key_block: self.wrap(
                    &kbpk,
                    KeyUsageCode::M6,
                    ModeOfUse::MacGenerateVerify,
                    &mac_key,
                ),
                kcv: kcv_of(&mac_key),
            },
            response_key: WrappedKey {
                key_block: self.wrap(
                    &kbpk,
                    KeyUsageCode::M6,
                    ModeOfUse::MacGenerateVerify,
                    &response,
                ),
                kcv: kcv_of(&response),
            },
        };
        let session = BankSession {
            id: SessionId(id),
            pin_key: PinKey::new(KeyAlgorithm::Aes, pin.reveal_bytes()).unwrap(),
            mac_key: MacKey::new(KeyAlgorithm::Aes, mac_key.reveal_bytes()).unwrap(),
            response_key: MacKey::new(KeyAlgorithm::Aes, response.reveal_bytes()).unwrap(),
        };
        (request, session)
    }

    pub fn session(&self) -> &BankSession {
        self.session.as_ref().expect("logged in")
    }

    pub fn challenge(&mut self) -> BankChallenge {
        let mut nonce = [0u8; 16];
        self.rng.fill_bytes(&mut nonce);
        BankChallenge {
            session_id: self.session().id,
            bank_nonce: Nonce(nonce),
        }
    }

    pub fn payment_details(&self, amount_minor: u64, transaction: &str) -> PaymentDetails {
        PaymentDetails {
            payer_account: "DE02120300000000202051".into(),
            payee_account: "DE89370400440532013000".into(),
            payee_name: "ACME Widgets GmbH".into(),
            amount_minor,
            currency: CurrencyCode::new("EUR").unwrap(),
            currency_exponent: 2,
            reference: "Invoice 2026-117".into(),
            bank_transaction_id: transaction.into(),
        }
    }

    pub fn payment(&mut self, amount_minor: u64, transaction: &str) -> ApprovePayment {
        self.payment_counter += 1;
        let mut request = ApprovePayment {
            session_id: self.session().id,
            payment: self.payment_details(amount_minor, transaction),
            counter: self.payment_counter,
            bank_mac: MacTag([0; 16]),
        };
        self.remac_payment(&mut request);
        request
    }

    pub fn remac_payment(&self, request: &mut ApprovePayment) {
        request.seal_bank_mac(&self.session().response_key).unwrap();
    }

    pub fn verdict(
        &self,
        transaction: &str,
        device_counter: u64,
        result: BankResult,
    ) -> VerifyBankResponse {
        let mut request = VerifyBankResponse {
            session_id: self.session().id,
            bank_transaction_id: transaction.into(),
            device_counter,
            result,
            bank_mac: MacTag([0; 16]),
        };
        request.seal_bank_mac(&self.session().response_key).unwrap();
        request
    }

    /// What the bank's HSM would do: decipher the PIN block.
    pub fn reveal_pin(&self, key: &PinKey, block: &PinBlock) -> String {
        let enciphered =
            EncipheredPinBlock::from_bytes(pinblock::PinBlockFormat::Iso4, block.enciphered())
                .unwrap();
        let pin = pinblock::decrypt_pin(&enciphered, Some(&Pan::new(PAN).unwrap()), key).unwrap();
        pin.reveal_digits().to_string()
    }
}

pub fn response(bytes: &[u8]) -> (u32, Response) {
    decode_response(bytes).expect("the device answers with a valid response")
}

pub fn status_of(response: &Response) -> StatusCode {
    match response {
        Response::Error(error) => error.status,
        other => panic!("expected an Error, got {other:?}"),
    }
}

/// A device on virtual hardware with a bank and (after pairing) a host.
pub struct Rig {
    pub device: Device,
    pub hw: VirtualHardware,
    pub bank: Bank,
    pub host: Option<HostSigner>,
    pub pairing: Option<PairingOutcome>,
    pub next_id: u32,
    pub host_rng: ChaCha20Rng,
}

impl Rig {
    pub fn new() -> Self {
        Self::with_settings(|_| {})
    }

    pub fn with_settings(adjust: impl FnOnce(&mut Manufacture)) -> Self {
        let mut bank = Bank::new(9);
        let mut settings = bank.manufacture_settings(SERIAL);
        adjust(&mut settings);
        let device = Device::manufacture(&settings, &bank.ca, &mut bank.rng).unwrap();
        let mut hw = VirtualHardware::new([3; 32], 1_000_000);
        device.save(&mut hw).unwrap();
        Self {
            device,
            hw,
            bank,
            host: None,
            pairing: None,
            next_id: 100,
            host_rng: ChaCha20Rng::from_seed([5; 32]),
        }
    }

    pub fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    pub fn raw(&mut self, bytes: &[u8]) -> Outcome {
        self.device.handle(bytes, &mut self.hw)
    }

    pub fn envelope(&mut self, request_id: u32, request: &Request) -> Request {
        let signer = self.host.as_mut().expect("paired first");
        Request::HostVerified(HostVerified::sign(request_id, request, signer).unwrap())
    }

    /// Sends `request` (bare) and returns the outcome.
    pub fn start(&mut self, request: Request) -> (u32, Outcome) {
        let id = self.id();
        let bytes = request.encode(id).unwrap();
        (id, self.raw(&bytes))
    }

    /// Sends `request` inside a host-verified envelope.
    pub fn start_hv(&mut self, request: Request) -> (u32, Outcome) {
        let id = self.id();
        let envelope = self.envelope(id, &request);
        let bytes = envelope.encode(id).unwrap();
        (id, self.raw(&bytes))
    }

    fn answered(id: u32, outcome: Outcome) -> Response {
        assert!(!outcome.is_pending(), "unexpectedly pending");
        let (answer_id, response) = response(outcome.answer().expect("an answer"));
        assert_eq!(answer_id, id);
        response
    }

    pub fn request(&mut self, request: Request) -> Response {
        let (id, outcome) = self.start(request);
        Self::answered(id, outcome)
    }

    pub fn request_hv(&mut self, request: Request) -> Response {
        let (id, outcome) = self.start_hv(request);
        Self::answered(id, outcome)
    }

    /// Presses keys and polls once.
    pub fn keys(&mut self, keys: &[KeyPress]) -> Outcome {
        self.hw.press(keys.iter().copied());
        self.device.poll(&mut self.hw)
    }

    pub fn type_pin(&mut self, pin: &str) -> Outcome {
        let mut keys = KeyPress::digits(pin).unwrap();
        keys.push(KeyPress::Enter);
        self.keys(&keys)
    }

    /// Power cycle: a new core from the secure store, same hardware (clock, store).
    pub fn restart(&mut self) {
        let stored = self.hw.stored_state().expect("state persisted").to_vec();
        self.device = Device::restore(&stored).unwrap();
        self.device.power_on(&mut self.hw);
    }

    pub fn initialise(&mut self) -> Response {
        let request = self
            .bank
            .initialise(SERIAL, &self.device.attestation_public_key());
        self.request(Request::Initialise(request))
    }

    pub fn enrol(&mut self, pin: &str) -> Response {
        let request = self.bank.enrol(SERIAL);
        let (id, outcome) = self.start(Request::Enrol(request));
        assert!(outcome.is_pending());
        assert!(self.type_pin(pin).is_pending(), "asks for the PIN again");
        let outcome = self.type_pin(pin);
        Self::answered(id, outcome)
    }

    /// Pairs a host; returns the PairResult.
    pub fn pair(&mut self) -> Response {
        self.pair_pressing(&[KeyPress::Enter])
    }

    /// Pairs a host, pressing `keys` once the comparison code is on the screen; returns the
    /// device's answer.
    pub fn pair_pressing(&mut self, keys: &[KeyPress]) -> Response {
        let host = HostPairing::start(&mut self.host_rng);
        let begin = PairBegin {
            host_public_key: EcPublicKey::from(host.public_key()),
            host_commitment: Sha256Digest(*host.commitment().as_bytes()),
            host_name: "LAPTOP-ALICE".into(),
        };
        let challenge = match self.request(Request::PairBegin(begin)) {
            Response::PairChallenge(challenge) => challenge,
            other => return other,
        };
        let host_nonce = *host.nonce();
        let outcome = host.finish(
            &PairingPublicKey::try_from(&challenge.device_public_key).unwrap(),
            &PairingNonce::from_array(challenge.device_nonce.0),
        );
        let (id, started) = self.start(Request::PairConfirm(PairConfirm {
            host_nonce: Nonce(*host_nonce.as_bytes()),
        }));
        if !started.is_pending() {
            return Self::answered(id, started);
        }
        let code = outcome.comparison_code().to_string();
        assert!(
            self.hw.display().iter().any(|line| line.contains(&code)),
            "the device shows the host's code {code}: {:?}",
            self.hw.display()
        );
        let answer = Self::answered(id, self.keys(keys));
        if let Response::PairResult(result) = &answer {
            outcome
                .check_device_confirmation(&result.device_confirmation.0)
                .unwrap();
            assert_eq!(result.host_id, outcome.host_id());
            self.host = Some(HostSigner::new(
                outcome.host_id(),
                outcome.host_pairing_key(),
            ));
            self.pairing = Some(outcome);
        }
        answer
    }

    /// Loads session keys and answers the challenge; returns the bank's challenge check.
    pub fn login(&mut self) {
        let (request, session) = self.bank.session_keys();
        let answer = self.request_hv(Request::LoadSessionKeys(request));
        assert!(matches!(answer, Response::KeysLoaded(_)), "{answer:?}");
        self.bank.session = Some(session);
        let challenge = self.bank.challenge();
        match self.request_hv(Request::BankChallenge(challenge)) {
            Response::ChallengeResponse(response) => {
                assert!(
                    response.mac_verifies(&self.bank.session().mac_key, &challenge),
                    "the bank verifies the device MAC"
                );
            }
            other => panic!("challenge answered {other:?}"),
        }
    }

    /// Everything up to a logged-in session.
    pub fn ready() -> Self {
        let mut rig = Self::new();
        assert!(matches!(rig.initialise(), Response::Initialised(_)));
        assert!(matches!(rig.enrol(PIN), Response::Enrolled(_)));
        assert!(matches!(rig.pair(), Response::PairResult(_)));
        rig.login();
        rig
    }

    /// Approves a payment with `pin`; returns the request and the device's answer.
    pub fn pay(&mut self, pin: &str, transaction: &str) -> (ApprovePayment, Response) {
        let request = self.bank.payment(12_345, transaction);
        let (id, outcome) = self.start_hv(Request::ApprovePayment(request.clone()));
        assert!(outcome.is_pending(), "waits for the PIN: {outcome:?}");
        let answer = Self::answered(id, self.type_pin(pin));
        (request, answer)
    }

    pub fn approved(&mut self, transaction: &str) -> PaymentApproved {
        match self.pay(PIN, transaction) {
            (_, Response::PaymentApproved(approved)) => approved,
            (_, other) => panic!("payment answered {other:?}"),
        }
    }
}
