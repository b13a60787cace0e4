//! MAC known answers (tests/vectors/mac.json) and properties.

// Test code: a failed unwrap or an unknown vector field is a test failure, as intended.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firmware_protocol::crypto::keys::{KeyAlgorithm, MacKey};
use firmware_protocol::crypto::mac::{self, MacAlgorithm, MacError, Padding};
use firmware_protocol::crypto::primitives::BlockCipher;
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    source: String,
    algorithm: String,
    padding: Option<u8>,
    key_algorithm: String,
    key: String,
    data: String,
    mac: String,
}

fn key_algorithm(name: &str) -> KeyAlgorithm {
    match name {
        "aes" => KeyAlgorithm::Aes,
        "tdes" => KeyAlgorithm::Tdes,
        other => panic!("unknown key algorithm {other}"),
    }
}

fn mac_algorithm(name: &str, padding: Option<u8>) -> MacAlgorithm {
    let padding =
        || Padding::from_number(padding.expect("ISO 9797-1 vectors name a padding")).unwrap();
    match name {
        "iso9797-1" => MacAlgorithm::Iso9797Alg1(padding()),
        "iso9797-3" => MacAlgorithm::Iso9797Alg3(padding()),
        "aes-cmac" => MacAlgorithm::AesCmac,
        "tdes-cmac" => MacAlgorithm::TdesCmac,
        other => panic!("unknown MAC algorithm {other}"),
    }
}

fn vectors() -> Vec<Vector> {
    let file: VectorFile =
        serde_json::from_str(include_str!("vectors/mac.json")).expect("mac.json parses");
    file.vectors
}

#[test]
fn known_answers() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 32);
    for v in &vectors {
        assert!(!v.source.trim().is_empty(), "{}: no source", v.name);
        let algorithm = mac_algorithm(&v.algorithm, v.padding);
        let key = MacKey::new(
            key_algorithm(&v.key_algorithm),
            &hex::decode(&v.key).unwrap(),
        )
        .unwrap();
        let data = hex::decode(&v.data).unwrap();
        let expected = hex::decode(&v.mac).unwrap();
        let full = mac::compute(&key, algorithm, &data).unwrap();
        assert_eq!(full.len(), algorithm.mac_len(), "{}", v.name);
        assert_eq!(
            hex::encode_upper(&full[..expected.len()]),
            v.mac,
            "{}",
            v.name
        );
        assert_eq!(
            mac::verify(&key, algorithm, &data, &expected),
            Ok(()),
            "{}",
            v.name
        );
    }
}

#[test]
fn every_suite_asked_for_is_covered() {
    let vectors = vectors();
    let count = |alg: &str, pad: Option<u8>| {
        vectors
            .iter()
            .filter(|v| v.algorithm == alg && v.padding == pad)
            .count()
    };
    // ISO 9797-1 Annex B: both messages, both paddings, algorithms 1 and 3.
    assert!(count("iso9797-1", Some(1)) >= 2 && count("iso9797-1", Some(2)) >= 2);
    assert!(count("iso9797-3", Some(1)) >= 2 && count("iso9797-3", Some(2)) >= 2);
    // RFC 4493 examples 1-4 and SP 800-38B TDEA examples 13-20.
    assert_eq!(count("aes-cmac", None), 4);
    assert_eq!(count("tdes-cmac", None), 8);
}

#[test]
fn empty_message_with_padding_1_is_one_zero_block() {
    let key = MacKey::new(
        KeyAlgorithm::Tdes,
        &hex::decode("0123456789abcdef").unwrap(),
    )
    .unwrap();
    let mac = mac::compute(&key, MacAlgorithm::Iso9797Alg1(Padding::Method1), b"").unwrap();
    let mut zero_block = [0u8; 8];
    BlockCipher::new(key.material())
        .ecb_encrypt(&mut zero_block)
        .unwrap();
    assert_eq!(mac, zero_block);
}

fn padded(data: &[u8], padding: Padding) -> Vec<u8> {
    let mut out = data.to_vec();
    match padding {
        Padding::Method1 => {
            if out.is_empty() {
                out.resize(8, 0);
            }
        }
        Padding::Method2 => out.push(0x80),
    }
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    out
}

fn any_padding() -> impl Strategy<Value = Padding> {
    prop_oneof![Just(Padding::Method1), Just(Padding::Method2)]
}

/// An algorithm with a key that fits it.
fn any_keyed_algorithm() -> impl Strategy<Value = (MacAlgorithm, MacKey)> {
    let tdes = |lens: Vec<usize>| {
        prop::sample::select(lens).prop_flat_map(|len| prop::collection::vec(any::<u8>(), len))
    };
    prop_oneof![
        (any_padding(), tdes(vec![8, 16, 24])).prop_map(|(p, k)| (
            MacAlgorithm::Iso9797Alg1(p),
            MacKey::new(KeyAlgorithm::Tdes, &k).unwrap()
        )),
        (any_padding(), tdes(vec![16])).prop_map(|(p, k)| (
            MacAlgorithm::Iso9797Alg3(p),
            MacKey::new(KeyAlgorithm::Tdes, &k).unwrap()
        )),
        tdes(vec![16, 24]).prop_map(|k| (
            MacAlgorithm::TdesCmac,
            MacKey::new(KeyAlgorithm::Tdes, &k).unwrap()
        )),
        prop::sample::select(vec![16usize, 24, 32])
            .prop_flat_map(|len| prop::collection::vec(any::<u8>(), len))
            .prop_map(|k| (
                MacAlgorithm::AesCmac,
                MacKey::new(KeyAlgorithm::Aes, &k).unwrap()
            )),
    ]
}

proptest! {
    #[test]
    fn verify_rejects_any_single_bit_change_in_the_data(
        (algorithm, key) in any_keyed_algorithm(),
        data in prop::collection::vec(any::<u8>(), 1..200),
        bit in any::<prop::sample::Index>(),
    ) {
        let mac = mac::compute(&key, algorithm, &data).unwrap();
        prop_assert_eq!(mac::verify(&key, algorithm, &data, &mac), Ok(()));
        let bit = bit.index(data.len() * 8);
        let mut altered = data.clone();
        altered[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(mac::verify(&key, algorithm, &altered, &mac), Err(MacError::Mismatch));
    }

    #[test]
    fn verify_rejects_any_single_bit_change_in_the_mac(
        (algorithm, key) in any_keyed_algorithm(),
        data in prop::collection::vec(any::<u8>(), 0..100),
        truncate_to in 4usize..=16,
        bit in any::<prop::sample::Index>(),
    ) {
        let mut mac = mac::compute(&key, algorithm, &data).unwrap();
        mac.truncate(truncate_to.min(algorithm.mac_len()));
        prop_assert_eq!(mac::verify(&key, algorithm, &data, &mac), Ok(()));
        let bit = bit.index(mac.len() * 8);
        mac[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(mac::verify(&key, algorithm, &data, &mac), Err(MacError::Mismatch));
    }

    /// The streamed MAC algorithm 1 equals the last block of plain CBC encryption (the `cbc`
    /// crate) over a padded copy of the message, for every length and padding.
    #[test]
    fn algorithm_1_is_the_last_cbc_block_of_the_padded_message(
        key in prop::collection::vec(any::<u8>(), 16),
        data in prop::collection::vec(any::<u8>(), 0..100),
        padding in any_padding(),
    ) {
        let key = MacKey::new(KeyAlgorithm::Tdes, &key).unwrap();
        let mac = mac::compute(&key, MacAlgorithm::Iso9797Alg1(padding), &data).unwrap();
        let mut message = padded(&data, padding);
        BlockCipher::new(key.material()).cbc_encrypt(&[0; 8], &mut message).unwrap();
        prop_assert_eq!(&mac[..], &message[message.len() - 8..]);
    }
}
