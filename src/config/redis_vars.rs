//! The store variables: memory, or Redis as one server, a Redis Cluster or a
//! Sentinel-managed master, and the `OTP_REDIS_*` tuning shared by all three,
//! read into [`StoreConfig`] (defined beside the stores in `store`).

use std::time::Duration;

use clap::{Args, builder::RangedU64ValueParser, value_parser};

use super::{ConfigError, env::true_or_false};
use crate::store::{RedisNodes, RedisSettings, RedisTopology, RedisUrl, StoreConfig};

/// The variables that select Redis; at most one may be set.
pub const REDIS_SELECTORS: [&str; 3] = ["REDIS_URL", "REDIS_CLUSTER_URLS", "REDIS_SENTINEL_URLS"];

/// Default `OTP_REDIS_PREFIX`.
pub const DEFAULT_REDIS_PREFIX: &str = "otp";

/// The store: memory unless a Redis selector is set.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Store")]
pub struct RedisVars {
    /// One Redis server: `redis://[user:pass@]host[:port][/db]` or `rediss://...`
    /// (unset: in-memory store)
    #[arg(long, env = "REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// Redis Cluster: comma-separated `redis://` seed nodes
    #[arg(long, env = "REDIS_CLUSTER_URLS", value_name = "URL")]
    pub redis_cluster_urls: Option<String>,
    /// Redis Sentinel: comma-separated sentinel URLs
    #[arg(long, env = "REDIS_SENTINEL_URLS", value_name = "URL")]
    pub redis_sentinel_urls: Option<String>,
    /// The sentinels' master name; required with REDIS_SENTINEL_URLS
    #[arg(long, env = "REDIS_SENTINEL_MASTER")]
    pub redis_sentinel_master: Option<String>,
    /// First part of every Redis key: 1-64 of `A-Za-z0-9_-.:`
    #[arg(long, env = "OTP_REDIS_PREFIX", default_value = DEFAULT_REDIS_PREFIX,
          value_parser = redis_prefix)]
    pub redis_prefix: String,
    /// Most connections per replica [1-1024]
    #[arg(long, env = "OTP_REDIS_POOL_SIZE", default_value_t = 16,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_024))]
    pub redis_pool_size: usize,
    /// Bound on one store call, in milliseconds [10-60000]
    #[arg(long, env = "OTP_REDIS_TIMEOUT_MS", default_value_t = 1_000,
          value_parser = value_parser!(u64).range(10..=60_000))]
    pub redis_timeout_ms: u64,
    /// Run on a Redis whose maxmemory-policy may evict live keys (`true`; `1`, `yes`, `on` too)
    #[arg(long, env = "OTP_REDIS_ALLOW_EVICTION", default_value_t = false,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          ignore_case = true, value_parser = true_or_false())]
    pub redis_allow_eviction: bool,
}

/// Braces would change the Redis Cluster hash tag of every key.
fn redis_prefix(raw: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
    if (1..=64).contains(&raw.len()) && raw.chars().all(allowed) {
        Ok(raw.to_owned())
    } else {
        Err("must be 1 to 64 characters from A-Z a-z 0-9 _ - . :".to_owned())
    }
}

/// `REDIS_URL`, `REDIS_CLUSTER_URLS` or `REDIS_SENTINEL_URLS` (at most one)
/// selects Redis; the `OTP_REDIS_*` tuning variables are checked even without
/// them, so a typo is reported rather than ignored.
pub(super) fn store_config(vars: &RedisVars) -> Result<StoreConfig, ConfigError> {
    let Some(topology) = redis_topology(vars)? else {
        return Ok(StoreConfig::Memory);
    };
    Ok(StoreConfig::Redis(RedisSettings {
        topology,
        prefix: vars.redis_prefix.clone(),
        pool_size: vars.redis_pool_size,
        timeout: Duration::from_millis(vars.redis_timeout_ms),
    }))
}

/// Which Redis, if any. URL values are parsed by `RedisUrl`/`RedisNodes`,
/// whose messages show a URL with its password masked.
fn redis_topology(vars: &RedisVars) -> Result<Option<RedisTopology>, ConfigError> {
    let given = [
        vars.redis_url.as_deref(),
        vars.redis_cluster_urls.as_deref(),
        vars.redis_sentinel_urls.as_deref(),
    ];
    let mut selected = REDIS_SELECTORS
        .into_iter()
        .zip(given)
        .filter_map(|(var, raw)| raw.map(|raw| (var, raw)));
    let first = selected.next();
    if let (Some((first, _)), Some((second, _))) = (first, selected.next()) {
        return Err(ConfigError::new(
            second,
            format!(
                "cannot be combined with {first}: set exactly one of {}",
                REDIS_SELECTORS.join(", ")
            ),
        ));
    }
    let master = vars.redis_sentinel_master.as_deref();
    let topology = match first {
        None => None,
        Some((var @ "REDIS_CLUSTER_URLS", raw)) => Some(RedisTopology::Cluster(
            RedisNodes::parse(raw).map_err(|why| ConfigError::new(var, why))?,
        )),
        Some((var @ "REDIS_SENTINEL_URLS", raw)) => Some(RedisTopology::Sentinel {
            sentinels: RedisNodes::parse(raw).map_err(|why| ConfigError::new(var, why))?,
            master: sentinel_master(master)?,
        }),
        Some((var, raw)) => Some(RedisTopology::Single(
            RedisUrl::parse(raw).map_err(|why| ConfigError::new(var, why))?,
        )),
    };
    if master.is_some() && !matches!(topology, Some(RedisTopology::Sentinel { .. })) {
        return Err(ConfigError::new(
            "REDIS_SENTINEL_MASTER",
            "only applies with REDIS_SENTINEL_URLS, which is not set",
        ));
    }
    Ok(topology)
}

/// `REDIS_SENTINEL_MASTER`: required with sentinels. Sentinel names are single
/// words; a space or comma here is a mistake that would otherwise only show
/// up later as "no master found".
fn sentinel_master(raw: Option<&str>) -> Result<String, ConfigError> {
    let var = "REDIS_SENTINEL_MASTER";
    let master = raw.ok_or_else(|| {
        ConfigError::new(
            var,
            "is required with REDIS_SENTINEL_URLS: the name the sentinels monitor the \
             master under (`sentinel monitor <name> ...`)",
        )
    })?;
    if master.len() > 128 || !master.chars().all(|c| c.is_ascii_graphic() && c != ',') {
        return Err(ConfigError::new(
            var,
            format!(
                "must be 1 to 128 printable characters without spaces or commas (got `{master}`)"
            ),
        ));
    }
    Ok(master.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::config;

    #[test]
    fn redis_url_selects_redis_with_default_tuning() {
        let secret = "0123456789abcdef0123456789abcdef";
        let config = config(&[
            ("REDIS_URL", "redis://app:hunter2@cache:6379/2"),
            ("OTP_HMAC_SECRET", secret),
            CONSOLE,
        ])
        .expect("valid");
        let StoreConfig::Redis(redis) = config.store else {
            panic!("REDIS_URL selects Redis: {:?}", config.store);
        };
        let RedisTopology::Single(url) = &redis.topology else {
            panic!("REDIS_URL is one server: {:?}", redis.topology);
        };
        assert_eq!(url.expose(), "redis://app:hunter2@cache:6379/2");
        assert_eq!(redis.prefix, DEFAULT_REDIS_PREFIX);
        assert_eq!(redis.pool_size, 16);
        assert_eq!(redis.timeout, Duration::from_millis(1000));
        assert!(!format!("{redis:?}").contains("hunter2"), "{redis:?}");
    }

    #[test]
    fn unparseable_redis_url_is_one_line_without_the_password() {
        let err = config(&[("REDIS_URL", "redis://app:hunter2@cache:port")]).expect_err("bad");
        assert_eq!(err.var, "REDIS_URL");
        let line = err.to_string();
        assert!(line.starts_with("REDIS_URL: "), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
        assert!(line.contains("redis://app:***@cache:port"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    const SECRET: (&str, &str) = ("OTP_HMAC_SECRET", "0123456789abcdef0123456789abcdef");
    /// With Redis the gateway must be chosen by name (see `cross_checks.rs`).
    const CONSOLE: (&str, &str) = ("OTP_SMS_GATEWAY", "console");

    fn topology(vars: &[(&str, &str)]) -> Result<RedisTopology, ConfigError> {
        let mut vars = vars.to_vec();
        vars.extend([SECRET, CONSOLE]);
        match config(&vars)?.store {
            StoreConfig::Redis(redis) => Ok(redis.topology),
            StoreConfig::Memory => panic!("{vars:?} selects Redis"),
        }
    }

    #[test]
    fn cluster_urls_select_a_cluster_with_every_seed_node() {
        let topology = topology(&[(
            "REDIS_CLUSTER_URLS",
            "redis://app:hunter2@10.0.0.1:7000, redis://app:hunter2@10.0.0.2:7000,",
        )])
        .expect("valid");
        let RedisTopology::Cluster(nodes) = &topology else {
            panic!("a cluster: {topology:?}");
        };
        let urls: Vec<&str> = nodes.urls().map(RedisUrl::expose).collect();
        assert_eq!(
            urls,
            [
                "redis://app:hunter2@10.0.0.1:7000",
                "redis://app:hunter2@10.0.0.2:7000"
            ]
        );
        let shown = format!("{topology} {topology:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://app:***@10.0.0.2:7000"), "{shown}");
    }

    #[test]
    fn sentinel_urls_and_master_select_a_sentinel_set_up() {
        let topology = topology(&[
            (
                "REDIS_SENTINEL_URLS",
                "redis://:hunter2@s1:26379,redis://:hunter2@s2:26379",
            ),
            ("REDIS_SENTINEL_MASTER", "otp-master"),
        ])
        .expect("valid");
        let RedisTopology::Sentinel { sentinels, master } = &topology else {
            panic!("a sentinel set-up: {topology:?}");
        };
        assert_eq!(master, "otp-master");
        assert_eq!(sentinels.urls().count(), 2);
        assert_eq!(sentinels.first().password(), Some("hunter2"));
        let shown = format!("{topology} {topology:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("otp-master"), "{shown}");
    }

    #[test]
    fn two_redis_selectors_are_refused_naming_the_second() {
        let cases = [
            ("REDIS_URL", "REDIS_CLUSTER_URLS"),
            ("REDIS_URL", "REDIS_SENTINEL_URLS"),
            ("REDIS_CLUSTER_URLS", "REDIS_SENTINEL_URLS"),
        ];
        for (first, second) in cases {
            let vars = [
                (first, "redis://app:hunter2@h:1"),
                (second, "redis://app:hunter2@h:2"),
                ("REDIS_SENTINEL_MASTER", "m"),
                SECRET,
            ];
            let err = config(&vars).expect_err("two selectors");
            assert_eq!(err.var, second);
            let line = err.to_string();
            assert!(line.contains(first), "{line}");
            assert!(line.contains("exactly one of"), "{line}");
            assert!(!line.contains("hunter2"), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn sentinel_master_is_required_with_sentinels_and_only_with_them() {
        let err = config(&[("REDIS_SENTINEL_URLS", "redis://s:26379"), SECRET])
            .expect_err("no master name");
        assert_eq!(err.var, "REDIS_SENTINEL_MASTER");
        assert!(err.to_string().contains("is required"), "{err}");

        let err = config(&[("REDIS_SENTINEL_MASTER", "m")]).expect_err("no sentinels");
        assert_eq!(err.var, "REDIS_SENTINEL_MASTER");
        let err = config(&[
            ("REDIS_URL", "redis://h:1"),
            ("REDIS_SENTINEL_MASTER", "m"),
            SECRET,
        ])
        .expect_err("not a sentinel set-up");
        assert_eq!(err.var, "REDIS_SENTINEL_MASTER");

        let err = config(&[
            ("REDIS_SENTINEL_URLS", "redis://s:26379"),
            ("REDIS_SENTINEL_MASTER", "my master"),
            SECRET,
        ])
        .expect_err("a space");
        assert_eq!(err.var, "REDIS_SENTINEL_MASTER");
    }

    #[test]
    fn bad_node_lists_name_the_variable_without_the_password() {
        let cases = [
            ("REDIS_CLUSTER_URLS", ", ,", "at least one"),
            (
                "REDIS_CLUSTER_URLS",
                "redis://a:hunter2@h:1,h:2",
                "redis://",
            ),
            ("REDIS_CLUSTER_URLS", "redis://a:hunter2@h:1/3", "database"),
            (
                "REDIS_CLUSTER_URLS",
                "redis://a:hunter2@h:1,rediss://a:hunter2@h:2",
                "same scheme",
            ),
            (
                "REDIS_SENTINEL_URLS",
                "redis://a:hunter2@h:1,redis://a:other@h:2",
                "same scheme, user and password",
            ),
        ];
        for (var, value, expected) in cases {
            let err =
                config(&[(var, value), ("REDIS_SENTINEL_MASTER", "m"), SECRET]).expect_err(value);
            assert_eq!(err.var, var, "{err}");
            let line = err.to_string();
            assert!(line.contains(expected), "{line}");
            assert!(!line.contains("hunter2"), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
