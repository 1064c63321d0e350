//! The settings as a whole: defaults, ranges, empty values, secrets.

use super::test_support::{assert_refused, config};
use super::*;

#[test]
fn defaults_give_a_loopback_service_with_six_digit_codes() {
    let config = config(&[]).expect("defaults are valid");
    assert_eq!(config.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
    assert_eq!(config.policy.code_length, 6);
    assert_eq!(config.policy.ttl, Duration::from_secs(120));
    assert_eq!(config.policy.grace, Duration::from_secs(10));
    assert_eq!(config.policy.max_attempts, 5);
    assert_eq!(
        config.hmac_secret_source,
        SecretSource::GeneratedForThisProcess
    );
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.store, StoreConfig::Memory);
}

#[test]
fn out_of_range_values_name_the_variable_and_the_range() {
    let cases = [
        ("OTP_CODE_LENGTH", "3", "from 4 to 10"),
        ("OTP_CODE_LENGTH", "six", "from 4 to 10"),
        ("OTP_TTL_SECONDS", "601", "from 1 to 600"),
        ("OTP_TTL_SECONDS", "0", "from 1 to 600"),
        ("OTP_GRACE_SECONDS", "-1", "from 0 to 60"),
        ("OTP_MAX_ATTEMPTS", "0", "from 1 to 20"),
        ("OTP_LISTEN_ADDR", "localhost", "invalid socket address"),
        ("OTP_LOG_FORMAT", "xml", "one of `text`, `json`"),
        ("OTP_SMS_GATEWAY", "pigeon", "must be"),
        ("OTP_REDIS_PREFIX", "otp{x}", "1 to 64 characters"),
        ("OTP_REDIS_POOL_SIZE", "0", "from 1 to 1024"),
        ("OTP_REDIS_TIMEOUT_MS", "5", "from 10 to 60000"),
        ("REDIS_URL", "localhost:6379", "redis://"),
        (
            "OTP_ANDROID_APP_HASH",
            "short",
            "app hash that Android's AppSignatureHelper prints",
        ),
    ];
    for (var, value, expected) in cases {
        assert_refused(&[(var, value)], var, expected);
    }
}

#[test]
fn short_secret_is_refused_without_echoing_it() {
    let err = config(&[("OTP_HMAC_SECRET", "hunter2")]).expect_err("too short");
    assert_eq!(err.var, "OTP_HMAC_SECRET");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn configured_secret_is_used() {
    let secret = "0123456789abcdef0123456789abcdef";
    let config = config(&[("OTP_HMAC_SECRET", secret)]).expect("valid");
    assert_eq!(config.hmac_secret_source, SecretSource::Environment);
    assert_eq!(config.hmac_secret, HmacSecret::new(secret.as_bytes()));
}

#[test]
fn metrics_default_to_loopback_and_empty_turns_them_off() {
    assert_eq!(
        config(&[])
            .expect("valid")
            .metrics_addr
            .map(|a| a.to_string())
            .as_deref(),
        Some(DEFAULT_METRICS_ADDR)
    );
    assert_eq!(
        config(&[("OTP_METRICS_ADDR", "")])
            .expect("valid")
            .metrics_addr,
        None
    );
    let err = config(&[("OTP_METRICS_ADDR", "9464")]).expect_err("no host");
    assert_eq!(err.var, "OTP_METRICS_ADDR");
}

#[test]
fn send_limits_have_safe_defaults() {
    let limits = config(&[]).expect("valid").limits;
    assert_eq!(limits.resend_cooldown, Duration::from_secs(30));
    assert_eq!(limits.phone_limit, 5);
    assert_eq!(limits.window, Duration::from_secs(600));
    assert_eq!(limits.phone_daily_limit, 10);
    assert_eq!(limits.client_limit, 20);
    assert_eq!(limits.anonymous_limit, 50);
    assert_eq!(limits.caller_limit, 300, "half the global cap");
    assert_eq!(limits.global_per_minute, Some(DEFAULT_GLOBAL_SEND_LIMIT));
    let raised = config(&[("OTP_GLOBAL_SEND_LIMIT", "500")])
        .expect("valid")
        .limits;
    assert_eq!(raised.global_per_minute, Some(500));
    let off = config(&[("OTP_GLOBAL_SEND_LIMIT", "0")])
        .expect("valid")
        .limits;
    assert_eq!(off.global_per_minute, None);
}

#[test]
fn verify_limits_have_generous_but_finite_defaults() {
    let limits = config(&[]).expect("valid").verify_limits;
    assert_eq!(limits.client_limit, 300);
    assert_eq!(limits.anonymous_limit, 3_000);
    assert_eq!(limits.caller_limit, 3_000);
    assert_eq!(limits.window, Duration::from_secs(600));
    assert_eq!(limits.global_per_minute, Some(600), "10 per allowed send");
    let raised = config(&[("OTP_GLOBAL_SEND_LIMIT", "500")]).expect("valid");
    assert_eq!(raised.verify_limits.global_per_minute, Some(5_000));
    let off = config(&[("OTP_GLOBAL_VERIFY_LIMIT", "0")]).expect("valid");
    assert_eq!(off.verify_limits.global_per_minute, None);
    for var in [
        "OTP_CLIENT_VERIFY_LIMIT",
        "OTP_ANONYMOUS_VERIFY_LIMIT",
        "OTP_CALLER_VERIFY_LIMIT",
    ] {
        assert_refused(&[(var, "0")], var, "from 1 to 1000000");
    }
    assert_refused(
        &[("OTP_VERIFY_WINDOW_SECONDS", "86401")],
        "OTP_VERIFY_WINDOW_SECONDS",
        "from 1 to 86400",
    );
}

#[test]
fn abuse_settings_are_validated() {
    let cases = [
        ("OTP_ALLOWED_COUNTRIES", "US,USA", "ISO 3166-1"),
        ("OTP_DENIED_COUNTRIES", "9", "ISO 3166-1"),
        ("OTP_TEST_NUMBERS", "+15005550006=12", "exactly 6 digits"),
        ("OTP_TEST_NUMBERS", "15005550006", "form"),
        ("OTP_SEND_LIMIT", "0", "from 1 to 1000"),
        ("OTP_ANONYMOUS_SEND_LIMIT", "0", "from 1 to 100000"),
        ("OTP_RESEND_COOLDOWN_SECONDS", "3601", "from 0 to 3600"),
    ];
    for (var, value, expected) in cases {
        let err = config(&[(var, value)]).expect_err(var);
        assert_eq!(err.var, var, "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn empty_values_mean_unset() {
    let config = config(&[("OTP_CODE_LENGTH", ""), ("OTP_LOG_FORMAT", " ")]).expect("valid");
    assert_eq!(config.policy.code_length, 6);
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn redis_requires_a_shared_secret() {
    let err = config(&[("REDIS_URL", "redis://cache:6379")]).expect_err("no secret");
    assert_eq!(err.var, "OTP_HMAC_SECRET");
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}

#[test]
fn every_redis_mode_requires_a_shared_secret() {
    for vars in [
        vec![("REDIS_CLUSTER_URLS", "redis://h:7000")],
        vec![
            ("REDIS_SENTINEL_URLS", "redis://s:26379"),
            ("REDIS_SENTINEL_MASTER", "m"),
        ],
    ] {
        let err = config(&vars).expect_err("no secret");
        assert_eq!(err.var, "OTP_HMAC_SECRET", "{vars:?}");
    }
}

#[test]
fn country_codes_must_be_regions_a_number_can_have() {
    let line = assert_refused(
        &[("OTP_ALLOWED_COUNTRIES", "UK,US")],
        "OTP_ALLOWED_COUNTRIES",
        "`UK` is not a country code",
    );
    assert!(line.contains("the United Kingdom is GB"), "{line}");
    for code in ["XX", "EU"] {
        assert_refused(
            &[("OTP_ALLOWED_COUNTRIES", &format!("US,{code}"))],
            "OTP_ALLOWED_COUNTRIES",
            &format!("`{code}`"),
        );
        assert_refused(
            &[("OTP_DENIED_COUNTRIES", code)],
            "OTP_DENIED_COUNTRIES",
            &format!("`{code}`"),
        );
    }
    let allowed = config(&[("OTP_ALLOWED_COUNTRIES", "gb, us")]).expect("valid");
    assert_eq!(allowed.countries.to_string(), "allowed=GB,US");
}

#[test]
fn a_country_list_of_separators_only_is_refused() {
    for var in ["OTP_ALLOWED_COUNTRIES", "OTP_DENIED_COUNTRIES"] {
        assert_refused(&[(var, ",")], var, "names no country");
        assert_refused(&[(var, " ,, ")], var, "names no country");
    }
}

#[test]
fn a_country_both_allowed_and_denied_starts_denied() {
    let config = config(&[
        ("OTP_ALLOWED_COUNTRIES", "US,GB"),
        ("OTP_DENIED_COUNTRIES", "US"),
    ])
    .expect("denied wins, as before: a warning, not a refusal");
    assert_eq!(config.countries.in_both(), ["US"]);
}

#[test]
fn route_countries_must_be_regions_a_number_can_have() {
    assert_refused(
        &[("OTP_SMS_ROUTES", "UK=console;*=console")],
        "OTP_SMS_ROUTES",
        "`UK` is not a country code",
    );
}

#[test]
fn a_test_number_listed_twice_is_refused_with_the_number_masked() {
    let line = assert_refused(
        &[(
            "OTP_TEST_NUMBERS",
            "+15005550006=123456,+15005550006=654321",
        )],
        "OTP_TEST_NUMBERS",
        "entry 2: +1******0006 is already listed",
    );
    assert!(!line.contains("5005550006"), "{line}");
}
