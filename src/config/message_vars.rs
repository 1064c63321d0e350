//! The SMS text: template, app name and WebOTP domain.

use super::{ConfigError, Env};
use crate::sms::MessageTemplate;

/// Default `OTP_APP_NAME`: the `{app}` in the message.
pub const DEFAULT_APP_NAME: &str = "OTP";
/// Longest accepted `OTP_APP_NAME`, in characters: an SMS is short.
pub const MAX_APP_NAME_CHARS: usize = 32;

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

    use super::*;
    use crate::{
        config::test_support::{assert_refused, config},
        domain::OtpCode,
    };

    fn code() -> OtpCode {
        OtpCode::parse("123456", 6).expect("valid")
    }

    #[test]
    fn template_app_name_and_webotp_domain_come_from_the_environment() {
        let config = config(&[
            ("OTP_MESSAGE_TEMPLATE", "{app}: {code} ({seconds}s)"),
            ("OTP_APP_NAME", "Acme Pay"),
            ("OTP_WEBOTP_DOMAIN", "Login.Example.com"),
        ])
        .expect("valid");
        assert_eq!(
            config.template.render(&code(), Duration::from_secs(90)),
            "Acme Pay: 123456 (90s)\n\n@login.example.com #123456"
        );
    }

    #[test]
    fn default_template_names_the_default_app_without_a_webotp_line() {
        let config = config(&[]).expect("valid");
        assert_eq!(
            config.template.render(&code(), Duration::from_secs(120)),
            "Your OTP verification code is 123456. It expires in 2 min. Do not share it."
        );
    }

    #[test]
    fn unusable_templates_stop_startup() {
        for (template, expected) in [
            ("Code {code} for {user}", "{user}"),
            ("Your code is {code", "closing"),
            ("Welcome to {app}", "{code}"),
        ] {
            assert_refused(
                &[("OTP_MESSAGE_TEMPLATE", template)],
                "OTP_MESSAGE_TEMPLATE",
                expected,
            );
        }
    }

    #[test]
    fn app_name_must_be_short_and_on_one_line() {
        let long = "x".repeat(MAX_APP_NAME_CHARS + 1);
        assert_refused(
            &[("OTP_APP_NAME", long.as_str())],
            "OTP_APP_NAME",
            "at most 32",
        );
        assert_refused(&[("OTP_APP_NAME", "Acme\nPay")], "OTP_APP_NAME", "one line");
        assert!(config(&[("OTP_APP_NAME", &"x".repeat(MAX_APP_NAME_CHARS))]).is_ok());
    }

    #[test]
    fn webotp_domain_must_be_a_bare_host_name() {
        for domain in [
            "https://example.com",
            "example.com:443",
            "example.com/login",
            "10.0.0.1",
            "-bad-.com",
            "example..com",
            "exa mple.com",
        ] {
            assert_refused(
                &[("OTP_WEBOTP_DOMAIN", domain)],
                "OTP_WEBOTP_DOMAIN",
                "bare host",
            );
        }
        assert_eq!(webotp_domain("localhost").as_deref(), Some("localhost"));
        assert_eq!(
            webotp_domain("a.b-c.example").as_deref(),
            Some("a.b-c.example")
        );
    }
}
