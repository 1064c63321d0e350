//! The embedded store: a process-local map behind a mutex. For `cargo run`,
//! tests and single-replica deployments; codes vanish on restart.

mod sharded;
mod state;

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    ClaimOwner, IdempotencyClaim, OtpStore, PrefixDecision, PutOutcome, RecordedSend, SendDecision,
    SendLog, StoreError, VerifyOutcome, sliding_log,
};
use crate::{
    abuse::{DestinationPrefix, PrefixRule, RateRule},
    domain::{CodeDigest, SubjectKey},
};

use sharded::Sharded;
use state::{Entries, Entry, IdempotencyEntry, Shared, locked, sweep_expired};

pub use state::SweepReport;

/// Default `OTP_MEMORY_MAX_ENTRIES`: about 300 MiB at most, far beyond what
/// one replica's legitimate traffic keeps alive for a code's lifetime.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// In-memory [`OtpStore`]. Atomicity comes from doing each operation under
/// one mutex acquisition (its key's shard), with no `.await` while it is held.
/// Each table (codes, send logs, idempotency keys) holds at most about
/// `max_entries`; beyond that, new entries are refused with
/// [`StoreError::Full`] rather than memory growing without end.
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
            codes: Sharded::new(max_entries),
            sends: Sharded::new(max_entries),
            idempotency: Sharded::new(max_entries),
            prefixes: Mutex::default(),
            epoch: Instant::now(),
            next_token: AtomicU64::new(1),
        });
        tokio::spawn(sweep_expired(Arc::downgrade(&shared), sweep_every));
        Self { shared }
    }

    /// Number of entries held, expired or not, across codes, send logs,
    /// idempotency keys and prefix counts (for tests of memory bounds).
    pub fn len(&self) -> usize {
        self.shared.codes.len()
            + self.shared.sends.len()
            + self.shared.idempotency.len()
            + locked(&self.shared.prefixes).len()
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

    /// The live entry for `subject`, dropping it first if it has expired.
    fn live<'a>(
        entries: &'a mut Entries,
        subject: &SubjectKey,
        now: Instant,
    ) -> Option<&'a mut Entry> {
        if entries
            .get(subject)
            .is_some_and(|entry| entry.expires_at <= now)
        {
            entries.remove(subject);
        }
        entries.get_mut(subject)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// A live, not yet completed claim held by `owner`.
fn owned_claim(entry: &IdempotencyEntry, owner: &ClaimOwner, now: Instant) -> bool {
    entry.expires_at > now && entry.response.is_none() && entry.owner.to_string() == owner.0
}

#[async_trait]
impl OtpStore for MemoryStore {
    /// Twin of `lua/put_code.lua`: a locked or spent subject refuses; a live
    /// record keeps its spent guesses and a TTL that never shrinks.
    async fn put_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
        lifetime: Duration,
        max_attempts: u32,
    ) -> Result<PutOutcome, StoreError> {
        let now = Instant::now();
        let mut entries = self.shared.codes.lock(subject);
        let expires_at = now + lifetime;
        match Self::live(&mut entries, subject, now) {
            Some(entry) if entry.locked || entry.attempts_used >= max_attempts => {
                Ok(PutOutcome::Locked {
                    retry_after: entry.expires_at - now,
                })
            }
            Some(entry) => {
                entry.digest = Some(*digest);
                entry.expires_at = entry.expires_at.max(expires_at);
                Ok(PutOutcome::Stored {
                    attempts_remaining: max_attempts - entry.attempts_used,
                })
            }
            None => {
                if !self.shared.codes.has_room(&entries, subject) {
                    return Err(StoreError::Full);
                }
                entries.insert(
                    subject.clone(),
                    Entry {
                        digest: Some(*digest),
                        attempts_used: 0,
                        locked: false,
                        expires_at,
                    },
                );
                Ok(PutOutcome::Stored {
                    attempts_remaining: max_attempts,
                })
            }
        }
    }

    /// Twin of `lua/verify_and_consume.lua`: a match deletes the record; a
    /// miss spends a guess, and the last one destroys the code and locks.
    async fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidates: &[CodeDigest],
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let now = Instant::now();
        let mut entries = self.shared.codes.lock(subject);
        let Some(entry) = Self::live(&mut entries, subject, now) else {
            return Ok(VerifyOutcome::Expired);
        };
        if entry.locked {
            return Ok(VerifyOutcome::Locked);
        }
        let Some(stored) = entry.digest else {
            return Ok(VerifyOutcome::Expired);
        };
        // Every candidate is compared (constant time each), so the time taken
        // does not say which secret matched. Twin: verify_and_consume.lua.
        let matched = candidates
            .iter()
            .fold(false, |matched, candidate| matched | (stored == *candidate));
        if matched {
            entries.remove(subject);
            return Ok(VerifyOutcome::Approved);
        }
        entry.attempts_used += 1;
        let attempts_remaining = max_attempts.saturating_sub(entry.attempts_used);
        if attempts_remaining == 0 {
            entry.digest = None;
            entry.locked = true;
        }
        Ok(VerifyOutcome::Incorrect { attempts_remaining })
    }

    /// Twin of `lua/pending_lifetime.lua`: nothing while locked or without a code.
    async fn pending_lifetime(&self, subject: &SubjectKey) -> Result<Option<Duration>, StoreError> {
        let now = Instant::now();
        let mut entries = self.shared.codes.lock(subject);
        Ok(Self::live(&mut entries, subject, now)
            .filter(|entry| entry.digest.is_some() && !entry.locked)
            .map(|entry| entry.expires_at - now))
    }

    /// Twin of `lua/discard_code.lua`: only if the digest is still `digest`;
    /// the spent guesses stay.
    async fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut entries = self.shared.codes.lock(subject);
        if let Some(entry) = Self::live(&mut entries, subject, now)
            && entry.digest.as_ref() == Some(digest)
        {
            entry.digest = None;
        }
        Ok(())
    }

    /// Twin of `lua/cancel_code.lua`: the spent guesses and any lock stay.
    async fn cancel_code(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut entries = self.shared.codes.lock(subject);
        Ok(Self::live(&mut entries, subject, now)
            .and_then(|entry| entry.digest.take())
            .is_some())
    }

    /// Twin of `lua/record_send.lua`: both are the sliding log of
    /// `sliding_log.rs`, counted only if every rule admits the send.
    async fn record_send(
        &self,
        log: &SendLog,
        rules: &[RateRule],
    ) -> Result<SendDecision, StoreError> {
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let longest = rules
            .iter()
            .map(|rule| u64::try_from(rule.period.as_millis()).unwrap_or(u64::MAX))
            .max()
            .unwrap_or(0);
        let mut sends = self.shared.sends.lock(log);
        if !self.shared.sends.has_room(&sends, log) {
            return Err(StoreError::Full);
        }
        // Read the clock under the lock, so each log's times stay in order.
        let now_ms = self.shared.now_ms();
        let entry = sends.entry(log.clone()).or_default();
        entry.keep_for_ms = entry.keep_for_ms.max(longest);
        Ok(sliding_log::record(&mut entry.times, rules, now_ms, token))
    }

    /// Twin of `lua/refund_send.lua`: an unknown token is ignored.
    async fn refund_send(&self, log: &SendLog, token: &str) -> Result<(), StoreError> {
        let Ok(token) = token.parse::<u64>() else {
            return Ok(());
        };
        if let Some(entry) = self.shared.sends.lock(log).get_mut(log) {
            entry.times.retain(|(_, t)| *t != token);
        }
        Ok(())
    }

    /// Twin of `lua/count_prefix_send.lua`, through `PrefixWindow::count_send`
    /// (`prefix_window.rs`).
    async fn count_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        rule: &PrefixRule,
    ) -> Result<PrefixDecision, StoreError> {
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let mut prefixes = locked(&self.shared.prefixes);
        // Read the clock under the lock, so each prefix's times stay in order.
        let now_ms = self.shared.now_ms();
        let window = prefixes.entry(prefix.clone()).or_default();
        Ok(window.count_send(rule, now_ms, token))
    }

    /// Twin of `lua/refund_send.lua` on the prefix's sends.
    async fn refund_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        token: &str,
    ) -> Result<(), StoreError> {
        let mut prefixes = locked(&self.shared.prefixes);
        if let (Ok(token), Some(window)) = (token.parse::<u64>(), prefixes.get_mut(prefix)) {
            window.refund(token);
        }
        Ok(())
    }

    /// Twin of `lua/count_prefix_approval.lua`.
    async fn count_prefix_approval(
        &self,
        prefix: &DestinationPrefix,
        window: Duration,
    ) -> Result<(), StoreError> {
        let mut prefixes = locked(&self.shared.prefixes);
        let now_ms = self.shared.now_ms();
        let counts = prefixes.entry(prefix.clone()).or_default();
        counts.count_approval(window, now_ms);
        Ok(())
    }

    /// Twin of `lua/suspended_prefixes.lua`; here every prefix is in one map,
    /// so the suspension itself is the record and `newly` adds nothing.
    async fn suspended_prefixes(
        &self,
        _newly: Option<(&DestinationPrefix, Duration)>,
    ) -> Result<u64, StoreError> {
        let prefixes = locked(&self.shared.prefixes);
        let now_ms = self.shared.now_ms();
        let suspended = prefixes.values().filter(|w| w.is_suspended(now_ms)).count();
        Ok(suspended as u64)
    }

    /// Twin of `lua/claim_idempotency.lua`.
    async fn claim_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        in_progress_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let now = Instant::now();
        let owner = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let mut keys = self.shared.idempotency.lock(key);
        if let Some(entry) = keys.get(key).filter(|entry| entry.expires_at > now) {
            return Ok(if entry.subject != *subject {
                IdempotencyClaim::OtherSubject
            } else {
                entry
                    .response
                    .map_or(IdempotencyClaim::InProgress, IdempotencyClaim::Completed)
            });
        }
        if !self.shared.idempotency.has_room(&keys, key) {
            return Err(StoreError::Full);
        }
        keys.insert(
            key.clone(),
            IdempotencyEntry {
                subject: subject.clone(),
                owner,
                response: None,
                expires_at: now + in_progress_ttl,
            },
        );
        Ok(IdempotencyClaim::Claimed {
            owner: ClaimOwner(owner.to_string()),
        })
    }

    /// Twin of `lua/complete_idempotency.lua`: only the owner completes.
    async fn complete_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
        response: &RecordedSend,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut keys = self.shared.idempotency.lock(key);
        match keys.get_mut(key) {
            Some(entry) if owned_claim(entry, owner, now) => {
                entry.response = Some(*response);
                entry.expires_at = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Twin: `lua/release_idempotency.lua`.
    async fn release_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut keys = self.shared.idempotency.lock(key);
        // A completed record is kept: its response is what retries must get.
        if keys
            .get(key)
            .is_some_and(|entry| owned_claim(entry, owner, now))
        {
            keys.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
