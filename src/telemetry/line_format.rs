//! Our log line format, text or JSON (documented in the README, "Log
//! lines"), written straight into the line buffer: no intermediate strings
//! for values, the timestamp's date computed once a second (`line_time.rs`).
//!
//! Text: `<timestamp> <LEVEL> <span>{<k>=<v> ...}:...: <target>: <message> <k>=<v> ...`,
//! the spans from the outermost in; a value with a space, `"`, `=` or a
//! control character is quoted and escaped as Rust's `Debug` spells it, so a
//! line stays one line.
//!
//! JSON: `{"timestamp":..,"level":..,"fields":{"message":..,<k>:<v>,..},
//! "target":..,"span":{<k>:<v>,..,"name":..}}`, one object per line:
//! integers and booleans as JSON numbers and booleans, a finite float as a
//! number (else a string), everything else as a string; `span` is the
//! innermost span, when there is one. A span field recorded after the span
//! was opened follows its earlier value, and the later one wins.
//!
//! Events bridged from the `log` crate carry their origin in `log.*` fields:
//! `log.target` becomes the line's target and the others are left out.

use std::{
    borrow::Cow,
    fmt::{self, Write},
};

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
    span::Record,
};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer, time::FormatTime,
    },
    registry::LookupSpan,
};

use super::trace_ids::LineShape;

mod escaping;

use escaping::{ControlEscaped, ErrorChain, JsonEscaped, is_bare, write_json_str, write_quoted};

/// How span fields are kept for the lines of one shape: `k=v k=v` (text)
/// or `"k":v,"k":v` (JSON members).
#[derive(Debug, Clone, Copy)]
pub(super) struct SpanFields(pub(super) LineShape);

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldWriter::new(writer, self.0);
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        if !current.fields.is_empty() {
            current.fields.push(separator(self.0));
        }
        self.format_fields(current.as_writer(), fields)
    }
}

/// One event as one line of `shape`, stamped by `timer`.
#[derive(Debug)]
pub(super) struct LogLine<T> {
    shape: LineShape,
    timer: T,
}

impl<T> LogLine<T> {
    pub(super) fn new(shape: LineShape, timer: T) -> Self {
        Self { shape, timer }
    }
}

impl<S, T> FormatEvent<S, SpanFields> for LogLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let target = line_target(event);
        match self.shape {
            LineShape::Text => {
                self.timer.format_time(&mut writer)?;
                writer.write_str(padded_level(event))?;
                if let Some(scope) = ctx.event_scope() {
                    for span in scope.from_root() {
                        writer.write_str(span.name())?;
                        write_stored_fields(&mut writer, &span, "{", "}")?;
                        writer.write_char(':')?;
                    }
                    writer.write_char(' ')?;
                }
                writer.write_str(&target)?;
                writer.write_str(": ")?;
            }
            LineShape::Json => {
                writer.write_str("{\"timestamp\":\"")?;
                self.timer.format_time(&mut writer)?;
                writer.write_str("\",\"level\":\"")?;
                writer.write_str(level(event))?;
                writer.write_str("\",\"fields\":{")?;
            }
        }
        let mut fields = FieldWriter::new(writer.by_ref(), self.shape);
        event.record(&mut fields);
        fields.result?;
        if self.shape == LineShape::Json {
            writer.write_str("},\"target\":")?;
            write_json_str(&mut writer, &target)?;
            let span = event
                .parent()
                .and_then(|id| ctx.span(id))
                .or_else(|| ctx.lookup_current());
            if let Some(span) = span {
                writer.write_str(",\"span\":")?;
                write_stored_fields(&mut writer, &span, "{", ",")?;
                writer.write_str("\"name\":")?;
                write_json_str(&mut writer, span.name())?;
                writer.write_char('}')?;
            }
            writer.write_char('}')?;
        }
        writer.write_char('\n')
    }
}

fn level(event: &Event<'_>) -> &'static str {
    match *event.metadata().level() {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        _ => "ERROR",
    }
}

/// The level between spaces, right-aligned in five columns (text lines).
fn padded_level(event: &Event<'_>) -> &'static str {
    match *event.metadata().level() {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        _ => " ERROR ",
    }
}

/// The event's target; for an event bridged from `log`, its `log.target`
/// (the only lines that pay for a copy of it).
fn line_target<'a>(event: &'a Event<'_>) -> Cow<'a, str> {
    let target = event.metadata().target();
    if target != "log" {
        return Cow::Borrowed(target);
    }
    struct LogTarget(Option<String>);
    impl Visit for LogTarget {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "log.target" {
                self.0 = Some(value.to_owned());
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
    }
    let mut found = LogTarget(None);
    event.record(&mut found);
    found.0.map_or(Cow::Borrowed(target), Cow::Owned)
}

/// A span's stored fields between `open` and `close` (nothing, in text,
/// when it has none).
fn write_stored_fields<S>(
    writer: &mut Writer<'_>,
    span: &tracing_subscriber::registry::SpanRef<'_, S>,
    open: &str,
    close: &str,
) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    let extensions = span.extensions();
    let stored = extensions
        .get::<FormattedFields<SpanFields>>()
        .map_or("", |fields| fields.fields.as_str());
    if stored.is_empty() {
        // JSON always opens the object; text writes nothing.
        return if close == "," {
            writer.write_str(open)
        } else {
            Ok(())
        };
    }
    writer.write_str(open)?;
    writer.write_str(stored)?;
    writer.write_str(close)
}

fn separator(shape: LineShape) -> char {
    match shape {
        LineShape::Text => ' ',
        LineShape::Json => ',',
    }
}

/// Writes fields as the line shape spells them.
struct FieldWriter<'w> {
    writer: Writer<'w>,
    shape: LineShape,
    first: bool,
    result: fmt::Result,
}

impl<'w> FieldWriter<'w> {
    fn new(writer: Writer<'w>, shape: LineShape) -> Self {
        Self {
            writer,
            shape,
            first: true,
            result: Ok(()),
        }
    }

    /// The separator and the name; `false` for a field left out.
    fn name(&mut self, field: &Field) -> bool {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return false;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        if !self.first {
            self.result = self.writer.write_char(separator(self.shape));
        }
        self.first = false;
        self.result = self.result.and_then(|()| match self.shape {
            // The message comes first and bare in text.
            LineShape::Text if name == "message" => Ok(()),
            LineShape::Text => self
                .writer
                .write_str(name)
                .and_then(|()| self.writer.write_char('=')),
            LineShape::Json => {
                write_json_str(&mut self.writer, name).and_then(|()| self.writer.write_char(':'))
            }
        });
        self.result.is_ok()
    }

    /// A value written as is in both shapes (numbers, booleans).
    fn plain(&mut self, field: &Field, value: impl fmt::Display) {
        if self.name(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    /// A string: in text bare when it can be, else quoted and escaped.
    fn str(&mut self, field: &Field, value: &str) {
        if !self.name(field) {
            return;
        }
        self.result = match self.shape {
            LineShape::Json => write_json_str(&mut self.writer, value),
            LineShape::Text if field.name() == "message" || is_bare(value) => {
                ControlEscaped(&mut self.writer).write_str(value)
            }
            LineShape::Text => write_quoted(&mut self.writer, format_args!("{value}")),
        };
    }

    /// A value formatted by `Debug` (the message is one) or an error: in
    /// text, the message and `Debug` output as they are and an error quoted,
    /// control characters escaped; in JSON, a string.
    fn formatted(&mut self, field: &Field, value: fmt::Arguments<'_>, quote_in_text: bool) {
        if !self.name(field) {
            return;
        }
        self.result = match self.shape {
            LineShape::Json => self
                .writer
                .write_char('"')
                .and_then(|()| JsonEscaped(&mut self.writer).write_fmt(value))
                .and_then(|()| self.writer.write_char('"')),
            LineShape::Text if quote_in_text => write_quoted(&mut self.writer, value),
            LineShape::Text => ControlEscaped(&mut self.writer).write_fmt(value),
        };
    }
}

impl Visit for FieldWriter<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() || self.shape == LineShape::Text {
            self.plain(field, value);
        } else {
            self.formatted(field, format_args!("{value}"), false);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.str(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.formatted(field, format_args!("{}", ErrorChain(value)), true);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.formatted(field, format_args!("{value:?}"), false);
    }
}

#[cfg(test)]
#[path = "line_format_tests.rs"]
mod tests;
