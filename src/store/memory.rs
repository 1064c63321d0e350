//! The embedded store: a process-local map behind a mutex. For `cargo run`,
//! tests and single-replica deployments; codes vanish on restart.

mod codes;
mod idempotency;
mod packed_log;
mod prefixes;
mod send_logs;
mod sharded;
mod spend;
mod state;
mod ticks;

use std::{
    fmt,
    sync::{Arc, Mutex, atomic::AtomicU64},
    time::Duration,
};

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    ClaimOwner, IdempotencyClaim, OtpStore, PrefixDecision, PutOutcome, RecordedSend, SendDecision,
    SendLog, StoreError, VerifyOutcome,
};
use crate::{
    abuse::{DestinationPrefix, PrefixRule, RateRule},
    domain::{CodeDigest, SubjectKey},
};

use sharded::Sharded;
use state::{Shared, sweep_expired};

pub use state::SweepReport;

/// Default `OTP_MEMORY_MAX_ENTRIES`: about 300 MiB at most, far beyond what
/// one replica's legitimate traffic keeps alive for a code's lifetime.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// In-memory [`OtpStore`]. Atomicity comes from doing each operation under
/// one mutex acquisition (its key's shard), with no `.await` while it is held.
/// Each table (numbers, clients' send logs, other send logs, idempotency
/// keys) holds at most about
/// `max_entries`; beyond that, new entries are refused with
/// [`StoreError::Full`] rather than memory growing without end. The pumping
/// guard's per-prefix counts are not capped: one guard window of traffic
/// bounds them.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// A new empty store. Must be called inside a Tokio runtime: it spawns the
    /// sweeper, which stops once the last clone of the store is dropped.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// Like [`MemoryStore::new`], each table holding about `max_entries` at most.
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self::with_sweep_interval(max_entries, state::SWEEP_INTERVAL)
    }

    /// Like [`MemoryStore::with_max_entries`], sweeping every `sweep_every`
    /// (a benchmark sweeps by hand with [`MemoryStore::sweep_now`]).
    pub fn with_sweep_interval(max_entries: usize, sweep_every: Duration) -> Self {
        let shared = Arc::new(Shared {
            numbers: Sharded::new(max_entries),
            clients: Sharded::new(max_entries),
            sends: Sharded::new(max_entries),
            idempotency: Sharded::new(max_entries),
            prefixes: Sharded::uncapped(),
            suspensions: Mutex::default(),
            exemptions: Mutex::default(),
            spend: Mutex::default(),
            epoch: Instant::now(),
            next_token: AtomicU64::new(1),
        });
        tokio::spawn(sweep_expired(Arc::downgrade(&shared), sweep_every));
        Self { shared }
    }

    /// Number of entries held, expired or not, across numbers (a code and
    /// a send log each), clients' send logs, the other send logs,
    /// idempotency keys and prefix counts (for tests of memory bounds).
    pub fn len(&self) -> usize {
        self.shared.numbers.len()
            + self.shared.clients.len()
            + self.shared.sends.len()
            + self.shared.idempotency.len()
            + self.shared.prefixes.len()
    }

    /// Sweeps expired entries now, as the background sweeper does every few
    /// seconds (for measuring how long it holds a lock).
    pub async fn sweep_now(&self) -> SweepReport {
        self.shared.sweep().await
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Each method is one mutex-held block, with no `.await` while it is held,
/// in the file of its concern (`codes.rs`, `send_logs.rs`, `prefixes.rs`,
/// `idempotency.rs`, `spend.rs`); each names its Lua twin there.
#[async_trait]
impl OtpStore for MemoryStore {
    async fn put_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
        lifetime: Duration,
        max_attempts: u32,
    ) -> Result<PutOutcome, StoreError> {
        self.shared
            .put_code(subject, digest, lifetime, max_attempts)
    }

    async fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidates: &[CodeDigest],
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        self.shared
            .verify_and_consume(subject, candidates, max_attempts)
    }

    async fn pending_lifetime(&self, subject: &SubjectKey) -> Result<Option<Duration>, StoreError> {
        self.shared.pending_lifetime(subject)
    }

    async fn lock_remaining(
        &self,
        subject: &SubjectKey,
        max_attempts: u32,
    ) -> Result<Option<Duration>, StoreError> {
        self.shared.lock_remaining(subject, max_attempts)
    }

    async fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        self.shared.discard_code(subject, digest)
    }

    async fn cancel_code(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        self.shared.cancel_code(subject)
    }

    async fn record_send(
        &self,
        log: &SendLog,
        rules: &[RateRule],
    ) -> Result<SendDecision, StoreError> {
        self.shared.record_send(log, rules)
    }

    async fn refund_send(&self, log: &SendLog, token: &str) -> Result<(), StoreError> {
        self.shared.refund_send(log, token)
    }

    async fn count_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        rule: &PrefixRule,
        sender: super::PrefixSender<'_>,
    ) -> Result<PrefixDecision, StoreError> {
        self.shared.count_prefix_send(prefix, rule, sender)
    }

    async fn refund_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        token: &str,
    ) -> Result<(), StoreError> {
        self.shared.refund_prefix_send(prefix, token)
    }

    async fn reserve_spend(
        &self,
        amount: crate::spend::Micros,
        windows: &[super::SpendWindow],
    ) -> Result<super::SpendDecision, StoreError> {
        self.shared.reserve_spend(amount, windows)
    }

    async fn refund_spend(
        &self,
        reservation: &super::SpendReservation,
        amount: crate::spend::Micros,
    ) -> Result<(), StoreError> {
        self.shared.refund_spend(reservation, amount)
    }

    async fn count_prefix_approval(
        &self,
        prefix: &DestinationPrefix,
        subject: &SubjectKey,
        rule: &PrefixRule,
        sent_at_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.shared
            .count_prefix_approval(prefix, subject, rule, sent_at_ms)
    }

    async fn suspended_prefixes(
        &self,
        newly: Option<(&DestinationPrefix, Duration)>,
    ) -> Result<u64, StoreError> {
        self.shared.suspended_prefixes(newly)
    }

    async fn list_suspended_prefixes(
        &self,
        rule: &PrefixRule,
    ) -> Result<Vec<super::SuspendedPrefix>, StoreError> {
        self.shared.list_suspended_prefixes(rule)
    }

    async fn lift_prefix_suspension(&self, prefix: &DestinationPrefix) -> Result<bool, StoreError> {
        self.shared.lift_prefix_suspension(prefix)
    }

    async fn exempt_prefix(
        &self,
        prefix: &DestinationPrefix,
        duration: Duration,
    ) -> Result<bool, StoreError> {
        self.shared.exempt_prefix(prefix, duration)
    }

    async fn list_prefix_exemptions(&self) -> Result<Vec<super::PrefixExemption>, StoreError> {
        self.shared.list_prefix_exemptions()
    }

    async fn claim_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        in_progress_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.shared.claim_idempotency(key, subject, in_progress_ttl)
    }

    async fn complete_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
        response: &RecordedSend,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.shared.complete_idempotency(key, owner, response, ttl)
    }

    async fn release_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
    ) -> Result<bool, StoreError> {
        self.shared.release_idempotency(key, owner)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
