//! The load report: a table for people, JSON for scripts.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tonic::Code;

use crate::driver::{Outcome, STATUS_CODES, Tally};

/// What a run measured besides the calls themselves.
pub struct RunFacts {
    pub label: String,
    pub target: String,
    pub mix: String,
    pub connections: usize,
    pub in_flight: usize,
    pub rate: Option<f64>,
    pub measured: Duration,
    pub seeded_phones: usize,
    pub codes_known: usize,
    pub attempts: u64,
    pub verify_budget: u64,
    pub verify_exhausted: u64,
    /// Server CPU seconds and RSS/HWM in KiB, when `--server-pid` was given.
    pub server: Option<ServerFacts>,
    /// The generator's own CPU seconds over the measured window.
    pub client_cpu: Option<f64>,
}

pub struct ServerFacts {
    pub pid: u32,
    pub cpu: Option<f64>,
    pub rss_kib: Option<u64>,
    pub hwm_kib: Option<u64>,
    /// `RssAnon` at the end of the run.
    pub anon_kib: Option<u64>,
    /// PSS at the end of the run.
    pub pss_kib: Option<u64>,
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

fn code_name(index: usize) -> String {
    format!("{:?}", Code::from_i32(index as i32))
}

/// Builds the JSON report (the table is printed from it).
pub fn to_json(facts: &RunFacts, tally: &Tally) -> Value {
    let secs = facts.measured.as_secs_f64();
    let calls = tally.calls();
    let rps = calls as f64 / secs;
    let latency = &tally.latency;
    let quantile = |q: f64| micros(latency.value_at_quantile(q));
    let mut outcomes = Map::new();
    for outcome in Outcome::ALL {
        let count = tally.outcomes[outcome as usize];
        if count > 0 {
            outcomes.insert(outcome.name().to_owned(), json!(count));
        }
    }
    let mut errors = Map::new();
    for (index, count) in tally.errors.iter().enumerate().take(STATUS_CODES) {
        if *count > 0 {
            errors.insert(code_name(index), json!(count));
        }
    }
    let mut report = json!({
        "label": facts.label,
        "target": facts.target,
        "mix": facts.mix,
        "connections": facts.connections,
        "in_flight_per_connection": facts.in_flight,
        "target_rps": facts.rate,
        "measured_seconds": secs,
        "calls": calls,
        "rps": rps,
        "outcomes": outcomes,
        "errors": errors,
        "latency_us": {
            "p50": quantile(0.50),
            "p90": quantile(0.90),
            "p99": quantile(0.99),
            "p99_9": quantile(0.999),
            "max": micros(latency.max()),
            "mean": latency.mean() / 1000.0,
        },
        "seeding": {
            "phones": facts.seeded_phones,
            "codes_known": facts.codes_known,
            "attempts_per_code": facts.attempts,
            "verify_calls_planned": facts.verify_budget,
            "verify_calls_past_plan": facts.verify_exhausted,
        },
    });
    if facts.rate.is_some() && !tally.lag.is_empty() {
        report["schedule_lag_us"] = json!({
            "p50": micros(tally.lag.value_at_quantile(0.50)),
            "p99": micros(tally.lag.value_at_quantile(0.99)),
            "max": micros(tally.lag.max()),
        });
    }
    if let Some(server) = &facts.server {
        report["server"] = json!({
            "pid": server.pid,
            "cpu_percent": server.cpu.map(|cpu| cpu / secs * 100.0),
            "cpu_us_per_call": server.cpu.filter(|_| calls > 0).map(|cpu| cpu * 1e6 / calls as f64),
            "rss_kib": server.rss_kib,
            "peak_rss_kib": server.hwm_kib,
            "rss_anon_kib": server.anon_kib,
            "pss_kib": server.pss_kib,
        });
    }
    if let Some(cpu) = facts.client_cpu {
        report["client_cpu_percent"] = json!(cpu / secs * 100.0);
    }
    report
}

/// Prints the report as a table.
pub fn print_table(report: &Value) {
    let number = |path: &[&str]| {
        path.iter()
            .try_fold(report, |value, key| value.get(key))
            .and_then(Value::as_f64)
    };
    let show = |value: Option<f64>, digits: usize| {
        value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    println!("== {} ==", report["label"].as_str().unwrap_or(""));
    println!(
        "  target {}  mix {}  {} conn x {} in flight{}",
        report["target"].as_str().unwrap_or(""),
        report["mix"].as_str().unwrap_or(""),
        report["connections"],
        report["in_flight_per_connection"],
        number(&["target_rps"]).map_or_else(String::new, |r| format!("  open loop at {r:.0} rps")),
    );
    println!(
        "  {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}   (latency in µs)",
        "rps", "p50", "p90", "p99", "p99.9", "max"
    );
    println!(
        "  {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        show(number(&["rps"]), 0),
        show(number(&["latency_us", "p50"]), 0),
        show(number(&["latency_us", "p90"]), 0),
        show(number(&["latency_us", "p99"]), 0),
        show(number(&["latency_us", "p99_9"]), 0),
        show(number(&["latency_us", "max"]), 0),
    );
    for (name, count) in report["outcomes"].as_object().into_iter().flatten() {
        println!("  {name:<20} {count}");
    }
    for (name, count) in report["errors"].as_object().into_iter().flatten() {
        println!("  error {name:<14} {count}");
    }
    if report.get("schedule_lag_us").is_some() {
        println!(
            "  schedule lag p99 {} µs, max {} µs",
            show(number(&["schedule_lag_us", "p99"]), 0),
            show(number(&["schedule_lag_us", "max"]), 0),
        );
    }
    if report.get("server").is_some() {
        println!(
            "  server: CPU {}% ({} µs/call), RSS {} KiB (RssAnon {}, PSS {}), peak {} KiB",
            show(number(&["server", "cpu_percent"]), 0),
            show(number(&["server", "cpu_us_per_call"]), 1),
            show(number(&["server", "rss_kib"]), 0),
            show(number(&["server", "rss_anon_kib"]), 0),
            show(number(&["server", "pss_kib"]), 0),
            show(number(&["server", "peak_rss_kib"]), 0),
        );
    }
    if let Some(cpu) = number(&["client_cpu_percent"]) {
        println!("  load generator: CPU {cpu:.0}%");
    }
    let past_plan = number(&["seeding", "verify_calls_past_plan"]).unwrap_or(0.0);
    if past_plan > 0.0 {
        println!(
            "  note: {past_plan:.0} verify calls came after every seeded code was spent; \
             use more --phones"
        );
    }
}
