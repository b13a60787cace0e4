//! Every decoder of untrusted cryptographic input: TR-31 headers and key blocks, PIN blocks.
//! Invariant: a typed error or a value, never a panic.
#![no_main]

use firmware_protocol::crypto::keys::{KeyAlgorithm, KeyBlockProtectionKey, PinKey};
use firmware_protocol::crypto::pinblock::{self, EncipheredPinBlock, Pan, PinBlockFormat};
use firmware_protocol::crypto::tr31::{self, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(text) = core::str::from_utf8(rest) {
                let _ = Header::parse(text);
                if let Ok(kbpk) = KeyBlockProtectionKey::new(KeyAlgorithm::Aes, &[0x42; 32]) {
                    let _ = tr31::unwrap(&kbpk, text);
                }
                if let Ok(kbpk) = KeyBlockProtectionKey::new(KeyAlgorithm::Tdes, &[0x24; 16]) {
                    let _ = tr31::unwrap(&kbpk, text);
                }
            }
        }
        1 => {
            let format = match rest.first().map(|b| b % 4) {
                Some(0) => PinBlockFormat::Iso0,
                Some(1) => PinBlockFormat::Iso1,
                Some(2) => PinBlockFormat::Iso3,
                _ => PinBlockFormat::Iso4,
            };
            let key = match format {
                PinBlockFormat::Iso4 => PinKey::new(KeyAlgorithm::Aes, &[0x11; 16]),
                _ => PinKey::new(KeyAlgorithm::Tdes, &[0x11; 16]),
            };
            let pan = Pan::new("4111111111111111").ok();
            if let (Ok(key), Ok(block)) = (
                key,
                EncipheredPinBlock::from_bytes(format, rest.get(1..).unwrap_or_default()),
            ) {
                let _ = pinblock::decrypt_pin(&block, pan.as_ref(), &key);
            }
        }
        _ => {
            if let Ok(text) = core::str::from_utf8(rest) {
                let _ = Pan::new(text);
                let _ = pinblock::Pin::new(text);
            }
        }
    }
});
