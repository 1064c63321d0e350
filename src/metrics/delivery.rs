//! The delivery metrics: each provider's turns by channel and result, its
//! failures and latency, skips while its circuit is open, the breaker's
//! state, and channel fallbacks.

use std::time::Duration;

use metrics::{Counter, Histogram, counter, gauge, histogram};

use super::{handles::Handles, installed};

/// Sends handed to a provider, by `provider`, its `channel` and `result`
/// (`accepted` or the failure's kind).
pub const SMS_SENDS: &str = "otp_sms_provider_sends_total";
/// Sends that fell through from one channel to the next (`from`, `to`)
/// after the first surely did not deliver (`OTP_CHANNEL_FALLBACK`).
pub const CHANNEL_FALLBACKS: &str = "otp_channel_fallbacks_total";
/// SMS provider failures by `provider` and `kind` (the name predates routes).
pub const GATEWAY_ERRORS: &str = "otp_sms_gateway_errors_total";
/// SMS provider send latency (all tries at one provider) by `provider`.
pub const GATEWAY_SECONDS: &str = "otp_sms_gateway_duration_seconds";
/// Sends that passed a provider by because its circuit was open, by `provider`.
pub const SMS_SKIPPED: &str = "otp_sms_provider_skipped_total";
/// Each provider's circuit breaker by `provider`: 0 closed, 1 half-open, 2 open.
pub const SMS_BREAKER_STATE: &str = "otp_sms_provider_breaker_state";

static SMS_SENDS_BY_PROVIDER_AND_RESULT: Handles<Counter, (&str, &str, &str)> = Handles::new();
static GATEWAY_ERRORS_BY_PROVIDER_AND_KIND: Handles<Counter, (&str, &str)> = Handles::new();
static GATEWAY_LATENCY_BY_PROVIDER: Handles<Histogram, &str> = Handles::new();

/// Exports at 0 the delivery counters whose labels the routes decide:
/// each `(provider, channel)`'s sends by result (`accepted` and each failure
/// `kind`), its failures by kind and its skips, and each fall-through
/// `(from, to)` the fallback order can make.
pub fn delivery_at_zero(
    providers: &[(&'static str, &'static str)],
    kinds: &[&'static str],
    fallbacks: &[(&'static str, &'static str)],
) {
    for &(provider, channel) in providers {
        for &result in std::iter::once(&"accepted").chain(kinds) {
            counter!(SMS_SENDS, "provider" => provider, "channel" => channel, "result" => result)
                .increment(0);
        }
        for &kind in kinds {
            counter!(GATEWAY_ERRORS, "provider" => provider, "kind" => kind).increment(0);
        }
        counter!(SMS_SKIPPED, "provider" => provider).increment(0);
    }
    for &(from, to) in fallbacks {
        counter!(CHANNEL_FALLBACKS, "from" => from, "to" => to).increment(0);
    }
}

/// Counts a send that fell through from channel `from` to `to` (rare: only
/// when a channel surely did not deliver).
pub fn channel_fallback(from: &'static str, to: &'static str) {
    counter!(CHANNEL_FALLBACKS, "from" => from, "to" => to).increment(1);
}

/// Counts one send handed to `provider` (of `channel`) and how long it
/// took there; `failure` is the failure's kind, `None` when the provider
/// accepted it.
pub fn sms_provider_send(
    provider: &'static str,
    channel: &'static str,
    failure: Option<&'static str>,
    elapsed: Duration,
) {
    if !installed() {
        return;
    }
    let result = failure.unwrap_or("accepted");
    SMS_SENDS_BY_PROVIDER_AND_RESULT
        .get((provider, channel, result), |(provider, channel, result)| {
            counter!(SMS_SENDS, "provider" => provider, "channel" => channel, "result" => result)
        })
        .increment(1);
    if let Some(kind) = failure {
        GATEWAY_ERRORS_BY_PROVIDER_AND_KIND
            .get(
                (provider, kind),
                |(provider, kind)| counter!(GATEWAY_ERRORS, "provider" => provider, "kind" => kind),
            )
            .increment(1);
    }
    GATEWAY_LATENCY_BY_PROVIDER
        .get(
            provider,
            |provider| histogram!(GATEWAY_SECONDS, "provider" => provider),
        )
        .record(elapsed.as_secs_f64());
}

/// Counts a send that passed `provider` by because its circuit was open
/// (rare: only while a provider is down).
pub fn sms_provider_skipped(provider: &'static str) {
    counter!(SMS_SKIPPED, "provider" => provider).increment(1);
}

/// Sets `provider`'s circuit-breaker gauge (on state changes only).
pub fn sms_breaker_state(provider: &'static str, value: f64) {
    gauge!(SMS_BREAKER_STATE, "provider" => provider).set(value);
}
