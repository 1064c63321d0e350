//! The pumping guard's variables (`OTP_PUMPING_*`). The defaults and why
//! they are what a security engineer would ship are in the README.

use std::time::Duration;

use super::{ConfigError, Env, OtpPolicy};
use crate::abuse::{GuardMode, PumpingGuardSettings};

/// Reads the guard's settings; `policy` bounds the window from below.
pub(super) fn pumping_guard_from_env(
    env: &Env,
    policy: &OtpPolicy,
) -> Result<PumpingGuardSettings, ConfigError> {
    let mode = env.parsed("OTP_PUMPING_GUARD", "enforce", |raw| match raw {
        "off" => Ok(GuardMode::Off),
        "monitor" => Ok(GuardMode::Monitor),
        "enforce" => Ok(GuardMode::Enforce),
        _ => Err("must be `off`, `monitor` or `enforce`".to_owned()),
    })?;
    let seconds = |var, default, min, max| {
        env.int_in_range(var, default, min, max)
            .map(Duration::from_secs)
    };
    let settings = PumpingGuardSettings {
        mode,
        prefix_digits: env.int_in_range("OTP_PUMPING_PREFIX_DIGITS", 4, 1, 6)?,
        window: seconds("OTP_PUMPING_WINDOW_SECONDS", 3_600, 1, 604_800)?,
        min_sends: env.int_in_range("OTP_PUMPING_MIN_SENDS", 20, 1, 1_000_000)?,
        min_approved_percent: env.int_in_range("OTP_PUMPING_MIN_APPROVED_PERCENT", 20, 1, 100)?,
        suspension: seconds("OTP_PUMPING_SUSPENSION_SECONDS", 3_600, 1, 604_800)?,
        min_sources: env.int_in_range("OTP_PUMPING_MIN_SOURCES", 3, 1, 1_000)?,
        trust_for: env
            .int_in_range("OTP_PUMPING_TRUST_DAYS", 30, 0, 365)
            .map(|days: u64| Duration::from_secs(days * 86_400))?,
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
            ("OTP_PUMPING_GUARD", "on", "`off`, `monitor` or `enforce`"),
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
