//! The common case of [`super::PhoneNumber::parse`] without the library's
//! region search: input already in E.164 form (`+` and digits only).
//!
//! `phonenumber::parse` spends most of its time choosing a region for the
//! number (for +1 it tries the patterns of every NANP region through a
//! mutex-guarded regex LRU) only to decide whether a national prefix must be
//! stripped (`+44 020…` is `+4420…`). When *no* region under the calling
//! code could strip anything from these digits, the choice cannot change the
//! result, and the library's answer is the input's own digits. This module
//! checks exactly that against the same crate's metadata (every region's
//! `national_prefix` and `national_prefix_for_parsing`), and answers only
//! when it holds; anything else goes to the library, so stored subject keys
//! stay byte-identical across a deploy. The differential test below compares
//! both over every calling code.

use std::{str::FromStr, sync::OnceLock};

use phonenumber::{NationalNumber, country, metadata::DATABASE};
use regex::bytes::{Regex, RegexBuilder};

/// The library's bounds on a national significant number (its `consts`).
const MIN_NATIONAL: usize = 2;
const MAX_NATIONAL: usize = 17;

/// Calling codes are 1 to 3 digits, so below 1000.
const CODES: usize = 1000;

/// What every region under one calling code could strip from the front of a
/// national number. Built on the first number with that code, then kept.
struct StripRules {
    /// Each region's literal national prefix (`0`, `1`, `8`, …).
    prefixes: Vec<String>,
    /// Each region's prefix-for-parsing pattern, anchored at the start and
    /// joined into one regex; compiled with the library's whitespace flag,
    /// but with ASCII classes (see [`StripRules::build`]).
    for_parsing: Option<Regex>,
}

/// One slot per calling code; `None` inside means "could not build, always
/// ask the library".
static RULES: [OnceLock<Option<StripRules>>; CODES] = [const { OnceLock::new() }; CODES];

/// The E.164 form and calling code the library would give `raw`, when `raw` is
/// `+` and digits and nothing could be stripped; `None` means "ask the library".
pub(super) fn parse_e164(raw: &str) -> Option<(u16, String)> {
    let digits = raw.strip_prefix('+')?;
    if digits.len() <= MIN_NATIONAL
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // The library takes the shortest prefix that is a known calling code.
    let (code, national) = super::split_calling_code(digits)?;
    if !(MIN_NATIONAL..=MAX_NATIONAL).contains(&national.len()) {
        return None;
    }
    if rules_for(code)?.could_strip(national) {
        return None;
    }
    let national = NationalNumber::from_str(national).ok()?;
    Some((code, format!("+{code}{national}")))
}

/// The region of a number whose calling code belongs to one region only
/// (the library's own shortcut in its region search); `None` means "ask the
/// library" (shared codes such as +1, and non-geographic ones).
pub(super) fn sole_region(country_code: u16) -> Option<&'static str> {
    let regions = DATABASE.region(&country_code)?;
    match regions.as_slice() {
        [only] if *only != "001" && country::Id::from_str(only).is_ok() => Some(only),
        _ => None,
    }
}

fn rules_for(code: u16) -> Option<&'static StripRules> {
    RULES
        .get(usize::from(code))?
        .get_or_init(|| StripRules::build(code))
        .as_ref()
}

impl StripRules {
    fn build(code: u16) -> Option<Self> {
        let regions = DATABASE.by_code(&code)?;
        let prefixes = regions
            .iter()
            .filter_map(|meta| meta.national_prefix().map(str::to_owned))
            .collect();
        // A newline after each pattern ends any `#` comment the whitespace-
        // insensitive syntax would otherwise extend over the rest.
        let patterns: Vec<String> = regions
            .iter()
            .filter_map(|meta| meta.national_prefix_for_parsing())
            .map(|pattern| format!("^(?:{}\n)", pattern.as_str()))
            .collect();
        // Unicode off: it only ever sees ASCII digits (`parse_e164` checks),
        // on which `\d`, `\w`, `\b` and `.` match exactly as their Unicode
        // forms do, and Unicode's `\d` alone made the +1 regex ~0.9 MB of
        // the idle heap (~30 kB without; BENCHMARKS.md, issue 14). Bytes, so
        // that a `.` (which could then match half a character) still compiles.
        let for_parsing = if patterns.is_empty() {
            None
        } else {
            Some(
                RegexBuilder::new(&patterns.join("|"))
                    .ignore_whitespace(true)
                    .unicode(false)
                    .build()
                    .ok()?,
            )
        };
        Some(Self {
            prefixes,
            for_parsing,
        })
    }

    /// Whether some region's national prefix or prefix-for-parsing pattern
    /// matches at the start of `national` (the only case in which the
    /// library's result depends on which region it picks).
    fn could_strip(&self, national: &str) -> bool {
        self.prefixes
            .iter()
            .any(|prefix| national.starts_with(prefix.as_str()))
            || self
                .for_parsing
                .as_ref()
                .is_some_and(|re| re.is_match(national.as_bytes()))
    }
}

#[cfg(test)]
mod tests;
