//! Where pending codes live. Every method of [`OtpStore`] is one atomic
//! operation, so that two callers (or two replicas sharing a Redis) racing on
//! the same phone behave exactly as if they had taken turns.

mod memory;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

pub use memory::MemoryStore;
pub use redis::{RedisSettings, RedisStore, RedisUrl};

use crate::domain::{CodeDigest, SubjectKey};

/// What [`OtpStore::put_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The code is now the pending one; earlier codes stop working.
    Stored {
        /// Wrong guesses still allowed (the count spent on earlier codes is kept).
        attempts_remaining: u32,
    },
    /// The wrong-guess budget is spent; nothing was stored.
    Locked {
        /// Time until the lock ends and a new code may be stored.
        retry_after: Duration,
    },
}

/// What [`OtpStore::verify_and_consume`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The digest matched; the code has been deleted and the budget reset.
    Approved,
    /// The digest did not match; one guess was spent.
    Incorrect {
        /// Guesses left; 0 means the code was destroyed and the subject is now locked.
        attempts_remaining: u32,
    },
    /// No code is pending (never sent, expired, used or cancelled).
    Expired,
    /// The guess budget was already spent; nothing was compared.
    Locked,
}

/// A store could not answer. Its text is for logs, never for callers.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store is unreachable or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered something this code does not understand.
    #[error("store returned an unexpected reply: {0}")]
    Protocol(String),
}

/// Storage for pending codes, keyed by [`SubjectKey`] (never a phone number).
///
/// Implementations guarantee that each method is atomic with respect to
/// every other call on the same subject, across every process sharing the
/// store, and that nothing is kept past the lifetime it was given.
#[async_trait]
pub trait OtpStore: Send + Sync + 'static {
    /// Makes `digest` the pending code for `subject` for `lifetime`, keeping
    /// the wrong guesses already spent on the subject. Refuses while locked.
    async fn put_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
        lifetime: Duration,
        max_attempts: u32,
    ) -> Result<PutOutcome, StoreError>;

    /// Compares `candidate` to the pending code (constant time). A match
    /// deletes the code, so it is approved exactly once; a miss spends one of
    /// `max_attempts` guesses and, on the last, destroys the code and locks
    /// the subject for the rest of the code's lifetime.
    async fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidate: &CodeDigest,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError>;

    /// Lifetime left on the pending code (grace included), or `None` when
    /// nothing can be verified.
    async fn pending_lifetime(&self, subject: &SubjectKey) -> Result<Option<Duration>, StoreError>;

    /// Removes the pending code only if it is still `digest`, so a code
    /// stored by a newer send is never removed by an older one's rollback.
    /// The wrong-guess count is kept.
    async fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError>;

    /// Checks that the store can serve requests right now.
    async fn ping(&self) -> Result<(), StoreError>;
}
