//! Reads the command line and environment; serves until SIGTERM or SIGINT,
//! or with `check-config` checks the configuration and the store and exits.

use std::process::ExitCode;

use otp_service::{
    Application, Config,
    cli::{Action, Cli, check_config},
    config::Stop,
    metrics, telemetry,
};

/// mimalloc rather than glibc's malloc: VerifyOtp on the memory store took
/// about a fifth less CPU per call with it (BENCHMARKS.md, issue 14). glibc's
/// allocator was ~10 % of a call's instructions and more of its time, partly
/// because log lines are allocated on the request thread and freed on the log
/// writer's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let invocation = match Cli::from_process() {
        Ok(invocation) => invocation,
        Err(Stop::Display(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(Stop::Usage(text)) => {
            eprint!("{text}");
            return ExitCode::from(2);
        }
        Err(Stop::Config(err)) => {
            eprintln!("otp-service: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    match invocation.action {
        Some(Action::CheckConfig) => {
            match check_config(&invocation.config, &invocation.effective).await {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("otp-service: invalid configuration: {why}");
                    ExitCode::from(2)
                }
            }
        }
        None => serve(invocation.config).await,
    }
}

/// Sets up logging and metrics and serves until a signal.
async fn serve(config: Config) -> ExitCode {
    // Held to the end of `main`: every return below exports the buffered
    // spans and writes out the buffered log lines.
    let _log_guard = match telemetry::init(config.log_format, &config.traces) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("otp-service: {err}");
            return ExitCode::from(1);
        }
    };
    if let Some(addr) = config.metrics_addr
        && let Err(err) = metrics::install(addr)
    {
        eprintln!("otp-service: cannot serve metrics on {addr} (OTP_METRICS_ADDR): {err}");
        return ExitCode::from(1);
    }

    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            // Once on stderr: in the log's format, or plainly when the log
            // filter (RUST_LOG=off) would drop it.
            if tracing::enabled!(tracing::Level::ERROR) {
                tracing::error!("cannot start: {err}");
            } else {
                eprintln!("otp-service: cannot start: {err}");
            }
            return ExitCode::from(1);
        }
    };
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!("cannot listen for SIGTERM ({err}); only Ctrl-C stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
