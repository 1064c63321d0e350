//! What limits sends and guesses and who may be texted: the `OTP_*SEND*`
//! and `OTP_*VERIFY*` limits, `OTP_ALLOWED_COUNTRIES`,
//! `OTP_DENIED_COUNTRIES`, `OTP_TEST_NUMBERS`.

use std::time::Duration;

use super::{ConfigError, Env};
use crate::abuse::{
    CountryPolicy, DEFAULT_CLIENT_VERIFY_LIMIT, DEFAULT_SHARED_VERIFY_LIMIT,
    GLOBAL_VERIFIES_PER_SEND, SendLimits, TestNumbers, VerifyLimits,
};

/// Default `OTP_GLOBAL_SEND_LIMIT`, sends per minute across the service: one
/// SMS a second on average, far above a sidecar's sign-in traffic, yet it
/// bounds what a bypass of every other rule can cost (see the README).
pub const DEFAULT_GLOBAL_SEND_LIMIT: u32 = 60;

/// The default `OTP_CALLER_SEND_LIMIT`: half of what the global cap admits
/// over one send window (300 per 600 s at the defaults), so one caller —
/// compromised or looping — can spend at most half the service's budget and
/// the others keep the rest. With the global cap off, half of the default
/// global cap's.
pub fn default_caller_send_limit(global_per_minute: Option<u32>, window: Duration) -> u32 {
    let per_minute = u64::from(global_per_minute.unwrap_or(DEFAULT_GLOBAL_SEND_LIMIT));
    let half = per_minute * window.as_secs() / 60 / 2;
    u32::try_from(half).unwrap_or(u32::MAX).max(1)
}

/// The send limits per number, caller, anonymous callers and service.
pub(super) fn send_limits(env: &Env) -> Result<SendLimits, ConfigError> {
    let window = env.int_in_range("OTP_SEND_WINDOW_SECONDS", 600, 1, 86_400)?;
    let global: u32 = env.int_in_range(
        "OTP_GLOBAL_SEND_LIMIT",
        DEFAULT_GLOBAL_SEND_LIMIT,
        0,
        100_000,
    )?;
    let global_per_minute = (global > 0).then_some(global);
    let caller_default = default_caller_send_limit(global_per_minute, Duration::from_secs(window));
    Ok(SendLimits {
        resend_cooldown: Duration::from_secs(env.int_in_range(
            "OTP_RESEND_COOLDOWN_SECONDS",
            30,
            0,
            3_600,
        )?),
        phone_limit: env.int_in_range("OTP_SEND_LIMIT", 5, 1, 1_000)?,
        window: Duration::from_secs(window),
        phone_daily_limit: env.int_in_range("OTP_DAILY_SEND_LIMIT", 10, 1, 10_000)?,
        client_limit: env.int_in_range("OTP_CLIENT_SEND_LIMIT", 20, 1, 100_000)?,
        anonymous_limit: env.int_in_range("OTP_ANONYMOUS_SEND_LIMIT", 50, 1, 100_000)?,
        global_per_minute,
        caller_limit: env.int_in_range("OTP_CALLER_SEND_LIMIT", caller_default, 1, 1_000_000)?,
    })
}

/// The verify limits per `client_key`, anonymous callers, caller and
/// service. The service-wide one defaults to [`GLOBAL_VERIFIES_PER_SEND`]
/// for each send the global send cap allows per minute (that of its default
/// when the send cap is off), so raising the send cap raises it too.
pub(super) fn verify_limits(env: &Env, sends: &SendLimits) -> Result<VerifyLimits, ConfigError> {
    let window = env.int_in_range("OTP_VERIFY_WINDOW_SECONDS", 600, 1, 86_400)?;
    let sends_per_minute = sends.global_per_minute.unwrap_or(DEFAULT_GLOBAL_SEND_LIMIT);
    let global: u32 = env.int_in_range(
        "OTP_GLOBAL_VERIFY_LIMIT",
        sends_per_minute.saturating_mul(GLOBAL_VERIFIES_PER_SEND),
        0,
        10_000_000,
    )?;
    Ok(VerifyLimits {
        client_limit: env.int_in_range(
            "OTP_CLIENT_VERIFY_LIMIT",
            DEFAULT_CLIENT_VERIFY_LIMIT,
            1,
            1_000_000,
        )?,
        anonymous_limit: env.int_in_range(
            "OTP_ANONYMOUS_VERIFY_LIMIT",
            DEFAULT_SHARED_VERIFY_LIMIT,
            1,
            1_000_000,
        )?,
        caller_limit: env.int_in_range(
            "OTP_CALLER_VERIFY_LIMIT",
            DEFAULT_SHARED_VERIFY_LIMIT,
            1,
            1_000_000,
        )?,
        global_per_minute: (global > 0).then_some(global),
        window: Duration::from_secs(window),
    })
}

/// `OTP_ALLOWED_COUNTRIES` and `OTP_DENIED_COUNTRIES`; a refusal names the
/// list at fault.
pub(super) fn country_policy(env: &Env) -> Result<CountryPolicy, ConfigError> {
    let allowed = env.get("OTP_ALLOWED_COUNTRIES").unwrap_or_default();
    let denied = env.get("OTP_DENIED_COUNTRIES").unwrap_or_default();
    CountryPolicy::parse(allowed, denied).map_err(|err| {
        let var = if CountryPolicy::parse(allowed, "").is_err() {
            "OTP_ALLOWED_COUNTRIES"
        } else {
            "OTP_DENIED_COUNTRIES"
        };
        ConfigError::new(var, err.to_string())
    })
}

/// `OTP_TEST_NUMBERS`, whose fixed codes must have `code_length` digits.
pub(super) fn test_numbers(env: &Env, code_length: u8) -> Result<TestNumbers, ConfigError> {
    TestNumbers::parse(env.get("OTP_TEST_NUMBERS").unwrap_or_default(), code_length)
        .map_err(|err| ConfigError::new("OTP_TEST_NUMBERS", err.to_string()))
}
