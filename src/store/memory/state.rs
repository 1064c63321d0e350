//! What the memory store holds, and the sweeper that forgets what expired.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, Weak, atomic::AtomicU64},
    time::Duration,
};

use tokio::time::Instant;

use crate::{
    domain::{CodeDigest, SubjectKey},
    store::{RecordedSend, SendLog, sliding_log::SendTimes},
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

pub(super) type Entries = HashMap<SubjectKey, Entry>;

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

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) codes: Mutex<Entries>,
    pub(super) sends: Mutex<HashMap<SendLog, SendLogEntry>>,
    pub(super) idempotency: Mutex<HashMap<SubjectKey, IdempotencyEntry>>,
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

impl Shared {
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn sweep(&self) {
        let now = Instant::now();
        locked(&self.codes).retain(|_, entry| entry.expires_at > now);
        locked(&self.idempotency).retain(|_, entry| entry.expires_at > now);
        let now_ms = self.now_ms();
        locked(&self.sends).retain(|_, log| {
            log.times
                .back()
                .is_some_and(|(at, _)| at.saturating_add(log.keep_for_ms) > now_ms)
        });
    }
}

pub(super) async fn sweep_expired(shared: Weak<Shared>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.sweep();
    }
}
