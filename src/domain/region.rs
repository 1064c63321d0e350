//! Country codes as the numbering plan knows them: the regions
//! [`PhoneNumber::region`](super::PhoneNumber::region) can return, so a code
//! an operator writes (a country list, a route, a price row) can match a
//! number. The list is the phone-number crate's own metadata, not ours.

use phonenumber::metadata::DATABASE;
use thiserror::Error;

/// A country code that is none: not two letters, or two letters that are
/// neither a region of the numbering plan nor an ISO region (`UK`, `EU`,
/// `XX`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "`{code}` is not a country code (ISO 3166-1 alpha-2, e.g. US, IN, GB{hint})",
    hint = suggestion(code)
)]
pub struct RegionError {
    /// The code as written.
    pub code: String,
}

/// ISO 3166-1 regions with no telephone numbers of their own (Antarctica,
/// Bouvet Island, South Georgia, Heard and McDonald, the Pitcairn Islands,
/// the French Southern Territories, the US Minor Outlying Islands): the
/// numbering plan leaves them out, but they are real codes, and deny lists
/// copied from sanctions or risk lists carry them. Accepted; no number
/// matches them.
const ISO_REGIONS_WITHOUT_NUMBERS: [&str; 7] = ["AQ", "BV", "GS", "HM", "PN", "TF", "UM"];

/// `raw` (any case, surrounding blanks ignored) as the upper-case region
/// code numbers carry (`gb` → `GB`), if the numbering plan has that region
/// or it is an ISO region without numbers ([`ISO_REGIONS_WITHOUT_NUMBERS`]).
pub fn parse_region(raw: &str) -> Result<String, RegionError> {
    let upper = raw.trim().to_ascii_uppercase();
    // Two letters: the metadata also keys non-geographic entities ("001").
    let two_letters = upper.len() == 2 && upper.bytes().all(|b| b.is_ascii_uppercase());
    let known = DATABASE.by_id(upper.as_str()).is_some()
        || ISO_REGIONS_WITHOUT_NUMBERS.contains(&upper.as_str());
    if two_letters && known {
        Ok(upper)
    } else {
        Err(RegionError {
            code: raw.trim().to_owned(),
        })
    }
}

/// The code meant by a common mistake.
fn suggestion(code: &str) -> &'static str {
    if code.eq_ignore_ascii_case("UK") {
        "; the United Kingdom is GB"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PhoneNumber;

    #[test]
    fn regions_of_the_numbering_plan_are_read_in_any_case() {
        for (raw, region) in [
            ("US", "US"),
            ("gb", "GB"),
            (" in ", "IN"),
            ("Xk", "XK"),
            ("aq", "AQ"),
            ("UM", "UM"),
        ] {
            assert_eq!(parse_region(raw).as_deref(), Ok(region), "{raw}");
        }
        // Every region a number reports parses to itself.
        let number = PhoneNumber::parse("+442079460958").expect("valid");
        let region = number.region().expect("has a region");
        assert_eq!(parse_region(region).as_deref(), Ok(region));
    }

    #[test]
    fn codes_no_number_has_are_refused_naming_the_code() {
        for raw in ["UK", "EU", "XX", "ZZ", "USA", "1X", "001", ""] {
            let err = parse_region(raw).expect_err(raw);
            assert_eq!(err.code, raw);
            assert!(err.to_string().contains(&format!("`{raw}`")), "{err}");
        }
        assert!(
            parse_region("uk")
                .expect_err("not ISO")
                .to_string()
                .ends_with("; the United Kingdom is GB)")
        );
    }
}
