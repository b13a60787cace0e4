//! Pairing, host verification, initialisation KEK and ECDSA: known answers from
//! tests/vectors/pairing.json (RFC 5903 §8.1, RFC 6979 A.2.5, and values cross-checked with
//! Python `cryptography`), flows, MITM and replay behaviour, and properties.

// Helpers outside #[test] functions unwrap test data too; clippy.toml only covers the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firmware_protocol::crypto::ecdsa::{
    EcdsaError, EcdsaSignature, EcdsaSigningKey, EcdsaVerifyingKey, P256PublicKey, PublicKeyError,
    SignatureDomain,
};
use firmware_protocol::crypto::host_auth::{
    HOST_MAC_LEN, HostAuthError, HostMacKey, HostSigner, HostVerifier, MAX_PAIRED_HOSTS,
    REQUEST_MAC_KEY_INFO, REQUEST_MAC_TAG, host_request_mac,
};
use firmware_protocol::crypto::keys::{KeyAlgorithm, KeyUsage};
use firmware_protocol::crypto::pairing::{
    COMMITMENT_TAG, COMPARISON_CODE_INFO, DEVICE_CONFIRMATION_INFO, DevicePairing, HOST_ID_TAG,
    HOST_PAIRING_KEY_INFO, HostCommitment, HostId, HostPairing, HostPairingKey,
    INITIALISATION_KEK_INFO, PairingError, PairingNonce, PairingOutcome, PairingPublicKey,
    TRANSCRIPT_TAG, derive_initialisation_kek, initialisation_context,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/pairing.json")).unwrap()
}

fn hex_field(section: &Value, name: &str) -> Vec<u8> {
    hex::decode(section[name].as_str().unwrap()).unwrap()
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().unwrap()
}

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Runs the three pairing messages between an honest host and an honest device.
fn pair(seed: u8) -> (PairingOutcome, PairingOutcome) {
    let mut host_rng = rng(seed);
    let mut device_rng = rng(seed.wrapping_add(100));
    let host = HostPairing::start(&mut host_rng);
    let device = DevicePairing::respond(&mut device_rng, *host.public_key(), host.commitment());
    let host_nonce = *host.nonce();
    let host_outcome = host.finish(device.public_key(), device.nonce());
    let device_outcome = device.finish(&host_nonce).unwrap();
    (host_outcome, device_outcome)
}

fn assert_same_outcome(a: &PairingOutcome, b: &PairingOutcome) {
    assert_eq!(a.transcript_hash(), b.transcript_hash());
    assert_eq!(a.comparison_code(), b.comparison_code());
    assert_eq!(a.host_id(), b.host_id());
    assert_eq!(a.host_pairing_key(), b.host_pairing_key());
    assert_eq!(a.device_confirmation(), b.device_confirmation());
}

#[test]
fn vector_labels_match_the_code() {
    let v = vectors();
    let labels = &v["labels"];
    for (name, value) in [
        ("commitment_tag", COMMITMENT_TAG),
        ("transcript_tag", TRANSCRIPT_TAG),
        ("host_id_tag", HOST_ID_TAG),
        ("host_pairing_key_info", HOST_PAIRING_KEY_INFO),
        ("comparison_code_info", COMPARISON_CODE_INFO),
        ("device_confirmation_info", DEVICE_CONFIRMATION_INFO),
        ("request_mac_key_info", REQUEST_MAC_KEY_INFO),
        ("request_mac_tag", REQUEST_MAC_TAG),
        ("initialisation_kek_info", INITIALISATION_KEK_INFO),
    ] {
        assert_eq!(labels[name].as_str().unwrap(), value, "{name}");
    }
}

/// The pairing vector: both sides from fixed secrets (RFC 5903 §8.1) and nonces.
fn vector_pairing() -> (Value, PairingOutcome, PairingOutcome) {
    let v = vectors();
    let p = &v["pairing"];
    let host = HostPairing::from_fixed(
        &array(&hex_field(p, "host_secret")),
        PairingNonce::from_slice(&hex_field(p, "host_nonce")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        host.public_key().as_bytes().as_slice(),
        hex_field(p, "host_public")
    );
    assert_eq!(
        host.commitment().as_bytes().as_slice(),
        hex_field(p, "host_commitment")
    );

    // The device receives PairBegin as bytes.
    let host_public = PairingPublicKey::from_sec1_bytes(host.public_key().as_bytes()).unwrap();
    let commitment = HostCommitment::from_slice(host.commitment().as_bytes()).unwrap();
    let device = DevicePairing::from_fixed(
        &array(&hex_field(p, "device_secret")),
        PairingNonce::from_slice(&hex_field(p, "device_nonce")).unwrap(),
        host_public,
        commitment,
    )
    .unwrap();
    assert_eq!(
        device.public_key().as_bytes().as_slice(),
        hex_field(p, "device_public")
    );

    let host_nonce = *host.nonce();
    let host_outcome = host.finish(device.public_key(), device.nonce());
    let device_outcome = device.finish(&host_nonce).unwrap();
    (v, host_outcome, device_outcome)
}

#[test]
fn pairing_vector_reproduces_every_derived_value() {
    let (v, host_outcome, device_outcome) = vector_pairing();
    let p = &v["pairing"];
    assert_same_outcome(&host_outcome, &device_outcome);
    assert_eq!(
        host_outcome.transcript_hash().as_slice(),
        hex_field(p, "transcript_hash")
    );
    assert_eq!(
        host_outcome.comparison_code().to_string(),
        p["comparison_code"].as_str().unwrap()
    );
    assert_eq!(
        host_outcome.comparison_code().digits().as_slice(),
        p["comparison_code"].as_str().unwrap().as_bytes()
    );
    assert_eq!(
        host_outcome.host_id().as_bytes().as_slice(),
        hex_field(p, "host_id")
    );
    assert_eq!(
        host_outcome.host_pairing_key().reveal_bytes().as_slice(),
        hex_field(p, "host_pairing_key")
    );
    assert_eq!(
        host_outcome.device_confirmation().as_slice(),
        hex_field(p, "device_confirmation")
    );
    host_outcome
        .check_device_confirmation(device_outcome.device_confirmation())
        .unwrap();
}

#[test]
fn host_request_vector_reproduces_key_mac_and_stored_state() {
    let (v, host_outcome, device_outcome) = vector_pairing();
    let h = &v["host_request"];
    let key = HostMacKey::derive(host_outcome.host_pairing_key());
    assert_eq!(key.mac_key().usage(), KeyUsage::Mac);
    assert_eq!(key.mac_key().algorithm(), KeyAlgorithm::Aes);
    assert_eq!(
        key.mac_key().material().reveal_bytes(),
        hex_field(h, "request_mac_key").as_slice()
    );

    let counter = h["counter"].as_u64().unwrap();
    let inner = hex_field(h, "inner");
    let mac = host_request_mac(&key, &host_outcome.host_id(), counter, &inner);
    assert_eq!(mac.as_slice(), hex_field(h, "mac"));

    let mut signer = HostSigner::new(host_outcome.host_id(), host_outcome.host_pairing_key());
    let auth = signer.sign(&inner).unwrap();
    assert_eq!(
        (auth.host_id, auth.counter, auth.mac),
        (host_outcome.host_id(), counter, mac)
    );

    let mut verifier = HostVerifier::new();
    verifier
        .add_host(
            device_outcome.host_id(),
            device_outcome.host_pairing_key().clone(),
        )
        .unwrap();
    verifier
        .verify(&auth.host_id, auth.counter, &inner, &auth.mac)
        .unwrap();
    let state = verifier.to_bytes();
    assert_eq!(state.as_slice(), hex_field(h, "verifier_state_after"));
    let restored = HostVerifier::from_bytes(&state).unwrap();
    assert_eq!(restored.last_counter(&auth.host_id), Some(counter));
    assert_eq!(restored.to_bytes(), state);
}

#[test]
fn initialisation_kek_vector_agrees_on_both_sides() {
    let v = vectors();
    let k = &v["initialisation_kek"];
    let device = EcdsaSigningKey::from_bytes(&hex_field(k, "device_attestation_secret")).unwrap();
    let bank = EcdsaSigningKey::from_bytes(&hex_field(k, "bank_secret")).unwrap();
    let device_public =
        EcdsaVerifyingKey::from_sec1_bytes(&hex_field(k, "device_attestation_public")).unwrap();
    let bank_public = EcdsaVerifyingKey::from_sec1_bytes(&hex_field(k, "bank_public")).unwrap();
    assert_eq!(device.verifying_key(), device_public);
    assert_eq!(bank.verifying_key(), bank_public);
    let context = hex_field(k, "context");
    // PROTOCOL.md §4.3: u16 serial length, serial, u64 bank sequence of the Initialise.
    let serial = k["device_serial"].as_str().unwrap();
    let sequence = k["sequence"].as_u64().unwrap();
    assert_eq!(initialisation_context(serial, sequence), context);

    let on_device = derive_initialisation_kek(&device, &bank_public, &context);
    let at_bank = derive_initialisation_kek(&bank, &device_public, &context);
    assert_eq!(on_device.usage(), KeyUsage::KeyBlockProtection);
    assert_eq!(on_device.algorithm(), KeyAlgorithm::Aes);
    assert_eq!(
        on_device.material().reveal_bytes(),
        hex_field(k, "kek").as_slice()
    );
    assert_eq!(
        on_device.material().reveal_bytes(),
        at_bank.material().reveal_bytes()
    );

    let other_context = derive_initialisation_kek(&device, &bank_public, b"another init");
    assert_ne!(
        on_device.material().reveal_bytes(),
        other_context.material().reveal_bytes()
    );
}

#[test]
fn ecdsa_vector_signs_deterministically_and_verifies_only_in_its_domain() {
    let v = vectors();
    let e = &v["ecdsa"];
    let key = EcdsaSigningKey::from_bytes(&hex_field(e, "secret")).unwrap();
    let public = EcdsaVerifyingKey::from_sec1_bytes(&hex_field(e, "public_key")).unwrap();
    assert_eq!(key.verifying_key(), public);
    assert_eq!(
        SignatureDomain::OperatorReset.label(),
        e["domain_label"].as_str().unwrap()
    );
    let message = hex_field(e, "message");
    assert_eq!(
        SignatureDomain::OperatorReset.signed_bytes(&message),
        hex_field(e, "signed_bytes")
    );

    let signature = key.sign(SignatureDomain::OperatorReset, &message);
    assert_eq!(signature.as_bytes().as_slice(), hex_field(e, "signature"));
    let from_wire = EcdsaSignature::from_slice(&hex_field(e, "signature")).unwrap();
    public
        .verify(SignatureDomain::OperatorReset, &message, &from_wire)
        .unwrap();

    for domain in SignatureDomain::ALL {
        if domain != SignatureDomain::OperatorReset {
            assert_eq!(
                public.verify(domain, &message, &signature),
                Err(EcdsaError::VerificationFailed),
                "{domain:?}"
            );
        }
    }
    let mut tampered = message.clone();
    tampered[0] ^= 1;
    assert_eq!(
        public.verify(SignatureDomain::OperatorReset, &tampered, &signature),
        Err(EcdsaError::VerificationFailed)
    );
    let stranger = EcdsaSigningKey::generate(&mut rng(9)).verifying_key();
    assert_eq!(
        stranger.verify(SignatureDomain::OperatorReset, &message, &signature),
        Err(EcdsaError::VerificationFailed)
    );
}

#[test]
fn domain_labels_are_distinct() {
    for (i, a) in SignatureDomain::ALL.iter().enumerate() {
        for b in &SignatureDomain::ALL[i + 1..] {
            assert_ne!(a.label(), b.label());
        }
    }
}

#[test]
fn malformed_signatures_and_secret_keys_are_typed_errors() {
    assert_eq!(
        EcdsaSignature::from_slice(&[0; 63]),
        Err(EcdsaError::InvalidSignatureLength { len: 63 })
    );
    let key = EcdsaSigningKey::generate(&mut rng(3));
    let zero = EcdsaSignature::from_array([0; 64]);
    assert_eq!(
        key.verifying_key()
            .verify(SignatureDomain::BankCommand, b"x", &zero),
        Err(EcdsaError::InvalidSignatureScalars)
    );
    let over_order = EcdsaSignature::from_array([0xff; 64]);
    assert_eq!(
        key.verifying_key()
            .verify(SignatureDomain::BankCommand, b"x", &over_order),
        Err(EcdsaError::InvalidSignatureScalars)
    );
    assert_eq!(
        EcdsaSigningKey::from_bytes(&[0; 32]).unwrap_err(),
        EcdsaError::InvalidSecretKey
    );
    assert_eq!(
        EcdsaSigningKey::from_bytes(&[0xff; 32]).unwrap_err(),
        EcdsaError::InvalidSecretKey
    );
    assert_eq!(
        EcdsaSigningKey::from_bytes(&[1; 31]).unwrap_err(),
        EcdsaError::InvalidSecretKey
    );
    let restored = EcdsaSigningKey::from_bytes(key.reveal_bytes().as_slice()).unwrap();
    assert_eq!(restored.verifying_key(), key.verifying_key());
}

#[test]
fn invalid_public_keys_are_typed_errors() {
    let good = *HostPairing::start(&mut rng(1)).public_key().as_bytes();
    let mut off_curve = good;
    off_curve[64] ^= 1;
    let mut compressed = [0u8; 33];
    compressed.copy_from_slice(&good[..33]);
    compressed[0] = 0x02 | (good[64] & 1);
    let mut wrong_prefix = good;
    wrong_prefix[0] = 0x06;
    let mut x_too_big = [0xffu8; 65];
    x_too_big[0] = 0x04;

    let cases: [(&[u8], PublicKeyError); 7] = [
        (&[0x00], PublicKeyError::Identity),
        (&[], PublicKeyError::WrongLength { len: 0 }),
        (&good[..64], PublicKeyError::WrongLength { len: 64 }),
        (&compressed, PublicKeyError::WrongLength { len: 33 }),
        (
            &wrong_prefix,
            PublicKeyError::NotUncompressed { prefix: 0x06 },
        ),
        (&off_curve, PublicKeyError::NotOnCurve),
        (&x_too_big, PublicKeyError::NotOnCurve),
    ];
    // One key type for pairing and signatures: one decoder, one set of errors.
    for (bytes, expected) in cases {
        assert_eq!(
            P256PublicKey::from_sec1_bytes(bytes),
            Err(expected),
            "{}",
            hex::encode(bytes)
        );
    }
    assert!(PairingPublicKey::from_sec1_bytes(&good).is_ok());
    // The all-zero point with the uncompressed tag is not on the curve.
    let mut zeros = [0u8; 65];
    zeros[0] = 0x04;
    assert_eq!(
        P256PublicKey::from_sec1_bytes(&zeros),
        Err(PublicKeyError::NotOnCurve)
    );
}

#[test]
fn wrong_lengths_of_pairing_fields_are_typed_errors() {
    assert_eq!(
        PairingNonce::from_slice(&[0; 15]),
        Err(PairingError::InvalidNonceLength { len: 15 })
    );
    assert_eq!(
        HostCommitment::from_slice(&[0; 33]),
        Err(PairingError::InvalidCommitmentLength { len: 33 })
    );
    assert_eq!(
        HostId::from_slice(&[0; 7]),
        Err(PairingError::InvalidHostIdLength { len: 7 })
    );
    assert_eq!(
        HostPairingKey::from_bytes(&[0; 16]).unwrap_err(),
        PairingError::InvalidHostPairingKeyLength { len: 16 }
    );
    assert_eq!(
        HostPairing::from_fixed(&[0; 32], PairingNonce::from_array([0; 16])).unwrap_err(),
        PairingError::InvalidSecretKey
    );
}

/// A man in the middle runs one pairing with the host (posing as the device) and one with the
/// device (posing as the host). Each side derives keys with him, not with each other, and the
/// codes the user compares differ.
#[test]
fn man_in_the_middle_substituting_keys_gets_different_codes() {
    let mut host_rng = rng(10);
    let mut device_rng = rng(20);
    let mut mallory_rng = rng(30);

    let host = HostPairing::start(&mut host_rng);
    // Mallory intercepts PairBegin and sends the device his own key and commitment.
    let mallory_as_host = HostPairing::start(&mut mallory_rng);
    let device = DevicePairing::respond(
        &mut device_rng,
        *mallory_as_host.public_key(),
        mallory_as_host.commitment(),
    );
    // Mallory answers the host with his own key and nonce.
    let mallory_as_device =
        DevicePairing::respond(&mut mallory_rng, *host.public_key(), host.commitment());

    let host_nonce = *host.nonce();
    let host_side = host.finish(mallory_as_device.public_key(), mallory_as_device.nonce());
    let mallory_nonce = *mallory_as_host.nonce();
    let device_side = device.finish(&mallory_nonce).unwrap();

    assert_ne!(host_side.comparison_code(), device_side.comparison_code());
    assert_ne!(host_side.host_pairing_key(), device_side.host_pairing_key());
    assert_ne!(host_side.host_id(), device_side.host_id());
    // Even the confirmation relayed from the device does not satisfy the host.
    assert_eq!(
        host_side.check_device_confirmation(device_side.device_confirmation()),
        Err(PairingError::ConfirmationMismatch)
    );
    // Mallory's own session with the host is consistent; he cannot make it the device's.
    let mallory_host_session = mallory_as_device.finish(&host_nonce).unwrap();
    assert_same_outcome(&host_side, &mallory_host_session);
}

#[test]
fn swapping_the_host_key_or_nonce_breaks_the_commitment() {
    let host = HostPairing::start(&mut rng(40));
    let mallory = HostPairing::start(&mut rng(41));

    // Mallory swaps in his key but forwards the host's commitment.
    let device = DevicePairing::respond(&mut rng(42), *mallory.public_key(), host.commitment());
    assert_eq!(
        device.finish(host.nonce()).unwrap_err(),
        PairingError::CommitmentMismatch
    );

    // The host reveals a nonce other than the one it committed to.
    let device = DevicePairing::respond(&mut rng(43), *host.public_key(), host.commitment());
    let mut other = *host.nonce().as_bytes();
    other[0] ^= 0x80;
    assert_eq!(
        device.finish(&PairingNonce::from_array(other)).unwrap_err(),
        PairingError::CommitmentMismatch
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let (host_outcome, _) = pair(7);
    let key_hex = hex::encode(host_outcome.host_pairing_key().reveal_bytes());
    let mac_key = HostMacKey::derive(host_outcome.host_pairing_key());
    let mac_key_hex = hex::encode(mac_key.mac_key().material().reveal_bytes());
    let signer = HostSigner::new(host_outcome.host_id(), host_outcome.host_pairing_key());
    let mut verifier = HostVerifier::new();
    verifier
        .add_host(
            host_outcome.host_id(),
            host_outcome.host_pairing_key().clone(),
        )
        .unwrap();
    let signing_key = EcdsaSigningKey::generate(&mut rng(8));
    let signing_hex = hex::encode(signing_key.reveal_bytes().as_slice());
    let host = HostPairing::start(&mut rng(9));

    let shown = format!(
        "{host_outcome:?} {:?} {mac_key:?} {signer:?} {verifier:?} {signing_key:?} {host:?}",
        host_outcome.host_pairing_key()
    )
    .to_lowercase();
    for secret in [&key_hex, &mac_key_hex, &signing_hex] {
        assert!(!shown.contains(&secret[..16]), "{shown}");
    }
    assert!(shown.contains("redacted"));
    // The host id is public and useful in logs.
    assert!(shown.contains(&hex::encode(host_outcome.host_id().as_bytes())));
}

fn paired_verifier(seed: u8) -> (HostSigner, HostVerifier) {
    let (host_outcome, device_outcome) = pair(seed);
    let signer = HostSigner::new(host_outcome.host_id(), host_outcome.host_pairing_key());
    let mut verifier = HostVerifier::new();
    verifier
        .add_host(
            device_outcome.host_id(),
            device_outcome.host_pairing_key().clone(),
        )
        .unwrap();
    (signer, verifier)
}

#[test]
fn verifier_refuses_unknown_hosts_bad_macs_and_replays() {
    let (mut signer, mut verifier) = paired_verifier(50);
    let host_id = signer.host_id();
    let first = signer.sign(b"get status").unwrap();
    assert_eq!(first.counter, 1);
    verifier
        .verify(&host_id, 1, b"get status", &first.mac)
        .unwrap();
    assert_eq!(verifier.last_counter(&host_id), Some(1));

    // Replay of the same request.
    assert_eq!(
        verifier.verify(&host_id, 1, b"get status", &first.mac),
        Err(HostAuthError::Replay { last: 1, got: 1 })
    );

    // An unpaired host.
    let stranger = HostId::from_array([0xee; 8]);
    assert_eq!(
        verifier.verify(&stranger, 2, b"get status", &first.mac),
        Err(HostAuthError::UnknownHost { host_id: stranger })
    );

    // A forged MAC with a high counter does not move the counter.
    assert_eq!(
        verifier.verify(&host_id, 1000, b"wipe", &[0; HOST_MAC_LEN]),
        Err(HostAuthError::BadMac)
    );
    assert_eq!(verifier.last_counter(&host_id), Some(1));

    // Requests may skip counters (lost requests) but never go back.
    let second = signer.sign(b"a").unwrap();
    let third = signer.sign(b"b").unwrap();
    verifier
        .verify(&host_id, third.counter, b"b", &third.mac)
        .unwrap();
    assert_eq!(
        verifier.verify(&host_id, second.counter, b"a", &second.mac),
        Err(HostAuthError::Replay { last: 3, got: 2 })
    );

    // A MAC made for another host's pairing does not verify.
    let (mut other_signer, _) = paired_verifier(51);
    let foreign = other_signer.sign(b"c").unwrap();
    assert_eq!(
        verifier.verify(&host_id, 10, b"c", &foreign.mac),
        Err(HostAuthError::BadMac)
    );

    // Unpairing removes the host.
    assert!(verifier.remove_host(&host_id));
    assert!(!verifier.remove_host(&host_id));
    let fourth = signer.sign(b"d").unwrap();
    assert_eq!(
        verifier.verify(&host_id, fourth.counter, b"d", &fourth.mac),
        Err(HostAuthError::UnknownHost { host_id })
    );
}

#[test]
fn verifier_limits_pairings_and_refuses_to_reset_a_counter() {
    let mut verifier = HostVerifier::new();
    let key = HostPairingKey::from_bytes(&[7; 32]).unwrap();
    for i in 0..MAX_PAIRED_HOSTS {
        verifier
            .add_host(HostId::from_array([i as u8; 8]), key.clone())
            .unwrap();
    }
    assert_eq!(
        verifier.add_host(HostId::from_array([0xaa; 8]), key.clone()),
        Err(HostAuthError::TooManyHosts {
            max: MAX_PAIRED_HOSTS
        })
    );
    assert_eq!(
        verifier.add_host(HostId::from_array([0; 8]), key.clone()),
        Err(HostAuthError::AlreadyPaired {
            host_id: HostId::from_array([0; 8])
        })
    );
    assert_eq!(verifier.len(), MAX_PAIRED_HOSTS);
    assert_eq!(verifier.host_ids().count(), MAX_PAIRED_HOSTS);
}

#[test]
fn signer_recovers_from_a_lost_counter_and_stops_when_exhausted() {
    let (signer, mut verifier) = paired_verifier(60);
    let host_id = signer.host_id();
    let key_bytes = {
        // The same pairing key, as a restored host would load it.
        let (host_outcome, _) = pair(60);
        host_outcome.host_pairing_key().clone()
    };
    let mut signer = HostSigner::resume(host_id, &key_bytes, 1);
    for _ in 0..5 {
        let auth = signer.sign(b"x").unwrap();
        verifier
            .verify(&host_id, auth.counter, b"x", &auth.mac)
            .unwrap();
    }

    // The host restores an old backup and starts again at 2.
    let mut restored = HostSigner::resume(host_id, &key_bytes, 2);
    let stale = restored.sign(b"y").unwrap();
    let Err(HostAuthError::Replay { last, .. }) =
        verifier.verify(&host_id, stale.counter, b"y", &stale.mac)
    else {
        panic!("expected a replay error");
    };
    restored.advance_past(last);
    restored.advance_past(1); // never backwards
    assert_eq!(restored.next_counter(), Some(6));
    let fresh = restored.sign(b"y").unwrap();
    verifier
        .verify(&host_id, fresh.counter, b"y", &fresh.mac)
        .unwrap();

    let mut last_one = HostSigner::resume(host_id, &key_bytes, u64::MAX);
    let auth = last_one.sign(b"z").unwrap();
    assert_eq!(auth.counter, u64::MAX);
    verifier
        .verify(&host_id, u64::MAX, b"z", &auth.mac)
        .unwrap();
    assert_eq!(last_one.next_counter(), None);
    assert_eq!(last_one.sign(b"z"), Err(HostAuthError::CounterExhausted));
}

#[test]
fn stored_state_round_trips_and_rejects_malformed_bytes() {
    let (mut signer, mut verifier) = paired_verifier(70);
    verifier
        .add_host(
            HostId::from_array([1; 8]),
            HostPairingKey::from_bytes(&[2; 32]).unwrap(),
        )
        .unwrap();
    let auth = signer.sign(b"q").unwrap();
    verifier
        .verify(&signer.host_id(), auth.counter, b"q", &auth.mac)
        .unwrap();
    let state = verifier.to_bytes();
    assert_eq!(state.len(), 6 + 2 * 48);

    let mut restored = HostVerifier::from_bytes(&state).unwrap();
    assert_eq!(restored.len(), 2);
    // The replay window stays closed across a restart.
    assert_eq!(
        restored.verify(&signer.host_id(), auth.counter, b"q", &auth.mac),
        Err(HostAuthError::Replay { last: 1, got: 1 })
    );
    let next = signer.sign(b"r").unwrap();
    restored
        .verify(&signer.host_id(), next.counter, b"r", &next.mac)
        .unwrap();

    let empty = HostVerifier::new().to_bytes();
    assert!(HostVerifier::from_bytes(&empty).unwrap().is_empty());

    assert_eq!(
        HostVerifier::from_bytes(&state[..5]).unwrap_err(),
        HostAuthError::StateLength {
            len: 5,
            expected: 6
        }
    );
    assert_eq!(
        HostVerifier::from_bytes(&state[..state.len() - 1]).unwrap_err(),
        HostAuthError::StateLength {
            len: state.len() - 1,
            expected: state.len()
        }
    );
    let mut bad = state.to_vec();
    bad[0] = b'X';
    assert_eq!(
        HostVerifier::from_bytes(&bad).unwrap_err(),
        HostAuthError::StateMagic
    );
    let mut bad = state.to_vec();
    bad[4] = 2;
    assert_eq!(
        HostVerifier::from_bytes(&bad).unwrap_err(),
        HostAuthError::StateVersion { version: 2 }
    );
    // Two entries with the same host id.
    let mut bad = state.to_vec();
    let (first, second) = bad[6..].split_at_mut(48);
    second[..8].copy_from_slice(&first[..8]);
    assert_eq!(
        HostVerifier::from_bytes(&bad).unwrap_err(),
        HostAuthError::AlreadyPaired {
            host_id: signer.host_id()
        }
    );
    // A count above the limit, with the bytes to match.
    let mut too_many = b"PBHV\x01".to_vec();
    too_many.push((MAX_PAIRED_HOSTS + 1) as u8);
    for i in 0..=MAX_PAIRED_HOSTS {
        too_many.extend_from_slice(&[i as u8; 8]);
        too_many.extend_from_slice(&[0; 40]);
    }
    assert_eq!(
        HostVerifier::from_bytes(&too_many).unwrap_err(),
        HostAuthError::TooManyHosts {
            max: MAX_PAIRED_HOSTS
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_pairings_agree(seed in any::<u8>()) {
        let (host_outcome, device_outcome) = pair(seed);
        assert_same_outcome(&host_outcome, &device_outcome);
        let code = host_outcome.comparison_code();
        prop_assert!(code.value() < 1_000_000);
        let shown = code.to_string();
        prop_assert_eq!(shown.len(), 6);
        let digits = code.digits();
        prop_assert_eq!(shown.as_bytes(), digits.as_slice());
        prop_assert!(host_outcome
            .check_device_confirmation(device_outcome.device_confirmation())
            .is_ok());
    }

    #[test]
    fn any_bit_flip_in_mac_inner_or_counter_fails(
        inner in proptest::collection::vec(any::<u8>(), 0..64),
        flip in any::<u16>(),
        target in 0u8..3,
    ) {
        let (mut signer, mut verifier) = paired_verifier(80);
        let host_id = signer.host_id();
        let auth = signer.sign(&inner).unwrap();
        let mut mac = auth.mac;
        let mut inner_changed = inner.clone();
        let mut counter = auth.counter;
        match target {
            0 => mac[usize::from(flip) % HOST_MAC_LEN] ^= 1 << (flip % 8),
            1 if !inner.is_empty() => {
                let at = usize::from(flip) % inner.len();
                inner_changed[at] ^= 1 << (flip % 8);
            }
            1 => inner_changed.push(0),
            _ => counter ^= 1 << (flip % 64),
        }
        prop_assert_eq!(
            verifier.verify(&host_id, counter, &inner_changed, &mac),
            Err(HostAuthError::BadMac)
        );
        prop_assert_eq!(verifier.last_counter(&host_id), Some(0));
        prop_assert!(verifier.verify(&host_id, auth.counter, &inner, &auth.mac).is_ok());
    }

    #[test]
    fn counters_never_go_backwards(counters in proptest::collection::vec(1u64..40, 1..30)) {
        let (host_outcome, device_outcome) = pair(90);
        let key = HostMacKey::derive(host_outcome.host_pairing_key());
        let host_id = host_outcome.host_id();
        let mut verifier = HostVerifier::new();
        verifier
            .add_host(device_outcome.host_id(), device_outcome.host_pairing_key().clone())
            .unwrap();
        let mut highest = 0u64;
        for counter in counters {
            let mac = host_request_mac(&key, &host_id, counter, b"req");
            let result = verifier.verify(&host_id, counter, b"req", &mac);
            if counter > highest {
                prop_assert!(result.is_ok());
                highest = counter;
            } else {
                prop_assert_eq!(result, Err(HostAuthError::Replay { last: highest, got: counter }));
            }
            prop_assert_eq!(verifier.last_counter(&host_id), Some(highest));
        }
    }

    #[test]
    fn arbitrary_public_key_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let pairing = PairingPublicKey::from_sec1_bytes(&bytes);
        let ecdsa = EcdsaVerifyingKey::from_sec1_bytes(&bytes);
        prop_assert_eq!(pairing.is_ok(), ecdsa.is_ok());
    }

    #[test]
    fn arbitrary_uncompressed_points_never_panic(coordinates in proptest::collection::vec(any::<u8>(), 64)) {
        let mut bytes = vec![0x04];
        bytes.extend_from_slice(&coordinates);
        // Random coordinates are almost never on the curve; either way no panic.
        let _ = PairingPublicKey::from_sec1_bytes(&bytes);
        if let Ok(key) = EcdsaVerifyingKey::from_sec1_bytes(&bytes) {
            let encoded = key.to_sec1_bytes();
            prop_assert_eq!(encoded.as_slice(), bytes.as_slice());
        }
    }

    #[test]
    fn arbitrary_signatures_and_states_are_refused_without_panic(
        signature in proptest::collection::vec(any::<u8>(), 64),
        state in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let key = EcdsaSigningKey::generate(&mut rng(5)).verifying_key();
        let signature = EcdsaSignature::from_slice(&signature).unwrap();
        prop_assert!(key.verify(SignatureDomain::DeviceAttestation, b"m", &signature).is_err());
        let _ = HostVerifier::from_bytes(&state);
        let mut framed = b"PBHV\x01".to_vec();
        framed.extend_from_slice(&state);
        let _ = HostVerifier::from_bytes(&framed);
    }

    #[test]
    fn signatures_round_trip_for_any_message(seed in any::<u8>(), message in proptest::collection::vec(any::<u8>(), 0..200)) {
        let key = EcdsaSigningKey::generate(&mut rng(seed));
        let public = EcdsaVerifyingKey::from_sec1_bytes(&key.verifying_key().to_sec1_bytes()).unwrap();
        let signature = key.sign(SignatureDomain::OutOfBandConfirmation, &message);
        prop_assert_eq!(signature, key.sign(SignatureDomain::OutOfBandConfirmation, &message));
        prop_assert!(public.verify(SignatureDomain::OutOfBandConfirmation, &message, &signature).is_ok());
    }
}

#[test]
fn one_public_key_type_and_its_wire_field() {
    let key = EcdsaSigningKey::generate(&mut ChaCha20Rng::from_seed([21; 32])).verifying_key();
    // The key a signature is verified with is the key a pairing agrees with: one type.
    let pairing: PairingPublicKey = key;
    let field = firmware_protocol::message::EcPublicKey::from(&pairing);
    assert_eq!(field.as_bytes(), key.as_bytes());
    assert_eq!(P256PublicKey::try_from(&field), Ok(key));
    // The wire field checks the prefix only; the key checks the point.
    let mut off_curve = *key.as_bytes();
    off_curve[64] ^= 1;
    let field = firmware_protocol::message::EcPublicKey::new(off_curve).unwrap();
    assert_eq!(
        P256PublicKey::try_from(&field),
        Err(PublicKeyError::NotOnCurve)
    );
}
