//! What the store's operations answer ([`OtpStore`](super::OtpStore)):
//! their outcomes, the send logs and limits they count, and the store's one
//! error type.

use std::time::Duration;

use thiserror::Error;

use crate::{abuse::LimitKind, domain::SubjectKey};

/// What [`OtpStore::put_code`](super::OtpStore::put_code) did.
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

/// What [`OtpStore::verify_and_consume`](super::OtpStore::verify_and_consume) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The digest matched; the code has been deleted and the budget reset.
    Approved {
        /// When the approved code was sent (ms on the store's clock: the
        /// number's newest logged send), if a send is logged: the pumping
        /// guard's approval finds that send by it
        /// ([`OtpStore::count_prefix_approval`](super::OtpStore::count_prefix_approval)).
        sent_at_ms: Option<u64>,
    },
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

/// Which sends (or, for the verify limits, which guesses) a set of limits
/// counts. Every log is the same sliding log; only its key differs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SendLog {
    /// Sends to one phone number.
    Phone(SubjectKey),
    /// Sends requested by one `client_key` (keyed hash of it).
    Client(SubjectKey),
    /// Sends requested by one authenticated caller (its name: not secret).
    Caller(String),
    /// Sends requested without a `client_key`, all together.
    Anonymous,
    /// Every send of the service.
    Global,
    /// VerifyOtp calls made for one `client_key` (keyed hash of it).
    ClientVerifies(SubjectKey),
    /// VerifyOtp calls made by one authenticated caller (its name).
    CallerVerifies(String),
    /// VerifyOtp calls without a `client_key`, all together.
    AnonymousVerifies,
    /// Every VerifyOtp call of the service.
    GlobalVerifies,
}

/// One limit that refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// The limit, as named by the rule the store was given.
    pub kind: LimitKind,
    /// Time until this limit would admit a send.
    pub retry_after: Duration,
}

/// What [`OtpStore::record_send`](super::OtpStore::record_send) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// The send was counted.
    Admitted {
        /// Identifies this send, to take it back with [`OtpStore::refund_send`](super::OtpStore::refund_send).
        token: String,
        /// Time until the same log would admit another send.
        next_allowed_in: Duration,
        /// When the log counted the send (ms on the store's clock), where
        /// the log keeps it: a number's log, for the pumping guard to count
        /// the send at the same time ([`PrefixSender::sent_at_ms`]).
        sent_at_ms: Option<u64>,
    },
    /// Some rule is full; nothing was counted.
    Refused {
        /// Every rule that refused, with its own delay.
        violations: Vec<Violation>,
    },
}

/// The response of a completed send, kept for idempotent retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedSend {
    /// `expires_in_seconds` of the first response.
    pub expires_in_secs: u32,
    /// `code_length` of the first response.
    pub code_length: u32,
    /// `attempts_remaining` of the first response.
    pub attempts_remaining: u32,
    /// `resend_after_seconds` of the first response.
    pub resend_after_secs: u32,
    /// The channel that carried the first call's code, as the flow numbers
    /// channels (0: SMS, what every record written before channels means).
    pub channel: u32,
}

/// A random token naming the one call that holds an idempotency claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOwner(pub String);

/// What [`OtpStore::claim_idempotency`](super::OtpStore::claim_idempotency) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free and now belongs to this call: go ahead and send.
    Claimed {
        /// Proves this call owns the claim: only its holder may complete or
        /// release it, so a call whose claim expired (and was claimed again
        /// by a retry) cannot settle the retry's claim.
        owner: ClaimOwner,
    },
    /// Another call with this key is sending right now.
    InProgress,
    /// A call with this key already sent; this is its response.
    Completed(RecordedSend),
    /// The key was used for a different phone number.
    OtherSubject,
}

/// A store could not answer. Its text is for logs, never for callers.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store is unreachable or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store is at its size limit (`OTP_MEMORY_MAX_ENTRIES`) and takes
    /// nothing new until expired entries are swept.
    #[error("store is full")]
    Full,
    /// The store answered something this code does not understand.
    #[error("store returned an unexpected reply: {0}")]
    Protocol(String),
}

/// What [`OtpStore::eviction_policy`](super::OtpStore::eviction_policy) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// The store never evicts (the in-memory store).
    NotApplicable,
    /// Redis's `maxmemory-policy` is `noeviction`: writes fail rather than
    /// keys vanish.
    NoEviction,
    /// Redis may evict live keys under this `maxmemory-policy`.
    Evicting(String),
    /// Redis would not say (`CONFIG GET` refused or renamed, as on many
    /// managed offerings).
    Unknown,
}
