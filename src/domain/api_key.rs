//! A credential for an external API, kept out of every log by construction.

use std::fmt;

use thiserror::Error;

/// An API key (`TEXTBEE_API_KEY`). `Debug` never shows it; [`ApiKey::expose`]
/// is the one way to read it, for the request header that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// Why a key was refused. The message never contains the key.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyError {
    /// Nothing was given.
    #[error("is required")]
    Missing,
    /// A character an HTTP header cannot carry (a stray newline, quote or
    /// non-ASCII letter pasted with the key) would fail every request later.
    #[error("must be printable ASCII without spaces")]
    NotPrintable,
}

impl ApiKey {
    /// Accepts a key of printable ASCII without spaces, as every key an HTTP
    /// header can carry verbatim.
    pub fn parse(raw: &str) -> Result<Self, ApiKeyError> {
        if raw.is_empty() {
            return Err(ApiKeyError::Missing);
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiKeyError::NotPrintable);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key itself. Only the request header may use this; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_key() {
        let key = ApiKey::parse("tb_live_5ecret").expect("valid");
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert_eq!(key.expose(), "tb_live_5ecret");
    }

    #[test]
    fn keys_a_header_cannot_carry_are_refused() {
        assert_eq!(ApiKey::parse(""), Err(ApiKeyError::Missing));
        for bad in ["abc def", "abc\ndef", "clé", "abc\t"] {
            assert_eq!(
                ApiKey::parse(bad),
                Err(ApiKeyError::NotPrintable),
                "{bad:?}"
            );
        }
    }
}
