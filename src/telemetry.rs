//! Log output. Logs go to standard error; they never carry a code, a secret
//! or a full phone number (domain types redact themselves).

use std::io::{self, BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt};

/// Log output format (`OTP_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Lines that may wait for the writer thread (over 0.1 s of lines at full
/// load). When it is full, logging callers wait (the buffer is not lossy):
/// the INFO line of each call is the audit trail, so back-pressure is
/// preferred to dropping lines. The queue's slots are allocated up front
/// (32 bytes each), so this is also idle memory.
const BUFFERED_LINES: usize = 4096;

/// Keeps the log writer thread running. Hold it until the process exits:
/// dropping it writes out every line still buffered.
#[must_use = "dropping the guard stops the log writer; hold it until exit"]
pub struct LogGuard {
    _writer: WorkerGuard,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
///
/// Lines are formatted on the calling thread and written to standard error by
/// one writer thread, which writes whatever has queued in one `write` and
/// flushes as soon as the queue is empty, so a line reaches stderr promptly
/// and the request path never waits for the terminal or pipe. Colour codes
/// are used only when stderr is a terminal.
pub fn init(format: LogFormat) -> LogGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(false)
        .thread_name("otp-log")
        .finish(BufWriter::new(io::stderr()));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(writer);
    // A second init (e.g. in tests) keeps the first subscriber; that is fine.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    LogGuard { _writer: guard }
}
