//! Each SMS provider's variables: Vonage and the signed webhook (TextBee's
//! are in `textbee_vars.rs`, Twilio's, having more, in `twilio_vars.rs`),
//! and the checks they share. A provider whose first variable is unset is
//! not configured; one set halfway is refused. Credentials are never echoed.

use clap::Args;
use reqwest::Url;

use super::ConfigError;
use crate::{
    domain::ApiKey,
    sms::{MIN_WEBHOOK_SECRET_BYTES, VONAGE_BASE_URL, VonageConfig, WebhookConfig},
};

/// Vonage and the signed webhook.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "SMS: Vonage and webhook")]
pub struct ProviderVars {
    /// Configures Vonage (never logged)
    #[arg(long, env = "OTP_VONAGE_API_KEY", value_name = "SECRET")]
    pub vonage_api_key: Option<String>,
    /// Vonage API secret (never logged)
    #[arg(long, env = "OTP_VONAGE_API_SECRET", value_name = "SECRET")]
    pub vonage_api_secret: Option<String>,
    /// The Vonage sender: a number (the `+` is dropped) or sender id
    #[arg(long, env = "OTP_VONAGE_FROM")]
    pub vonage_from: Option<String>,
    /// Vonage API origin
    #[arg(long, env = "OTP_VONAGE_BASE_URL", default_value = VONAGE_BASE_URL,
          value_name = "URL")]
    pub vonage_base_url: String,
    /// Configures the signed webhook: where each SMS is POSTed
    #[arg(long, env = "OTP_SMS_WEBHOOK_URL", value_name = "URL")]
    pub sms_webhook_url: Option<String>,
    /// HMAC-SHA256 key of the X-OTP-Signature header, at least 32 bytes
    #[arg(long, env = "OTP_SMS_WEBHOOK_SECRET", value_name = "SECRET")]
    pub sms_webhook_secret: Option<String>,
}

/// Vonage, when `OTP_VONAGE_API_KEY` is set.
pub(super) fn vonage(vars: &ProviderVars) -> Result<Option<VonageConfig>, ConfigError> {
    if vars.vonage_api_key.is_none() {
        return Ok(None);
    }
    let from = vars.vonage_from.as_deref().ok_or_else(|| {
        ConfigError::new(
            "OTP_VONAGE_FROM",
            "is required with OTP_VONAGE_API_KEY: a Vonage number or sender id",
        )
    })?;
    Ok(Some(VonageConfig {
        base_url: base_url(&vars.vonage_base_url, "OTP_VONAGE_BASE_URL")?,
        api_key: key(
            vars.vonage_api_key.as_deref(),
            "OTP_VONAGE_API_KEY",
            "for Vonage",
        )?,
        api_secret: key(
            vars.vonage_api_secret.as_deref(),
            "OTP_VONAGE_API_SECRET",
            "with OTP_VONAGE_API_KEY",
        )?,
        // Vonage takes numbers without the `+`.
        from: sender_id(from, "OTP_VONAGE_FROM")?
            .trim_start_matches('+')
            .to_owned(),
    }))
}

/// The signed webhook, when `OTP_SMS_WEBHOOK_URL` is set.
pub(super) fn webhook(vars: &ProviderVars) -> Result<Option<WebhookConfig>, ConfigError> {
    if vars.sms_webhook_url.is_none() {
        return Ok(None);
    }
    let url = http_url(
        vars.sms_webhook_url.as_deref(),
        "OTP_SMS_WEBHOOK_URL",
        "the receiver's URL, e.g. https://sms.internal.example/send",
        "the requests are signed with OTP_SMS_WEBHOOK_SECRET instead",
    )?;
    const SECRET: &str = "OTP_SMS_WEBHOOK_SECRET";
    let secret = key(
        vars.sms_webhook_secret.as_deref(),
        SECRET,
        "with OTP_SMS_WEBHOOK_URL",
    )?;
    if secret.expose().len() < MIN_WEBHOOK_SECRET_BYTES {
        return Err(ConfigError::new(
            SECRET,
            format!(
                "must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            ),
        ));
    }
    Ok(Some(WebhookConfig { url, secret }))
}

/// A credential: printable ASCII, never echoed.
pub(super) fn key(
    raw: Option<&str>,
    var: &'static str,
    context: &str,
) -> Result<ApiKey, ConfigError> {
    ApiKey::parse(raw.unwrap_or(""))
        .map_err(|why| ConfigError::new(var, format!("{why} {context}")))
}

/// A sender: an international number (`+` and 8–15 digits), a short code
/// (3–8 digits) or an alphanumeric sender id (1–11 letters, digits or
/// spaces, at least one letter).
pub(super) fn sender_id(raw: &str, var: &'static str) -> Result<String, ConfigError> {
    let digits = |s: &str, range: std::ops::RangeInclusive<usize>| {
        range.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let number = raw
        .strip_prefix('+')
        .is_some_and(|rest| digits(rest, 8..=15));
    let short_code = digits(raw, 3..=8);
    let alphanumeric = (1..=11).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && raw.bytes().any(|b| b.is_ascii_alphabetic());
    if number || short_code || alphanumeric {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::new(
            var,
            format!(
                "must be a number like +14155550100, a short code, or a sender id of 1-11 \
                 letters and digits (got `{raw}`)"
            ),
        ))
    }
}

/// An API origin; always ends in `/` so paths join under it.
pub(super) fn base_url(raw: &str, var: &'static str) -> Result<Url, ConfigError> {
    let mut url = http_url(
        Some(raw),
        var,
        "an http(s) URL",
        "use the credential variables",
    )?;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// An http(s) URL with a host and without credentials. The value is never
/// echoed: a mistyped URL may carry a key someone pasted into it.
pub(super) fn http_url(
    raw: Option<&str>,
    var: &'static str,
    expected: &str,
    credentials_hint: &str,
) -> Result<Url, ConfigError> {
    let raw = raw.ok_or_else(|| ConfigError::new(var, format!("is required: {expected}")))?;
    let url = Url::parse(raw).map_err(|why| {
        ConfigError::new(
            var,
            format!("is not a valid URL ({why}); expected {expected}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            var,
            format!(
                "must be an http or https URL (got scheme `{}`)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(var, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(
            var,
            format!("must not contain credentials; {credentials_hint}"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{assert_refused, config};

    #[test]
    fn vonage_and_webhook_settings_are_checked() {
        let vonage = |more: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("OTP_SMS_GATEWAY", "vonage"),
                ("OTP_VONAGE_API_KEY", "abcd1234"),
            ];
            vars.extend_from_slice(more);
            vars
        };
        assert_refused(
            &vonage(&[("OTP_VONAGE_FROM", "Acme")]),
            "OTP_VONAGE_API_SECRET",
            "is required",
        );
        assert_refused(
            &vonage(&[("OTP_VONAGE_API_SECRET", "s")]),
            "OTP_VONAGE_FROM",
            "is required",
        );
        let ok = config(&vonage(&[
            ("OTP_VONAGE_API_SECRET", "s"),
            ("OTP_VONAGE_FROM", "+447700900000"),
        ]))
        .expect("valid");
        assert_eq!(
            ok.sms.providers.vonage.expect("vonage").from,
            "447700900000"
        );

        let webhook = |secret: &'static str| {
            vec![
                ("OTP_SMS_GATEWAY", "webhook"),
                ("OTP_SMS_WEBHOOK_URL", "https://sms.internal.example/send"),
                ("OTP_SMS_WEBHOOK_SECRET", secret),
            ]
        };
        let line = assert_refused(
            &webhook("short"),
            "OTP_SMS_WEBHOOK_SECRET",
            "at least 32 bytes",
        );
        assert!(!line.contains("short"), "{line}");
        let accepted =
            config(&webhook("0123456789abcdef0123456789abcdef")).expect("32 bytes are accepted");
        let configured = accepted
            .sms
            .providers
            .webhook
            .expect("the webhook is configured");
        assert_eq!(configured.url.as_str(), "https://sms.internal.example/send");
        assert_refused(
            &[("OTP_SMS_WEBHOOK_URL", "https://u:p@x.example/")],
            "OTP_SMS_WEBHOOK_URL",
            "credentials",
        );
    }
}
