//! Where pending codes live. Every method of [`OtpStore`] is one atomic
//! operation, so that two callers (or two replicas sharing a Redis) racing on
//! the same phone behave exactly as if they had taken turns.

mod answers;
mod memory;
mod prefix_answers;
mod prefix_window;
mod redis;
mod send_plan;
mod sliding_log;
mod spend_window;
mod verify_plan;

use std::time::Duration;

use async_trait::async_trait;

pub use answers::{
    ClaimOwner, EvictionPolicy, IdempotencyClaim, PutOutcome, RecordedSend, SendDecision, SendLog,
    StoreError, VerifyOutcome, Violation,
};
pub use memory::{DEFAULT_MAX_ENTRIES, MemoryStore, SweepReport};
pub use prefix_answers::{
    PrefixDecision, PrefixExemption, PrefixSender, PrefixVerdict, SuspendedPrefix,
};
pub use redis::{
    RedisNodes, RedisSettings, RedisStore, RedisStreamAppender, RedisTopology, RedisUrl,
};
pub use send_plan::{
    CodeToStore, PrefixStep, PrefixSuspension, SendOutcome, SendPlan, SpendStep, StoredSend,
    count_in_steps, take_back_prefix_send, take_back_sends,
};
pub use spend_window::{SpendDecision, SpendLedger, SpendRefusal, SpendReservation, SpendWindow};
pub use verify_plan::{CheckOutcome, VerifyPlan, check_in_steps};

use crate::{
    abuse::{DestinationPrefix, PrefixRule, RateRule},
    domain::{CodeDigest, SubjectKey},
    spend::Micros,
};

/// The store selection: Redis when one of `REDIS_URL`, `REDIS_CLUSTER_URLS`
/// or `REDIS_SENTINEL_URLS` is set, else in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Process-local; for development and single-replica deployments.
    Memory,
    /// Shared by every replica pointing at the same Redis.
    Redis(RedisSettings),
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

    /// Compares each of `candidates` (the code's digest under each HMAC
    /// secret of the key ring) to the pending code (constant time). A match
    /// deletes the code, so it is approved exactly once; a miss spends one of
    /// `max_attempts` guesses and, on the last, destroys the code and locks
    /// the subject for the rest of the code's lifetime.
    async fn verify_and_consume(
        &self,
        subject: &SubjectKey,
        candidates: &[CodeDigest],
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError>;

    /// Lifetime left on the pending code (grace included), or `None` when
    /// nothing can be verified.
    async fn pending_lifetime(&self, subject: &SubjectKey) -> Result<Option<Duration>, StoreError>;

    /// Time until `subject`'s wrong-guess lock ends (as
    /// [`OtpStore::put_code`] would refuse with `max_attempts`), or `None`
    /// when it is not locked. Reads only.
    async fn lock_remaining(
        &self,
        subject: &SubjectKey,
        max_attempts: u32,
    ) -> Result<Option<Duration>, StoreError>;

    /// Removes the pending code only if it is still `digest`, so a code
    /// stored by a newer send is never removed by an older one's rollback.
    /// The wrong-guess count is kept.
    async fn discard_code(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
    ) -> Result<(), StoreError>;

    /// Removes the pending code whatever it is (CancelOtp), keeping the spent
    /// guesses and any lock. Returns whether a code was pending.
    async fn cancel_code(&self, subject: &SubjectKey) -> Result<bool, StoreError>;

    /// Counts one send in `log` if every rule admits it (sliding windows, see
    /// `sliding_log.rs`); otherwise counts nothing. Atomic per log.
    async fn record_send(
        &self,
        log: &SendLog,
        rules: &[RateRule],
    ) -> Result<SendDecision, StoreError>;

    /// Takes back a send counted by [`OtpStore::record_send`] (the send did
    /// not happen after all). Unknown tokens are ignored.
    async fn refund_send(&self, log: &SendLog, token: &str) -> Result<(), StoreError>;

    /// The pumping guard's one decision per send to `prefix` by `sender`:
    /// lets it through uncounted while the prefix is exempt, or while it is
    /// suspended and the number is trusted; refuses while it is suspended;
    /// suspends it (keeping its counts) when `rule` judges its sends pumped
    /// and the unverified ones came from enough sources (never on a trusted
    /// number's send); otherwise counts the send. Atomic per prefix, across
    /// every process sharing the store (see `prefix_window.rs`).
    async fn count_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        rule: &PrefixRule,
        sender: PrefixSender<'_>,
    ) -> Result<PrefixDecision, StoreError>;

    /// Takes back a send counted by [`OtpStore::count_prefix_send`] whose
    /// code was never delivered (nobody could have approved it). Unknown
    /// tokens are ignored.
    async fn refund_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        token: &str,
    ) -> Result<(), StoreError>;

    /// One SendOtp's store work: counts the send in each of `plan`'s logs
    /// (the first refusal wins and the earlier counts are taken back; a
    /// lock outlasting that refusal is the refusal instead), then
    /// lets the pumping guard judge its prefix, then stores the code, then
    /// reserves its price against the spend caps; a suspension that refuses,
    /// a lock, a spend refusal or a store error takes back every count made
    /// (and the code, once stored). Records its own latency in the
    /// store-operation histogram. The default is [`count_in_steps`], one
    /// store call per step; a store that overrides it (Redis on one server
    /// or behind Sentinel: one script) answers exactly as the default would.
    async fn count_send_and_put_code(&self, plan: SendPlan<'_>) -> Result<SendOutcome, StoreError> {
        count_in_steps(self, plan).await
    }

    /// One VerifyOtp's store work: counts the guess in each of `plan`'s
    /// verify logs (the first refusal wins, nothing stays counted and the
    /// code is not compared), then [`OtpStore::verify_and_consume`]. Records
    /// its own latency. The default is [`check_in_steps`]; a store that
    /// overrides it (Redis on one server or behind Sentinel: one script)
    /// answers exactly as the default would.
    async fn count_verify_and_consume(
        &self,
        plan: VerifyPlan<'_>,
    ) -> Result<CheckOutcome, StoreError> {
        check_in_steps(self, plan).await
    }

    /// The spend caps' decision per send: reserves `amount` in every window
    /// if none would then pass its limit, else nothing, naming each window
    /// that refused and when the amount would fit (`spend_window.rs`).
    /// Atomic over the windows, across every process sharing the store.
    async fn reserve_spend(
        &self,
        amount: Micros,
        windows: &[SpendWindow],
    ) -> Result<SpendDecision, StoreError>;

    /// Gives back `amount` of `reservation` in each window keeping its bucket, atomically.
    async fn refund_spend(
        &self,
        reservation: &SpendReservation,
        amount: Micros,
    ) -> Result<(), StoreError>;

    /// Counts the approval of the code last sent to `subject` under
    /// `prefix`: that send (if still counted) becomes an approved one, and
    /// the number is trusted for `rule.trust_for`. Atomic per prefix.
    /// `sent_at_ms` is [`VerifyOutcome::Approved`]'s: the prefix counted
    /// the send at exactly that time ([`PrefixSender::sent_at_ms`]), so the
    /// approval finds it among the sends of that millisecond. A send counted
    /// by a version before this one is found as that version kept it (each
    /// number's latest send, read only while an old replica still writes
    /// it); `None` approves no send (the number is still trusted).
    async fn count_prefix_approval(
        &self,
        prefix: &DestinationPrefix,
        subject: &SubjectKey,
        rule: &PrefixRule,
        sent_at_ms: Option<u64>,
    ) -> Result<(), StoreError>;

    /// How many prefixes are suspended now, service-wide, after listing
    /// `newly` (a prefix just suspended, and when it lifts) if given.
    async fn suspended_prefixes(
        &self,
        newly: Option<(&DestinationPrefix, Duration)>,
    ) -> Result<u64, StoreError>;

    /// Every prefix suspended now, service-wide, with its counts under
    /// `rule` and its time to lift.
    async fn list_suspended_prefixes(
        &self,
        rule: &PrefixRule,
    ) -> Result<Vec<SuspendedPrefix>, StoreError>;

    /// Lifts `prefix`'s suspension at once, for every replica, keeping its
    /// counts. Returns whether it was suspended.
    async fn lift_prefix_suspension(&self, prefix: &DestinationPrefix) -> Result<bool, StoreError>;

    /// Exempts `prefix` from the guard for `duration` (lifting any
    /// suspension), for every replica; a zero `duration` ends an exemption,
    /// and changes nothing (a suspension stays) when none is in force.
    /// Returns whether an exemption was in force before.
    async fn exempt_prefix(
        &self,
        prefix: &DestinationPrefix,
        duration: Duration,
    ) -> Result<bool, StoreError>;

    /// Every prefix exempt now, service-wide, with the time its exemption ends.
    async fn list_prefix_exemptions(&self) -> Result<Vec<PrefixExemption>, StoreError>;

    /// Claims idempotency `key` for `subject` for `in_progress_ttl`, or reports
    /// who has it. Atomic: of many concurrent claims exactly one gets `Claimed`.
    async fn claim_idempotency(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
        in_progress_ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError>;

    /// Records the response for a key `owner` still holds, kept for `ttl`.
    /// Returns false (and changes nothing) when the claim is no longer
    /// `owner`'s: it expired and another call claimed or completed the key.
    async fn complete_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
        response: &RecordedSend,
        ttl: Duration,
    ) -> Result<bool, StoreError>;

    /// Frees a key `owner` still holds after a failed send, so a retry can
    /// try again. Returns false (and changes nothing) when the claim is no
    /// longer `owner`'s or was already completed.
    async fn release_idempotency(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
    ) -> Result<bool, StoreError>;

    /// Checks that the store can serve requests right now.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether the store may drop live keys under memory pressure. Every key
    /// has a TTL, so an evicting Redis (`volatile-*` or `allkeys-*`) may
    /// remove a lock or a guess counter early, resetting brute-force
    /// protection. A store that never evicts answers `NotApplicable`.
    async fn eviction_policy(&self) -> Result<EvictionPolicy, StoreError> {
        Ok(EvictionPolicy::NotApplicable)
    }
}
