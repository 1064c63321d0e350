//! The manager of the sentinel pool: deadpool-redis's, but with the
//! configured timeout (`OTP_REDIS_TIMEOUT_MS`) applied to the connections it
//! opens at the master.
//!
//! deadpool-redis 0.23's `sentinel::Manager` opens each master connection
//! with `SentinelClient::get_async_connection()`, i.e. redis-rs's defaults:
//! 1 s to connect and 500 ms for every reply on that connection, whatever
//! the store's timeout. On a loaded machine a master slower than that failed
//! a call as UNAVAILABLE although the store's timeout was far longer. This
//! manager is the same (one `SentinelClient` behind a lock, a numbered PING
//! to check an idle connection) but opens master connections with the
//! store's timeout; the pool around it is still deadpool's. The queries to
//! the sentinels themselves are unchanged: redis-rs's, within the pool's
//! `create` timeout as before.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, IntoConnectionInfo, RedisError, RedisResult,
    aio::MultiplexedConnection,
    sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType},
};
use tokio::sync::Mutex;

/// Makes connections to the master the sentinels name, whose connect and
/// replies are bounded by the configured timeout.
pub(super) struct SentinelManager {
    /// Locked because asking the sentinels needs `&mut` (it caches their
    /// connections).
    client: Mutex<SentinelClient>,
    connection: AsyncConnectionConfig,
    ping_number: AtomicUsize,
}

impl SentinelManager {
    /// A manager for the master the `sentinels` name `master`, reached with
    /// `node`'s TLS mode and credentials.
    pub(super) fn new<T: IntoConnectionInfo>(
        sentinels: Vec<T>,
        master: &str,
        node: SentinelNodeConnectionInfo,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let client =
            SentinelClient::build(sentinels, master, Some(node), SentinelServerType::Master)?;
        Ok(Self {
            client: Mutex::new(client),
            connection: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            ping_number: AtomicUsize::new(0),
        })
    }
}

impl managed::Manager for SentinelManager {
    type Type = MultiplexedConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut client = self.client.lock().await;
        client
            .get_async_connection_with_config(&self.connection)
            .await
    }

    /// The reply must echo this check's own number, so a reply meant for
    /// some other command cannot pass for it.
    async fn recycle(
        &self,
        connection: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        let number = self.ping_number.fetch_add(1, Ordering::Relaxed).to_string();
        let echoed = redis::cmd("PING")
            .arg(&number)
            .query_async::<String>(connection)
            .await?;
        if echoed == number {
            Ok(())
        } else {
            Err(RecycleError::message("PING echoed another number"))
        }
    }
}
