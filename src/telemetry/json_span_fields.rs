//! Span fields for the JSON log line (`json_line.rs`), kept as
//! tracing-subscriber's `JsonFields` keeps them: the JSON text of one object,
//! members sorted by name, a name recorded twice keeping its last value. The
//! text is byte for byte what `JsonFields` would hold, so a line can copy it
//! as it is; a span holding a float is marked (its text starts with a space,
//! which JSON ignores) because serde_json may not read a float back to the
//! same bits, and such a span's fields are read back as tracing-subscriber
//! reads them.

use std::{
    collections::BTreeMap,
    fmt::{self, Write},
};

use tracing::{field::Field, span::Record};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{FormatFields, FormattedFields, format::Writer},
};

use super::line_values::{JsonEscaped, write_int, write_json_f64, write_json_str};

/// Marks a span's field text that holds a float (see the module docs).
pub(super) const HOLDS_FLOAT: char = ' ';

/// Keeps span fields as `JsonFields` does: one JSON object, members sorted
/// by name, a name recorded twice keeping its last value.
#[derive(Debug, Default)]
pub(super) struct JsonSpanFields;

/// One recorded span field's value.
enum SpanValue {
    /// Its JSON text (anything but a finite float).
    Json(String),
    /// A finite float, kept as is: its text is written when the span's
    /// fields are (and read back as tracing-subscriber reads it).
    Float(f64),
}

impl SpanValue {
    fn to_value(&self) -> Result<serde_json::Value, fmt::Error> {
        match self {
            Self::Json(text) => serde_json::from_str(text).map_err(|_| fmt::Error),
            Self::Float(value) => Ok(serde_json::Value::from(*value)),
        }
    }
}

/// `JsonVisitor`'s recording rules: typed values as JSON, anything else as
/// the string of its `Debug`, `r#` dropped (and `log.*` skipped) only there.
#[derive(Default)]
struct SpanVisitor {
    values: Vec<(&'static str, SpanValue)>,
}

impl SpanVisitor {
    fn json(&mut self, field: &Field, write: impl FnOnce(&mut String) -> fmt::Result) {
        let mut text = String::new();
        if write(&mut text).is_ok() {
            self.values.push((field.name(), SpanValue::Json(text)));
        }
    }

    /// The fields in map order, the last value of a name winning.
    fn into_sorted(mut self) -> Vec<(&'static str, SpanValue)> {
        // One field (a span's usual record) is already in order.
        if self.values.len() < 2 {
            return self.values;
        }
        self.values.sort_by(|a, b| a.0.cmp(b.0));
        let mut sorted: Vec<(&'static str, SpanValue)> = Vec::with_capacity(self.values.len());
        for entry in self.values {
            match sorted.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => sorted.push(entry),
            }
        }
        sorted
    }
}

impl tracing::field::Visit for SpanVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.values.push((field.name(), SpanValue::Float(value)));
        } else {
            self.json(field, |w| w.write_str("null"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.json(field, |w| write_int(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.json(field, |w| write_int(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.json(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.json(field, |w| write_json_str(w, value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.json(field, |w| {
            w.write_char('[')?;
            for (at, byte) in value.iter().enumerate() {
                if at > 0 {
                    w.write_char(',')?;
                }
                write_int(w, *byte)?;
            }
            w.write_char(']')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let mut text = String::new();
        let written = text
            .write_char('"')
            .and_then(|()| write!(JsonEscaped(&mut text), "{value:?}"))
            .and_then(|()| text.write_char('"'));
        if written.is_ok() {
            self.values.push((name, SpanValue::Json(text)));
        }
    }
}

/// Writes sorted fields as one JSON object, marked when it holds a float.
fn write_object(out: &mut dyn Write, fields: &[(&str, SpanValue)]) -> fmt::Result {
    if fields.iter().any(|(_, v)| matches!(v, SpanValue::Float(_))) {
        out.write_char(HOLDS_FLOAT)?;
    }
    out.write_char('{')?;
    for (at, (name, value)) in fields.iter().enumerate() {
        if at > 0 {
            out.write_char(',')?;
        }
        write_json_str(out, name)?;
        out.write_char(':')?;
        match value {
            SpanValue::Json(text) => out.write_str(text)?,
            SpanValue::Float(value) => write_json_f64(out, *value)?,
        }
    }
    out.write_char('}')
}

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = SpanVisitor::default();
        fields.record(&mut visitor);
        write_object(&mut writer, &visitor.into_sorted())
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let mut visitor = SpanVisitor::default();
        fields.record(&mut visitor);
        let added = visitor.into_sorted();
        // A span created with no value yet holds `{}`: nothing to merge.
        if current.fields.is_empty() || current.fields == "{}" {
            current.fields.clear();
            return write_object(&mut current.as_writer(), &added);
        }
        // As `JsonFields`: read the object back (a name spelled with an
        // escape cannot be borrowed, which fails the record there too), add
        // the new values, write the whole object again.
        let mut merged: BTreeMap<&str, serde_json::Value> =
            serde_json::from_str(&current.fields).map_err(|_| fmt::Error)?;
        for (name, value) in &added {
            merged.insert(name, value.to_value()?);
        }
        let holds_float = merged.values().any(serde_json::Value::is_f64);
        let mut text = String::with_capacity(current.fields.len() + 32);
        if holds_float {
            text.push(HOLDS_FLOAT);
        }
        serde_json::to_writer(WriteString(&mut text), &merged).map_err(|_| fmt::Error)?;
        current.fields = text;
        Ok(())
    }
}

/// Lets serde_json write into a `String` (it only writes UTF-8).
struct WriteString<'a>(&'a mut String);

impl std::io::Write for WriteString<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(bytes).map_err(std::io::Error::other)?;
        self.0.push_str(text);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
