//! `REDIS_URL`: accepted once at startup, and never shown with its password.

use std::fmt;

use deadpool_redis::redis::IntoConnectionInfo;

/// A Redis connection URL (`redis://` or `rediss://`) the driver can use.
/// `Debug` and `Display` mask the password, so the URL is safe to log.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Accepts `redis://[user[:password]@]host[:port][/db]` or the same with
    /// `rediss://` (TLS). The error text never contains the password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let scheme_ok = raw.starts_with("redis://") || raw.starts_with("rediss://");
        // Let the driver parse it too, so nothing accepted here fails later.
        if !scheme_ok || raw.into_connection_info().is_err() {
            return Err(format!(
                "must be a redis:// or rediss:// URL such as redis://user:password@host:6379/0 \
                 (got `{}`)",
                mask_password(raw)
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL as given, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.0.starts_with("rediss://")
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_password(&self.0))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// Replaces whatever sits between `scheme://` and the last `@` of the
/// authority with the user name and `***`. Works on text that is not a valid
/// URL too, because it is used to report exactly such text.
fn mask_password(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(at) => raw.split_at(at + 3),
        None => ("", raw),
    };
    // The authority ends at the first `/`, `?` or `#` after the last `@`;
    // a password may itself contain `/`, so look for `@` first.
    let Some(at) = rest.rfind('@') else {
        return raw.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or_default();
    if userinfo.contains(':') || user.is_empty() {
        format!("{scheme}{user}:***{}", &rest[at..])
    } else {
        // `redis://secret@host`: a lone userinfo is the password to Redis.
        format!("{scheme}***{}", &rest[at..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_tls_and_credentialed_urls() {
        for ok in [
            "redis://127.0.0.1:6379",
            "redis://localhost",
            "rediss://cache.internal:6380/0",
            "redis://user:pa%40ss@host:6379/2",
            "redis://:onlypassword@host/1",
        ] {
            let url = RedisUrl::parse(ok).expect(ok);
            assert_eq!(url.expose(), ok);
        }
        assert!(RedisUrl::parse("rediss://h").expect("valid").is_tls());
        assert!(!RedisUrl::parse("redis://h").expect("valid").is_tls());
    }

    #[test]
    fn refuses_other_schemes_and_garbage_without_echoing_a_password() {
        for bad in [
            "http://user:hunter2@host",
            "redis//host",
            "localhost:6379",
            "redis://user:hunter2@host:notaport",
            "redis://user:hunter2@[::1",
        ] {
            let err = RedisUrl::parse(bad).expect_err(bad);
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("redis://"), "{err}");
        }
    }

    #[test]
    fn display_and_debug_mask_the_password() {
        let url = RedisUrl::parse("redis://app:hunter2@host:6379/0").expect("valid");
        assert_eq!(url.to_string(), "redis://app:***@host:6379/0");
        assert!(!format!("{url:?}").contains("hunter2"));
        let lone = RedisUrl::parse("redis://hunter2@host").expect("valid");
        assert_eq!(lone.to_string(), "redis://***@host");
        let plain = RedisUrl::parse("redis://host:6379").expect("valid");
        assert_eq!(plain.to_string(), "redis://host:6379");
    }
}
