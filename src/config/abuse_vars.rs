//! What limits sends and guesses and who may be texted: the `OTP_*SEND*`
//! and `OTP_*VERIFY*` limits, `OTP_ALLOWED_COUNTRIES`,
//! `OTP_DENIED_COUNTRIES`, `OTP_TEST_NUMBERS`.

use std::time::Duration;

use clap::{Args, value_parser};

use super::ConfigError;
use crate::abuse::{
    CountryList, CountryPolicy, DEFAULT_CLIENT_VERIFY_LIMIT, DEFAULT_SHARED_VERIFY_LIMIT,
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

/// What limits sends and who may be texted.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Send limits and countries")]
pub struct AbuseVars {
    /// Minimum seconds between sends to one number (0: none) [0-3600]
    #[arg(long, env = "OTP_RESEND_COOLDOWN_SECONDS", default_value_t = 30,
          value_parser = value_parser!(u64).range(0..=3_600))]
    pub resend_cooldown_seconds: u64,
    /// Sends per number per window [1-1000]
    #[arg(long, env = "OTP_SEND_LIMIT", default_value_t = 5,
          value_parser = value_parser!(u32).range(1..=1_000))]
    pub send_limit: u32,
    /// The window of OTP_SEND_LIMIT, OTP_CLIENT_SEND_LIMIT and the others, in seconds [1-86400]
    #[arg(long, env = "OTP_SEND_WINDOW_SECONDS", default_value_t = 600,
          value_parser = value_parser!(u64).range(1..=86_400))]
    pub send_window_seconds: u64,
    /// Sends per number per 24 h [1-10000]
    #[arg(long, env = "OTP_DAILY_SEND_LIMIT", default_value_t = 10,
          value_parser = value_parser!(u32).range(1..=10_000))]
    pub daily_send_limit: u32,
    /// Sends per client_key per window [1-100000]
    #[arg(long, env = "OTP_CLIENT_SEND_LIMIT", default_value_t = 20,
          value_parser = value_parser!(u32).range(1..=100_000))]
    pub client_send_limit: u32,
    /// Sends per window by all callers without a client_key, together [1-100000]
    #[arg(long, env = "OTP_ANONYMOUS_SEND_LIMIT", default_value_t = 50,
          value_parser = value_parser!(u32).range(1..=100_000))]
    pub anonymous_send_limit: u32,
    /// Sends per minute across the service (0: off) [0-100000]
    #[arg(long, env = "OTP_GLOBAL_SEND_LIMIT", default_value_t = DEFAULT_GLOBAL_SEND_LIMIT,
          value_parser = value_parser!(u32).range(0..=100_000))]
    pub global_send_limit: u32,
    /// Sends per authenticated caller per window, at most the global cap
    /// (unset: half of the global cap over the window) [1-1000000]
    #[arg(long, env = "OTP_CALLER_SEND_LIMIT",
          value_parser = value_parser!(u32).range(1..=1_000_000))]
    pub caller_send_limit: Option<u32>,
    /// VerifyOtp calls per client_key per verify window, across numbers [1-1000000]
    #[arg(long, env = "OTP_CLIENT_VERIFY_LIMIT", default_value_t = DEFAULT_CLIENT_VERIFY_LIMIT,
          value_parser = value_parser!(u32).range(1..=1_000_000))]
    pub client_verify_limit: u32,
    /// VerifyOtp calls without a client_key per verify window, together [1-1000000]
    #[arg(long, env = "OTP_ANONYMOUS_VERIFY_LIMIT", default_value_t = DEFAULT_SHARED_VERIFY_LIMIT,
          value_parser = value_parser!(u32).range(1..=1_000_000))]
    pub anonymous_verify_limit: u32,
    /// VerifyOtp calls per authenticated caller per verify window [1-1000000]
    #[arg(long, env = "OTP_CALLER_VERIFY_LIMIT", default_value_t = DEFAULT_SHARED_VERIFY_LIMIT,
          value_parser = value_parser!(u32).range(1..=1_000_000))]
    pub caller_verify_limit: u32,
    /// The window of the client, anonymous and caller verify limits, in seconds [1-86400]
    #[arg(long, env = "OTP_VERIFY_WINDOW_SECONDS", default_value_t = 600,
          value_parser = value_parser!(u64).range(1..=86_400))]
    pub verify_window_seconds: u64,
    /// VerifyOtp calls per minute across the service (0: off; unset: 10 per
    /// send the global send cap allows) [0-10000000]
    #[arg(long, env = "OTP_GLOBAL_VERIFY_LIMIT",
          value_parser = value_parser!(u32).range(0..=10_000_000))]
    pub global_verify_limit: Option<u32>,
    /// Only these regions are texted (ISO 3166-1 alpha-2 list, e.g. `US,IN`; unset: all)
    #[arg(long, env = "OTP_ALLOWED_COUNTRIES")]
    pub allowed_countries: Option<String>,
    /// These regions are never texted (ISO 3166-1 alpha-2 list)
    #[arg(long, env = "OTP_DENIED_COUNTRIES")]
    pub denied_countries: Option<String>,
    /// Numbers with a fixed code and no SMS: `+15005550006=123456,...`
    #[arg(long, env = "OTP_TEST_NUMBERS")]
    pub test_numbers: Option<String>,
}

/// The send limits per number, caller, anonymous callers and service.
pub(super) fn send_limits(vars: &AbuseVars) -> SendLimits {
    let global = vars.global_send_limit;
    let global_per_minute = (global > 0).then_some(global);
    let window = Duration::from_secs(vars.send_window_seconds);
    SendLimits {
        resend_cooldown: Duration::from_secs(vars.resend_cooldown_seconds),
        phone_limit: vars.send_limit,
        window,
        phone_daily_limit: vars.daily_send_limit,
        client_limit: vars.client_send_limit,
        anonymous_limit: vars.anonymous_send_limit,
        global_per_minute,
        caller_limit: vars
            .caller_send_limit
            .unwrap_or_else(|| default_caller_send_limit(global_per_minute, window)),
    }
}

/// The verify limits per `client_key`, anonymous callers, caller and
/// service. The service-wide one defaults to [`GLOBAL_VERIFIES_PER_SEND`]
/// for each send the global send cap allows per minute (that of its default
/// when the send cap is off), so raising the send cap raises it too.
pub(super) fn verify_limits(vars: &AbuseVars, sends: &SendLimits) -> VerifyLimits {
    let sends_per_minute = sends.global_per_minute.unwrap_or(DEFAULT_GLOBAL_SEND_LIMIT);
    let global = vars
        .global_verify_limit
        .unwrap_or_else(|| sends_per_minute.saturating_mul(GLOBAL_VERIFIES_PER_SEND));
    VerifyLimits {
        client_limit: vars.client_verify_limit,
        anonymous_limit: vars.anonymous_verify_limit,
        caller_limit: vars.caller_verify_limit,
        global_per_minute: (global > 0).then_some(global),
        window: Duration::from_secs(vars.verify_window_seconds),
    }
}

/// `OTP_ALLOWED_COUNTRIES` and `OTP_DENIED_COUNTRIES`; a refusal names the
/// list at fault.
pub(super) fn country_policy(vars: &AbuseVars) -> Result<CountryPolicy, ConfigError> {
    let allowed = vars.allowed_countries.as_deref().unwrap_or_default();
    let denied = vars.denied_countries.as_deref().unwrap_or_default();
    CountryPolicy::parse(allowed, denied).map_err(|err| {
        let var = match err.list() {
            CountryList::Allowed => "OTP_ALLOWED_COUNTRIES",
            CountryList::Denied => "OTP_DENIED_COUNTRIES",
        };
        ConfigError::new(var, err.to_string())
    })
}

/// `OTP_TEST_NUMBERS`, whose fixed codes must have `code_length` digits.
pub(super) fn test_numbers(vars: &AbuseVars, code_length: u8) -> Result<TestNumbers, ConfigError> {
    TestNumbers::parse(
        vars.test_numbers.as_deref().unwrap_or_default(),
        code_length,
    )
    .map_err(|err| ConfigError::new("OTP_TEST_NUMBERS", err.to_string()))
}
