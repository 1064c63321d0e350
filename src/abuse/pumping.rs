//! The SMS-pumping guard's policy: per destination prefix (country calling
//! code plus the next few digits), how many codes were sent and how many
//! approved in a sliding window; a prefix with enough sends to judge and too
//! few approvals is suspended for a while. Pure rules: the stores keep the
//! counts (`store/prefix_window.rs` and its Lua twin `store/lua/count_prefix_send.lua`).
//!
//! Pumping (toll fraud) texts number ranges an attacker earns from; nobody
//! there ever types a code in. Real users do, so a prefix whose users verify
//! normally is never suspended.
//!
//! The guard must not become a weapon against those users, so three rules
//! bound what a verdict can do (issue 25):
//! - a number that approved a code within `trust_for` is never refused by the
//!   guard (the stores keep a keyed 8-byte digest of it per prefix);
//! - a verdict needs unverified judged sends from `min_sources` distinct
//!   sources ([`SendSource`]): one source's sends are held by its own limits;
//! - a judged send counts as approved only if its own code was approved, so
//!   one approving number cannot keep a pumped prefix open.

use std::{fmt, time::Duration};

use crate::domain::{PhoneNumber, split_calling_code};

/// `OTP_PUMPING_GUARD`: what the guard does when a prefix looks pumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMode {
    /// Nothing is counted.
    Off,
    /// Counted, logged and measured, but sends are never refused: for
    /// learning what `Enforce` would do on real traffic.
    Monitor,
    /// A suspended prefix's sends are refused until the suspension lifts.
    Enforce,
}

impl GuardMode {
    /// The variable's value for this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Monitor => "monitor",
            Self::Enforce => "enforce",
        }
    }
}

/// The guard's settings (`OTP_PUMPING_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpingGuardSettings {
    /// Off, monitor or enforce (`OTP_PUMPING_GUARD`).
    pub mode: GuardMode,
    /// National digits after the country calling code that make a prefix
    /// (`OTP_PUMPING_PREFIX_DIGITS`).
    pub prefix_digits: u8,
    /// How far back sends and approvals are counted (`OTP_PUMPING_WINDOW_SECONDS`).
    pub window: Duration,
    /// Sends old enough to judge that a prefix needs before it can be
    /// suspended (`OTP_PUMPING_MIN_SENDS`).
    pub min_sends: u32,
    /// A prefix whose approvals are below this share of its judged sends is
    /// suspended (`OTP_PUMPING_MIN_APPROVED_PERCENT`).
    pub min_approved_percent: u32,
    /// How long a suspension lasts (`OTP_PUMPING_SUSPENSION_SECONDS`).
    pub suspension: Duration,
    /// Distinct sources whose unverified judged sends a verdict needs
    /// (`OTP_PUMPING_MIN_SOURCES`).
    pub min_sources: u32,
    /// How long a number that approved a code passes a suspended prefix
    /// (`OTP_PUMPING_TRUST_DAYS`; zero trusts nobody).
    pub trust_for: Duration,
}

impl PumpingGuardSettings {
    /// The rule a store applies per prefix. A send is judged only once its
    /// code can no longer be approved (`code_lifetime`), so a burst of real
    /// users whose codes are still on their way is never read as pumping.
    pub fn rule(&self, code_lifetime: Duration) -> PrefixRule {
        PrefixRule {
            window: self.window,
            judge_after: code_lifetime,
            min_sends: self.min_sends,
            min_approved_percent: self.min_approved_percent,
            suspension: self.suspension,
            min_sources: self.min_sources,
            trust_for: self.trust_for,
        }
    }

    /// The prefix `phone` is counted under.
    pub fn prefix_of(&self, phone: &PhoneNumber) -> DestinationPrefix {
        DestinationPrefix(
            phone
                .leading_digits(usize::from(self.prefix_digits))
                .to_owned(),
        )
    }

    /// Parses a prefix an operator names for the guard: well-formed
    /// ([`DestinationPrefix::parse`]) and one [`Self::prefix_of`] can give,
    /// since the guard matches prefixes exactly: a country calling code and
    /// `prefix_digits` national digits, or fewer for a shorter number (a
    /// prefix is never more than half of a national number, which is 4 to 14
    /// digits, `PhoneNumber::parse`, whatever kind of number it is: toll-free
    /// and premium ranges are counted too).
    pub fn counted_prefix(&self, text: &str) -> Result<DestinationPrefix, PrefixError> {
        let prefix = DestinationPrefix::parse(text)?;
        let not_counted = PrefixError::NotCounted {
            prefix_digits: self.prefix_digits,
        };
        let digits = prefix.as_str().trim_start_matches('+');
        let (_, national) = split_calling_code(digits).ok_or(not_counted.clone())?;
        let wanted = usize::from(self.prefix_digits);
        let counted = (4..=14).any(|length: usize| wanted.min(length / 2) == national.len());
        counted.then_some(prefix).ok_or(not_counted)
    }
}

/// The guard on one line, for the startup log:
/// `enforce prefix=+cc+4 window=3600s min_sends=20 min_approved=20% suspension=3600s
/// min_sources=3 trust=30d`.
impl fmt::Display for PumpingGuardSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mode == GuardMode::Off {
            return f.write_str("off");
        }
        write!(
            f,
            "{} prefix=+cc+{} window={}s min_sends={} min_approved={}% suspension={}s \
             min_sources={} trust={}d",
            self.mode.as_str(),
            self.prefix_digits,
            self.window.as_secs(),
            self.min_sends,
            self.min_approved_percent,
            self.suspension.as_secs(),
            self.min_sources,
            self.trust_for.as_secs() / 86_400
        )
    }
}

/// What a store decides by, per prefix (as [`super::RateRule`] is per log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixRule {
    /// Sends and approvals older than this are forgotten.
    pub window: Duration,
    /// A send counts towards the judgement once it is this old (the code's
    /// lifetime: it can no longer be approved after that).
    pub judge_after: Duration,
    /// Judged sends needed before a verdict.
    pub min_sends: u32,
    /// Approvals below this share of judged sends suspend the prefix.
    pub min_approved_percent: u32,
    /// How long a suspension lasts.
    pub suspension: Duration,
    /// Distinct sources of unverified judged sends a verdict needs.
    pub min_sources: u32,
    /// How long an approving number is trusted (zero: never).
    pub trust_for: Duration,
}

impl PrefixRule {
    /// Whether `approved` of `judged` sends approved call for a suspension,
    /// before asking how many sources the unverified ones came from (the
    /// stores ask that only when this holds: it costs a pass over them).
    pub fn suspends(&self, judged: u64, approved: u64) -> bool {
        judged >= u64::from(self.min_sends)
            && approved * 100 < u64::from(self.min_approved_percent) * judged
    }
}

/// Who asked for a send, as the guard tells sources apart: the caller's
/// `client_key` (keyed digest), else the authenticated caller, else the one
/// anonymous source. 8 bytes; printed as 16 hex digits in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendSource(pub [u8; 8]);

impl SendSource {
    /// Every send with neither a `client_key` nor an authenticated caller.
    pub const ANONYMOUS: Self = Self([0; 8]);

    /// The source as a number (the memory store's form).
    pub fn as_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

/// A destination number range, e.g. `+447700`: the country calling code and
/// the first national digits. Safe to log and to return to callers: it is
/// never more than half of a national number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestinationPrefix(String);

/// Longest prefix an operator may name: a country calling code (at most 3
/// digits) and at most 9 more, still short of a whole number.
pub const MAX_PREFIX_DIGITS: usize = 12;

/// Why text is not a [`DestinationPrefix`], or not one the guard counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not `+` and 2 to [`MAX_PREFIX_DIGITS`] digits.
    #[error("a destination prefix is '+' and 2 to {MAX_PREFIX_DIGITS} digits, e.g. +447700")]
    Malformed,
    /// Well-formed, but no number is counted under it
    /// ([`PumpingGuardSettings::counted_prefix`]).
    #[error(
        "is not a prefix the pumping guard counts: here a prefix is '+', a country calling code \
         and the next {prefix_digits} digits (OTP_PUMPING_PREFIX_DIGITS; as few as 2 for a \
         number shorter than {} digits), e.g. {}",
        2 * u32::from(*prefix_digits),
        example_prefix(*prefix_digits)
    )]
    NotCounted {
        /// `OTP_PUMPING_PREFIX_DIGITS` in force.
        prefix_digits: u8,
    },
}

/// A prefix of a UK mobile number (10 national digits) with `prefix_digits`.
fn example_prefix(prefix_digits: u8) -> String {
    let national = "7700900123";
    let shown = usize::from(prefix_digits).min(national.len() / 2);
    format!("+44{}", national.get(..shown).unwrap_or(national))
}

impl DestinationPrefix {
    /// Parses a prefix an operator wrote: `+` and 2 to [`MAX_PREFIX_DIGITS`]
    /// digits (spaces ignored), as the guard counts them.
    pub fn parse(text: &str) -> Result<Self, PrefixError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let digits = compact.strip_prefix('+').ok_or(PrefixError::Malformed)?;
        let valid = (2..=MAX_PREFIX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        valid.then_some(Self(compact)).ok_or(PrefixError::Malformed)
    }

    /// The prefix as written (`+` and digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DestinationPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PumpingGuardSettings {
        PumpingGuardSettings {
            mode: GuardMode::Enforce,
            prefix_digits: 4,
            window: Duration::from_secs(3600),
            min_sends: 20,
            min_approved_percent: 20,
            suspension: Duration::from_secs(3600),
            min_sources: 3,
            trust_for: Duration::from_secs(30 * 86_400),
        }
    }

    #[test]
    fn prefix_is_the_calling_code_and_the_configured_digits() {
        let phone = PhoneNumber::parse("+44 7700 900123").expect("valid");
        assert_eq!(settings().prefix_of(&phone).as_str(), "+447700");
        let two = PumpingGuardSettings {
            prefix_digits: 2,
            ..settings()
        };
        assert_eq!(two.prefix_of(&phone).to_string(), "+4477");
    }

    #[test]
    fn an_operator_names_a_prefix_as_the_guard_counts_it() {
        assert_eq!(
            DestinationPrefix::parse("+44 7700").map(|p| p.to_string()),
            Ok("+447700".into())
        );
        for bad in ["447700", "+4", "+0447", "+44a7", "+1234567890123", "", "+"] {
            assert_eq!(
                DestinationPrefix::parse(bad),
                Err(PrefixError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_operator_may_name_only_a_prefix_the_guard_counts() {
        let guard = settings();
        // Shorter numbers give shorter prefixes: +44 800 1111 (toll-free,
        // 7 digits) is counted under +44800, as a 6-digit number under +1415.
        for counted in [
            "+447700", "+44 7700", "+14155", "+354581", "+3545812", "+44800", "+1415",
        ] {
            assert!(guard.counted_prefix(counted).is_ok(), "{counted:?}");
        }
        let not_counted = PrefixError::NotCounted { prefix_digits: 4 };
        // Too long, too short (no number of 4 or more digits gives one
        // national digit), no such calling code.
        for never in ["+4477001", "+447", "+9997700"] {
            assert_eq!(
                guard.counted_prefix(never),
                Err(not_counted.clone()),
                "{never:?}"
            );
        }
        assert_eq!(guard.counted_prefix("+44x"), Err(PrefixError::Malformed));
        let two = PumpingGuardSettings {
            prefix_digits: 2,
            ..settings()
        };
        assert!(two.counted_prefix("+4477").is_ok());
        assert!(two.counted_prefix("+447700").is_err());
        let message = not_counted.to_string();
        assert!(message.contains("next 4 digits"), "{message}");
        assert!(message.contains("e.g. +447700"), "{message}");
    }

    /// Whatever prefix the guard counts a number under, an operator can name.
    #[test]
    fn every_prefix_the_guard_counts_can_be_named() {
        let mut checked = 0;
        for prefix_digits in 1..=6 {
            let guard = PumpingGuardSettings {
                prefix_digits,
                ..settings()
            };
            for country in ["+44", "+1", "+354", "+679"] {
                for length in 4..=14 {
                    let Ok(phone) = PhoneNumber::parse(&format!("{country}{}", "8".repeat(length)))
                    else {
                        continue;
                    };
                    let counted = guard.prefix_of(&phone);
                    assert_eq!(
                        guard.counted_prefix(counted.as_str()),
                        Ok(counted.clone()),
                        "{phone:?} at {prefix_digits} digits"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "numbers of every length parse: {checked}");
    }

    #[test]
    fn a_verdict_needs_the_minimum_volume_and_a_low_share() {
        let rule = settings().rule(Duration::from_secs(130));
        assert_eq!(rule.judge_after, Duration::from_secs(130));
        assert!(!rule.suspends(19, 0), "too few sends to judge");
        assert!(rule.suspends(20, 0));
        assert!(rule.suspends(20, 3), "15 % approved");
        assert!(!rule.suspends(20, 4), "exactly 20 % is not below it");
        assert!(!rule.suspends(1000, 700), "a prefix of real users");
    }

    #[test]
    fn startup_line_names_every_setting() {
        assert_eq!(
            settings().to_string(),
            "enforce prefix=+cc+4 window=3600s min_sends=20 min_approved=20% suspension=3600s \
             min_sources=3 trust=30d"
        );
        let off = PumpingGuardSettings {
            mode: GuardMode::Off,
            ..settings()
        };
        assert_eq!(off.to_string(), "off");
    }
}
