//! The SMS text a user gets: the template for their language (with
//! fallback `pt-BR` → `pt` → default), the autofill lines after it (Android
//! SMS Retriever hash, WebOTP), and how many billed segments it takes.

use std::{collections::BTreeMap, time::Duration};

use thiserror::Error;

use super::{
    channel_message::ChannelTemplates,
    segments::{Segments, count_segments},
    template::{MessageTemplate, TemplateError},
};
use crate::domain::{Locale, OtpCode};

/// Characters in an Android SMS Retriever app hash.
pub const ANDROID_APP_HASH_LEN: usize = 11;

/// Every template and what is rendered around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplates {
    /// For a request without a locale, or one no entry matches.
    default: MessageTemplate,
    /// Canonical BCP 47 tag → template.
    by_locale: BTreeMap<String, MessageTemplate>,
    /// `{app}` (`OTP_APP_NAME`).
    app_name: String,
    /// `@<domain> #<code>`, the last line (`OTP_WEBOTP_DOMAIN`).
    webotp_domain: Option<String>,
    /// The SMS Retriever hash line (`OTP_ANDROID_APP_HASH`).
    android_app_hash: Option<String>,
    /// What WhatsApp and voice carry (`None`: neither channel is set up).
    channels: Option<Box<ChannelTemplates>>,
}

/// A rendered message.
#[derive(Debug, PartialEq, Eq)]
pub struct Rendered<'a> {
    /// The text, code included. Never logged.
    pub text: String,
    /// The tag of the entry used; `None` for the default template.
    pub locale: Option<&'a str>,
}

/// Why `OTP_MESSAGE_TEMPLATES_FILE` was refused (one line).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TemplatesError {
    /// Not TOML.
    #[error("is not valid TOML (line {line}: {message})")]
    Toml {
        /// 1-based line of the error.
        line: usize,
        /// The parser's message, on one line.
        message: String,
    },
    /// A key that is not a BCP 47 tag.
    #[error("key `{0}` is not a BCP 47 language tag such as `en` or `pt-BR` (or `default`)")]
    BadLocale(String),
    /// Two keys for one locale (`pt-BR` and `pt_br`).
    #[error("keys `{0}` and `{1}` name the same locale")]
    DuplicateLocale(String, String),
    /// A value that is not a string.
    #[error("entry `{0}` must be a string")]
    NotText(String),
    /// A template with a problem.
    #[error("entry `{0}` {1}")]
    Template(String, TemplateError),
    /// No entry at all.
    #[error(
        "has no entries; give one template per locale, e.g. `pt-BR = \"Seu código: {{code}}\"`"
    )]
    Empty,
}

/// The tables of a templates file that hold other channels' entries.
const CHANNEL_TABLES: [&str; 2] = ["whatsapp", "voice"];

/// The entries of a templates file: `default` (if given) and one per locale.
pub type LocaleEntries = (Option<MessageTemplate>, Vec<(Locale, MessageTemplate)>);

impl MessageTemplates {
    /// `default` alone, for app `app_name`.
    pub fn new(default: MessageTemplate, app_name: &str) -> Self {
        Self {
            default,
            by_locale: BTreeMap::new(),
            app_name: app_name.to_owned(),
            webotp_domain: None,
            android_app_hash: None,
            channels: None,
        }
    }

    /// Adds the WhatsApp and voice templates.
    pub fn with_channels(mut self, channels: ChannelTemplates) -> Self {
        self.channels = Some(Box::new(channels));
        self
    }

    /// The WhatsApp and voice templates, when configured.
    pub fn channels(&self) -> Option<&ChannelTemplates> {
        self.channels.as_deref()
    }

    /// `{app}`.
    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// Adds one template per locale.
    pub fn with_locales(mut self, entries: Vec<(Locale, MessageTemplate)>) -> Self {
        self.by_locale.extend(
            entries
                .into_iter()
                .map(|(locale, t)| (locale.to_string(), t)),
        );
        self
    }

    /// Ends every message with `@<domain> #<code>` (a valid, lower-case host).
    pub fn with_webotp_domain(mut self, domain: Option<String>) -> Self {
        self.webotp_domain = domain;
        self
    }

    /// Adds the Android SMS Retriever hash line (11 characters, checked by config).
    pub fn with_android_app_hash(mut self, hash: Option<String>) -> Self {
        self.android_app_hash = hash;
        self
    }

    /// Reads a templates file: `<BCP 47 tag> = "<template>"` per line, and
    /// optionally `default = "<template>"`; the `[whatsapp]` and `[voice]`
    /// tables are the other channels' ([`ChannelTemplates::parse_tables`]).
    pub fn parse_file(toml_text: &str) -> Result<LocaleEntries, TemplatesError> {
        let table = Self::parse_toml(toml_text)?;
        if table.is_empty() {
            return Err(TemplatesError::Empty);
        }
        let mut default = None;
        let mut entries: Vec<(Locale, MessageTemplate)> = Vec::new();
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in &table {
            if CHANNEL_TABLES.contains(&key.as_str()) && value.is_table() {
                continue;
            }
            let text = value
                .as_str()
                .ok_or_else(|| TemplatesError::NotText(key.clone()))?;
            let template = MessageTemplate::new(text)
                .map_err(|why| TemplatesError::Template(key.clone(), why))?;
            if key == "default" {
                default = Some(template);
                continue;
            }
            let locale = Locale::parse(key).map_err(|_| TemplatesError::BadLocale(key.clone()))?;
            if let Some(first) = keys.insert(locale.to_string(), key.clone()) {
                return Err(TemplatesError::DuplicateLocale(first, key.clone()));
            }
            entries.push((locale, template));
        }
        Ok((default, entries))
    }

    /// A templates file as a TOML table; a syntax error as one line.
    pub fn parse_toml(toml_text: &str) -> Result<toml::Table, TemplatesError> {
        toml_text.parse().map_err(|err: toml::de::Error| {
            // 1-based: the newlines before the error, plus one (`lines()`
            // would miss the line an error at its first column starts).
            let line = err
                .span()
                .map_or(1, |span| toml_text[..span.start].matches('\n').count() + 1);
            TemplatesError::Toml {
                line,
                message: err.message().replace('\n', " ").trim().to_owned(),
            }
        })
    }

    /// The message for `code`, valid for `ttl`, in the best match for
    /// `locale`: its exact tag, then less specific ones (`pt-BR` → `pt`),
    /// then the default. After the template come, each on its own line
    /// after a blank one, the SMS Retriever hash, then the WebOTP line
    /// (which must be the last line).
    pub fn render(&self, code: &OtpCode, ttl: Duration, locale: Option<&Locale>) -> Rendered<'_> {
        let (locale, template) = locale
            .into_iter()
            .flat_map(Locale::fallbacks)
            .find_map(|tag| self.by_locale.get_key_value(&tag))
            .map_or((None, &self.default), |(tag, template)| {
                (Some(tag.as_str()), template)
            });
        let mut text = template.render(code, ttl, &self.app_name);
        if self.android_app_hash.is_some() || self.webotp_domain.is_some() {
            text.push('\n');
        }
        if let Some(hash) = &self.android_app_hash {
            text.push('\n');
            text.push_str(hash);
        }
        if let Some(domain) = &self.webotp_domain {
            text.push_str(&format!("\n@{domain} #{}", code.expose()));
        }
        Rendered { text, locale }
    }

    /// Every template (`default` first, then by tag) whose message, rendered
    /// with a code of `code_length` digits and `ttl`, takes more than one
    /// SMS segment: each extra segment is billed.
    pub fn multi_segment(&self, code_length: u8, ttl: Duration) -> Vec<(String, Segments)> {
        let sample = OtpCode::parse(&"0".repeat(usize::from(code_length)), code_length);
        let Ok(code) = sample else {
            return Vec::new();
        };
        let mut tags = vec![None];
        tags.extend(self.by_locale.keys().map(Some));
        tags.into_iter()
            .filter_map(|tag| {
                let locale = tag.and_then(|tag| Locale::parse(tag).ok());
                let segments = count_segments(&self.render(&code, ttl, locale.as_ref()).text);
                let name = tag.map_or_else(|| "default".to_owned(), String::clone);
                (segments.count > 1).then_some((name, segments))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> OtpCode {
        OtpCode::parse("042917", 6).expect("valid")
    }

    fn template(text: &str) -> MessageTemplate {
        MessageTemplate::new(text).expect("valid")
    }

    fn templates() -> MessageTemplates {
        let (default, entries) = MessageTemplates::parse_file(
            "default = \"{app}: {code}\"\npt = \"Código {code}\"\n\"pt-BR\" = \"Seu código {code}\"\nzh-Hant = \"驗證碼 {code}\"\n",
        )
        .expect("valid file");
        MessageTemplates::new(default.expect("default"), "Acme").with_locales(entries)
    }

    fn render(templates: &MessageTemplates, locale: Option<&str>) -> (String, Option<String>) {
        let locale = locale.map(|raw| Locale::parse(raw).expect(raw));
        let rendered = templates.render(&code(), Duration::from_secs(60), locale.as_ref());
        (rendered.text, rendered.locale.map(str::to_owned))
    }

    #[test]
    fn locales_fall_back_from_region_to_language_to_default() {
        let templates = templates();
        let tag = |t: &str| Some(t.to_owned());
        assert_eq!(
            render(&templates, Some("pt-BR")),
            ("Seu código 042917".into(), tag("pt-BR"))
        );
        assert_eq!(
            render(&templates, Some("pt-PT")),
            ("Código 042917".into(), tag("pt"))
        );
        assert_eq!(
            render(&templates, Some("pt")),
            ("Código 042917".into(), tag("pt"))
        );
        assert_eq!(
            render(&templates, Some("zh-Hant-TW")),
            ("驗證碼 042917".into(), tag("zh-Hant"))
        );
        assert_eq!(
            render(&templates, Some("fr")),
            ("Acme: 042917".into(), None)
        );
        assert_eq!(render(&templates, None), ("Acme: 042917".into(), None));
    }

    #[test]
    fn autofill_lines_follow_the_text_with_webotp_last() {
        let base = MessageTemplates::new(template("Code {code}"), "x");
        let webotp = base.clone().with_webotp_domain(Some("example.com".into()));
        assert_eq!(
            render(&webotp, None).0,
            "Code 042917\n\n@example.com #042917"
        );
        let android = base
            .clone()
            .with_android_app_hash(Some("FA+9qCX9VSu".into()));
        assert_eq!(render(&android, None).0, "Code 042917\n\nFA+9qCX9VSu");
        let both = android.with_webotp_domain(Some("example.com".into()));
        assert_eq!(
            render(&both, None).0,
            "Code 042917\n\nFA+9qCX9VSu\n@example.com #042917"
        );
    }

    #[test]
    fn bad_files_are_refused_with_one_line() {
        for (file, expected) in [
            (
                "en = \"Code\"",
                TemplatesError::Template("en".into(), TemplateError::MissingCode),
            ),
            ("en = 5", TemplatesError::NotText("en".into())),
            (
                "\"en US\" = \"{code}\"",
                TemplatesError::BadLocale("en US".into()),
            ),
            (
                "pt-BR = \"{code}\"\npt_br = \"{code}\"",
                TemplatesError::DuplicateLocale("pt-BR".into(), "pt_br".into()),
            ),
            ("", TemplatesError::Empty),
        ] {
            assert_eq!(MessageTemplates::parse_file(file), Err(expected), "{file}");
        }
        let Err(TemplatesError::Toml { line, message }) =
            MessageTemplates::parse_file("en = \"{code}\"\nfr = \n")
        else {
            panic!("expected a TOML error");
        };
        assert_eq!(line, 2);
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_toml_error_at_the_start_of_a_line_names_that_line() {
        let file =
            "en = \"{code}\"\nfr = \"{code}\"\nde = \"{code}\"\nes = \"{code}\"\nen = \"{code}\"\n";
        let Err(TemplatesError::Toml { line, message }) = MessageTemplates::parse_file(file) else {
            panic!("expected a TOML error");
        };
        assert_eq!(line, 5, "the duplicate key is on line 5: {message}");
    }

    #[test]
    fn templates_longer_than_one_segment_are_reported() {
        let long = template(&format!("{} {{code}}", "x".repeat(160)));
        let templates = MessageTemplates::new(long, "x").with_locales(vec![(
            Locale::parse("hi").expect("hi"),
            template("आपका कोड {code} है"),
        )]);
        let reported = templates.multi_segment(6, Duration::from_secs(120));
        assert_eq!(reported.len(), 1, "{reported:?}");
        assert_eq!(reported[0].0, "default");
        assert_eq!(reported[0].1.count, 2);
    }
}
