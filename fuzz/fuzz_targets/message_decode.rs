//! Arbitrary bytes into the message decoder, as a hostile host or device would send them.
//! Invariants: no panic; whatever decodes re-encodes to exactly the same bytes (one encoding
//! per value, which MAC inputs rely on).
#![no_main]

use firmware_protocol::message::{MAX_MESSAGE_LEN, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        assert!(data.len() <= MAX_MESSAGE_LEN);
        let encoded = message.encode().expect("a decoded message re-encodes");
        assert_eq!(encoded, data, "decode/encode must be the identity on accepted input");
    }
});
