//! OpenTelemetry traces: the OTLP exporter (gRPC, tonic) when the standard
//! `OTEL_*` variables ask for one, and the few helpers the request path uses
//! to open child spans and set attributes only while traces are exported.
//!
//! With no exporter configured nothing here runs per call but one relaxed
//! atomic load: no OpenTelemetry layer is installed, no child span is
//! created, no caller context is extracted.

use std::{
    borrow::Cow,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::{ExporterBuildError, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{Sampler, SdkTracerProvider},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether spans are exported (`OTEL_EXPORTER_OTLP_ENDPOINT` and friends).
/// Config reads the variables it has flags for (the sampler too, so its
/// flag is obeyed); the SDK itself reads the others
/// (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`,
/// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`).
#[derive(Debug, Clone, PartialEq)]
pub enum TraceExport {
    /// No exporter: spans are neither built nor sent.
    Off,
    /// OTLP over gRPC to this collector endpoint (`http://host:4317`).
    Otlp {
        /// The collector's URL.
        endpoint: String,
        /// Which traces are kept.
        sampler: TraceSampler,
    },
}

/// Which traces are kept (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`),
/// as the OpenTelemetry specification names the samplers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TraceSampler {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`: this share of traces.
    Ratio(f64),
    /// `parentbased_always_on` (the default): the caller's decision, else on.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`.
    ParentBasedRatio(f64),
}

impl TraceSampler {
    fn sdk(self) -> Sampler {
        let parent_based = |root| Sampler::ParentBased(Box::new(root));
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
            Self::ParentBasedAlwaysOn => parent_based(Sampler::AlwaysOn),
            Self::ParentBasedAlwaysOff => parent_based(Sampler::AlwaysOff),
            Self::ParentBasedRatio(ratio) => parent_based(Sampler::TraceIdRatioBased(ratio)),
        }
    }
}

/// Set once when an exporter is installed; read on every call.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported: the request path's only per-call check
/// when traces are off.
#[inline]
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The instrumentation scope spans are recorded under.
const TRACER_NAME: &str = "otp-service";

/// Builds the batch exporter and its tracer provider. Must run inside the
/// Tokio runtime (the tonic channel spawns its connection tasks there).
pub(super) fn provider(
    endpoint: &str,
    sampler: TraceSampler,
) -> Result<SdkTracerProvider, ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    // Resource::builder reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
    // the name defaults to ours rather than the SDK's `unknown_service`.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(TRACER_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_sampler(sampler.sdk())
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The tracer the tracing layer records into; marks traces as exported.
pub(super) fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    EXPORTING.store(true, Ordering::Relaxed);
    provider.tracer(TRACER_NAME)
}

/// Flushes what is buffered and stops the exporter, waiting at most `wait`.
pub(super) fn shut_down(provider: &SdkTracerProvider, wait: Duration) {
    EXPORTING.store(false, Ordering::Relaxed);
    if let Err(err) = provider.shutdown_with_timeout(wait) {
        tracing::warn!(error = %err, "could not flush the last spans");
    }
}

/// A child span for one store operation, or a disabled span when traces
/// are off (free to create and enter).
pub fn store_span(operation: &'static str) -> Span {
    if !exporting() {
        return Span::none();
    }
    let span = tracing::info_span!("store", otel.name = operation, otel.kind = "client");
    span.set_attribute("otp.store.operation", operation);
    span
}

/// A child span for one SMS send (all its tries), or a disabled span.
pub fn sms_send_span(provider: &'static str) -> Span {
    if !exporting() {
        return Span::none();
    }
    let span = tracing::info_span!("sms send", otel.kind = "client");
    span.set_attribute("otp.sms.provider", provider);
    span
}

/// A child span for one try of an SMS send, or a disabled span.
pub fn sms_try_span(attempt: u32) -> Span {
    if !exporting() {
        return Span::none();
    }
    let span = tracing::info_span!("sms try", otel.kind = "client");
    span.set_attribute("otp.sms.attempt", i64::from(attempt));
    span
}

/// Sets an attribute on `span` when traces are exported. Only closed sets
/// and masked values belong here: never a code, a secret or a full number.
pub fn annotate(span: &Span, key: &'static str, value: impl Into<AttributeValue>) {
    if exporting() {
        span.set_attribute(key, value.into().0);
    }
}

/// [`annotate`] on the current span, which is looked up only when traces are
/// exported: on the request path with traces off, a lookup is a subscriber
/// call for nothing.
pub fn annotate_current(key: &'static str, value: impl Into<AttributeValue>) {
    if exporting() {
        annotate(&Span::current(), key, value);
    }
}

/// Records an event (a retry, a refusal) on `span` when traces are exported.
pub fn note(span: &Span, name: &'static str, attributes: &[(&'static str, &'static str)]) {
    if exporting() {
        span.add_event(
            name,
            attributes
                .iter()
                .map(|(key, value)| KeyValue::new(*key, *value))
                .collect(),
        );
    }
}

/// What [`annotate`] accepts: text, numbers and flags.
pub struct AttributeValue(opentelemetry::Value);

impl From<&'static str> for AttributeValue {
    fn from(value: &'static str) -> Self {
        Self(opentelemetry::Value::String(value.into()))
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        Self(opentelemetry::Value::String(
            Cow::<'static, str>::Owned(value).into(),
        ))
    }
}

impl From<u32> for AttributeValue {
    fn from(value: u32) -> Self {
        Self(opentelemetry::Value::I64(i64::from(value)))
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        Self(opentelemetry::Value::Bool(value))
    }
}
