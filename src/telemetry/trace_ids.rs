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

/// The JSON object's opening brace (spelled so that brace-counting tools
/// reading this file stay balanced).
const OPEN: char = '\u{7b}';

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
            LineShape::Json => match line.strip_prefix(OPEN) {
                // The ids become the object's first members.
                Some(members) => {
                    writer.write_char(OPEN)?;
                    write!(writer, r#""trace_id":"{trace_id}","span_id":"{span_id}","#)?;
                    writer.write_str(members)
                }
                None => writer.write_str(&line),
            },
            LineShape::Text => {
                let body = line.trim_end_matches('\n');
                writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing::Dispatch;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::{
        captured_lines::CapturedLines,
        line_format::{LogLine, SpanFields},
        line_time::UtcMicros,
    };

    /// Logs one line outside any span and one inside a traced span.
    fn log_two_lines(shape: LineShape) -> Vec<String> {
        let lines = CapturedLines::default();
        let ids = Arc::new(OnceLock::new());
        let tracer = SdkTracerProvider::builder().build().tracer("test");
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(lines.clone())
            .fmt_fields(SpanFields(shape))
            .event_format(WithTraceIds::new(
                LogLine::new(shape, UtcMicros),
                shape,
                Arc::clone(&ids),
            ));
        let otel = tracing_opentelemetry::layer().with_tracer(tracer);
        let dispatch = Dispatch::new(tracing_subscriber::registry().with(otel).with(layer));
        let _ = ids.set(dispatch.downgrade());
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!("outside");
            tracing::info_span!("SendOtp").in_scope(|| tracing::info!("inside"));
        });
        lines.text().lines().map(str::to_owned).collect()
    }

    fn hex_of_len(text: &str, len: usize) -> bool {
        text.len() == len && text.chars().all(|c| c.is_ascii_hexdigit())
    }

    #[test]
    fn text_lines_in_a_trace_end_with_its_ids() {
        {
            let lines = log_two_lines(LineShape::Text);
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(!lines[0].contains("trace_id="), "{}", lines[0]);
            let (rest, span_id) = lines[1].rsplit_once(" span_id=").expect("span id");
            let (_, trace_id) = rest.rsplit_once(" trace_id=").expect("trace id");
            assert!(
                hex_of_len(trace_id, 32) && hex_of_len(span_id, 16),
                "{}",
                lines[1]
            );
            assert!(rest.contains("inside"), "{}", lines[1]);
        }
    }

    #[test]
    fn json_lines_in_a_trace_lead_with_its_ids() {
        {
            let lines = log_two_lines(LineShape::Json);
            let outside: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
            assert!(outside.get("trace_id").is_none(), "{outside}");
            let inside: serde_json::Value = serde_json::from_str(&lines[1]).expect("JSON");
            let id = |key: &str| inside[key].as_str().unwrap_or_default().to_owned();
            assert!(hex_of_len(&id("trace_id"), 32), "{inside}");
            assert!(hex_of_len(&id("span_id"), 16), "{inside}");
            assert_eq!(inside["fields"]["message"], "inside");
            assert_eq!(inside["span"]["name"], "SendOtp");
        }
    }
}
