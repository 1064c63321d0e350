//! The code records: store, verify, time left, discard, cancel. Each
//! method is one mutex-held block on its number's shard, and names its Lua
//! twin. A number's code lives in its record beside its send log
//! (`state.rs`), keeping the first 16 bytes of the digest as the Redis
//! record does.

use std::time::Duration;

use subtle::ConstantTimeEq;

use super::{
    state::{CodeState, NumberRecord, Shared},
    ticks::{left_until, tick_after},
};
use crate::{
    domain::{CodeDigest, SubjectKey},
    store::{PutOutcome, StoreError, VerifyOutcome},
};

/// The part of a code's digest a record keeps (twin of `kept_digest` in
/// `redis/number_record.rs`).
fn kept(digest: &CodeDigest) -> [u8; 16] {
    let mut kept = [0; 16];
    kept.copy_from_slice(&digest.as_bytes()[..16]);
    kept
}

/// A guess budget as a record counts it (see [`CodeState::attempts_used`]).
fn budget(max_attempts: u32) -> u8 {
    u8::try_from(max_attempts).unwrap_or(u8::MAX)
}

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
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        let max_attempts = budget(max_attempts);
        let mut numbers = self.numbers.lock(subject);
        let now_ms = self.now_ms();
        if let Some(code) = live_code(numbers.get_mut(subject), now_ms) {
            if let Some(retry_after) = lock_left(code, max_attempts, now_ms) {
                return Ok(PutOutcome::Locked { retry_after });
            }
            let left = left_until(code.until, now_ms).unwrap_or(0);
            code.kept = kept(digest);
            code.pending = true;
            code.until = tick_after(now_ms, left.max(lifetime_ms));
            return Ok(PutOutcome::Stored {
                attempts_remaining: u32::from(max_attempts - code.attempts_used),
            });
        }
        if !self.numbers.has_room(&numbers, subject) {
            return Err(StoreError::Full);
        }
        numbers.entry(*subject).or_default().code = CodeState {
            kept: kept(digest),
            until: tick_after(now_ms, lifetime_ms),
            attempts_used: 0,
            held: true,
            pending: true,
            locked: false,
        };
        Ok(PutOutcome::Stored {
            attempts_remaining: u32::from(max_attempts),
        })
    }

    /// Twin of `lua/verify_and_consume.lua`: a match ends the code state; a
    /// miss spends a guess, and the last one destroys the code and locks.
    pub(super) fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidates: &[CodeDigest],
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let max_attempts = budget(max_attempts);
        let mut numbers = self.numbers.lock(subject);
        let now_ms = self.now_ms();
        let Some(code) = live_code(numbers.get_mut(subject), now_ms) else {
            return Ok(VerifyOutcome::Expired);
        };
        if code.locked {
            return Ok(VerifyOutcome::Locked);
        }
        if !code.pending {
            return Ok(VerifyOutcome::Expired);
        }
        // Every candidate is compared (constant time each), so the time taken
        // does not say which secret matched. Twin: verify_and_consume.lua.
        let matched = candidates.iter().fold(false, |matched, candidate| {
            matched | bool::from(code.kept.ct_eq(&kept(candidate)))
        });
        if matched {
            *code = CodeState::default();
            let sent_at_ms = numbers
                .get(subject)
                .and_then(|record| record.log.newest_ms(now_ms));
            forget_if_idle(&mut numbers, subject, now_ms);
            drop(numbers);
            // A number whose limits are too large to pack logs its sends in
            // a plain list (`send_logs.rs`); Redis always packs them.
            let sent_at_ms = sent_at_ms.or_else(|| self.newest_listed_send(subject));
            return Ok(VerifyOutcome::Approved { sent_at_ms });
        }
        code.attempts_used = code.attempts_used.saturating_add(1);
        let attempts_remaining = max_attempts.saturating_sub(code.attempts_used);
        if attempts_remaining == 0 {
            code.pending = false;
            code.locked = true;
        }
        Ok(VerifyOutcome::Incorrect {
            attempts_remaining: u32::from(attempts_remaining),
        })
    }

    /// Twin of `lua/pending_lifetime.lua`: nothing while locked or without a code.
    pub(super) fn pending_lifetime(
        &self,
        subject: &SubjectKey,
    ) -> Result<Option<Duration>, StoreError> {
        let mut numbers = self.numbers.lock(subject);
        let now_ms = self.now_ms();
        Ok(live_code(numbers.get_mut(subject), now_ms)
            .filter(|code| code.pending && !code.locked)
            .and_then(|code| left_until(code.until, now_ms))
            .map(Duration::from_millis))
    }

    /// Twin of `lua/lock_remaining.lua`: how long `put_code` would refuse.
    pub(super) fn lock_remaining(
        &self,
        subject: &SubjectKey,
        max_attempts: u32,
    ) -> Result<Option<Duration>, StoreError> {
        let mut numbers = self.numbers.lock(subject);
        let now_ms = self.now_ms();
        Ok(live_code(numbers.get_mut(subject), now_ms)
            .and_then(|code| lock_left(code, budget(max_attempts), now_ms)))
    }

    /// Twin of `lua/discard_code.lua`: only if the digest is still `digest`;
    /// the spent guesses stay.
    pub(super) fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError> {
        let mut numbers = self.numbers.lock(subject);
        let now_ms = self.now_ms();
        if let Some(code) = live_code(numbers.get_mut(subject), now_ms)
            && code.pending
            && bool::from(code.kept.ct_eq(&kept(digest)))
        {
            code.pending = false;
        }
        Ok(())
    }

    /// Twin of `lua/cancel_code.lua`: the spent guesses and any lock stay.
    pub(super) fn cancel_code(&self, subject: &SubjectKey) -> Result<bool, StoreError> {
        let mut numbers = self.numbers.lock(subject);
        let now_ms = self.now_ms();
        Ok(live_code(numbers.get_mut(subject), now_ms)
            .is_some_and(|code| std::mem::replace(&mut code.pending, false)))
    }
}

/// Time until `code`'s wrong-guess lock ends, or `None` when it is not
/// locked: locked, or every guess of `max_attempts` spent. The one
/// statement of the lock, for `put_code` and `lock_remaining` (twin of
/// `lock_left` in `lua/number_record.lua`).
fn lock_left(code: &CodeState, max_attempts: u8, now_ms: u64) -> Option<Duration> {
    (code.locked || code.attempts_used >= max_attempts)
        .then(|| Duration::from_millis(left_until(code.until, now_ms).unwrap_or(0)))
}

/// The number's code state if it is still live, ending it first if its
/// time has passed (the record stays for its send log).
fn live_code(record: Option<&mut NumberRecord>, now_ms: u64) -> Option<&mut CodeState> {
    let code = &mut record?.code;
    if code.held && !code.is_live(now_ms) {
        *code = CodeState::default();
    }
    code.held.then_some(code)
}

/// Drops `subject`'s record once nothing in it counts any more.
fn forget_if_idle(
    numbers: &mut std::collections::HashMap<SubjectKey, NumberRecord>,
    subject: &SubjectKey,
    now_ms: u64,
) {
    if numbers
        .get(subject)
        .is_some_and(|record| !record.is_live(now_ms))
    {
        numbers.remove(subject);
    }
}
