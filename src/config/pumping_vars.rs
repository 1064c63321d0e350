//! The pumping guard's variables (`OTP_PUMPING_*`). The defaults and why
//! they are what a security engineer would ship are in the README.

use std::time::Duration;

use clap::{Args, value_parser};

use super::{ConfigError, OtpPolicy};
use crate::abuse::{GuardMode, PumpingGuardSettings};

/// The destination-prefix guard against SMS pumping.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Pumping guard")]
pub struct PumpingVars {
    /// What the guard does with a prefix whose codes are rarely verified
    #[arg(long, env = "OTP_PUMPING_GUARD", default_value = "enforce",
          value_parser = ["off", "monitor", "enforce"])]
    pub pumping_guard: String,
    /// National digits after the country calling code that make a prefix [1-6]
    #[arg(long, env = "OTP_PUMPING_PREFIX_DIGITS", default_value_t = 4,
          value_parser = value_parser!(u8).range(1..=6))]
    pub pumping_prefix_digits: u8,
    /// How far back sends and approvals count, in seconds; longer than a code
    /// lives [1-604800]
    #[arg(long, env = "OTP_PUMPING_WINDOW_SECONDS", default_value_t = 3_600,
          value_parser = value_parser!(u64).range(1..=604_800))]
    pub pumping_window_seconds: u64,
    /// Judged sends a prefix needs before a verdict [1-1000000]
    #[arg(long, env = "OTP_PUMPING_MIN_SENDS", default_value_t = 20,
          value_parser = value_parser!(u32).range(1..=1_000_000))]
    pub pumping_min_sends: u32,
    /// A prefix approved below this share of its judged sends is suspended [1-100]
    #[arg(long, env = "OTP_PUMPING_MIN_APPROVED_PERCENT", default_value_t = 20,
          value_parser = value_parser!(u32).range(1..=100))]
    pub pumping_min_approved_percent: u32,
    /// How long a suspension lasts, in seconds [1-604800]
    #[arg(long, env = "OTP_PUMPING_SUSPENSION_SECONDS", default_value_t = 3_600,
          value_parser = value_parser!(u64).range(1..=604_800))]
    pub pumping_suspension_seconds: u64,
    /// Distinct sources (client_key, else caller, else anonymous) whose
    /// unverified judged sends a verdict needs [1-1000]
    #[arg(long, env = "OTP_PUMPING_MIN_SOURCES", default_value_t = 3,
          value_parser = value_parser!(u32).range(1..=1_000))]
    pub pumping_min_sources: u32,
    /// Days a number that approved a code passes a suspended prefix (0: nobody) [0-365]
    #[arg(long, env = "OTP_PUMPING_TRUST_DAYS", default_value_t = 30,
          value_parser = value_parser!(u64).range(0..=365))]
    pub pumping_trust_days: u64,
}

/// Reads the guard's settings; `policy` bounds the window from below.
pub(super) fn pumping_guard_from_env(
    vars: &PumpingVars,
    policy: &OtpPolicy,
) -> Result<PumpingGuardSettings, ConfigError> {
    let mode = match vars.pumping_guard.as_str() {
        "off" => GuardMode::Off,
        "monitor" => GuardMode::Monitor,
        _ => GuardMode::Enforce,
    };
    let settings = PumpingGuardSettings {
        mode,
        prefix_digits: vars.pumping_prefix_digits,
        window: Duration::from_secs(vars.pumping_window_seconds),
        min_sends: vars.pumping_min_sends,
        min_approved_percent: vars.pumping_min_approved_percent,
        suspension: Duration::from_secs(vars.pumping_suspension_seconds),
        min_sources: vars.pumping_min_sources,
        trust_for: Duration::from_secs(vars.pumping_trust_days * 86_400),
    };
    // A send is judged once its code has expired; a window no longer than a
    // code's life would forget every send before judging it.
    let lifetime = policy.code_lifetime();
    if settings.window <= lifetime {
        return Err(ConfigError::new(
            "OTP_PUMPING_WINDOW_SECONDS",
            format!(
                "must be longer than a code lives (OTP_TTL_SECONDS + OTP_GRACE_SECONDS = {} s): \
                 a send is judged only once its code has expired (got `{}`)",
                lifetime.as_secs(),
                settings.window.as_secs()
            ),
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_refused, config};
    use super::*;

    #[test]
    fn the_guard_is_on_by_default_with_the_documented_settings() {
        let guard = config(&[]).expect("defaults").pumping_guard;
        assert_eq!(
            guard,
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
        );
        let monitor = config(&[("OTP_PUMPING_GUARD", "monitor")]).expect("valid");
        assert_eq!(monitor.pumping_guard.mode, GuardMode::Monitor);
    }

    #[test]
    fn bad_guard_settings_name_the_variable() {
        let cases = [
            (
                "OTP_PUMPING_GUARD",
                "on",
                "one of `off`, `monitor`, `enforce`",
            ),
            ("OTP_PUMPING_PREFIX_DIGITS", "0", "from 1 to 6"),
            ("OTP_PUMPING_MIN_SENDS", "0", "from 1 to 1000000"),
            ("OTP_PUMPING_MIN_APPROVED_PERCENT", "101", "from 1 to 100"),
            ("OTP_PUMPING_SUSPENSION_SECONDS", "0", "from 1 to 604800"),
            ("OTP_PUMPING_MIN_SOURCES", "0", "from 1 to 1000"),
            ("OTP_PUMPING_TRUST_DAYS", "366", "from 0 to 365"),
            (
                "OTP_PUMPING_WINDOW_SECONDS",
                "130",
                "OTP_TTL_SECONDS + OTP_GRACE_SECONDS = 130 s",
            ),
        ];
        for (var, value, expected) in cases {
            assert_refused(&[(var, value)], var, expected);
        }
        config(&[("OTP_PUMPING_WINDOW_SECONDS", "131")]).expect("longer than a code lives");
    }
}
