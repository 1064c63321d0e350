//! Redis addresses as the operator gives them (`REDIS_URL`,
//! `REDIS_CLUSTER_URLS`, `REDIS_SENTINEL_URLS`): accepted once at startup,
//! and never shown with their passwords.

use std::fmt;

use deadpool_redis::redis::IntoConnectionInfo;

/// A Redis connection URL (`redis://` or `rediss://`) the driver can use.
/// `Debug` and `Display` mask the password, so the URL is safe to log.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    raw: String,
    database: i64,
    username: Option<String>,
    password: Option<String>,
}

impl RedisUrl {
    /// Accepts `redis://[user[:password]@]host[:port][/db]` or the same with
    /// `rediss://` (TLS). The error text never contains the password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let scheme_ok = raw.starts_with("redis://") || raw.starts_with("rediss://");
        // Let the driver parse it too, so nothing accepted here fails later.
        let info = raw
            .into_connection_info()
            .ok()
            .filter(|_| scheme_ok)
            .ok_or_else(|| {
                if scheme_ok {
                    // The scheme is right: what is wrong is further on.
                    format!(
                        "is not a URL the Redis driver accepts: check the host, the port \
                         (1-65535) and the database number (got `{}`)",
                        mask_password(raw)
                    )
                } else {
                    format!(
                        "must be a redis:// or rediss:// URL such as \
                         redis://user:password@host:6379/0 (got `{}`)",
                        mask_password(raw)
                    )
                }
            })?;
        let settings = info.redis_settings();
        Ok(Self {
            raw: raw.to_owned(),
            database: settings.db(),
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
        })
    }

    /// The URL as given, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// Whether the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.raw.starts_with("rediss://")
    }

    /// The logical database the URL selects (0 unless it ends in `/<db>`).
    pub fn database(&self) -> i64 {
        self.database
    }

    /// The ACL user name, if the URL has one.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The password, if the URL has one: for the driver only.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_password(&self.raw))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// The nodes of one Redis deployment (cluster seed nodes, or sentinels), from
/// a comma-separated list of URLs. Non-empty; every URL uses the same scheme
/// and credentials (the driver uses one set for every node it discovers) and
/// database 0 (Redis Cluster has no other, and sentinels have none at all).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisNodes {
    first: RedisUrl,
    others: Vec<RedisUrl>,
}

impl RedisNodes {
    /// Parses `redis://host:7000,redis://host:7001,...`. Spaces around the
    /// commas are ignored. The error text never contains a password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let urls = raw
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(RedisUrl::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut urls = urls.into_iter();
        let Some(first) = urls.next() else {
            return Err("must list at least one redis:// or rediss:// URL, comma-separated".into());
        };
        let others: Vec<RedisUrl> = urls.collect();
        let all = || std::iter::once(&first).chain(&others);
        if let Some(other) = all().find(|url| url.database != 0) {
            return Err(format!(
                "must not select a database (`{other}`): only database 0 exists here"
            ));
        }
        if let Some(other) = all().find(|url| {
            url.is_tls() != first.is_tls()
                || url.username != first.username
                || url.password != first.password
        }) {
            return Err(format!(
                "every URL must use the same scheme, user and password \
                 (`{first}` and `{other}` differ)"
            ));
        }
        Ok(Self { first, others })
    }

    /// The URLs in the order given, passwords included: for the driver only.
    pub fn urls(&self) -> impl Iterator<Item = &RedisUrl> {
        std::iter::once(&self.first).chain(&self.others)
    }

    /// The first URL; every URL shares its scheme and credentials.
    pub fn first(&self) -> &RedisUrl {
        &self.first
    }
}

impl fmt::Display for RedisNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, url) in self.urls().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{url}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisNodes({self})")
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
    fn a_right_scheme_with_a_bad_port_says_what_to_check() {
        let err = RedisUrl::parse("redis://:hunter2@127.0.0.1:99999").expect_err("port");
        assert!(err.contains("the port (1-65535)"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = RedisUrl::parse("localhost:6379").expect_err("scheme");
        assert!(err.contains("redis:// or rediss://"), "{err}");
    }

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

    #[test]
    fn node_lists_keep_every_url_and_mask_every_password() {
        let nodes = RedisNodes::parse(" redis://u:hunter2@a:7000 ,redis://u:hunter2@b:7001,")
            .expect("valid");
        let urls: Vec<&str> = nodes.urls().map(RedisUrl::expose).collect();
        assert_eq!(
            urls,
            ["redis://u:hunter2@a:7000", "redis://u:hunter2@b:7001"]
        );
        assert_eq!(nodes.first().username(), Some("u"));
        assert_eq!(nodes.first().password(), Some("hunter2"));
        assert_eq!(
            nodes.to_string(),
            "redis://u:***@a:7000,redis://u:***@b:7001"
        );
        assert!(!format!("{nodes:?}").contains("hunter2"));
    }

    #[test]
    fn node_lists_must_agree_on_scheme_credentials_and_database_zero() {
        for bad in [
            "",
            " , ",
            "redis://a:1,localhost:2",
            "redis://a:1/2",
            "redis://a:1,rediss://b:2",
            "redis://u:hunter2@a:1,redis://b:2",
            "redis://u:hunter2@a:1,redis://v:hunter2@b:2",
        ] {
            let err = RedisNodes::parse(bad).expect_err(bad);
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
}
