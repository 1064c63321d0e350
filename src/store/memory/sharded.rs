//! A hash map split into shards, each behind its own mutex: a call locks only
//! its key's shard, and the sweeper walks the shards one at a time, so no
//! lock is ever held for more than one shard's worth of work (with a million
//! entries, about 4 000 of them), and callers get in between shards. The
//! cap is per shard; keys are HMACs and spread evenly, so the whole map fills
//! to within a few percent of its cap before the first refusal.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    sync::{Mutex, MutexGuard},
    time::Duration,
};

// Wall-clock time: what a waiting caller feels, even under a paused test clock.
use std::time::Instant;

/// Most shards per map: enough that one shard's sweep is short at a million
/// entries, few enough that counting is cheap.
const MAX_SHARDS: usize = 256;
/// Fewest entries a shard is sized for: a small map is one shard (or a few),
/// so its cap is exact rather than spread thin across many shards.
const MIN_SHARD_CAP: usize = 1024;

pub(super) struct Sharded<K, V> {
    shards: Box<[Mutex<HashMap<K, V>>]>,
    hasher: RandomState,
    /// Most entries one shard may hold: the map's cap spread evenly (keys
    /// are HMACs, so they spread evenly too).
    shard_cap: usize,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    /// An empty map that holds about `max_entries` at most.
    pub(super) fn new(max_entries: usize) -> Self {
        let shards = (max_entries / MIN_SHARD_CAP).clamp(1, MAX_SHARDS);
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            shard_cap: max_entries.div_ceil(shards).max(1),
        }
    }

    /// An empty map with as many shards as the largest capped one and no
    /// cap: for a table bounded by something else (the pumping guard's
    /// prefixes: one window of traffic).
    pub(super) fn uncapped() -> Self {
        Self {
            shards: (0..MAX_SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            shard_cap: usize::MAX,
        }
    }

    /// The shard holding `key`, locked. Poisoning is ignored: a panic while
    /// holding it cannot leave an entry half-written (every mutation is a
    /// plain field store), so the data is still consistent.
    pub(super) fn lock(&self, key: &K) -> MutexGuard<'_, HashMap<K, V>> {
        let shards = self.shards.len() as u64;
        let index = usize::try_from(self.hasher.hash_one(key) % shards).unwrap_or(0);
        lock(&self.shards[index % self.shards.len()])
    }

    /// Whether `shard` (locked by [`Sharded::lock`]) may take `key` in: it is
    /// there already, or the shard is below its cap.
    pub(super) fn has_room(&self, shard: &HashMap<K, V>, key: &K) -> bool {
        shard.len() < self.shard_cap || shard.contains_key(key)
    }

    /// Entries held, expired or not.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    /// Keeps the entries `keep` approves, one shard at a time, yielding to
    /// other tasks between shards. Returns how many were removed and the
    /// longest time one shard was held.
    pub(super) async fn retain(&self, mut keep: impl FnMut(&V) -> bool) -> (usize, Duration) {
        let mut removed = 0;
        let mut longest = Duration::ZERO;
        for shard in &self.shards {
            {
                let started = Instant::now();
                let mut map = lock(shard);
                let before = map.len();
                map.retain(|_, value| keep(value));
                removed += before - map.len();
                longest = longest.max(started.elapsed());
            }
            tokio::task::yield_now().await;
        }
        (removed, longest)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
