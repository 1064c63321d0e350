//! The pools for one Redis server, a Redis Cluster and a Sentinel-managed
//! master: deadpool-redis's connections (and our managers) with a cheaper
//! check on checkout, lent out rather than held for the length of a call.
//!
//! deadpool-redis's own `recycle` sends UNWATCH + PING before every checkout,
//! a second round trip for every store call. Here a connection on which a
//! call got no reply (I/O error, timeout, cancelled) or a READONLY reply is
//! discarded at its next checkout, so a dead or demoted Redis is still
//! noticed at once and the pool makes a fresh connection; one in steady use
//! is handed out as it is; one idle for longer than [`TRUSTED_WHILE_IN_USE`]
//! is PINGed as before, so a Redis restarted while the pool sat idle costs no
//! call.
//!
//! A call does not keep its connection checked out: it takes a clone of the
//! multiplexed (or cluster) connection (the same sockets, see
//! [`PooledConnection::lend`])
//! and returns the pooled one at once. Concurrent calls thus share one socket
//! and their commands are pipelined (one write and one read for many calls,
//! on our side and on Redis's) instead of each holding a connection of its
//! own for a whole round trip.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_redis::redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};

/// A pooled connection is handed out again without a PING if it was last
/// checked out this recently and no call on it went without a usable reply.
const TRUSTED_WHILE_IN_USE: Duration = Duration::from_secs(1);

/// One pooled connection and whether it can still be trusted.
pub(super) struct PooledConnection<C> {
    connection: C,
    /// Set for good once a call on this connection got no usable reply: it
    /// is then never handed out again.
    suspect: Arc<AtomicBool>,
}

impl<C: Clone> PooledConnection<C> {
    /// The connection for one call: a clone sharing this connection's socket,
    /// so the pooled connection can go straight back to the pool.
    pub(super) fn lend(&self) -> LentConnection<C> {
        LentConnection {
            connection: self.connection.clone(),
            suspect: Arc::clone(&self.suspect),
            settled: false,
        }
    }
}

/// One call's use of a pooled connection. Dropped before
/// [`LentConnection::settle`] (the call was cancelled midway), it marks the
/// connection suspect: a reply may still be on its way on that socket.
pub(super) struct LentConnection<C> {
    pub(super) connection: C,
    suspect: Arc<AtomicBool>,
    settled: bool,
}

impl<C> LentConnection<C> {
    /// Records whether Redis answered usably, and passes the result on.
    pub(super) fn settle<T>(mut self, result: RedisResult<T>) -> RedisResult<T> {
        self.settled = true;
        if result.as_ref().is_err_and(leaves_connection_unusable) {
            self.suspect.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl<C> Drop for LentConnection<C> {
    fn drop(&mut self) {
        if !self.settled {
            self.suspect.store(true, Ordering::Relaxed);
        }
    }
}

fn leaves_connection_unusable(err: &RedisError) -> bool {
    match err.kind() {
        // READONLY: the connection reaches a replica (a demoted master); it
        // would fail every write, so it must go.
        ErrorKind::Server(ServerErrorKind::ReadOnly) => true,
        // Redis replied (with an error, or a reply this code cannot read):
        // the connection itself is fine.
        ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType => false,
        _ => true,
    }
}

/// A deadpool-redis manager (one server's, a cluster's or a sentinel
/// master's), with the checkout
/// check described above; its own check (a PING) runs only on idle connections.
pub(super) struct TrustedManager<M>(pub(super) M);

impl<M> managed::Manager for TrustedManager<M>
where
    M: managed::Manager<Error = RedisError>,
    M::Type: Clone,
{
    type Type = PooledConnection<M::Type>;
    type Error = RedisError;

    // `create` and `recycle` box the wrapped manager's futures (a connect
    // with its TLS and HELLO steps; a PING): they run rarely, and unboxed
    // they sat inside every checkout's future, making each store call's
    // future 10.4 kB (0.9 kB now) that was built and copied on every call:
    // a Redis SendOtp ran 6 % more instructions (BENCHMARKS.md, issue 14).
    async fn create(&self) -> Result<PooledConnection<M::Type>, RedisError> {
        Ok(PooledConnection {
            connection: Box::pin(self.0.create()).await?,
            suspect: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn recycle(
        &self,
        pooled: &mut PooledConnection<M::Type>,
        metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        if pooled.suspect.load(Ordering::Relaxed) {
            return Err(RecycleError::message("a call on it got no usable reply"));
        }
        if metrics.last_used() < TRUSTED_WHILE_IN_USE {
            return Ok(());
        }
        Box::pin(self.0.recycle(&mut pooled.connection, metrics)).await
    }
}

/// A pool of connections made by the deadpool-redis manager `M`.
pub(super) type TrustedPool<M> = managed::Pool<TrustedManager<M>>;
