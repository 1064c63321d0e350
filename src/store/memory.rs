//! The embedded store: a process-local map behind a mutex. For `cargo run`,
//! tests and single-replica deployments; codes vanish on restart.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use async_trait::async_trait;
use tokio::time::Instant;

use super::{OtpStore, PutOutcome, StoreError, VerifyOutcome};
use crate::domain::{CodeDigest, SubjectKey};

/// How often expired entries are swept, bounding memory under churn to about
/// one sweep interval's worth of dead entries beyond the live ones.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Entry {
    /// `None` once the code was destroyed (lock, rollback) but the spent
    /// guess count must live on until `expires_at`.
    digest: Option<CodeDigest>,
    attempts_used: u32,
    locked: bool,
    expires_at: Instant,
}

type Entries = HashMap<SubjectKey, Entry>;

/// In-memory [`OtpStore`]. Atomicity comes from doing each operation under
/// one mutex acquisition, with no `.await` while it is held.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    entries: Arc<Mutex<Entries>>,
}

impl MemoryStore {
    /// A new empty store. Must be called inside a Tokio runtime: it spawns the
    /// sweeper, which stops once the last clone of the store is dropped.
    pub fn new() -> Self {
        let entries = Arc::new(Mutex::new(Entries::new()));
        tokio::spawn(sweep_expired(Arc::downgrade(&entries)));
        Self { entries }
    }

    /// Number of entries held, expired or not (for tests of memory bounds).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave an entry half-written
        // (every mutation is a single field store), so poisoning is ignored.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

async fn sweep_expired(entries: Weak<Mutex<Entries>>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        let Some(entries) = entries.upgrade() else {
            return;
        };
        let now = Instant::now();
        entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|_, entry| entry.expires_at > now);
    }
}

#[async_trait]
impl OtpStore for MemoryStore {
    async fn put_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
        lifetime: Duration,
        max_attempts: u32,
    ) -> Result<PutOutcome, StoreError> {
        let now = Instant::now();
        let mut entries = self.lock();
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

    async fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidate: &CodeDigest,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let now = Instant::now();
        let mut entries = self.lock();
        let Some(entry) = Self::live(&mut entries, subject, now) else {
            return Ok(VerifyOutcome::Expired);
        };
        if entry.locked {
            return Ok(VerifyOutcome::Locked);
        }
        let Some(stored) = entry.digest else {
            return Ok(VerifyOutcome::Expired);
        };
        if stored == *candidate {
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

    async fn pending_lifetime(&self, subject: &SubjectKey) -> Result<Option<Duration>, StoreError> {
        let now = Instant::now();
        let mut entries = self.lock();
        Ok(Self::live(&mut entries, subject, now)
            .filter(|entry| entry.digest.is_some() && !entry.locked)
            .map(|entry| entry.expires_at - now))
    }

    async fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut entries = self.lock();
        if let Some(entry) = Self::live(&mut entries, subject, now)
            && entry.digest.as_ref() == Some(digest)
        {
            entry.digest = None;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(n: u32) -> SubjectKey {
        crate::domain::HmacSecret::new(b"k").subject_key(
            &crate::domain::PhoneNumber::parse(&format!("+1415555{n:04}")).expect("valid"),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_swept_so_memory_stays_bounded() {
        let store = MemoryStore::new();
        let digest = CodeDigest::from_bytes([1; 32]);
        for n in 0..1000 {
            store
                .put_code(&subject(n), &digest, Duration::from_secs(2), 5)
                .await
                .expect("stored");
        }
        assert_eq!(store.len(), 1000);
        // Virtual time: the runtime jumps ahead, running the sweeper on its way.
        tokio::time::sleep(SWEEP_INTERVAL * 2).await;
        assert!(
            store.is_empty(),
            "{} entries left after expiry",
            store.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn live_entries_survive_the_sweep() {
        let store = MemoryStore::new();
        let digest = CodeDigest::from_bytes([1; 32]);
        store
            .put_code(&subject(1), &digest, Duration::from_secs(60), 5)
            .await
            .expect("stored");
        store
            .put_code(&subject(2), &digest, Duration::from_secs(1), 5)
            .await
            .expect("stored");
        tokio::time::sleep(SWEEP_INTERVAL * 2).await;
        assert_eq!(store.len(), 1);
        assert!(
            store
                .pending_lifetime(&subject(1))
                .await
                .expect("answers")
                .is_some()
        );
    }
}
