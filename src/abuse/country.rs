//! Which countries codes may be sent to.

use std::{collections::BTreeSet, fmt};

use thiserror::Error;

use crate::domain::PhoneNumber;

/// `OTP_ALLOWED_COUNTRIES` / `OTP_DENIED_COUNTRIES`, as ISO 3166-1 alpha-2 sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryPolicy {
    /// When non-empty, only these regions are allowed.
    allowed: BTreeSet<String>,
    /// These regions are always refused.
    denied: BTreeSet<String>,
}

/// Why a country list was refused at startup.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("`{0}` is not an ISO 3166-1 alpha-2 country code (e.g. US, IN, GB)")]
pub struct CountryPolicyError(pub String);

fn parse_list(raw: &str) -> Result<BTreeSet<String>, CountryPolicyError> {
    raw.split(',')
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(|code| {
            let upper = code.to_ascii_uppercase();
            if upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(upper)
            } else {
                Err(CountryPolicyError(code.to_owned()))
            }
        })
        .collect()
}

impl CountryPolicy {
    /// Parses comma-separated lists (either may be empty).
    pub fn parse(allowed: &str, denied: &str) -> Result<Self, CountryPolicyError> {
        Ok(Self {
            allowed: parse_list(allowed)?,
            denied: parse_list(denied)?,
        })
    }

    /// Whether `phone` may be texted. A number whose region the numbering
    /// plan cannot tell (international networks like +882/+883, satellite
    /// +870, premium +979, or a number outside every plan) is refused whenever
    /// any country rule is set: those are the classic SMS-pumping targets, and
    /// an operator who restricts countries did not mean to allow them.
    pub fn allows(&self, phone: &PhoneNumber) -> bool {
        // Without rules every number is allowed, and the region is not looked
        // up: for a calling code shared by several regions (+1, +44, +7) that
        // is a full parse and region search, a fifth of a SendOtp's CPU.
        if self.is_open() {
            return true;
        }
        match phone.region() {
            Some(region) => {
                !self.denied.contains(region)
                    && (self.allowed.is_empty() || self.allowed.contains(region))
            }
            None => self.is_open(),
        }
    }

    /// True when no rule is configured.
    pub fn is_open(&self) -> bool {
        self.allowed.is_empty() && self.denied.is_empty()
    }

    /// The regions allowed when any is listed (`OTP_ALLOWED_COUNTRIES`), in order.
    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(String::as_str)
    }

    /// The regions always refused (`OTP_DENIED_COUNTRIES`), in order.
    pub fn denied(&self) -> impl Iterator<Item = &str> {
        self.denied.iter().map(String::as_str)
    }
}

/// The policy on one line, for the startup log's caps: `all`, or the
/// lists in force (`allowed=GB,US denied=RU`).
impl fmt::Display for CountryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
        match (self.allowed.is_empty(), self.denied.is_empty()) {
            (true, true) => f.write_str("all"),
            (false, true) => write!(f, "allowed={}", join(&self.allowed)),
            (true, false) => write!(f, "denied={}", join(&self.denied)),
            (false, false) => write!(
                f,
                "allowed={} denied={}",
                join(&self.allowed),
                join(&self.denied)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(raw: &str) -> PhoneNumber {
        PhoneNumber::parse(raw).expect("valid")
    }

    #[test]
    fn empty_policy_allows_everything() {
        let policy = CountryPolicy::parse("", "").expect("valid");
        assert!(policy.is_open());
        assert!(policy.allows(&phone("+14155550123")));
    }

    #[test]
    fn allow_list_and_deny_list() {
        let policy = CountryPolicy::parse("us, in", "").expect("valid");
        assert!(policy.allows(&phone("+14155550123")));
        assert!(policy.allows(&phone("+919876543210")));
        assert!(!policy.allows(&phone("+442079460958")));
        let deny = CountryPolicy::parse("", "GB").expect("valid");
        assert!(!deny.allows(&phone("+442079460958")));
        assert!(deny.allows(&phone("+14155550123")));
    }

    #[test]
    fn numbers_without_a_region_are_refused_once_any_rule_is_set() {
        for raw in ["+882 1234 5678", "+870 773 111 632", "+979 1234 5678"] {
            let number = phone(raw);
            assert_eq!(number.region(), None, "{raw} has no region");
            assert!(CountryPolicy::parse("", "").expect("valid").allows(&number));
            assert!(
                !CountryPolicy::parse("", "RU")
                    .expect("valid")
                    .allows(&number),
                "{raw}"
            );
            assert!(
                !CountryPolicy::parse("US", "")
                    .expect("valid")
                    .allows(&number),
                "{raw}"
            );
        }
    }

    #[test]
    fn bad_codes_are_refused() {
        assert_eq!(
            CountryPolicy::parse("USA", ""),
            Err(CountryPolicyError("USA".into()))
        );
        assert!(CountryPolicy::parse("", "1X").is_err());
    }

    #[test]
    fn the_startup_line_names_the_lists_in_force() {
        let line = |allowed, denied| {
            CountryPolicy::parse(allowed, denied)
                .expect("valid")
                .to_string()
        };
        assert_eq!(line("", ""), "all");
        assert_eq!(line("us,GB", ""), "allowed=GB,US");
        assert_eq!(line("", "RU"), "denied=RU");
        assert_eq!(line("GB", "RU"), "allowed=GB denied=RU");
    }
}
