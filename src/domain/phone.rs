//! Phone numbers in E.164 form, parsed once where a request enters.

use std::{
    fmt,
    hash::{Hash, Hasher},
    sync::OnceLock,
};

use phonenumber::metadata::DATABASE;
use thiserror::Error;

mod fast_path;

/// A phone number normalised to E.164 (`+<country><national>`).
///
/// Different spellings of one number (`+91 12345 67890`, `+91-1234-567890`)
/// parse to equal values. `Display` and `Debug` show it masked
/// (`+91******7890`) so that logging a `PhoneNumber` never leaks it; use
/// [`PhoneNumber::e164`] where the full number is really needed (the SMS
/// gateway, the keyed hash).
///
/// Equality and hashing go by the E.164 form, which determines everything else.
#[derive(Clone)]
pub struct PhoneNumber {
    e164: String,
    country_code: u16,
    /// Found on first use: it takes a second search of the numbering plan's
    /// patterns, which the OTP flow itself never needs (it measured as a
    /// quarter of a VerifyOtp's CPU time).
    region: OnceLock<Option<String>>,
}

/// Why a phone number was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PhoneError {
    /// Nothing was given.
    #[error("is required")]
    Missing,
    /// No leading `+country` prefix, so the country cannot be known.
    #[error("must start with + and a country code, e.g. +14155550123")]
    MissingCountryCode,
    /// Not a phone number in any country's numbering plan.
    #[error("is not a phone number in international format, e.g. +14155550123")]
    Unparseable,
}

/// Longest accepted raw input: well above any formatted number, short enough
/// that nobody can make the parser chew on megabytes.
const MAX_INPUT_CHARS: usize = 64;

impl PhoneNumber {
    /// Parses an international number; spaces, dashes, dots and parentheses are ignored.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Missing);
        }
        if trimmed.chars().count() > MAX_INPUT_CHARS {
            return Err(PhoneError::Unparseable);
        }
        if !trimmed.starts_with('+') {
            return Err(PhoneError::MissingCountryCode);
        }
        // The parser tolerates letters (vanity numbers) and extensions; an OTP
        // target is a plain subscriber number, so refuse anything else up front.
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')'))
        {
            return Err(PhoneError::Unparseable);
        }
        let (country_code, e164) = match fast_path::parse_e164(trimmed) {
            Some(found) => found,
            None => library_e164(trimmed)?,
        };
        let national_digits = e164.len() - 1 - decimal_digits(country_code);
        if !(4..=14).contains(&national_digits) {
            return Err(PhoneError::Unparseable);
        }
        Ok(Self {
            e164,
            country_code,
            region: OnceLock::new(),
        })
    }

    /// The full number in E.164 form. Never log this.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// ISO 3166-1 alpha-2 region of the number, where the numbering plan tells it.
    pub fn region(&self) -> Option<&str> {
        self.region
            .get_or_init(|| {
                if let Some(region) = fast_path::sole_region(self.country_code) {
                    return Some(region.to_owned());
                }
                // The E.164 form parses to the same country code and national
                // number as the input did, hence to the same region.
                let parsed = phonenumber::parse(None, &self.e164).ok()?;
                Some(parsed.country().id()?.as_ref().to_owned())
            })
            .as_deref()
    }

    /// `+`, the country calling code and the first `national_digits` digits
    /// of the national number: the number range it belongs to (`+1415` for
    /// +1 415 555 0123 with 3). Never more than half of the national number,
    /// so a prefix on its own does not point at one subscriber.
    pub fn leading_digits(&self, national_digits: usize) -> &str {
        let prefix_len = 1 + decimal_digits(self.country_code);
        let national_len = self.e164.len().saturating_sub(prefix_len);
        let shown = national_digits.min(national_len / 2);
        &self.e164[..prefix_len + shown]
    }

    /// The number with all but the country code and the last digits hidden:
    /// four of them, but never more than half of the national number, so a
    /// short number (`+683 4002`) is never shown whole.
    pub fn masked(&self) -> String {
        let prefix_len = 1 + decimal_digits(self.country_code);
        let national_len = self.e164.len().saturating_sub(prefix_len);
        let visible_tail = (national_len / 2).min(4);
        let hidden = self.e164.len().saturating_sub(prefix_len + visible_tail);
        let mut masked = String::with_capacity(self.e164.len());
        masked.push_str(&self.e164[..prefix_len]);
        masked.extend(std::iter::repeat_n('*', hidden));
        masked.push_str(&self.e164[prefix_len + hidden..]);
        masked
    }
}

/// The country calling code an international number's digits (without
/// `+`) start with, as the numbering plan reads them (the shortest known
/// code: calling codes are prefix-free), and the digits after it.
pub fn split_calling_code(digits: &str) -> Option<(u16, &str)> {
    (1..=3).find_map(|len| {
        let code = digits.get(..len)?.parse::<u16>().ok()?;
        DATABASE
            .by_code(&code)
            .map(|_| (code, digits.get(len..).unwrap_or_default()))
    })
}

/// The calling code and E.164 form by the library's full parse (any spelling).
fn library_e164(raw: &str) -> Result<(u16, String), PhoneError> {
    let parsed = phonenumber::parse(None, raw).map_err(|_| PhoneError::Unparseable)?;
    // What `parsed.format().mode(Mode::E164)` prints (`+`, country code,
    // national number with any leading zeros), without the formatter's
    // search for a display pattern that E.164 then ignores.
    let country_code = parsed.code().value();
    Ok((
        country_code,
        format!("+{country_code}{}", parsed.national()),
    ))
}

fn decimal_digits(value: u16) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

impl PartialEq for PhoneNumber {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}

impl Eq for PhoneNumber {}

impl Hash for PhoneNumber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.e164.hash(state);
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_number_are_equal() {
        let a = PhoneNumber::parse("+91 12345 67890").expect("spaced");
        let b = PhoneNumber::parse("+911234567890").expect("compact");
        let c = PhoneNumber::parse("+91-1234-567890").expect("dashed");
        let d = PhoneNumber::parse(" +91 (12345) 67890 ").expect("brackets");
        assert_eq!(a.e164(), "+911234567890");
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(c, d);
    }

    #[test]
    fn display_and_debug_mask_the_number() {
        let phone = PhoneNumber::parse("+911234567890").expect("valid");
        assert_eq!(phone.to_string(), "+91******7890");
        assert_eq!(format!("{phone:?}"), "PhoneNumber(+91******7890)");
        let us = PhoneNumber::parse("+1 415 555 0123").expect("valid");
        assert_eq!(us.to_string(), "+1******0123");
        let short = PhoneNumber::parse("+683 4002").expect("Niue");
        assert_eq!(
            short.to_string(),
            "+683**02",
            "half of a short number stays hidden"
        );
        let five = PhoneNumber::parse("+290 22345").expect("St Helena");
        assert_eq!(five.to_string(), "+290***45");
    }

    #[test]
    fn leading_digits_name_the_range_and_never_most_of_the_number() {
        let us = PhoneNumber::parse("+1 415 555 0123").expect("valid");
        assert_eq!(us.leading_digits(3), "+1415");
        assert_eq!(us.leading_digits(4), "+14155");
        assert_eq!(us.leading_digits(0), "+1");
        assert_eq!(
            us.leading_digits(9),
            "+141555",
            "half of 10 national digits"
        );
        let uk = PhoneNumber::parse("+44 7700 900123").expect("valid");
        assert_eq!(uk.leading_digits(4), "+447700");
        let niue = PhoneNumber::parse("+683 4002").expect("Niue");
        assert_eq!(niue.leading_digits(4), "+68340");
    }

    #[test]
    fn region_comes_from_the_numbering_plan() {
        assert_eq!(
            PhoneNumber::parse("+14155550123").expect("us").region(),
            Some("US")
        );
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958").expect("gb").region(),
            Some("GB")
        );
    }

    #[test]
    fn e164_is_exactly_what_the_library_formatter_prints() {
        for raw in [
            "+14155550123",
            "+1 (415) 555-0123",
            "+44 20 7946 0958",
            "+44 020 7946 0958",
            "+39 06 6982 0000",
            "+39 333 123 4567",
            "+91 12345 67890",
            "+49 30 901820",
            "+86 10 1234 5678",
            "+7 495 123 45 67",
            "+61 2 9374 4000",
            "+55 11 91234 5678",
            "+352 26 12 34",
            "+880 1712 345678",
        ] {
            let library = phonenumber::parse(None, raw)
                .expect("parses")
                .format()
                .mode(phonenumber::Mode::E164)
                .to_string();
            assert_eq!(PhoneNumber::parse(raw).expect(raw).e164(), library, "{raw}");
        }
    }

    #[test]
    fn bad_numbers_are_refused_with_a_reason() {
        assert_eq!(PhoneNumber::parse(""), Err(PhoneError::Missing));
        assert_eq!(PhoneNumber::parse("   "), Err(PhoneError::Missing));
        assert_eq!(
            PhoneNumber::parse("4155550123"),
            Err(PhoneError::MissingCountryCode)
        );
        for bad in [
            "+",
            "+1",
            "+abc",
            "+1 415 CALL NOW",
            "+0 123456",
            "+99912",
            "++1415",
            "+1 415 555 0123 ext. 5",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(
            PhoneNumber::parse(&format!("+1{}", "5".repeat(100))),
            Err(PhoneError::Unparseable)
        );
    }
}
