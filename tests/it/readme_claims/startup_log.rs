//! README, "Limits": "The startup log states every cap in force on one line
//! (`caps in force`)", and the warnings it promises for settings fit for
//! development only: the console gateway "says so loudly at startup", the
//! startup log "warns while any [test numbers] are set", `OTP_GLOBAL_SEND_LIMIT=0`
//! "the startup log warns", and a missing `OTP_HMAC_SECRET`.

use wiremock::MockServer;

use crate::common::{
    TEST_SECRET,
    binary::ServiceProcess,
    sms_standins::{pairs, twilio_vars},
};

/// Each development warning: the setting that causes it, and what its line says.
const DEVELOPMENT_WARNINGS: [(&str, &str); 4] = [
    (
        "console gateway",
        "SMS gateway is `console`: codes are printed to stdout",
    ),
    ("no OTP_HMAC_SECRET", "OTP_HMAC_SECRET is not set"),
    ("OTP_TEST_NUMBERS", "OTP_TEST_NUMBERS is set"),
    (
        "OTP_GLOBAL_SEND_LIMIT=0",
        "OTP_GLOBAL_SEND_LIMIT=0: no service-wide send cap",
    ),
];

/// The binary started with `vars` until it listens; its log so far.
fn startup_log(vars: &[(&str, &str)]) -> Vec<String> {
    tokio::task::block_in_place(|| ServiceProcess::start(vars).stop())
}

/// Every configured cap appears, with its configured value, on the one
/// `caps in force` line; a production-like start warns about none of the
/// development settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_startup_log_states_every_cap_in_force_on_one_line() {
    let twilio = MockServer::start().await;
    let mut vars = twilio_vars(&twilio);
    vars.extend(
        [
            ("OTP_SMS_GATEWAY", "twilio"),
            ("OTP_HMAC_SECRET", TEST_SECRET),
            ("OTP_RESEND_COOLDOWN_SECONDS", "37"),
            ("OTP_SEND_WINDOW_SECONDS", "900"),
            ("OTP_SEND_LIMIT", "4"),
            ("OTP_DAILY_SEND_LIMIT", "9"),
            ("OTP_CLIENT_SEND_LIMIT", "23"),
            ("OTP_CALLER_SEND_LIMIT", "777"),
            ("OTP_ANONYMOUS_SEND_LIMIT", "41"),
            ("OTP_GLOBAL_SEND_LIMIT", "59"),
            ("OTP_MAX_ATTEMPTS", "3"),
            ("OTP_CODE_LENGTH", "8"),
            ("OTP_PUMPING_MIN_SENDS", "31"),
            ("OTP_PUMPING_SUSPENSION_SECONDS", "1800"),
            ("OTP_PUMPING_MIN_SOURCES", "4"),
            ("OTP_ALLOWED_COUNTRIES", "GB,US"),
            ("OTP_DENIED_COUNTRIES", "RU"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let log = startup_log(&pairs(&vars));

    let caps: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("caps in force"))
        .collect();
    assert_eq!(caps.len(), 1, "one caps line: {log:#?}");
    let caps = caps[0];
    for cap in [
        "resend_cooldown=37s",
        "phone=4/900s",
        "phone_daily=9/24h",
        "client=23/900s",
        "caller=777/900s",
        "anonymous=41/900s",
        "global=59/min",
        "max_attempts=3",
        "code_length=8",
        "enforce",
        "min_sends=31",
        "suspension=1800s",
        "min_sources=4",
        "allowed=GB,US denied=RU",
    ] {
        assert!(caps.contains(cap), "`{cap}` missing from: {caps}");
    }
    for (setting, warning) in DEVELOPMENT_WARNINGS {
        assert!(
            !log.iter().any(|line| line.contains(warning)),
            "warned about {setting} without it: {log:#?}"
        );
    }
}

/// Each development-only setting gets its warning at startup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_startup_log_warns_about_every_development_setting() {
    let log = startup_log(&[
        ("OTP_TEST_NUMBERS", "+15005550006=123456"),
        ("OTP_GLOBAL_SEND_LIMIT", "0"),
    ]);
    for (setting, warning) in DEVELOPMENT_WARNINGS {
        let line = log
            .iter()
            .find(|line| line.contains(warning))
            .unwrap_or_else(|| panic!("no warning about {setting}: {log:#?}"));
        assert!(line.contains("WARN"), "not a warning: {line}");
    }
    let caps = log
        .iter()
        .find(|line| line.contains("caps in force"))
        .expect("the caps line");
    assert!(caps.contains("global=off"), "{caps}");
}
