//! Continuing the caller's trace: the W3C `traceparent` / `tracestate` gRPC
//! metadata become the parent of the RPC's span. Runs only while traces are
//! exported.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{KeyRef, MetadataMap};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{proto::otp_service_server::SERVICE_NAME, telemetry};

/// Makes the caller's context (if it sent one) the parent of `span`, which
/// must not have been entered yet, and names the RPC in its attributes.
pub(super) fn continue_caller(span: &Span, method: &'static str, metadata: &MetadataMap) {
    let parent = TraceContextPropagator::new().extract(&Metadata(metadata));
    if let Err(err) = span.set_parent(parent) {
        tracing::debug!(error = %err, "cannot continue the caller's trace");
    }
    telemetry::annotate(span, "rpc.system", "grpc");
    telemetry::annotate(span, "rpc.service", SERVICE_NAME);
    telemetry::annotate(span, "rpc.method", method);
}

/// gRPC metadata as the propagator reads it (ASCII values only).
struct Metadata<'a>(&'a MetadataMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}
