//! How an amount is written for a person, in one place for the PIN pad's screen, the CLI and
//! the app (issue 17 item 2): the ISO 4217 code, then the amount with its minor units and
//! thousands grouped by commas, e.g. `EUR 1,234.56`, `JPY 500`, `KWD 1.500`. The same in
//! every language, so what the customer compares on the PC and on the device is identical.

use alloc::string::{String, ToString};

/// `amount_minor` with the decimal point placed by the ISO 4217 exponent and the whole part
/// grouped by three: (`123456`, 2) -> `1,234.56`; (`7`, 2) -> `0.07`; (`500`, 0) -> `500`.
pub fn format_amount(amount_minor: u64, exponent: u8) -> String {
    let digits = amount_minor.to_string();
    let exponent = usize::from(exponent);
    let padded = if digits.len() <= exponent {
        let mut padded = "0".repeat(exponent + 1 - digits.len());
        padded.push_str(&digits);
        padded
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - exponent);
    let mut out = String::with_capacity(whole.len() + whole.len() / 3 + exponent + 1);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// The currency code and the amount: (`EUR`, `123456`, 2) -> `EUR 1,234.56`.
pub fn format_money(currency: &str, amount_minor: u64, exponent: u8) -> String {
    let mut out = String::from(currency);
    out.push(' ');
    out.push_str(&format_amount(amount_minor, exponent));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_with_the_minor_units_of_the_currency() {
        assert_eq!(format_amount(1234, 2), "12.34");
        assert_eq!(format_amount(5, 2), "0.05");
        assert_eq!(format_amount(0, 2), "0.00");
        assert_eq!(format_amount(7, 0), "7");
        assert_eq!(format_amount(1_000, 3), "1.000");
        assert_eq!(format_amount(123_456, 2), "1,234.56");
        assert_eq!(format_amount(100_000_000, 2), "1,000,000.00");
        assert_eq!(format_amount(1_234_567, 0), "1,234,567");
        assert_eq!(format_money("EUR", 12_345, 2), "EUR 123.45");
        assert_eq!(format_money("CNY", 123_450, 2), "CNY 1,234.50");
    }
}
