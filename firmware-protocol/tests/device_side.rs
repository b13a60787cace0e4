//! The device's side of the bank payloads (`device_side`) and the MAC helpers every party uses
//! (`seal_bank_mac` / `bank_mac_verifies`, `seal_mac` / `mac_verifies`): a bank made here from
//! the crypto primitives alone, and what the device answers it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure report

use firmware_protocol::crypto::ecdsa::{EcdsaSigningKey, SignatureDomain};
use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{
    KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial, MacKey, PinKey,
};
use firmware_protocol::crypto::pairing::{derive_initialisation_kek, initialisation_context};
use firmware_protocol::crypto::pinblock::{self, EncipheredPinBlock, Pan, Pin};
use firmware_protocol::crypto::tr31::{
    self, Algorithm, Exportability, Header, KeyLengthMasking, KeyUsageCode, KeyVersion, ModeOfUse,
    Version,
};
use firmware_protocol::device_side::{self, PayloadError, SessionKeys};
use firmware_protocol::message::{
    ApprovePayment, BankChallenge, BankResult, ChangePin, CurrencyCode, EcPublicKey,
    EcdsaSignature, GetIntegrityReport, Initialise, IntegrityReport, Kcv, KeyBlock,
    LoadSessionKeys, MacTag, Nonce, PaymentDetails, SessionId, SignConfirmation, StatusCode,
    VerifyBankResponse, VerifyPinChange, WrappedKey,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const SERIAL: &str = "PB-2024-000123";
const PAN: &str = "4111111111111111";

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn material(rng: &mut ChaCha20Rng, algorithm: KeyAlgorithm, len: usize) -> KeyMaterial {
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    KeyMaterial::new(algorithm, &bytes).unwrap()
}

fn kcv_of(key: &KeyMaterial) -> Kcv {
    Kcv::new(kcv::compute(key, KcvMethod::standard_for(key.algorithm())).as_bytes()).unwrap()
}

fn wrap(
    under: &KeyBlockProtectionKey,
    usage: KeyUsageCode,
    mode: ModeOfUse,
    key: &KeyMaterial,
    rng: &mut ChaCha20Rng,
) -> WrappedKey {
    let algorithm = match key.algorithm() {
        KeyAlgorithm::Aes => Algorithm::Aes,
        KeyAlgorithm::Tdes => Algorithm::Tdes,
    };
    let header = Header::new(
        Version::D,
        usage,
        algorithm,
        mode,
        KeyVersion::UNUSED,
        Exportability::NonExportable,
    );
    let text = tr31::wrap(under, &header, key, KeyLengthMasking::default(), rng).unwrap();
    WrappedKey {
        key_block: KeyBlock::new(&text).unwrap(),
        kcv: kcv_of(key),
    }
}

/// The bank's Initialise for `device` (signature left zero: checking it is the caller's job)
/// and the KBPK it wrapped.
fn initialise(device: &EcdsaSigningKey, sequence: u64) -> (Initialise, KeyMaterial) {
    let mut rng = rng(7);
    let bank = EcdsaSigningKey::generate(&mut rng);
    let kek = derive_initialisation_kek(
        &bank,
        &device.verifying_key(),
        &initialisation_context(SERIAL, sequence),
    );
    let kbpk = material(&mut rng, KeyAlgorithm::Aes, 32);
    let request = Initialise {
        device_serial: SERIAL.into(),
        sequence,
        bank_public_key: EcPublicKey::from(&bank.verifying_key()),
        kbpk: wrap(
            &kek,
            KeyUsageCode::K1,
            ModeOfUse::EncryptDecrypt,
            &kbpk,
            &mut rng,
        ),
        signature: EcdsaSignature::from_array([0; 64]),
    };
    (request, kbpk)
}

fn kbpk() -> KeyBlockProtectionKey {
    KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &[0x42; 32]).unwrap()
}

/// LoadSessionKeys with three fresh AES keys (or `same` for all three) and the bank's copies.
fn session_keys(kbpk: &KeyBlockProtectionKey, same: bool) -> (LoadSessionKeys, [KeyMaterial; 3]) {
    let mut rng = rng(9);
    let pin = material(&mut rng, KeyAlgorithm::Aes, 16);
    let (mac, response) = if same {
        (pin.clone(), pin.clone())
    } else {
        (
            material(&mut rng, KeyAlgorithm::Aes, 16),
            material(&mut rng, KeyAlgorithm::Aes, 16),
        )
    };
    let mac_mode = ModeOfUse::MacGenerateVerify;
    let request = LoadSessionKeys {
        session_id: SessionId([5; 16]),
        pin_key: wrap(
            kbpk,
            KeyUsageCode::P0,
            ModeOfUse::EncryptDecrypt,
            &pin,
            &mut rng,
        ),
        mac_key: wrap(kbpk, KeyUsageCode::M6, mac_mode, &mac, &mut rng),
        response_key: wrap(kbpk, KeyUsageCode::M6, mac_mode, &response, &mut rng),
    };
    (request, [pin, mac, response])
}

fn payment(session_id: SessionId, counter: u64) -> ApprovePayment {
    ApprovePayment {
        session_id,
        payment: PaymentDetails {
            payer_account: "DE02 1203 0000 0000 2020 51".into(),
            payee_account: "DE89 3704 0044 0532 0130 00".into(),
            payee_name: "Stadtwerke".into(),
            amount_minor: 12_345,
            currency: CurrencyCode::new("EUR").unwrap(),
            currency_exponent: 2,
            reference: "Invoice 7".into(),
            bank_transaction_id: "TX-1".into(),
        },
        counter,
        bank_mac: MacTag([0; 16]),
    }
}

fn mac_key(material: &KeyMaterial) -> MacKey {
    MacKey::new(KeyAlgorithm::Aes, material.reveal_bytes()).unwrap()
}

#[test]
fn the_kbpk_unwraps_under_the_kek_of_the_initialisation_context() {
    let device = EcdsaSigningKey::generate(&mut rng(1));
    let (request, sent) = initialise(&device, 3);
    let kbpk = device_side::unwrap_kbpk(&device, &request).unwrap();
    assert_eq!(kbpk.material().reveal_bytes(), sent.reveal_bytes());
    // The answer's KCV is the one the bank sent (the standard CMAC KCV of an AES key).
    assert_eq!(
        device_side::kcv_of(kbpk.material()).unwrap(),
        request.kbpk.kcv
    );

    // Another sequence (or serial) is another context, so another KEK: the block no longer
    // unwraps.
    let mut other_sequence = request.clone();
    other_sequence.sequence = 4;
    let error = device_side::unwrap_kbpk(&device, &other_sequence).unwrap_err();
    assert_eq!(error.status_code(), StatusCode::KeyBlockRejected);
    let mut other_serial = request.clone();
    other_serial.device_serial = "PB-2024-000124".into();
    let error = device_side::unwrap_kbpk(&device, &other_serial).unwrap_err();
    assert_eq!(error.status_code(), StatusCode::KeyBlockRejected);

    // Not this device's key agreement: another attestation key cannot open it.
    let other_device = EcdsaSigningKey::generate(&mut rng(2));
    let error = device_side::unwrap_kbpk(&other_device, &request).unwrap_err();
    assert_eq!(error.status_code(), StatusCode::KeyBlockRejected);
}

#[test]
fn a_wrapped_key_is_refused_with_the_status_of_what_is_wrong() {
    let kbpk = kbpk();
    let mut rng = rng(3);
    let aes = material(&mut rng, KeyAlgorithm::Aes, 16);
    let pin_block = wrap(
        &kbpk,
        KeyUsageCode::P0,
        ModeOfUse::EncryptDecrypt,
        &aes,
        &mut rng,
    );
    let key: PinKey = device_side::unwrap_key(&kbpk, &pin_block, "pin_key").unwrap();
    assert_eq!(key.material().reveal_bytes(), aes.reveal_bytes());

    // A MAC key block offered as the PIN key: the usage is wrong.
    let mac_block = wrap(
        &kbpk,
        KeyUsageCode::M6,
        ModeOfUse::MacGenerateVerify,
        &aes,
        &mut rng,
    );
    let error = device_side::unwrap_key::<firmware_protocol::crypto::keys::PinEncryption>(
        &kbpk, &mac_block, "pin_key",
    )
    .unwrap_err();
    assert_eq!(error.status_code(), StatusCode::WrongKeyUsage);
    assert!(error.to_string().starts_with("pin_key: "), "{error}");

    // The check value is not the key's.
    let mut wrong_kcv = pin_block.clone();
    wrong_kcv.kcv = kcv_of(&material(&mut rng, KeyAlgorithm::Aes, 16));
    let error = device_side::unwrap_key::<firmware_protocol::crypto::keys::PinEncryption>(
        &kbpk, &wrong_kcv, "pin_key",
    )
    .unwrap_err();
    assert_eq!(error.status_code(), StatusCode::KcvMismatch);

    // A TDES key: this device takes AES only.
    let tdes = material(&mut rng, KeyAlgorithm::Tdes, 16);
    let tdes_block = wrap(
        &kbpk,
        KeyUsageCode::P0,
        ModeOfUse::EncryptDecrypt,
        &tdes,
        &mut rng,
    );
    let error = device_side::unwrap_key::<firmware_protocol::crypto::keys::PinEncryption>(
        &kbpk,
        &tdes_block,
        "pin_key",
    )
    .unwrap_err();
    assert_eq!(
        error,
        PayloadError::NotAes { what: "pin_key" },
        "refused for its algorithm"
    );
    assert_eq!(error.status_code(), StatusCode::UnsupportedKeyAlgorithm);

    // Under another protection key the block does not unwrap at all.
    let other = KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &[0x43; 32]).unwrap();
    let error = device_side::unwrap_key::<firmware_protocol::crypto::keys::PinEncryption>(
        &other, &pin_block, "pin_key",
    )
    .unwrap_err();
    assert_eq!(error.status_code(), StatusCode::KeyBlockRejected);
}

#[test]
fn session_keys_unwrap_typed_and_must_be_distinct() {
    let kbpk = kbpk();
    let (request, [pin, mac, response]) = session_keys(&kbpk, false);
    let keys = SessionKeys::unwrap(&kbpk, &request).unwrap();
    assert_eq!(keys.id, request.session_id);
    assert_eq!(keys.pin_key.material().reveal_bytes(), pin.reveal_bytes());
    assert_eq!(keys.mac_key.material().reveal_bytes(), mac.reveal_bytes());
    assert_eq!(
        keys.response_key.material().reveal_bytes(),
        response.reveal_bytes()
    );
    // Debug shows the session, never a key.
    let debug = format!("{keys:?}");
    assert!(!debug.contains(&hex::encode(pin.reveal_bytes())), "{debug}");

    let (same, _) = session_keys(&kbpk, true);
    let error = SessionKeys::unwrap(&kbpk, &same).unwrap_err();
    assert_eq!(error, PayloadError::KeysNotDistinct);
    assert_eq!(error.status_code(), StatusCode::KeysNotDistinct);

    // The response key where the PIN key belongs: the PIN key's usage is checked first.
    let mut swapped = request.clone();
    swapped.pin_key = request.response_key.clone();
    let error = SessionKeys::unwrap(&kbpk, &swapped).unwrap_err();
    assert_eq!(error.status_code(), StatusCode::WrongKeyUsage);
}

#[test]
fn bank_macs_are_sealed_and_checked_over_the_mac_input() {
    let response_key = mac_key(&material(&mut rng(4), KeyAlgorithm::Aes, 16));
    let mut approve = payment(SessionId([5; 16]), 8);
    approve.seal_bank_mac(&response_key).unwrap();
    // The one definition: the AES-CMAC of the payload's MAC input (tag, 00, body).
    assert_eq!(
        approve.bank_mac,
        MacTag::aes_cmac(&response_key, &approve.mac_input().unwrap()).unwrap()
    );
    assert!(approve.bank_mac_verifies(&response_key));

    // The host changes the amount: the MAC no longer verifies; nor under another key.
    let mut tampered = approve.clone();
    tampered.payment.amount_minor += 1;
    assert!(!tampered.bank_mac_verifies(&response_key));
    let other = mac_key(&material(&mut rng(5), KeyAlgorithm::Aes, 16));
    assert!(!approve.bank_mac_verifies(&other));

    // The same for the verdicts and the PIN change.
    let mut verdict = VerifyBankResponse {
        session_id: SessionId([5; 16]),
        bank_transaction_id: "TX-1".into(),
        device_counter: 1,
        result: BankResult::Approved,
        bank_mac: MacTag([0; 16]),
    };
    verdict.seal_bank_mac(&response_key).unwrap();
    assert!(verdict.bank_mac_verifies(&response_key));
    verdict.result = BankResult::Declined;
    assert!(!verdict.bank_mac_verifies(&response_key));

    let mut change = ChangePin {
        session_id: SessionId([5; 16]),
        counter: 9,
        pin_length_min: 4,
        pin_length_max: 6,
        bank_mac: MacTag([0; 16]),
    };
    change.seal_bank_mac(&response_key).unwrap();
    assert!(change.bank_mac_verifies(&response_key));
    change.counter = 10;
    assert!(!change.bank_mac_verifies(&response_key));

    let mut pin_verdict = VerifyPinChange {
        session_id: SessionId([5; 16]),
        device_counter: 2,
        result: firmware_protocol::message::PinChangeResult::Changed,
        pin_tries_left: 3,
        bank_mac: MacTag([0; 16]),
    };
    pin_verdict.seal_bank_mac(&response_key).unwrap();
    assert!(pin_verdict.bank_mac_verifies(&response_key));
}

#[test]
fn the_payment_approval_carries_the_pin_block_and_the_device_mac() {
    let kbpk = kbpk();
    let (request, [pin_key, mac, _]) = session_keys(&kbpk, false);
    let keys = SessionKeys::unwrap(&kbpk, &request).unwrap();
    let approve = payment(request.session_id, 1);
    let pan = Pan::new(PAN).unwrap();
    let approved = keys
        .approve_payment(&approve, &Pin::new("2580").unwrap(), &pan, 17, &mut rng(6))
        .unwrap();
    assert_eq!(approved.device_counter, 17);
    // The bank checks the device MAC under its copy of the MAC key, bound to this request.
    assert!(approved.mac_verifies(&mac_key(&mac), &approve));
    let mut other = approve.clone();
    other.counter = 2;
    assert!(!approved.mac_verifies(&mac_key(&mac), &other));
    // The PIN block is ISO format 4 under the session PIN key, for the binding's PAN.
    let block = EncipheredPinBlock::from_bytes(
        pinblock::PinBlockFormat::Iso4,
        approved.pin_block.enciphered(),
    )
    .unwrap();
    let pin_key = PinKey::new(KeyAlgorithm::Aes, pin_key.reveal_bytes()).unwrap();
    let pin = pinblock::decrypt_pin(&block, Some(&pan), &pin_key).unwrap();
    assert_eq!(pin.reveal_digits(), "2580");

    // The PIN change's answer: both blocks under the PIN key, MACed over the ChangePin.
    let change = ChangePin {
        session_id: request.session_id,
        counter: 2,
        pin_length_min: 4,
        pin_length_max: 6,
        bank_mac: MacTag([1; 16]),
    };
    let entered = keys
        .pin_change_entered(
            &change,
            &Pin::new("2580").unwrap(),
            &Pin::new("864200").unwrap(),
            &pan,
            18,
            &mut rng(7),
        )
        .unwrap();
    assert!(entered.mac_verifies(&mac_key(&mac), &change));
    let new_block = EncipheredPinBlock::from_bytes(
        pinblock::PinBlockFormat::Iso4,
        entered.new_pin_block.enciphered(),
    )
    .unwrap();
    let new = pinblock::decrypt_pin(&new_block, Some(&pan), &pin_key).unwrap();
    assert_eq!(new.reveal_digits(), "864200");
}

#[test]
fn the_challenge_response_is_maced_over_the_challenge_and_the_nonce() {
    let kbpk = kbpk();
    let (request, [_, mac, _]) = session_keys(&kbpk, false);
    let keys = SessionKeys::unwrap(&kbpk, &request).unwrap();
    let challenge = BankChallenge {
        session_id: request.session_id,
        bank_nonce: Nonce([3; 16]),
    };
    let response = keys.challenge_response(&challenge, Nonce([4; 16])).unwrap();
    assert_eq!(response.device_nonce, Nonce([4; 16]));
    assert!(response.mac_verifies(&mac_key(&mac), &challenge));
    let replayed = BankChallenge {
        bank_nonce: Nonce([5; 16]),
        ..challenge
    };
    assert!(!response.mac_verifies(&mac_key(&mac), &replayed));
}

#[test]
fn device_signatures_verify_only_in_their_domain() {
    let device = EcdsaSigningKey::generate(&mut rng(8));
    let public = device.verifying_key();
    let get = GetIntegrityReport {
        nonce: Nonce([6; 16]),
    };
    let report =
        device_side::integrity_report(&device, &get, SERIAL.into(), "1.2.3".into(), [9; 32])
            .unwrap();
    let signed = report.signed_bytes(&get).unwrap();
    public
        .verify(
            IntegrityReport::SIGNATURE_DOMAIN,
            &signed,
            &report.signature,
        )
        .unwrap();
    assert!(
        public
            .verify(
                SignatureDomain::OutOfBandConfirmation,
                &signed,
                &report.signature
            )
            .is_err()
    );

    let sign = SignConfirmation {
        payment: payment(SessionId([5; 16]), 1).payment,
        nonce: Nonce([7; 16]),
    };
    let answer = device_side::confirmation_signature(&device, &sign).unwrap();
    let signed = sign.signed_bytes().unwrap();
    public
        .verify(
            SignConfirmation::SIGNATURE_DOMAIN,
            &signed,
            &answer.signature,
        )
        .unwrap();
    assert!(
        public
            .verify(
                SignatureDomain::DeviceAttestation,
                &signed,
                &answer.signature
            )
            .is_err()
    );
}
