use std::time::Duration;

use super::*;
use crate::config::test_support::{self, config};

const URL: &str = "https://api.textbee.dev/api/v1/gateway/devices/dev123/send-sms";
const KEY: &str = "tb_test_key_0123";
const TWILIO: [(&str, &str); 3] = [
    (
        "OTP_TWILIO_ACCOUNT_SID",
        "AC0123456789abcdef0123456789abcdef",
    ),
    ("OTP_TWILIO_AUTH_TOKEN", "twilio_token_secret_0123"),
    ("OTP_TWILIO_FROM", "+14155550100"),
];
const VONAGE: [(&str, &str); 3] = [
    ("OTP_VONAGE_API_KEY", "abcd1234"),
    ("OTP_VONAGE_API_SECRET", "vonage_secret_0123"),
    ("OTP_VONAGE_FROM", "Acme"),
];

fn sms(vars: &[(&str, &str)]) -> SmsConfig {
    config(vars).expect("valid").sms
}

fn with<'a>(base: &[(&'a str, &'a str)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(more).copied().collect()
}

/// Startup stops with one line that names `var`, says `expected`, and
/// never echoes a credential.
fn assert_refused(vars: &[(&str, &str)], var: &str, expected: &str) {
    let line = test_support::assert_refused(vars, var, expected);
    for secret in [KEY, TWILIO[1].1, VONAGE[1].1] {
        assert!(!line.contains(secret), "secret echoed: {line}");
    }
}

#[test]
fn console_is_the_default_without_provider_variables() {
    let sms = sms(&[]);
    assert_eq!(sms.routes, RouteTable::single(ProviderName::Console));
    assert!(sms.sms_is_console_only());
    assert_eq!(sms.breaker, BreakerSettings::OFF);
}

#[test]
fn both_textbee_variables_select_textbee_with_default_timeouts() {
    let sms = sms(&[("SMS_SENDER_API", URL), ("TEXTBEE_API_KEY", KEY)]);
    assert_eq!(sms.routes, RouteTable::single(ProviderName::TextBee));
    let textbee = sms.providers.textbee.expect("textbee settings");
    assert_eq!(textbee.url.as_str(), URL);
    assert_eq!(textbee.api_key.expose(), KEY);
    assert_eq!(sms.sending.connect_timeout, Duration::from_secs(2));
    assert_eq!(sms.sending.send_timeout, Duration::from_secs(5));
    assert_eq!(sms.sending.max_retries, 2);
    assert_eq!(
        sms.breaker,
        BreakerSettings::OFF,
        "one gateway: as before routes"
    );
}

#[test]
fn explicit_choice_wins_and_settings_are_read() {
    let sms = sms(&[
        ("OTP_SMS_GATEWAY", "textbee"),
        (
            "SMS_SENDER_API",
            "http://textbee.internal:3005/api/v1/gateway/devices/d/send-sms",
        ),
        ("TEXTBEE_API_KEY", KEY),
        ("OTP_SMS_CONNECT_TIMEOUT_MS", "250"),
        ("OTP_SMS_SEND_TIMEOUT_MS", "1500"),
        ("OTP_SMS_MAX_RETRIES", "0"),
    ]);
    assert_eq!(sms.sending.connect_timeout, Duration::from_millis(250));
    assert_eq!(sms.sending.send_timeout, Duration::from_millis(1500));
    assert_eq!(sms.sending.max_retries, 0);
    let console = config(&[
        ("OTP_SMS_GATEWAY", "console"),
        ("SMS_SENDER_API", URL),
        ("TEXTBEE_API_KEY", KEY),
    ])
    .expect("valid");
    assert!(console.sms.sms_is_console_only());
    let twilio = config(&with(&TWILIO, &[("OTP_SMS_GATEWAY", "twilio")])).expect("valid");
    assert_eq!(twilio.sms.routes, RouteTable::single(ProviderName::Twilio));
}

#[test]
fn debug_output_never_shows_a_credential() {
    let vars = with(
        &with(&TWILIO, &VONAGE),
        &[
            ("SMS_SENDER_API", URL),
            ("TEXTBEE_API_KEY", KEY),
            ("OTP_SMS_ROUTES", "US=twilio; *=textbee,vonage"),
        ],
    );
    let debug = format!("{:?}", config(&vars).expect("valid"));
    for secret in [KEY, TWILIO[1].1, VONAGE[1].1] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn unknown_gateway_is_refused() {
    assert_refused(
        &[("OTP_SMS_GATEWAY", "pigeon")],
        "OTP_SMS_GATEWAY",
        "`console`, `textbee`, `twilio`",
    );
}

#[test]
fn a_selected_provider_needs_its_variables() {
    assert_refused(
        &[("OTP_SMS_GATEWAY", "twilio")],
        "OTP_SMS_GATEWAY",
        "names `twilio`, but OTP_TWILIO_ACCOUNT_SID is not set",
    );
    // Another provider's variables alone would be ignored: refused.
    assert_refused(&TWILIO, "OTP_SMS_GATEWAY", "OTP_SMS_GATEWAY=twilio");
}

#[test]
fn timeouts_retries_and_breaker_must_be_in_range() {
    for (var, value, expected) in [
        ("OTP_SMS_CONNECT_TIMEOUT_MS", "10", "from 50 to 30000"),
        ("OTP_SMS_CONNECT_TIMEOUT_MS", "2s", "from 50 to 30000"),
        ("OTP_SMS_SEND_TIMEOUT_MS", "99", "from 100 to 60000"),
        ("OTP_SMS_SEND_TIMEOUT_MS", "60001", "from 100 to 60000"),
        ("OTP_SMS_MAX_RETRIES", "6", "from 0 to 5"),
        ("OTP_SMS_MAX_RETRIES", "-1", "from 0 to 5"),
        ("OTP_SMS_BREAKER_FAILURES", "0", "from 1 to 100"),
        ("OTP_SMS_BREAKER_COOLDOWN_SECONDS", "0", "from 1 to 3600"),
    ] {
        assert_refused(&[(var, value)], var, expected);
    }
}

#[test]
fn the_send_budget_covers_at_least_one_connect() {
    assert_refused(
        &[("OTP_SMS_SEND_TIMEOUT_MS", "1500")],
        "OTP_SMS_SEND_TIMEOUT_MS",
        "at least OTP_SMS_CONNECT_TIMEOUT_MS (2000 ms)",
    );
    let exactly_one_connect = config(&[("OTP_SMS_SEND_TIMEOUT_MS", "2000")])
        .expect("a budget of one connect is accepted");
    assert_eq!(
        exactly_one_connect.sms.sending.send_timeout,
        Duration::from_millis(2000)
    );
}

#[test]
fn routes_name_configured_providers_and_turn_the_breakers_on() {
    let vars = with(
        &with(&TWILIO, &VONAGE),
        &[
            ("SMS_SENDER_API", URL),
            ("TEXTBEE_API_KEY", KEY),
            (
                "OTP_SMS_ROUTES",
                "IN=textbee; US,CA=twilio; *=twilio,vonage",
            ),
            ("OTP_SMS_BREAKER_FAILURES", "3"),
            ("OTP_SMS_BREAKER_COOLDOWN_SECONDS", "60"),
        ],
    );
    let sms = sms(&vars);
    assert_eq!(sms.routes.route_for(|| Some("IN")), [ProviderName::TextBee]);
    assert_eq!(
        sms.routes.route_for(|| Some("GB")),
        [ProviderName::Twilio, ProviderName::Vonage]
    );
    assert!(sms.providers.textbee.is_some() && sms.providers.vonage.is_some());
    assert_eq!(
        sms.breaker,
        BreakerSettings {
            failures: 3,
            cooldown: Duration::from_secs(60)
        }
    );
}

#[test]
fn bad_routes_are_refused_in_one_line() {
    let routes = |raw| with(&TWILIO, &[("OTP_SMS_ROUTES", raw)]);
    assert_refused(&routes("US=twilio"), "OTP_SMS_ROUTES", "default route");
    assert_refused(
        &routes("*=twilio,pigeon"),
        "OTP_SMS_ROUTES",
        "unknown provider `pigeon`",
    );
    assert_refused(
        &routes("US=twilio; *=vonage"),
        "OTP_SMS_ROUTES",
        "names `vonage`, but OTP_VONAGE_API_KEY is not set",
    );
    assert_refused(&routes("*=textbee"), "SMS_SENDER_API", "is required");
    assert_refused(
        &with(&routes("*=twilio"), &[("OTP_SMS_GATEWAY", "twilio")]),
        "OTP_SMS_GATEWAY",
        "cannot be set together with OTP_SMS_ROUTES",
    );
}
