//! What counts as secret in a log line, and how it is masked: the one policy behind
//! `pinbridge logs export` and the desktop app's log (screen, events and export).
//!
//! - Any run of 16 or more hex digits is cut: keys, MACs, tokens, PIN blocks (a 64-bit key
//!   is 16 digits), and with them card numbers and long account numbers, since digits are
//!   hex digits.
//! - Any field whose name says it holds a secret (pin, key, secret, token, password as a word
//!   of the name) loses its value, whatever the value looks like.
//!
//! Shorter numbers (amounts, device serials, counters, 6-digit pairing codes) stay readable:
//! support needs them, and the clear PIN cannot be among them because it never reaches the PC
//! (the end-to-end PIN scan in tests/ proves that for every byte the PC sees).

use serde_json::Value;

/// Stands in for a secret.
pub const REDACTED: &str = "[redacted]";

/// Hex runs this long or longer are treated as secret.
pub const MIN_SECRET_HEX_RUN: usize = 16;

/// Field-name words that mark a field's value as secret (`pin`, `session_key`, `apiToken`).
const SECRET_FIELD_WORDS: [&str; 5] = ["pin", "key", "secret", "token", "password"];

/// Replaces every run of 16 or more hex digits with [`REDACTED`]; returns the text and how
/// many runs were replaced. A run is delimited by non-hex characters, so a 16-digit run
/// inside a longer alphanumeric word is still cut.
pub fn redact_hex_runs(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut run = String::new();
    let mut flush = |run: &mut String, out: &mut String| {
        if run.len() >= MIN_SECRET_HEX_RUN {
            out.push_str(REDACTED);
            count += 1;
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    (out, count)
}

/// Whether a field of this name holds a secret: one of its words (split at `_`, `.`, `-` and
/// lower-to-upper case changes) is pin, key, secret, token or password.
pub fn is_secret_field(name: &str) -> bool {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '.' | '-') {
            words.push(std::mem::take(&mut word));
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    words.push(word);
    words
        .iter()
        .any(|w| SECRET_FIELD_WORDS.contains(&w.as_str()))
}

/// Redacts a JSON value in place: secret-named members lose their values, every string loses
/// its long hex runs. Returns how many secrets were masked.
pub fn redact_json(value: &mut Value) -> usize {
    match value {
        Value::String(text) => {
            let (clean, count) = redact_hex_runs(text);
            *text = clean;
            count
        }
        Value::Array(items) => items.iter_mut().map(redact_json).sum(),
        Value::Object(members) => members
            .iter_mut()
            .map(|(name, member)| {
                if is_secret_field(name) && !member.is_null() {
                    *member = Value::String(REDACTED.to_owned());
                    1
                } else {
                    redact_json(member)
                }
            })
            .sum(),
        // A bare number of 16 or more digits is as secret as the same digits in a string.
        Value::Number(number) => {
            let (clean, count) = redact_hex_runs(&number.to_string());
            if count > 0 {
                *value = Value::String(clean);
            }
            count
        }
        Value::Null | Value::Bool(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    #[test]
    fn hex_runs_of_sixteen_or_more_are_cut_and_shorter_ones_kept() {
        let (text, n) = redact_hex_runs(
            "kcv 1A2B3C ok; key 00112233445566778899aabbccddeeff; fifteen 0123456789abcde",
        );
        assert_eq!(
            text,
            "kcv 1A2B3C ok; key [redacted]; fifteen 0123456789abcde"
        );
        assert_eq!(n, 1);
        assert_eq!(redact_hex_runs("0123456789abcdef").0, REDACTED);
        assert_eq!(redact_hex_runs("x0123456789abcdefx").0, "x[redacted]x");
        assert_eq!(
            redact_hex_runs("PAN 4000001234567899.").0,
            "PAN [redacted]."
        );
    }

    #[test]
    fn secret_field_names_are_recognised_by_word() {
        for secret in [
            "pin",
            "PIN",
            "session_key",
            "sessionKey",
            "api-token",
            "staff.password",
            "clientSecret",
        ] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for plain in ["pinned", "keyboard", "monkey", "spin", "device", "amount"] {
            assert!(!is_secret_field(plain), "{plain}");
        }
    }

    #[test]
    fn json_members_named_secret_and_long_hex_are_masked_the_rest_kept() {
        let mut event = json!({
            "type": "paired",
            "hostId": "2a5e4cbc828ab81a",
            "pin": "271828",
            "sessionToken": null,
            "n": 12,
            "serial": "PB-SIM-0001",
            "nested": [{"macKey": 7}, {"pan": 4000001234567899_u64}],
        });
        let count = redact_json(&mut event);
        assert_eq!(count, 4, "{event}");
        assert_eq!(event["hostId"], REDACTED);
        assert_eq!(event["pin"], REDACTED);
        assert_eq!(event["sessionToken"], Value::Null);
        assert_eq!(event["n"], 12);
        assert_eq!(event["serial"], "PB-SIM-0001");
        assert_eq!(event["nested"][0]["macKey"], REDACTED);
        assert_eq!(event["nested"][1]["pan"], REDACTED);
    }
}
