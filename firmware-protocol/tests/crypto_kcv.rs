//! Key check value known answers (tests/vectors/kcv.json) and properties.

// Test code: a failed unwrap or an unknown vector field is a test failure, as intended.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firmware_protocol::crypto::kcv::{self, KcvError, KcvMethod};
use firmware_protocol::crypto::keys::{KeyAlgorithm, KeyMaterial};
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
    key_algorithm: String,
    key: String,
    method: String,
    kcv: String,
}

fn key_algorithm(name: &str) -> KeyAlgorithm {
    match name {
        "aes" => KeyAlgorithm::Aes,
        "tdes" => KeyAlgorithm::Tdes,
        other => panic!("unknown key algorithm {other}"),
    }
}

fn method(name: &str) -> KcvMethod {
    match name {
        "ecb" => KcvMethod::Ecb,
        "cmac" => KcvMethod::Cmac,
        other => panic!("unknown KCV method {other}"),
    }
}

#[test]
fn known_answers() {
    let file: VectorFile =
        serde_json::from_str(include_str!("vectors/kcv.json")).expect("kcv.json parses");
    assert_eq!(file.vectors.len(), 11);
    for v in &file.vectors {
        assert!(!v.source.trim().is_empty(), "{}: no source", v.name);
        let key = KeyMaterial::new(
            key_algorithm(&v.key_algorithm),
            &hex::decode(&v.key).unwrap(),
        )
        .unwrap();
        let method = method(&v.method);
        let kcv = kcv::compute(&key, method);
        assert_eq!(kcv.to_string(), v.kcv, "{}", v.name);
        assert_eq!(kcv.method(), method);
        let expected = hex::decode(&v.kcv).unwrap();
        assert_eq!(kcv::verify(&key, method, &expected), Ok(()), "{}", v.name);
    }
}

#[test]
fn aes_defaults_to_cmac_and_legacy_ecb_differs() {
    let key = KeyMaterial::new(KeyAlgorithm::Aes, &[0; 16]).unwrap();
    let standard = kcv::compute(&key, KcvMethod::standard_for(KeyAlgorithm::Aes));
    assert_eq!(standard.to_string(), "763CBCDE81");
    let legacy = kcv::compute(&key, KcvMethod::Ecb);
    assert_eq!(legacy.to_string(), "66E94B");
    assert_eq!(
        kcv::verify(&key, KcvMethod::Cmac, legacy.as_bytes()),
        Err(KcvError::Mismatch)
    );
}

fn any_key() -> impl Strategy<Value = KeyMaterial> {
    prop_oneof![
        prop::sample::select(vec![8usize, 16, 24])
            .prop_flat_map(|len| prop::collection::vec(any::<u8>(), len))
            .prop_map(|k| KeyMaterial::new(KeyAlgorithm::Tdes, &k).unwrap()),
        prop::sample::select(vec![16usize, 24, 32])
            .prop_flat_map(|len| prop::collection::vec(any::<u8>(), len))
            .prop_map(|k| KeyMaterial::new(KeyAlgorithm::Aes, &k).unwrap()),
    ]
}

proptest! {
    #[test]
    fn verify_accepts_its_own_value_and_rejects_any_bit_change(
        key in any_key(),
        cmac in any::<bool>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let method = if cmac { KcvMethod::Cmac } else { KcvMethod::Ecb };
        let kcv = kcv::compute(&key, method);
        prop_assert_eq!(kcv.as_bytes().len(), method.kcv_len());
        prop_assert_eq!(kcv::verify(&key, method, kcv.as_bytes()), Ok(()));
        let mut altered = kcv.as_bytes().to_vec();
        let bit = bit.index(altered.len() * 8);
        altered[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(kcv::verify(&key, method, &altered), Err(KcvError::Mismatch));
    }

    #[test]
    fn verify_never_panics_on_any_expected_value(
        key in any_key(),
        expected in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        for method in [KcvMethod::Ecb, KcvMethod::Cmac] {
            match kcv::verify(&key, method, &expected) {
                Ok(()) | Err(KcvError::Mismatch) => {
                    prop_assert!((3..=method.kcv_len()).contains(&expected.len()));
                }
                Err(KcvError::ExpectedLength { len, .. }) => prop_assert_eq!(len, expected.len()),
            }
        }
    }
}
