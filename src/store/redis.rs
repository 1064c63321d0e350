//! The production store: Redis through a `deadpool-redis` pool, shared by
//! every replica. Each trait method is one Lua script run with EVALSHA, so it
//! is atomic on the server and two replicas racing behave like one.

mod abuse;
mod url;

use std::{fmt, time::Duration};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use async_trait::async_trait;
use deadpool_redis::{
    Manager, PoolError, Runtime,
    redis::{
        self, AsyncConnectionConfig, ErrorKind, FromRedisValue, RedisError, RedisResult, Script,
        ScriptInvocation, ServerErrorKind, aio::MultiplexedConnection,
    },
};

pub use url::RedisUrl;

use super::{
    IdempotencyClaim, OtpStore, PutOutcome, RecordedSend, SendDecision, SendLog, StoreError,
    VerifyOutcome,
};
use crate::{
    abuse::RateRule,
    domain::{CodeDigest, SubjectKey},
};

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Where Redis is (`REDIS_URL`).
    pub url: RedisUrl,
    /// First part of every key (`OTP_REDIS_PREFIX`).
    pub prefix: String,
    /// Most connections one replica opens (`OTP_REDIS_POOL_SIZE`).
    pub pool_size: usize,
    /// Bound on one store call end to end: waiting for a pooled connection,
    /// connecting, and running the script (`OTP_REDIS_TIMEOUT_MS`).
    pub timeout: Duration,
}

/// The scripts, hashed once when the store is built; each call sends
/// only the hash (EVALSHA) and loads the script once per server on NOSCRIPT
/// (a fresh or restarted Redis).
struct Scripts {
    put_code: Script,
    verify_and_consume: Script,
    pending_lifetime: Script,
    discard_code: Script,
    cancel_code: Script,
    record_send: Script,
    refund_send: Script,
    claim_idempotency: Script,
    complete_idempotency: Script,
    release_idempotency: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            put_code: Script::new(include_str!("lua/put_code.lua")),
            verify_and_consume: Script::new(include_str!("lua/verify_and_consume.lua")),
            pending_lifetime: Script::new(include_str!("lua/pending_lifetime.lua")),
            discard_code: Script::new(include_str!("lua/discard_code.lua")),
            cancel_code: Script::new(include_str!("lua/cancel_code.lua")),
            record_send: Script::new(include_str!("lua/record_send.lua")),
            refund_send: Script::new(include_str!("lua/refund_send.lua")),
            claim_idempotency: Script::new(include_str!("lua/claim_idempotency.lua")),
            complete_idempotency: Script::new(include_str!("lua/complete_idempotency.lua")),
            release_idempotency: Script::new(include_str!("lua/release_idempotency.lua")),
        }
    }
}

/// A pooled connection handed out again without a PING if it was last
/// checked out this recently and its last call got a reply.
const TRUSTED_WHILE_IN_USE: Duration = Duration::from_secs(1);

/// One pooled connection and whether it can still be trusted.
struct PooledConnection {
    connection: MultiplexedConnection,
    /// Set for the length of a call and left set unless Redis answered it
    /// (an I/O error, a timeout, a cancelled call): such a connection is
    /// never handed out again.
    suspect: bool,
}

impl PooledConnection {
    /// Records whether Redis answered, and maps the result.
    fn settle<T>(&mut self, result: RedisResult<T>) -> Result<T, StoreError> {
        self.suspect = match &result {
            Ok(_) => false,
            // Redis replied (with an error, or a reply this code cannot
            // read): the connection itself is fine.
            Err(err) => !matches!(
                err.kind(),
                ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType
            ),
        };
        result.map_err(redis_error)
    }
}

/// deadpool-redis's manager with a cheaper check on checkout. Its own
/// `recycle` sends UNWATCH + PING before every checkout: a second round trip
/// for every store call. Here a connection whose last call failed (or was
/// cancelled) is discarded, so a dead Redis is still noticed at once and the
/// pool makes a fresh connection; one in steady use is handed out as it is;
/// one idle for longer than [`TRUSTED_WHILE_IN_USE`] is PINGed as before, so a
/// Redis restarted while the pool sat idle costs no call on a stale connection.
struct ConnectionManager(Manager);

impl managed::Manager for ConnectionManager {
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
            return Err(RecycleError::message("its last call got no reply"));
        }
        if metrics.last_used() < TRUSTED_WHILE_IN_USE {
            return Ok(());
        }
        self.0.recycle(&mut pooled.connection, metrics).await
    }
}

type Pool = managed::Pool<ConnectionManager>;

/// [`OtpStore`] on Redis. One hash per subject, at
/// `<prefix>:{<subject key>}:code`, holding the digest (`d`), the guesses
/// spent (`a`) and the lock flag (`l`); Redis's TTL on that key is the only
/// expiry. The braces make the subject key the Redis Cluster hash tag, so all
/// keys of one phone stay in one slot. Neither the phone number nor the code
/// is ever written: only the keyed subject hash and the keyed code digest.
///
/// Fails closed: every Redis error or timeout is [`StoreError::Unavailable`];
/// there is no fallback to memory.
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    timeout: Duration,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Builds the pool. No connection is opened here, so the service starts
    /// even while Redis is down; calls fail with `Unavailable` until it is up.
    pub fn new(settings: &RedisSettings) -> Result<Self, StoreError> {
        if settings.url.is_tls() {
            // rustls needs one process-wide crypto provider; picking it here
            // (rather than relying on crate features) keeps TLS working if
            // another dependency ever enables a second provider. An error
            // means one is installed already, which is just as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout));
        let manager = Manager::new_with_config(settings.url.expose(), connection)
            .map_err(|err| StoreError::Unavailable(format!("invalid Redis settings: {err}")))?;
        let pool = Pool::builder(ConnectionManager(manager))
            .max_size(settings.pool_size)
            .wait_timeout(Some(settings.timeout))
            .create_timeout(Some(settings.timeout))
            .recycle_timeout(Some(settings.timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|err| StoreError::Unavailable(format!("cannot build Redis pool: {err}")))?;
        Ok(Self {
            pool,
            prefix: settings.prefix.clone(),
            timeout: settings.timeout,
            scripts: Scripts::new(),
        })
    }

    /// The one key of `subject`'s record.
    fn record_key(&self, subject: &SubjectKey) -> String {
        format!("{}:{{{}}}:code", self.prefix, subject.as_str())
    }

    /// Runs one script invocation on a pooled connection, the whole call
    /// (pool wait, connect, script) bounded by the configured timeout.
    async fn run<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.bounded(async {
            let mut pooled = self.pool.get().await.map_err(pool_error)?;
            pooled.suspect = true;
            let result = invocation.invoke_async(&mut pooled.connection).await;
            pooled.settle(result)
        })
        .await
    }

    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("Redis did not answer within {:?}", self.timeout))
            })?
    }
}

/// Whatever stops us getting a connection (refused, TLS, auth, timeout)
/// means Redis cannot serve us right now.
fn pool_error(err: PoolError) -> StoreError {
    StoreError::Unavailable(format!("no Redis connection: {err}"))
}

/// A reply this code cannot read, or a script that failed on the server, is a
/// defect (`Protocol`); everything else (I/O, refused, timeouts, loading,
/// read-only replica, auth) means Redis cannot serve us right now.
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A script's `{status, number}` reply as a Rust value.
fn reply_number(status: &str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Protocol(format!("`{status}` with out-of-range value {value}")))
}

#[async_trait]
impl OtpStore for RedisStore {
    async fn put_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
        lifetime: Duration,
        max_attempts: u32,
    ) -> Result<PutOutcome, StoreError> {
        let (status, value): (String, i64) = self
            .run(
                self.scripts
                    .put_code
                    .key(self.record_key(subject))
                    .arg(&digest.as_bytes()[..])
                    .arg(millis(lifetime))
                    .arg(max_attempts),
            )
            .await?;
        match status.as_str() {
            "stored" => Ok(PutOutcome::Stored {
                attempts_remaining: reply_number(&status, value)?,
            }),
            "locked" => Ok(PutOutcome::Locked {
                retry_after: Duration::from_millis(u64::from(reply_number(&status, value)?)),
            }),
            other => Err(StoreError::Protocol(format!("put_code replied `{other}`"))),
        }
    }

    async fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidate: &CodeDigest,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let (status, value): (String, i64) = self
            .run(
                self.scripts
                    .verify_and_consume
                    .key(self.record_key(subject))
                    .arg(&candidate.as_bytes()[..])
                    .arg(max_attempts),
            )
            .await?;
        match status.as_str() {
            "approved" => Ok(VerifyOutcome::Approved),
            "incorrect" => Ok(VerifyOutcome::Incorrect {
                attempts_remaining: reply_number(&status, value)?,
            }),
            "expired" => Ok(VerifyOutcome::Expired),
            "locked" => Ok(VerifyOutcome::Locked),
            other => Err(StoreError::Protocol(format!(
                "verify_and_consume replied `{other}`"
            ))),
        }
    }

    async fn pending_lifetime(&self, subject: &SubjectKey) -> Result<Option<Duration>, StoreError> {
        let ttl_ms: i64 = self
            .run(&self.scripts.pending_lifetime.key(self.record_key(subject)))
            .await?;
        // Negative: no verifiable code (or, defensively, a key without TTL).
        Ok(u64::try_from(ttl_ms).ok().map(Duration::from_millis))
    }

    async fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        let _removed: i64 = self
            .run(
                self.scripts
                    .discard_code
                    .key(self.record_key(subject))
                    .arg(&digest.as_bytes()[..]),
            )
            .await?;
        Ok(())
    }

    async fn cancel_code(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        let removed: i64 = self
            .run(&self.scripts.cancel_code.key(self.record_key(subject)))
            .await?;
        Ok(removed == 1)
    }

    async fn record_send(
        &self,
        log: &SendLog,
        rules: &[RateRule],
    ) -> Result<SendDecision, StoreError> {
        self.record_send_script(log, rules).await
    }

    async fn refund_send(&self, log: &SendLog, token: &str) -> Result<(), StoreError> {
        let _removed: i64 = self
            .run(
                self.scripts
                    .refund_send
                    .key(self.send_log_key(log))
                    .arg(token),
            )
            .await?;
        Ok(())
    }

    async fn claim_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        in_progress_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.claim_idempotency_script(key, subject, in_progress_ttl)
            .await
    }

    async fn complete_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        response: &RecordedSend,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                self.scripts
                    .complete_idempotency
                    .key(self.idempotency_key(key))
                    .arg(subject.as_str())
                    .arg(abuse::encode_response(response))
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(())
    }

    async fn release_idempotency(&self, key: &SubjectKey) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                &self
                    .scripts
                    .release_idempotency
                    .key(self.idempotency_key(key)),
            )
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let mut pooled = self.pool.get().await.map_err(pool_error)?;
            pooled.suspect = true;
            let result = redis::cmd("PING")
                .query_async::<String>(&mut pooled.connection)
                .await;
            pooled.settle(result).map(drop)
        })
        .await
    }
}
