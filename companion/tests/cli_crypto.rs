//! The operator's crypto tool, driven as an operator would: the real `pinbridge` binary with
//! arguments, checked against published known answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use assert_cmd::Command;
use predicates::prelude::*;

fn pinbridge() -> Command {
    Command::cargo_bin("pinbridge").expect("pinbridge binary is built")
}

fn stdout_of(args: &[&str]) -> String {
    let output = pinbridge().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "pinbridge {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn aes_cmac_matches_rfc4493_example_2() {
    let mac = stdout_of(&[
        "crypto",
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "--data",
        "6bc1bee22e409f96e93d7e117393172a",
    ]);
    assert_eq!(mac, "070A16B46B4D4144F79BDD9DD04A287C");
}

#[test]
fn retail_mac_matches_iso9797_annex_b() {
    // ISO/IEC 9797-1 Annex B: "Now is the time for all ", MAC algorithm 3, padding method 1.
    let mac = stdout_of(&[
        "crypto",
        "mac",
        "--alg",
        "iso9797-3",
        "--padding",
        "1",
        "--key",
        "0123456789abcdeffedcba9876543210",
        "--data",
        &hex::encode("Now is the time for all "),
    ]);
    assert_eq!(&mac[..8], "A1C72E74");
}

#[test]
fn tdes_kcv_of_the_classic_test_key() {
    let kcv = stdout_of(&[
        "crypto",
        "kcv",
        "--alg",
        "tdes",
        "--key",
        "0123456789abcdeffedcba9876543210",
    ]);
    assert_eq!(kcv, "08D7B4");
}

#[test]
fn a_16_byte_key_without_algorithm_is_refused_with_advice() {
    pinbridge()
        .args(["crypto", "kcv", "--key", "0123456789abcdeffedcba9876543210"])
        .assert()
        .failure()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("--alg aes|tdes"));
}

#[test]
fn format0_clear_block_matches_the_published_example() {
    let block = stdout_of(&[
        "crypto",
        "pinblock",
        "encode",
        "--format",
        "0",
        "--pin",
        "1234",
        "--pan",
        "43219876543210987",
    ]);
    assert_eq!(block, "0412AC89ABCDEF67");
    let pin = stdout_of(&[
        "crypto",
        "pinblock",
        "decode",
        "--format",
        "0",
        "--pan",
        "43219876543210987",
        "0412AC89ABCDEF67",
    ]);
    assert_eq!(pin, "1234");
}

#[test]
fn format4_enciphered_block_round_trips_and_is_random_without_fill() {
    let key = "00112233445566778899aabbccddeeff";
    let args = [
        "crypto",
        "pinblock",
        "encode",
        "--format",
        "4",
        "--pin",
        "271828",
        "--pan",
        "4111111111111111",
        "--key",
        key,
    ];
    let first = stdout_of(&args);
    let second = stdout_of(&args);
    assert_eq!(first.len(), 32);
    assert_ne!(first, second, "format 4 fill must be random");
    let pin = stdout_of(&[
        "crypto",
        "pinblock",
        "decode",
        "--format",
        "4",
        "--pan",
        "4111111111111111",
        "--key",
        key,
        &first,
    ]);
    assert_eq!(pin, "271828");
    // The wrong PAN does not give the PIN back.
    pinbridge()
        .args([
            "crypto",
            "pinblock",
            "decode",
            "--format",
            "4",
            "--pan",
            "4111111111111129",
            "--key",
            key,
            &first,
        ])
        .assert()
        .failure();
}

#[test]
fn tr31_unwrap_of_the_published_version_b_example() {
    let out = stdout_of(&[
        "--json",
        "crypto",
        "tr31",
        "unwrap",
        "--kbpk",
        "DD7515F2BFC17F85CE48F3CA25CB21F6",
        "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["key"], "3F419E1CB7079442AA37474C2EFBF8B8");
    assert_eq!(json["key_usage"], "P0");
    assert_eq!(json["mode_of_use"], "E");
}

#[test]
fn tr31_wrap_with_given_padding_reproduces_the_published_block() {
    let block = stdout_of(&[
        "crypto",
        "tr31",
        "wrap",
        "--kbpk",
        "DD7515F2BFC17F85CE48F3CA25CB21F6",
        "--header",
        "B0000P0TE00E0000",
        "--key",
        "3F419E1CB7079442AA37474C2EFBF8B8",
        "--random",
        "1C2965473CE2",
    ]);
    assert_eq!(
        block,
        "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E"
    );
}

#[test]
fn tr31_with_a_wrong_kbpk_is_a_mac_failure() {
    pinbridge()
        .args([
            "crypto",
            "tr31",
            "unwrap",
            "--kbpk",
            "DD7515F2BFC17F85CE48F3CA25CB21F4",
            "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("TR-31").and(predicate::str::contains("MAC")));
}

#[test]
fn tr31_wrap_and_unwrap_round_trip_with_random_padding() {
    let kbpk = "88e1ab2a2e3dd38c1fa039a536500cc8a87ab9d62dc92c01058fa79f44657de6";
    let block = stdout_of(&[
        "crypto",
        "tr31",
        "wrap",
        "--kbpk",
        kbpk,
        "--header",
        "D0000M6AC00E0000",
        "--key",
        "4a8b2f0c6d91e3a7b5c2d8f01e6a9b37",
    ]);
    assert!(block.starts_with("D"), "{block}");
    let out = stdout_of(&["--json", "crypto", "tr31", "unwrap", "--kbpk", kbpk, &block]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["key"], "4A8B2F0C6D91E3A7B5C2D8F01E6A9B37");
}

#[test]
fn dukpt_matches_x9_24_3_and_x9_24_1_examples() {
    // X9.24-3-2017 supplement: AES-128 BDK, initial key ID 1234567890123456, counter 1,
    // PIN encryption key.
    let out = stdout_of(&[
        "--json",
        "crypto",
        "dukpt",
        "--bdk",
        "FEDCBA9876543210F1F1F1F1F1F1F1F1",
        "--ksn",
        "123456789012345600000001",
        "--scheme",
        "aes",
        "--usage",
        "pin",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["working_key"], "AF8CB133A78F8DC2D1359F18527593FB");
    // X9.24-1-2009 Annex A: KSN FFFF9876543210E00001, PIN key.
    let out = stdout_of(&[
        "--json",
        "crypto",
        "dukpt",
        "--bdk",
        "0123456789ABCDEFFEDCBA9876543210",
        "--ksn",
        "FFFF9876543210E00001",
        "--scheme",
        "tdes",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["working_key"], "042666B49184CF5C68DE9628D0397B36");
}

#[test]
fn errors_are_specific_and_machine_readable_with_json() {
    let output = pinbridge()
        .args([
            "--json", "crypto", "mac", "--alg", "aes-cmac", "--key", "zz", "--data", "00",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let json: serde_json::Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(json["error"]["kind"], "invalid_hex");
    assert!(json["error"]["message"].as_str().unwrap().contains("--key"));

    pinbridge()
        .args([
            "crypto", "pinblock", "encode", "--format", "2", "--pin", "1234",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("PIN block"));
    pinbridge()
        .args([
            "crypto",
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "12a4",
            "--pan",
            "4111111111111111",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("PIN block"));
}

#[test]
fn demo_ends_with_an_approved_payment_and_never_prints_the_pin() {
    let output = pinbridge().arg("demo").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut all = output.stdout.clone();
    all.extend_from_slice(&output.stderr);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Approved"), "{text}");
    assert!(text.contains("1 journal entry"), "{text}");
    assert!(text.contains("PIN ●●●●●●"), "{text}");
    // The demo's keypad PIN, in ASCII and as BCD nibbles (ISO 9564 packs digits two per
    // byte), appears nowhere in stdout or stderr.
    let bcd = [0x27u8, 0x18, 0x28];
    assert!(!all.windows(6).any(|w| w == b"271828"), "{text}");
    assert!(!all.windows(3).any(|w| w == bcd));
    let json = pinbridge().args(["--json", "demo"]).output().unwrap();
    assert!(json.status.success());
    assert!(!json.stdout.windows(6).any(|w| w == b"271828"));
    assert!(!json.stdout.windows(3).any(|w| w == bcd));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["result"], "approved");
    assert_eq!(json["journalEntries"], 1);
}
