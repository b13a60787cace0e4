//! The worked examples of PROTOCOL.md §5.4 (TR-31 version D) and §5.5 (ISO 9564 format 4),
//! recomputed step by step from the block cipher alone, as a C implementation would, and
//! checked against the library (`tr31`, `pinblock`, `kcv`) and against the document: every
//! hex string the document shows for a step must appear in PROTOCOL.md, so neither can
//! drift.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure report

use firmware_protocol::crypto::kcv::{self, KcvMethod};
use firmware_protocol::crypto::keys::{KeyAlgorithm, KeyBlockProtectionKey, KeyMaterial, PinKey};
use firmware_protocol::crypto::pinblock::{self, ExplicitFill, Pan, Pin, PinBlockFormat};
use firmware_protocol::crypto::primitives::BlockCipher;
use firmware_protocol::crypto::tr31::{
    self, Algorithm, Exportability, Header, KeyContext, KeyUsageCode, KeyVersion, ModeOfUse,
    Version,
};
use serde_json::Value;

const PROTOCOL: &str = include_str!("../PROTOCOL.md");

fn h(text: &str) -> Vec<u8> {
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

/// `value` must be shown in PROTOCOL.md (hex, lower case, as one unbroken string).
fn documented(what: &str, value: &[u8]) {
    let text = hex::encode(value);
    if std::env::var_os("PRINT_DOC_EXAMPLES").is_some() {
        println!("{what}: {text}");
        return;
    }
    assert!(
        PROTOCOL.contains(&text),
        "PROTOCOL.md does not show {what} = {text}"
    );
}

fn documented_text(what: &str, value: &str) {
    if std::env::var_os("PRINT_DOC_EXAMPLES").is_some() {
        println!("{what}: {value}");
        return;
    }
    assert!(
        PROTOCOL.contains(value),
        "PROTOCOL.md does not show {what} = {value}"
    );
}

fn aes(key: &[u8]) -> BlockCipher {
    BlockCipher::new(&KeyMaterial::new(KeyAlgorithm::Aes, key).unwrap())
}

fn pairing_vectors() -> Value {
    serde_json::from_str(include_str!("vectors/pairing.json")).unwrap()
}

/// §5.4: the KBPK block of an Initialise, under the §4.3 KEK of the pairing.json vector.
#[test]
fn tr31_version_d_worked_example() {
    let kek = h(pairing_vectors()["initialisation_kek"]["kek"]
        .as_str()
        .unwrap());
    documented("wrapping key (the 4.3 KEK)", &kek);
    let key: Vec<u8> = (0x40..=0x5f).collect(); // the device's new KBPK, AES-256
    let padding: Vec<u8> = (0xc0..=0xcd).collect(); // random in real life
    documented("key", &key);
    documented("padding", &padding);

    // Step 1: KBEK and KBAK, CMAC counter-mode KDF under the wrapping key.
    let cipher = aes(&kek);
    let derive = |usage: u8| {
        let mut out = Vec::new();
        for counter in 1u8..=2 {
            // counter, key usage indicator (0000 encryption, 0001 MAC), separator 00,
            // algorithm indicator 0004 (AES-256), length in bits 0100 (256).
            let input = [counter, 0x00, usage, 0x00, 0x00, 0x04, 0x01, 0x00];
            documented("KDF input", &input);
            out.extend_from_slice(&cipher.cmac(&input));
        }
        out
    };
    let kbek = derive(0x00);
    let kbak = derive(0x01);
    documented("KBEK", &kbek);
    documented("KBAK", &kbak);

    // Step 2: clear key field: key length in bits, key, padding to a whole number of blocks.
    let mut field = vec![0x01, 0x00];
    field.extend_from_slice(&key);
    field.extend_from_slice(&padding);
    assert_eq!(field.len(), 48);
    documented("clear key field", &field);

    // Step 3: header, 16 ASCII characters; the length counts the whole block.
    let header_text = "D0144K1AB00N0020";
    assert_eq!(16 + 2 * field.len() + 2 * 16, 144);
    documented_text("header", header_text);

    // Step 4: MAC = AES-CMAC under the KBAK of header text || clear key field.
    let mut mac_input = header_text.as_bytes().to_vec();
    mac_input.extend_from_slice(&field);
    let mac = aes(&kbak).cmac(&mac_input);
    documented("MAC", &mac);

    // Step 5: AES-CBC under the KBEK with the MAC as IV, no padding.
    let mut encrypted = field.clone();
    aes(&kbek).cbc_encrypt(&mac, &mut encrypted).unwrap();
    documented("encrypted key field", &encrypted);

    // Step 6: the block: header || HEX(encrypted field) || HEX(MAC), upper case.
    let block = format!(
        "{header_text}{}{}",
        hex::encode_upper(&encrypted),
        hex::encode_upper(&mac)
    );
    assert_eq!(block.len(), 144);
    documented_text("key block", &block);

    // The library agrees, both ways.
    let wrapping = KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &kek).unwrap();
    let header = Header::new(
        Version::D,
        KeyUsageCode::K1,
        Algorithm::Aes,
        ModeOfUse::EncryptDecrypt,
        KeyVersion::UNUSED,
        Exportability::NonExportable,
    )
    .with_key_context(KeyContext::ExchangeOnly);
    let material = KeyMaterial::new(KeyAlgorithm::Aes, &key).unwrap();
    assert_eq!(
        tr31::wrap_with_padding(&wrapping, &header, &material, &padding).unwrap(),
        block
    );
    let unwrapped = tr31::unwrap(&wrapping, &block).unwrap();
    let kbpk: KeyBlockProtectionKey = unwrapped.into_key().unwrap();
    assert_eq!(kbpk.material().reveal_bytes(), key.as_slice());

    // The KCV that travels beside the block and comes back in Initialised: AES-CMAC of one
    // zero block under the key, leftmost 5 bytes.
    let kcv_value = aes(&key).cmac(&[0u8; 16])[..5].to_vec();
    documented("KCV", &kcv_value);
    assert_eq!(
        kcv::compute(kbpk.material(), KcvMethod::Cmac).as_bytes(),
        kcv_value.as_slice()
    );
    for len in 3..=5 {
        kcv::verify(kbpk.material(), KcvMethod::Cmac, &kcv_value[..len]).unwrap();
    }
    for len in [1, 2, 6] {
        let mut expected = kcv_value.clone();
        expected.resize(len, 0);
        assert!(kcv::verify(kbpk.material(), KcvMethod::Cmac, &expected).is_err());
    }
}

/// §5.5: a payment PIN block, PIN 1234, the PAN of the Enrol example, an AES-128 PIN key.
#[test]
fn pin_block_format_4_worked_example() {
    let key: Vec<u8> = (0x00..=0x0f).collect();
    let random = h("8e 2f 4a 61 b3 07 d9 5c"); // 8 random bytes
    documented("PIN key", &key);
    documented("random", &random);

    // Step 1: PIN field: 4, PIN length, PIN digits, fill A to nibble 15, then 8 random bytes.
    let mut pin_field = h("44 12 34 aa aa aa aa aa");
    pin_field.extend_from_slice(&random);
    documented("PIN field", &pin_field);

    // Step 2: PAN field: M = digits - 12 (0 below 12), the PAN (left-padded with zeros to 12
    // digits), zeros to 32 nibbles.
    let pan_field = h("44 00 00 01 23 45 67 89 90 00 00 00 00 00 00 00");
    documented("PAN field", &pan_field);

    // Step 3: encrypt the PIN field, XOR the PAN field, encrypt again.
    let cipher = aes(&key);
    let mut block_a = pin_field.clone();
    cipher.ecb_encrypt(&mut block_a).unwrap();
    documented("intermediate block A", &block_a);
    let mut block_b: Vec<u8> = block_a.iter().zip(&pan_field).map(|(a, p)| a ^ p).collect();
    documented("intermediate block B", &block_b);
    cipher.ecb_encrypt(&mut block_b).unwrap();
    documented("enciphered PIN block", &block_b);

    // The library agrees, both ways.
    let pin = Pin::new("1234").unwrap();
    let pan = Pan::new("4000001234567899").unwrap();
    let pin_key = PinKey::new(KeyAlgorithm::Aes, &key).unwrap();
    let fill = ExplicitFill::from_hex(&hex::encode(&random)).unwrap();
    let clear = pinblock::encode_with_fill(PinBlockFormat::Iso4, &pin, Some(&pan), &fill).unwrap();
    assert_eq!(clear.reveal_bytes(), pin_field.as_slice());
    let enciphered = pinblock::encipher(&clear, Some(&pan), &pin_key).unwrap();
    assert_eq!(enciphered.as_bytes(), block_b.as_slice());
    let back = pinblock::decrypt_pin(&enciphered, Some(&pan), &pin_key).unwrap();
    assert_eq!(back.reveal_digits(), "1234");
}

/// §4.3: the KEK context of the vector, as the document spells it (length, serial, sequence).
#[test]
fn initialisation_kek_context_example() {
    use firmware_protocol::crypto::pairing::initialisation_context;
    let vector = &pairing_vectors()["initialisation_kek"];
    let context = initialisation_context("PB-2024-000123", 1);
    assert_eq!(hex::encode(&context), vector["context"].as_str().unwrap());
    let spelled = format!(
        "context = {} {} {}",
        hex::encode(&context[..2]),
        hex::encode(&context[2..16]),
        hex::encode(&context[16..])
    );
    documented_text("KEK context", &spelled);
    documented_text(
        "KEK",
        &format!("KEK     = {}", vector["kek"].as_str().unwrap()),
    );
}

/// §3.6: the start of the Initialise vector's signed message, label then tag then body.
#[test]
fn signed_message_example() {
    use firmware_protocol::crypto::ecdsa::SignatureDomain;
    use firmware_protocol::message::Initialise;
    let document: Value = serde_json::from_str(include_str!("vectors/messages.json")).unwrap();
    let initialise = document["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "Initialise")
        .unwrap();
    let signed = initialise["auth_input_hex"].as_str().unwrap();
    let label = SignatureDomain::BankCommand.label();
    assert_eq!(Initialise::SIGNATURE_DOMAIN, SignatureDomain::BankCommand);
    let expected_start = format!(
        "{}00{}00000e{}0000000000000001",
        hex::encode(label),
        hex::encode("PinBridge/1/initialise"),
        hex::encode("PB-2024-000123")
    );
    assert!(signed.starts_with(&expected_start), "{signed}");
    documented_text(
        "label line",
        &format!("{} 00   \"{label}\"", hex::encode(label)),
    );
    documented_text(
        "tag line",
        &format!(
            "{} 00                 \"PinBridge/1/initialise\"",
            hex::encode("PinBridge/1/initialise")
        ),
    );
}

/// §6.4: the amount examples, as the device shows them.
#[test]
fn amount_examples() {
    use firmware_protocol::display::format_amount;
    for (minor, exponent, shown) in [
        (12_345, 2, "123.45"),
        (5, 2, "0.05"),
        (7, 0, "7"),
        (1_000, 3, "1.000"),
        (123_456, 2, "1,234.56"),
        (1_234_567, 0, "1,234,567"),
    ] {
        assert_eq!(format_amount(minor, exponent), shown);
        documented_text(
            "amount example",
            &format!("{minor} with exponent {exponent} is `{shown}`"),
        );
    }
}
