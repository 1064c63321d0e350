//! The command line on the real binary: `--help`, `--version`, a refused
//! value, flags beside their variables, and `check-config`.

use crate::common::{RedisServer, TEST_SECRET, binary::run_args_to_exit};

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
async fn help_lists_every_setting_with_its_variable_default_and_range() {
    let (code, stdout, stderr) = run(&["--help"], &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    for shown in [
        "check-config",
        "--code-length <CODE_LENGTH>",
        "[env: OTP_CODE_LENGTH]",
        "[default: 6]",
        "[4-10]",
        "--hmac-secret <SECRET>",
        "[env: REDIS_URL]",
        "[env: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL]",
        "[possible values: text, json]",
    ] {
        assert!(stdout.contains(shown), "{shown} missing from:\n{stdout}");
    }
}

#[tokio::test]
async fn help_never_shows_a_value_from_the_environment() {
    let secret = "help-must-not-show-this-secret-0123456789";
    let (code, stdout, _) = run(&["--help"], &[("OTP_HMAC_SECRET", secret)]).await;
    assert_eq!(code, Some(0));
    assert!(!stdout.contains(secret), "{stdout}");
}

#[tokio::test]
async fn version_prints_the_crate_version() {
    let (code, stdout, stderr) = run(&["--version"], &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("otp-service {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn a_bad_value_stops_the_binary_with_one_line_naming_the_variable() {
    for (args, vars) in [
        (vec![], vec![("OTP_CODE_LENGTH", "3")]),
        (vec!["--code-length=3"], vec![]),
        (vec!["check-config", "--code-length", "3"], vec![]),
    ] {
        let (code, _, stderr) = run(&args, &vars).await;
        assert_eq!(code, Some(2), "{args:?} {vars:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].contains("OTP_CODE_LENGTH: must be a whole number from 4 to 10"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn a_refused_secret_is_never_echoed() {
    let (code, _, stderr) = run(&["check-config", "--hmac-secret=hunter2"], &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("OTP_HMAC_SECRET"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test]
async fn a_flag_wins_over_its_variable_and_an_empty_variable_is_unset() {
    let (code, stdout, stderr) = run(
        &["check-config", "--send-limit", "7"],
        &[
            ("OTP_SEND_LIMIT", "3"),
            ("OTP_CODE_LENGTH", ""),
            ("OTP_LOG_FORMAT", " "),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("OTP_SEND_LIMIT=7\n"), "{stdout}");
    assert!(stdout.contains("OTP_CODE_LENGTH=6 (default)"), "{stdout}");
    assert!(stdout.contains("OTP_LOG_FORMAT=text (default)"), "{stdout}");
    assert!(
        stdout.contains("warning: OTP_HMAC_SECRET is not set"),
        "{stdout}"
    );
}

#[tokio::test]
async fn an_unknown_flag_is_a_usage_error() {
    let (code, _, stderr) = run(&["--code-lenght=6"], &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--code-length"),
        "suggests the flag: {stderr}"
    );
}

#[tokio::test]
async fn check_config_prints_the_settings_and_caps_with_secrets_redacted() {
    let redis = RedisServer::start().await;
    let (code, stdout, stderr) = run(
        &["check-config"],
        &[
            ("REDIS_URL", &redis.url()),
            ("OTP_HMAC_SECRET", TEST_SECRET),
            ("OTP_SMS_GATEWAY", "console"),
            ("OTP_SMS_WEBHOOK_URL", "https://sms.example/send"),
            (
                "OTP_SMS_WEBHOOK_SECRET",
                "webhook-secret-webhook-secret-0123456",
            ),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("OTP_HMAC_SECRET=<redacted>"), "{stdout}");
    assert!(
        stdout.contains("OTP_SMS_WEBHOOK_SECRET=<redacted>"),
        "{stdout}"
    );
    assert!(stdout.contains("REDIS_URL=<redacted>"), "{stdout}");
    assert!(stdout.contains("OTP_SEND_LIMIT=5 (default)"), "{stdout}");
    assert!(stdout.contains("OTP_TLS_CERT_FILE (unset)"), "{stdout}");
    assert!(stdout.contains("caps in force: "), "{stdout}");
    // The caps a variable leaves unset but a default derives (the global
    // verify cap: 10 per send the global send cap allows) are stated too.
    assert!(
        stdout.contains(
            "verify limits client=300/600s anonymous=3000/600s caller=3000/600s global=600/min"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("countries all"), "{stdout}");
    assert!(stdout.contains("store: Redis"), "{stdout}");
    assert!(stdout.ends_with("configuration OK"), "{stdout}");
    for secret in [TEST_SECRET, "webhook-secret-webhook-secret-0123456"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

#[tokio::test]
async fn check_config_exits_2_when_the_store_cannot_be_reached() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let (code, stdout, stderr) = run(
        &["check-config"],
        &[
            ("REDIS_URL", &url),
            ("OTP_HMAC_SECRET", TEST_SECRET),
            ("OTP_SMS_GATEWAY", "console"),
            ("OTP_REDIS_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("store"), "{stderr}");
    // Which store, where: the host and port, the password masked.
    assert!(
        lines[0].contains(&format!("127.0.0.1:{port}")) && lines[0].contains("not reachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2") && !stdout.contains("hunter2"));
}

/// check-config says what the server would warn about at startup: a
/// listener open beyond loopback without caller authentication, a template
/// longer than one SMS, a per-caller spend cap that holds nobody.
#[tokio::test]
async fn check_config_warns_as_the_server_would_at_startup() {
    let dir = crate::common::tls::CertDir::new();
    let prices = dir.write(
        "prices.toml",
        "currency = \"USD\"\n[webhook]\n\"*\" = { sms = \"0.01\" }\n",
    );
    let long = "Your {app} code is {code}. ".repeat(8);
    let (code, stdout, stderr) = run(
        &["check-config"],
        &[
            ("OTP_HMAC_SECRET", TEST_SECRET),
            ("OTP_LISTEN_ADDR", "0.0.0.0:50051"),
            ("OTP_MESSAGE_TEMPLATE", &long),
            ("OTP_PRICES_FILE", &prices),
            ("OTP_CALLER_SPEND_LIMIT_PER_DAY", "5"),
            ("OTP_ALLOWED_COUNTRIES", "US,GB"),
            ("OTP_DENIED_COUNTRIES", "us"),
            ("OTP_SMS_GATEWAY", "webhook"),
            ("OTP_SMS_WEBHOOK_URL", "http://sms.internal/send"),
            (
                "OTP_SMS_WEBHOOK_SECRET",
                "webhook-secret-webhook-secret-0123456",
            ),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    for warning in [
        "warning: OTP_SMS_WEBHOOK_URL is plain http",
        "warning: US in both OTP_ALLOWED_COUNTRIES and OTP_DENIED_COUNTRIES: denied",
        "warning: no caller authentication",
        "warning: the `default` message template takes 2 SMS segments",
        "warning: OTP_CALLER_SPEND_LIMIT_PER_DAY is set but no caller is ever authenticated",
    ] {
        assert!(
            stdout.contains(warning),
            "{warning} missing from:\n{stdout}"
        );
    }
}

#[tokio::test]
async fn check_config_exits_2_on_a_bad_templates_file() {
    let dir = std::env::temp_dir().join(format!("otp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("templates.toml");
    std::fs::write(&file, "en = \"no code placeholder\"\n").expect("written");
    let (code, _, stderr) = run(
        &["check-config"],
        &[(
            "OTP_MESSAGE_TEMPLATES_FILE",
            file.to_str().expect("utf-8 path"),
        )],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("OTP_MESSAGE_TEMPLATES_FILE"), "{stderr}");
}

#[tokio::test]
async fn check_config_exits_2_on_a_certificate_that_does_not_load() {
    let dir = std::env::temp_dir().join(format!("otp-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, "not a certificate\n").expect("written");
    std::fs::write(&key, "not a key\n").expect("written");
    let (code, _, stderr) = run(
        &["check-config"],
        &[
            ("OTP_TLS_CERT_FILE", cert.to_str().expect("utf-8 path")),
            ("OTP_TLS_KEY_FILE", key.to_str().expect("utf-8 path")),
        ],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
}

/// Routes for another channel leave SMS on the console: check-config still
/// warns that codes and numbers go to stdout.
#[tokio::test]
async fn check_config_warns_of_the_console_beside_other_channels() {
    let (code, stdout, stderr) = run(
        &["check-config"],
        &[
            ("OTP_HMAC_SECRET", TEST_SECRET),
            (
                "OTP_TWILIO_ACCOUNT_SID",
                "AC0123456789abcdef0123456789abcdef",
            ),
            ("OTP_TWILIO_AUTH_TOKEN", "twilio_token_secret_0123"),
            ("OTP_TWILIO_VOICE_FROM", "+14155550122"),
            ("OTP_VOICE_ROUTES", "*=twilio_voice"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("warning: the console gateway prints codes and full numbers to stdout"),
        "{stdout}"
    );
}

/// A callers file that names nobody refuses every call: check-config says so.
#[tokio::test]
async fn check_config_warns_of_a_callers_file_naming_nobody() {
    let dir = crate::common::tls::CertDir::new();
    let file = dir.write("callers", "# nobody yet\n");
    let (code, stdout, stderr) = run(&["check-config"], &[("OTP_CALLERS_FILE", &file)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("warning: OTP_CALLERS_FILE lists no caller: every call is refused"),
        "{stdout}"
    );
}

/// An address already taken stops startup with one line naming the setting
/// (logged once: no second copy on stderr).
#[tokio::test]
async fn a_taken_listen_address_names_its_variable_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, _, stderr) = run(&[], &[("OTP_LISTEN_ADDR", &addr), ("OTP_METRICS_ADDR", "")]).await;
    assert_eq!(code, Some(1), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("cannot listen on"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains(&format!("{addr} (OTP_LISTEN_ADDR)")),
        "{stderr}"
    );
    // With the log off it is still said, once, plainly.
    let quiet = [
        ("OTP_LISTEN_ADDR", addr.as_str()),
        ("OTP_METRICS_ADDR", ""),
        ("RUST_LOG", "off"),
    ];
    let (code, _, stderr) = run(&[], &quiet).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "otp-service: cannot start: cannot listen on {addr} (OTP_LISTEN_ADDR): Address already in use (os error 98)"
        )
    );
}

#[tokio::test]
async fn check_config_reads_padded_variables_as_the_server_does() {
    let vars = [("OTP_CODE_LENGTH", " 7"), ("OTP_PUMPING_GUARD", "monitor ")];
    let (code, stdout, stderr) = run(&["check-config"], &vars).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("OTP_CODE_LENGTH=7\n"), "{stdout}");
    assert!(stdout.contains("code length 7;"), "{stdout}");
    assert!(stdout.contains("pumping guard monitor "), "{stdout}");
    // A flag after the action still wins over its (padded) variable.
    let (code, stdout, stderr) = run(&["check-config", "--code-length=8"], &vars).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("code length 8;"), "{stdout}");
}

#[tokio::test]
async fn help_names_each_variable_even_when_it_is_set() {
    for args in [vec!["--help"], vec!["check-config", "--help"]] {
        let (code, stdout, stderr) = run(&args, &[("OTP_CODE_LENGTH", " 7")]).await;
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains("[env: OTP_CODE_LENGTH]"), "{stdout}");
    }
}

#[tokio::test]
async fn a_bad_boolean_is_one_line_naming_the_variable_and_what_it_takes() {
    for var in ["OTP_REDIS_ALLOW_EVICTION", "OTEL_SDK_DISABLED"] {
        for value in ["garbage", "maybe"] {
            let (code, _, stderr) = run(&["check-config"], &[(var, value)]).await;
            assert_eq!(code, Some(2), "{var}={value}: {stderr}");
            assert_eq!(
                stderr.trim_end(),
                format!(
                    "otp-service: invalid configuration: {var}: must be one of `true`, `false` \
                     (got `{value}`)"
                )
            );
        }
    }
    let (code, stdout, stderr) = run(&["check-config"], &[("OTEL_SDK_DISABLED", "TRUE")]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("OTEL_SDK_DISABLED=TRUE\n"), "{stdout}");
    // The spellings booleans took before --help listed values still work
    // (a deployment that wrote `1` does not break; config tests check the value).
    for value in ["1", "yes", "Off", "0"] {
        let (code, _, stderr) = run(&["check-config"], &[("OTEL_SDK_DISABLED", value)]).await;
        assert_eq!(code, Some(0), "{value}: {stderr}");
    }
    // --help lists exactly what is accepted.
    let (_, help, _) = run(&["--help"], &[]).await;
    let eviction = help
        .split("--redis-allow-eviction")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .expect("the flag is in --help");
    assert!(
        eviction.contains("[possible values: true, false]"),
        "{eviction}"
    );
}

#[tokio::test]
async fn a_flag_without_a_value_says_what_the_setting_takes() {
    for (args, expected) in [
        (
            vec!["check-config", "--send-limit"],
            "OTP_SEND_LIMIT: needs a value: a whole number from 1 to 1000",
        ),
        (
            vec!["check-config", "--code-length", ""],
            "OTP_CODE_LENGTH: needs a value: a whole number from 4 to 10",
        ),
        (
            vec!["--log-format="],
            "OTP_LOG_FORMAT: needs a value: one of `text`, `json`",
        ),
    ] {
        let (code, _, stderr) = run(&args, &[]).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!("otp-service: invalid configuration: {expected}"),
            "{args:?}"
        );
    }
}

/// The shipped example prices file passes check-config as a newcomer tries
/// it: with the defaults (the console gateway routes SMS).
#[tokio::test]
async fn the_example_prices_file_passes_check_config_with_the_defaults() {
    let prices = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prices.example.toml");
    let (code, stdout, stderr) = run(&["check-config"], &[("OTP_PRICES_FILE", prices)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("spend caps in force (USD)"), "{stdout}");
}

/// An evicting Redis the operator accepted passes check-config, which says
/// what was accepted (the policy read once, by the same check the server makes).
#[tokio::test]
async fn check_config_names_an_evicting_policy_the_opt_out_accepted() {
    let redis = RedisServer::start_with_args(&["--maxmemory-policy", "allkeys-lru"]).await;
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("OTP_HMAC_SECRET", TEST_SECRET),
        ("OTP_SMS_GATEWAY", "console"),
    ];
    let (code, _, stderr) = run(&["check-config"], &vars).await;
    assert_eq!(code, Some(2), "refused without the opt-out: {stderr}");
    let mut accepted = vars.to_vec();
    accepted.push(("OTP_REDIS_ALLOW_EVICTION", "true"));
    let (code, stdout, stderr) = run(&["check-config"], &accepted).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "warning: Redis maxmemory-policy is `allkeys-lru`, accepted by OTP_REDIS_ALLOW_EVICTION"
        ),
        "{stdout}"
    );
}
