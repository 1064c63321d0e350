//! Prometheus metrics: what is counted, under which names, and the HTTP
//! exporter. Labels are closed sets (results, limits, operations); a phone
//! number, a code or a client key never becomes a label.
//!
//! Recording is on the request path of every call, so it goes through
//! handles (`handles.rs`): each label set is registered with the recorder
//! once, the first time it occurs, and afterwards a call costs an atomic add
//! (or a histogram push) instead of a label set built and looked up in the
//! registry. Without [`install`] nothing is recorded at all.

mod delivery;
mod handles;
mod spend;

use std::{
    future::Future,
    net::SocketAddr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use metrics::{Counter, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder};
use tokio::time::Instant;
use tracing::Instrument;

use crate::telemetry;

use handles::Handles;

pub use delivery::{
    CHANNEL_FALLBACKS, GATEWAY_ERRORS, GATEWAY_SECONDS, SMS_BREAKER_STATE, SMS_SENDS, SMS_SKIPPED,
    channel_fallback, delivery_at_zero, sms_breaker_state, sms_provider_send, sms_provider_skipped,
};
pub use spend::{
    COUNTRY_APPROVALS, COUNTRY_SENDS, SPEND_ESTIMATED, SPEND_LIMIT, SPEND_REFUSALS,
    UNKNOWN_COUNTRY, country_approval, country_send, spend_caps, spend_estimated, spend_refused,
};

/// SendOtp calls by `result` and `channel` (the one that carried the code,
/// or, for a send that failed or was refused, the one asked for).
pub const SENDS: &str = "otp_sends_total";
/// VerifyOtp calls by `result`.
pub const VERIFIES: &str = "otp_verifies_total";
/// Sends refused by a send limit, by `limit`.
pub const LIMIT_REFUSALS: &str = "otp_send_limit_refusals_total";
/// Store operation latency by `operation`.
pub const STORE_SECONDS: &str = "otp_store_operation_duration_seconds";
/// 1 while the store answers health pings, else 0.
pub const STORE_UP: &str = "otp_store_up";
/// 1 while Redis's `maxmemory-policy` may evict live keys (locks, guess
/// counters), else 0.
pub const REDIS_EVICTING: &str = "otp_redis_evicting_policy";
/// Destination prefixes suspended by the pumping guard (or, in monitor
/// mode, that would have been), by `country` (ISO region or `unknown`).
pub const PUMPING_SUSPENSIONS: &str = "otp_pumping_suspensions_total";
/// Destination prefixes suspended now, service-wide (every replica reports
/// the same count, read from the store).
pub const PUMPING_SUSPENDED_PREFIXES: &str = "otp_pumping_suspended_prefixes";
/// Pumping-guard store writes that failed without failing the call, by `operation`.
pub const PUMPING_GUARD_ERRORS: &str = "otp_pumping_guard_errors_total";
/// Operators' changes through the admin API, by `action`
/// (`lift_suspension`, `exempt_prefix`, `end_exemption`) and `result`
/// (`done`, `no_change`, `failed`).
pub const ADMIN_ACTIONS: &str = "otp_admin_actions_total";
/// gRPC calls by `method` and `code`.
pub const GRPC_REQUESTS: &str = "otp_grpc_requests_total";
/// gRPC call latency by `method`.
pub const GRPC_SECONDS: &str = "otp_grpc_request_duration_seconds";

/// Audit events not written to the stream, by `reason`.
pub const EVENTS_DROPPED: &str = "otp_events_dropped_total";

/// Latency buckets from 0.5 ms (an in-memory call) to 10 s (a slow gateway).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the exporter folds recorded latencies into the buckets. Until
/// then every sample waits in a queue (8 bytes each, two or more per call):
/// at 40 000 calls/s the exporter's default 5 s held ~3 MiB of them.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Set once the recorder is installed. Until then (and in processes that
/// never install one, such as tests) recording is skipped, which is what the
/// `metrics` facade's no-op recorder would do, and no handle is registered
/// with a recorder that is not there yet.
static INSTALLED: AtomicBool = AtomicBool::new(false);

static SENDS_BY_RESULT_AND_CHANNEL: Handles<Counter, (&str, &str)> = Handles::new();
static VERIFIES_BY_RESULT: Handles<Counter, &str> = Handles::new();
static REFUSALS_BY_LIMIT: Handles<Counter, &str> = Handles::new();
static STORE_LATENCY_BY_OPERATION: Handles<Histogram, &str> = Handles::new();
static REQUESTS_BY_METHOD_AND_CODE: Handles<Counter, (&str, &str)> = Handles::new();
static LATENCY_BY_METHOD: Handles<Histogram, &str> = Handles::new();

/// Installs the process-wide recorder and serves `/metrics` on `addr`.
/// Must run inside the Tokio runtime. Fails if `addr` cannot be bound or a
/// recorder is already installed.
pub fn install(addr: SocketAddr) -> Result<(), BuildError> {
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&LATENCY_BUCKETS)?
        .upkeep_timeout(UPKEEP_INTERVAL)
        .build()?;
    metrics::set_global_recorder(recorder)?;
    INSTALLED.store(true, Ordering::Release);
    tokio::spawn(async move {
        if let Err(err) = exporter.await {
            tracing::error!("metrics exporter stopped: {err:?}");
        }
    });
    describe();
    start_at_zero(PUMPING_GUARD_ERRORS, "operation", &PUMPING_GUARD_OPERATIONS);
    start_at_zero(EVENTS_DROPPED, "reason", &EVENTS_DROP_REASONS);
    for action in ADMIN_ACTION_NAMES {
        for result in ADMIN_RESULTS {
            counter!(ADMIN_ACTIONS, "action" => action, "result" => result).increment(0);
        }
    }
    tracing::info!(addr = %addr, "metrics listening on /metrics");
    Ok(())
}

fn describe() {
    metrics::describe_counter!(SENDS, "SendOtp calls by result and channel");
    metrics::describe_counter!(
        CHANNEL_FALLBACKS,
        "Sends that fell through from one channel to the next"
    );
    metrics::describe_counter!(VERIFIES, "VerifyOtp calls by result");
    metrics::describe_counter!(LIMIT_REFUSALS, "Sends refused by a send limit, by limit");
    metrics::describe_counter!(
        SMS_SENDS,
        "Sends handed to a provider, by provider, channel and result"
    );
    metrics::describe_counter!(GATEWAY_ERRORS, "SMS provider failures by kind");
    metrics::describe_histogram!(
        GATEWAY_SECONDS,
        metrics::Unit::Seconds,
        "SMS provider send latency (all tries at one provider)"
    );
    metrics::describe_counter!(
        SMS_SKIPPED,
        "Sends that skipped a provider with an open circuit"
    );
    metrics::describe_gauge!(
        SMS_BREAKER_STATE,
        "SMS provider circuit: 0 closed, 1 half-open, 2 open"
    );
    metrics::describe_histogram!(
        STORE_SECONDS,
        metrics::Unit::Seconds,
        "Store operation latency"
    );
    metrics::describe_gauge!(STORE_UP, "1 while the store answers health pings");
    metrics::describe_gauge!(
        REDIS_EVICTING,
        "1 while Redis's maxmemory-policy may evict live keys (locks, guess counters)"
    );
    metrics::describe_counter!(
        PUMPING_SUSPENSIONS,
        "Destination prefixes suspended by the pumping guard, by country"
    );
    metrics::describe_gauge!(
        PUMPING_SUSPENDED_PREFIXES,
        "Destination prefixes suspended now, service-wide"
    );
    metrics::describe_counter!(
        PUMPING_GUARD_ERRORS,
        "Pumping-guard store writes that failed without failing the call, by operation"
    );
    metrics::describe_counter!(
        ADMIN_ACTIONS,
        "Operators' changes through the admin API, by action and result"
    );
    metrics::describe_counter!(GRPC_REQUESTS, "gRPC calls by method and status code");
    metrics::describe_histogram!(GRPC_SECONDS, metrics::Unit::Seconds, "gRPC call latency");
    metrics::describe_counter!(EVENTS_DROPPED, "Audit events not written, by reason");
    spend::describe();
}

/// Exports the counter `name` at 0 for each of `values` of `label`, so a
/// dashboard shows 0 rather than "No data" and `rate()` works from the first
/// scrape. For counters whose label values are a closed set.
pub fn start_at_zero(name: &'static str, label: &'static str, values: &[&'static str]) {
    if installed() {
        for value in values {
            counter!(name, label => *value).increment(0);
        }
    }
}

fn installed() -> bool {
    INSTALLED.load(Ordering::Acquire)
}

/// Exports `otp_sends_total` at 0 for each of `results` on each of
/// `channels` (the closed sets the service uses).
pub fn sends_start_at_zero(results: &[&'static str], channels: &[&'static str]) {
    if installed() {
        for result in results {
            for channel in channels {
                counter!(SENDS, "result" => *result, "channel" => *channel).increment(0);
            }
        }
    }
}

/// Counts a SendOtp outcome on `channel`.
pub fn send_finished(result: &'static str, channel: &'static str) {
    if installed() {
        SENDS_BY_RESULT_AND_CHANNEL
            .get(
                (result, channel),
                |(result, channel)| counter!(SENDS, "result" => result, "channel" => channel),
            )
            .increment(1);
    }
}

/// Counts a VerifyOtp outcome.
pub fn verify_finished(result: &'static str) {
    if installed() {
        VERIFIES_BY_RESULT
            .get(result, |result| counter!(VERIFIES, "result" => result))
            .increment(1);
    }
}

/// Counts a send refused by `limit`.
pub fn send_limit_refused(limit: &'static str) {
    if installed() {
        REFUSALS_BY_LIMIT
            .get(limit, |limit| counter!(LIMIT_REFUSALS, "limit" => limit))
            .increment(1);
    }
}

/// Sets the store health gauge (every few seconds, not per call).
pub fn store_up(up: bool) {
    gauge!(STORE_UP).set(if up { 1.0 } else { 0.0 });
}

/// Sets the evicting-policy gauge.
pub fn redis_evicting(evicting: bool) {
    gauge!(REDIS_EVICTING).set(if evicting { 1.0 } else { 0.0 });
}

/// Counts a prefix suspension in `country` (an ISO region, a closed set).
pub fn pumping_suspension(country: &str) {
    counter!(PUMPING_SUSPENSIONS, "country" => country.to_owned()).increment(1);
}

/// Sets how many destination prefixes are suspended now.
pub fn pumping_suspended_prefixes(count: u64) {
    gauge!(PUMPING_SUSPENDED_PREFIXES).set(count as f64);
}

/// The operations [`pumping_guard_failed`] is given (a closed set).
pub const PUMPING_GUARD_OPERATIONS: [&str; 3] = [
    "count_prefix_approval",
    "suspended_prefixes",
    "refund_prefix_send",
];

/// Counts a pumping-guard store write that failed without failing the call.
pub fn pumping_guard_failed(operation: &'static str) {
    debug_assert!(PUMPING_GUARD_OPERATIONS.contains(&operation), "{operation}");
    counter!(PUMPING_GUARD_ERRORS, "operation" => operation).increment(1);
}

/// The `action` labels of [`ADMIN_ACTIONS`] (a closed set).
pub const ADMIN_ACTION_NAMES: [&str; 3] = ["lift_suspension", "exempt_prefix", "end_exemption"];
/// The `result` labels of [`ADMIN_ACTIONS`] (a closed set).
pub const ADMIN_RESULTS: [&str; 3] = ["done", "no_change", "failed"];

/// Counts an operator's change through the admin API (rare: no handle kept).
pub fn admin_action(action: &'static str, result: &'static str) {
    debug_assert!(ADMIN_ACTION_NAMES.contains(&action), "{action}");
    debug_assert!(ADMIN_RESULTS.contains(&result), "{result}");
    counter!(ADMIN_ACTIONS, "action" => action, "result" => result).increment(1);
}

/// The `caller` label of calls without caller authentication.
pub const ANONYMOUS_CALLER: &str = "anonymous";

/// Counts a finished gRPC call and its latency. `caller`: the caller's
/// metric label (a name from the callers file, a bounded set), `None` for
/// anonymous calls.
pub fn rpc_finished(
    method: &'static str,
    code: &'static str,
    caller: Option<&str>,
    elapsed: Duration,
) {
    if installed() {
        match caller {
            None => REQUESTS_BY_METHOD_AND_CODE
                .get((method, code), |(method, code)| {
                    counter!(GRPC_REQUESTS, "method" => method, "code" => code, "caller" => ANONYMOUS_CALLER)
                })
                .increment(1),
            // Caller names are not `&'static`: through the registry.
            Some(caller) => counter!(
                GRPC_REQUESTS,
                "method" => method,
                "code" => code,
                "caller" => caller.to_owned()
            )
            .increment(1),
        }
        LATENCY_BY_METHOD
            .get(
                method,
                |method| histogram!(GRPC_SECONDS, "method" => method),
            )
            .record(elapsed.as_secs_f64());
    }
}

/// Awaits a store operation and records its latency under `operation`;
/// while traces are exported the operation is also a child span.
pub async fn timed_store<T>(operation: &'static str, work: impl Future<Output = T>) -> T {
    if telemetry::exporting() {
        let span = telemetry::store_span(operation);
        return store_latency(operation, work.instrument(span)).await;
    }
    store_latency(operation, work).await
}

/// Awaits `work`, recording its latency under `operation` (when installed).
async fn store_latency<T>(operation: &'static str, work: impl Future<Output = T>) -> T {
    if !installed() {
        return work.await;
    }
    let started = Instant::now();
    let result = work.await;
    STORE_LATENCY_BY_OPERATION
        .get(
            operation,
            |operation| histogram!(STORE_SECONDS, "operation" => operation),
        )
        .record(started.elapsed().as_secs_f64());
    result
}

/// The reasons [`events_dropped`] is given (a closed set).
pub const EVENTS_DROP_REASONS: [&str; 3] = ["queue_full", "stream_unwritable", "writer_stopped"];

/// Counts audit events dropped for `reason` (one of [`EVENTS_DROP_REASONS`]).
pub fn event_dropped(reason: &'static str) {
    events_dropped(reason, 1);
}

/// Counts `count` audit events dropped for `reason`.
pub fn events_dropped(reason: &'static str, count: u64) {
    debug_assert!(EVENTS_DROP_REASONS.contains(&reason), "{reason}");
    counter!(EVENTS_DROPPED, "reason" => reason).increment(count);
}
