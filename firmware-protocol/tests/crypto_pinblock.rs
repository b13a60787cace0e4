//! ISO 9564-1 PIN block known answers (tests/vectors/pinblock.json), strict decoding, and
//! properties.

// Test code: a failed unwrap or an unknown vector field is a test failure, as intended.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firmware_protocol::crypto::keys::{KeyAlgorithm, PinKey};
use firmware_protocol::crypto::pinblock::{
    self, ClearPinBlock, EncipheredPinBlock, ExplicitFill, Pan, Pin, PinBlockError, PinBlockFormat,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    source: String,
    format: u8,
    pin: String,
    pan: Option<String>,
    fill: Option<String>,
    clear_block: String,
    key_algorithm: Option<String>,
    key: Option<String>,
    enciphered: Option<String>,
}

fn key_algorithm(name: &str) -> KeyAlgorithm {
    match name {
        "aes" => KeyAlgorithm::Aes,
        "tdes" => KeyAlgorithm::Tdes,
        other => panic!("unknown key algorithm {other}"),
    }
}

#[test]
fn known_answers() {
    let file: VectorFile =
        serde_json::from_str(include_str!("vectors/pinblock.json")).expect("pinblock.json parses");
    assert_eq!(file.vectors.len(), 15);
    let mut formats_seen = [false; 5];
    for v in &file.vectors {
        assert!(!v.source.trim().is_empty(), "{}: no source", v.name);
        let format = PinBlockFormat::from_number(v.format).unwrap();
        formats_seen[usize::from(v.format)] = true;
        let pin = Pin::new(&v.pin).unwrap();
        let pan = v.pan.as_deref().map(|p| Pan::new(p).unwrap());
        let clear_bytes = hex::decode(&v.clear_block).unwrap();
        let clear = ClearPinBlock::from_bytes(format, &clear_bytes).unwrap();

        if let Some(fill) = &v.fill {
            let fill = ExplicitFill::from_hex(fill).unwrap();
            let encoded = pinblock::encode_with_fill(format, &pin, pan.as_ref(), &fill).unwrap();
            assert_eq!(
                hex::encode_upper(encoded.reveal_bytes()),
                v.clear_block,
                "{}: encode",
                v.name
            );
        }
        assert_eq!(
            pinblock::decode(&clear, pan.as_ref()).unwrap(),
            pin,
            "{}: decode",
            v.name
        );

        if let (Some(alg), Some(key), Some(enciphered)) = (&v.key_algorithm, &v.key, &v.enciphered)
        {
            let key = PinKey::new(key_algorithm(alg), &hex::decode(key).unwrap()).unwrap();
            let block =
                EncipheredPinBlock::from_bytes(format, &hex::decode(enciphered).unwrap()).unwrap();
            assert_eq!(
                pinblock::encipher(&clear, pan.as_ref(), &key).unwrap(),
                block,
                "{}: encipher",
                v.name
            );
            let deciphered = pinblock::decipher(&block, pan.as_ref(), &key).unwrap();
            assert_eq!(
                deciphered.reveal_bytes(),
                &clear_bytes[..],
                "{}: decipher",
                v.name
            );
            assert_eq!(
                pinblock::decrypt_pin(&block, pan.as_ref(), &key).unwrap(),
                pin,
                "{}: decrypt_pin",
                v.name
            );
        }
    }
    assert_eq!(formats_seen, [true, true, false, true, true]);
}

fn clear(format: PinBlockFormat, hex_block: &str) -> ClearPinBlock {
    ClearPinBlock::from_bytes(format, &hex::decode(hex_block).unwrap()).unwrap()
}

/// Every kind of malformed clear block, one field at a time, gets its own typed error.
#[test]
fn malformed_clear_blocks_are_typed_errors() {
    use PinBlockFormat::*;
    let pan = Pan::new("43219876543210987").unwrap();
    // Format 0 blocks below are written as PIN fields XOR the account field 0000987654321098.
    let cases: &[(PinBlockFormat, &str, PinBlockError)] = &[
        (
            Iso0,
            // PIN field 141234FFFFFFFFFF: control nibble 1.
            "1412AC89ABCDEF67",
            PinBlockError::ControlNibble {
                format: Iso0,
                found: 1,
            },
        ),
        (
            Iso0,
            // PIN field 031234FFFFFFFFFF: 3 digits.
            "0312AC89ABCDEF67",
            PinBlockError::PinLengthNibble { found: 3 },
        ),
        (
            Iso0,
            // PIN field 0D1234FFFFFFFFFF: 13 digits.
            "0D12AC89ABCDEF67",
            PinBlockError::PinLengthNibble { found: 0xD },
        ),
        (
            Iso0,
            // PIN field 04123AFFFFFFFFFF: digit 'A' at nibble 5.
            "0412A289ABCDEF67",
            PinBlockError::PinDigitNotDecimal { position: 5 },
        ),
        (
            Iso0,
            // PIN field 041234FFFFFFFFFE: fill 'E' at nibble 15.
            "0412AC89ABCDEF66",
            PinBlockError::InvalidFill {
                format: Iso0,
                position: 15,
            },
        ),
        (
            Iso3,
            // PIN field 3412349ABCDEFABC: fill '9' at nibble 6.
            "3412ACECE8ECEA24",
            PinBlockError::InvalidFill {
                format: Iso3,
                position: 6,
            },
        ),
        (
            Iso4,
            "441234AAAAAAAAAB0000000000000000",
            PinBlockError::InvalidFill {
                format: Iso4,
                position: 15,
            },
        ),
        (
            Iso4,
            "341234AAAAAAAAAA0000000000000000",
            PinBlockError::ControlNibble {
                format: Iso4,
                found: 3,
            },
        ),
        (
            Iso1,
            "1412B4FFFFFFFFFF",
            PinBlockError::PinDigitNotDecimal { position: 4 },
        ),
    ];
    for (format, block, expected) in cases {
        let result = pinblock::decode(&clear(*format, block), Some(&pan));
        assert_eq!(result.unwrap_err(), *expected, "{format} {block}");
    }
    // Format 1 accepts any fill, so only its structure can be wrong.
    assert!(pinblock::decode(&clear(Iso1, "141234000000F1A0"), None).is_ok());
    assert_eq!(
        ClearPinBlock::from_bytes(Iso4, &[0; 8]).unwrap_err(),
        PinBlockError::BlockLength {
            format: Iso4,
            expected: 16,
            actual: 8
        }
    );
    assert_eq!(
        EncipheredPinBlock::from_bytes(Iso0, &[0; 16]).unwrap_err(),
        PinBlockError::BlockLength {
            format: Iso0,
            expected: 8,
            actual: 16
        }
    );
}

#[test]
fn format_4_with_the_wrong_pan_does_not_yield_the_pin() {
    let key = PinKey::new(KeyAlgorithm::Aes, &[0x42; 16]).unwrap();
    let pin = Pin::new("4321").unwrap();
    let pan = Pan::new("5413330089020011").unwrap();
    let other = Pan::new("5413330089020012").unwrap();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let block =
        pinblock::encrypt_pin(PinBlockFormat::Iso4, &pin, Some(&pan), &key, &mut rng).unwrap();
    assert_eq!(
        pinblock::decrypt_pin(&block, Some(&pan), &key).unwrap(),
        pin
    );
    assert!(pinblock::decrypt_pin(&block, Some(&other), &key).is_err());
}

#[test]
fn formats_by_number() {
    for n in [0u8, 1, 3, 4] {
        assert_eq!(PinBlockFormat::try_from(n).unwrap().number(), n);
    }
    for n in [2u8, 5, 255] {
        assert_eq!(
            PinBlockFormat::try_from(n).unwrap_err(),
            PinBlockError::UnsupportedFormat { number: n }
        );
    }
}

fn any_format() -> impl Strategy<Value = PinBlockFormat> {
    prop_oneof![
        Just(PinBlockFormat::Iso0),
        Just(PinBlockFormat::Iso1),
        Just(PinBlockFormat::Iso3),
        Just(PinBlockFormat::Iso4),
    ]
}

fn key_for(format: PinBlockFormat, bytes: &[u8]) -> PinKey {
    match format {
        PinBlockFormat::Iso4 => PinKey::new(KeyAlgorithm::Aes, bytes).unwrap(),
        _ => PinKey::new(KeyAlgorithm::Tdes, &bytes[..24.min(bytes.len())]).unwrap(),
    }
}

proptest! {
    #[test]
    fn random_fill_round_trips_for_every_format(
        format in any_format(),
        pin in "[0-9]{4,12}",
        pan in "[0-9]{8,19}",
        key in prop::sample::select(vec![16usize, 24, 32])
            .prop_flat_map(|len| prop::collection::vec(any::<u8>(), len)),
        seed in any::<[u8; 32]>(),
    ) {
        // TDES keys are 16 or 24 bytes: a 32-byte draw becomes 24 bytes for formats 0/1/3.
        let key = key_for(format, &key);
        let pin = Pin::new(&pin).unwrap();
        let pan = Pan::new(&pan).unwrap();
        let mut rng = ChaCha20Rng::from_seed(seed);
        let clear = pinblock::encode(format, &pin, Some(&pan), &mut rng).unwrap();
        prop_assert_eq!(clear.reveal_bytes().len(), format.block_len());
        let block = pinblock::encipher(&clear, Some(&pan), &key).unwrap();
        let back = pinblock::decipher(&block, Some(&pan), &key).unwrap();
        prop_assert_eq!(back.reveal_bytes(), clear.reveal_bytes());
        prop_assert_eq!(pinblock::decode(&back, Some(&pan)).unwrap(), pin);
    }

    #[test]
    fn explicit_fill_round_trips_for_every_format(
        format in any_format(),
        pin in "[0-9]{4,12}",
        pan in "[0-9]{8,19}",
        fill in prop::collection::vec(0u8..16, 16),
    ) {
        let pin = Pin::new(&pin).unwrap();
        let pan = Pan::new(&pan).unwrap();
        let count = format.fill_nibbles(pin.digit_count());
        let fill: Vec<u8> = fill
            .iter()
            .take(count)
            .map(|&n| if format == PinBlockFormat::Iso3 { 0xA + n % 6 } else { n })
            .collect();
        let fill = ExplicitFill::from_nibbles(&fill).unwrap();
        let clear = pinblock::encode_with_fill(format, &pin, Some(&pan), &fill).unwrap();
        prop_assert_eq!(pinblock::decode(&clear, Some(&pan)).unwrap(), pin);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        format in any_format(),
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        pan in proptest::option::of("[0-9]{8,19}"),
        key in prop::collection::vec(any::<u8>(), 32),
    ) {
        let pan = pan.map(|p| Pan::new(&p).unwrap());
        let key = key_for(format, &key);
        match ClearPinBlock::from_bytes(format, &bytes) {
            Ok(clear) => {
                let _ = pinblock::decode(&clear, pan.as_ref());
            }
            Err(e) => prop_assert!(
                matches!(e, PinBlockError::BlockLength { .. }),
                "unexpected {e:?}"
            ),
        }
        if let Ok(block) = EncipheredPinBlock::from_bytes(format, &bytes)
            && let Ok(pin) = pinblock::decrypt_pin(&block, pan.as_ref(), &key)
        {
            prop_assert!((4..=12).contains(&pin.digit_count()));
        }
    }

    #[test]
    fn text_parsers_never_panic(text in ".{0,30}") {
        let _ = Pin::new(&text);
        let _ = Pan::new(&text);
        let _ = ExplicitFill::from_hex(&text);
    }

    #[test]
    fn decoded_pins_are_always_well_formed(
        bytes in prop::collection::vec(any::<u8>(), 16),
        format in any_format(),
    ) {
        let pan = Pan::new("43219876543210987").unwrap();
        let clear = ClearPinBlock::from_bytes(format, &bytes[..format.block_len()]).unwrap();
        if let Ok(pin) = pinblock::decode(&clear, Some(&pan)) {
            let digits = pin.reveal_digits();
            prop_assert!((4..=12).contains(&digits.len()));
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
