//! Appending entries to one Redis Stream (`XADD … MAXLEN ~ N * …`) through
//! the store's pool. The stream is one key, so on a Cluster every append
//! goes to the master of its slot.

use std::{sync::Arc, time::Duration};

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
        tokio::time::timeout(self.timeout, self.connections.query_pipeline(&pipeline))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("Redis did not answer within {:?}", self.timeout))
            })?
    }
}
