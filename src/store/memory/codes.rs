//! The code records: store, verify, time left, discard, cancel. Each
//! method is one mutex-held block on its subject's shard, and names its Lua twin.

use std::time::Duration;

use tokio::time::Instant;

use super::state::{Entries, Entry, Shared};
use crate::{
    domain::{CodeDigest, SubjectKey},
    store::{PutOutcome, StoreError, VerifyOutcome},
};

impl Shared {
    /// Twin of `lua/put_code.lua`: a locked or spent subject refuses; a live
    /// record keeps its spent guesses and a TTL that never shrinks.
    pub(super) fn put_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
        lifetime: Duration,
        max_attempts: u32,
    ) -> Result<PutOutcome, StoreError> {
        let now = Instant::now();
        let mut entries = self.codes.lock(subject);
        let expires_at = now + lifetime;
        match live(&mut entries, subject, now) {
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
                if !self.codes.has_room(&entries, subject) {
                    return Err(StoreError::Full);
                }
                entries.insert(
                    *subject,
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
    pub(super) fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidates: &[CodeDigest],
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let now = Instant::now();
        let mut entries = self.codes.lock(subject);
        let Some(entry) = live(&mut entries, subject, now) else {
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
    pub(super) fn pending_lifetime(
        &self,
        subject: &SubjectKey,
    ) -> Result<Option<Duration>, StoreError> {
        let now = Instant::now();
        let mut entries = self.codes.lock(subject);
        Ok(live(&mut entries, subject, now)
            .filter(|entry| entry.digest.is_some() && !entry.locked)
            .map(|entry| entry.expires_at - now))
    }

    /// Twin of `lua/discard_code.lua`: only if the digest is still `digest`;
    /// the spent guesses stay.
    pub(super) fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut entries = self.codes.lock(subject);
        if let Some(entry) = live(&mut entries, subject, now)
            && entry.digest.as_ref() == Some(digest)
        {
            entry.digest = None;
        }
        Ok(())
    }

    /// Twin of `lua/cancel_code.lua`: the spent guesses and any lock stay.
    pub(super) fn cancel_code(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut entries = self.codes.lock(subject);
        Ok(live(&mut entries, subject, now)
            .and_then(|entry| entry.digest.take())
            .is_some())
    }
}

/// The live entry for `subject`, dropping it first if it has expired.
fn live<'a>(entries: &'a mut Entries, subject: &SubjectKey, now: Instant) -> Option<&'a mut Entry> {
    if entries
        .get(subject)
        .is_some_and(|entry| entry.expires_at <= now)
    {
        entries.remove(subject);
    }
    entries.get_mut(subject)
}
