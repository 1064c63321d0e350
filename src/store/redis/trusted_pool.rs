//! The pool for one Redis server: deadpool-redis's connections with a cheaper
//! check on checkout. deadpool-redis's own `recycle` sends UNWATCH + PING
//! before every checkout — a second round trip for every store call. Here a
//! connection whose last call got no reply (I/O error, timeout, cancelled) or
//! a READONLY reply is discarded, so a dead or demoted Redis is still noticed
//! at once and the pool makes a fresh connection; one in steady use is handed
//! out as it is; one idle for longer than [`TRUSTED_WHILE_IN_USE`] is PINGed
//! as before, so a Redis restarted while the pool sat idle costs no call.

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_redis::{
    Manager,
    redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind, aio::MultiplexedConnection},
};

/// A pooled connection is handed out again without a PING if it was last
/// checked out this recently and its last call got a reply.
const TRUSTED_WHILE_IN_USE: Duration = Duration::from_secs(1);

/// One pooled connection and whether it can still be trusted.
pub(super) struct PooledConnection {
    pub(super) connection: MultiplexedConnection,
    /// Set for the length of a call and left set unless Redis answered it
    /// usably: such a connection is never handed out again.
    suspect: bool,
}

impl PooledConnection {
    /// Marks the connection suspect until [`PooledConnection::settle`] clears
    /// it, so a call that is cancelled midway leaves it marked.
    pub(super) fn begin(&mut self) {
        self.suspect = true;
    }

    /// Records whether Redis answered usably, and passes the result on.
    pub(super) fn settle<T>(&mut self, result: RedisResult<T>) -> RedisResult<T> {
        self.suspect = match &result {
            Ok(_) => false,
            // READONLY: the connection reaches a replica (a demoted master);
            // it would fail every write, so it must go.
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) => true,
            // Redis replied (with an error, or a reply this code cannot
            // read): the connection itself is fine.
            Err(err) => !matches!(
                err.kind(),
                ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType
            ),
        };
        result
    }
}

/// deadpool-redis's manager, with the checkout check described above.
pub(super) struct TrustedManager(pub(super) Manager);

impl managed::Manager for TrustedManager {
    type Type = PooledConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<PooledConnection, RedisError> {
        Ok(PooledConnection {
            connection: self.0.create().await?,
            suspect: false,
        })
    }

    async fn recycle(
        &self,
        pooled: &mut PooledConnection,
        metrics: &Metrics,
    ) -> RecycleResult<RedisError> {
        if pooled.suspect {
            return Err(RecycleError::message("its last call got no usable reply"));
        }
        if metrics.last_used() < TRUSTED_WHILE_IN_USE {
            return Ok(());
        }
        self.0.recycle(&mut pooled.connection, metrics).await
    }
}

/// The pool of one server's connections.
pub(super) type TrustedPool = managed::Pool<TrustedManager>;
