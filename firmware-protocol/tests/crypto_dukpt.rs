//! DUKPT known answers (tests/vectors/dukpt.json: X9.24-3-2017 Supplement, X9.24-1-2009
//! Annex A.4) and properties.
// A test fails by panicking; vector-file mistakes should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firmware_protocol::crypto::dukpt::aes::{
    self, AesDerivationKey, AesDukptKeyType, AesKsn, InitialKeyId,
};
use firmware_protocol::crypto::dukpt::tdes::{self, TdesDerivationKey, TdesKsn};
use firmware_protocol::crypto::dukpt::{
    DukptError, DukptScheme, DukptUsage, DukptWorkingKey, derive_working_key,
};
use firmware_protocol::crypto::keys::{
    BaseDerivationKey, DukptInitialKeyKey, KeyAlgorithm, KeyError, KeyMaterial, KeyUsage,
};
use firmware_protocol::crypto::primitives::BlockCipher;
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    sources: std::collections::BTreeMap<String, String>,
    aes: AesVectors,
    tdes: TdesVectors,
}

#[derive(Deserialize)]
struct AesVectors {
    initial_keys: Vec<AesInitialKey>,
    derivation_keys: Vec<AesDerivation>,
    working_keys: Vec<AesWorking>,
    rejected: Vec<AesRejected>,
    counter_sequences: Vec<CounterSequence>,
}

#[derive(Deserialize)]
struct AesInitialKey {
    bdk: String,
    initial_key_id: String,
    initial_key: String,
    source: String,
}

#[derive(Deserialize)]
struct AesDerivation {
    bdk: String,
    ksn: String,
    derivation_key: String,
    source: String,
}

#[derive(Deserialize)]
struct AesWorking {
    bdk: String,
    ksn: String,
    usage: String,
    key_type: String,
    working_key: String,
    source: String,
}

#[derive(Deserialize)]
struct AesRejected {
    bdk: String,
    ksn: String,
    usage: String,
    key_type: String,
    error: String,
}

#[derive(Deserialize)]
struct CounterSequence {
    start: String,
    next: Vec<String>,
    #[serde(default)]
    exhausted_after_last: bool,
}

#[derive(Deserialize)]
struct TdesVectors {
    bdk: String,
    initial_ksn: String,
    ipek: String,
    source: String,
    current_keys: Vec<TdesCurrent>,
    working_keys: Vec<TdesWorking>,
    pin_blocks: TdesPinBlocks,
    mac_and_data: TdesMacAndData,
    rejected: Vec<TdesRejected>,
    counter_sequences: Vec<CounterSequence>,
}

#[derive(Deserialize)]
struct TdesCurrent {
    ksn: String,
    current_key: String,
}

#[derive(Deserialize)]
struct TdesWorking {
    ksn: String,
    usage: String,
    working_key: String,
}

#[derive(Deserialize)]
struct TdesPinBlocks {
    clear_pin_block: String,
    encrypted: Vec<TdesEncryptedPinBlock>,
}

#[derive(Deserialize)]
struct TdesEncryptedPinBlock {
    ksn: String,
    encrypted_pin_block: String,
}

#[derive(Deserialize)]
struct TdesMacAndData {
    data_ascii: String,
    cases: Vec<TdesMacAndDataCase>,
}

#[derive(Deserialize)]
struct TdesMacAndDataCase {
    ksn: String,
    mac_request: String,
    mac_response: String,
    data_request_ciphertext: String,
    data_response_ciphertext: String,
}

#[derive(Deserialize)]
struct TdesRejected {
    ksn: String,
    usage: String,
    error: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("vectors/dukpt.json")).expect("vector file parses")
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("vector hex")
}

fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn usage(name: &str) -> DukptUsage {
    match name {
        "pin" => DukptUsage::PinEncryption,
        "mac-generation" => DukptUsage::MacGeneration,
        "mac-verification" => DukptUsage::MacVerification,
        "mac-both" => DukptUsage::MacBothWays,
        "data-encrypt" => DukptUsage::DataEncryption,
        "data-decrypt" => DukptUsage::DataDecryption,
        "data-both" => DukptUsage::DataBothWays,
        "key-encryption" => DukptUsage::KeyEncryption,
        other => panic!("unknown usage {other} in vector file"),
    }
}

fn key_type(name: &str) -> AesDukptKeyType {
    match name {
        "TDES-2" => AesDukptKeyType::Tdes2,
        "TDES-3" => AesDukptKeyType::Tdes3,
        "AES-128" => AesDukptKeyType::Aes128,
        "AES-192" => AesDukptKeyType::Aes192,
        "AES-256" => AesDukptKeyType::Aes256,
        other => panic!("unknown key type {other} in vector file"),
    }
}

fn error_matches(error: &DukptError, name: &str) -> bool {
    match name {
        "counter-zero" => matches!(error, DukptError::CounterZero),
        "counter-too-many-one-bits" => matches!(error, DukptError::CounterTooManyOneBits { .. }),
        "working-key-too-strong" => matches!(error, DukptError::WorkingKeyTooStrong { .. }),
        "usage-not-in-scheme" => matches!(error, DukptError::UsageNotInScheme { .. }),
        "ksn-length" => matches!(error, DukptError::KsnLength { .. }),
        other => panic!("unknown error name {other} in vector file"),
    }
}

fn aes_bdk(text: &str) -> BaseDerivationKey {
    BaseDerivationKey::new(KeyAlgorithm::Aes, &unhex(text)).expect("AES BDK")
}

fn tdes_bdk(text: &str) -> BaseDerivationKey {
    BaseDerivationKey::new(KeyAlgorithm::Tdes, &unhex(text)).expect("TDES BDK")
}

#[test]
fn every_vector_names_a_documented_source() {
    let v = vectors();
    let aes_sources = v
        .aes
        .initial_keys
        .iter()
        .map(|k| &k.source)
        .chain(v.aes.derivation_keys.iter().map(|k| &k.source))
        .chain(v.aes.working_keys.iter().map(|k| &k.source));
    for source in aes_sources.chain(std::iter::once(&v.tdes.source)) {
        assert!(
            v.sources.contains_key(source),
            "undocumented source {source}"
        );
    }
}

// ---------------------------------------------------------------- AES DUKPT (X9.24-3-2017)

#[test]
fn aes_initial_keys_match_the_supplement() {
    let v = vectors();
    assert!(!v.aes.initial_keys.is_empty());
    for case in &v.aes.initial_keys {
        let id = InitialKeyId::parse(&unhex(&case.initial_key_id)).unwrap();
        let ik = aes::derive_initial_key(&aes_bdk(&case.bdk), id).unwrap();
        assert_eq!(ik.algorithm(), KeyAlgorithm::Aes);
        assert_eq!(upper_hex(ik.material().reveal_bytes()), case.initial_key);
    }
}

#[test]
fn aes_derivation_keys_per_counter_match_the_supplement() {
    let v = vectors();
    assert!(v.aes.derivation_keys.len() >= 15);
    for case in &v.aes.derivation_keys {
        let ksn = AesKsn::parse(&unhex(&case.ksn)).unwrap();
        let ik = aes::derive_initial_key(&aes_bdk(&case.bdk), ksn.initial_key_id()).unwrap();
        let key = AesDerivationKey::for_ksn(&ik, &ksn).unwrap();
        assert_eq!(key.counter(), ksn.counter());
        assert_eq!(
            upper_hex(key.material().reveal_bytes()),
            case.derivation_key,
            "KSN {}",
            case.ksn
        );
    }
}

#[test]
fn aes_working_keys_match_the_supplement_for_every_usage_and_type() {
    let v = vectors();
    assert!(v.aes.working_keys.len() >= 50);
    for case in &v.aes.working_keys {
        let bdk = aes_bdk(&case.bdk);
        let ksn = AesKsn::parse(&unhex(&case.ksn)).unwrap();
        let usage = usage(&case.usage);
        let key_type = key_type(&case.key_type);
        let key = aes::derive_working_key(&bdk, &ksn, usage, key_type).unwrap();
        let what = format!("{} {} {} {}", case.bdk, case.ksn, case.usage, case.key_type);
        assert_eq!(
            upper_hex(key.material().reveal_bytes()),
            case.working_key,
            "{what}"
        );
        assert_eq!(key.material().algorithm(), key_type.algorithm(), "{what}");
        assert_eq!(key.key_usage(), usage.key_usage(), "{what}");

        // The PIN pad's path (initial key only) gives the same key as the host's (BDK).
        let ik = aes::derive_initial_key(&bdk, ksn.initial_key_id()).unwrap();
        let from_ik = aes::derive_working_key_from_initial_key(&ik, &ksn, usage, key_type).unwrap();
        assert_eq!(
            from_ik.material().reveal_bytes(),
            key.material().reveal_bytes()
        );
    }
}

#[test]
fn aes_one_call_host_derivation_defaults_to_the_bdk_type() {
    let v = vectors();
    let mut checked = 0;
    for case in &v.aes.working_keys {
        let bdk = aes_bdk(&case.bdk);
        if AesDukptKeyType::of_bdk(&bdk).unwrap() != key_type(&case.key_type) {
            continue;
        }
        let key = derive_working_key(
            DukptScheme::Aes,
            &bdk,
            &unhex(&case.ksn),
            usage(&case.usage),
        )
        .unwrap();
        assert_eq!(upper_hex(key.material().reveal_bytes()), case.working_key);
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} default-type vectors");
}

#[test]
fn aes_refused_requests_give_the_specific_error() {
    let v = vectors();
    for case in &v.aes.rejected {
        let bdk = aes_bdk(&case.bdk);
        let result = AesKsn::parse(&unhex(&case.ksn)).and_then(|ksn| {
            aes::derive_working_key(&bdk, &ksn, usage(&case.usage), key_type(&case.key_type))
        });
        let error = result.expect_err(&case.ksn);
        assert!(
            error_matches(&error, &case.error),
            "{}: {error:?}",
            case.ksn
        );
    }
}

#[test]
fn aes_counter_sequences_skip_invalid_counters_and_end() {
    let v = vectors();
    for sequence in &v.aes.counter_sequences {
        let mut counter = u32::from_str_radix(&sequence.start, 16).unwrap();
        for expected in &sequence.next {
            counter = aes::next_counter(counter).unwrap();
            assert_eq!(counter, u32::from_str_radix(expected, 16).unwrap());
            assert!(aes::validate_counter(counter).is_ok());
        }
        if sequence.exhausted_after_last {
            assert_eq!(
                aes::next_counter(counter),
                Err(DukptError::CounterExhausted {
                    scheme: DukptScheme::Aes,
                    counter
                })
            );
        }
    }
    let id = InitialKeyId::from_parts([0x12, 0x34, 0x56, 0x78], [0x90, 0x12, 0x34, 0x56]);
    let ksn = AesKsn::new(id, 0x0001_FFFE).unwrap();
    assert_eq!(ksn.next().unwrap().counter(), 0x0002_0000);
    assert_eq!(
        AesKsn::first(id).to_bytes(),
        *b"\x12\x34\x56\x78\x90\x12\x34\x56\0\0\0\x01"
    );
    assert_eq!(id.bdk_id(), [0x12, 0x34, 0x56, 0x78]);
    assert_eq!(id.derivation_id(), [0x90, 0x12, 0x34, 0x56]);
}

#[test]
fn aes_refuses_tdes_bdks_and_foreign_initial_keys() {
    let bdk = tdes_bdk("0123456789ABCDEFFEDCBA9876543210");
    let id = InitialKeyId::new([0; 8]);
    assert_eq!(
        aes::derive_initial_key(&bdk, id).unwrap_err(),
        DukptError::BdkNotAllowed {
            scheme: DukptScheme::Aes,
            algorithm: KeyAlgorithm::Tdes,
            len: 16
        }
    );
    let ipek = DukptInitialKeyKey::new(KeyAlgorithm::Tdes, &[7; 16]).unwrap();
    assert!(matches!(
        AesDerivationKey::from_initial_key(&ipek, id),
        Err(DukptError::InitialKeyNotAllowed {
            scheme: DukptScheme::Aes,
            ..
        })
    ));
    assert_eq!(
        InitialKeyId::parse(&[0; 7]),
        Err(DukptError::InitialKeyIdLength { actual: 7 })
    );
}

#[test]
fn aes_device_registers_built_bit_by_bit_match_the_host_walk() {
    // The PIN pad walks down from its initial key one bit at a time and keeps the results;
    // each must equal what the host derives for that counter from the BDK.
    let bdk = aes_bdk("FEDCBA9876543210F1F1F1F1F1F1F1F1");
    let id = InitialKeyId::new([0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56]);
    let ik = aes::derive_initial_key(&bdk, id).unwrap();
    let root = AesDerivationKey::from_initial_key(&ik, id).unwrap();
    let high = root.derive_child(31).unwrap().derive_child(17).unwrap();
    let leaf = high.derive_child(2).unwrap();
    assert_eq!(leaf.counter(), 0x8002_0004);
    let walked = AesDerivationKey::for_ksn(&ik, &AesKsn::new(id, 0x8002_0004).unwrap()).unwrap();
    assert_eq!(
        leaf.material().reveal_bytes(),
        walked.material().reveal_bytes()
    );
    let pin = leaf
        .working_key(DukptUsage::PinEncryption, AesDukptKeyType::Aes128)
        .unwrap();
    let host = aes::derive_working_key(
        &bdk,
        &AesKsn::new(id, 0x8002_0004).unwrap(),
        DukptUsage::PinEncryption,
        AesDukptKeyType::Aes128,
    )
    .unwrap();
    assert_eq!(
        pin.material().reveal_bytes(),
        host.material().reveal_bytes()
    );

    assert_eq!(
        high.derive_child(17).unwrap_err(),
        DukptError::ChildBitInvalid {
            counter: 0x8002_0000,
            bit: 17
        }
    );
    assert!(high.derive_child(20).is_err());
    assert!(root.derive_child(32).is_err());
    assert_eq!(
        root.working_key(DukptUsage::PinEncryption, AesDukptKeyType::Aes128)
            .unwrap_err(),
        DukptError::CounterZero
    );
}

#[test]
fn derivation_keys_never_show_their_bytes_in_debug() {
    let bdk = aes_bdk("FEDCBA9876543210F1F1F1F1F1F1F1F1");
    let id = InitialKeyId::new([0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56]);
    let ik = aes::derive_initial_key(&bdk, id).unwrap();
    let key = AesDerivationKey::for_ksn(&ik, &AesKsn::first(id)).unwrap();
    let shown = format!("{key:?}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.to_uppercase().contains("4F21B565"), "{shown}");

    let tbdk = tdes_bdk("0123456789ABCDEFFEDCBA9876543210");
    let ksn = TdesKsn::parse(&unhex("FFFF9876543210E00001")).unwrap();
    let ipek = tdes::derive_initial_key(&tbdk, &ksn.to_bytes()).unwrap();
    let key = TdesDerivationKey::for_ksn(&ipek, &ksn).unwrap();
    let shown = format!("{key:?}");
    assert!(shown.contains("redacted"), "{shown}");
    assert!(!shown.to_uppercase().contains("042666B4"), "{shown}");
    let working = key.working_key(DukptUsage::PinEncryption).unwrap();
    assert!(!format!("{working:?}").to_uppercase().contains("042666B4"));
}

// ---------------------------------------------------------------- TDES DUKPT (X9.24-1-2009)

fn des_half(bytes: &[u8]) -> BlockCipher {
    BlockCipher::new(&KeyMaterial::new(KeyAlgorithm::Tdes, bytes).unwrap())
}

/// ISO 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC) with zero padding, as Annex A.4 uses.
fn retail_mac(key: &KeyMaterial, data: &[u8]) -> Vec<u8> {
    let bytes = key.reveal_bytes();
    let (left, right) = (des_half(&bytes[..8]), des_half(&bytes[8..]));
    let mut padded = data.to_vec();
    padded.resize(data.len().div_ceil(8) * 8, 0);
    left.cbc_encrypt(&[0; 8], &mut padded).unwrap();
    let mut block = padded[padded.len() - 8..].to_vec();
    right.ecb_decrypt(&mut block).unwrap();
    left.ecb_encrypt(&mut block).unwrap();
    block
}

fn tdes_cbc_zero_iv(key: &KeyMaterial, data: &[u8]) -> Vec<u8> {
    let mut padded = data.to_vec();
    padded.resize(data.len().div_ceil(8) * 8, 0);
    BlockCipher::new(key)
        .cbc_encrypt(&[0; 8], &mut padded)
        .unwrap();
    padded
}

#[test]
fn tdes_ipek_matches_annex_a() {
    let v = vectors();
    let bdk = tdes_bdk(&v.tdes.bdk);
    let ipek = tdes::derive_initial_key(&bdk, &unhex(&v.tdes.initial_ksn)).unwrap();
    assert_eq!(upper_hex(ipek.material().reveal_bytes()), v.tdes.ipek);
    // Any transaction KSN of the device names the same IPEK.
    let later = tdes::derive_initial_key(&bdk, &unhex("FFFF9876543210E00015")).unwrap();
    assert_eq!(upper_hex(later.material().reveal_bytes()), v.tdes.ipek);
}

#[test]
fn tdes_current_keys_match_annex_a_initial_and_rollover_sequences() {
    let v = vectors();
    let bdk = tdes_bdk(&v.tdes.bdk);
    let ipek = tdes::derive_initial_key(&bdk, &unhex(&v.tdes.initial_ksn)).unwrap();
    assert_eq!(v.tdes.current_keys.len(), 34);
    for case in &v.tdes.current_keys {
        let ksn = TdesKsn::parse(&unhex(&case.ksn)).unwrap();
        let key = TdesDerivationKey::for_ksn(&ipek, &ksn).unwrap();
        assert_eq!(
            upper_hex(key.material().reveal_bytes()),
            case.current_key,
            "{}",
            case.ksn
        );
    }
}

#[test]
fn tdes_pin_keys_encrypt_the_annex_a_pin_blocks() {
    let v = vectors();
    let bdk = tdes_bdk(&v.tdes.bdk);
    let clear = unhex(&v.tdes.pin_blocks.clear_pin_block);
    assert_eq!(v.tdes.pin_blocks.encrypted.len(), 34);
    for case in &v.tdes.pin_blocks.encrypted {
        let ksn = TdesKsn::parse(&unhex(&case.ksn)).unwrap();
        let pin_key = tdes::derive_working_key(&bdk, &ksn, DukptUsage::PinEncryption)
            .unwrap()
            .into_pin_key()
            .unwrap();
        let mut block = clear.clone();
        BlockCipher::new(pin_key.material())
            .ecb_encrypt(&mut block)
            .unwrap();
        assert_eq!(upper_hex(&block), case.encrypted_pin_block, "{}", case.ksn);
    }
}

#[test]
fn tdes_working_keys_match_published_values() {
    let v = vectors();
    let bdk = tdes_bdk(&v.tdes.bdk);
    assert!(v.tdes.working_keys.len() >= 30);
    for case in &v.tdes.working_keys {
        let usage = usage(&case.usage);
        let key = derive_working_key(DukptScheme::Tdes, &bdk, &unhex(&case.ksn), usage).unwrap();
        assert_eq!(
            upper_hex(key.material().reveal_bytes()),
            case.working_key,
            "{} {}",
            case.ksn,
            case.usage
        );
        assert_eq!(key.material().algorithm(), KeyAlgorithm::Tdes);
        assert_eq!(key.key_usage(), usage.key_usage());
    }
}

#[test]
fn tdes_mac_and_data_keys_reproduce_the_annex_a_examples() {
    let v = vectors();
    let bdk = tdes_bdk(&v.tdes.bdk);
    let data = v.tdes.mac_and_data.data_ascii.as_bytes();
    assert_eq!(v.tdes.mac_and_data.cases.len(), 5);
    for case in &v.tdes.mac_and_data.cases {
        let ksn = TdesKsn::parse(&unhex(&case.ksn)).unwrap();
        let derive = |usage| tdes::derive_working_key(&bdk, &ksn, usage).unwrap();
        let request_mac = derive(DukptUsage::MacGeneration).into_mac_key().unwrap();
        let response_mac = derive(DukptUsage::MacVerification).into_mac_key().unwrap();
        let request_data = derive(DukptUsage::DataEncryption).into_data_key().unwrap();
        let response_data = derive(DukptUsage::DataDecryption).into_data_key().unwrap();
        assert_eq!(
            upper_hex(&retail_mac(request_mac.material(), data)),
            case.mac_request
        );
        assert_eq!(
            upper_hex(&retail_mac(response_mac.material(), data)),
            case.mac_response
        );
        assert_eq!(
            upper_hex(&tdes_cbc_zero_iv(request_data.material(), data)),
            case.data_request_ciphertext
        );
        assert_eq!(
            upper_hex(&tdes_cbc_zero_iv(response_data.material(), data)),
            case.data_response_ciphertext
        );
    }
}

#[test]
fn tdes_refused_requests_give_the_specific_error() {
    let v = vectors();
    let bdk = tdes_bdk(&v.tdes.bdk);
    for case in &v.tdes.rejected {
        let error = derive_working_key(
            DukptScheme::Tdes,
            &bdk,
            &unhex(&case.ksn),
            usage(&case.usage),
        )
        .expect_err(&case.ksn);
        assert!(
            error_matches(&error, &case.error),
            "{}: {error:?}",
            case.ksn
        );
    }
    // BDKs other than double-length TDES are refused.
    for bdk in [
        BaseDerivationKey::new(KeyAlgorithm::Tdes, &[1; 24]).unwrap(),
        BaseDerivationKey::new(KeyAlgorithm::Tdes, &[1; 8]).unwrap(),
        aes_bdk("FEDCBA9876543210F1F1F1F1F1F1F1F1"),
    ] {
        let error = derive_working_key(
            DukptScheme::Tdes,
            &bdk,
            &unhex("FFFF9876543210E00001"),
            DukptUsage::PinEncryption,
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                DukptError::BdkNotAllowed {
                    scheme: DukptScheme::Tdes,
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn tdes_counter_sequences_follow_annex_a_and_end() {
    let v = vectors();
    for sequence in &v.tdes.counter_sequences {
        let mut counter = u32::from_str_radix(&sequence.start, 16).unwrap();
        for expected in &sequence.next {
            counter = tdes::next_counter(counter).unwrap();
            assert_eq!(counter, u32::from_str_radix(expected, 16).unwrap());
        }
    }
    assert_eq!(
        tdes::next_counter(0x1F_F800),
        Err(DukptError::CounterExhausted {
            scheme: DukptScheme::Tdes,
            counter: 0x1F_F800
        })
    );
    assert!(matches!(
        tdes::next_counter(0x20_0000),
        Err(DukptError::CounterOutOfRange { .. })
    ));
    let ksn = TdesKsn::parse(&unhex("FFFF9876543210EFF802")).unwrap();
    assert_eq!(ksn.counter(), 0x0F_F802);
    assert_eq!(
        upper_hex(&ksn.next().unwrap().to_bytes()),
        "FFFF9876543210EFF804"
    );
    assert_eq!(upper_hex(&ksn.initial_ksn()), "FFFF9876543210E00000");
    assert_eq!(
        upper_hex(&ksn.with_counter(0x10_0000).unwrap().to_bytes()),
        "FFFF9876543210F00000"
    );
}

#[test]
fn tdes_device_registers_built_bit_by_bit_match_the_host_walk() {
    let bdk = tdes_bdk("0123456789ABCDEFFEDCBA9876543210");
    let ksn = TdesKsn::parse(&unhex("FFFF9876543210E00003")).unwrap();
    let ipek = tdes::derive_initial_key(&bdk, &ksn.to_bytes()).unwrap();
    let root = TdesDerivationKey::from_initial_key(&ipek, &ksn).unwrap();
    let three = root.derive_child(1).unwrap().derive_child(0).unwrap();
    assert_eq!(three.counter(), 3);
    assert_eq!(
        upper_hex(three.material().reveal_bytes()),
        "0DF3D9422ACA56E547676D07AD6BADFA"
    );
    assert!(matches!(
        three.derive_child(0),
        Err(DukptError::ChildBitInvalid { counter: 3, bit: 0 })
    ));
    assert!(root.derive_child(21).is_err());
}

// ---------------------------------------------------------------- shared API

#[test]
fn typed_working_keys_refuse_the_wrong_usage() {
    let bdk = aes_bdk("FEDCBA9876543210F1F1F1F1F1F1F1F1");
    let ksn = unhex("123456789012345600000001");
    let mac = derive_working_key(DukptScheme::Aes, &bdk, &ksn, DukptUsage::MacGeneration).unwrap();
    assert!(matches!(mac, DukptWorkingKey::Mac(_)));
    assert_eq!(
        mac.clone().into_pin_key().unwrap_err(),
        KeyError::WrongUsage {
            expected: KeyUsage::PinEncryption,
            actual: KeyUsage::Mac
        }
    );
    assert!(mac.into_mac_key().is_ok());
    let kek = derive_working_key(DukptScheme::Aes, &bdk, &ksn, DukptUsage::KeyEncryption).unwrap();
    assert_eq!(kek.key_usage(), KeyUsage::KeyEncryption);
    assert!(kek.clone().into_data_key().is_err());
    assert!(kek.into_key_encryption_key().is_ok());
}

#[test]
fn scheme_and_bdk_must_agree() {
    let tdes_key = tdes_bdk("0123456789ABCDEFFEDCBA9876543210");
    let error = derive_working_key(
        DukptScheme::Aes,
        &tdes_key,
        &unhex("123456789012345600000001"),
        DukptUsage::PinEncryption,
    )
    .unwrap_err();
    assert!(
        matches!(error, DukptError::BdkNotAllowed { .. }),
        "{error:?}"
    );
    assert_eq!(DukptScheme::Aes.key_algorithm(), KeyAlgorithm::Aes);
    assert_eq!(DukptScheme::Tdes.ksn_len(), 10);
    assert_eq!(
        derive_working_key(
            DukptScheme::Aes,
            &aes_bdk("FEDCBA9876543210F1F1F1F1F1F1F1F1"),
            &unhex("FFFF9876543210E00001"),
            DukptUsage::PinEncryption,
        )
        .unwrap_err(),
        DukptError::KsnLength {
            scheme: DukptScheme::Aes,
            expected: 12,
            actual: 10
        }
    );
}

// ---------------------------------------------------------------- properties

fn aes_bdk_strategy() -> impl Strategy<Value = BaseDerivationKey> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 16),
        prop::collection::vec(any::<u8>(), 24),
        prop::collection::vec(any::<u8>(), 32),
    ]
    .prop_map(|bytes| BaseDerivationKey::new(KeyAlgorithm::Aes, &bytes).unwrap())
}

fn tdes_bdk_strategy() -> impl Strategy<Value = BaseDerivationKey> {
    prop::collection::vec(any::<u8>(), 16)
        .prop_map(|bytes| BaseDerivationKey::new(KeyAlgorithm::Tdes, &bytes).unwrap())
}

fn valid_aes_counter() -> impl Strategy<Value = u32> {
    any::<u32>().prop_filter_map("needs 1..=16 one-bits", |c| {
        let mut c = c;
        while c.count_ones() > 16 {
            c &= c - 1;
        }
        (c != 0).then_some(c)
    })
}

fn valid_tdes_counter() -> impl Strategy<Value = u32> {
    (1u32..=tdes::COUNTER_MASK).prop_filter_map("needs 1..=10 one-bits", |c| {
        let mut c = c;
        while c.count_ones() > 10 {
            c &= c - 1;
        }
        Some(c)
    })
}

fn bytes_of(key: &DukptWorkingKey) -> Vec<u8> {
    key.material().reveal_bytes().to_vec()
}

proptest! {
    #[test]
    fn any_ksn_bytes_give_a_key_or_a_typed_error(
        aes_bdk in aes_bdk_strategy(),
        tdes_bdk in tdes_bdk_strategy(),
        ksn in prop::collection::vec(any::<u8>(), 0..16),
        usage_index in 0usize..8,
    ) {
        let usage = DukptUsage::ALL[usage_index];
        for (scheme, bdk) in [(DukptScheme::Aes, &aes_bdk), (DukptScheme::Tdes, &tdes_bdk)] {
            match derive_working_key(scheme, bdk, &ksn, usage) {
                Ok(key) => {
                    prop_assert_eq!(ksn.len(), scheme.ksn_len());
                    prop_assert_eq!(key.key_usage(), usage.key_usage());
                }
                Err(DukptError::KsnLength { actual, .. }) => prop_assert_eq!(actual, ksn.len()),
                Err(
                    DukptError::CounterZero
                    | DukptError::CounterTooManyOneBits { .. }
                    | DukptError::UsageNotInScheme { .. },
                ) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }

    #[test]
    fn aes_keys_differ_per_usage_and_per_counter(
        bdk in aes_bdk_strategy(),
        id in any::<[u8; 8]>(),
        counter in valid_aes_counter(),
    ) {
        let id = InitialKeyId::new(id);
        let key_type = AesDukptKeyType::of_bdk(&bdk).unwrap();
        let ksn = AesKsn::new(id, counter).unwrap();
        let keys: Vec<Vec<u8>> = DukptUsage::ALL
            .iter()
            .map(|&u| bytes_of(&aes::derive_working_key(&bdk, &ksn, u, key_type).unwrap()))
            .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                prop_assert_ne!(a, b);
            }
        }
        if let Ok(next) = ksn.next() {
            prop_assert!(next.counter() > counter);
            let later = aes::derive_working_key(&bdk, &next, DukptUsage::PinEncryption, key_type).unwrap();
            prop_assert_ne!(&bytes_of(&later), &keys[0]);
        }
    }

    #[test]
    fn tdes_keys_differ_per_usage_and_per_counter(
        bdk in tdes_bdk_strategy(),
        prefix in any::<[u8; 10]>(),
        counter in valid_tdes_counter(),
    ) {
        let mut bytes = prefix;
        bytes[7] &= 0xE0;
        bytes[8] = 0;
        bytes[9] = 1;
        let ksn = TdesKsn::parse(&bytes).unwrap().with_counter(counter).unwrap();
        prop_assert_eq!(ksn.counter(), counter);
        let usages = DukptUsage::ALL.iter().copied().filter(|u| u.is_in(DukptScheme::Tdes));
        let keys: Vec<Vec<u8>> = usages
            .map(|u| bytes_of(&tdes::derive_working_key(&bdk, &ksn, u).unwrap()))
            .collect();
        prop_assert_eq!(keys.len(), 5);
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                prop_assert_ne!(a, b);
            }
        }
        if let Ok(next) = ksn.next() {
            let later = tdes::derive_working_key(&bdk, &next, DukptUsage::PinEncryption).unwrap();
            prop_assert_ne!(&bytes_of(&later), &keys[0]);
        }
    }

    #[test]
    fn invalid_counters_are_typed_errors(counter in any::<u32>(), id in any::<[u8; 8]>()) {
        let id = InitialKeyId::new(id);
        let ones = counter.count_ones();
        let result = AesKsn::new(id, counter);
        if counter == 0 {
            prop_assert_eq!(result, Err(DukptError::CounterZero));
        } else if ones > 16 {
            prop_assert_eq!(result, Err(DukptError::CounterTooManyOneBits {
                scheme: DukptScheme::Aes, counter, ones, max: 16,
            }));
            prop_assert!(aes::next_counter(counter).is_err());
        } else {
            prop_assert!(result.is_ok());
        }
        let tdes_result = tdes::validate_counter(counter);
        if counter == 0 {
            prop_assert_eq!(tdes_result, Err(DukptError::CounterZero));
        } else if counter > tdes::COUNTER_MASK {
            let is_out_of_range = matches!(tdes_result, Err(DukptError::CounterOutOfRange { .. }));
            prop_assert!(is_out_of_range);
        } else if ones > 10 {
            let is_too_many = matches!(tdes_result, Err(DukptError::CounterTooManyOneBits { max: 10, .. }));
            prop_assert!(is_too_many);
        } else {
            prop_assert!(tdes_result.is_ok());
        }
    }

    #[test]
    fn next_counter_is_the_smallest_valid_counter_above(counter in valid_aes_counter(), small in valid_tdes_counter()) {
        match aes::next_counter(counter) {
            Ok(next) => {
                prop_assert!(aes::validate_counter(next).is_ok());
                // Everything strictly between is invalid (too many one-bits).
                let gap = next - counter;
                prop_assert!(gap == 1 || (1..gap).all(|d| (counter + d).count_ones() > 16));
            }
            Err(error) => prop_assert_eq!(error, DukptError::CounterExhausted { scheme: DukptScheme::Aes, counter }),
        }
        match tdes::next_counter(small) {
            Ok(next) => {
                prop_assert!(tdes::validate_counter(next).is_ok());
                prop_assert!((small + 1..next).all(|c| c.count_ones() > 10));
            }
            Err(error) => prop_assert_eq!(error, DukptError::CounterExhausted { scheme: DukptScheme::Tdes, counter: small }),
        }
    }
}
