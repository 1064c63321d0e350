//! The fast path against the library itself, over every calling code: where
//! the fast path answers, its answer must be the library's, byte for byte
//! (subject keys are HMACs of this string).

use std::collections::BTreeSet;

use phonenumber::{Mode, metadata::DATABASE};

use super::{parse_e164, rules_for, sole_region};

fn all_codes() -> BTreeSet<u16> {
    DATABASE.iter().map(|meta| meta.country_code()).collect()
}

/// What the library makes of `raw`: calling code and E.164 form.
fn library(raw: &str) -> Option<(u16, String)> {
    let parsed = phonenumber::parse(None, raw).ok()?;
    let e164 = parsed.format().mode(Mode::E164).to_string();
    Some((parsed.code().value(), e164))
}

/// National numbers of every length the library accepts, starting with every
/// digit (national prefixes are `0`, `1`, `8`, …), the rest pseudo-random.
fn nationals() -> Vec<String> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::new();
    for len in 2..=15 {
        for first in 0..10u64 {
            let mut digits = first.to_string();
            while digits.len() < len {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                digits.push(char::from(b'0' + (seed >> 60) as u8 % 10));
            }
            out.push(digits);
        }
    }
    out
}

#[test]
fn where_the_fast_path_answers_it_answers_as_the_library() {
    let nationals = nationals();
    let (mut answered, mut total) = (0, 0);
    for code in all_codes() {
        for national in &nationals {
            let raw = format!("+{code}{national}");
            total += 1;
            if let Some(fast) = parse_e164(&raw) {
                answered += 1;
                assert_eq!(Some(fast), library(&raw), "{raw}");
            }
        }
    }
    // Most numbers take the fast path; if none did, this test proved nothing.
    assert!(
        answered * 2 > total,
        "fast path answered {answered} of {total}"
    );
}

#[test]
fn every_calling_codes_strip_rules_build() {
    // A pattern that failed to compile would quietly send all of its
    // code's numbers to the library's slow parse.
    for code in all_codes() {
        assert!(rules_for(code).is_some(), "+{code}");
    }
}

#[test]
fn common_numbers_take_the_fast_path() {
    for raw in [
        "+14155550123",
        "+447700900123",
        "+911234567890",
        "+390669820000",
        "+61293744000",
    ] {
        assert_eq!(parse_e164(raw), library(raw), "{raw}");
        assert!(parse_e164(raw).is_some(), "{raw} should take the fast path");
    }
}

#[test]
fn numbers_the_library_would_rewrite_are_left_to_it() {
    // +44 020… loses its trunk 0; +1 1… its NANP prefix; other shapes are
    // not E.164 at all.
    for raw in [
        "+4402079460958",
        "+114155550123",
        "+1 415 555 0123",
        "+0123456",
        "+99912",
        "+1",
        "14155550123",
    ] {
        assert_eq!(parse_e164(raw), None, "{raw}");
    }
}

#[test]
fn a_sole_region_is_the_library_region() {
    let mut checked = 0;
    for code in all_codes() {
        let Some(region) = sole_region(code) else {
            continue;
        };
        let library_region = nationals().iter().find_map(|national| {
            let parsed = phonenumber::parse(None, format!("+{code}{national}")).ok()?;
            Some(parsed.country().id()?.as_ref().to_owned())
        });
        if let Some(library_region) = library_region {
            assert_eq!(region, library_region, "+{code}");
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} codes compared");
    assert_eq!(sole_region(1), None, "+1 is shared by the NANP regions");
    assert_eq!(sole_region(44), None, "+44 is shared with GG, IM, JE");
}
