//! The production store: Redis through a `deadpool-redis` pool, shared by
//! every replica. Each trait method is one Lua script run with EVALSHA (the
//! table in `scripts.rs`; each script's Rust twin is the `MemoryStore` method
//! of the same name), so it is atomic on the server and two replicas racing
//! behave like one. The same scripts run on one server, a Redis Cluster or a
//! Sentinel-managed master (see `connection.rs`): each touches only keys it
//! is given in KEYS, all in one hash slot (one key, except the pumping
//! guard's decision, whose keys share the prefix's hash tag, the spend
//! caps' decision, whose keys share the `{spend}` hash tag, and, off a
//! Cluster, the old names a number's record is adopted from: see
//! `number_record.rs`). The one exception is a SendOtp's (and a
//! VerifyOtp's) whole store work in one script (`send_in_one_call.rs`,
//! `verify_in_one_call.rs`): its keys span slots, so a Cluster runs it as
//! one script per step instead.

mod cluster_manager;
mod code_replies;
mod connection;
mod idempotency;
mod legacy_adoption;
mod master_watch;
mod number_record;
mod prefix_admin;
mod pumping;
mod scripts;
mod send_in_one_call;
mod send_log;
mod sentinel_manager;
mod spend;
mod stream;
mod trusted_pool;
mod url;
mod verify_in_one_call;

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use deadpool_redis::redis::{FromRedisValue, ScriptInvocation};

pub use connection::RedisTopology;
pub use stream::RedisStreamAppender;
pub use url::{RedisNodes, RedisUrl};

use code_replies::{lock_left, put_outcome, verify_outcome};
use connection::RedisConnections;
use legacy_adoption::LegacyAdoption;
use number_record::kept_digest;
use scripts::Scripts;

use super::{
    CheckOutcome, ClaimOwner, EvictionPolicy, IdempotencyClaim, OtpStore, PrefixDecision,
    PutOutcome, RecordedSend, SendDecision, SendLog, SendOutcome, SendPlan, StoreError,
    VerifyOutcome, VerifyPlan, check_in_steps, count_in_steps,
};
use crate::{
    abuse::{DestinationPrefix, PrefixRule, RateRule},
    domain::{CodeDigest, SubjectKey},
    metrics::timed_store,
};

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Where Redis is and how it is deployed (`REDIS_URL`,
    /// `REDIS_CLUSTER_URLS` or `REDIS_SENTINEL_URLS`).
    pub topology: RedisTopology,
    /// First part of every key (`OTP_REDIS_PREFIX`).
    pub prefix: String,
    /// Most connections one replica opens (`OTP_REDIS_POOL_SIZE`).
    pub pool_size: usize,
    /// Bound on one store call end to end: waiting for a pooled connection,
    /// connecting, and running the script (`OTP_REDIS_TIMEOUT_MS`).
    pub timeout: Duration,
}

/// [`OtpStore`] on Redis. One key per phone number, `<prefix>:n<16 raw
/// bytes of the subject key>`, holding its code state (digest, guesses
/// spent, lock, when the state ends) and its send log in one binary string
/// (`number_record.rs`, `lua/number_record.lua`); Redis's TTL on that key is
/// the longest of what it holds. Neither the phone number nor the code is
/// ever written: only the keyed subject hash and the keyed code digest.
///
/// Fails closed: every Redis error or timeout is [`StoreError::Unavailable`];
/// there is no fallback to memory.
pub struct RedisStore {
    /// Shared with the stream appenders made by [`RedisStore::stream_appender`].
    connections: Arc<RedisConnections>,
    topology: RedisTopology,
    prefix: String,
    timeout: Duration,
    scripts: Scripts,
    /// Whether scripts adopt records an older version wrote
    /// (`number_record.rs`, `legacy_adoption.rs`).
    legacy: LegacyAdoption,
    /// The spend windows' key names, and which are in this layout (`spend.rs`).
    spend_keys: spend::SpendKeys,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("topology", &self.topology)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Builds the pool. No connection is opened here, so the service starts
    /// even while Redis is down; calls fail with `Unavailable` until it is up.
    pub fn new(settings: &RedisSettings) -> Result<Self, StoreError> {
        Ok(Self {
            connections: Arc::new(RedisConnections::new(
                &settings.topology,
                settings.pool_size,
                settings.timeout,
            )?),
            topology: settings.topology.clone(),
            prefix: settings.prefix.clone(),
            timeout: settings.timeout,
            scripts: Scripts::new(),
            legacy: LegacyAdoption::new(&settings.topology),
            spend_keys: spend::SpendKeys::default(),
        })
    }

    /// Appends to the stream at `key` (trimmed to about `maxlen` entries)
    /// through this store's pool and with its timeout.
    pub fn stream_appender(&self, key: &str, maxlen: u64) -> RedisStreamAppender {
        RedisStreamAppender::new(Arc::clone(&self.connections), key, maxlen, self.timeout)
    }

    /// Runs one script invocation on a pooled connection, the whole call
    /// (pool wait, connect, script) bounded by the configured timeout.
    async fn run<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        // Boxed: the call's future (~0.9 kB: the pool wait and the script
        // call; see `trusted_pool.rs` for why not more) would otherwise be
        // held, and moved, by every future awaiting it; a SendOtp's profile
        // once showed those copies as a tenth of the service's CPU.
        self.bounded(Box::pin(self.connections.invoke(invocation)))
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
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
                self.on_record(&self.scripts.put_code, subject)
                    .await
                    .arg(kept_digest(digest))
                    .arg(millis(lifetime))
                    .arg(max_attempts),
            )
            .await?;
        put_outcome(&status, value)
    }

    async fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidates: &[CodeDigest],
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let mut invocation = self
            .on_record(&self.scripts.verify_and_consume, subject)
            .await;
        invocation.arg(max_attempts);
        for candidate in candidates {
            invocation.arg(kept_digest(candidate));
        }
        let (status, value): (String, i64) = self.run(&invocation).await?;
        verify_outcome(&status, value)
    }

    async fn pending_lifetime(&self, subject: &SubjectKey) -> Result<Option<Duration>, StoreError> {
        let ttl_ms: i64 = self
            .run(
                &self
                    .on_record(&self.scripts.pending_lifetime, subject)
                    .await,
            )
            .await?;
        // Negative: no verifiable code (or, defensively, a key without TTL).
        Ok(u64::try_from(ttl_ms).ok().map(Duration::from_millis))
    }

    async fn lock_remaining(
        &self,
        subject: &SubjectKey,
        max_attempts: u32,
    ) -> Result<Option<Duration>, StoreError> {
        let left_ms: i64 = self
            .run(
                self.on_record(&self.scripts.lock_remaining, subject)
                    .await
                    .arg(max_attempts),
            )
            .await?;
        Ok(lock_left(left_ms))
    }

    async fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        let _removed: i64 = self
            .run(
                self.on_record(&self.scripts.discard_code, subject)
                    .await
                    .arg(kept_digest(digest)),
            )
            .await?;
        Ok(())
    }

    async fn cancel_code(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        let removed: i64 = self
            .run(&self.on_record(&self.scripts.cancel_code, subject).await)
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
        self.refund_send_script(log, token).await
    }

    async fn count_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        rule: &PrefixRule,
        sender: crate::store::PrefixSender<'_>,
    ) -> Result<PrefixDecision, StoreError> {
        self.count_prefix_send_script(prefix, rule, sender).await
    }

    async fn refund_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        token: &str,
    ) -> Result<(), StoreError> {
        self.refund_prefix_send_script(prefix, token).await
    }

    async fn count_send_and_put_code(&self, plan: SendPlan<'_>) -> Result<SendOutcome, StoreError> {
        if let RedisTopology::Cluster(_) = self.topology {
            // The plan's keys live in different slots: no one script may
            // touch them all, so each step is its own script.
            return count_in_steps(self, plan).await;
        }
        timed_store(
            "count_send_and_put_code",
            self.count_send_and_put_code_script(plan),
        )
        .await
    }

    async fn count_verify_and_consume(
        &self,
        plan: VerifyPlan<'_>,
    ) -> Result<CheckOutcome, StoreError> {
        if let RedisTopology::Cluster(_) = self.topology {
            // The logs and the code record live in different slots.
            return check_in_steps(self, plan).await;
        }
        timed_store(
            "count_verify_and_consume",
            self.count_verify_and_consume_script(plan),
        )
        .await
    }

    async fn reserve_spend(
        &self,
        amount: crate::spend::Micros,
        windows: &[super::SpendWindow],
    ) -> Result<super::SpendDecision, StoreError> {
        self.reserve_spend_script(amount, windows).await
    }

    async fn refund_spend(
        &self,
        reservation: &super::SpendReservation,
        amount: crate::spend::Micros,
    ) -> Result<(), StoreError> {
        self.refund_spend_script(reservation, amount).await
    }

    async fn count_prefix_approval(
        &self,
        prefix: &DestinationPrefix,
        subject: &SubjectKey,
        rule: &PrefixRule,
        sent_at_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.count_prefix_approval_script(prefix, subject, rule, sent_at_ms)
            .await
    }

    async fn suspended_prefixes(
        &self,
        newly: Option<(&DestinationPrefix, Duration)>,
    ) -> Result<u64, StoreError> {
        self.suspended_prefixes_script(newly).await
    }

    async fn list_suspended_prefixes(
        &self,
        rule: &PrefixRule,
    ) -> Result<Vec<super::SuspendedPrefix>, StoreError> {
        self.list_suspended_prefixes(rule).await
    }

    async fn lift_prefix_suspension(&self, prefix: &DestinationPrefix) -> Result<bool, StoreError> {
        self.lift_prefix_suspension(prefix).await
    }

    async fn exempt_prefix(
        &self,
        prefix: &DestinationPrefix,
        duration: Duration,
    ) -> Result<bool, StoreError> {
        self.exempt_prefix(prefix, duration).await
    }

    async fn list_prefix_exemptions(&self) -> Result<Vec<super::PrefixExemption>, StoreError> {
        self.list_prefix_exemptions().await
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
        owner: &ClaimOwner,
        response: &RecordedSend,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let completed: i64 = self
            .run(
                self.scripts
                    .complete_idempotency
                    .key(self.idempotency_key(key))
                    .arg(&owner.0)
                    .arg(idempotency::encode_response(response))
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(completed == 1)
    }

    async fn release_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
    ) -> Result<bool, StoreError> {
        let released: i64 = self
            .run(
                self.scripts
                    .release_idempotency
                    .key(self.idempotency_key(key))
                    .arg(&owner.0),
            )
            .await?;
        Ok(released == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded(self.connections.ping()).await
    }

    async fn eviction_policy(&self) -> Result<EvictionPolicy, StoreError> {
        let policy = self
            .bounded(self.connections.config_get("maxmemory-policy"))
            .await?;
        Ok(match policy {
            Some(policy) if policy == "noeviction" => EvictionPolicy::NoEviction,
            Some(policy) => EvictionPolicy::Evicting(policy),
            None => EvictionPolicy::Unknown,
        })
    }
}
