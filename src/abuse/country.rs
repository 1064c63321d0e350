//! Which countries codes may be sent to.

use std::{collections::BTreeSet, fmt};

use thiserror::Error;

use crate::domain::{PhoneNumber, RegionError, parse_region};

/// `OTP_ALLOWED_COUNTRIES` / `OTP_DENIED_COUNTRIES`, as ISO 3166-1 alpha-2 sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryPolicy {
    /// When non-empty, only these regions are allowed.
    allowed: BTreeSet<String>,
    /// These regions are always refused.
    denied: BTreeSet<String>,
}

/// Which of the two lists a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountryList {
    /// `OTP_ALLOWED_COUNTRIES`.
    Allowed,
    /// `OTP_DENIED_COUNTRIES`.
    Denied,
}

/// Why a country list was refused at startup.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CountryPolicyError {
    /// A code no number has (`UK`, `EU`, `USA`): such a rule would never match.
    #[error("{1}")]
    BadCode(CountryList, RegionError),
    /// A list that was set but names no country (`,`): a mangled list, not
    /// "every country", which is what leaving it unset says.
    #[error("names no country (`{1}`); leave it unset for no rule")]
    NoCountry(CountryList, String),
}

impl CountryPolicyError {
    /// The list at fault (the denied one for a country in both).
    pub fn list(&self) -> CountryList {
        match self {
            Self::BadCode(list, _) | Self::NoCountry(list, _) => *list,
        }
    }
}

/// A comma-separated list of region codes; `""` (unset) is no rule.
fn parse_list(list: CountryList, raw: &str) -> Result<BTreeSet<String>, CountryPolicyError> {
    let codes = raw
        .split(',')
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(|code| parse_region(code).map_err(|err| CountryPolicyError::BadCode(list, err)))
        .collect::<Result<BTreeSet<_>, _>>()?;
    if codes.is_empty() && !raw.trim().is_empty() {
        return Err(CountryPolicyError::NoCountry(list, raw.to_owned()));
    }
    Ok(codes)
}

impl CountryPolicy {
    /// Parses comma-separated lists; an empty one (`""`) sets no rule.
    /// Every code must be a country code, and a list that is not empty must
    /// name one. A country in both lists is denied (see [`Self::in_both`]).
    pub fn parse(allowed: &str, denied: &str) -> Result<Self, CountryPolicyError> {
        let allowed = parse_list(CountryList::Allowed, allowed)?;
        let denied = parse_list(CountryList::Denied, denied)?;
        Ok(Self { allowed, denied })
    }

    /// The countries both allowed and denied: denied, as always (fail
    /// closed), but likely a mistake, so startup and check-config warn.
    pub fn in_both(&self) -> Vec<&str> {
        self.allowed
            .intersection(&self.denied)
            .map(String::as_str)
            .collect()
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
        let refused = |allowed, denied| CountryPolicy::parse(allowed, denied).expect_err("refused");
        for (allowed, denied, list, code) in [
            ("USA", "", CountryList::Allowed, "USA"),
            ("", "1X", CountryList::Denied, "1X"),
            ("UK,US", "", CountryList::Allowed, "UK"),
            ("US,XX", "", CountryList::Allowed, "XX"),
            ("", "EU", CountryList::Denied, "EU"),
        ] {
            let err = refused(allowed, denied);
            assert_eq!(err.list(), list, "{allowed}/{denied}");
            assert!(err.to_string().contains(&format!("`{code}`")), "{err}");
        }
    }

    #[test]
    fn a_list_of_separators_only_is_refused_not_read_as_no_rule() {
        for raw in [",", " , ,"] {
            let err = CountryPolicy::parse(raw, "").expect_err(raw);
            assert_eq!(
                err,
                CountryPolicyError::NoCountry(CountryList::Allowed, raw.into())
            );
            let err = CountryPolicy::parse("", raw).expect_err(raw);
            assert_eq!(err.list(), CountryList::Denied);
        }
    }

    #[test]
    fn a_country_both_allowed_and_denied_is_denied_and_named() {
        let policy = CountryPolicy::parse("US,GB", "gb").expect("denied wins");
        assert_eq!(policy.in_both(), ["GB"]);
        let uk = PhoneNumber::parse("+447700900123").expect("valid");
        let us = PhoneNumber::parse("+14155550123").expect("valid");
        assert!(!policy.allows(&uk), "denied wins");
        assert!(policy.allows(&us));
        assert!(
            CountryPolicy::parse("US", "GB")
                .expect("valid")
                .in_both()
                .is_empty()
        );
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
