//! Prometheus metrics: what is counted, under which names, and the HTTP
//! exporter. Labels are closed sets (results, limits, operations); a phone
//! number, a code or a client key never becomes a label.

use std::{future::Future, net::SocketAddr, time::Duration};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder};
use tokio::time::Instant;

/// SendOtp calls by `result`.
pub const SENDS: &str = "otp_sends_total";
/// VerifyOtp calls by `result`.
pub const VERIFIES: &str = "otp_verifies_total";
/// Sends refused by a send limit, by `limit`.
pub const LIMIT_REFUSALS: &str = "otp_send_limit_refusals_total";
/// SMS gateway failures by `kind`.
pub const GATEWAY_ERRORS: &str = "otp_sms_gateway_errors_total";
/// SMS gateway send latency (all tries of one send).
pub const GATEWAY_SECONDS: &str = "otp_sms_gateway_duration_seconds";
/// Store operation latency by `operation`.
pub const STORE_SECONDS: &str = "otp_store_operation_duration_seconds";
/// 1 while the store answers health pings, else 0.
pub const STORE_UP: &str = "otp_store_up";
/// 1 while Redis's `maxmemory-policy` may evict live keys (locks, guess
/// counters), else 0.
pub const REDIS_EVICTING: &str = "otp_redis_evicting_policy";
/// gRPC calls by `method` and `code`.
pub const GRPC_REQUESTS: &str = "otp_grpc_requests_total";
/// gRPC call latency by `method`.
pub const GRPC_SECONDS: &str = "otp_grpc_request_duration_seconds";

/// Latency buckets from 0.5 ms (an in-memory call) to 10 s (a slow gateway).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder and serves `/metrics` on `addr`.
/// Must run inside the Tokio runtime. Fails if `addr` cannot be bound or a
/// recorder is already installed.
pub fn install(addr: SocketAddr) -> Result<(), BuildError> {
    let (recorder, exporter) = PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&LATENCY_BUCKETS)?
        .build()?;
    metrics::set_global_recorder(recorder)?;
    tokio::spawn(async move {
        if let Err(err) = exporter.await {
            tracing::error!("metrics exporter stopped: {err:?}");
        }
    });
    describe();
    tracing::info!(addr = %addr, "metrics listening on /metrics");
    Ok(())
}

fn describe() {
    metrics::describe_counter!(SENDS, "SendOtp calls by result");
    metrics::describe_counter!(VERIFIES, "VerifyOtp calls by result");
    metrics::describe_counter!(LIMIT_REFUSALS, "Sends refused by a send limit, by limit");
    metrics::describe_counter!(GATEWAY_ERRORS, "SMS gateway failures by kind");
    metrics::describe_histogram!(
        GATEWAY_SECONDS,
        metrics::Unit::Seconds,
        "SMS gateway send latency"
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
    metrics::describe_counter!(GRPC_REQUESTS, "gRPC calls by method and status code");
    metrics::describe_histogram!(GRPC_SECONDS, metrics::Unit::Seconds, "gRPC call latency");
}

/// Counts a SendOtp outcome.
pub fn send_finished(result: &'static str) {
    counter!(SENDS, "result" => result).increment(1);
}

/// Counts a VerifyOtp outcome.
pub fn verify_finished(result: &'static str) {
    counter!(VERIFIES, "result" => result).increment(1);
}

/// Counts a send refused by `limit`.
pub fn send_limit_refused(limit: &'static str) {
    counter!(LIMIT_REFUSALS, "limit" => limit).increment(1);
}

/// Counts an SMS gateway failure of `kind`.
pub fn gateway_failed(kind: &'static str) {
    counter!(GATEWAY_ERRORS, "kind" => kind).increment(1);
}

/// Records how long one SMS send took.
pub fn gateway_latency(elapsed: Duration) {
    histogram!(GATEWAY_SECONDS).record(elapsed.as_secs_f64());
}

/// Sets the store health gauge.
pub fn store_up(up: bool) {
    gauge!(STORE_UP).set(if up { 1.0 } else { 0.0 });
}

/// Sets the evicting-policy gauge.
pub fn redis_evicting(evicting: bool) {
    gauge!(REDIS_EVICTING).set(if evicting { 1.0 } else { 0.0 });
}

/// Counts a finished gRPC call and its latency.
pub fn rpc_finished(method: &'static str, code: &'static str, caller: &str, elapsed: Duration) {
    counter!(GRPC_REQUESTS, "method" => method, "code" => code, "caller" => caller.to_owned())
        .increment(1);
    histogram!(GRPC_SECONDS, "method" => method).record(elapsed.as_secs_f64());
}

/// Awaits a store operation and records its latency under `operation`.
pub async fn timed_store<T>(operation: &'static str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = work.await;
    histogram!(STORE_SECONDS, "operation" => operation).record(started.elapsed().as_secs_f64());
    result
}
