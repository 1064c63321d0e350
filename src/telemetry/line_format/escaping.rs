//! How a value is spelled inside a log line: quoted and escaped (text),
//! as a JSON string, and an error with its chain of sources.

use std::fmt::{self, Write};

use tracing_subscriber::fmt::format::Writer;

/// An error and its sources: `outer: inner: innermost`.
pub(super) struct ErrorChain<'a>(pub(super) &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// A text value needs no quotes: non-empty, no space, `"`, `=` or control.
pub(super) fn is_bare(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=')
}

/// `value` between quotes, `"`, `\` and control characters escaped.
pub(super) fn write_quoted(writer: &mut Writer<'_>, value: fmt::Arguments<'_>) -> fmt::Result {
    writer.write_char('"')?;
    Quoted(&mut *writer).write_fmt(value)?;
    writer.write_char('"')
}

/// Escapes control characters (`\n`, `\u{1b}`) in what passes through it,
/// so a text line stays one line.
pub(super) struct ControlEscaped<'a, W: Write + ?Sized>(pub(super) &'a mut W);

impl<W: Write + ?Sized> Write for ControlEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape(self.0, text, |c| c.is_control())
    }
}

/// Escapes control characters, `"` and `\`: the inside of a quoted value.
pub(super) struct Quoted<'a, W: Write + ?Sized>(pub(super) &'a mut W);

impl<W: Write + ?Sized> Write for Quoted<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape(self.0, text, |c| c.is_control() || c == '"' || c == '\\')
    }
}

/// Writes `text`, each character `needs` picks as Rust's `escape_debug`.
fn escape(
    out: &mut (impl Write + ?Sized),
    text: &str,
    needs: impl Fn(char) -> bool,
) -> fmt::Result {
    let mut clean = 0;
    for (at, c) in text.char_indices().filter(|&(_, c)| needs(c)) {
        out.write_str(&text[clean..at])?;
        write!(out, "{}", c.escape_debug())?;
        clean = at + c.len_utf8();
    }
    out.write_str(&text[clean..])
}

/// `text` as a JSON string.
pub(super) fn write_json_str(writer: &mut impl Write, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    JsonEscaped(writer).write_str(text)?;
    writer.write_char('"')
}

/// Escapes what passes through it for the inside of a JSON string.
pub(super) struct JsonEscaped<'a, W: Write + ?Sized>(pub(super) &'a mut W);

impl<W: Write + ?Sized> Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut clean = 0;
        for (at, c) in text.char_indices() {
            let escaped = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if c < ' ' => "",
                _ => continue,
            };
            self.0.write_str(&text[clean..at])?;
            if escaped.is_empty() {
                write!(self.0, "\\u{:04x}", c as u32)?;
            } else {
                self.0.write_str(escaped)?;
            }
            clean = at + c.len_utf8();
        }
        self.0.write_str(&text[clean..])
    }
}
