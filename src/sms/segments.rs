//! How many billed SMS a text takes: its encoding on the air (GSM-7 or
//! UCS-2) and its segments, as the segment warning and the spend estimate
//! count them.

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit alphabet: 160 characters in one SMS.
    Gsm7,
    /// Anything else: UCS-2, 70 characters in one SMS.
    Ucs2,
}

/// How many SMS a text takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// Its encoding.
    pub encoding: SmsEncoding,
    /// Septets (GSM-7; extension characters take two) or UTF-16 units (UCS-2).
    pub units: usize,
    /// Segments billed: one up to 160 / 70 units, else 153 / 67 per segment
    /// (the rest of each carries the header that joins them).
    pub count: usize,
}

/// The GSM 03.38 basic character set (without the escape).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: each costs an escape plus itself.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets each ASCII character takes in GSM-7 (0: not in the alphabet),
/// so the common case is a table look-up rather than a scan of the
/// alphabet per character (every priced send counts its segments).
const GSM7_ASCII: [u8; 128] = {
    let mut septets = [0_u8; 128];
    let mut c = 0;
    while c < 128 {
        septets[c] = match c as u8 {
            b'\n' | b'\r' | b' '..=b'#' | b'%'..=b'?' | b'A'..=b'Z' | b'a'..=b'z' | b'_' => 1,
            b'@' | b'$' => 1,
            0x0c | b'^' | b'{' | b'}' | b'\\' | b'[' | b'~' | b']' | b'|' => 2,
            _ => 0,
        };
        c += 1;
    }
    septets
};

/// Septets `c` takes in GSM-7 (0: not in the alphabet).
fn gsm7_septets(c: char) -> usize {
    match u8::try_from(c) {
        Ok(byte) if byte.is_ascii() => usize::from(GSM7_ASCII[usize::from(byte)]),
        _ if GSM7_EXTENSION.contains(c) => 2,
        _ if GSM7_BASIC.contains(c) => 1,
        _ => 0,
    }
}

/// Whether every character of `text` is in the GSM-7 alphabet (else the
/// SMS goes as UCS-2, e.g. Vonage's `type=unicode`).
pub fn is_gsm7(text: &str) -> bool {
    gsm7_length(text).is_some()
}

/// The septets `text` takes in GSM-7, or `None` if a character is not in
/// the alphabet. One pass, over bytes when the text is ASCII (most codes'
/// messages): this runs on every priced send.
fn gsm7_length(text: &str) -> Option<usize> {
    let add = |sum: usize, septets: usize| (septets > 0).then_some(sum + septets);
    if text.is_ascii() {
        return text.bytes().try_fold(0, |sum, byte| {
            add(sum, usize::from(GSM7_ASCII[usize::from(byte)]))
        });
    }
    text.chars().try_fold(0, |sum, c| add(sum, gsm7_septets(c)))
}

/// How many segments `text` takes.
pub fn count_segments(text: &str) -> Segments {
    let (encoding, units, single, per_part) = match gsm7_length(text) {
        Some(septets) => (SmsEncoding::Gsm7, septets, 160, 153),
        None => (SmsEncoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let count = if units <= single {
        1
    } else {
        units.div_ceil(per_part)
    };
    Segments {
        encoding,
        units,
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_table_says_what_the_alphabet_says() {
        for byte in 0_u8..128 {
            let c = char::from(byte);
            let expected = if GSM7_EXTENSION.contains(c) {
                2
            } else {
                usize::from(GSM7_BASIC.contains(c))
            };
            assert_eq!(gsm7_septets(c), expected, "{byte:#04x}");
        }
    }

    #[test]
    fn gsm7_and_ucs2_segments_are_counted() {
        assert_eq!(count_segments(&"a".repeat(160)).count, 1);
        assert_eq!(count_segments(&"a".repeat(161)).count, 2);
        assert_eq!(count_segments(&"a".repeat(306)).count, 2);
        assert_eq!(count_segments(&"a".repeat(307)).count, 3);
        // Extension characters cost two septets.
        let euros = count_segments(&"€".repeat(80));
        assert_eq!(
            (euros.encoding, euros.units, euros.count),
            (SmsEncoding::Gsm7, 160, 1)
        );
        assert_eq!(count_segments(&"€".repeat(81)).count, 2);
        let accents = count_segments("Seu código é 123456");
        assert_eq!(accents.encoding, SmsEncoding::Ucs2, "ó is not GSM-7");
        assert_eq!(count_segments(&"ó".repeat(70)).count, 1);
        assert_eq!(count_segments(&"ó".repeat(71)).count, 2);
        assert_eq!(count_segments(&"ó".repeat(134)).count, 2);
        assert_eq!(
            count_segments(&"😀".repeat(35)).units,
            70,
            "emoji are two UTF-16 units"
        );
        assert!(is_gsm7("é à ñ ü Ç ò {€}"), "these are in GSM-7");
    }
}
