//! A destination's country for pricing and the per-country metrics,
//! remembered per North American number range.
//!
//! Why by hand (a measurement): `PhoneNumber::region` for a +1 number runs
//! the numbering plan's patterns of every NANP region — 7.1 µs a number
//! (release build, `+1415…`, issue 29's notes), half of a whole SendOtp on
//! the memory store — and every priced send needs its country. Inside
//! NANP the plan decides the region by the leading digits of the national
//! number (area code, exchange and at most one more digit: the deepest
//! patterns), so the answer for the first number of a 7-digit range is the
//! answer for all of it; `tests` holds that against the library over every
//! area code. Other calling codes ask the library (most are one region and
//! answered without a parse). Bounded: past [`MAX_RANGES`] ranges the
//! library is asked.

use std::{collections::HashMap, sync::RwLock};

use crate::domain::PhoneNumber;

/// Most ranges remembered (a few MB at most).
const MAX_RANGES: usize = 100_000;

/// The regions of calling code 1: only these are remembered (as `'static`).
const NANP_REGIONS: [&str; 25] = [
    "US", "CA", "AG", "AI", "AS", "BB", "BM", "BS", "DM", "DO", "GD", "GU", "JM", "KN", "KY", "LC",
    "MP", "MS", "PR", "SX", "TC", "TT", "VC", "VG", "VI",
];

/// Range (the first 7 national digits of a +1 number) → region.
#[derive(Debug, Default)]
pub struct RegionMemo {
    ranges: RwLock<HashMap<u32, Option<&'static str>>>,
}

impl RegionMemo {
    /// The region of `phone` (`None`: the plan gives it none).
    pub fn region<'p>(&self, phone: &'p PhoneNumber) -> Option<&'p str> {
        let Some(range) = nanp_range(phone.e164()) else {
            return phone.region();
        };
        if let Some(region) = self.read().get(&range) {
            return *region;
        }
        let region = phone.region();
        let remembered = match region {
            None => None,
            Some(region) => match NANP_REGIONS.iter().find(|known| **known == region) {
                Some(known) => Some(*known),
                // A region this list lacks: asked every time, never wrong.
                None => return Some(region),
            },
        };
        let mut ranges = self
            .ranges
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if ranges.len() < MAX_RANGES {
            ranges.insert(range, remembered);
        }
        region
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u32, Option<&'static str>>> {
        // A panic cannot leave the map half-written: plain inserts.
        self.ranges
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The first 7 national digits of a +1 number with 10 (`+1NPANXXX…`).
fn nanp_range(e164: &str) -> Option<u32> {
    let national = e164.strip_prefix("+1")?;
    if national.len() != 10 {
        return None;
    }
    national.get(..7)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every area code, a spread of exchanges and the digit after, and four
    /// line numbers each: one range always has one region in the library,
    /// and the memo answers what the library answers.
    #[test]
    fn a_ranges_numbers_share_the_librarys_region_over_every_area_code() {
        let memo = RegionMemo::default();
        for npa in 200..1000 {
            for nxx_x in [2000, 2119, 5550, 5551, 6404, 6478, 9110, 9999] {
                let mut seen = None;
                for line in ["000", "123", "555", "999"] {
                    let raw = format!("+1{npa}{nxx_x}{line}");
                    let Ok(phone) = PhoneNumber::parse(&raw) else {
                        continue;
                    };
                    let library = phone.region().map(str::to_owned);
                    let fresh = PhoneNumber::parse(&raw).expect("parses again");
                    assert_eq!(memo.region(&fresh), library.as_deref(), "{raw}");
                    match &seen {
                        None => seen = Some(library),
                        Some(first) => assert_eq!(first, &library, "{raw}: one range, two regions"),
                    }
                }
            }
        }
        assert!(memo.read().len() > 1_000, "ranges remembered");
    }

    #[test]
    fn other_calling_codes_ask_the_library() {
        let memo = RegionMemo::default();
        let gb = PhoneNumber::parse("+447400123456").expect("valid");
        assert_eq!(memo.region(&gb), Some("GB"));
        assert!(memo.read().is_empty());
    }
}
