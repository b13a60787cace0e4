//! Every rule of the device (issue 4 item 1), driven through the protocol: encoded requests
//! in, encoded responses out, with the bank and host played by firmware-protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use device_sim::certificate::DeviceCertificate;
use device_sim::device::{Progress, firmware_image_hash};
use device_sim::hardware::{EventKind, KeyPress};
use firmware_protocol::crypto::ecdsa::EcdsaSignature;
use firmware_protocol::crypto::pairing::HostPairing;
use firmware_protocol::crypto::tr31::{KeyUsageCode, ModeOfUse};
use firmware_protocol::message::{
    BankCommandKind, BankResult, Cancel, EcPublicKey, GetInfo, GetIntegrityReport, GetStatus,
    HostId, HostVerified, Indicator, IntegrityReport, KeyBlock, Lifecycle, LockState, MacTag,
    Nonce, OperatorReset, PairBegin, PairConfirm, Ping, Request, Response, SessionId, Sha256Digest,
    SignConfirmation, Status, StatusCode, Unpair,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::{PIN, Rig, SERIAL, kcv_of, response, status_of};

fn status(rig: &mut Rig) -> Status {
    match rig.request(Request::GetStatus(GetStatus)) {
        Response::Status(status) => status,
        other => panic!("GetStatus answered {other:?}"),
    }
}

fn pair_begin(seed: u8) -> PairBegin {
    let host = HostPairing::start(&mut ChaCha20Rng::from_seed([seed; 32]));
    PairBegin {
        host_public_key: EcPublicKey::from(host.public_key()),
        host_commitment: Sha256Digest(*host.commitment().as_bytes()),
        host_name: "MALLORY".into(),
    }
}

fn error_indicator(response: &Response) -> Indicator {
    match response {
        Response::Error(error) => error.indicator,
        other => panic!("expected an Error, got {other:?}"),
    }
}

// ---- manufacture and initialisation -------------------------------------------------------

#[test]
fn manufacture_gives_an_attestation_key_certified_by_the_ca() {
    let mut rig = Rig::new();
    let info = match rig.request(Request::GetInfo(GetInfo)) {
        Response::Info(info) => info,
        other => panic!("{other:?}"),
    };
    assert_eq!(info.serial, SERIAL);
    assert_eq!(info.link_mtu, 64);
    assert_eq!(
        info.firmware_hash.0,
        firmware_image_hash(&info.firmware_version)
    );
    let certificate = DeviceCertificate::decode(&info.certificate).unwrap();
    certificate
        .verify_signature(&rig.bank.ca.public_key())
        .unwrap();
    assert_eq!(certificate.serial, SERIAL);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(certificate.is_valid_at(now));
    assert_eq!(
        &certificate.attestation_public_key.to_sec1_bytes(),
        info.attestation_public_key.as_bytes()
    );
    let fresh = status(&mut rig);
    assert_eq!(fresh.lifecycle, Lifecycle::Manufactured);
    assert!(!fresh.tampered);
    assert_eq!(fresh.locks_in_seconds, None);
    assert_eq!(
        status_of(&rig.request(Request::PairBegin(pair_begin(1)))),
        StatusCode::NotInitialised
    );
}

#[test]
fn initialise_installs_the_kbpk_from_an_ecdh_kek_and_answers_its_kcv() {
    let mut rig = Rig::new();
    let answer = rig.initialise();
    let expected = kcv_of(rig.bank.kbpk.as_ref().unwrap().material());
    match answer {
        Response::Initialised(initialised) => assert_eq!(initialised.kcv, expected),
        other => panic!("{other:?}"),
    }
    let initialised = status(&mut rig);
    assert_eq!(initialised.lifecycle, Lifecycle::Initialised);
    assert_eq!(initialised.bank_sequence, 1);
    assert!(initialised.locks_in_seconds.is_some());
    // A second Initialise is the wrong state.
    let again = rig
        .bank
        .initialise(SERIAL, &rig.device.attestation_public_key());
    assert_eq!(
        status_of(&rig.request(Request::Initialise(again))),
        StatusCode::WrongState
    );
}

#[test]
fn initialise_refuses_wrong_device_bad_signature_stale_sequence_bad_kcv_and_wrong_usage() {
    let mut rig = Rig::new();
    let key = rig.device.attestation_public_key();

    let mut other = rig.bank.initialise("PP-OTHER", &key);
    rig.bank.resign_initialise(&mut other);
    assert_eq!(
        status_of(&rig.request(Request::Initialise(other))),
        StatusCode::WrongDevice
    );

    let mut forged = rig.bank.initialise(SERIAL, &key);
    let mut bytes = forged.signature.to_bytes();
    bytes[10] ^= 1;
    forged.signature = EcdsaSignature::from_array(bytes);
    assert_eq!(
        status_of(&rig.request(Request::Initialise(forged))),
        StatusCode::BadSignature
    );

    let mut bad_kcv = rig.bank.initialise(SERIAL, &key);
    bad_kcv.kbpk.kcv = kcv_of(
        &firmware_protocol::crypto::keys::KeyMaterial::new(
            firmware_protocol::crypto::keys::KeyAlgorithm::Aes,
            &[7; 32],
        )
        .unwrap(),
    );
    rig.bank.resign_initialise(&mut bad_kcv);
    assert_eq!(
        status_of(&rig.request(Request::Initialise(bad_kcv))),
        StatusCode::KcvMismatch
    );
    assert_eq!(
        status(&mut rig).lifecycle,
        Lifecycle::Manufactured,
        "nothing installed"
    );

    // A PIN-key block where the KBPK belongs.
    let mut wrong_usage = rig.bank.initialise(SERIAL, &key);
    let kek_block = wrong_usage.kbpk.key_block.as_str().replacen("K1", "P0", 1);
    wrong_usage.kbpk.key_block = KeyBlock::new(&kek_block).unwrap();
    rig.bank.resign_initialise(&mut wrong_usage);
    assert_eq!(
        status_of(&rig.request(Request::Initialise(wrong_usage))),
        StatusCode::KeyBlockRejected,
        "editing the header breaks the block's MAC"
    );

    let good = rig.bank.initialise(SERIAL, &key);
    let replay = good.clone();
    assert!(matches!(
        rig.request(Request::Initialise(good)),
        Response::Initialised(_)
    ));
    // The device is initialised now; a replay of the same signed request is refused.
    assert_ne!(
        status_of(&rig.request(Request::Initialise(replay))),
        StatusCode::Ok
    );
}

#[test]
fn initialise_with_an_old_sequence_is_stale() {
    let mut rig = Rig::new();
    let key = rig.device.attestation_public_key();
    let older = rig.bank.initialise(SERIAL, &key);
    // The bank moved on (a command the device accepted) before this Initialise arrives.
    let mut newer = rig.bank.operator_reset(SERIAL);
    newer.sequence = 5;
    newer.signature = rig.bank.sign(
        &rig.bank.operator,
        OperatorReset::SIGNATURE_DOMAIN,
        &newer.signed_bytes().unwrap(),
    );
    assert!(matches!(
        rig.request(Request::OperatorReset(newer)),
        Response::Status(_)
    ));
    assert_eq!(
        status_of(&rig.request(Request::Initialise(older))),
        StatusCode::StaleBankCounter
    );
}

// ---- enrolment ----------------------------------------------------------------------------

#[test]
fn enrol_takes_the_pin_twice_on_the_keypad_and_returns_it_enciphered() {
    let mut rig = Rig::new();
    rig.initialise();
    let request = rig.bank.enrol(SERIAL);
    let (id, outcome) = rig.start(Request::Enrol(request));
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 0, max: 6 })
    );
    let outcome = rig.keys(&[KeyPress::Digit(1), KeyPress::Digit(2), KeyPress::Digit(3)]);
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 3, max: 6 })
    );
    assert!(
        rig.hw.display().iter().any(|l| l == "PIN: ***"),
        "{:?}",
        rig.hw.display()
    );
    assert!(
        !rig.hw.display().concat().contains("123"),
        "digits never shown"
    );
    let outcome = rig.keys(&[
        KeyPress::Clear,
        KeyPress::Digit(3),
        KeyPress::Digit(4),
        KeyPress::Enter,
    ]);
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 0, max: 6 })
    );
    let outcome = rig.type_pin(PIN);
    let (answer_id, answer) = response(outcome.answer().unwrap());
    assert_eq!(answer_id, id);
    let enrolled = match answer {
        Response::Enrolled(enrolled) => enrolled,
        other => panic!("{other:?}"),
    };
    let key = rig.bank.enrol_pin_key.clone().unwrap();
    assert_eq!(rig.bank.reveal_pin(&key, &enrolled.pin_block), PIN);
    assert_eq!(status(&mut rig).lifecycle, Lifecycle::Bound);
    let again = rig.bank.enrol(SERIAL);
    assert_eq!(
        status_of(&rig.request(Request::Enrol(again))),
        StatusCode::WrongState
    );
}

#[test]
fn enrol_refuses_two_different_pins_and_a_pin_outside_the_policy() {
    let mut rig = Rig::new();
    rig.initialise();
    let enrol = rig.bank.enrol(SERIAL);
    let (_, outcome) = rig.start(Request::Enrol(enrol));
    assert!(outcome.is_pending());
    rig.type_pin("1234");
    let (_, answer) = response(rig.type_pin("4321").answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::PinMismatch);
    assert_eq!(status(&mut rig).lifecycle, Lifecycle::Initialised);

    let enrol = rig.bank.enrol(SERIAL);
    let (_, outcome) = rig.start(Request::Enrol(enrol));
    assert!(outcome.is_pending());
    let (_, answer) = response(rig.type_pin("12").answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::PinPolicy);

    let enrol = rig.bank.enrol(SERIAL);
    let (_, outcome) = rig.start(Request::Enrol(enrol));
    assert!(outcome.is_pending());
    let (_, answer) = response(
        rig.keys(&[KeyPress::Digit(1), KeyPress::Cancel])
            .answer()
            .unwrap(),
    );
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
}

// ---- pairing and host verification --------------------------------------------------------

#[test]
fn pairing_shows_the_code_and_stores_the_host_after_the_user_confirms() {
    let mut rig = Rig::new();
    rig.initialise();
    rig.enrol(PIN);
    let answer = rig.pair();
    assert!(matches!(answer, Response::PairResult(_)), "{answer:?}");
    assert_eq!(status(&mut rig).paired_hosts, 1);
    // The paired host may now wrap requests.
    assert!(matches!(
        rig.request_hv(Request::GetStatus(GetStatus)),
        Response::Status(_)
    ));
}

#[test]
fn pairing_refuses_a_nonce_that_breaks_the_commitment_and_a_user_who_sees_another_code() {
    let mut rig = Rig::new();
    rig.initialise();
    assert!(matches!(
        rig.request(Request::PairBegin(pair_begin(1))),
        Response::PairChallenge(_)
    ));
    let answer = rig.request(Request::PairConfirm(PairConfirm {
        host_nonce: Nonce([0; 16]),
    }));
    assert_eq!(status_of(&answer), StatusCode::PairingConfirmationFailed);
    // Without a PairBegin there is nothing to confirm.
    let answer = rig.request(Request::PairConfirm(PairConfirm {
        host_nonce: Nonce([0; 16]),
    }));
    assert_eq!(status_of(&answer), StatusCode::WrongState);

    // The user presses Cancel (the codes differ, or not now: one key, PROTOCOL.md §6.2).
    let answer = rig.pair_pressing(&[KeyPress::Cancel]);
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
    assert_eq!(status(&mut rig).paired_hosts, 0);
}

#[test]
fn session_requests_from_an_unpaired_host_are_refused() {
    let mut rig = Rig::new();
    rig.initialise();
    rig.enrol(PIN);
    let (keys, _) = rig.bank.session_keys();
    assert_eq!(
        status_of(&rig.request(Request::LoadSessionKeys(keys.clone()))),
        StatusCode::NotPaired
    );
    // An envelope from a host id the device never paired.
    let inner = Request::LoadSessionKeys(keys).encode(7).unwrap();
    let envelope = HostVerified {
        host_id: HostId::from_array([9; 8]),
        counter: 1,
        inner,
        mac: MacTag([0; 16]),
    };
    let answer = response(
        rig.raw(&Request::HostVerified(envelope).encode(7).unwrap())
            .answer()
            .unwrap(),
    )
    .1;
    assert_eq!(status_of(&answer), StatusCode::UnknownHost);
}

#[test]
fn host_verification_refuses_a_bad_mac_with_danger_and_a_replayed_counter() {
    let mut rig = Rig::ready();
    // Bad MAC.
    let id = rig.id();
    let mut envelope = match rig.envelope(id, &Request::GetStatus(GetStatus)) {
        Request::HostVerified(envelope) => envelope,
        _ => unreachable!(),
    };
    envelope.mac.0[0] ^= 1;
    let answer = response(
        rig.raw(&Request::HostVerified(envelope.clone()).encode(id).unwrap())
            .answer()
            .unwrap(),
    )
    .1;
    assert_eq!(status_of(&answer), StatusCode::BadHostMac);
    assert_eq!(error_indicator(&answer), Indicator::Danger);
    assert_eq!(rig.hw.indicator(), Indicator::Danger);

    // Replay of an accepted envelope.
    let id = rig.id();
    let envelope = rig.envelope(id, &Request::GetStatus(GetStatus));
    let bytes = envelope.encode(id).unwrap();
    assert!(matches!(
        response(rig.raw(&bytes).answer().unwrap()).1,
        Response::Status(_)
    ));
    let answer = response(rig.raw(&bytes).answer().unwrap()).1;
    assert_eq!(status_of(&answer), StatusCode::ReplayedCounter);
    // Still refused after a restart: the counter is in the secure store.
    rig.restart();
    let answer = response(rig.raw(&bytes).answer().unwrap()).1;
    assert_eq!(status_of(&answer), StatusCode::ReplayedCounter);

    // The inner request must carry the envelope's request id.
    let inner_id = rig.id();
    let envelope = rig.envelope(inner_id, &Request::GetStatus(GetStatus));
    let answer = response(
        rig.raw(&envelope.encode(inner_id + 1).unwrap())
            .answer()
            .unwrap(),
    )
    .1;
    assert_eq!(status_of(&answer), StatusCode::BadEnvelope);
}

#[test]
fn unpair_forgets_a_host() {
    let mut rig = Rig::ready();
    let host_id = rig.pairing.as_ref().unwrap().host_id();
    assert_eq!(
        status_of(&rig.request_hv(Request::Unpair(Unpair {
            host_id: HostId::from_array([1; 8])
        }))),
        StatusCode::UnknownHost
    );
    match rig.request_hv(Request::Unpair(Unpair { host_id })) {
        Response::Status(status) => assert_eq!(status.paired_hosts, 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        status_of(&rig.request_hv(Request::GetStatus(GetStatus))),
        StatusCode::UnknownHost
    );
}

// ---- session keys and login ---------------------------------------------------------------

#[test]
fn a_bad_key_block_or_kcv_is_an_intrusion_refused_with_the_old_keys_kept() {
    let mut rig = Rig::ready();
    let old_session = rig.bank.session().id;

    let (mut bad_kcv, _) = rig.bank.session_keys();
    bad_kcv.mac_key.kcv = bad_kcv.pin_key.kcv.clone();
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(bad_kcv))),
        StatusCode::KcvMismatch
    );

    let (mut bad_block, _) = rig.bank.session_keys();
    let mut text = bad_block.response_key.key_block.as_str().to_string();
    let last = text.pop().unwrap();
    text.push(if last == '0' { '1' } else { '0' });
    bad_block.response_key.key_block = KeyBlock::new(&text).unwrap();
    let answer = rig.request_hv(Request::LoadSessionKeys(bad_block));
    assert_eq!(status_of(&answer), StatusCode::KeyBlockRejected);
    assert_eq!(error_indicator(&answer), Indicator::Danger);

    let (mut wrong_usage, _) = rig.bank.session_keys();
    let kbpk = rig.bank.kbpk.clone().unwrap();
    let material = firmware_protocol::crypto::keys::KeyMaterial::new(
        firmware_protocol::crypto::keys::KeyAlgorithm::Aes,
        &[0x42; 16],
    )
    .unwrap();
    wrong_usage.mac_key.key_block = rig.bank.wrap(
        &kbpk,
        KeyUsageCode::P0,
        ModeOfUse::EncryptDecrypt,
        &material,
    );
    wrong_usage.mac_key.kcv = kcv_of(&material);
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(wrong_usage))),
        StatusCode::WrongKeyUsage
    );

    let (mut same, _) = rig.bank.session_keys();
    same.response_key = same.mac_key.clone();
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(same))),
        StatusCode::KeysNotDistinct
    );

    let intrusions = rig
        .hw
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Intrusion { .. }))
        .count();
    assert_eq!(intrusions, 4, "each refusal is reported in the device log");

    // The old session still works: a challenge under it is answered with the old MAC key.
    let challenge = rig.bank.challenge();
    assert_eq!(challenge.session_id, old_session);
    assert!(matches!(
        rig.request_hv(Request::BankChallenge(challenge)),
        Response::ChallengeResponse(_)
    ));
}

#[test]
fn session_requests_need_the_current_session() {
    let mut rig = Rig::new();
    rig.initialise();
    rig.enrol(PIN);
    rig.pair();
    let (keys, session) = rig.bank.session_keys();
    rig.bank.session = Some(session);
    let challenge = rig.bank.challenge();
    assert_eq!(
        status_of(&rig.request_hv(Request::BankChallenge(challenge))),
        StatusCode::NoSession
    );
    assert!(matches!(
        rig.request_hv(Request::LoadSessionKeys(keys)),
        Response::KeysLoaded(_)
    ));
    let mut other = rig.bank.challenge();
    other.session_id = SessionId([0xEE; 16]);
    assert_eq!(
        status_of(&rig.request_hv(Request::BankChallenge(other))),
        StatusCode::SessionMismatch
    );
}

#[test]
fn an_initialised_but_unbound_device_refuses_sessions() {
    let mut rig = Rig::new();
    rig.initialise();
    rig.pair();
    let (keys, _) = rig.bank.session_keys();
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(keys))),
        StatusCode::NotBound
    );
}

// ---- payments -----------------------------------------------------------------------------

#[test]
fn approve_payment_shows_the_payment_takes_the_pin_and_returns_a_pin_block_and_mac() {
    let mut rig = Rig::ready();
    let request = rig.bank.payment(12_345, "TX-1");
    let (id, outcome) = rig.start_hv(Request::ApprovePayment(request.clone()));
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 0, max: 6 })
    );
    let shown = rig.hw.display().join("\n");
    assert!(shown.contains("EUR 123.45"), "{shown}");
    assert!(shown.contains("ACME Widgets GmbH"), "{shown}");
    assert!(shown.contains("DE89370400440532013000"), "{shown}");
    // Too short: Enter is ignored, the device keeps waiting.
    let outcome = rig.keys(&[KeyPress::Digit(1), KeyPress::Enter]);
    assert_eq!(
        outcome.progress,
        Some(Progress::PinEntry { entered: 1, max: 6 })
    );
    let outcome = rig.keys(&[
        KeyPress::Digit(2),
        KeyPress::Digit(3),
        KeyPress::Digit(4),
        KeyPress::Enter,
    ]);
    let (answer_id, answer) = response(outcome.answer().unwrap());
    assert_eq!(answer_id, id);
    let approved = match answer {
        Response::PaymentApproved(approved) => approved,
        other => panic!("{other:?}"),
    };
    let session = rig.bank.session();
    assert_eq!(
        rig.bank.reveal_pin(&session.pin_key, &approved.pin_block),
        PIN
    );
    assert_eq!(approved.device_counter, 1);
    assert!(
        approved.mac_verifies(&session.mac_key, &request),
        "the bank verifies the device's MAC"
    );
    assert_eq!(rig.approved("TX-2").device_counter, 2);
}

#[test]
fn approve_payment_refuses_a_changed_amount_a_stale_counter_and_danger_is_shown() {
    let mut rig = Rig::ready();
    let mut changed = rig.bank.payment(1_000, "TX-1");
    changed.payment.amount_minor = 999_999; // the PC changes the amount
    let answer = rig.request_hv(Request::ApprovePayment(changed));
    assert_eq!(status_of(&answer), StatusCode::BadBankMac);
    assert_eq!(error_indicator(&answer), Indicator::Danger);
    assert!(!rig.hw.display().join(" ").contains("999"), "nothing shown");

    let first = rig.bank.payment(1_000, "TX-2");
    let replay = first.clone();
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(first));
    assert!(outcome.is_pending());
    rig.type_pin(PIN);
    assert_eq!(
        status_of(&rig.request_hv(Request::ApprovePayment(replay))),
        StatusCode::StaleBankCounter
    );
}

#[test]
fn the_user_can_cancel_or_be_too_slow_and_the_host_can_cancel() {
    let mut rig = Rig::ready();
    let payment = rig.bank.payment(100, "TX-1");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    let (_, answer) = response(
        rig.keys(&[KeyPress::Digit(1), KeyPress::Cancel])
            .answer()
            .unwrap(),
    );
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);

    let payment = rig.bank.payment(100, "TX-2");
    let (_, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    rig.hw.advance_clock(121_000);
    let (_, answer) = response(rig.device.poll(&mut rig.hw).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserTimeout);

    let payment = rig.bank.payment(100, "TX-3");
    let (id, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    // While busy: status is answered, other work is not.
    assert!(matches!(
        rig.request(Request::GetStatus(GetStatus)),
        Response::Status(_)
    ));
    assert!(matches!(
        rig.request(Request::Ping(Ping { payload: vec![1] })),
        Response::Pong(_)
    ));
    let answer = rig.request_hv(Request::GetIntegrityReport(GetIntegrityReport {
        nonce: Nonce([1; 16]),
    }));
    assert_eq!(status_of(&answer), StatusCode::Busy);
    let (cancel_id, outcome) = rig.start(Request::Cancel(Cancel {
        target_request_id: id,
    }));
    assert_eq!(outcome.answers.len(), 2);
    let (first_id, first) = response(&outcome.answers[0]);
    assert_eq!(
        (first_id, status_of(&first)),
        (id, StatusCode::HostCancelled)
    );
    let (second_id, second) = response(&outcome.answers[1]);
    assert_eq!(second_id, cancel_id);
    assert!(matches!(second, Response::CancelResult(r) if r.cancelled));
}

#[test]
fn verify_bank_response_sets_safe_for_a_genuine_response_and_danger_for_a_forged_one() {
    let mut rig = Rig::ready();
    let approved = rig.approved("TX-1");
    let mut forged = rig
        .bank
        .verdict("TX-1", approved.device_counter, BankResult::Approved);
    forged.bank_mac.0[3] ^= 0x40;
    let answer = rig.request_hv(Request::VerifyBankResponse(forged));
    assert_eq!(status_of(&answer), StatusCode::BadBankMac);
    assert_eq!(rig.hw.indicator(), Indicator::Danger);

    let wrong_tx = rig
        .bank
        .verdict("TX-9", approved.device_counter, BankResult::Approved);
    assert_eq!(
        status_of(&rig.request_hv(Request::VerifyBankResponse(wrong_tx))),
        StatusCode::TransactionMismatch
    );

    let genuine = rig
        .bank
        .verdict("TX-1", approved.device_counter, BankResult::Approved);
    match rig.request_hv(Request::VerifyBankResponse(genuine)) {
        Response::IndicatorSet(set) => {
            assert_eq!(set.indicator, Indicator::Safe);
            assert_eq!(set.display_text, "Approved");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.hw.indicator(), Indicator::Safe);
    assert!(rig.hw.display().iter().any(|l| l == "Approved"));
    let history: Vec<_> = rig
        .hw
        .indicator_history()
        .iter()
        .map(|c| c.indicator)
        .collect();
    assert_eq!(history, [Indicator::Danger, Indicator::Safe]);

    // A declined payment is still a genuine response: safe, with the reason shown.
    let approved = rig.approved("TX-2");
    let declined = rig.bank.verdict(
        "TX-2",
        approved.device_counter,
        BankResult::InsufficientFunds,
    );
    match rig.request_hv(Request::VerifyBankResponse(declined)) {
        Response::IndicatorSet(set) => {
            assert_eq!(set.result, BankResult::InsufficientFunds);
            assert!(set.display_text.contains("insufficient funds"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn out_of_band_confirmation_is_signed_with_the_attestation_key_after_the_user_approves() {
    let mut rig = Rig::ready();
    let request = SignConfirmation {
        payment: rig.bank.payment_details(50_000, "OOB-1"),
        nonce: Nonce([0x5A; 16]),
    };
    let (_, outcome) = rig.start_hv(Request::SignConfirmation(request.clone()));
    assert_eq!(outcome.progress, Some(Progress::AwaitingUser));
    assert!(rig.hw.display().join(" ").contains("EUR 500.00"));
    let (_, answer) = response(rig.keys(&[KeyPress::Enter]).answer().unwrap());
    let signature = match answer {
        Response::ConfirmationSignature(signature) => signature.signature,
        other => panic!("{other:?}"),
    };
    rig.device
        .attestation_public_key()
        .verify(
            SignConfirmation::SIGNATURE_DOMAIN,
            &request.signed_bytes().unwrap(),
            &signature,
        )
        .unwrap();

    let (_, outcome) = rig.start_hv(Request::SignConfirmation(request));
    assert!(outcome.is_pending());
    let (_, answer) = response(rig.keys(&[KeyPress::Cancel]).answer().unwrap());
    assert_eq!(status_of(&answer), StatusCode::UserCancelled);
}

// ---- tamper -------------------------------------------------------------------------------

#[test]
fn tamper_mid_payment_wipes_keys_at_once_and_stays_tampered_until_an_operator_reset() {
    let mut rig = Rig::ready();
    let payment = rig.bank.payment(100, "TX-1");
    let (id, outcome) = rig.start_hv(Request::ApprovePayment(payment));
    assert!(outcome.is_pending());
    rig.keys(&[KeyPress::Digit(1), KeyPress::Digit(2)]);
    rig.hw.set_tamper_switch(true);
    let outcome = rig.device.poll(&mut rig.hw);
    let (answer_id, answer) = response(outcome.answer().expect("the payment is answered"));
    assert_eq!((answer_id, status_of(&answer)), (id, StatusCode::Tampered));
    assert_eq!(rig.hw.indicator(), Indicator::Danger);
    let tampered = status(&mut rig);
    assert!(tampered.tampered);
    assert_eq!(tampered.lifecycle, Lifecycle::Manufactured);
    assert_eq!((tampered.paired_hosts, tampered.session_active), (0, false));
    assert!(rig.hw.display().iter().any(|l| l.contains("TAMPERED")));

    // Closing the case does not help; neither does a restart.
    rig.hw.set_tamper_switch(false);
    rig.restart();
    assert!(status(&mut rig).tampered);
    assert_eq!(rig.hw.indicator(), Indicator::Danger);
    let nonce = GetIntegrityReport {
        nonce: Nonce([1; 16]),
    };
    assert_eq!(
        status_of(&rig.request(Request::GetIntegrityReport(nonce))),
        StatusCode::Tampered
    );
    let key = rig.device.attestation_public_key();
    let init = rig.bank.initialise(SERIAL, &key);
    assert_eq!(
        status_of(&rig.request(Request::Initialise(init))),
        StatusCode::Tampered
    );

    // Only an operator-signed reset clears it; a forged one does not.
    let mut forged = rig.bank.operator_reset(SERIAL);
    forged.signature = rig.bank.sign(
        &rig.bank.management,
        OperatorReset::SIGNATURE_DOMAIN,
        &forged.signed_bytes().unwrap(),
    );
    assert_eq!(
        status_of(&rig.request(Request::OperatorReset(forged))),
        StatusCode::BadSignature
    );
    let reset = rig.bank.operator_reset(SERIAL);
    match rig.request(Request::OperatorReset(reset)) {
        Response::Status(status) => {
            assert!(!status.tampered);
            assert_eq!(status.lifecycle, Lifecycle::Manufactured);
            assert_eq!(status.indicator, Indicator::Off);
        }
        other => panic!("{other:?}"),
    }
    // The device must be initialised again.
    let init = rig.bank.initialise(SERIAL, &key);
    assert!(matches!(
        rig.request(Request::Initialise(init)),
        Response::Initialised(_)
    ));
}

#[test]
fn an_idle_device_notices_tamper_and_a_reset_needs_the_case_closed() {
    let mut rig = Rig::ready();
    rig.hw.set_tamper_switch(true);
    assert!(rig.device.poll(&mut rig.hw).answers.is_empty());
    assert!(status(&mut rig).tampered);
    let reset = rig.bank.operator_reset(SERIAL);
    assert_eq!(
        status_of(&rig.request(Request::OperatorReset(reset))),
        StatusCode::WrongState
    );
    rig.hw.set_tamper_switch(false);
    let reset = rig.bank.operator_reset(SERIAL);
    assert!(matches!(
        rig.request(Request::OperatorReset(reset)),
        Response::Status(_)
    ));
}

// ---- lock, bank commands ------------------------------------------------------------------

#[test]
fn the_device_locks_itself_after_t2_without_bank_contact_and_only_the_bank_unlocks_it() {
    let mut rig = Rig::with_settings(|settings| settings.lock_after_seconds = 3600);
    rig.initialise();
    rig.enrol(PIN);
    rig.pair();
    rig.login();
    assert_eq!(status(&mut rig).locks_in_seconds, Some(3600));
    rig.hw.advance_clock(1_800_000);
    assert_eq!(status(&mut rig).locks_in_seconds, Some(1800));
    rig.hw.advance_clock(1_800_001);
    let status_now = status(&mut rig);
    assert_eq!(status_now.lock, LockState::LockedInactivity);
    assert!(!status_now.session_active);
    let payment = rig.bank.payment(100, "TX-1");
    assert_eq!(
        status_of(&rig.request_hv(Request::ApprovePayment(payment))),
        StatusCode::Locked
    );
    assert_eq!(
        status_of(&rig.request(Request::PairBegin(pair_begin(2)))),
        StatusCode::Locked
    );
    // Still locked after a restart.
    rig.restart();
    assert_eq!(status(&mut rig).lock, LockState::LockedInactivity);
    // The integrity report still works (that is how the bank re-checks).
    let report = GetIntegrityReport {
        nonce: Nonce([2; 16]),
    };
    assert!(matches!(
        rig.request(Request::GetIntegrityReport(report)),
        Response::IntegrityReport(_)
    ));
    let unlock = rig.bank.command(SERIAL, BankCommandKind::Unlock, "");
    match rig.request(Request::BankCommand(unlock)) {
        Response::Status(status) => assert_eq!(status.lock, LockState::Unlocked),
        other => panic!("{other:?}"),
    }
    rig.login();
}

#[test]
fn bank_signed_lock_unlock_and_wipe() {
    let mut rig = Rig::ready();
    let lock = rig
        .bank
        .command(SERIAL, BankCommandKind::Lock, "Reported lost");
    let replay = lock.clone();
    assert!(
        matches!(rig.request(Request::BankCommand(lock)), Response::Status(s) if s.lock == LockState::LockedByBank)
    );
    assert!(rig.hw.display().iter().any(|l| l == "Reported lost"));
    let (keys, _) = rig.bank.session_keys();
    assert_eq!(
        status_of(&rig.request_hv(Request::LoadSessionKeys(keys))),
        StatusCode::LockedByBank
    );
    assert_eq!(
        status_of(&rig.request(Request::BankCommand(replay))),
        StatusCode::StaleBankCounter
    );

    let mut forged = rig.bank.command(SERIAL, BankCommandKind::Unlock, "");
    forged.command = BankCommandKind::Wipe;
    assert_eq!(
        status_of(&rig.request(Request::BankCommand(forged))),
        StatusCode::BadSignature
    );
    let mut elsewhere = rig.bank.command("PP-OTHER", BankCommandKind::Unlock, "");
    rig.bank.resign_command(&mut elsewhere);
    assert_eq!(
        status_of(&rig.request(Request::BankCommand(elsewhere))),
        StatusCode::WrongDevice
    );

    let unlock = rig.bank.command(SERIAL, BankCommandKind::Unlock, "");
    assert!(
        matches!(rig.request(Request::BankCommand(unlock)), Response::Status(s) if s.lock == LockState::Unlocked)
    );
    rig.login();

    let wipe = rig
        .bank
        .command(SERIAL, BankCommandKind::Wipe, "Moved to a new device");
    match rig.request(Request::BankCommand(wipe)) {
        Response::Status(status) => {
            assert_eq!(status.lifecycle, Lifecycle::Revoked);
            assert_eq!((status.paired_hosts, status.session_active), (0, false));
        }
        other => panic!("{other:?}"),
    }
    let report = GetIntegrityReport {
        nonce: Nonce([3; 16]),
    };
    assert_eq!(
        status_of(&rig.request(Request::GetIntegrityReport(report))),
        StatusCode::Revoked
    );
    let unlock = rig.bank.command(SERIAL, BankCommandKind::Unlock, "");
    assert_eq!(
        status_of(&rig.request(Request::BankCommand(unlock))),
        StatusCode::Revoked
    );
    let reset = rig.bank.operator_reset(SERIAL);
    assert!(
        matches!(rig.request(Request::OperatorReset(reset)), Response::Status(s) if s.lifecycle == Lifecycle::Manufactured)
    );
}

// ---- integrity ----------------------------------------------------------------------------

#[test]
fn the_integrity_report_is_signed_by_the_attestation_key_over_the_bank_nonce() {
    let mut rig = Rig::ready();
    let request = GetIntegrityReport {
        nonce: Nonce([0x11; 16]),
    };
    let report = match rig.request(Request::GetIntegrityReport(request)) {
        Response::IntegrityReport(report) => report,
        other => panic!("{other:?}"),
    };
    assert_eq!(report.device_serial, SERIAL);
    assert_eq!(
        report.firmware_hash.0,
        firmware_image_hash(&report.firmware_version)
    );
    let key = rig.device.attestation_public_key();
    let signature = report.signature;
    key.verify(
        IntegrityReport::SIGNATURE_DOMAIN,
        &report.signed_bytes(&request).unwrap(),
        &signature,
    )
    .unwrap();
    let other_nonce = GetIntegrityReport {
        nonce: Nonce([0x12; 16]),
    };
    assert!(
        key.verify(
            IntegrityReport::SIGNATURE_DOMAIN,
            &report.signed_bytes(&other_nonce).unwrap(),
            &signature
        )
        .is_err()
    );

    // Modified firmware: the report says so, and payment functions are off.
    rig.device.measure_firmware(b"patched firmware");
    let report = match rig.request(Request::GetIntegrityReport(request)) {
        Response::IntegrityReport(report) => report,
        other => panic!("{other:?}"),
    };
    assert_ne!(
        report.firmware_hash.0,
        firmware_image_hash(&report.firmware_version)
    );
    let payment = rig.bank.payment(100, "TX-1");
    assert_eq!(
        status_of(&rig.request_hv(Request::ApprovePayment(payment))),
        StatusCode::IntegrityFailure
    );
}

// ---- restarts, decoding -------------------------------------------------------------------

#[test]
fn a_restart_keeps_identity_keys_binding_pairings_and_counters_but_not_the_session() {
    let mut rig = Rig::ready();
    let first = rig.approved("TX-1");
    let info_before = rig.request(Request::GetInfo(GetInfo));
    rig.restart();
    assert_eq!(rig.request(Request::GetInfo(GetInfo)), info_before);
    let after = status(&mut rig);
    assert_eq!(after.lifecycle, Lifecycle::Bound);
    assert_eq!((after.paired_hosts, after.session_active), (1, false));
    let challenge = rig.bank.challenge();
    assert_eq!(
        status_of(&rig.request_hv(Request::BankChallenge(challenge))),
        StatusCode::NoSession
    );
    rig.login();
    // A payment counter accepted before the restart stays used; the device counter goes on.
    let approved = rig.approved("TX-2");
    assert_eq!(approved.device_counter, first.device_counter + 1);
}

#[test]
fn undecodable_requests_get_the_decoder_status() {
    let mut rig = Rig::new();
    let answer = |rig: &mut Rig, bytes: &[u8]| response(rig.raw(bytes).answer().unwrap());
    assert_eq!(
        status_of(&answer(&mut rig, &[0x02, 0, 1, 0, 0, 0, 9]).1),
        StatusCode::UnsupportedVersion
    );
    let (id, unknown) = answer(&mut rig, &[0x01, 0x0F, 0xFF, 0, 0, 0, 9]);
    assert_eq!((id, status_of(&unknown)), (9, StatusCode::UnknownMessage));
    assert_eq!(
        status_of(&answer(&mut rig, &[0x01, 0, 0x03, 0, 0, 0, 9, 0]).1),
        StatusCode::MalformedMessage
    );
    assert_eq!(
        status_of(&answer(&mut rig, &[0x01, 0x70, 0x00, 0, 0, 0, 9]).1),
        StatusCode::UnknownMessage
    );
    assert_eq!(
        status_of(&answer(&mut rig, &[]).1),
        StatusCode::MalformedMessage
    );
    // A response where a request belongs.
    assert_eq!(
        status_of(&answer(&mut rig, &[0x01, 0x80, 0x03, 0, 0, 0, 9, 0, 0]).1),
        StatusCode::MalformedMessage
    );
}

#[test]
fn no_pin_or_key_appears_in_the_event_log_display_or_debug_output() {
    let pin = "907531";
    let mut rig = Rig::new();
    rig.initialise();
    rig.enrol(pin);
    rig.pair();
    rig.login();
    let (_, answer) = rig.pay(pin, "TX-1");
    assert!(matches!(answer, Response::PaymentApproved(_)));
    let log = serde_json::to_string(rig.hw.events()).unwrap();
    let display_history = format!("{:?}", rig.hw.display());
    let debug = format!("{:?} {:?} {:?}", rig.device, rig.hw, rig.device.snapshot());
    let kbpk = hex::encode(rig.bank.kbpk.as_ref().unwrap().material().reveal_bytes());
    let session = rig.bank.session();
    let secrets = [
        pin.to_string(),
        kbpk,
        hex::encode(session.pin_key.material().reveal_bytes()),
        hex::encode(session.mac_key.material().reveal_bytes()),
        hex::encode(
            *rig.pairing
                .as_ref()
                .unwrap()
                .host_pairing_key()
                .reveal_bytes(),
        ),
    ];
    for text in [&log, &display_history, &debug] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into {text}"
            );
        }
    }
    assert!(
        log.contains("\"key\":\"digit\""),
        "key presses are logged as 'digit'"
    );
}
