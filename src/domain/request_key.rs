//! Caller-chosen keys on a SendOtp request: `client_key` (who is asking) and
//! `idempotency_key` (which attempt this is). Both are only ever stored as
//! keyed hashes, and never logged.

use std::fmt;

use thiserror::Error;

/// Why a request key was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestKeyError {
    /// Longer than allowed.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Holds characters outside the allowed set.
    #[error("{allowed}")]
    BadCharacters {
        /// What is allowed, for the caller.
        allowed: &'static str,
    },
}

/// Identifies the end user behind a send (IP address, session id). Limits
/// are counted per client key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey(String);

/// Makes a SendOtp retry safe: one key, one code, one SMS.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

const MAX_CLIENT_KEY: usize = 256;
const MAX_IDEMPOTENCY_KEY: usize = 128;

impl ClientKey {
    /// Accepts up to 256 printable characters; empty means "not given".
    pub fn parse(raw: &str) -> Result<Option<Self>, RequestKeyError> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.chars().count() > MAX_CLIENT_KEY {
            return Err(RequestKeyError::TooLong {
                max: MAX_CLIENT_KEY,
            });
        }
        if raw.chars().any(char::is_control) {
            return Err(RequestKeyError::BadCharacters {
                allowed: "must not contain control characters",
            });
        }
        Ok(Some(Self(raw.to_owned())))
    }

    /// The key's text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl IdempotencyKey {
    /// Accepts 1–128 printable ASCII characters without spaces (a UUID fits);
    /// empty means "not given".
    pub fn parse(raw: &str) -> Result<Option<Self>, RequestKeyError> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > MAX_IDEMPOTENCY_KEY {
            return Err(RequestKeyError::TooLong {
                max: MAX_IDEMPOTENCY_KEY,
            });
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(RequestKeyError::BadCharacters {
                allowed: "must be printable ASCII without spaces",
            });
        }
        Ok(Some(Self(raw.to_owned())))
    }

    /// The key's text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdempotencyKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_not_given() {
        assert_eq!(ClientKey::parse(""), Ok(None));
        assert_eq!(IdempotencyKey::parse(""), Ok(None));
    }

    #[test]
    fn client_keys_take_addresses_and_session_ids() {
        for ok in ["203.0.113.7", "2001:db8::1", "session 42 / ünïcode"] {
            assert!(ClientKey::parse(ok).expect(ok).is_some());
        }
        assert!(ClientKey::parse("a\u{0}b").is_err());
        assert_eq!(
            ClientKey::parse(&"x".repeat(257)),
            Err(RequestKeyError::TooLong { max: 256 })
        );
    }

    #[test]
    fn idempotency_keys_are_compact_ascii() {
        assert!(
            IdempotencyKey::parse("3f2b8c1e-6a6f-4c1e-9a57-0c1d2e3f4a5b")
                .expect("uuid")
                .is_some()
        );
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("ключ").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }
}
