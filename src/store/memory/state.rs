//! What the memory store holds, and the sweeper that forgets what expired.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{Mutex, MutexGuard, Weak, atomic::AtomicU64},
    time::Duration,
};

use tokio::time::Instant;

use super::sharded::Sharded;
use crate::{
    abuse::DestinationPrefix,
    domain::{CodeDigest, SubjectKey},
    store::{
        RecordedSend, SendLog, prefix_window::PrefixWindow, sliding_log::SendTimes,
        spend_window::Buckets,
    },
};

/// How often expired entries are swept, bounding memory under churn to about
/// one sweep interval's worth of dead entries beyond the live ones.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(super) struct Entry {
    /// `None` once the code was destroyed (lock, rollback) but the spent
    /// guess count must live on until `expires_at`.
    pub(super) digest: Option<CodeDigest>,
    pub(super) attempts_used: u32,
    pub(super) locked: bool,
    pub(super) expires_at: Instant,
}

pub(super) type Entries = std::collections::HashMap<SubjectKey, Entry>;

#[derive(Debug, Default)]
pub(super) struct SendLogEntry {
    pub(super) times: SendTimes,
    /// Longest rule period seen for this log: after that, it holds nothing useful.
    pub(super) keep_for_ms: u64,
}

#[derive(Debug)]
pub(super) struct IdempotencyEntry {
    pub(super) subject: SubjectKey,
    /// The claiming call's token: only it may complete or release the claim.
    pub(super) owner: u64,
    pub(super) response: Option<RecordedSend>,
    pub(super) expires_at: Instant,
}

pub(super) struct Shared {
    pub(super) codes: Sharded<SubjectKey, Entry>,
    pub(super) sends: Sharded<SendLog, SendLogEntry>,
    pub(super) idempotency: Sharded<SubjectKey, IdempotencyEntry>,
    /// The pumping guard's counts per destination prefix: one per prefix
    /// with a send or approval in the guard's window, not capped (a window
    /// of traffic bounds it), sharded so the sweeper never holds one lock
    /// over all of them.
    pub(super) prefixes: Sharded<DestinationPrefix, PrefixWindow>,
    /// When each current suspension lifts (ms on the store's clock): twin
    /// of `suspended_prefixes.lua`'s sorted set, so counting them is not a
    /// pass over every prefix.
    pub(super) suspensions: Mutex<BinaryHeap<Reverse<(u64, DestinationPrefix)>>>,
    /// Prefixes an operator exempted, and until when (ms on the store's
    /// clock): twin of the exempt-prefixes sorted set.
    pub(super) exemptions: Mutex<std::collections::HashMap<DestinationPrefix, u64>>,
    /// The spend ledgers (`spend.rs`): one lock for all, as a decision
    /// spans the service's and a caller's; a handful of entries per caller.
    pub(super) spend: Mutex<std::collections::HashMap<super::spend::LedgerKey, Buckets>>,
    /// Origin of the millisecond clock the send logs use.
    pub(super) epoch: Instant,
    pub(super) next_token: AtomicU64,
}

/// Locks a map, ignoring poisoning: a panic while holding the lock cannot
/// leave an entry half-written (every mutation is a plain field store), so
/// the data is still consistent.
pub(super) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired entries forgotten.
    pub removed: usize,
    /// Longest time any one lock was held (what a concurrent call could
    /// have waited for the sweeper).
    pub longest_hold: Duration,
}

impl Shared {
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Forgets expired entries, one shard at a time (see `sharded.rs`).
    pub(super) async fn sweep(&self) -> SweepReport {
        let now = Instant::now();
        let codes = self.codes.retain(|entry| entry.expires_at > now).await;
        let keys = self
            .idempotency
            .retain(|entry| entry.expires_at > now)
            .await;
        let now_ms = self.now_ms();
        let logs = self
            .sends
            .retain(|log| {
                log.times
                    .back()
                    .is_some_and(|(at, _)| at.saturating_add(log.keep_for_ms) > now_ms)
            })
            .await;
        let prefixes = self.prefixes.retain(|window| !window.is_idle(now_ms)).await;
        self.suspensions_in_force(now_ms);
        let ledgers = self.sweep_spend(now_ms);
        SweepReport {
            removed: codes.0 + keys.0 + logs.0 + prefixes.0 + ledgers,
            longest_hold: codes.1.max(keys.1).max(logs.1).max(prefixes.1),
        }
    }
}

pub(super) async fn sweep_expired(shared: Weak<Shared>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.sweep().await;
    }
}
