//! The timestamp that starts each log line, spelled as tracing-subscriber's
//! `SystemTime` timer spells it (RFC 3339, UTC, microseconds:
//! `2026-11-26T18:55:59.226650Z`), but with the date and time of day
//! computed once per second per thread: a line only writes its microseconds.

use std::{
    cell::Cell,
    fmt::{self, Write},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing_subscriber::fmt::{format::Writer, time::FormatTime};

/// The wall clock, in UTC, as tracing-subscriber's `SystemTime` prints it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write_utc(SystemTime::now(), w)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` of one second, at most 23 bytes (a year past 9999
/// is written with a sign and more digits).
#[derive(Clone, Copy)]
struct SecondPrefix {
    second: i64,
    len: u8,
    bytes: [u8; 32],
}

thread_local! {
    /// The last second this thread wrote; lines come many per second.
    static LAST_SECOND: Cell<Option<SecondPrefix>> = const { Cell::new(None) };
}

/// Writes `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub(super) fn write_utc(at: SystemTime, out: &mut dyn Write) -> fmt::Result {
    // Before 1970 the second is counted down and the fraction up, as
    // tracing-subscriber's `DateTime` does.
    let (second, nanos) = match at.duration_since(UNIX_EPOCH) {
        Ok(since) => (since.as_secs() as i64, since.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let (secs, nanos) = (before.as_secs() as i64, before.subsec_nanos());
            if nanos == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1_000_000_000 - nanos)
            }
        }
    };
    let prefix = match LAST_SECOND.get() {
        Some(prefix) if prefix.second == second => prefix,
        _ => {
            let prefix = second_prefix(second);
            LAST_SECOND.set(Some(prefix));
            prefix
        }
    };
    let text =
        std::str::from_utf8(&prefix.bytes[..usize::from(prefix.len)]).map_err(|_| fmt::Error)?;
    out.write_str(text)?;
    let micros = nanos / 1_000;
    let mut digits = *b"000000Z";
    let mut rest = micros;
    for digit in digits[..6].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

/// The date and time of day of `second` (seconds since 1970, UTC).
fn second_prefix(second: i64) -> SecondPrefix {
    let days = second.div_euclid(86_400);
    let of_day = second.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = String::with_capacity(32);
    // The year as tracing-subscriber writes it: four digits, a sign and all
    // digits past 9999, five characters with the minus before year 0.
    let _ = if year > 9999 {
        write!(text, "+{year}")
    } else if year < 0 {
        write!(text, "{year:05}")
    } else {
        write!(text, "{year:04}")
    };
    let _ = write!(
        text,
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    let mut bytes = [0; 32];
    let len = text.len().min(bytes.len());
    bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
    SecondPrefix {
        second,
        len: len as u8,
        bytes,
    }
}

/// Proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ours(at: SystemTime) -> String {
        let mut text = String::new();
        write_utc(at, &mut text).expect("format");
        text
    }

    /// The `time` crate's reading of the same instant, in our shape.
    fn reference(at: SystemTime) -> String {
        let nanos = match at.duration_since(UNIX_EPOCH) {
            Ok(since) => since.as_nanos() as i128,
            Err(before) => -(before.duration().as_nanos() as i128),
        };
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("in range");
        let year = t.year();
        let year = if year > 9999 {
            format!("+{year}")
        } else if year < 0 {
            format!("{year:05}")
        } else {
            format!("{year:04}")
        };
        format!(
            "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.microsecond()
        )
    }

    #[test]
    fn instants_across_the_calendar_read_as_the_time_crate_reads_them() {
        // A deterministic walk over years 1..9999 with odd steps (leap days,
        // century years, second and microsecond boundaries all get hit),
        // then a dense run of consecutive seconds to exercise the cache.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let first = -62_135_596_800_i64; // 0001-01-01
        let last = 253_402_300_799_i64; // 9999-12-31T23:59:59
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let second = first + (state % (last - first) as u64) as i64;
            let nanos = (state >> 20) as u32 % 1_000_000_000;
            let at = if second >= 0 {
                UNIX_EPOCH + Duration::new(second as u64, nanos)
            } else {
                UNIX_EPOCH - Duration::from_secs(second.unsigned_abs())
                    + Duration::from_nanos(u64::from(nanos))
            };
            assert_eq!(ours(at), reference(at), "{second}.{nanos:09}");
        }
        let start = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        for step in 0..20_000_u64 {
            let at = start + Duration::from_micros(step * 999_983);
            assert_eq!(ours(at), reference(at));
        }
        for special in [0_u64, 951_782_400, 4_107_542_400, 1_709_164_800] {
            let at = UNIX_EPOCH + Duration::from_secs(special);
            assert_eq!(ours(at), reference(at));
        }
    }

    #[test]
    fn now_reads_as_tracing_subscriber_reads_it() {
        // Bracket ours between two of theirs: when both fall in the same
        // second, ours is that second and its microseconds lie between.
        let theirs = || {
            let mut text = String::new();
            tracing_subscriber::fmt::time::SystemTime
                .format_time(&mut Writer::new(&mut text))
                .expect("format");
            text
        };
        let mut compared = 0;
        for _ in 0..1_000 {
            let before = theirs();
            let mut mine = String::new();
            UtcMicros
                .format_time(&mut Writer::new(&mut mine))
                .expect("format");
            let after = theirs();
            assert_eq!(mine.len(), before.len(), "{mine} vs {before}");
            if before[..20] == after[..20] {
                assert_eq!(mine[..20], before[..20]);
                assert!(before <= mine && mine <= after, "{before} {mine} {after}");
                compared += 1;
            }
        }
        assert!(compared > 900);
    }
}
