//! Where the service listens and how it logs: `OTP_LISTEN_ADDR`,
//! `OTP_METRICS_ADDR`, `OTP_LOG_FORMAT`.

use std::net::SocketAddr;

use super::{ConfigError, Env};
use crate::telemetry::LogFormat;

/// Default gRPC listen address: loopback, because a sidecar serves only its pod.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// Default Prometheus address: loopback, scraped through the pod's port mapping.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// `OTP_METRICS_ADDR`; `None` turns metrics off.
pub(super) fn metrics_addr(env: &Env) -> Result<Option<SocketAddr>, ConfigError> {
    // Unlike other variables, an explicitly empty value means "off" here.
    match env.raw("OTP_METRICS_ADDR") {
        Some("" | "off") => Ok(None),
        _ => env
            .parsed("OTP_METRICS_ADDR", DEFAULT_METRICS_ADDR, |raw| {
                raw.parse::<SocketAddr>().map_err(|_| {
                    "must be an IP:port socket address, or empty to turn metrics off".to_owned()
                })
            })
            .map(Some),
    }
}

/// `OTP_LISTEN_ADDR`.
pub(super) fn listen_addr(env: &Env) -> Result<SocketAddr, ConfigError> {
    env.parsed("OTP_LISTEN_ADDR", DEFAULT_LISTEN_ADDR, |raw| {
        raw.parse::<SocketAddr>()
            .map_err(|_| "must be an IP:port socket address, e.g. 127.0.0.1:50051".to_owned())
    })
}

/// `OTP_LOG_FORMAT`.
pub(super) fn log_format(env: &Env) -> Result<LogFormat, ConfigError> {
    env.parsed("OTP_LOG_FORMAT", "text", |raw| match raw {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("must be `text` or `json`".to_owned()),
    })
}
