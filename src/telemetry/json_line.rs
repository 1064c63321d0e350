//! The JSON log line, written directly: the same bytes as tracing-subscriber's
//! `json()` formatter with `with_current_span(true)` and
//! `with_span_list(false)`, for every event:
//!
//! `{"timestamp":…,"level":…,"fields":{event fields in order},"target":…,
//! "span":{span fields sorted by name…,"name":…}}`
//!
//! tracing-subscriber keeps a span's fields as JSON text and parses that text
//! back into a map for every line the span encloses; here the text is kept
//! exactly as it would be (so it is parsed the same way when a field is added
//! later), and an event copies it into the line as it is: serde_json would
//! write the parsed map back byte for byte. The one exception is a float,
//! which serde_json's parser may not read back to the same bits: a span
//! holding one is marked (its text starts with a space, which JSON ignores)
//! and takes tracing-subscriber's parse-and-write path.

use std::fmt::{self, Write};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_log::NormalizeEvent;
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormattedFields, format::Writer, time::FormatTime},
    registry::{LookupSpan, SpanRef},
};

pub(super) use super::json_span_fields::JsonSpanFields;
use super::{
    json_span_fields::HOLDS_FLOAT,
    line_values::{JsonEscaped, write_int, write_json_f64, write_json_str},
};

/// A timestamp's text, kept on the stack when short (always, for ours).
struct ShortText {
    len: usize,
    bytes: [u8; 48],
    /// Used instead once the text outgrows `bytes`.
    long: String,
}

impl Default for ShortText {
    fn default() -> Self {
        Self {
            len: 0,
            bytes: [0; 48],
            long: String::new(),
        }
    }
}

impl ShortText {
    fn as_str(&self) -> &str {
        if self.long.is_empty() {
            // Only whole `&str`s are copied in, so the prefix is UTF-8.
            std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
        } else {
            &self.long
        }
    }
}

impl Write for ShortText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        if self.long.is_empty() && end <= self.bytes.len() {
            self.bytes[self.len..end].copy_from_slice(text.as_bytes());
            self.len = end;
        } else {
            if self.long.is_empty() {
                let short = std::str::from_utf8(&self.bytes[..self.len]).map_err(|_| fmt::Error)?;
                self.long.push_str(short);
            }
            self.long.push_str(text);
        }
        Ok(())
    }
}

/// An event's fields in recording order, as `SerdeMapVisitor` writes them:
/// typed values as JSON, anything else as the string of its `Debug`.
struct EventVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl EventVisitor<'_, '_> {
    fn entry(&mut self, field: &Field, write: impl FnOnce(&mut dyn Write) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first {
            Ok(())
        } else {
            self.writer.write_char(',')
        };
        self.first = false;
        self.result = separator
            .and_then(|()| write_json_str(self.writer, field.name()))
            .and_then(|()| self.writer.write_char(':'))
            .and_then(|()| write(self.writer));
    }
}

impl tracing::field::Visit for EventVisitor<'_, '_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write_int(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write_int(w, value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, |w| write_json_f64(w, value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| write_json_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(JsonEscaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

fn level_json(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        _ => "ERROR",
    }
}

/// Writes a span as the line's `span` member's object.
fn write_span<S>(writer: &mut Writer<'_>, span: &SpanRef<'_, S>) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    writer.write_char('{')?;
    let extensions = span.extensions();
    let stored = extensions
        .get::<FormattedFields<JsonSpanFields>>()
        .map_or("", |fields| fields.fields.as_str());
    if stored.starts_with(HOLDS_FLOAT) {
        write_reparsed(writer, stored)?;
    } else {
        let members = stored
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or("");
        writer.write_str(members)?;
        if !members.is_empty() {
            writer.write_char(',')?;
        }
    }
    writer.write_str("\"name\":")?;
    write_json_str(writer, span.metadata().name())?;
    writer.write_char('}')
}

/// tracing-subscriber's way with a span's fields: parse, write each member.
fn write_reparsed(writer: &mut Writer<'_>, stored: &str) -> fmt::Result {
    let members = match serde_json::from_str::<serde_json::Value>(stored) {
        Ok(serde_json::Value::Object(members)) => members,
        Ok(value) => {
            let mut map = serde_json::Map::new();
            map.insert("field".into(), value);
            map.insert("field_error".into(), "field was no a valid object".into());
            map
        }
        Err(err) => {
            let mut map = serde_json::Map::new();
            map.insert("field_error".into(), err.to_string().into());
            map
        }
    };
    for (name, value) in &members {
        write_json_str(writer, name)?;
        writer.write_char(':')?;
        let text = serde_json::to_string(value).map_err(|_| fmt::Error)?;
        writer.write_str(&text)?;
        writer.write_char(',')?;
    }
    Ok(())
}

/// The JSON event formatter (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct JsonLine<T> {
    timer: T,
}

impl<T> JsonLine<T> {
    /// Lines stamped by `timer`.
    pub(super) fn new(timer: T) -> Self {
        Self { timer }
    }
}

impl<S, T> FormatEvent<S, JsonSpanFields> for JsonLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonSpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Lines bridged from the `log` crate carry their own target.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":")?;
        let mut timestamp = ShortText::default();
        self.timer.format_time(&mut Writer::new(&mut timestamp))?;
        write_json_str(&mut writer, timestamp.as_str())?;
        writer.write_str(",\"level\":\"")?;
        writer.write_str(level_json(meta.level()))?;
        writer.write_str("\",\"fields\":{")?;
        let mut fields = EventVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str("},\"target\":")?;
        write_json_str(&mut writer, meta.target())?;
        // As tracing-subscriber: the explicit parent, else the current span.
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":")?;
            write_span(&mut writer, &span)?;
        }
        writer.write_str("}\n")
    }
}
