//! TextBee's variables, `SMS_SENDER_API` and `TEXTBEE_API_KEY` (the seed's
//! names): both set selects TextBee when nothing else is named, one alone is
//! refused. The key is never echoed.

use clap::Args;

use super::{
    ConfigError,
    provider_vars::{http_url, key},
};
use crate::sms::TextBeeConfig;

/// TextBee (the seed's names).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "SMS: TextBee")]
pub struct TextBeeVars {
    /// TextBee send URL: https://api.textbee.dev/api/v1/gateway/devices/<DEVICE_ID>/send-sms
    #[arg(long, env = "SMS_SENDER_API", value_name = "URL")]
    pub sms_sender_api: Option<String>,
    /// TextBee API key (sent as x-api-key, never logged)
    #[arg(long, env = "TEXTBEE_API_KEY", value_name = "SECRET")]
    pub textbee_api_key: Option<String>,
}

const SEND_URL_EXAMPLE: &str =
    "https://api.textbee.dev/api/v1/gateway/devices/<DEVICE_ID>/send-sms";

/// TextBee when both its variables are set, `None` when neither is, and
/// an error naming the missing one when only one is.
pub(super) fn textbee_if_set(vars: &TextBeeVars) -> Result<Option<TextBeeConfig>, ConfigError> {
    if refuse_half_textbee(vars)? {
        textbee(vars).map(Some)
    } else {
        Ok(None)
    }
}

/// TextBee's settings, required (it was selected).
pub(super) fn textbee_required(vars: &TextBeeVars) -> Result<TextBeeConfig, ConfigError> {
    refuse_half_textbee(vars)?;
    textbee(vars)
}

/// Whether both TextBee variables are set; an error naming the missing one
/// when only one is.
fn refuse_half_textbee(vars: &TextBeeVars) -> Result<bool, ConfigError> {
    let half = |missing: &'static str, set: &str| {
        ConfigError::new(
            missing,
            format!(
                "is required because {set} is set; set both to send with TextBee, \
                 or OTP_SMS_GATEWAY=console for development"
            ),
        )
    };
    match (&vars.sms_sender_api, &vars.textbee_api_key) {
        (None, None) => Ok(false),
        (Some(_), Some(_)) => Ok(true),
        (Some(_), None) => Err(half("TEXTBEE_API_KEY", "SMS_SENDER_API")),
        (None, Some(_)) => Err(half("SMS_SENDER_API", "TEXTBEE_API_KEY")),
    }
}

/// Both variables, read and checked.
fn textbee(vars: &TextBeeVars) -> Result<TextBeeConfig, ConfigError> {
    let url = http_url(
        vars.sms_sender_api.as_deref(),
        "SMS_SENDER_API",
        &format!("the full send URL, e.g. {SEND_URL_EXAMPLE}"),
        "put the key in TEXTBEE_API_KEY",
    )?;
    Ok(TextBeeConfig {
        url,
        api_key: key(
            vars.textbee_api_key.as_deref(),
            "TEXTBEE_API_KEY",
            "for the TextBee gateway",
        )?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::test_support;

    const URL: &str = "https://api.textbee.dev/api/v1/gateway/devices/dev123/send-sms";
    const KEY: &str = "tb_test_key_0123";

    /// Startup stops with one line that names `var`, says `expected`, and
    /// never echoes the key.
    fn assert_refused(vars: &[(&str, &str)], var: &str, expected: &str) {
        let line = test_support::assert_refused(vars, var, expected);
        assert!(!line.contains(KEY), "key echoed: {line}");
    }

    #[test]
    fn textbee_needs_both_of_its_variables() {
        let textbee = ("OTP_SMS_GATEWAY", "textbee");
        assert_refused(&[textbee], "SMS_SENDER_API", "is required");
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
        assert_refused(
            &[("SMS_SENDER_API", URL), ("TEXTBEE_API_KEY", "two words")],
            "TEXTBEE_API_KEY",
            "printable ASCII",
        );
    }
}
