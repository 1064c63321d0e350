//! What the channels other than SMS carry: for WhatsApp an approved
//! authentication template (its name and language, the code as its one
//! parameter), for a voice call the words read out, the code digit by
//! digit. Both per locale, with the SMS templates' fallback (`pt-BR` → `pt`
//! → default), read from the `[whatsapp]` and `[voice]` tables of
//! `OTP_MESSAGE_TEMPLATES_FILE`: a WhatsApp entry is the template's
//! language code (`pt-BR = "pt_BR"`), or a table that also names another
//! template for that locale (`name`, Meta) or another content template
//! (`content_sid`, Twilio: one language each).

use std::{collections::BTreeMap, time::Duration};

use super::{
    TemplatesError,
    template::{MessageTemplate, TemplateError},
};
use crate::domain::{Locale, OtpCode};

/// The WhatsApp part of a send. `Debug` is not derived: it holds the code.
#[derive(Clone, Copy)]
pub struct WhatsAppMessage<'a> {
    /// The approved authentication template's name (Meta's Cloud API).
    pub template: &'a str,
    /// The template's language as Meta spells it (`en_US`, `pt_BR`).
    pub language: &'a str,
    /// The code: the body's parameter and the copy-code button's.
    pub code: &'a str,
    /// The locale's own Twilio content template, if its entry names one.
    pub content_sid: Option<&'a str>,
}

/// The voice part of a send. `Debug` is not derived: it holds the code.
#[derive(Clone, Copy)]
pub struct VoiceMessage<'a> {
    /// The words to say, the code spelled digit by digit. Never logged.
    pub text: &'a str,
    /// The language of the words (BCP 47, e.g. `en-US`), for the voice.
    pub language: &'a str,
}

/// A WhatsApp template: name and language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppTemplate {
    /// As approved in WhatsApp Manager (`OTP_WHATSAPP_TEMPLATE`).
    pub name: String,
    /// Its default language (`OTP_WHATSAPP_LANGUAGE`).
    pub language: String,
}

/// One locale's `[whatsapp]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppEntry {
    /// The template's language code for the locale.
    pub language: String,
    /// Another approved template for the locale (else `OTP_WHATSAPP_TEMPLATE`).
    pub name: Option<String>,
    /// Twilio's content template for the locale (else
    /// `OTP_TWILIO_WHATSAPP_CONTENT_SID`).
    pub content_sid: Option<String>,
}

/// Every channel's templates beyond the SMS text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTemplates {
    whatsapp: WhatsAppTemplate,
    /// Canonical BCP 47 tag → the template's language (and name) for it.
    whatsapp_languages: BTreeMap<String, WhatsAppEntry>,
    voice: MessageTemplate,
    /// The default voice template's language (`OTP_VOICE_LANGUAGE`).
    voice_language: String,
    /// Canonical BCP 47 tag → what a call says in that language.
    voice_by_locale: BTreeMap<String, MessageTemplate>,
}

/// The `[whatsapp]` and `[voice]` entries of a templates file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelEntries {
    /// Locale → WhatsApp template language (and name).
    pub whatsapp: Vec<(Locale, WhatsAppEntry)>,
    /// `default` of `[voice]`, if given.
    pub voice_default: Option<MessageTemplate>,
    /// Locale → voice template.
    pub voice: Vec<(Locale, MessageTemplate)>,
}

impl ChannelTemplates {
    /// The voice text without `[voice]` entries.
    pub const DEFAULT_VOICE: &'static str = "Your {app} verification code is {code}.";
    /// The WhatsApp language without `OTP_WHATSAPP_LANGUAGE`.
    pub const DEFAULT_WHATSAPP_LANGUAGE: &'static str = "en_US";
    /// The voice language without `OTP_VOICE_LANGUAGE`.
    pub const DEFAULT_VOICE_LANGUAGE: &'static str = "en-US";

    /// Templates with `whatsapp` and the voice text `voice` in
    /// `voice_language` for every locale.
    pub fn new(whatsapp: WhatsAppTemplate, voice: MessageTemplate, voice_language: &str) -> Self {
        Self {
            whatsapp,
            whatsapp_languages: BTreeMap::new(),
            voice,
            voice_language: voice_language.to_owned(),
            voice_by_locale: BTreeMap::new(),
        }
    }

    /// Adds a templates file's `[whatsapp]` and `[voice]` entries.
    pub fn with_entries(mut self, entries: ChannelEntries) -> Self {
        if let Some(default) = entries.voice_default {
            self.voice = default;
        }
        self.whatsapp_languages.extend(
            entries
                .whatsapp
                .into_iter()
                .map(|(locale, entry)| (locale.to_string(), entry)),
        );
        self.voice_by_locale.extend(
            entries
                .voice
                .into_iter()
                .map(|(locale, t)| (locale.to_string(), t)),
        );
        self
    }

    /// Reads the `[whatsapp]` table (`<BCP 47 tag> = "<WhatsApp language
    /// code>"`) and the `[voice]` table (`<BCP 47 tag> = "<template>"`,
    /// optionally `default`) of a templates file; other keys are the SMS
    /// templates' ([`super::MessageTemplates::parse_file`]).
    pub fn parse_tables(table: &toml::Table) -> Result<ChannelEntries, TemplatesError> {
        let mut entries = ChannelEntries::default();
        if let Some(whatsapp) = table.get("whatsapp") {
            for (key, value) in as_table("whatsapp", whatsapp)? {
                let name = format!("whatsapp.{key}");
                let entry =
                    whatsapp_entry(value).ok_or_else(|| TemplatesError::NotText(name.clone()))?;
                entries.whatsapp.push((locale(key, &name)?, entry));
            }
        }
        if let Some(voice) = table.get("voice") {
            for (key, value) in as_table("voice", voice)? {
                let name = format!("voice.{key}");
                let text = value
                    .as_str()
                    .ok_or_else(|| TemplatesError::NotText(name.clone()))?;
                let template = MessageTemplate::new(text)
                    .map_err(|why: TemplateError| TemplatesError::Template(name.clone(), why))?;
                if key == "default" {
                    entries.voice_default = Some(template);
                } else {
                    entries.voice.push((locale(key, &name)?, template));
                }
            }
        }
        Ok(entries)
    }

    /// The WhatsApp template for `code` in the best match for `locale`.
    pub fn whatsapp<'a>(
        &'a self,
        code: &'a OtpCode,
        locale: Option<&Locale>,
    ) -> WhatsAppMessage<'a> {
        let entry = locale
            .into_iter()
            .flat_map(Locale::fallbacks)
            .find_map(|tag| self.whatsapp_languages.get(&tag));
        WhatsAppMessage {
            template: entry
                .and_then(|entry| entry.name.as_deref())
                .unwrap_or(&self.whatsapp.name),
            language: entry.map_or(&self.whatsapp.language, |entry| &entry.language),
            code: code.expose(),
            content_sid: entry.and_then(|entry| entry.content_sid.as_deref()),
        }
    }

    /// What a call says for `code` (digit by digit, so the voice reads them
    /// one at a time, with a pause between), valid for `ttl`, in the best
    /// match for `locale`; with the language it is in.
    pub fn voice(
        &self,
        code: &OtpCode,
        ttl: Duration,
        app_name: &str,
        locale: Option<&Locale>,
    ) -> (String, &str) {
        let (language, template) = locale
            .into_iter()
            .flat_map(Locale::fallbacks)
            .find_map(|tag| self.voice_by_locale.get_key_value(&tag))
            .map_or((self.voice_language.as_str(), &self.voice), |(tag, t)| {
                (tag.as_str(), t)
            });
        (
            template.render_spoken(&spell_digits(code.expose()), ttl, app_name),
            language,
        )
    }
}

/// `"042917"` → `"0, 4, 2, 9, 1, 7"`: text-to-speech reads each digit on
/// its own and pauses at each comma, instead of "forty-two thousand…".
fn spell_digits(code: &str) -> String {
    let mut spelled = String::with_capacity(code.len() * 3);
    for (i, digit) in code.chars().enumerate() {
        if i > 0 {
            spelled.push_str(", ");
        }
        spelled.push(digit);
    }
    spelled
}

/// `"pt_BR"`, or `{ language = "pt_BR", name = "…", content_sid = "HX…" }`
/// (`language` required, no other keys).
fn whatsapp_entry(value: &toml::Value) -> Option<WhatsAppEntry> {
    if let Some(language) = value.as_str() {
        return is_language_code(language).then(|| WhatsAppEntry {
            language: language.to_owned(),
            name: None,
            content_sid: None,
        });
    }
    let table = value.as_table()?;
    let text = |key: &str| {
        table
            .get(key)
            .map(|value| value.as_str().map(str::to_owned))
    };
    let known = ["language", "name", "content_sid"];
    if table.keys().any(|key| !known.contains(&key.as_str())) {
        return None;
    }
    let language = text("language")??;
    // Absent is `None`; present but not a string refuses the entry.
    let name = match text("name") {
        None => None,
        Some(name) => Some(name?),
    };
    let content_sid = match text("content_sid") {
        None => None,
        Some(sid) => Some(sid?),
    };
    let sid_ok = |sid: &String| {
        sid.strip_prefix("HX")
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    (is_language_code(&language)
        && name.as_ref().is_none_or(|name| !name.is_empty())
        && content_sid.as_ref().is_none_or(sid_ok))
    .then_some(WhatsAppEntry {
        language,
        name,
        content_sid,
    })
}

fn as_table<'t>(name: &str, value: &'t toml::Value) -> Result<&'t toml::Table, TemplatesError> {
    value
        .as_table()
        .ok_or_else(|| TemplatesError::NotText(name.to_owned()))
}

fn locale(key: &str, name: &str) -> Result<Locale, TemplatesError> {
    Locale::parse(key).map_err(|_| TemplatesError::BadLocale(name.to_owned()))
}

/// A WhatsApp language code: letters, then optionally `_` and letters
/// (`en`, `en_US`, `pt_BR`, `zh_CN`).
pub fn is_language_code(raw: &str) -> bool {
    let mut parts = raw.split('_');
    let language = parts.next().unwrap_or_default();
    let letters = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphabetic());
    (2..=3).contains(&language.len())
        && letters(language)
        && parts.all(|part| letters(part) && part.len() <= 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(file: &str) -> ChannelTemplates {
        let table: toml::Table = file.parse().expect("toml");
        let entries = ChannelTemplates::parse_tables(&table).expect("valid");
        ChannelTemplates::new(
            WhatsAppTemplate {
                name: "otp_code".into(),
                language: "en_US".into(),
            },
            MessageTemplate::new(ChannelTemplates::DEFAULT_VOICE).expect("valid"),
            "en-US",
        )
        .with_entries(entries)
    }

    fn code() -> OtpCode {
        OtpCode::parse("042917", 6).expect("valid")
    }

    #[test]
    fn whatsapp_language_and_voice_text_follow_the_locale() {
        let templates = templates(
            "en = \"x {code}\"\n[whatsapp]\npt = \"pt_BR\"\nes = { language = \"es\", name = \"otp_es\", content_sid = \"HX0123456789abcdef0123456789abcdef\" }\n[voice]\npt-BR = \"Seu código é {code}.\"\n",
        );
        let pt = Locale::parse("pt-PT").expect("pt-PT");
        let code = code();
        let message = templates.whatsapp(&code, Some(&pt));
        assert_eq!((message.template, message.language), ("otp_code", "pt_BR"));
        assert_eq!(message.code, "042917");
        assert_eq!(message.content_sid, None);
        let es = Locale::parse("es-419").expect("es-419");
        let spanish = templates.whatsapp(&code, Some(&es));
        assert_eq!(
            (spanish.template, spanish.language, spanish.content_sid),
            ("otp_es", "es", Some("HX0123456789abcdef0123456789abcdef"))
        );
        assert_eq!(templates.whatsapp(&code, None).language, "en_US");
        let br = Locale::parse("pt-BR").expect("pt-BR");
        let ttl = Duration::from_secs(60);
        assert_eq!(
            templates.voice(&code, ttl, "Acme", Some(&br)),
            ("Seu código é 0, 4, 2, 9, 1, 7.".to_owned(), "pt-BR")
        );
        assert_eq!(
            templates.voice(&code, ttl, "Acme", None),
            (
                "Your Acme verification code is 0, 4, 2, 9, 1, 7.".to_owned(),
                "en-US"
            )
        );
    }

    #[test]
    fn bad_channel_tables_are_refused() {
        for (file, expected) in [
            ("whatsapp = 5", TemplatesError::NotText("whatsapp".into())),
            (
                "[whatsapp]\npt = \"pt BR\"",
                TemplatesError::NotText("whatsapp.pt".into()),
            ),
            (
                "[whatsapp]\npt = { name = \"x\" }",
                TemplatesError::NotText("whatsapp.pt".into()),
            ),
            (
                "[whatsapp]\npt = { language = \"pt_BR\", content_sid = \"HX1\" }",
                TemplatesError::NotText("whatsapp.pt".into()),
            ),
            (
                "[voice]\nen = \"no code\"",
                TemplatesError::Template("voice.en".into(), TemplateError::MissingCode),
            ),
            (
                "[voice]\n\"e n\" = \"{code}\"",
                TemplatesError::BadLocale("voice.e n".into()),
            ),
        ] {
            let table: toml::Table = file.parse().expect("toml");
            assert_eq!(
                ChannelTemplates::parse_tables(&table),
                Err(expected),
                "{file}"
            );
        }
        assert!(is_language_code("en") && is_language_code("pt_BR"));
        assert!(!is_language_code("") && !is_language_code("pt-BR"));
    }
}
