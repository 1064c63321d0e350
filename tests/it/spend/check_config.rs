//! The prices file on the real binary: a bad entry stops it with one line
//! naming the entry (exit 2), and `check-config` states the spend caps and
//! the worst case per hour they allow.

use super::prices_file;
use crate::common::binary::run_args_to_exit;

/// Runs the binary with `args` and exactly `vars` on a blocking thread.
async fn run(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_args_to_exit(&args, &vars)
    })
    .await
    .expect("joined")
}

#[tokio::test]
async fn a_negative_price_stops_the_service_with_one_line_naming_the_entry() {
    let (_dir, prices) = prices_file("currency = \"USD\"\n[console]\nUS = { sms = -0.01 }\n");
    for args in [&[][..], &["check-config"][..]] {
        let (code, _, stderr) = run(args, &[("OTP_PRICES_FILE", &prices)]).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("OTP_PRICES_FILE")
                && lines[0].contains("entry `console.US.sms` is negative"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn check_config_states_the_spend_caps_and_the_worst_case_per_hour() {
    let (_dir, prices) = prices_file("currency = \"EUR\"\n[console]\n\"*\" = { sms = \"0.05\" }\n");
    let (code, stdout, stderr) = run(
        &["check-config"],
        &[
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_DAY", "100"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    // 60 sends a minute × 60 × 0.05 = 180 an hour; the daily cap, 100, is lower.
    assert!(
        stdout.contains(
            "spend caps in force (EUR): per hour off, per day 100, per caller per day off; \
             worst case 100 EUR per hour (global send cap at the highest price: 180 EUR; \
             spend caps: 100 EUR)"
        ),
        "{stdout}"
    );
}
