//! The spend metrics: estimated spend by country, provider and channel,
//! sends and approvals by country (conversion per country), and refusals
//! by spend cap. `country` is an ISO 3166-1 alpha-2 region from the
//! numbering plan, or `unknown`: a closed set of about 250.

use metrics::{counter, gauge};

use super::installed;

/// Estimated spend of sends a provider took (or may have taken), in
/// millionths of the price file's currency, by `country`, `provider` and
/// `channel`.
pub const SPEND_ESTIMATED: &str = "otp_spend_estimated_micros_total";
/// Codes handed to a provider, by `country`.
pub const COUNTRY_SENDS: &str = "otp_country_sends_total";
/// Codes approved, by `country`.
pub const COUNTRY_APPROVALS: &str = "otp_country_approvals_total";
/// Sends refused by a spend cap, by `cap`.
pub const SPEND_REFUSALS: &str = "otp_spend_limit_refusals_total";
/// Each spend cap in force, by `cap`, in millionths of the currency.
pub const SPEND_LIMIT: &str = "otp_spend_limit_micros";

/// The `country` label of a number without a region.
pub const UNKNOWN_COUNTRY: &str = "unknown";

pub(super) fn describe() {
    metrics::describe_counter!(
        SPEND_ESTIMATED,
        "Estimated spend of sends, in millionths of the price file's currency, by country, provider and channel"
    );
    metrics::describe_counter!(COUNTRY_SENDS, "Codes handed to a provider, by country");
    metrics::describe_counter!(COUNTRY_APPROVALS, "Codes approved, by country");
    metrics::describe_counter!(SPEND_REFUSALS, "Sends refused by a spend cap, by cap");
    metrics::describe_gauge!(
        SPEND_LIMIT,
        "Each spend cap in force, in millionths of the price file's currency"
    );
}

/// Counts `micros` of estimated spend on a send to `country` by `provider`.
pub fn spend_estimated(
    country: Option<&str>,
    provider: &'static str,
    channel: &'static str,
    micros: u64,
) {
    if installed() {
        counter!(
            SPEND_ESTIMATED,
            "country" => country.unwrap_or(UNKNOWN_COUNTRY).to_owned(),
            "provider" => provider,
            "channel" => channel
        )
        .increment(micros);
    }
}

/// Counts a code handed to a provider for a number in `country`.
pub fn country_send(country: Option<&str>) {
    if installed() {
        counter!(COUNTRY_SENDS, "country" => country.unwrap_or(UNKNOWN_COUNTRY).to_owned())
            .increment(1);
    }
}

/// Counts a code approved for a number in `country`.
pub fn country_approval(country: Option<&str>) {
    if installed() {
        counter!(COUNTRY_APPROVALS, "country" => country.unwrap_or(UNKNOWN_COUNTRY).to_owned())
            .increment(1);
    }
}

/// Counts a send refused by spend cap `cap`.
pub fn spend_refused(cap: &'static str) {
    if installed() {
        counter!(SPEND_REFUSALS, "cap" => cap).increment(1);
    }
}

/// Exports each cap in force (`(name, micros)`) and every cap's refusals
/// at 0, once at startup.
pub fn spend_caps(caps: &[(&'static str, u64)], all: &[&'static str]) {
    if installed() {
        for (cap, micros) in caps {
            gauge!(SPEND_LIMIT, "cap" => *cap).set(*micros as f64);
        }
        for cap in all {
            counter!(SPEND_REFUSALS, "cap" => *cap).increment(0);
        }
    }
}
