//! The text log line, written directly: the same bytes as tracing-subscriber's
//! default `Full` format with `DefaultFields` (without colours), for every
//! event, at a fraction of the cost. Used only when colours are off; a
//! terminal keeps tracing-subscriber's own formatter.
//!
//! `timestamp LEVEL span{fields}:span{fields}: target: message key=value…`

use std::fmt::{self, Write};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_log::NormalizeEvent;
use tracing_subscriber::{
    field::RecordFields,
    fmt::{
        FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer, time::FormatTime,
    },
    registry::LookupSpan,
};

use super::line_values::{Sanitized, SanitizedValue, write_debug_f64, write_debug_str, write_int};

/// Formats span and event fields as `DefaultFields` does: `key=value`
/// separated by spaces, the message bare, `r#` dropped from names, `log.*`
/// fields (already in the line's metadata) left out.
#[derive(Debug, Default)]
pub(super) struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = TextVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// `DefaultVisitor`, method for method, with direct writes where its
/// `{:?}` would produce the same bytes.
struct TextVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

/// Where a field's value goes once its name is written.
enum Slot {
    /// A `log.*` field: not written.
    Skip,
    /// The message: bare, terminal controls escaped.
    Message,
    /// `name=` is written; the value follows.
    Named,
}

impl TextVisitor<'_> {
    /// Writes the separator and `name=` (as `DefaultVisitor::record_debug`
    /// does before the value).
    fn open(&mut self, field: &Field) -> Slot {
        let name = field.name();
        if name.starts_with("log.") {
            return Slot::Skip;
        }
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.result = self.writer.write_char(' ');
        }
        if name == "message" {
            return Slot::Message;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = self
            .writer
            .write_str(name)
            .and_then(|()| self.writer.write_char('='));
        Slot::Named
    }

    /// A value whose `Debug` output needs no sanitising (numbers, booleans).
    fn record_plain(&mut self, field: &Field, write: impl FnOnce(&mut dyn Write) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        if let Slot::Skip = self.open(field) {
            return;
        }
        self.result = write(&mut self.writer);
    }
}

impl tracing::field::Visit for TextVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record_plain(field, |w| write_debug_f64(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_plain(field, |w| write_int(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_plain(field, |w| write_int(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_plain(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = match self.open(field) {
            Slot::Skip => return,
            // `DefaultVisitor` shows a string message through `Display`.
            Slot::Message => Sanitized(&mut self.writer).write_str(value),
            Slot::Named => write_debug_str(&mut self.writer, value),
        };
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // As `DefaultVisitor`: the error, then its sources as a list.
        if let Some(source) = value.source() {
            self.record_debug(
                field,
                &format_args!(
                    "{} {}.sources={}",
                    SanitizedValue(format_args!("{value}")),
                    field.name(),
                    SourceList(source)
                ),
            );
        } else {
            self.record_debug(
                field,
                &format_args!("{}", SanitizedValue(format_args!("{value}"))),
            );
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = match self.open(field) {
            Slot::Skip => return,
            Slot::Message => write!(Sanitized(&mut self.writer), "{value:?}"),
            Slot::Named => write!(self.writer, "{value:?}"),
        };
    }
}

/// An error's chain of sources as a list, each entry sanitised
/// (tracing-subscriber's `ErrorSourceList`).
struct SourceList<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for SourceList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut current = Some(self.0);
        while let Some(error) = current {
            list.entry(&SanitizedValue(format_args!("{error}")));
            current = error.source();
        }
        list.finish()
    }
}

/// The line's level as `Full` writes it, padded to five, with its space.
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        _ => "ERROR ",
    }
}

/// The text event formatter (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct TextLine<T> {
    timer: T,
}

impl<T> TextLine<T> {
    /// Lines stamped by `timer`.
    pub(super) fn new(timer: T) -> Self {
        Self { timer }
    }
}

impl<S, T> FormatEvent<S, TextFields> for TextLine<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, TextFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Lines bridged from the `log` crate carry their own target.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level_text(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<TextFields>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}
