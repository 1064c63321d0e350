//! SMS settings: which gateway sends the codes, how hard it tries, and the
//! text the code is sent in.

use std::time::Duration;

use reqwest::Url;

use super::{ConfigError, Env};
use crate::{domain::ApiKey, sms::MessageTemplate};

/// The SMS gateway selection (`OTP_SMS_GATEWAY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsConfig {
    /// Print messages to standard output: development only.
    Console,
    /// Send through a TextBee server (textbee.dev or self-hosted).
    TextBee(TextBeeConfig),
}

/// Everything needed to send through TextBee. `Debug` never shows the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBeeConfig {
    /// The full send URL (`SMS_SENDER_API`), e.g.
    /// `https://api.textbee.dev/api/v1/gateway/devices/<DEVICE_ID>/send-sms`;
    /// http or https, without credentials in it.
    pub url: Url,
    /// Sent as `x-api-key` (`TEXTBEE_API_KEY`).
    pub api_key: ApiKey,
    /// Longest wait for a TCP/TLS connection (`OTP_SMS_CONNECT_TIMEOUT_MS`).
    pub connect_timeout: Duration,
    /// Budget for one whole send: every try and every wait between tries
    /// (`OTP_SMS_SEND_TIMEOUT_MS`).
    pub send_timeout: Duration,
    /// Tries after the first one, on connection errors, timeouts, 5xx and
    /// 429 only (`OTP_SMS_MAX_RETRIES`).
    pub max_retries: u32,
}

/// Default `OTP_APP_NAME`: the `{app}` in the message.
pub const DEFAULT_APP_NAME: &str = "OTP";
/// Longest accepted `OTP_APP_NAME`, in characters: an SMS is short.
pub const MAX_APP_NAME_CHARS: usize = 32;

const SEND_URL_EXAMPLE: &str =
    "https://api.textbee.dev/api/v1/gateway/devices/<DEVICE_ID>/send-sms";

/// Reads `OTP_SMS_GATEWAY` and, for TextBee, its variables.
///
/// Unset `OTP_SMS_GATEWAY` means TextBee when both `SMS_SENDER_API` and
/// `TEXTBEE_API_KEY` are set and console when neither is. Exactly one of them
/// set is refused rather than quietly falling back to console: an operator
/// who set one meant to send real SMS, and the console gateway would print
/// the codes to standard output instead.
pub(super) fn sms_from_env(env: &Env) -> Result<SmsConfig, ConfigError> {
    // Read even for the console gateway, so a typo fails now, not after a switch.
    let connect_timeout =
        Duration::from_millis(env.int_in_range("OTP_SMS_CONNECT_TIMEOUT_MS", 2_000, 50, 30_000)?);
    let send_timeout =
        Duration::from_millis(env.int_in_range("OTP_SMS_SEND_TIMEOUT_MS", 5_000, 100, 60_000)?);
    let max_retries = env.int_in_range("OTP_SMS_MAX_RETRIES", 2, 0, 5)?;
    let textbee = || -> Result<SmsConfig, ConfigError> {
        Ok(SmsConfig::TextBee(TextBeeConfig {
            url: send_url(env)?,
            api_key: api_key(env)?,
            connect_timeout,
            send_timeout,
            max_retries,
        }))
    };
    match env.get("OTP_SMS_GATEWAY") {
        Some("console") => Ok(SmsConfig::Console),
        Some("textbee") => textbee(),
        Some(other) => Err(ConfigError::new(
            "OTP_SMS_GATEWAY",
            format!("must be `console` or `textbee` (got `{other}`)"),
        )),
        None => match (env.get("SMS_SENDER_API"), env.get("TEXTBEE_API_KEY")) {
            (None, None) => Ok(SmsConfig::Console),
            (Some(_), Some(_)) => textbee(),
            (Some(_), None) => Err(ConfigError::new(
                "TEXTBEE_API_KEY",
                "is required because SMS_SENDER_API is set; set both to send with TextBee, \
                 or OTP_SMS_GATEWAY=console for development",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "SMS_SENDER_API",
                "is required because TEXTBEE_API_KEY is set; set both to send with TextBee, \
                 or OTP_SMS_GATEWAY=console for development",
            )),
        },
    }
}

/// `SMS_SENDER_API`. The value is never echoed: a mistyped URL may carry a
/// key someone pasted into it.
fn send_url(env: &Env) -> Result<Url, ConfigError> {
    const VAR: &str = "SMS_SENDER_API";
    let raw = env.get(VAR).ok_or_else(|| {
        ConfigError::new(
            VAR,
            format!(
                "is required for the TextBee gateway: the full send URL, e.g. {SEND_URL_EXAMPLE}"
            ),
        )
    })?;
    let url = Url::parse(raw).map_err(|why| {
        ConfigError::new(
            VAR,
            format!("is not a valid URL ({why}); expected e.g. {SEND_URL_EXAMPLE}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            VAR,
            format!(
                "must be an http or https URL (got scheme `{}`)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(VAR, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            VAR,
            "must not contain credentials; put the key in TEXTBEE_API_KEY",
        ));
    }
    Ok(url)
}

fn api_key(env: &Env) -> Result<ApiKey, ConfigError> {
    const VAR: &str = "TEXTBEE_API_KEY";
    let raw = env.get(VAR).unwrap_or("");
    ApiKey::parse(raw)
        .map_err(|why| ConfigError::new(VAR, format!("{why} for the TextBee gateway")))
}

/// `OTP_MESSAGE_TEMPLATE` with `OTP_APP_NAME` and `OTP_WEBOTP_DOMAIN`.
pub(super) fn template_from_env(env: &Env) -> Result<MessageTemplate, ConfigError> {
    let app_name = env.get("OTP_APP_NAME").unwrap_or(DEFAULT_APP_NAME);
    if app_name.chars().count() > MAX_APP_NAME_CHARS || app_name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "OTP_APP_NAME",
            format!("must be at most {MAX_APP_NAME_CHARS} characters on one line"),
        ));
    }
    let webotp_domain = env
        .get("OTP_WEBOTP_DOMAIN")
        .map(|raw| {
            webotp_domain(raw).ok_or_else(|| {
                ConfigError::new(
                    "OTP_WEBOTP_DOMAIN",
                    format!(
                        "must be a bare host name such as `example.com`, without scheme, \
                         port or path (got `{raw}`)"
                    ),
                )
            })
        })
        .transpose()?;
    let template = env
        .get("OTP_MESSAGE_TEMPLATE")
        .unwrap_or(MessageTemplate::DEFAULT);
    MessageTemplate::new(template, app_name, webotp_domain.as_deref())
        .map_err(|why| ConfigError::new("OTP_MESSAGE_TEMPLATE", why.to_string()))
}

/// A host name as WebOTP expects after `@`: letters, digits and hyphens in
/// dot-separated labels, lower-cased. IP addresses are refused (the last
/// label must not be all digits) because browsers bind a code to a domain.
fn webotp_domain(raw: &str) -> Option<String> {
    let domain = raw.to_ascii_lowercase();
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let last = domain.rsplit('.').next()?;
    (domain.len() <= 253
        && domain.split('.').all(label_ok)
        && !last.bytes().all(|b| b.is_ascii_digit()))
    .then_some(domain)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Config;
    use super::*;
    use crate::domain::OtpCode;

    const URL: &str = "https://api.textbee.dev/api/v1/gateway/devices/dev123/send-sms";
    const KEY: &str = "tb_test_key_0123";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().copied())
    }

    fn textbee(vars: &[(&str, &str)]) -> TextBeeConfig {
        match config(vars).expect("valid").sms {
            SmsConfig::TextBee(textbee) => textbee,
            other => panic!("expected TextBee, got {other:?}"),
        }
    }

    #[test]
    fn console_is_the_default_without_textbee_variables() {
        assert_eq!(config(&[]).expect("valid").sms, SmsConfig::Console);
    }

    #[test]
    fn both_textbee_variables_select_textbee_with_default_timeouts() {
        let textbee = textbee(&[("SMS_SENDER_API", URL), ("TEXTBEE_API_KEY", KEY)]);
        assert_eq!(textbee.url.as_str(), URL);
        assert_eq!(textbee.api_key.expose(), KEY);
        assert_eq!(textbee.connect_timeout, Duration::from_secs(2));
        assert_eq!(textbee.send_timeout, Duration::from_secs(5));
        assert_eq!(textbee.max_retries, 2);
    }

    #[test]
    fn explicit_choice_wins_and_settings_are_read() {
        let textbee = textbee(&[
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
        assert_eq!(textbee.connect_timeout, Duration::from_millis(250));
        assert_eq!(textbee.send_timeout, Duration::from_millis(1500));
        assert_eq!(textbee.max_retries, 0);
        let console = config(&[
            ("OTP_SMS_GATEWAY", "console"),
            ("SMS_SENDER_API", URL),
            ("TEXTBEE_API_KEY", KEY),
        ])
        .expect("valid");
        assert_eq!(console.sms, SmsConfig::Console);
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let config = config(&[("SMS_SENDER_API", URL), ("TEXTBEE_API_KEY", KEY)]).expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    /// Variables set, the variable blamed, text the one-line error must contain.
    type ErrorCase<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);

    /// Every way the SMS settings can be wrong stops startup with one line
    /// naming the variable, and none echoes the key.
    #[test]
    fn every_sms_config_error_names_its_variable() {
        let textbee = ("OTP_SMS_GATEWAY", "textbee");
        let url = ("SMS_SENDER_API", URL);
        let key = ("TEXTBEE_API_KEY", KEY);
        let long_name = "x".repeat(33);
        let cases: Vec<ErrorCase> = vec![
            (
                vec![("OTP_SMS_GATEWAY", "twilio")],
                "OTP_SMS_GATEWAY",
                "`console` or `textbee`",
            ),
            (vec![textbee, key], "SMS_SENDER_API", "is required"),
            (vec![textbee, url], "TEXTBEE_API_KEY", "is required"),
            (
                vec![url],
                "TEXTBEE_API_KEY",
                "because SMS_SENDER_API is set",
            ),
            (
                vec![key],
                "SMS_SENDER_API",
                "because TEXTBEE_API_KEY is set",
            ),
            (
                vec![("SMS_SENDER_API", "api.textbee.dev/send"), key],
                "SMS_SENDER_API",
                "not a valid URL",
            ),
            (
                vec![("SMS_SENDER_API", "ftp://textbee.dev/send"), key],
                "SMS_SENDER_API",
                "http or https",
            ),
            (
                vec![("SMS_SENDER_API", "https://user:pw@textbee.dev/send"), key],
                "SMS_SENDER_API",
                "credentials",
            ),
            (
                vec![url, ("TEXTBEE_API_KEY", "two words")],
                "TEXTBEE_API_KEY",
                "printable ASCII",
            ),
            (
                vec![("OTP_SMS_CONNECT_TIMEOUT_MS", "10")],
                "OTP_SMS_CONNECT_TIMEOUT_MS",
                "from 50 to 30000",
            ),
            (
                vec![("OTP_SMS_SEND_TIMEOUT_MS", "5s")],
                "OTP_SMS_SEND_TIMEOUT_MS",
                "from 100 to 60000",
            ),
            (
                vec![("OTP_SMS_MAX_RETRIES", "6")],
                "OTP_SMS_MAX_RETRIES",
                "from 0 to 5",
            ),
            (
                vec![("OTP_MESSAGE_TEMPLATE", "Code {code} for {user}")],
                "OTP_MESSAGE_TEMPLATE",
                "{user}",
            ),
            (
                vec![("OTP_MESSAGE_TEMPLATE", "Your code is {code")],
                "OTP_MESSAGE_TEMPLATE",
                "closing",
            ),
            (
                vec![("OTP_MESSAGE_TEMPLATE", "Welcome to {app}")],
                "OTP_MESSAGE_TEMPLATE",
                "{code}",
            ),
            (
                vec![("OTP_APP_NAME", long_name.as_str())],
                "OTP_APP_NAME",
                "at most 32",
            ),
            (
                vec![("OTP_WEBOTP_DOMAIN", "https://example.com")],
                "OTP_WEBOTP_DOMAIN",
                "bare host",
            ),
            (
                vec![("OTP_WEBOTP_DOMAIN", "example.com:443")],
                "OTP_WEBOTP_DOMAIN",
                "bare host",
            ),
            (
                vec![("OTP_WEBOTP_DOMAIN", "example.com/login")],
                "OTP_WEBOTP_DOMAIN",
                "bare host",
            ),
            (
                vec![("OTP_WEBOTP_DOMAIN", "10.0.0.1")],
                "OTP_WEBOTP_DOMAIN",
                "bare host",
            ),
            (
                vec![("OTP_WEBOTP_DOMAIN", "-bad-.com")],
                "OTP_WEBOTP_DOMAIN",
                "bare host",
            ),
        ];
        for (vars, var, expected) in cases {
            let err = config(&vars).expect_err(var);
            assert_eq!(err.var, var, "{vars:?}");
            let line = err.to_string();
            assert!(line.starts_with(var), "{line}");
            assert!(line.contains(expected), "{vars:?}: {line}");
            assert!(!line.contains('\n'), "one line: {line}");
            assert!(!line.contains(KEY), "key echoed: {line}");
        }
    }

    #[test]
    fn template_app_name_and_webotp_domain_come_from_the_environment() {
        let config = config(&[
            ("OTP_MESSAGE_TEMPLATE", "{app}: {code} ({seconds}s)"),
            ("OTP_APP_NAME", "Acme Pay"),
            ("OTP_WEBOTP_DOMAIN", "Login.Example.com"),
        ])
        .expect("valid");
        let code = OtpCode::parse("123456", 6).expect("valid");
        assert_eq!(
            config.template.render(&code, Duration::from_secs(90)),
            "Acme Pay: 123456 (90s)\n\n@login.example.com #123456"
        );
    }

    #[test]
    fn default_template_names_the_default_app() {
        let config = config(&[]).expect("valid");
        let code = OtpCode::parse("123456", 6).expect("valid");
        assert_eq!(
            config.template.render(&code, Duration::from_secs(120)),
            "Your OTP verification code is 123456. It expires in 2 min. Do not share it."
        );
    }

    #[test]
    fn single_label_hosts_are_valid_webotp_domains() {
        assert_eq!(webotp_domain("localhost").as_deref(), Some("localhost"));
        assert_eq!(
            webotp_domain("a.b-c.example").as_deref(),
            Some("a.b-c.example")
        );
        assert_eq!(webotp_domain("example..com"), None);
        assert_eq!(webotp_domain("exa mple.com"), None);
    }
}
