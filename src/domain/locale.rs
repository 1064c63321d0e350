//! The language a caller wants the SMS in: a BCP 47 tag, parsed once.

use std::fmt;

use icu_locale_core::{LanguageIdentifier, Locale as IcuLocale};
use thiserror::Error;

/// Longest tag accepted: BCP 47 sets no limit, a request field needs one.
pub const MAX_LOCALE_CHARS: usize = 64;

/// A well-formed BCP 47 language tag (`pt-BR`, `zh-Hant-TW`, `sr-Latn`),
/// in canonical case. Extensions (`-u-…`) are accepted and ignored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Locale(LanguageIdentifier);

/// Why a locale was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum LocaleError {
    /// Not a BCP 47 tag.
    #[error("is not a BCP 47 language tag such as `en`, `pt-BR` or `zh-Hant-TW`")]
    Malformed,
    /// Longer than [`MAX_LOCALE_CHARS`].
    #[error("is longer than {MAX_LOCALE_CHARS} characters")]
    TooLong,
}

impl Locale {
    /// Parses a tag; `_` is taken for `-` (Java and POSIX spell `pt_BR`),
    /// case is ignored. The tag `und` (undetermined) is refused as
    /// meaningless for choosing a text.
    pub fn parse(raw: &str) -> Result<Self, LocaleError> {
        if raw.chars().count() > MAX_LOCALE_CHARS {
            return Err(LocaleError::TooLong);
        }
        let locale = IcuLocale::try_from_str(&raw.trim().replace('_', "-"))
            .map_err(|_| LocaleError::Malformed)?;
        if locale.id.language.is_unknown() {
            return Err(LocaleError::Malformed);
        }
        Ok(Self(locale.id))
    }

    /// Parses an optional request field: empty means "no preference".
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, LocaleError> {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
    }

    /// The tags to look for, most specific first: `zh-Hant-TW` gives
    /// `zh-Hant-TW`, `zh-TW`, `zh-Hant`, `zh`; `pt-BR` gives `pt-BR`, `pt`.
    pub fn fallbacks(&self) -> Vec<String> {
        let id = &self.0;
        let mut tags = vec![id.to_string()];
        let mut push = |tag: String| {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        };
        let language = id.language.as_str();
        if let (Some(script), Some(region)) = (id.script, id.region) {
            push(format!("{language}-{script}-{region}"));
        }
        if let Some(region) = id.region {
            push(format!("{language}-{region}"));
        }
        if let Some(script) = id.script {
            push(format!("{language}-{script}"));
        }
        push(language.to_owned());
        tags
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locale({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_in_canonical_case() {
        for (raw, canonical) in [
            ("pt-BR", "pt-BR"),
            ("PT-br", "pt-BR"),
            ("pt_BR", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("en", "en"),
            ("es-419", "es-419"),
            ("de-CH-u-co-phonebk", "de-CH"),
        ] {
            assert_eq!(Locale::parse(raw).expect(raw).to_string(), canonical);
        }
    }

    #[test]
    fn malformed_tags_are_refused() {
        for raw in [
            "", "e", "english!", "pt-BRA-", "12", "und", "pt--BR", "en US",
        ] {
            assert_eq!(Locale::parse(raw), Err(LocaleError::Malformed), "{raw:?}");
        }
        let long = format!("en-{}", "abcdefgh-".repeat(8));
        assert_eq!(Locale::parse(&long), Err(LocaleError::TooLong));
    }

    #[test]
    fn empty_means_no_preference() {
        assert_eq!(Locale::parse_optional(" "), Ok(None));
        assert!(Locale::parse_optional("fr").expect("valid").is_some());
    }

    #[test]
    fn fallbacks_go_from_specific_to_the_language() {
        let fallbacks = |raw: &str| Locale::parse(raw).expect(raw).fallbacks();
        assert_eq!(fallbacks("pt-BR"), ["pt-BR", "pt"]);
        assert_eq!(fallbacks("pt"), ["pt"]);
        assert_eq!(
            fallbacks("zh-Hant-TW"),
            ["zh-Hant-TW", "zh-TW", "zh-Hant", "zh"]
        );
        assert_eq!(
            fallbacks("ca-ES-valencia"),
            ["ca-ES-valencia", "ca-ES", "ca"]
        );
    }
}
