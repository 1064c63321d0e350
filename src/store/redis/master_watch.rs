//! Sentinel set-ups: noticing that the sentinels name a new master.
//!
//! When the sentinels fail over while the old master is still up
//! (`SENTINEL FAILOVER` for maintenance, or a master that was only cut off),
//! the old master keeps answering as a master for several seconds until the
//! sentinels demote it, and every write it takes meanwhile is thrown away
//! when it resyncs from the new master. The pool checks its connections with
//! a PING, which the old master passes, so it would keep using them. Hence
//! each store ping (twice a second, by the health check) also asks the
//! sentinels which master they name, and a change retires every connection
//! opened before it: the pool then opens new ones, at the new master.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use deadpool::managed::{Hook, HookError, Manager};
use deadpool_redis::redis::{self, AsyncConnectionConfig, aio::MultiplexedConnection};

use super::url::RedisNodes;
use crate::store::StoreError;

/// The master the sentinels name, and when that last changed.
pub(super) struct MasterWatch {
    sentinels: Vec<redis::Client>,
    master: String,
    /// One open connection per sentinel, reused between checks.
    connections: tokio::sync::Mutex<Vec<Option<MultiplexedConnection>>>,
    connection_config: AsyncConnectionConfig,
    /// Longest a check may take, so that a sentinel that hangs cannot hold
    /// up the store's ping.
    budget: Duration,
    /// `host:port` of the master named at the last check.
    named: Mutex<Option<String>>,
    /// When a different master was last noticed; shared with the pool hook.
    switched_at: Arc<Mutex<Option<Instant>>>,
}

impl MasterWatch {
    /// Asks at most for half of `timeout`; the ping needs the rest.
    pub(super) fn new(
        sentinels: &RedisNodes,
        master: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let budget = timeout / 2;
        let clients = sentinels
            .urls()
            .map(|url| redis::Client::open(url.expose()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| StoreError::Unavailable(format!("invalid sentinel URL: {err}")))?;
        Ok(Self {
            connections: tokio::sync::Mutex::new(vec![None; clients.len()]),
            sentinels: clients,
            master: master.to_owned(),
            connection_config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(budget))
                .set_response_timeout(Some(budget)),
            budget,
            named: Mutex::new(None),
            switched_at: Arc::new(Mutex::new(None)),
        })
    }

    /// A pool hook that refuses (and so closes) a pooled connection opened
    /// before the last noticed switch; the pool then opens a new one.
    pub(super) fn retire_hook<M: Manager>(&self) -> Hook<M> {
        let switched_at = Arc::clone(&self.switched_at);
        Hook::sync_fn(move |_, metrics| {
            let switched_at = *switched_at.lock().unwrap_or_else(PoisonError::into_inner);
            match switched_at {
                Some(switch) if metrics.created < switch => Err(HookError::Message(
                    "opened before the sentinels named a new master".into(),
                )),
                _ => Ok(()),
            }
        })
    }

    /// Asks the first sentinel that answers which master it names, and notes
    /// a change. Errors only mean no sentinel could be asked this time.
    pub(super) async fn check(&self) -> Result<(), StoreError> {
        let named = tokio::time::timeout(self.budget, self.ask_sentinels())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("no sentinel answered within {:?}", self.budget))
            })??;
        let mut last = self.named.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(before), Some(now)) = (last.as_deref(), named.as_deref())
            && before != now
        {
            tracing::warn!(
                master = %self.master,
                from = before,
                to = now,
                "sentinels name a new master: retiring connections to the old one"
            );
            *self
                .switched_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        if named.is_some() {
            *last = named;
        }
        Ok(())
    }

    async fn ask_sentinels(&self) -> Result<Option<String>, StoreError> {
        let mut connections = self.connections.lock().await;
        let mut last_error = None;
        for (client, cached) in self.sentinels.iter().zip(connections.iter_mut()) {
            let connection = match cached {
                Some(connection) => connection,
                None => match client
                    .get_multiplexed_async_connection_with_config(&self.connection_config)
                    .await
                {
                    Ok(connection) => cached.insert(connection),
                    Err(err) => {
                        last_error = Some(err);
                        continue;
                    }
                },
            };
            let reply: Result<Option<(String, u16)>, _> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&self.master)
                .query_async(connection)
                .await;
            match reply {
                Ok(address) => return Ok(address.map(|(host, port)| format!("{host}:{port}"))),
                Err(err) => {
                    // Reconnect next time: the connection may be broken.
                    *cached = None;
                    last_error = Some(err);
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "no sentinel answered: {}",
            last_error.map(|err| err.to_string()).unwrap_or_default()
        )))
    }
}
