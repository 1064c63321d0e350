//! The SMS text: templates (one, or one per locale from a file), app name,
//! and the autofill lines (WebOTP domain, Android SMS Retriever hash).

use clap::Args;

use super::ConfigError;
use crate::sms::{
    ANDROID_APP_HASH_LEN, ChannelEntries, ChannelTemplates, LocaleEntries, MessageTemplate,
    MessageTemplates,
};

/// Default `OTP_APP_NAME`: the `{app}` in the message.
pub const DEFAULT_APP_NAME: &str = "OTP";
/// Longest accepted `OTP_APP_NAME`, in characters: an SMS is short.
pub const MAX_APP_NAME_CHARS: usize = 32;

/// The SMS text.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Message")]
pub struct MessageVars {
    /// The SMS text: must contain `{code}`; placeholders `{code}`, `{minutes}`,
    /// `{seconds}`, `{app}`
    #[arg(long, env = "OTP_MESSAGE_TEMPLATE", default_value = MessageTemplate::DEFAULT)]
    pub message_template: String,
    /// A TOML file with one template per BCP 47 locale and an optional `default`
    #[arg(long, env = "OTP_MESSAGE_TEMPLATES_FILE")]
    pub message_templates_file: Option<String>,
    /// `{app}` in the template, at most 32 characters
    #[arg(long, env = "OTP_APP_NAME", default_value = DEFAULT_APP_NAME)]
    pub app_name: String,
    /// Appends `@<domain> #<code>` so browsers (WebOTP) and phones autofill
    #[arg(long, env = "OTP_WEBOTP_DOMAIN")]
    pub webotp_domain: Option<String>,
    /// Appends the Android SMS Retriever app hash line (11 characters)
    #[arg(long, env = "OTP_ANDROID_APP_HASH")]
    pub android_app_hash: Option<String>,
}

/// `OTP_MESSAGE_TEMPLATE` and `OTP_MESSAGE_TEMPLATES_FILE` with
/// `OTP_APP_NAME`, `OTP_WEBOTP_DOMAIN` and `OTP_ANDROID_APP_HASH`; with
/// `channels` (WhatsApp or voice has routes), the file's `[whatsapp]` and
/// `[voice]` entries added to them.
pub(super) fn templates_from_env(
    vars: &MessageVars,
    channels: Option<ChannelTemplates>,
) -> Result<MessageTemplates, ConfigError> {
    let app_name = vars.app_name.as_str();
    if app_name.chars().count() > MAX_APP_NAME_CHARS || app_name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "OTP_APP_NAME",
            format!("must be at most {MAX_APP_NAME_CHARS} characters on one line"),
        ));
    }
    let webotp_domain = vars
        .webotp_domain
        .as_deref()
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
    let android_app_hash = vars
        .android_app_hash
        .as_deref()
        .map(|raw| {
            android_app_hash(raw).ok_or_else(|| {
                ConfigError::new(
                    "OTP_ANDROID_APP_HASH",
                    format!(
                        "must be the {ANDROID_APP_HASH_LEN}-character app hash that Android's \
                         AppSignatureHelper prints (letters, digits, `+`, `/`)"
                    ),
                )
            })
        })
        .transpose()?;
    let ((file_default, locales), channel_entries) = match vars.message_templates_file.as_deref() {
        Some(path) => templates_file(path)?,
        None => ((None, Vec::new()), ChannelEntries::default()),
    };
    // A template other than the built-in one was asked for.
    let template = Some(vars.message_template.as_str())
        .filter(|template| *template != MessageTemplate::DEFAULT);
    let default = match (file_default, template) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "OTP_MESSAGE_TEMPLATE",
                "is set and OTP_MESSAGE_TEMPLATES_FILE has a `default` entry too; keep one",
            ));
        }
        (Some(default), None) => default,
        (None, _) => MessageTemplate::new(&vars.message_template)
            .map_err(|why| ConfigError::new("OTP_MESSAGE_TEMPLATE", why.to_string()))?,
    };
    let templates = MessageTemplates::new(default, app_name)
        .with_locales(locales)
        .with_webotp_domain(webotp_domain)
        .with_android_app_hash(android_app_hash);
    Ok(match channels {
        Some(channels) => templates.with_channels(channels.with_entries(channel_entries)),
        None => templates,
    })
}

/// Reads and checks `OTP_MESSAGE_TEMPLATES_FILE`: the SMS templates, and
/// the `[whatsapp]` and `[voice]` tables.
fn templates_file(path: &str) -> Result<(LocaleEntries, ChannelEntries), ConfigError> {
    const VAR: &str = "OTP_MESSAGE_TEMPLATES_FILE";
    let text = std::fs::read_to_string(path)
        .map_err(|err| ConfigError::new(VAR, format!("cannot read `{path}`: {err}")))?;
    let refused = |why| ConfigError::new(VAR, format!("`{path}` {why}"));
    let sms = MessageTemplates::parse_file(&text).map_err(refused)?;
    let table = MessageTemplates::parse_toml(&text).map_err(refused)?;
    let channels = ChannelTemplates::parse_tables(&table).map_err(refused)?;
    Ok((sms, channels))
}

/// An SMS Retriever hash: 11 characters of base64 (letters, digits, `+`, `/`).
fn android_app_hash(raw: &str) -> Option<String> {
    (raw.len() == ANDROID_APP_HASH_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))
    .then(|| raw.to_owned())
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
        domain::{Locale, OtpCode},
    };

    fn code() -> OtpCode {
        OtpCode::parse("123456", 6).expect("valid")
    }

    /// A templates file with `contents` in a fresh directory (kept until the test ends).
    struct TemplatesFile(std::path::PathBuf);

    impl TemplatesFile {
        fn new(contents: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("otp-templates-{}-{n}.toml", std::process::id()));
            std::fs::write(&path, contents).expect("temp file written");
            Self(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for TemplatesFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn render(messages: &MessageTemplates, locale: &str) -> String {
        let locale = Locale::parse(locale).expect("valid locale");
        messages
            .render(&code(), Duration::from_secs(120), Some(&locale))
            .text
    }

    #[test]
    fn templates_file_gives_one_text_per_locale_and_the_hash_line() {
        let file = TemplatesFile::new("pt = \"Código {code}\"\nes-419 = \"Código: {code}\"\n");
        let config = config(&[
            ("OTP_MESSAGE_TEMPLATES_FILE", file.path()),
            ("OTP_MESSAGE_TEMPLATE", "Code {code}"),
            ("OTP_ANDROID_APP_HASH", "FA+9qCX9VSu"),
        ])
        .expect("valid");
        assert_eq!(
            render(&config.messages, "pt-BR"),
            "Código 123456\n\nFA+9qCX9VSu"
        );
        assert_eq!(
            render(&config.messages, "es-419"),
            "Código: 123456\n\nFA+9qCX9VSu"
        );
        assert_eq!(render(&config.messages, "de"), "Code 123456\n\nFA+9qCX9VSu");
    }

    #[test]
    fn the_shipped_example_file_is_valid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/message-templates.example.toml"
        );
        let config = config(&[("OTP_MESSAGE_TEMPLATES_FILE", path)]).expect("valid example");
        assert!(render(&config.messages, "pt-BR").contains("123456"));
        assert_ne!(
            render(&config.messages, "pt-BR"),
            render(&config.messages, "en")
        );
    }

    #[test]
    fn bad_templates_files_stop_startup() {
        let missing_code = TemplatesFile::new("fr = \"Votre code\"");
        assert_refused(
            &[("OTP_MESSAGE_TEMPLATES_FILE", missing_code.path())],
            "OTP_MESSAGE_TEMPLATES_FILE",
            "entry `fr` must contain {code}",
        );
        let bad_tag = TemplatesFile::new("\"fr FR\" = \"{code}\"");
        assert_refused(
            &[("OTP_MESSAGE_TEMPLATES_FILE", bad_tag.path())],
            "OTP_MESSAGE_TEMPLATES_FILE",
            "BCP 47",
        );
        assert_refused(
            &[("OTP_MESSAGE_TEMPLATES_FILE", "/nonexistent/templates.toml")],
            "OTP_MESSAGE_TEMPLATES_FILE",
            "cannot read",
        );
        let with_default = TemplatesFile::new("default = \"{code}\"");
        assert_refused(
            &[
                ("OTP_MESSAGE_TEMPLATES_FILE", with_default.path()),
                ("OTP_MESSAGE_TEMPLATE", "{code}"),
            ],
            "OTP_MESSAGE_TEMPLATE",
            "keep one",
        );
    }

    #[test]
    fn android_app_hash_must_be_eleven_base64_characters() {
        for bad in ["FA+9qCX9VS", "FA+9qCX9VSuX", "FA-9qCX9VSu", "FA 9qCX9VSu"] {
            assert_refused(
                &[("OTP_ANDROID_APP_HASH", bad)],
                "OTP_ANDROID_APP_HASH",
                "11-character",
            );
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
        assert_eq!(
            config
                .messages
                .render(&code(), Duration::from_secs(90), None)
                .text,
            "Acme Pay: 123456 (90s)\n\n@login.example.com #123456"
        );
    }

    #[test]
    fn default_template_names_the_default_app_without_a_webotp_line() {
        let config = config(&[]).expect("valid");
        assert_eq!(
            config
                .messages
                .render(&code(), Duration::from_secs(120), None)
                .text,
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
        let longest = "x".repeat(MAX_APP_NAME_CHARS);
        let accepted = config(&[
            ("OTP_APP_NAME", longest.as_str()),
            ("OTP_MESSAGE_TEMPLATE", "{app} {code}"),
        ])
        .expect("the longest name is accepted");
        let code = crate::domain::OtpCode::parse("123456", 6).expect("a code");
        let rendered = accepted
            .messages
            .render(&code, Duration::from_secs(120), None);
        assert_eq!(
            rendered.text,
            format!("{longest} 123456"),
            "the name is used whole"
        );
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
