//! Idempotency claims: claim, complete, release. Only the claim's owner
//! settles it; each call is one mutex-held block on the key's shard.

use std::{sync::atomic::Ordering, time::Duration};

use tokio::time::Instant;

use super::state::{IdempotencyEntry, Shared};
use crate::{
    domain::SubjectKey,
    store::{ClaimOwner, IdempotencyClaim, RecordedSend, StoreError},
};

impl Shared {
    /// Twin of `lua/claim_idempotency.lua`.
    pub(super) fn claim_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        in_progress_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let now = Instant::now();
        let owner = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut keys = self.idempotency.lock(key);
        if let Some(entry) = keys.get(key).filter(|entry| entry.expires_at > now) {
            return Ok(if entry.subject != *subject {
                IdempotencyClaim::OtherSubject
            } else {
                entry
                    .response
                    .map_or(IdempotencyClaim::InProgress, IdempotencyClaim::Completed)
            });
        }
        if !self.idempotency.has_room(&keys, key) {
            return Err(StoreError::Full);
        }
        keys.insert(
            *key,
            IdempotencyEntry {
                subject: *subject,
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
    pub(super) fn complete_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
        response: &RecordedSend,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut keys = self.idempotency.lock(key);
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
    pub(super) fn release_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut keys = self.idempotency.lock(key);
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
}

/// A live, not yet completed claim held by `owner`.
fn owned_claim(entry: &IdempotencyEntry, owner: &ClaimOwner, now: Instant) -> bool {
    entry.expires_at > now && entry.response.is_none() && entry.owner.to_string() == owner.0
}
