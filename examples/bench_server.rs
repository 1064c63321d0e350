//! The real service, configured from the environment exactly like
//! `otp-service`, but with an SMS gateway that does no I/O: every message is
//! accepted and dropped. It exists so a send-heavy benchmark measures the
//! service rather than a terminal or an SMS provider. It is an example, not a
//! binary the crate ships, so no deployment can select it by accident.
//!
//! ```text
//! OTP_LISTEN_ADDR=127.0.0.1:50053 cargo run --release --example bench_server
//! ```

use std::{process::ExitCode, sync::Arc};

use async_trait::async_trait;
use otp_service::{
    Application, Config,
    sms::{Accepted, GatewayError, OutgoingSms, SmsGateway},
    telemetry,
};

/// The service binary's allocator (see `src/main.rs`), so a send-heavy run
/// measures the service as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Accepts every message and sends nothing.
struct DiscardGateway;

#[async_trait]
impl SmsGateway for DiscardGateway {
    async fn send(&self, _sms: &OutgoingSms<'_>) -> Result<Accepted, GatewayError> {
        Ok(Accepted::default())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("bench_server: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    let _log_guard = match telemetry::init(config.log_format, &config.traces) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("bench_server: {err}");
            return ExitCode::from(1);
        }
    };
    tracing::warn!("bench_server: SMS gateway DISCARDS every message. For benchmarks only");
    let app = match Application::build_with_gateway(config, Arc::new(DiscardGateway)).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("bench_server: cannot start: {err}");
            return ExitCode::from(1);
        }
    };
    let stopped = app
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench_server: {err}");
            ExitCode::from(1)
        }
    }
}
