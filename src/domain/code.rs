//! One-time codes: how they are made, accepted from a user, and kept (only as
//! a keyed digest, compared in constant time).

use std::fmt;

use rand::{
    Rng, TryRngCore,
    distr::{Distribution, Uniform},
    rngs::OsRng,
};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// A code of decimal digits. `Debug` and `Display` redact it, so it cannot
/// reach a log by accident; [`OtpCode::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

/// Why a user-supplied code was refused before it was checked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodeError {
    /// Nothing was given.
    #[error("is required")]
    Missing,
    /// Wrong number of characters.
    #[error("must be exactly {expected} digits")]
    WrongLength {
        /// The configured code length.
        expected: u8,
    },
    /// Something other than ASCII digits.
    #[error("must contain only the digits 0-9")]
    NotDigits,
}

impl OtpCode {
    /// A new code of `length` digits, uniform over all `10^length` values,
    /// drawn from the operating system's CSPRNG.
    pub fn generate(length: u8) -> Self {
        // OsRng failing means the OS has no entropy source: nothing safe to do but stop.
        Self::generate_with(&mut OsRng.unwrap_err(), length)
    }

    /// [`OtpCode::generate`] from a given random source. `Uniform::sample`
    /// is Lemire's method: a 64-bit draw whose low product word falls in the
    /// `2^64 mod 10^length` values that would favour some codes is rejected
    /// and drawn again, never reduced modulo, so every code is exactly as
    /// likely. (The crate's `unbiased` feature is on as well, so rand's
    /// single-shot `random_range` would be exact too; `Uniform::sample` does
    /// not depend on it.)
    fn generate_with<R: Rng + ?Sized>(rng: &mut R, length: u8) -> Self {
        let upper = 10u64.pow(u32::from(length));
        let codes = Uniform::new(0, upper).expect("10^length is a non-empty range");
        let value = codes.sample(rng);
        Self(format!("{value:0width$}", width = usize::from(length)))
    }

    /// Accepts a code typed by a user: exactly `length` ASCII digits.
    pub fn parse(raw: &str, length: u8) -> Result<Self, CodeError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(CodeError::Missing);
        }
        if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::NotDigits);
        }
        if trimmed.len() != usize::from(length) {
            return Err(CodeError::WrongLength { expected: length });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The digits. Only the SMS message and the digest may use this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

/// The keyed hash of a code: what stores keep and compare. Equality is
/// constant-time.
#[derive(Clone, Copy)]
pub struct CodeDigest([u8; 32]);

impl CodeDigest {
    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Raw digest bytes, for stores that keep them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for CodeDigest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CodeDigest {}

impl fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeDigest(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_configured_length_and_only_digits() {
        for length in 4..=10u8 {
            for _ in 0..50 {
                let code = OtpCode::generate(length);
                assert_eq!(code.expose().len(), usize::from(length));
                assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    /// Pearson's chi-square of digit counts, summed over every position
    /// (9 degrees of freedom per position).
    fn chi_square(counts: &[[u32; 10]]) -> f64 {
        counts
            .iter()
            .map(|position| {
                let expected = f64::from(position.iter().sum::<u32>()) / 10.0;
                position
                    .iter()
                    .map(|&seen| (f64::from(seen) - expected).powi(2) / expected)
                    .sum::<f64>()
            })
            .sum()
    }

    fn digit_counts(codes: impl Iterator<Item = String>) -> Vec<[u32; 10]> {
        let mut counts = vec![[0u32; 10]; 6];
        for code in codes {
            for (position, digit) in code.bytes().enumerate() {
                counts[position][usize::from(digit - b'0')] += 1;
            }
        }
        counts
    }

    /// 54 degrees of freedom: mean 54, sd 10.4; 120 is ~6.4 sd above the
    /// mean (p < 1e-8), so a fair generator fails about never.
    const CHI_SQUARE_LIMIT: f64 = 120.0;
    const SAMPLE: usize = 60_000;

    #[test]
    fn generated_codes_are_uniform_over_every_digit_and_position() {
        // Leading zeros must survive formatting, and no digit may be
        // favoured at any position.
        let counts = digit_counts((0..SAMPLE).map(|_| OtpCode::generate(6).expose().to_owned()));
        let statistic = chi_square(&counts);
        assert!(
            statistic < CHI_SQUARE_LIMIT,
            "chi-square {statistic:.1} over {SAMPLE} codes: {counts:?}"
        );
    }

    #[test]
    fn the_uniformity_check_sees_a_small_bias() {
        // The same check on a source where one code in 50 is "000000" (digit
        // 0 at 11.8 % instead of 10 %): the check must be able to fail.
        let biased = (0..SAMPLE).map(|i| {
            if i % 50 == 0 {
                "000000".to_owned()
            } else {
                OtpCode::generate(6).expose().to_owned()
            }
        });
        let statistic = chi_square(&digit_counts(biased));
        assert!(
            statistic > CHI_SQUARE_LIMIT,
            "a 2 % bias went unseen: chi-square {statistic:.1}"
        );
    }

    /// Replays fixed 64-bit draws.
    struct Draws(Vec<u64>);

    impl rand::RngCore for Draws {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0.remove(0)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            rand::rand_core::impls::fill_bytes_via_next(self, dest);
        }
    }

    #[test]
    fn a_draw_that_would_bias_the_code_is_rejected_and_redrawn() {
        // 0 × 10^6 leaves a low word of 0, inside the 2^64 mod 10^6 values
        // that would make low codes likelier; a biased sampler returns 000000.
        // u64::MAX maps to the highest code with a low word far above them.
        let mut draws = Draws(vec![0, u64::MAX]);
        let code = OtpCode::generate_with(&mut draws, 6);
        assert_eq!(code.expose(), "999999", "the first draw was thrown away");
        assert!(draws.0.is_empty(), "exactly two draws were taken");
    }

    #[test]
    fn user_codes_must_be_exact_digits() {
        assert_eq!(OtpCode::parse("", 6), Err(CodeError::Missing));
        assert_eq!(
            OtpCode::parse("12345", 6),
            Err(CodeError::WrongLength { expected: 6 })
        );
        assert_eq!(
            OtpCode::parse("1234567", 6),
            Err(CodeError::WrongLength { expected: 6 })
        );
        assert_eq!(OtpCode::parse("12a456", 6), Err(CodeError::NotDigits));
        assert_eq!(OtpCode::parse("١٢٣٤٥٦", 6), Err(CodeError::NotDigits));
        assert_eq!(
            OtpCode::parse(" 012345 ", 6).expect("valid").expose(),
            "012345"
        );
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = OtpCode::parse("123456", 6).expect("valid");
        assert!(!format!("{code:?}").contains("123456"));
    }

    #[test]
    fn digests_compare_by_value() {
        assert_eq!(
            CodeDigest::from_bytes([7; 32]),
            CodeDigest::from_bytes([7; 32])
        );
        assert_ne!(
            CodeDigest::from_bytes([7; 32]),
            CodeDigest::from_bytes([8; 32])
        );
    }
}
