//! What the server says once at startup: the caps in force, and warnings
//! about settings fit for development only.

use crate::{
    config::{Config, SecretSource},
    spend::WorstCase,
};

/// States every cap in one structured line, so an operator reading the
/// startup log knows what bounds spend and guessing without reading the
/// environment; warns when the service-wide spend breaker is off.
pub(super) fn log_caps_in_force(config: &Config) {
    tracing::info!(
        send_limits = %config.limits,
        verify_limits = %config.verify_limits,
        max_attempts = config.policy.max_attempts,
        code_length = config.policy.code_length,
        pumping_guard = %config.pumping_guard,
        countries = %config.countries,
        "caps in force"
    );
    log_spend_in_force(config);
    if let Some(warning) = countries_in_both(config) {
        tracing::warn!("{warning}");
    }
    if config.verify_limits.global_per_minute.is_none() {
        tracing::warn!(
            "OTP_GLOBAL_VERIFY_LIMIT=0: no service-wide verify cap; a VerifyOtp flood with a \
             fresh client_key per call leaves a send log per key in the store"
        );
    }
    if config.limits.global_per_minute.is_none() {
        tracing::warn!(
            "OTP_GLOBAL_SEND_LIMIT=0: no service-wide send cap; nothing bounds total SMS spend \
             if every other rule is bypassed"
        );
    }
}

/// With a prices file: the spend caps and the worst case they allow per
/// hour (the global send cap at the highest price and longest message, or
/// the spend cap if lower).
fn log_spend_in_force(config: &Config) {
    let Some(spend) = &config.spend else {
        return;
    };
    let worst = worst_case(config);
    let cap = |limit: Option<crate::spend::Micros>| {
        limit.map_or_else(|| "off".to_owned(), |limit| limit.to_string())
    };
    tracing::info!(
        currency = %spend.prices.currency(),
        per_hour = cap(spend.caps.per_hour),
        per_day = cap(spend.caps.per_day),
        caller_per_day = cap(spend.caps.caller_per_day),
        worst_case = %worst.map(|w| w.to_string()).unwrap_or_default(),
        "spend caps in force"
    );
    if let Some(warning) = caller_spend_cap_holding_nobody(config) {
        tracing::warn!("{warning}");
    }
}

/// Countries both allowed and denied: denied, but likely a mistake.
pub(crate) fn countries_in_both(config: &Config) -> Option<String> {
    let both = config.countries.in_both();
    (!both.is_empty()).then(|| {
        format!(
            "{} in both OTP_ALLOWED_COUNTRIES and OTP_DENIED_COUNTRIES: denied",
            both.join(",")
        )
    })
}

/// A per-caller spend cap where no caller is ever authenticated.
pub(crate) fn caller_spend_cap_holding_nobody(config: &Config) -> Option<&'static str> {
    let cap = config.spend.as_ref()?.caps.caller_per_day;
    (cap.is_some() && !config.authenticates_callers()).then_some(
        "OTP_CALLER_SPEND_LIMIT_PER_DAY is set but no caller is ever authenticated \
         (no OTP_CALLERS_FILE, no OTP_TLS_CLIENT_CA_FILE): it holds nobody",
    )
}

/// The worst case per hour the caps allow, with a prices file.
pub(crate) fn worst_case(config: &Config) -> Option<WorstCase> {
    let spend = config.spend.as_ref()?;
    let max_segments = config
        .messages
        .multi_segment(config.policy.code_length, config.policy.ttl)
        .iter()
        .map(|(_, segments)| segments.count as u64)
        .max()
        .unwrap_or(1);
    Some(WorstCase::of(
        spend,
        config.limits.global_per_minute,
        max_segments,
    ))
}

/// Warns about settings that are fine for development but not for production.
pub(super) fn warn_about_development_settings(config: &Config) {
    if config.hmac_secret_source == SecretSource::GeneratedForThisProcess {
        tracing::warn!(
            "OTP_HMAC_SECRET is not set: using a random secret for this process only; \
             pending codes are lost on restart"
        );
    }
    if !config.hmac_previous_secrets.is_empty() {
        tracing::info!(
            previous = config.hmac_previous_secrets.len(),
            "HMAC key rotation: codes digested with the previous secrets still verify; \
             store records keep the names the last of them gives"
        );
    }
    if !config.test_numbers.is_empty() {
        tracing::warn!(
            count = config.test_numbers.len(),
            "OTP_TEST_NUMBERS is set: these numbers get fixed codes and no SMS"
        );
    }
    if let Some(callers) = &config.callers
        && callers.current().is_empty()
    {
        // Said again here: the file was read before logging was set up.
        tracing::error!(
            "OTP_CALLERS_FILE lists no caller: every call is refused until it names one"
        );
    }
    warn_about_long_templates(config);
}

/// Each extra SMS segment is billed: say which templates need more than one.
fn warn_about_long_templates(config: &Config) {
    let long = config
        .messages
        .multi_segment(config.policy.code_length, config.policy.ttl);
    for (locale, segments) in long {
        tracing::warn!(
            locale,
            segments = segments.count,
            encoding = ?segments.encoding,
            units = segments.units,
            "message template takes more than one SMS segment; each is billed \
             (160 GSM-7 or 70 UCS-2 characters fit in one)"
        );
    }
}
