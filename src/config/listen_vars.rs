//! Where the service listens and how it logs: `OTP_LISTEN_ADDR`,
//! `OTP_METRICS_ADDR`, `OTP_LOG_FORMAT`.

use std::net::SocketAddr;

use clap::Args;

use crate::telemetry::LogFormat;

/// Default gRPC listen address: loopback, because a sidecar serves only its pod.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// Default Prometheus address: loopback, scraped through the pod's port mapping.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// Where the service listens and how it logs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Listeners and logs")]
pub struct ListenVars {
    /// gRPC listen address, IP:port
    #[arg(long, env = "OTP_LISTEN_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,
    /// Prometheus /metrics address, IP:port; empty or `off`: no metrics
    #[arg(long, env = "OTP_METRICS_ADDR", default_value = DEFAULT_METRICS_ADDR,
          value_parser = metrics_addr)]
    pub metrics_addr: MetricsAddr,
    /// Log format (stderr)
    #[arg(long, env = "OTP_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// `OTP_METRICS_ADDR` as given: an address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

/// Unlike other variables, an explicitly empty value means "off" here.
fn metrics_addr(raw: &str) -> Result<MetricsAddr, String> {
    match raw {
        "" | "off" => Ok(MetricsAddr(None)),
        _ => raw
            .parse()
            .map(|addr| MetricsAddr(Some(addr)))
            .map_err(|_| {
                "must be an IP:port socket address, or empty to turn metrics off".to_owned()
            }),
    }
}

/// `OTP_LOG_FORMAT`.
pub(super) fn log_format(vars: &ListenVars) -> LogFormat {
    match vars.log_format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    }
}
