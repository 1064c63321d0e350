//! What the memory store holds, and the sweeper that forgets what expired.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{Mutex, MutexGuard, Weak, atomic::AtomicU64},
    time::Duration,
};

use tokio::time::Instant;

use super::{
    packed_log::PackedLog,
    sharded::Sharded,
    ticks::{Tick, left_until},
};
use crate::{
    abuse::DestinationPrefix,
    domain::SubjectKey,
    store::{
        RecordedSend, SendLog, prefix_window::PrefixWindow, sliding_log::SendTimes,
        spend_window::Buckets,
    },
};

/// How often expired entries are swept, bounding memory under churn to about
/// one sweep interval's worth of dead entries beyond the live ones.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A phone number's code state and send log in one entry (issue 30): one
/// key (the number's 16-byte keyed digest) where a code and a log were two,
/// and no heap block but the log's sends. Twin of the number record of
/// `lua/number_record.lua`.
#[derive(Debug, Default)]
pub(super) struct NumberRecord {
    pub(super) code: CodeState,
    pub(super) log: PackedLog,
}

/// A number's code, its spent guesses and its lock, while they last.
#[derive(Debug, Default)]
pub(super) struct CodeState {
    /// The first 16 bytes of the pending code's digest, as the Redis record
    /// keeps them (`kept_digest`: a wrong guess still passes with odds of
    /// 2^-128, far below the guess budget's).
    pub(super) kept: [u8; 16],
    /// When the state ends (code, spent guesses and lock alike).
    pub(super) until: Tick,
    /// Wrong guesses spent (the budget is at most 20; a store call's
    /// budget above 255 is cut to 255, never raised).
    pub(super) attempts_used: u8,
    /// Whether there is a state at all (`until` means nothing otherwise).
    pub(super) held: bool,
    /// Whether `kept` is a code that may still be verified: false once it
    /// was consumed, discarded, cancelled or destroyed by the lock, while
    /// the spent guesses live on until `until`.
    pub(super) pending: bool,
    pub(super) locked: bool,
}

impl NumberRecord {
    /// Whether anything here still counts at `now_ms`.
    pub(super) fn is_live(&self, now_ms: u64) -> bool {
        self.code.is_live(now_ms) || self.log.is_live(now_ms)
    }
}

impl CodeState {
    pub(super) fn is_live(&self, now_ms: u64) -> bool {
        self.held && left_until(self.until, now_ms).is_some()
    }
}

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
    /// Each phone number's code state and send log.
    pub(super) numbers: Sharded<SubjectKey, NumberRecord>,
    /// Each `client_key`'s send log (keyed by its keyed digest).
    pub(super) clients: Sharded<SubjectKey, PackedLog>,
    /// The shared send logs (a caller's, the anonymous one, the global
    /// cap), the verify logs, and a number's or client's log under rules
    /// a packed log does not serve (`send_logs.rs`).
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
        let now_ms = self.now_ms();
        let numbers = self.numbers.retain(|record| record.is_live(now_ms)).await;
        let clients = self.clients.retain(|log| log.is_live(now_ms)).await;
        let keys = self
            .idempotency
            .retain(|entry| entry.expires_at > now)
            .await;
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
            removed: numbers.0 + clients.0 + keys.0 + logs.0 + prefixes.0 + ledgers,
            longest_hold: numbers
                .1
                .max(clients.1)
                .max(keys.1)
                .max(logs.1)
                .max(prefixes.1),
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
