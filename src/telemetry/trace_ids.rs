//! Puts the active trace's `trace_id` and `span_id` on every log line, so a
//! line found in the logs leads to its trace and back. Installed only while
//! traces are exported; without it lines are formatted exactly as before.

use std::{
    fmt,
    sync::{Arc, OnceLock},
};

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber, dispatcher::WeakDispatch};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// How the wrapped formatter lays out a line, so the ids join it in kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineShape {
    /// `key=value` text: the ids are appended as two more pairs.
    Text,
    /// One JSON object: the ids become its first two members.
    Json,
}

/// A [`FormatEvent`] that adds the trace ids of the current span to what
/// `inner` writes.
pub(super) struct WithTraceIds<F> {
    inner: F,
    shape: LineShape,
    /// The subscriber this formatter is part of, set once it is built: the
    /// span's OpenTelemetry context is kept by the layer, reached through it.
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<F> WithTraceIds<F> {
    pub(super) fn new(inner: F, shape: LineShape, dispatch: Arc<OnceLock<WeakDispatch>>) -> Self {
        Self {
            inner,
            shape,
            dispatch,
        }
    }

    /// `(trace_id, span_id)` of the current span, if it belongs to a trace.
    fn ids<S, N>(&self, ctx: &FmtContext<'_, S, N>) -> Option<(String, String)>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let span = ctx.lookup_current()?;
        let dispatch = self.dispatch.get()?.upgrade()?;
        let context = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
        let otel_span = context.span();
        let ids = otel_span.span_context();
        ids.is_valid()
            .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = self.ids(ctx) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match self.shape {
            LineShape::Json => match line.strip_prefix('{') {
                Some(members) => write!(
                    writer,
                    "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{members}"
                ),
                None => writer.write_str(&line),
            },
            LineShape::Text => {
                let body = line.trim_end_matches('\n');
                writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}")
            }
        }
    }
}
