//! The one place that knows how Redis is deployed. The store's scripts, keys,
//! error mapping and timeouts are the same for every topology; only how a
//! connection is obtained (and where a command is routed) differs.

use std::{collections::HashMap, fmt, time::Duration};

use deadpool_redis::{
    PoolConfig, PoolError, RedisConnectionInfo, Runtime, Timeouts,
    redis::{
        self, AsyncConnectionConfig, ErrorKind, FromRedisValue, RedisError, ScriptInvocation,
        ServerErrorKind,
    },
    sentinel::{SentinelNodeConnectionInfo, TlsMode},
};

use super::{
    cluster_manager::ClusterManager,
    master_watch::MasterWatch,
    sentinel_manager::SentinelManager,
    trusted_pool::{TrustedManager, TrustedPool},
    url::{RedisNodes, RedisUrl},
};
use crate::store::StoreError;

/// How the Redis that holds the store is deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One server, or any endpoint that behaves like one (`REDIS_URL`).
    Single(RedisUrl),
    /// A Redis Cluster, discovered from these seed nodes (`REDIS_CLUSTER_URLS`).
    /// Every key of one subject shares a hash tag, so each script runs on the
    /// one master that owns the subject's slot.
    Cluster(RedisNodes),
    /// The master that these sentinels currently name `master`
    /// (`REDIS_SENTINEL_URLS`, `REDIS_SENTINEL_MASTER`). The URLs' scheme and
    /// credentials are used for the master too.
    Sentinel {
        /// The sentinels to ask.
        sentinels: RedisNodes,
        /// The name the sentinels monitor the master under.
        master: String,
    },
}

impl RedisTopology {
    fn uses_tls(&self) -> bool {
        match self {
            Self::Single(url) => url.is_tls(),
            Self::Cluster(nodes)
            | Self::Sentinel {
                sentinels: nodes, ..
            } => nodes.first().is_tls(),
        }
    }
}

/// Passwords are masked, so this is safe to log.
impl fmt::Display for RedisTopology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single(url) => write!(f, "single server {url}"),
            Self::Cluster(nodes) => write!(f, "cluster with seed nodes {nodes}"),
            Self::Sentinel { sentinels, master } => {
                write!(f, "master `{master}` of sentinels {sentinels}")
            }
        }
    }
}

fn invalid(err: RedisError) -> StoreError {
    StoreError::Unavailable(format!("invalid Redis settings: {err}"))
}

fn unbuilt(err: impl fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot build Redis pool: {err}"))
}

/// One server: every connection to the one URL.
fn single_pool(
    url: &RedisUrl,
    config: PoolConfig,
    timeout: Duration,
) -> Result<TrustedPool<deadpool_redis::Manager>, StoreError> {
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let manager =
        deadpool_redis::Manager::new_with_config(url.expose(), connection).map_err(invalid)?;
    TrustedPool::builder(TrustedManager(manager))
        .config(config)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(unbuilt)
}

/// A cluster, discovered from its seed nodes; node connections and replies
/// are bounded by `timeout` (see `cluster_manager.rs`).
fn cluster_pool(
    nodes: &RedisNodes,
    config: PoolConfig,
    timeout: Duration,
) -> Result<TrustedPool<ClusterManager>, StoreError> {
    let seeds = nodes.urls().map(RedisUrl::expose).collect();
    let manager = ClusterManager::new(seeds, timeout).map_err(invalid)?;
    TrustedPool::builder(TrustedManager(manager))
        .config(config)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(unbuilt)
}

/// How the master is reached: with the TLS mode and credentials of the
/// first sentinel URL (README: the sentinels' credentials and TLS are used
/// for the master too).
fn master_connection(first: &RedisUrl) -> SentinelNodeConnectionInfo {
    SentinelNodeConnectionInfo {
        tls_mode: first.is_tls().then_some(TlsMode::Secure),
        redis_connection_info: Some(RedisConnectionInfo {
            db: 0,
            username: first.username().map(str::to_owned),
            password: first.password().map(str::to_owned),
            protocol: Default::default(),
        }),
    }
}

/// The master the sentinels name, reached with the sentinels' scheme and
/// credentials; connecting and replies are bounded by `timeout` (see
/// `sentinel_manager.rs`); `watch` retires connections to a former master.
fn sentinel_pool(
    sentinels: &RedisNodes,
    master: &str,
    config: PoolConfig,
    timeout: Duration,
    watch: &MasterWatch,
) -> Result<TrustedPool<SentinelManager>, StoreError> {
    let node = master_connection(sentinels.first());
    let urls = sentinels.urls().map(RedisUrl::expose).collect();
    let manager = SentinelManager::new(urls, master, node.into(), timeout).map_err(invalid)?;
    TrustedPool::builder(TrustedManager(manager))
        .config(config)
        .runtime(Runtime::Tokio1)
        .pre_recycle(watch.retire_hook())
        .build()
        .map_err(unbuilt)
}

/// A connection pool of the configured topology.
pub(super) enum RedisConnections {
    Single(TrustedPool<deadpool_redis::Manager>),
    Cluster(TrustedPool<ClusterManager>),
    /// The watch retires connections to a master the sentinels no longer name.
    Sentinel(TrustedPool<SentinelManager>, Box<MasterWatch>),
}

impl RedisConnections {
    /// Builds the pool without connecting, so the service starts (NOT_SERVING)
    /// while Redis is down. Every wait (for a free connection, to connect, to
    /// check an idle connection) is bounded by `timeout`.
    pub(super) fn new(
        topology: &RedisTopology,
        pool_size: usize,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        if topology.uses_tls() {
            // rustls needs one process-wide crypto provider; picking it here
            // (rather than relying on crate features) keeps TLS working if
            // another dependency ever enables a second provider. An error
            // means one is installed already, which is just as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut config = PoolConfig::new(pool_size);
        config.timeouts = Timeouts {
            wait: Some(timeout),
            create: Some(timeout),
            recycle: Some(timeout),
        };
        Ok(match topology {
            RedisTopology::Single(url) => Self::Single(single_pool(url, config, timeout)?),
            RedisTopology::Cluster(nodes) => Self::Cluster(cluster_pool(nodes, config, timeout)?),
            RedisTopology::Sentinel { sentinels, master } => {
                let watch = MasterWatch::new(sentinels, master, timeout)?;
                let pool = sentinel_pool(sentinels, master, config, timeout, &watch)?;
                Self::Sentinel(pool, Box::new(watch))
            }
        })
    }

    /// Runs one script on a pooled connection. On a cluster the script goes
    /// to the master of its key's slot; the driver follows MOVED/ASK and
    /// refreshes its slot map when a master changes.
    pub(super) async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        match self {
            Self::Single(pool) => {
                // Lent, not held: the pooled connection goes back at once and
                // concurrent calls pipeline over its socket. One left without a
                // usable reply (or READONLY) is discarded at its next checkout,
                // see `trusted_pool.rs`.
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = invocation.invoke_async(&mut lent.connection).await;
                lent.settle(reply).map_err(redis_error)
            }
            Self::Cluster(pool) => {
                // Lent like one server's (see above); the cluster connection
                // routes by slot and follows MOVED/ASK by itself.
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = invocation.invoke_async(&mut lent.connection).await;
                lent.settle(reply).map_err(redis_error)
            }
            Self::Sentinel(pool, _) => {
                // Lent like one server's; a READONLY reply (the master was
                // demoted) discards the connection at its next checkout.
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = invocation.invoke_async(&mut lent.connection).await;
                lent.settle(reply).map_err(redis_error)
            }
        }
    }

    /// `CONFIG GET <name>`: the value, or `None` when Redis refuses the
    /// command (managed Redis often renames or forbids CONFIG; an ACL user
    /// may lack `+config`) or answers in a shape this code does not read (a
    /// cluster's per-node replies). Only an unreachable Redis is an error.
    pub(super) async fn config_get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let command = redis::cmd("CONFIG").arg("GET").arg(name).clone();
        // A map: RESP3 (`?protocol=resp3`) answers with one, RESP2 with a
        // `[name, value]` array that reads as one.
        let reply: Result<HashMap<String, String>, RedisError> = match self {
            Self::Single(pool) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = command.query_async(&mut lent.connection).await;
                lent.settle(reply)
            }
            Self::Cluster(pool) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = command.query_async(&mut lent.connection).await;
                lent.settle(reply)
            }
            Self::Sentinel(pool, _) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = command.query_async(&mut lent.connection).await;
                lent.settle(reply)
            }
        };
        match reply {
            // Empty when the parameter does not exist.
            Ok(pair) => Ok(pair.into_values().next()),
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType | ErrorKind::Parse
                ) =>
            {
                tracing::debug!(error = %err, "CONFIG GET {name} refused");
                Ok(None)
            }
            Err(err) => Err(redis_error(err)),
        }
    }

    /// Runs `pipeline` on a pooled connection (on a cluster, at the master of
    /// its keys' slot: every command of it must name keys of one slot).
    pub(super) async fn query_pipeline(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<(), StoreError> {
        match self {
            // Lent, like `invoke`'s.
            Self::Single(pool) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = pipeline.exec_async(&mut lent.connection).await;
                lent.settle(reply).map_err(redis_error)
            }
            Self::Cluster(pool) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = pipeline.exec_async(&mut lent.connection).await;
                lent.settle(reply).map_err(redis_error)
            }
            Self::Sentinel(pool, _) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = pipeline.exec_async(&mut lent.connection).await;
                lent.settle(reply).map_err(redis_error)
            }
        }
    }

    /// Checks that Redis can serve requests now. One server or a sentinel
    /// master: a PING on a pooled connection (itself checked by the pool, and
    /// on sentinel set-ups opened at the master the sentinels name; the
    /// sentinels are then asked whether they still name the same master, see
    /// `master_watch.rs`). A cluster: `CLUSTER INFO` from any node must say
    /// `cluster_state:ok`, the cluster's own verdict on whether it serves
    /// every slot. (A PING fanned out to the masters proves less: the driver
    /// skips a master it has lost its connection to.)
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Single(pool) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = redis::cmd("PING")
                    .query_async::<String>(&mut lent.connection)
                    .await;
                lent.settle(reply).map(drop).map_err(redis_error)
            }
            Self::Sentinel(pool, watch) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = redis::cmd("PING")
                    .query_async::<String>(&mut lent.connection)
                    .await;
                lent.settle(reply).map_err(redis_error)?;
                // The master answered; whether the sentinels still name it
                // only decides which connections to keep, so a sentinel that
                // cannot be asked right now does not make the store unusable.
                if let Err(err) = watch.check().await {
                    tracing::debug!(error = %err, "cannot ask the sentinels for the master");
                }
                Ok(())
            }
            Self::Cluster(pool) => {
                let mut lent = pool.get().await.map_err(pool_error)?.lend();
                let reply = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async::<String>(&mut lent.connection)
                    .await;
                let info = lent.settle(reply).map_err(redis_error)?;
                let state = info
                    .lines()
                    .find_map(|line| line.trim().strip_prefix("cluster_state:"));
                match state {
                    Some("ok") => Ok(()),
                    Some(state) => Err(StoreError::Unavailable(format!(
                        "Redis Cluster reports cluster_state:{state}"
                    ))),
                    None => Err(StoreError::Protocol(
                        "CLUSTER INFO without cluster_state".into(),
                    )),
                }
            }
        }
    }
}

/// Whatever stops us getting a connection (refused, TLS, auth, timeout, no
/// master known to the sentinels) means Redis cannot serve us right now.
fn pool_error(err: PoolError) -> StoreError {
    StoreError::Unavailable(format!("no Redis connection: {err}"))
}

/// A reply this code cannot read, or a script that failed on the server, is a
/// defect (`Protocol`); everything else (I/O, refused, timeouts, loading,
/// read-only replica, cluster down, auth) means Redis cannot serve us right now.
fn redis_error(err: RedisError) -> StoreError {
    match err.kind() {
        ErrorKind::Parse
        | ErrorKind::UnexpectedReturnType
        | ErrorKind::Server(ServerErrorKind::ResponseError) => {
            StoreError::Protocol(format!("Redis: {err}"))
        }
        _ => StoreError::Unavailable(format!("Redis: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_is_reached_with_the_sentinels_tls_and_credentials() {
        let over_tls = RedisUrl::parse("rediss://otp-app:s3cret@sentinel-0:26379").expect("valid");
        let master = master_connection(&over_tls);
        assert!(matches!(master.tls_mode, Some(TlsMode::Secure)));
        let credentials = master.redis_connection_info.expect("credentials");
        assert_eq!(credentials.username.as_deref(), Some("otp-app"));
        assert_eq!(credentials.password.as_deref(), Some("s3cret"));

        let plain = RedisUrl::parse("redis://sentinel-0:26379").expect("valid");
        let master = master_connection(&plain);
        assert!(master.tls_mode.is_none());
        let credentials = master.redis_connection_info.expect("connection info");
        assert_eq!((credentials.username, credentials.password), (None, None));
    }
}
