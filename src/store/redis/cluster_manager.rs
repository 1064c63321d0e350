//! The manager of the cluster pool: deadpool-redis's, but with the
//! configured timeout (`OTP_REDIS_TIMEOUT_MS`) applied to the cluster client.
//!
//! deadpool-redis 0.23's `cluster::Manager` builds its `ClusterClient` from
//! the seed URLs alone, and neither its `Config` nor the URLs can carry a
//! timeout, so redis-rs's defaults applied: every node connection (made for
//! each new pooled connection, and whenever the driver reconnects to a node)
//! gave up after 1 s, and replies were awaited without limit. On a loaded
//! machine a node that took over 1 s to connect and answer failed a call as
//! UNAVAILABLE although the store's timeout was far longer. This manager is
//! the same (one `ClusterClient`, a PING to check an idle connection) but
//! builds the client itself; the pool around it is still deadpool's.

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_redis::{
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection},
    redis::{self, RedisError, RedisResult},
};

/// Makes cluster connections whose node connections and replies are bounded
/// by the configured timeout.
pub(super) struct ClusterManager {
    client: ClusterClient,
}

impl ClusterManager {
    /// A manager for the cluster behind `seeds`. Replicas are never read: a
    /// replica may lag, and every script here writes anyway.
    pub(super) fn new(seeds: Vec<&str>, timeout: Duration) -> RedisResult<Self> {
        let client = ClusterClientBuilder::new(seeds)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()?;
        Ok(Self { client })
    }
}

impl managed::Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<ClusterConnection, RedisError> {
        self.client.get_async_connection().await
    }

    /// Any reply to a PING proves the connection still reaches the cluster
    /// (an error reply comes back as `Err`).
    async fn recycle(
        &self,
        connection: &mut ClusterConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        redis::cmd("PING").query_async::<String>(connection).await?;
        Ok(())
    }
}
