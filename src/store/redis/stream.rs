//! Appending entries to one Redis Stream (`XADD … MAXLEN ~ N * …`) through
//! the store's pool, and trimming it by age (`XTRIM … MINID = …`). The
//! stream is one key, so on a Cluster every command goes to the master of
//! its slot.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use deadpool_redis::redis;

use super::connection::RedisConnections;
use crate::store::StoreError;

/// Appends field/value entries to one stream. Knows nothing of what they mean.
pub struct RedisStreamAppender {
    connections: Arc<RedisConnections>,
    key: String,
    maxlen: u64,
    timeout: Duration,
}

impl RedisStreamAppender {
    pub(super) fn new(
        connections: Arc<RedisConnections>,
        key: &str,
        maxlen: u64,
        timeout: Duration,
    ) -> Self {
        Self {
            connections,
            key: key.to_owned(),
            maxlen,
            timeout,
        }
    }

    /// Appends `entries` in order, in one round trip, each with a
    /// server-assigned id. `MAXLEN ~` lets Redis trim whole nodes lazily,
    /// which keeps each append O(1). Bounded by the store's timeout.
    pub async fn append(&self, entries: &[Vec<(&'static str, String)>]) -> Result<(), StoreError> {
        let mut pipeline = redis::pipe();
        for fields in entries {
            pipeline
                .cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.maxlen)
                .arg("*")
                .arg(fields)
                .ignore();
        }
        self.run(&pipeline).await
    }

    /// Removes every entry older than `max_age`: `XTRIM MINID =` with the
    /// id of that moment (an entry id starts with Redis's clock in ms when
    /// it was added; this replica's clock picks the moment, so skew between
    /// the two moves the bound by as much). Exact (`=`), not `~`: an
    /// approximate trim keeps whole nodes of up to 100 entries that hold
    /// one newer entry, so old ones could stay for as long as the stream is
    /// quiet. Each entry is removed once, so the cost is per entry aged out.
    pub async fn trim_older_than(&self, max_age: Duration) -> Result<(), StoreError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let oldest_kept = now_ms.saturating_sub(max_age.as_millis());
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("XTRIM")
            .arg(&self.key)
            .arg("MINID")
            .arg("=")
            .arg(u64::try_from(oldest_kept).unwrap_or(u64::MAX))
            .ignore();
        self.run(&pipeline).await
    }

    async fn run(&self, pipeline: &redis::Pipeline) -> Result<(), StoreError> {
        tokio::time::timeout(self.timeout, self.connections.query_pipeline(pipeline))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("Redis did not answer within {:?}", self.timeout))
            })?
    }
}
