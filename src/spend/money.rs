//! Money as the service keeps it: whole millionths of the price file's
//! currency ([`Micros`]), never a float at rest, and the currency itself
//! ([`Currency`], an ISO 4217 code). A price written `0.0079` is 7 900 µ.

use std::{fmt, str::FromStr};

use thiserror::Error;

/// Millionths of a currency unit per currency unit.
pub const MICROS_PER_UNIT: u64 = 1_000_000;

/// An amount in millionths of the price file's currency. Integer arithmetic
/// only; it saturates rather than wraps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub u64);

/// Why a decimal amount was refused. The message says why and leaves out
/// the amount: its caller names the entry and shows the amount once
/// ([`AmountError::amount`]), as clap shows a flag's value.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AmountError {
    /// Below zero.
    #[error("is negative")]
    Negative(String),
    /// Not a decimal number.
    #[error("is not a decimal amount such as `0.0079`")]
    NotDecimal(String),
    /// Finer than a millionth.
    #[error("has more than 6 decimals")]
    TooPrecise(String),
    /// Beyond what the service counts (a billion units).
    #[error("is more than 1000000000")]
    TooLarge(String),
}

impl AmountError {
    /// The amount as written.
    pub fn amount(&self) -> &str {
        match self {
            Self::Negative(raw)
            | Self::NotDecimal(raw)
            | Self::TooPrecise(raw)
            | Self::TooLarge(raw) => raw,
        }
    }
}

/// The largest amount accepted anywhere: a billion units.
const MAX_UNITS: u64 = 1_000_000_000;

impl Micros {
    /// Zero.
    pub const ZERO: Micros = Micros(0);

    /// `self × n`, saturating.
    pub fn times(self, n: u64) -> Micros {
        Micros(self.0.saturating_mul(n))
    }

    /// Parses a decimal amount of currency units (`0.0079`, `12`, `3.5`),
    /// exactly: no float is involved.
    pub fn parse(raw: &str) -> Result<Micros, AmountError> {
        let text = raw.trim();
        if text.starts_with('-') {
            return Err(AmountError::Negative(raw.to_owned()));
        }
        let text = text.strip_prefix('+').unwrap_or(text);
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(AmountError::NotDecimal(raw.to_owned()));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 6 {
            return Err(AmountError::TooPrecise(raw.to_owned()));
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            // Only digits by now: a failure is an overflow.
            whole
                .parse()
                .map_err(|_| AmountError::TooLarge(raw.to_owned()))?
        };
        if whole > MAX_UNITS {
            return Err(AmountError::TooLarge(raw.to_owned()));
        }
        let fraction_micros: u64 = format!("{fraction:0<6}")
            .parse()
            .map_err(|_| AmountError::NotDecimal(raw.to_owned()))?;
        Ok(Micros(whole * MICROS_PER_UNIT + fraction_micros))
    }
}

impl FromStr for Micros {
    type Err = AmountError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Micros::parse(raw)
    }
}

impl fmt::Display for Micros {
    /// The amount in currency units, without trailing zeros (`0.0079`, `12`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / MICROS_PER_UNIT;
        let fraction = self.0 % MICROS_PER_UNIT;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let fraction = format!("{fraction:06}");
        write!(f, "{whole}.{}", fraction.trim_end_matches('0'))
    }
}

/// An ISO 4217 currency code a bill can be in (precious metals, funds and
/// test codes are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency(&'static str);

/// The active ISO 4217 currency codes (list one), less metals and test codes.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
    BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN \
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD \
    JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT \
    MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR \
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND \
    TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

impl Currency {
    /// The code if it is an ISO 4217 currency (upper case, as the standard writes it).
    pub fn parse(raw: &str) -> Option<Currency> {
        ISO_4217
            .split_ascii_whitespace()
            .find(|code| *code == raw)
            .map(Currency)
    }

    /// The three-letter code.
    pub fn code(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_are_read_exactly() {
        for (raw, micros) in [
            ("0.0079", 7_900),
            ("12", 12_000_000),
            ("3.5", 3_500_000),
            (".25", 250_000),
            ("0.000001", 1),
            ("0.1000000", 100_000),
            ("0", 0),
            ("000.5", 500_000),
        ] {
            assert_eq!(Micros::parse(raw), Ok(Micros(micros)), "{raw}");
        }
        assert_eq!(Micros(7_900).to_string(), "0.0079");
        assert_eq!(Micros(12_000_000).to_string(), "12");
        assert_eq!(Micros(3_500_001).to_string(), "3.500001");
    }

    #[test]
    fn bad_amounts_are_refused_with_the_reason() {
        assert!(matches!(
            Micros::parse("-0.01"),
            Err(AmountError::Negative(_))
        ));
        assert!(matches!(
            Micros::parse("0.0000001"),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            Micros::parse("1e-3"),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(Micros::parse(""), Err(AmountError::NotDecimal(_))));
        assert!(matches!(
            Micros::parse("."),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(
            Micros::parse("1000000001"),
            Err(AmountError::TooLarge(_))
        ));
        assert!(matches!(
            Micros::parse("99999999999999999999999"),
            Err(AmountError::TooLarge(_))
        ));
    }

    #[test]
    fn currencies_are_iso_4217_codes() {
        assert_eq!(Currency::parse("USD").map(Currency::code), Some("USD"));
        assert_eq!(Currency::parse("EUR").map(Currency::code), Some("EUR"));
        for bad in ["usd", "XAU", "XXX", "US", "DOLLAR", ""] {
            assert_eq!(Currency::parse(bad), None, "{bad}");
        }
    }
}
