//! Fixed codes for test numbers (app-store reviewers, end-to-end tests):
//! no SMS is sent to them, and every other rule still applies.

use std::collections::HashMap;

use thiserror::Error;

use crate::domain::{OtpCode, PhoneNumber};

/// `OTP_TEST_NUMBERS`: `+15005550006=123456,+15005550007=654321`.
#[derive(Debug, Clone, Default)]
pub struct TestNumbers(HashMap<String, OtpCode>);

/// Why `OTP_TEST_NUMBERS` was refused at startup. Never echoes a code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TestNumbersError {
    /// An entry is not `number=code`.
    #[error("entry {0} is not of the form +<number>=<code>")]
    Malformed(usize),
    /// An entry's number does not parse.
    #[error("entry {0}: the phone number is not valid")]
    BadNumber(usize),
    /// An entry's code does not have the configured length or has non-digits.
    #[error("entry {index}: the code must be exactly {length} digits (OTP_CODE_LENGTH)")]
    BadCode {
        /// 1-based entry position.
        index: usize,
        /// The configured code length.
        length: u8,
    },
    /// A number in two entries (any spelling) with different codes: which
    /// code it gets would depend on the order.
    #[error("entry {index}: {masked} is already listed with another code")]
    Duplicate {
        /// 1-based position of the second entry.
        index: usize,
        /// The number as the project shows numbers: masked.
        masked: String,
    },
}

impl TestNumbers {
    /// Parses the comma-separated list; codes must have `code_length` digits.
    pub fn parse(raw: &str, code_length: u8) -> Result<Self, TestNumbersError> {
        let mut numbers = HashMap::new();
        for (position, entry) in raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let index = position + 1;
            let (number, code) = entry
                .split_once('=')
                .ok_or(TestNumbersError::Malformed(index))?;
            let phone =
                PhoneNumber::parse(number).map_err(|_| TestNumbersError::BadNumber(index))?;
            let code =
                OtpCode::parse(code, code_length).map_err(|_| TestNumbersError::BadCode {
                    index,
                    length: code_length,
                })?;
            // The same number with the same code again is harmless; with
            // another code one of them would be refused.
            if numbers
                .insert(phone.e164().to_owned(), code.clone())
                .is_some_and(|earlier| earlier != code)
            {
                return Err(TestNumbersError::Duplicate {
                    index,
                    masked: phone.masked(),
                });
            }
        }
        Ok(Self(numbers))
    }

    /// The fixed code for `phone`, if it is a test number.
    pub fn code_for(&self, phone: &PhoneNumber) -> Option<&OtpCode> {
        self.0.get(phone.e164())
    }

    /// How many test numbers are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when none are configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_listed_twice_is_refused_masked() {
        for raw in [
            "+15005550006=123456,+15005550006=654321",
            "+15005550006=123456, +1 500 555 0006=654321",
        ] {
            let err = TestNumbers::parse(raw, 6).expect_err(raw);
            assert_eq!(
                err,
                TestNumbersError::Duplicate {
                    index: 2,
                    masked: PhoneNumber::parse("+15005550006").expect("valid").masked(),
                }
            );
            let line = err.to_string();
            assert!(!line.contains("5005550006"), "masked: {line}");
            assert!(!line.contains("654321"), "no code: {line}");
        }
        let same = TestNumbers::parse("+15005550006=123456, +1 500 555 0006=123456", 6)
            .expect("the same entry twice is not ambiguous");
        assert_eq!(same.len(), 1);
    }

    #[test]
    fn parses_numbers_in_any_spelling() {
        let numbers =
            TestNumbers::parse("+1 500 555 0006=123456, +15005550007=000111", 6).expect("valid");
        assert_eq!(numbers.len(), 2);
        let phone = PhoneNumber::parse("+15005550006").expect("valid");
        assert_eq!(
            numbers.code_for(&phone).map(OtpCode::expose),
            Some("123456")
        );
        assert!(
            numbers
                .code_for(&PhoneNumber::parse("+15005550008").expect("valid"))
                .is_none()
        );
    }

    #[test]
    fn refuses_bad_entries_without_echoing_codes() {
        assert_eq!(
            TestNumbers::parse("+15005550006", 6).err(),
            Some(TestNumbersError::Malformed(1))
        );
        assert_eq!(
            TestNumbers::parse("x=123456", 6).err(),
            Some(TestNumbersError::BadNumber(1))
        );
        let err = TestNumbers::parse("+15005550006=98765", 6).expect_err("short code");
        assert_eq!(
            err,
            TestNumbersError::BadCode {
                index: 1,
                length: 6
            }
        );
        assert!(!err.to_string().contains("98765"));
        assert!(TestNumbers::parse("", 6).expect("empty").is_empty());
    }
}
