//! TR-31 / X9.143 key blocks: published vectors, strict parsing, key separation, properties.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::convert::Infallible;

use firmware_protocol::crypto::keys::{
    Bdk, DataEncryption, DukptInitialKey, KeyAlgorithm, KeyBlockProtection, KeyBlockProtectionKey,
    KeyEncryption, KeyMaterial, KeyUsage, Mac, PinEncryption, PinVerification,
};
use firmware_protocol::crypto::tr31::{
    Algorithm, Exportability, Header, HeaderField, KeyContext, KeyLengthMasking, KeyUsageCode,
    KeyVersion, ModeOfUse, OptionalBlock, OptionalBlockId, Tr31Error, UnwrappedKey, Version,
    unwrap, wrap, wrap_with_padding,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{SeedableRng, TryCryptoRng, TryRng};
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorFile {
    wrap_unwrap: Vec<WrapVector>,
    unwrap_rejects: Vec<RejectVector>,
}

#[derive(Deserialize)]
struct WrapVector {
    name: String,
    kbpk: String,
    key: String,
    key_algorithm: String,
    block: String,
    padding: String,
    masking: String,
    header: HeaderFields,
}

#[derive(Deserialize)]
struct RejectVector {
    name: String,
    kbpk: String,
    block: String,
    error: String,
    header: HeaderFields,
}

#[derive(Deserialize)]
struct HeaderFields {
    version: String,
    key_usage: String,
    algorithm: String,
    mode_of_use: String,
    key_version: String,
    exportability: String,
    key_context: String,
    optional_blocks: Vec<(String, String)>,
}

fn vectors() -> VectorFile {
    serde_json::from_str(include_str!("vectors/tr31.json")).expect("tr31.json parses")
}

fn algorithm_of(name: &str) -> KeyAlgorithm {
    match name {
        "TDES" => KeyAlgorithm::Tdes,
        "AES" => KeyAlgorithm::Aes,
        other => panic!("unknown algorithm {other}"),
    }
}

/// The KBPK algorithm follows from its use: version B blocks are TDES, D blocks AES.
fn kbpk_for(block: &str, hex_key: &str) -> KeyBlockProtectionKey {
    let algorithm = if block.starts_with('B') {
        KeyAlgorithm::Tdes
    } else {
        KeyAlgorithm::Aes
    };
    KeyBlockProtectionKey::new(algorithm, &hex::decode(hex_key).unwrap()).unwrap()
}

fn assert_header_matches(header: &Header, expected: &HeaderFields, name: &str) {
    assert_eq!(header.version().to_string(), expected.version, "{name}");
    assert_eq!(header.key_usage().to_string(), expected.key_usage, "{name}");
    assert_eq!(header.algorithm().to_string(), expected.algorithm, "{name}");
    assert_eq!(
        header.mode_of_use().to_string(),
        expected.mode_of_use,
        "{name}"
    );
    assert_eq!(
        header.key_version().to_string(),
        expected.key_version,
        "{name}"
    );
    assert_eq!(
        header.exportability().to_string(),
        expected.exportability,
        "{name}"
    );
    assert_eq!(
        header.key_context().to_string(),
        expected.key_context,
        "{name}"
    );
    let blocks: Vec<(String, String)> = header
        .optional_blocks()
        .iter()
        .map(|b| (b.id().to_string(), b.data().to_string()))
        .collect();
    assert_eq!(blocks, expected.optional_blocks, "{name}");
}

/// Hands out pre-recorded bytes, so `wrap` with an RNG can be checked against a published
/// block; panics if asked for more than it holds.
struct ReplayRng {
    bytes: Vec<u8>,
    used: usize,
}

impl TryRng for ReplayRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut word = [0u8; 4];
        self.try_fill_bytes(&mut word)?;
        Ok(u32::from_be_bytes(word))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut word = [0u8; 8];
        self.try_fill_bytes(&mut word)?;
        Ok(u64::from_be_bytes(word))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.copy_from_slice(&self.bytes[self.used..self.used + dst.len()]);
        self.used += dst.len();
        Ok(())
    }
}

impl TryCryptoRng for ReplayRng {}

fn masking_of(name: &str) -> KeyLengthMasking {
    match name {
        "unmasked" => KeyLengthMasking::Unmasked,
        "algorithm_maximum" => KeyLengthMasking::AlgorithmMaximum,
        other => panic!("unknown masking {other}"),
    }
}

#[test]
fn published_blocks_unwrap_to_their_keys_and_headers() {
    let file = vectors();
    assert!(file.wrap_unwrap.len() >= 10);
    for v in &file.wrap_unwrap {
        let kbpk = kbpk_for(&v.block, &v.kbpk);
        let unwrapped = unwrap(&kbpk, &v.block).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(
            hex::encode_upper(unwrapped.material.reveal_bytes()),
            v.key,
            "{}",
            v.name
        );
        assert_eq!(
            unwrapped.material.algorithm(),
            algorithm_of(&v.key_algorithm),
            "{}",
            v.name
        );
        assert_header_matches(&unwrapped.header, &v.header, &v.name);
    }
}

#[test]
fn wrapping_with_the_published_padding_reproduces_each_block() {
    for v in &vectors().wrap_unwrap {
        let kbpk = kbpk_for(&v.block, &v.kbpk);
        let key = KeyMaterial::new(
            algorithm_of(&v.key_algorithm),
            &hex::decode(&v.key).unwrap(),
        )
        .unwrap();
        let padding = hex::decode(&v.padding).unwrap();

        // The header as an operator would type it: taken from the block's own header text.
        let header_len =
            v.block.len() - 2 * (2 + key.len() + padding.len()) - 2 * mac_len(&v.block);
        let header = Header::parse(&v.block[..header_len]).unwrap();
        assert_header_matches(&header, &v.header, &v.name);

        let block = wrap_with_padding(&kbpk, &header, &key, &padding).unwrap();
        assert_eq!(block, v.block, "{}", v.name);

        let mut rng = ReplayRng {
            bytes: padding.clone(),
            used: 0,
        };
        let block = wrap(&kbpk, &header, &key, masking_of(&v.masking), &mut rng).unwrap();
        assert_eq!(block, v.block, "{} (masking {})", v.name, v.masking);
        assert_eq!(rng.used, padding.len(), "{}", v.name);
    }
}

fn mac_len(block: &str) -> usize {
    if block.starts_with('B') { 8 } else { 16 }
}

#[test]
fn authenticated_blocks_with_unsupported_keys_are_refused_after_the_mac_check() {
    for v in &vectors().unwrap_rejects {
        let kbpk = kbpk_for(&v.block, &v.kbpk);
        let err = unwrap(&kbpk, &v.block).unwrap_err();
        assert!(
            format!("{err:?}").starts_with(&v.error),
            "{}: {err:?}",
            v.name
        );

        // The extended-length optional blocks (X9.143 8.5, 8.6) parse into the published
        // fields; the header text ends where the last optional block does.
        let header_len = header_text_len(&v.block);
        let header = Header::parse(&v.block[..header_len]).unwrap();
        assert_header_matches(&header, &v.header, &v.name);

        // With the KBPK changed the same blocks fail on the MAC: the error above came from
        // after a successful verification.
        let mut wrong = hex::decode(&v.kbpk).unwrap();
        wrong[0] ^= 0x10; // not bit 0: DES ignores parity bits
        let wrong_kbpk = kbpk_for(&v.block, &hex::encode(wrong));
        assert_eq!(
            unwrap(&wrong_kbpk, &v.block).unwrap_err(),
            Tr31Error::BadMac,
            "{}",
            v.name
        );
    }
}

/// Length of the header text, found by trying prefixes that end where parsing stops.
fn header_text_len(block: &str) -> usize {
    (16..block.len())
        .rev()
        .find(|&len| Header::parse(&block[..len]).is_ok())
        .expect("a header prefix parses")
}

#[test]
fn x9_143_extended_length_certificate_block_is_read_exactly() {
    let file = vectors();
    let ecc = file
        .unwrap_rejects
        .iter()
        .find(|v| v.name.contains("8.6"))
        .unwrap();
    let header = Header::parse(&ecc.block[..header_text_len(&ecc.block)]).unwrap();
    let ct = header.optional_block(OptionalBlockId::CT).unwrap();
    // "CT" "00" "04" "05CC": 1484 characters in all, 1474 of data.
    assert_eq!(ct.data().len(), 0x05CC - 10);
    assert!(ct.data().starts_with("020002F0MIIC"));
    assert_eq!(
        header.optional_block(OptionalBlockId::KP).unwrap().data(),
        "012331550BC9"
    );
    assert_eq!(
        header.optional_block(OptionalBlockId::TS).unwrap().data(),
        "20200818004100Z"
    );
    assert_eq!(
        header.optional_blocks().last().unwrap().id(),
        OptionalBlockId::PB
    );
}

// ----- key separation -------------------------------------------------------------------

fn tdes_kbpk() -> KeyBlockProtectionKey {
    KeyBlockProtectionKey::new(
        KeyAlgorithm::Tdes,
        &hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap(),
    )
    .unwrap()
}

fn aes_kbpk() -> KeyBlockProtectionKey {
    KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &[0x5A; 32]).unwrap()
}

fn aes_key() -> KeyMaterial {
    KeyMaterial::new(KeyAlgorithm::Aes, &[0x11; 16]).unwrap()
}

fn round_trip(header: &str) -> UnwrappedKey {
    let header = Header::parse(header).unwrap();
    let key = match header.algorithm() {
        Algorithm::Aes => aes_key(),
        _ => KeyMaterial::new(KeyAlgorithm::Tdes, &[0x22; 16]).unwrap(),
    };
    let kbpk = if header.version() == Version::B {
        tdes_kbpk()
    } else {
        aes_kbpk()
    };
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let block = wrap(&kbpk, &header, &key, KeyLengthMasking::default(), &mut rng).unwrap();
    unwrap(&kbpk, &block).unwrap()
}

#[test]
fn a_mac_key_block_is_refused_as_a_pin_key() {
    assert_eq!(
        round_trip("D0000M6AC00E0000")
            .into_key::<PinEncryption>()
            .unwrap_err(),
        Tr31Error::WrongUsage {
            expected: KeyUsage::PinEncryption,
            found: KeyUsageCode::M6,
        }
    );
    let mac_key = round_trip("D0000M6AC00E0000").into_key::<Mac>().unwrap();
    assert_eq!(mac_key.material().reveal_bytes(), &[0x11; 16]);

    // The same with the published TDES MAC key block (psec known value, usage M3).
    let v = vectors();
    let m3 = v
        .wrap_unwrap
        .iter()
        .find(|v| v.block.starts_with("B0096M3"))
        .unwrap();
    let unwrapped = unwrap(&kbpk_for(&m3.block, &m3.kbpk), &m3.block).unwrap();
    assert!(matches!(
        unwrapped.into_key::<PinEncryption>(),
        Err(Tr31Error::WrongUsage {
            found: KeyUsageCode::M3,
            ..
        })
    ));
}

#[test]
fn a_pin_key_block_becomes_a_pin_key_and_nothing_else() {
    let pin_key = round_trip("D0000P0AE00E0000")
        .into_key::<PinEncryption>()
        .unwrap();
    assert_eq!(pin_key.usage(), KeyUsage::PinEncryption);
    assert!(round_trip("D0000P0AE00E0000").into_key::<Mac>().is_err());
    assert!(
        round_trip("D0000P0AE00E0000")
            .into_key::<DataEncryption>()
            .is_err()
    );
    assert!(
        round_trip("D0000P0AE00E0000")
            .into_key::<KeyBlockProtection>()
            .is_err()
    );
}

#[test]
fn each_usage_code_maps_to_its_typed_key() {
    assert!(round_trip("B0000B0TX00N0000").into_key::<Bdk>().is_ok());
    assert!(
        round_trip("B0000B1TX00N0000")
            .into_key::<DukptInitialKey>()
            .is_ok()
    );
    assert!(
        round_trip("D0000D0AB00N0000")
            .into_key::<DataEncryption>()
            .is_ok()
    );
    assert!(
        round_trip("D0000K0AD00N0000")
            .into_key::<KeyEncryption>()
            .is_ok()
    );
    assert!(
        round_trip("D0000K1AB00N0000")
            .into_key::<KeyBlockProtection>()
            .is_ok()
    );
    assert!(round_trip("B0000M3TC00N0000").into_key::<Mac>().is_ok());
    assert!(
        round_trip("B0000V2TC00N0000")
            .into_key::<PinVerification>()
            .is_ok()
    );
    // K0 is not K1: a generic KEK cannot protect key blocks, and the reverse.
    assert!(
        round_trip("D0000K0AB00N0000")
            .into_key::<KeyBlockProtection>()
            .is_err()
    );
    assert!(
        round_trip("D0000K1AB00N0000")
            .into_key::<KeyEncryption>()
            .is_err()
    );
    // Usages without a typed key in this crate are refused for every type.
    assert!(round_trip("D0000C0AC00N0000").into_key::<Mac>().is_err());
}

#[test]
fn the_mode_of_use_must_fit_the_usage() {
    assert_eq!(
        round_trip("D0000P0AG00E0000")
            .into_key::<PinEncryption>()
            .unwrap_err(),
        Tr31Error::ModeOfUseNotAllowed {
            usage: KeyUsage::PinEncryption,
            mode: ModeOfUse::MacGenerateOnly,
        }
    );
    assert!(round_trip("D0000M6AE00E0000").into_key::<Mac>().is_err());
    assert!(round_trip("B0000B0TB00E0000").into_key::<Bdk>().is_err());
    for mode in ['B', 'D', 'E', 'N'] {
        let header = format!("D0000P0A{mode}00E0000");
        assert!(
            round_trip(&header).into_key::<PinEncryption>().is_ok(),
            "{header}"
        );
    }
    for mode in ['C', 'G', 'V', 'N'] {
        let header = format!("D0000M6A{mode}00E0000");
        assert!(round_trip(&header).into_key::<Mac>().is_ok(), "{header}");
    }
}

// ----- header parsing -------------------------------------------------------------------

#[test]
fn header_text_parses_into_typed_fields() {
    let header: Header = "D0112P0AE00E0000".parse().unwrap();
    assert_eq!(header.version(), Version::D);
    assert_eq!(header.key_usage(), KeyUsageCode::P0);
    assert_eq!(header.algorithm(), Algorithm::Aes);
    assert_eq!(header.mode_of_use(), ModeOfUse::EncryptOnly);
    assert!(header.key_version().is_unused());
    assert_eq!(header.exportability(), Exportability::Exportable);
    assert_eq!(header.key_context(), KeyContext::StorageOrExchange);
    assert!(header.optional_blocks().is_empty());

    let header = Header::parse("B0000B0TX12S0100KS1800604B120F9292800000").unwrap();
    assert_eq!(header.key_version().to_string(), "12");
    assert_eq!(header.exportability(), Exportability::Sensitive);
    assert_eq!(
        header
            .optional_block(OptionalBlockId::KS)
            .map(OptionalBlock::data),
        Some("00604B120F9292800000")
    );

    let header = Header::parse("D0000P0AEc1N0020").unwrap();
    assert_eq!(header.key_version().component_number(), Some('1'));
    assert_eq!(header.key_context(), KeyContext::ExchangeOnly);
}

#[test]
fn numeric_usage_codes_are_proprietary_and_accepted() {
    let header = Header::parse("D000042AE00E0000").unwrap();
    assert!(matches!(header.key_usage(), KeyUsageCode::Proprietary(code) if code.value() == 42));
    assert_eq!(header.key_usage().to_string(), "42");
    assert!(
        round_trip("D000042AE00E0000")
            .into_key::<PinEncryption>()
            .is_err()
    );
}

fn invalid(field: HeaderField, found: &str) -> Tr31Error {
    Tr31Error::InvalidField {
        field,
        found: found.to_string(),
    }
}

#[test]
fn every_fixed_header_field_is_checked() {
    let cases = [
        (
            "D01X2P0AE00E0000",
            invalid(HeaderField::BlockLength, "01X2"),
        ),
        ("D0112Z9AE00E0000", invalid(HeaderField::KeyUsage, "Z9")),
        ("D0112P?AE00E0000", invalid(HeaderField::KeyUsage, "P?")),
        ("D0112P0QE00E0000", invalid(HeaderField::Algorithm, "Q")),
        ("D0112P0AQ00E0000", invalid(HeaderField::ModeOfUse, "Q")),
        ("D0112P0AE0_E0000", invalid(HeaderField::KeyVersion, "0_")),
        ("D0112P0AE00X0000", invalid(HeaderField::Exportability, "X")),
        (
            "D0112P0AE00E0X00",
            invalid(HeaderField::OptionalBlockCount, "0X"),
        ),
        ("D0112P0AE00E0030", invalid(HeaderField::KeyContext, "3")),
        ("D0112P0AE00E0001", invalid(HeaderField::Reserved, "1")),
        (
            "A0112P0AE00E0000",
            Tr31Error::UnsupportedVersion { found: 'A' },
        ),
        (
            "C0112P0AE00E0000",
            Tr31Error::UnsupportedVersion { found: 'C' },
        ),
        ("D0112P0AE00E000", Tr31Error::HeaderTooShort { len: 15 }),
        (
            "D0112P0AE00E0000X",
            Tr31Error::TrailingCharacters { offset: 16 },
        ),
        (
            "D0112P0AE00E\u{7}000",
            Tr31Error::NotPrintableAscii { offset: 12 },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(Header::parse(text).unwrap_err(), expected, "{text}");
    }
}

#[test]
fn optional_blocks_are_parsed_strictly() {
    let truncated = Tr31Error::OptionalBlockTruncated { index: 0 };
    let bad_length = Tr31Error::InvalidOptionalBlockLength { index: 0 };
    let cases = [
        ("B0000P0TE00N0100", truncated.clone()),
        ("B0000P0TE00N0100KS1", truncated.clone()),
        ("B0000P0TE00N0100KS071", truncated.clone()),
        ("B0000P0TE00N0100KS1Y", bad_length.clone()),
        ("B0000P0TE00N0100KS0a12", bad_length.clone()),
        ("B0000P0TE00N0100KS02", bad_length.clone()),
        ("B0000P0TE00N0100KS00", truncated.clone()),
        ("B0000P0TE00N0100KS0000", bad_length.clone()),
        ("B0000P0TE00N0100KS0005", bad_length.clone()),
        ("B0000P0TE00N0100KS0002", truncated.clone()),
        ("B0000P0TE00N0100KS000205", bad_length.clone()),
        ("B0000P0TE00N0100KS0001FF", truncated),
        (
            "B0000P0TE00N0100TT04",
            Tr31Error::UnknownOptionalBlockId {
                index: 0,
                found: "TT".to_string(),
            },
        ),
        (
            "B0000P0TE00N0200KS04KS04",
            Tr31Error::DuplicateOptionalBlock {
                id: OptionalBlockId::KS,
            },
        ),
        ("B0000P0TE00N0200PB04KS04", Tr31Error::PaddingBlockNotLast),
        (
            "B0000P0TE00N0200KS0600TT",
            Tr31Error::OptionalBlockTruncated { index: 1 },
        ),
        (
            "B0000P0TE00N0100KS06\u{7f}0",
            Tr31Error::NotPrintableAscii { offset: 20 },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(Header::parse(text).unwrap_err(), expected, "{text}");
    }
    // Extended length with a 2-digit length field, and numeric (proprietary) IDs.
    let header = Header::parse("B0000P0TE00N0200KS00020CABCD9904").unwrap();
    assert_eq!(header.optional_blocks()[0].data(), "ABCD");
    assert_eq!(header.optional_blocks()[1].id().to_string(), "99");
}

#[test]
fn optional_block_builders_keep_the_rules() {
    let header = Header::parse("D0000P0AE00E0000").unwrap();
    let ks = OptionalBlock::new(OptionalBlockId::KS, "00604B120F9292800000").unwrap();
    let header = header.with_optional_block(ks.clone()).unwrap();
    assert_eq!(
        header.clone().with_optional_block(ks).unwrap_err(),
        Tr31Error::DuplicateOptionalBlock {
            id: OptionalBlockId::KS
        }
    );
    let pb = OptionalBlock::new(OptionalBlockId::PB, "0000").unwrap();
    let header = header.with_optional_block(pb).unwrap();
    let lb = OptionalBlock::new(OptionalBlockId::LB, "label").unwrap();
    assert_eq!(
        header.with_optional_block(lb).unwrap_err(),
        Tr31Error::PaddingBlockNotLast
    );
    assert_eq!(
        OptionalBlock::new(OptionalBlockId::LB, "tab\there").unwrap_err(),
        Tr31Error::OptionalBlockNotPrintable {
            id: OptionalBlockId::LB
        }
    );
}

// ----- wrap -----------------------------------------------------------------------------

#[test]
fn wrap_adds_a_padding_block_when_optional_blocks_are_not_aligned() {
    let header = Header::parse("D0000B1AX00N0100IK140123456789ABCDEF").unwrap();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let block = wrap(
        &aes_kbpk(),
        &header,
        &aes_key(),
        KeyLengthMasking::default(),
        &mut rng,
    )
    .unwrap();
    // 20 characters of IK + a 12-character PB = 32, two AES blocks.
    assert!(
        block.starts_with("D0176B1AX00N0200IK140123456789ABCDEFPB0C00000000"),
        "{block}"
    );
    let unwrapped = unwrap(&aes_kbpk(), &block).unwrap();
    assert_eq!(unwrapped.header.optional_blocks().len(), 2);
    // Re-wrapping the unwrapped header keeps its padding block as it is.
    let again = wrap(
        &aes_kbpk(),
        &unwrapped.header,
        &aes_key(),
        KeyLengthMasking::default(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(&again[..48], &block[..48]);

    // A padding block that does not align is an error, not silently replaced.
    let header = Header::parse("D0000B1AX00N0200IK140123456789ABCDEFPB04").unwrap();
    assert_eq!(
        wrap(
            &aes_kbpk(),
            &header,
            &aes_key(),
            KeyLengthMasking::default(),
            &mut rng
        )
        .unwrap_err(),
        Tr31Error::OptionalBlocksNotAligned {
            len: 24,
            block_size: 16
        }
    );
}

#[test]
fn masking_hides_the_key_length_within_an_algorithm() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let aes_header = Header::parse("D0000D0AB00E0000").unwrap();
    let lengths: Vec<usize> = [16, 24, 32]
        .iter()
        .map(|&len| {
            let key = KeyMaterial::new(KeyAlgorithm::Aes, &vec![7; len]).unwrap();
            wrap(
                &aes_kbpk(),
                &aes_header,
                &key,
                KeyLengthMasking::AlgorithmMaximum,
                &mut rng,
            )
            .unwrap()
            .len()
        })
        .collect();
    assert_eq!(lengths, [144, 144, 144]);

    let tdes_header = Header::parse("B0000D0TB00E0000").unwrap();
    for len in [16, 24] {
        let key = KeyMaterial::new(KeyAlgorithm::Tdes, &vec![7; len]).unwrap();
        let block = wrap(
            &tdes_kbpk(),
            &tdes_header,
            &key,
            KeyLengthMasking::default(),
            &mut rng,
        )
        .unwrap();
        assert_eq!(block.len(), 96, "TDES-{}", len * 8);
    }

    let key = aes_key();
    let unmasked = wrap(
        &aes_kbpk(),
        &aes_header,
        &key,
        KeyLengthMasking::Unmasked,
        &mut rng,
    )
    .unwrap();
    assert_eq!(unmasked.len(), 112);
    let masked_64 = wrap(
        &aes_kbpk(),
        &aes_header,
        &key,
        KeyLengthMasking::MaskedLength(64),
        &mut rng,
    )
    .unwrap();
    assert_eq!(masked_64.len(), 16 + 2 * 80 + 32);
    assert_eq!(
        unwrap(&aes_kbpk(), &masked_64)
            .unwrap()
            .material
            .reveal_bytes(),
        &[0x11; 16]
    );
    assert_eq!(
        wrap(
            &aes_kbpk(),
            &aes_header,
            &key,
            KeyLengthMasking::MaskedLength(8),
            &mut rng
        )
        .unwrap_err(),
        Tr31Error::MaskedLengthTooShort {
            masked: 8,
            key_len: 16
        }
    );
    assert!(matches!(
        wrap(
            &aes_kbpk(),
            &aes_header,
            &key,
            KeyLengthMasking::MaskedLength(usize::MAX),
            &mut rng
        ),
        Err(Tr31Error::BlockTooLong { .. })
    ));
}

#[test]
fn wrap_rejects_inconsistent_inputs() {
    let aes_header = Header::parse("D0000P0AE00E0000").unwrap();
    let tdes_header = Header::parse("D0000P0TE00E0000").unwrap();
    let tdes_key = KeyMaterial::new(KeyAlgorithm::Tdes, &[3; 16]).unwrap();
    assert_eq!(
        wrap_with_padding(&aes_kbpk(), &aes_header, &tdes_key, &[0; 14]).unwrap_err(),
        Tr31Error::KeyAlgorithmMismatch {
            header: Algorithm::Aes,
            key: KeyAlgorithm::Tdes,
            len: 16
        }
    );
    let single_des = KeyMaterial::new(KeyAlgorithm::Tdes, &[3; 8]).unwrap();
    assert!(matches!(
        wrap_with_padding(&aes_kbpk(), &tdes_header, &single_des, &[0; 6]),
        Err(Tr31Error::KeyAlgorithmMismatch { len: 8, .. })
    ));
    assert_eq!(
        wrap_with_padding(&aes_kbpk(), &aes_header, &aes_key(), &[0; 13]).unwrap_err(),
        Tr31Error::InvalidPaddingLength {
            key_len: 16,
            padding_len: 13,
            block_size: 16
        }
    );
    assert_eq!(
        wrap_with_padding(&tdes_kbpk(), &aes_header, &aes_key(), &[0; 14]).unwrap_err(),
        Tr31Error::WrongKbpk {
            version: Version::D,
            algorithm: KeyAlgorithm::Tdes,
            len: 16
        }
    );
    let rsa_header = Header::parse("D0000S0RS00N0000").unwrap();
    assert_eq!(
        wrap_with_padding(&aes_kbpk(), &rsa_header, &aes_key(), &[0; 14]).unwrap_err(),
        Tr31Error::UnsupportedKeyAlgorithm {
            algorithm: Algorithm::Rsa
        }
    );
    let label = "L".repeat(9990);
    let huge = aes_header
        .clone()
        .with_optional_block(OptionalBlock::new(OptionalBlockId::LB, &label).unwrap())
        .unwrap();
    assert!(matches!(
        wrap_with_padding(&aes_kbpk(), &huge, &aes_key(), &[0; 14]),
        Err(Tr31Error::BlockTooLong { .. })
    ));
    // A single-length DES key is wrapped under algorithm D.
    let des_header = Header::parse("B0000D0DB00E0000").unwrap();
    let block = wrap_with_padding(&tdes_kbpk(), &des_header, &single_des, &[0; 6]).unwrap();
    assert_eq!(
        unwrap(&tdes_kbpk(), &block)
            .unwrap()
            .material
            .reveal_bytes(),
        &[3; 8]
    );
}

// ----- unwrap failures ------------------------------------------------------------------

fn published_d_block() -> (KeyBlockProtectionKey, String) {
    let v = vectors();
    let d = v
        .wrap_unwrap
        .iter()
        .find(|v| v.block.starts_with("D0112P0"))
        .unwrap();
    (kbpk_for(&d.block, &d.kbpk), d.block.clone())
}

#[test]
fn unwrap_reports_what_is_wrong() {
    let (kbpk, block) = published_d_block();

    let lower = block.replacen("B826", "b826", 1);
    assert_eq!(
        unwrap(&kbpk, &lower).unwrap_err(),
        Tr31Error::InvalidHex { offset: 16 }
    );

    let mut longer = block.clone();
    longer.push('0');
    assert_eq!(
        unwrap(&kbpk, &longer).unwrap_err(),
        Tr31Error::LengthMismatch {
            declared: 112,
            actual: 113
        }
    );

    let short = format!("D0040{}{}", &block[5..16], &block[16..40]);
    assert_eq!(
        unwrap(&kbpk, &short).unwrap_err(),
        Tr31Error::MacTruncated {
            found: 24,
            expected: 32
        }
    );
    let ragged = format!("D0056{}{}", &block[5..16], &block[block.len() - 40..]);
    assert_eq!(
        unwrap(&kbpk, &ragged).unwrap_err(),
        Tr31Error::EncryptedKeyLength {
            hex_chars: 8,
            block_size: 16
        }
    );
    let unaligned = "B0054P0TE00N0100KS06AB0123456789ABCDEF0123456789ABCDEF";
    assert_eq!(
        unwrap(&tdes_kbpk(), unaligned).unwrap_err(),
        Tr31Error::OptionalBlocksNotAligned {
            len: 6,
            block_size: 8
        }
    );

    assert_eq!(
        unwrap(&tdes_kbpk(), &block).unwrap_err(),
        Tr31Error::WrongKbpk {
            version: Version::D,
            algorithm: KeyAlgorithm::Tdes,
            len: 16
        }
    );
    let single = KeyBlockProtectionKey::new(KeyAlgorithm::Tdes, &[1; 8]).unwrap();
    let b_block = vectors().wrap_unwrap[0].block.clone();
    assert_eq!(
        unwrap(&single, &b_block).unwrap_err(),
        Tr31Error::WrongKbpk {
            version: Version::B,
            algorithm: KeyAlgorithm::Tdes,
            len: 8
        }
    );
    assert_eq!(unwrap(&aes_kbpk(), &block).unwrap_err(), Tr31Error::BadMac);
}

#[test]
fn every_single_character_change_is_rejected() {
    let file = vectors();
    let mut blocks: Vec<(KeyBlockProtectionKey, String)> = file
        .wrap_unwrap
        .iter()
        .map(|v| (kbpk_for(&v.block, &v.kbpk), v.block.clone()))
        .collect();
    let header = Header::parse("D0000B1AX00N0100IK140123456789ABCDEF").unwrap();
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    blocks.push((
        aes_kbpk(),
        wrap(
            &aes_kbpk(),
            &header,
            &aes_key(),
            KeyLengthMasking::default(),
            &mut rng,
        )
        .unwrap(),
    ));
    for (kbpk, block) in &blocks {
        let header_len = block.len() - 2 * mac_len(block) - hex_field_len(kbpk, block);
        for position in 0..block.len() {
            for replacement in ['0', 'A', 'z'] {
                let original = block.as_bytes()[position] as char;
                if original == replacement {
                    continue;
                }
                let mut mutated = block.clone();
                mutated.replace_range(position..=position, &replacement.to_string());
                let err = unwrap(kbpk, &mutated)
                    .err()
                    .unwrap_or_else(|| panic!("{mutated} unwrapped"));
                if position >= header_len && replacement.is_ascii_hexdigit() {
                    // Encrypted field and MAC: the MAC covers every bit.
                    assert_eq!(err, Tr31Error::BadMac, "{mutated}");
                }
            }
        }
    }
}

/// Hex characters of the encrypted key field of a valid block.
fn hex_field_len(kbpk: &KeyBlockProtectionKey, block: &str) -> usize {
    let unwrapped = unwrap(kbpk, block).unwrap();
    let header_len = header_text_len(block);
    assert_eq!(
        Header::parse(&block[..header_len]).unwrap(),
        unwrapped.header
    );
    block.len() - header_len - 2 * mac_len(block)
}

#[test]
fn debug_output_of_an_unwrapped_key_hides_the_key() {
    let (kbpk, block) = published_d_block();
    let unwrapped = unwrap(&kbpk, &block).unwrap();
    let shown = format!("{unwrapped:?}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.to_uppercase().contains("3F419E1C"), "{shown}");
}

#[test]
fn error_messages_name_the_problem() {
    let err = Header::parse("D0112Z9AE00E0000").unwrap_err();
    assert_eq!(err.to_string(), "invalid key usage \"Z9\"");
    let err = Tr31Error::WrongKbpk {
        version: Version::B,
        algorithm: KeyAlgorithm::Aes,
        len: 16,
    };
    assert_eq!(
        err.to_string(),
        "version B key blocks need a 2- or 3-key TDES KBPK, the KBPK is AES-128"
    );
    let _ = KeyVersion::new("0_").unwrap_err();
    assert_eq!(KeyVersion::new("12").unwrap().to_string(), "12");
}

// ----- properties -----------------------------------------------------------------------

fn usage_and_mode() -> impl Strategy<Value = (&'static str, char)> {
    prop_oneof![
        Just(("P0", 'E')),
        Just(("P0", 'B')),
        Just(("M3", 'C')),
        Just(("M6", 'G')),
        Just(("K0", 'B')),
        Just(("K1", 'D')),
        Just(("D0", 'B')),
        Just(("B0", 'X')),
        Just(("B1", 'X')),
        Just(("V2", 'V')),
        Just(("42", 'N')),
    ]
}

fn key_spec() -> impl Strategy<Value = (KeyAlgorithm, char, usize)> {
    prop_oneof![
        Just((KeyAlgorithm::Tdes, 'T', 16)),
        Just((KeyAlgorithm::Tdes, 'T', 24)),
        Just((KeyAlgorithm::Tdes, 'D', 8)),
        Just((KeyAlgorithm::Aes, 'A', 16)),
        Just((KeyAlgorithm::Aes, 'A', 24)),
        Just((KeyAlgorithm::Aes, 'A', 32)),
    ]
}

fn kbpk_spec() -> impl Strategy<Value = (char, KeyAlgorithm, usize)> {
    prop_oneof![
        Just(('B', KeyAlgorithm::Tdes, 16)),
        Just(('B', KeyAlgorithm::Tdes, 24)),
        Just(('D', KeyAlgorithm::Aes, 16)),
        Just(('D', KeyAlgorithm::Aes, 24)),
        Just(('D', KeyAlgorithm::Aes, 32)),
    ]
}

proptest! {
    #[test]
    fn wrap_then_unwrap_returns_key_and_header(
        (version, kbpk_alg, kbpk_len) in kbpk_spec(),
        (key_alg, alg_char, key_len) in key_spec(),
        (usage, mode) in usage_and_mode(),
        seed in any::<[u8; 32]>(),
        label in "[ -~]{0,40}",
        masking in prop_oneof![
            Just(KeyLengthMasking::AlgorithmMaximum),
            Just(KeyLengthMasking::Unmasked),
            (32usize..80).prop_map(KeyLengthMasking::MaskedLength),
        ],
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut kbpk_bytes = vec![0u8; kbpk_len];
        TryRng::try_fill_bytes(&mut rng, &mut kbpk_bytes).unwrap();
        let kbpk = KeyBlockProtectionKey::new(kbpk_alg, &kbpk_bytes).unwrap();
        let mut key_bytes = vec![0u8; key_len];
        TryRng::try_fill_bytes(&mut rng, &mut key_bytes).unwrap();
        let key = KeyMaterial::new(key_alg, &key_bytes).unwrap();

        let mut header = Header::parse(&format!("{version}0000{usage}{alg_char}{mode}01E0010")).unwrap();
        if !label.is_empty() {
            header = header
                .with_optional_block(OptionalBlock::new(OptionalBlockId::LB, &label).unwrap())
                .unwrap();
        }
        let block = wrap(&kbpk, &header, &key, masking, &mut rng).unwrap();
        prop_assert_eq!(block.len(), block[1..5].parse::<usize>().unwrap());
        let unwrapped = unwrap(&kbpk, &block).unwrap();
        prop_assert_eq!(unwrapped.material.reveal_bytes(), &key_bytes[..]);
        prop_assert_eq!(unwrapped.material.algorithm(), key_alg);
        // The header comes back as given, plus a padding block if one was needed.
        let mut returned = unwrapped.header.optional_blocks().to_vec();
        if returned.last().map(OptionalBlock::id) == Some(OptionalBlockId::PB) {
            returned.pop();
        }
        prop_assert_eq!(&returned[..], header.optional_blocks());
        prop_assert_eq!(unwrapped.header.key_usage(), header.key_usage());
        prop_assert_eq!(unwrapped.header.mode_of_use(), header.mode_of_use());
        prop_assert_eq!(unwrapped.header.key_context(), KeyContext::StorageOnly);
    }

    #[test]
    fn mutated_blocks_never_unwrap(
        seed in any::<[u8; 32]>(),
        position in any::<prop::sample::Index>(),
        replacement in 0x20u8..=0x7E,
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let header = Header::parse("B0000P0TE00E0100KS1800604B120F9292800000").unwrap();
        let key = KeyMaterial::new(KeyAlgorithm::Tdes, &[0x44; 16]).unwrap();
        let block = wrap(&tdes_kbpk(), &header, &key, KeyLengthMasking::default(), &mut rng).unwrap();
        let i = position.index(block.len());
        prop_assume!(block.as_bytes()[i] != replacement);
        let mut mutated = block.into_bytes();
        mutated[i] = replacement;
        let mutated = String::from_utf8(mutated).unwrap();
        prop_assert!(unwrap(&tdes_kbpk(), &mutated).is_err());
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = unwrap(&tdes_kbpk(), &text);
        let _ = unwrap(&aes_kbpk(), &text);
        let _ = Header::parse(&text);
    }

    #[test]
    fn header_like_text_never_panics(
        body in "[BD][0-9]{4}(P0|M3|K1|B0|42|ZZ)[ATDRQ][BCDEGNXQ](00|c1|1_)[ENSX]0[0-3][0-2]0[0-9A-Za-z]{0,120}",
        fix_length in any::<bool>(),
    ) {
        let text = if fix_length && body.len() <= 9999 {
            format!("{}{:04}{}", &body[..1], body.len(), &body[5..])
        } else {
            body
        };
        let _ = unwrap(&tdes_kbpk(), &text);
        let _ = unwrap(&aes_kbpk(), &text);
        let _ = Header::parse(&text);
    }
}
