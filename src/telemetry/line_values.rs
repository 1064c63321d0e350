//! How single values are spelled on a log line, byte for byte as
//! tracing-subscriber spells them (its `Full` text and JSON formatters), but
//! without going through `{:?}` or serde for the common cases: a plain
//! string, an integer, a float in decimal range. Anything else falls back to
//! the very code path tracing-subscriber uses, so output cannot drift.

use std::fmt::{self, Write};

/// Writes `value` as `{:?}` of a `&str` would: a plain printable ASCII
/// string is quoted as is; anything that `Debug` might escape goes through
/// `Debug` itself.
pub(super) fn write_debug_str(out: &mut dyn Write, value: &str) -> fmt::Result {
    let plain = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.write_char('"')?;
        out.write_str(value)?;
        out.write_char('"')
    } else {
        write!(out, "{value:?}")
    }
}

/// Writes `value` as `{:?}` of an `f64` would. `Debug` switches to
/// exponent notation below 1e-4 and from 1e16 on; in between it writes the
/// shortest digits that read back as `value`, as Ryū does, except when two
/// such digit strings are equally close (Ryū then takes the even one, the
/// standard library the one away from zero): that needs a value whose exact
/// decimal expansion is at most 18 digits long, and those go through
/// `Debug`. (zmij, serde_json's, breaks such ties its own way too.)
pub(super) fn write_debug_f64(out: &mut dyn Write, value: f64) -> fmt::Result {
    let abs = value.abs();
    if abs == 0.0 || (1e-4..1e16).contains(&abs) {
        let mut buffer = ryu::Buffer::new();
        let digits = buffer.format_finite(value);
        if !may_tie(value, digits) {
            return out.write_str(digits);
        }
    }
    write!(out, "{value:?}")
}

/// Whether `value`'s exact decimal expansion has at most 18 significant
/// digits (`digits` is its shortest form, which has the same integer part
/// and leading fractional zeros). A value with `f` fractional bits has
/// exactly `f` fractional decimal digits.
fn may_tie(value: f64, digits: &str) -> bool {
    let bits = value.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let mantissa = if exponent == 0 {
        fraction
    } else {
        fraction | (1 << 52)
    };
    if mantissa == 0 {
        return false;
    }
    let binary_exponent = if exponent == 0 {
        -1074
    } else {
        exponent - 1075
    };
    let fractional_bits = -(binary_exponent + mantissa.trailing_zeros() as i32);
    if fractional_bits <= 0 {
        // An integer below 1e16: neighbouring doubles are at most 2 apart,
        // too close for two equally short candidates.
        return false;
    }
    let unsigned = digits.trim_start_matches('-');
    let (integer, decimals) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let significant = if integer == "0" {
        let leading_zeros = decimals.len() - decimals.trim_start_matches('0').len();
        fractional_bits - leading_zeros as i32
    } else {
        integer.len() as i32 + fractional_bits
    };
    significant <= 18
}

/// Writes an integer in decimal, as both `Debug` and JSON spell it.
pub(super) fn write_int(out: &mut dyn Write, value: impl itoa::Integer) -> fmt::Result {
    out.write_str(itoa::Buffer::new().format(value))
}

/// Writes an `f64` as serde_json does: `null` unless finite.
pub(super) fn write_json_f64(out: &mut dyn Write, value: f64) -> fmt::Result {
    if value.is_finite() {
        out.write_str(zmij::Buffer::new().format_finite(value))
    } else {
        out.write_str("null")
    }
}

/// Writes `value` as a quoted JSON string, escaped as serde_json escapes.
pub(super) fn write_json_str(out: &mut dyn Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    JsonEscaped(out).write_str(value)?;
    out.write_char('"')
}

/// A writer that JSON-escapes what passes through it (the inside of a
/// string): serde_json's table, `\"`, `\\`, the short forms `\b \t \n \f
/// \r`, other control bytes as `\u00xx`; nothing else.
pub(super) struct JsonEscaped<'a>(pub(super) &'a mut dyn Write);

impl Write for JsonEscaped<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Most text needs no escape: one pass without an early exit, which
        // the compiler vectorises.
        let needs_escape = text.bytes().fold(false, |found, b| {
            found | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if !needs_escape {
            return self.0.write_str(text);
        }
        let mut start = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                0x08 => "\\b",
                b'\t' => "\\t",
                b'\n' => "\\n",
                0x0c => "\\f",
                b'\r' => "\\r",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[start..at])?;
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.0.write_str("\\u00")?;
                self.0.write_char(char::from(HEX[usize::from(byte >> 4)]))?;
                self.0
                    .write_char(char::from(HEX[usize::from(byte & 0xf)]))?;
            } else {
                self.0.write_str(escape)?;
            }
            start = at + 1;
        }
        self.0.write_str(&text[start..])
    }
}

/// A writer that neutralises terminal control sequences in what passes
/// through it, exactly as tracing-subscriber's `EscapeGuard` does for a
/// text line's message and errors (its default ANSI sanitisation): ESC, BEL,
/// BS, FF and DEL as `\xNN`, C1 controls as `\u{NN}`.
pub(super) struct Sanitized<'a>(pub(super) &'a mut dyn Write);

impl Write for Sanitized<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // 0xc2 leads every C1 control (U+0080..U+009F) in UTF-8.
        let risky = text
            .bytes()
            .any(|b| matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2));
        if !risky {
            return self.0.write_str(text);
        }
        for ch in text.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

/// Formats `T` (Display or Debug) through [`Sanitized`]: tracing-subscriber's
/// `EscapeGuard` with sanitisation on.
pub(super) struct SanitizedValue<T>(pub(super) T);

impl<T: fmt::Debug> fmt::Debug for SanitizedValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Sanitized(f), "{:?}", self.0)
    }
}

impl<T: fmt::Display> fmt::Display for SanitizedValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Sanitized(f), "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_their_debug_form() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300_000 {
            let bits = f64::from_bits(next());
            let decimal =
                (next() % 100_000_000) as f64 / 1e4 * 10f64.powi((next() % 28) as i32 - 10);
            // Few fractional bits: short exact expansions, where ties live.
            let coarse = (next() >> 11) as f64 / f64::from(1_u32 << (next() % 31));
            let coarse_small = (next() >> 30) as f64 / f64::from(1_u32 << (next() % 31));
            for value in [bits, decimal, -decimal, coarse, -coarse, coarse_small] {
                let mut ours = String::new();
                write_debug_f64(&mut ours, value).expect("format");
                assert_eq!(ours, format!("{value:?}"));
            }
        }
    }

    #[test]
    fn ties_read_as_their_debug_form() {
        for value in [
            -1_149_636_667_324_797.2,
            // 1 + 2^-17: 18 exact digits, two 17-digit candidates.
            1.0 + 1.0 / 131_072.0,
            0.5,
            2.5e-4,
            1e15 + 0.5,
        ] {
            let mut ours = String::new();
            write_debug_f64(&mut ours, value).expect("format");
            assert_eq!(ours, format!("{value:?}"));
        }
    }

    #[test]
    fn strings_read_as_their_debug_form() {
        for text in [
            "", "plain", "q\"", "b\\", "n\n", "\u{7f}", "\u{301}x", "é", "\x1b",
        ] {
            let mut ours = String::new();
            write_debug_str(&mut ours, text).expect("format");
            assert_eq!(ours, format!("{text:?}"));
        }
    }
}
