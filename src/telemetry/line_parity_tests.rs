//! The proof that `text_line` and `json_line` write what tracing-subscriber's
//! formatters write for our configuration: the same events, spans and field
//! values go through both, each into its own buffer, with one fixed
//! timestamp (the clock is compared on its own in `line_time`), and every
//! line must match byte for byte.

use std::fmt;

use tracing::{Dispatch, Level, field};
use tracing_subscriber::{
    Layer,
    fmt::{format::Writer, time::FormatTime},
    layer::SubscriberExt,
};

use super::{
    captured_lines::CapturedLines,
    json_line::{JsonLine, JsonSpanFields},
    text_line::{TextFields, TextLine},
};

/// One instant for every line, from both formatters.
#[derive(Clone, Copy)]
struct FixedTime;

impl FormatTime for FixedTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        w.write_str("2026-11-26T18:55:59.226650Z")
    }
}

/// A clock whose text needs JSON escapes and outgrows a short buffer.
#[derive(Clone, Copy)]
struct OddTime;

impl FormatTime for OddTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        w.write_str("a \"clock\" with\nescapes, ")?;
        w.write_str("and long enough to outgrow a timestamp's forty-eight bytes")
    }
}

/// An error with a chain of sources, one of them with a control character.
#[derive(Debug)]
struct Failure {
    text: &'static str,
    source: Option<Box<Failure>>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// A deterministic stream of 64-bit values.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const TRICKY: &[&str] = &[
    "",
    "plain",
    "+1******0166",
    "with \"quotes\"",
    "back\\slash",
    "new\nline\r\ttab",
    "unicode: héllo ✓ 日本 🦀",
    "combining \u{301} first and \u{200b}zero width",
    "ansi \x1b[31mred\x1b[0m bel \x07 bs \x08 ff \x0c del \x7f",
    "c1 \u{85} \u{9b}[31m",
    "nul \0 and \x01 \x1f",
    "apostrophe ' and braces {} and = sign",
];

fn messages() {
    tracing::info!("rpc finished");
    for text in TRICKY {
        tracing::info!("message: {text}");
        tracing::info!(message = *text);
        tracing::warn!(value = *text, "field");
        tracing::info!(shown = %text, debugged = ?text);
    }
    tracing::info!(message = 42_i64);
    tracing::info!(message = 0.5, other = 1);
    tracing::info!(message = ?vec!["a", "b"]);
}

/// Strings, integers, bools, bytes and field names of every spelling.
fn plain_values() {
    tracing::info!(
        grpc.method = "VerifyOtp",
        grpc.code = "OK",
        latency_ms = 0.012_345,
        "rpc finished"
    );
    tracing::info!(
        i = -42_i64,
        u = 42_u64,
        big = u64::MAX,
        min = i64::MIN,
        "ints"
    );
    tracing::info!(wide = 1_i128 << 100, uwide = 1_u128 << 100, "wide ints");
    tracing::info!(t = true, f = false, "bools");
    tracing::info!(bytes = &b"\x00\xffab"[..], empty = &b""[..], "bytes");
    tracing::info!(a.b.c = 1, r#type = "raw", r#loop = ?"raw debug", "names");
    tracing::info!(log.target = "from a field", kept = 1, "log-prefixed field");
    tracing::info!(x = 1);
    tracing::info!(target: "custom::target", "custom target");
}

/// Floats at the edges of Ryū's and the standard library's spellings, then
/// random bit patterns and random decimal magnitudes.
fn float_values() {
    let floats = [
        0.1 + 0.2,
        1e-7,
        1e21,
        1e16,
        1e15,
        9_999_999_999_999_998.0,
        0.0001,
        0.000_099_999,
        0.0,
        -0.0,
        123.456,
        -2.5,
        f64::MIN_POSITIVE,
        f64::MAX,
        5e-324,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    for value in floats {
        tracing::info!(value, "float");
    }
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    for _ in 0..3_000 {
        let value = f64::from_bits(random.next());
        let scaled =
            (random.next() % 1_000_000) as f64 / 1e6 * 10f64.powi((random.next() % 40) as i32 - 20);
        tracing::info!(value, scaled, "random float");
    }
}

/// Errors with and without a chain of sources, as a field and as the message.
fn error_values() {
    let failure = Failure {
        text: "outer",
        source: Some(Box::new(Failure {
            text: "middle \x1b[0m",
            source: Some(Box::new(Failure {
                text: "inner",
                source: None,
            })),
        })),
    };
    tracing::error!(
        error = &failure as &(dyn std::error::Error + 'static),
        "failed"
    );
    let lone = Failure {
        text: "alone \u{9b}",
        source: None,
    };
    tracing::error!(error = &lone as &(dyn std::error::Error + 'static));
    tracing::error!(message = &lone as &(dyn std::error::Error + 'static));
}

fn levels() {
    tracing::trace!("trace");
    tracing::debug!("debug");
    tracing::info!("info");
    tracing::warn!("warn");
    tracing::error!("error");
    tracing::event!(Level::WARN, n = 1);
}

fn spans() {
    let root = tracing::info_span!("root");
    let _root = root.enter();
    tracing::info!("in a span without fields");
    let call = tracing::info_span!("VerifyOtp", phone = field::Empty, caller = field::Empty);
    call.in_scope(|| tracing::info!("before any record"));
    call.record("phone", field::display("+1******0166"));
    call.in_scope(|| tracing::info!(latency_ms = 0.25, "after the phone"));
    call.record("caller", field::display("billing"));
    call.in_scope(|| tracing::info!("after the caller"));
    call.record("phone", "+44*****1234");
    call.in_scope(|| tracing::info!("phone recorded again"));
    let typed = tracing::info_span!(
        "typed",
        z = 1,
        a = "x \"y\"",
        m = -3_i64,
        b = true,
        bytes = &b"\x01\x02"[..],
        d = ?Some(1),
        r#type = "raw",
        dotted.name = 2_u64,
        wide = 7_u128
    );
    typed.in_scope(|| {
        tracing::warn!("nested in typed");
        tracing::info_span!("leaf", name = "a field called name").in_scope(|| {
            tracing::info!(inner = 1, "three deep");
        });
    });
    let floaty = tracing::info_span!("floaty", ratio = 0.1 + 0.2, later = field::Empty);
    floaty.in_scope(|| tracing::info!("float in span"));
    floaty.record("later", 1e-7);
    floaty.in_scope(|| tracing::info!("float recorded later"));
    let nan = tracing::info_span!("nan", value = f64::NAN);
    nan.in_scope(|| tracing::info!("non-finite in span"));
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let value = f64::from_bits(random.next());
        let span = tracing::info_span!("random", value, extra = field::Empty);
        span.in_scope(|| tracing::info!("random span float"));
        span.record("extra", f64::from_bits(random.next()));
        span.in_scope(|| tracing::info!("random span floats"));
    }
    for text in TRICKY {
        let span = tracing::info_span!("tricky", value = *text, later = field::Empty);
        span.record("later", field::debug(text));
        span.in_scope(|| tracing::info!(value = *text, "tricky span"));
    }
    tracing::info!(parent: &call, "explicit parent");
    tracing::info!(parent: None, "explicit root");
    let out_of_scope = tracing::info_span!("never entered", k = 1);
    tracing::info!(parent: &out_of_scope, "parent not entered");
}

fn bridged_from_log() {
    let record = |level, args: fmt::Arguments<'_>| {
        let _ = tracing_log::format_trace(
            &log::Record::builder()
                .level(level)
                .target("some_crate::module")
                .module_path(Some("some_crate::module"))
                .file(Some("src/module.rs"))
                .line(Some(7))
                .args(args)
                .build(),
        );
    };
    record(log::Level::Info, format_args!("from log \"quoted\""));
    record(log::Level::Warn, format_args!("warned"));
    tracing::info_span!("span", k = "v").in_scope(|| {
        record(log::Level::Error, format_args!("in a span"));
    });
}

/// Everything the formatters are compared on.
fn every_kind_of_line() {
    messages();
    plain_values();
    float_values();
    error_values();
    levels();
    spans();
    bridged_from_log();
}

fn lines_from(
    layer: impl Layer<tracing_subscriber::Registry> + Send + Sync,
    lines: &CapturedLines,
) -> Vec<String> {
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, every_kind_of_line);
    lines.text().lines().map(str::to_owned).collect()
}

fn assert_same_lines(theirs: &[String], ours: &[String]) {
    for (at, (theirs, ours)) in theirs.iter().zip(ours).enumerate() {
        assert_eq!(ours, theirs, "line {at} differs");
    }
    assert_eq!(ours.len(), theirs.len(), "line count");
    assert!(theirs.len() > 3_000, "{} lines", theirs.len());
}

#[test]
fn text_lines_are_byte_identical_to_tracing_subscribers() {
    let (theirs, ours) = (CapturedLines::default(), CapturedLines::default());
    let reference = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_timer(FixedTime)
        .with_writer(theirs.clone());
    let fast = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(ours.clone())
        .fmt_fields(TextFields)
        .event_format(TextLine::new(FixedTime));
    assert_same_lines(&lines_from(reference, &theirs), &lines_from(fast, &ours));
}

fn assert_same_json_lines<T: FormatTime + Copy + Send + Sync + 'static>(timer: T) {
    let (theirs, ours) = (CapturedLines::default(), CapturedLines::default());
    let reference = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(theirs.clone())
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_timer(timer);
    let fast = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(ours.clone())
        .fmt_fields(JsonSpanFields)
        .event_format(JsonLine::new(timer));
    let theirs = lines_from(reference, &theirs);
    for line in &theirs {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
    assert_same_lines(&theirs, &lines_from(fast, &ours));
}

#[test]
fn json_lines_are_byte_identical_to_tracing_subscribers() {
    assert_same_json_lines(FixedTime);
}

#[test]
fn json_timestamps_are_escaped_and_may_be_long() {
    assert_same_json_lines(OddTime);
}
