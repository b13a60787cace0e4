//! What a customer types for a payment, parsed once for the app and the CLI (issue 17 item 2):
//! the amount (locale-aware, never silently reinterpreted), the currency (ISO 4217 with its
//! minor units), the payee account (IBAN with its checksum and country format, or a domestic
//! account number the bank takes) and the payee name (required: the PIN pad shows it).
//!
//! Decisions (documented in README.md, "Payment input"):
//! - The decimal separator is the locale's (`.` in en and zh, `,` in de, fr, es...). The other
//!   mark is never guessed: `12,34` in an `en` or `zh-CN` locale is refused with a reason
//!   instead of becoming 1,234 or 12.34. Grouping marks are accepted only in correct groups of
//!   three and only with a decimal part (`1,234.50`); `1,234` alone is refused as ambiguous.
//! - Currencies come from ISO 4217 (`iso_currency`); codes with no minor unit defined (gold,
//!   test and "no currency" codes) are not payment currencies.
//! - Accounts: an IBAN (`iban_validate`: country format and mod-97 checksum), or a domestic
//!   account number of 16 to 19 digits (the sandbox bank's CNY accounts and UnionPay cards).

use iban::{Iban, IbanLike, ParseBaseIbanError, ParseIbanError};

/// Why an input was refused. Each says what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Nothing typed.
    #[error("enter an amount")]
    EmptyAmount,
    /// The other decimal mark than the locale's, where a decimal mark belongs.
    #[error(
        "{text:?}: in this language the decimal separator is {expected:?}, not {found:?} (type {suggestion})"
    )]
    WrongDecimalSeparator {
        /// What was typed.
        text: String,
        /// The locale's decimal separator.
        expected: char,
        /// The mark found.
        found: char,
        /// The amount as it should be typed.
        suggestion: String,
    },
    /// Grouping marks without a decimal part, or not in groups of three.
    #[error("{text:?}: unclear grouping; type the amount without thousands separators")]
    AmbiguousGrouping {
        /// What was typed.
        text: String,
    },
    /// A character that is not a digit or a separator.
    #[error("{text:?} is not an amount")]
    NotAnAmount {
        /// What was typed.
        text: String,
    },
    /// More decimals than the currency has.
    #[error("{currency} has {minor_units} decimal places; {text:?} has more")]
    TooManyDecimals {
        /// What was typed.
        text: String,
        /// The currency.
        currency: String,
        /// Its minor units.
        minor_units: u8,
    },
    /// Zero.
    #[error("the amount must be more than zero")]
    Zero,
    /// Past what the protocol carries.
    #[error("{text:?} is too large")]
    TooLarge {
        /// What was typed.
        text: String,
    },
    /// Not an ISO 4217 code.
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    /// An ISO 4217 code that is not money (gold, testing, "no currency").
    #[error("{0} is not a currency payments can be made in")]
    NotAPaymentCurrency(String),
    /// An IBAN whose check digits are wrong (a typo).
    #[error("{0}: IBAN check digits are wrong (mistyped?)")]
    IbanChecksum(String),
    /// Looks like an IBAN but breaks its country's format.
    #[error("{account}: not a valid IBAN ({reason})")]
    IbanFormat {
        /// What was typed (compacted).
        account: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Neither an IBAN nor a domestic account number.
    #[error("{0:?}: not an account number (an IBAN, or 16 to 19 digits)")]
    NotAnAccount(String),
    /// No payee name.
    #[error("enter the payee's name (the PIN pad shows it)")]
    EmptyPayeeName,
    /// A payee name the PIN pad cannot show.
    #[error("the payee's name is too long (at most {max} characters)")]
    PayeeNameTooLong {
        /// The limit.
        max: usize,
    },
}

impl InputError {
    /// A stable machine code for JSON output and the app's error kinds.
    pub fn code(&self) -> &'static str {
        match self {
            InputError::EmptyAmount
            | InputError::WrongDecimalSeparator { .. }
            | InputError::AmbiguousGrouping { .. }
            | InputError::NotAnAmount { .. }
            | InputError::TooManyDecimals { .. }
            | InputError::Zero
            | InputError::TooLarge { .. } => "invalid_amount",
            InputError::UnknownCurrency(_) | InputError::NotAPaymentCurrency(_) => {
                "unknown_currency"
            }
            InputError::IbanChecksum(_) | InputError::IbanFormat { .. } => "invalid_iban",
            InputError::NotAnAccount(_) => "invalid_account",
            InputError::EmptyPayeeName | InputError::PayeeNameTooLong { .. } => {
                "invalid_payee_name"
            }
        }
    }
}

/// An ISO 4217 currency a payment can be made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: &'static str,
    minor_units: u8,
}

impl Currency {
    /// Looks up `code` (case-insensitive, trimmed) in ISO 4217.
    pub fn parse(code: &str) -> Result<Currency, InputError> {
        let wanted = code.trim().to_ascii_uppercase();
        let currency = iso_currency::Currency::from_code(&wanted)
            .ok_or_else(|| InputError::UnknownCurrency(code.trim().to_owned()))?;
        let minor_units = currency
            .exponent()
            .and_then(|e| u8::try_from(e).ok())
            .ok_or_else(|| InputError::NotAPaymentCurrency(wanted.clone()))?;
        Ok(Currency {
            code: currency.code(),
            minor_units,
        })
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (the protocol's `currency_exponent`).
    pub fn minor_units(&self) -> u8 {
        self.minor_units
    }
}

/// The decimal separator of a BCP 47 locale (`en`, `zh-CN`, `de-DE`...): `,` for the languages
/// that write decimals with a comma, `.` otherwise.
pub fn decimal_separator(locale: &str) -> char {
    let language = locale
        .split(['-', '_', '.'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    const COMMA: &[&str] = &[
        "de", "fr", "es", "it", "nl", "pt", "ru", "pl", "sv", "da", "fi", "nb", "nn", "no", "cs",
        "sk", "sl", "hr", "hu", "ro", "bg", "uk", "tr", "el", "id", "vi", "lt", "lv", "et", "ca",
        "sr", "be", "kk", "az", "is",
    ];
    if COMMA.contains(&language.as_str()) {
        ','
    } else {
        '.'
    }
}

/// Parses a typed amount into minor units of `currency`, reading `locale`'s decimal
/// separator. Never reinterprets: input that could mean two amounts is refused with a reason.
pub fn parse_amount(text: &str, currency: Currency, locale: &str) -> Result<u64, InputError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(InputError::EmptyAmount);
    }
    let decimal = decimal_separator(locale);
    let other = if decimal == '.' { ',' } else { '.' };
    let is_group = |c: char| c == other || c == ' ' || c == '\u{a0}' || c == '\u{202f}';
    if trimmed
        .chars()
        .any(|c| !c.is_ascii_digit() && c != decimal && !is_group(c))
    {
        return Err(InputError::NotAnAmount {
            text: trimmed.into(),
        });
    }
    let (whole, fraction) = match trimmed.rsplit_once(decimal) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (trimmed, None),
    };
    if whole.contains(decimal) || fraction.is_some_and(|f| f.chars().any(|c| !c.is_ascii_digit())) {
        return Err(InputError::NotAnAmount {
            text: trimmed.into(),
        });
    }
    let grouped = whole.chars().any(is_group);
    if grouped {
        // One mark the other language would read as a decimal point, with 1-3 digits after
        // it, is that language's decimal: say so instead of guessing.
        let groups: Vec<&str> = whole.split(is_group).collect();
        let last = groups.last().copied().unwrap_or_default();
        if fraction.is_none()
            && groups.len() == 2
            && whole.contains(other)
            && !last.is_empty()
            && last.len() != 3
        {
            return Err(InputError::WrongDecimalSeparator {
                text: trimmed.into(),
                expected: decimal,
                found: other,
                suggestion: whole.replace(other, &decimal.to_string()),
            });
        }
        let well_formed = groups.first().is_some_and(|g| (1..=3).contains(&g.len()))
            && groups.iter().skip(1).all(|g| g.len() == 3)
            && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()));
        if !well_formed || fraction.is_none() {
            return Err(InputError::AmbiguousGrouping {
                text: trimmed.into(),
            });
        }
    }
    let digits: String = whole.chars().filter(char::is_ascii_digit).collect();
    let fraction = fraction.unwrap_or_default();
    if digits.is_empty() || (trimmed.ends_with(decimal) && fraction.is_empty()) {
        return Err(InputError::NotAnAmount {
            text: trimmed.into(),
        });
    }
    if fraction.len() > usize::from(currency.minor_units) {
        return Err(InputError::TooManyDecimals {
            text: trimmed.into(),
            currency: currency.code.into(),
            minor_units: currency.minor_units,
        });
    }
    let padded = format!(
        "{digits}{fraction:0<width$}",
        width = usize::from(currency.minor_units)
    );
    let minor: u64 = padded.parse().map_err(|_| InputError::TooLarge {
        text: trimmed.into(),
    })?;
    // Far above any limit, and exact in the UI's number formatting.
    if minor > 1_000_000_000_000_000 {
        return Err(InputError::TooLarge {
            text: trimmed.into(),
        });
    }
    if minor == 0 {
        return Err(InputError::Zero);
    }
    Ok(minor)
}

/// A payee account as the bank takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// An IBAN, in its electronic form (no spaces, upper case).
    Iban(String),
    /// A domestic account number (digits only).
    Domestic(String),
}

impl Account {
    /// The account as sent to the bank and shown on the PIN pad.
    pub fn as_str(&self) -> &str {
        match self {
            Account::Iban(a) | Account::Domestic(a) => a,
        }
    }
}

/// Parses a payee account: spaces and dashes between groups are ignored; an IBAN must pass
/// its country's format and the mod-97 check; otherwise 16 to 19 digits.
pub fn parse_account(text: &str) -> Result<Account, InputError> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    let starts_like_iban = compact.len() >= 4
        && compact.as_bytes()[..2].iter().all(u8::is_ascii_alphabetic)
        && compact.as_bytes()[2..4].iter().all(u8::is_ascii_digit);
    if starts_like_iban {
        return match compact.parse::<Iban>() {
            Ok(iban) => Ok(Account::Iban(iban.electronic_str().to_owned())),
            Err(ParseIbanError::InvalidBaseIban {
                source: ParseBaseIbanError::InvalidChecksum,
            }) => Err(InputError::IbanChecksum(compact)),
            Err(ParseIbanError::InvalidBaseIban { .. }) => Err(InputError::IbanFormat {
                account: compact,
                reason: "letters and digits, 15 to 34 characters",
            }),
            Err(ParseIbanError::InvalidBban(_)) => Err(InputError::IbanFormat {
                account: compact,
                reason: "wrong length or characters for its country",
            }),
            Err(ParseIbanError::UnknownCountry(_)) => Err(InputError::IbanFormat {
                account: compact,
                reason: "no IBAN country with that code",
            }),
        };
    }
    if (16..=19).contains(&compact.len()) && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Account::Domestic(compact));
    }
    Err(InputError::NotAnAccount(text.trim().to_owned()))
}

/// The longest payee name the PIN pad shows on its line.
pub const PAYEE_NAME_MAX: usize = 70;

/// Parses the payee name: required (the PIN pad shows it; no placeholder is ever invented).
pub fn parse_payee_name(text: &str) -> Result<String, InputError> {
    let name = text.trim();
    if name.is_empty() {
        return Err(InputError::EmptyPayeeName);
    }
    if name.chars().count() > PAYEE_NAME_MAX {
        return Err(InputError::PayeeNameTooLong {
            max: PAYEE_NAME_MAX,
        });
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn twelve_comma_thirty_four_is_never_one_thousand_two_hundred_thirty_four() {
        let cny = Currency::parse("CNY").unwrap();
        for locale in ["en", "zh-CN", "en-US"] {
            match parse_amount("12,34", cny, locale) {
                Err(InputError::WrongDecimalSeparator { suggestion, .. }) => {
                    assert_eq!(suggestion, "12.34");
                }
                other => panic!("{locale}: {other:?}"),
            }
        }
        assert_eq!(parse_amount("12,34", eur(), "de-DE"), Ok(1234));
        assert_eq!(parse_amount("12,34", eur(), "fr"), Ok(1234));
        assert!(matches!(
            parse_amount("12.34", eur(), "de"),
            Err(InputError::WrongDecimalSeparator { .. })
        ));
    }

    #[test]
    fn amounts_in_each_locale() {
        assert_eq!(parse_amount("12.34", eur(), "en"), Ok(1234));
        assert_eq!(parse_amount(" 12 ", eur(), "en"), Ok(1200));
        assert_eq!(parse_amount("0.5", eur(), "zh-CN"), Ok(50));
        assert_eq!(parse_amount("1,234.50", eur(), "en"), Ok(123_450));
        assert_eq!(parse_amount("1.234,50", eur(), "de"), Ok(123_450));
        assert_eq!(parse_amount("1 234,50", eur(), "fr"), Ok(123_450));
        assert!(matches!(
            parse_amount("1,234", eur(), "en"),
            Err(InputError::AmbiguousGrouping { .. })
        ));
        assert!(matches!(
            parse_amount("1,23,4.00", eur(), "en"),
            Err(InputError::AmbiguousGrouping { .. })
        ));
        assert!(matches!(
            parse_amount("12.345", eur(), "en"),
            Err(InputError::TooManyDecimals { minor_units: 2, .. })
        ));
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(parse_amount("500", jpy, "en"), Ok(500));
        assert!(matches!(
            parse_amount("500.5", jpy, "en"),
            Err(InputError::TooManyDecimals { minor_units: 0, .. })
        ));
        let bhd = Currency::parse("BHD").unwrap();
        assert_eq!(parse_amount("1.234", bhd, "en"), Ok(1234));
        assert_eq!(parse_amount("0", eur(), "en"), Err(InputError::Zero));
        assert_eq!(parse_amount("", eur(), "en"), Err(InputError::EmptyAmount));
        for bad in [
            "-5",
            "1e3",
            "12.",
            ".5x",
            "abc",
            "1.2.3",
            "99999999999999999999",
        ] {
            assert!(parse_amount(bad, eur(), "en").is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies_are_iso_4217_with_their_minor_units() {
        assert_eq!(Currency::parse("eur").unwrap().minor_units(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
        assert_eq!(Currency::parse("CNY").unwrap().code(), "CNY");
        let unknown = Currency::parse("XYZ").unwrap_err();
        assert_eq!(unknown, InputError::UnknownCurrency("XYZ".into()));
        assert_eq!(unknown.code(), "unknown_currency");
        assert!(matches!(
            Currency::parse("XAU"),
            Err(InputError::NotAPaymentCurrency(_))
        ));
    }

    #[test]
    fn ibans_need_their_checksum_and_domestic_accounts_their_length() {
        assert_eq!(
            parse_account("DE89 3704 0044 0532 0130 00"),
            Ok(Account::Iban("DE89370400440532013000".into()))
        );
        assert_eq!(
            parse_account("fr7630006000011234567890189"),
            Ok(Account::Iban("FR7630006000011234567890189".into()))
        );
        assert!(matches!(
            parse_account("DE88370400440532013000"),
            Err(InputError::IbanChecksum(_))
        ));
        // One digit short: refused as an IBAN, never taken for another kind of account.
        assert!(matches!(
            parse_account("DE8937040044053201300"),
            Err(InputError::IbanChecksum(_) | InputError::IbanFormat { .. })
        ));
        assert!(matches!(
            parse_account("ZZ89370400440532013000"),
            Err(InputError::IbanFormat { .. } | InputError::IbanChecksum(_))
        ));
        assert_eq!(
            parse_account("6222 0800 1122 3344"),
            Ok(Account::Domestic("6222080011223344".into()))
        );
        for bad in [
            "12",
            "",
            "622208001122334",
            "62220800112233445566",
            "ACME-1",
        ] {
            assert!(
                matches!(parse_account(bad), Err(InputError::NotAnAccount(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_payee_name_is_required() {
        assert_eq!(parse_payee_name("  "), Err(InputError::EmptyPayeeName));
        assert_eq!(parse_payee_name(" Shop SARL "), Ok("Shop SARL".into()));
        assert!(parse_payee_name(&"x".repeat(71)).is_err());
    }
}
