//! The SMS gateway variables: which gateway sends the codes and how hard it
//! tries, read into [`SmsConfig`] (defined beside the gateways in `sms`).

use std::time::Duration;

use reqwest::Url;

use super::{ConfigError, Env};
use crate::{
    domain::ApiKey,
    sms::{SmsConfig, TextBeeConfig},
};

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::test_support::{self, config};

    const URL: &str = "https://api.textbee.dev/api/v1/gateway/devices/dev123/send-sms";
    const KEY: &str = "tb_test_key_0123";

    fn textbee(vars: &[(&str, &str)]) -> TextBeeConfig {
        match config(vars).expect("valid").sms {
            SmsConfig::TextBee(textbee) => textbee,
            other => panic!("expected TextBee, got {other:?}"),
        }
    }

    /// Startup stops with one line that names `var`, says `expected`, and
    /// never echoes the key.
    fn assert_refused(vars: &[(&str, &str)], var: &str, expected: &str) {
        let line = test_support::assert_refused(vars, var, expected);
        assert!(!line.contains(KEY), "key echoed: {line}");
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

    #[test]
    fn unknown_gateway_is_refused() {
        assert_refused(
            &[("OTP_SMS_GATEWAY", "twilio")],
            "OTP_SMS_GATEWAY",
            "`console` or `textbee`",
        );
    }

    #[test]
    fn textbee_needs_both_of_its_variables() {
        let textbee = ("OTP_SMS_GATEWAY", "textbee");
        assert_refused(
            &[textbee, ("TEXTBEE_API_KEY", KEY)],
            "SMS_SENDER_API",
            "is required",
        );
        assert_refused(
            &[textbee, ("SMS_SENDER_API", URL)],
            "TEXTBEE_API_KEY",
            "is required",
        );
        // Without an explicit choice, half a TextBee setup is a mistake, not "console".
        assert_refused(
            &[("SMS_SENDER_API", URL)],
            "TEXTBEE_API_KEY",
            "because SMS_SENDER_API is set",
        );
        assert_refused(
            &[("TEXTBEE_API_KEY", KEY)],
            "SMS_SENDER_API",
            "because TEXTBEE_API_KEY is set",
        );
    }

    #[test]
    fn send_url_must_be_a_plain_http_or_https_url() {
        let key = ("TEXTBEE_API_KEY", KEY);
        for (url, expected) in [
            ("api.textbee.dev/send-sms", "not a valid URL"),
            ("https://", "not a valid URL"),
            ("ftp://textbee.dev/send-sms", "http or https"),
            ("https://user:pw@textbee.dev/send-sms", "credentials"),
        ] {
            assert_refused(&[("SMS_SENDER_API", url), key], "SMS_SENDER_API", expected);
        }
    }

    #[test]
    fn key_a_header_cannot_carry_is_refused() {
        let url = ("SMS_SENDER_API", URL);
        assert_refused(
            &[url, ("TEXTBEE_API_KEY", "two words")],
            "TEXTBEE_API_KEY",
            "printable ASCII",
        );
    }

    #[test]
    fn timeouts_and_retries_must_be_in_range() {
        for (var, value, expected) in [
            ("OTP_SMS_CONNECT_TIMEOUT_MS", "10", "from 50 to 30000"),
            ("OTP_SMS_CONNECT_TIMEOUT_MS", "2s", "from 50 to 30000"),
            ("OTP_SMS_SEND_TIMEOUT_MS", "99", "from 100 to 60000"),
            ("OTP_SMS_SEND_TIMEOUT_MS", "60001", "from 100 to 60000"),
            ("OTP_SMS_MAX_RETRIES", "6", "from 0 to 5"),
            ("OTP_SMS_MAX_RETRIES", "-1", "from 0 to 5"),
        ] {
            assert_refused(&[(var, value)], var, expected);
        }
    }
}
