//! Log output and traces. Logs go to standard error; they never carry a code,
//! a secret or a full phone number (domain types redact themselves). Traces
//! are exported over OTLP only when the `OTEL_*` variables ask for it
//! (`traces.rs`); log lines then carry the trace and span ids
//! (`trace_ids.rs`).

mod batched_writer;
mod line_format;
mod line_time;
mod trace_ids;
mod traces;

#[cfg(test)]
mod captured_lines;

use std::{
    io,
    sync::{Arc, OnceLock},
    time::Duration,
};

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Subscriber, dispatcher::WeakDispatch};
use tracing_subscriber::{
    EnvFilter, Layer, fmt, layer::SubscriberExt, registry::LookupSpan, util::SubscriberInitExt,
};

pub use opentelemetry_otlp::ExporterBuildError;
pub use traces::{
    AttributeValue, TraceExport, TraceSampler, annotate, annotate_current, exporting, note,
    sms_send_span, sms_try_span, store_span,
};

use batched_writer::{BatchedWriter, WriterGuard};
use line_format::{LogLine, SpanFields};
use line_time::UtcMicros;
use trace_ids::{LineShape, WithTraceIds};

/// Log output format (`OTP_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Why logging or tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP span exporter (`OTEL_*` settings).
    #[error("cannot set up the OTLP trace exporter: {0}")]
    TraceExporter(#[from] ExporterBuildError),
    /// The thread that writes log lines could not be started.
    #[error("cannot start the log writer thread: {0}")]
    LogWriter(#[from] io::Error),
}

/// How long shutting down waits for the last spans to reach the collector.
const SPAN_FLUSH_WAIT: Duration = Duration::from_secs(3);

/// Keeps the log writer thread and the span exporter running. Hold it until
/// the process exits: dropping it exports the spans still buffered, then
/// writes out every log line still buffered.
#[must_use = "dropping the guard stops the log writer; hold it until exit"]
pub struct LogGuard {
    traces: Option<SdkTracerProvider>,
    _writer: WriterGuard,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(provider) = &self.traces {
            traces::shut_down(provider, SPAN_FLUSH_WAIT);
        }
    }
}

/// Installs the global subscriber: logs, and spans exported as `traces`
/// says. `RUST_LOG` overrides the default `info` level. Must run inside the
/// Tokio runtime when traces are exported.
///
/// Lines are formatted on the calling thread and written to standard error by
/// one writer thread in batches (`batched_writer.rs`): a line reaches stderr
/// within 10 ms, and the request path never waits for the terminal or pipe
/// unless a megabyte of lines is already waiting. The lines are our own
/// format (`line_format.rs`, README "Log lines"), without colours.
pub fn init(format: LogFormat, traces: &TraceExport) -> Result<LogGuard, TelemetryError> {
    let (writer, guard) = BatchedWriter::start(io::stderr(), "otp-log")?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = match traces {
        TraceExport::Off => None,
        TraceExport::Otlp { endpoint, sampler } => Some(traces::provider(endpoint, *sampler)?),
    };
    let dispatch = Arc::new(OnceLock::new());
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(traces::tracer(provider))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
    });
    let ids = provider.is_some().then(|| Arc::clone(&dispatch));
    // A second init (e.g. in tests) keeps the first subscriber; that is fine.
    if tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(log_layer(format, writer, ids))
        .try_init()
        .is_ok()
    {
        tracing::dispatcher::get_default(|current| dispatch.set(current.downgrade()).ok());
    }
    Ok(LogGuard {
        traces: provider,
        _writer: guard,
    })
}

/// The log line formatter: text or JSON (`line_format.rs`), with the trace
/// ids when `ids` is given (traces exported).
fn log_layer<S>(
    format: LogFormat,
    writer: BatchedWriter,
    ids: Option<Arc<OnceLock<WeakDispatch>>>,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let shape = match format {
        LogFormat::Text => LineShape::Text,
        LogFormat::Json => LineShape::Json,
    };
    let layer = fmt::layer()
        .with_ansi(false)
        .with_writer(writer)
        .fmt_fields(SpanFields(shape));
    let line = LogLine::new(shape, UtcMicros);
    match ids {
        None => layer.event_format(line).boxed(),
        Some(ids) => layer
            .event_format(WithTraceIds::new(line, shape, ids))
            .boxed(),
    }
}
