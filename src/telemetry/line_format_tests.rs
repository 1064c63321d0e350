//! The line format, checked by parsing the lines it writes.

use std::collections::BTreeMap;

use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

use super::{LogLine, SpanFields};
use crate::telemetry::{captured_lines::CapturedLines, line_time::UtcMicros, trace_ids::LineShape};

#[derive(Debug, thiserror::Error)]
#[error("store unreachable")]
struct Outer(#[source] std::io::Error);

/// The lines `log` writes in `shape`.
fn lines(shape: LineShape, log: impl FnOnce()) -> Vec<String> {
    let lines = CapturedLines::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(lines.clone())
        .fmt_fields(SpanFields(shape))
        .event_format(LogLine::new(shape, UtcMicros));
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, log);
    let text = lines.text();
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines().map(str::to_owned).collect()
}

/// One event of every kind of value, in a span with a field recorded late.
fn every_kind_of_value() {
    let span = tracing::info_span!("rpc", method = "SendOtp", phone = tracing::field::Empty);
    let _entered = span.enter();
    span.record("phone", "+1******0166");
    let error = Outer(std::io::Error::other("refused"));
    tracing::warn!(
        count = 3_u64,
        delta = -2_i64,
        latency_ms = 1.25_f64,
        ok = true,
        kind = ?Some("x"),
        quoted = "two words and \"quotes\"\nnew line",
        error = &error as &(dyn std::error::Error + 'static),
        "sent \"it\"\nsecond line"
    );
}

#[test]
fn json_lines_are_one_object_each_with_typed_values() {
    let lines = lines(LineShape::Json, every_kind_of_value);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: serde_json::Value = serde_json::from_str(&lines[0]).expect("one JSON object");
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["target"], module_path!());
    let timestamp = line["timestamp"].as_str().expect("timestamp");
    assert!(
        timestamp.len() == 27 && timestamp.ends_with('Z') && &timestamp[10..11] == "T",
        "{timestamp}"
    );
    let fields = &line["fields"];
    assert_eq!(fields["message"], "sent \"it\"\nsecond line");
    assert_eq!(fields["count"], 3);
    assert_eq!(fields["delta"], -2);
    assert_eq!(fields["latency_ms"], 1.25);
    assert_eq!(fields["ok"], true);
    assert_eq!(fields["kind"], "Some(\"x\")");
    assert_eq!(fields["quoted"], "two words and \"quotes\"\nnew line");
    assert_eq!(fields["error"], "store unreachable: refused");
    assert_eq!(line["span"]["name"], "rpc");
    assert_eq!(line["span"]["method"], "SendOtp");
    assert_eq!(line["span"]["phone"], "+1******0166");
}

/// A text line's parts: timestamp, level, span scope, target, message and
/// the `k=v` fields (a quoted value unescaped).
struct TextLine {
    timestamp: String,
    level: String,
    spans: String,
    target: String,
    message: String,
    fields: BTreeMap<String, String>,
}

fn parse_text(line: &str) -> TextLine {
    let (timestamp, rest) = line.split_once(' ').expect("timestamp");
    let rest = rest.trim_start();
    let (level, rest) = rest.split_once(' ').expect("level");
    let (spans, rest) = match rest.split_once(": ") {
        // '\u{7b}' is the opening brace, spelled so brace counters stay balanced.
        Some((spans, rest)) if spans.contains('\u{7b}') || !spans.contains("::") => {
            (spans.to_owned(), rest)
        }
        _ => (String::new(), rest),
    };
    let (target, rest) = rest.split_once(": ").expect("target");
    let (message, fields) = message_and_fields(rest);
    TextLine {
        timestamp: timestamp.to_owned(),
        level: level.to_owned(),
        spans,
        target: target.to_owned(),
        message,
        fields,
    }
}

/// The message words, then `k=v` fields; a quoted value is read as the
/// escaped string it is (the test's values escape only `\n` and `"`).
fn message_and_fields(rest: &str) -> (String, BTreeMap<String, String>) {
    let mut fields = BTreeMap::new();
    let mut message = Vec::new();
    let mut words = rest.split(' ');
    while let Some(word) = words.next() {
        match word.split_once('=') {
            Some((key, value)) if value.starts_with('"') => {
                let mut quoted = value.to_owned();
                while !(quoted.len() > 1 && quoted.ends_with('"') && !quoted.ends_with("\\\"")) {
                    quoted.push(' ');
                    quoted.push_str(words.next().expect("closing quote"));
                }
                let unquoted: String = serde_json::from_str(&quoted).expect("a quoted value");
                fields.insert(key.to_owned(), unquoted);
            }
            Some((key, value)) if is_key(key) => {
                fields.insert(key.to_owned(), value.to_owned());
            }
            _ => message.push(word),
        }
    }
    (message.join(" "), fields)
}

/// A field name (a word with `=` in the message would not be one).
fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[test]
fn text_lines_are_one_line_each_and_parse_into_their_parts() {
    let lines = lines(LineShape::Text, every_kind_of_value);
    assert_eq!(lines.len(), 1, "a newline is escaped: {lines:?}");
    let line = parse_text(&lines[0]);
    assert!(line.timestamp.len() == 27 && line.timestamp.ends_with('Z'));
    assert_eq!(line.level, "WARN");
    assert_eq!(line.spans, "rpc{method=SendOtp phone=+1******0166}");
    assert_eq!(line.target, module_path!());
    assert_eq!(line.message, "sent \"it\"\\nsecond line");
    let field = |key: &str| line.fields.get(key).map(String::as_str);
    assert_eq!(field("count"), Some("3"));
    assert_eq!(field("delta"), Some("-2"));
    assert_eq!(field("latency_ms"), Some("1.25"));
    assert_eq!(field("ok"), Some("true"));
    assert_eq!(field("kind"), Some("Some(\"x\")"));
    assert_eq!(field("quoted"), Some("two words and \"quotes\"\nnew line"));
    assert_eq!(field("error"), Some("store unreachable: refused"));
}

#[test]
fn a_line_outside_spans_has_no_scope_and_info_is_padded() {
    let lines = lines(LineShape::Text, || {
        tracing::info!(port = 50051_u64, "listening")
    });
    let line = parse_text(&lines[0]);
    assert!(lines[0][27..].starts_with("  INFO "), "{}", lines[0]);
    assert_eq!(line.spans, "");
    assert_eq!(line.message, "listening");
    assert_eq!(line.fields.get("port").map(String::as_str), Some("50051"));
    let json = self::lines(LineShape::Json, || tracing::info!("listening"));
    let json: serde_json::Value = serde_json::from_str(&json[0]).expect("JSON");
    assert!(json.get("span").is_none(), "{json}");
}

#[test]
fn events_bridged_from_log_take_their_target_from_log_target() {
    let bridged = || {
        tracing::info!(
            target: "log",
            { log.target = "h2::codec", log.module_path = "h2::codec", log.line = 7_u64 },
            "frame"
        );
    };
    let json = lines(LineShape::Json, bridged);
    let json: serde_json::Value = serde_json::from_str(&json[0]).expect("JSON");
    assert_eq!(json["target"], "h2::codec");
    assert_eq!(json["fields"], serde_json::json!({"message": "frame"}));
    let text = lines(LineShape::Text, bridged);
    let line = parse_text(&text[0]);
    assert_eq!(line.target, "h2::codec");
    assert!(line.fields.is_empty(), "{}", text[0]);
}
