//! What the stores answer about destination prefixes: the pumping guard's
//! decision on a send, the counts a suspension was judged on, and the
//! suspensions and exemptions an operator lists.

use std::time::Duration;

use crate::{
    abuse::{DestinationPrefix, SendSource},
    domain::SubjectKey,
};

#[cfg(doc)]
use super::{OtpStore, SendDecision, VerifyOutcome};

/// What [`OtpStore::count_prefix_send`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixDecision {
    /// The send was counted for its prefix.
    Counted {
        /// Identifies this send, to take it back with [`OtpStore::refund_prefix_send`].
        token: String,
    },
    /// The prefix is suspended; nothing was counted.
    Suspended {
        /// Time until the suspension lifts.
        lift_in: Duration,
        /// Set when this very call suspended the prefix: what it judged by.
        verdict: Option<PrefixVerdict>,
    },
}

/// The counts a prefix was suspended on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixVerdict {
    /// Sends in the window old enough to have been approved.
    pub judged: u64,
    /// How many of those had their own code approved.
    pub approved: u64,
}

/// Who a send to a prefix is for and from: the pumping guard trusts numbers
/// and tells sources apart by these.
#[derive(Debug, Clone, Copy)]
pub struct PrefixSender<'a> {
    /// The number (its keyed digest; the stores keep 8 bytes of it).
    pub subject: &'a SubjectKey,
    /// Who asked for the send.
    pub source: SendSource,
    /// When the number's own log counted this send (ms on the store's
    /// clock; [`SendDecision::Admitted`]), if it did: the guard counts the
    /// send at that very time, which is how an approval finds it again
    /// ([`VerifyOutcome::Approved`]). `None`: at the guard's own clock.
    pub sent_at_ms: Option<u64>,
}

/// A suspended destination prefix as an operator sees it (the admin API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspendedPrefix {
    /// The suspended range.
    pub prefix: DestinationPrefix,
    /// Time until the suspension lifts by itself.
    pub lift_in: Duration,
    /// The prefix's counts now (kept while it is suspended): judged sends
    /// and how many of those were approved, under the guard's rule.
    pub counts: PrefixVerdict,
}

/// A prefix the guard leaves alone for a while (the admin API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixExemption {
    /// The exempt range.
    pub prefix: DestinationPrefix,
    /// Time until the exemption ends.
    pub ends_in: Duration,
}
