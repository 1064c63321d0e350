//! The store a test runs on: the settings that point a server at it (plus
//! the private redis-server they name), and [`TestStore`], the same store
//! opened alone for tests that call the [`OtpStore`] trait directly.

use std::{ops::Deref, sync::Arc};

use otp_service::{Config, server::open_store, store::OtpStore};

use super::{
    RedisCluster, RedisSentinels, RedisServer, TEST_SECRET, redis_sentinel::MASTER_NAME,
    unique_prefix,
};

/// Which store implementation a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded in-memory store.
    Memory,
    /// A private redis-server started for the test.
    Redis,
    /// The process's shared 3+3 Redis Cluster ([`RedisCluster::shared`]),
    /// under a key prefix of the test's own.
    RedisCluster,
    /// The process's shared Sentinel set-up ([`RedisSentinels::shared`]),
    /// under a key prefix of the test's own.
    RedisSentinel,
}

/// The settings (env vars, as an operator would set them) that select a
/// store, and the private redis-server they name, if any.
pub(super) struct StoreSetUp {
    pub vars: Vec<(String, String)>,
    /// Kept alive as long as whatever uses the store.
    pub redis: Option<RedisServer>,
}

impl StoreSetUp {
    /// Starts (or, for the shared set-ups, joins) the store of `kind`. The
    /// shared Cluster and Sentinel set-ups are never failed over: tests that
    /// kill nodes start their own.
    pub async fn start(kind: StoreKind) -> Self {
        let vars = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        match kind {
            StoreKind::Memory => Self {
                vars: Vec::new(),
                redis: None,
            },
            StoreKind::Redis => {
                let redis = RedisServer::start().await;
                Self {
                    vars: vars(&[("REDIS_URL", &redis.url())]),
                    redis: Some(redis),
                }
            }
            StoreKind::RedisCluster => {
                let urls = tokio::task::spawn_blocking(|| RedisCluster::shared().urls())
                    .await
                    .expect("cluster starts");
                Self {
                    vars: vars(&[
                        ("REDIS_CLUSTER_URLS", &urls),
                        ("OTP_REDIS_PREFIX", &unique_prefix()),
                    ]),
                    redis: None,
                }
            }
            StoreKind::RedisSentinel => {
                let urls = tokio::task::spawn_blocking(|| RedisSentinels::shared().urls())
                    .await
                    .expect("sentinels start");
                Self {
                    vars: vars(&[
                        ("REDIS_SENTINEL_URLS", &urls),
                        ("REDIS_SENTINEL_MASTER", MASTER_NAME),
                        ("OTP_REDIS_PREFIX", &unique_prefix()),
                    ]),
                    redis: None,
                }
            }
        }
    }
}

/// Names the console gateway for a server whose gateway the harness replaces
/// (or that has none): with Redis the service takes console only by name.
pub(super) fn console_named() -> (String, String) {
    ("OTP_SMS_GATEWAY".to_owned(), "console".to_owned())
}

/// The configuration a test server runs with: port 0, the shared test
/// secret, then `vars` (later values win).
pub fn test_config(vars: &[(String, String)]) -> Config {
    let defaults = [
        ("OTP_LISTEN_ADDR", "127.0.0.1:0"),
        ("OTP_HMAC_SECRET", TEST_SECRET),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    Config::from_vars(defaults.into_iter().chain(vars.iter().cloned()))
        .expect("test configuration is valid")
}

/// A store opened from its settings exactly as the server opens it, for
/// tests that drive [`OtpStore`] directly (no gRPC, no flow).
pub struct TestStore {
    store: Arc<dyn OtpStore>,
    _redis: Option<RedisServer>,
}

impl TestStore {
    pub async fn open(kind: StoreKind) -> Self {
        Self::open_with(kind, &[]).await
    }

    /// Like [`TestStore::open`], with settings of the test's own after the
    /// store's (e.g. `RACE_SETTINGS`).
    pub async fn open_with(kind: StoreKind, env: &[(&str, &str)]) -> Self {
        let mut set_up = StoreSetUp::start(kind).await;
        set_up.vars.push(console_named());
        set_up
            .vars
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = test_config(&set_up.vars);
        let store = open_store(&config.store, config.memory_max_entries).expect("the store opens");
        Self {
            store,
            _redis: set_up.redis,
        }
    }
}

impl TestStore {
    /// The store itself, for tasks of their own (concurrent calls).
    pub fn shared(&self) -> Arc<dyn OtpStore> {
        Arc::clone(&self.store)
    }
}

impl Deref for TestStore {
    type Target = dyn OtpStore;

    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}
