//! The pumping guard's per-prefix counts, as the in-memory store keeps them:
//! the counted sends (27 bytes each, whether approved in each: see
//! `prefix_sends.rs`; a number's latest send is its newest there), the
//! numbers trusted here, a suspension and an exemption.
//! Twin of `src/store/lua/count_prefix_send.lua` (the decision),
//! `count_prefix_approval.lua` (an approval), `refund_prefix_send.lua`,
//! `prefix_counts.lua` and `lift_prefix.lua` (the admin API), all on
//! `prefix_log.lua`'s record; a change to one is a change to the other, and
//! the behaviour suite runs both.

mod prefix_sends;

use std::{collections::HashMap, time::Duration};

use self::prefix_sends::PrefixSends;
use super::{PrefixDecision, PrefixVerdict};
use crate::abuse::PrefixRule;

/// One prefix's counts. Times are milliseconds on the store's clock.
#[derive(Debug, Default)]
pub struct PrefixWindow {
    /// Counted sends, oldest first, each judged by when it was sent; only a
    /// number's newest one's code can still be approved.
    sends: PrefixSends,
    /// Numbers that approved a code here (subject tag -> trusted until):
    /// never refused by the guard.
    trusted: HashMap<u64, u64>,
    /// `trusted.len()` after its last pruning, so pruning stays amortised.
    trusted_pruned_len: usize,
    /// When the current suspension lifts, if any.
    suspended_until: Option<u64>,
    /// When an operator's exemption ends, if any.
    exempt_until: Option<u64>,
    /// Sends at or before this were acted on (a suspension began, or an
    /// operator lifted one): kept as evidence, never judged again.
    judged_up_to: Option<u64>,
    /// The longest window or trust this prefix was counted with: after that,
    /// and once no suspension or exemption is in force, the entry is idle.
    keep_for_ms: u64,
}

/// Who a send to a prefix is for and from, as 8-byte tags (see
/// [`crate::store::PrefixSender`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderTags {
    /// The number's tag (the first 8 bytes of its keyed subject digest).
    pub subject: u64,
    /// The [`crate::abuse::SendSource`] as a number.
    pub source: u64,
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl PrefixWindow {
    /// The decision for one send at `now_ms` (see [`super::OtpStore::count_prefix_send`]).
    pub fn count_send(
        &mut self,
        rule: &PrefixRule,
        now_ms: u64,
        token: u32,
        sender: SenderTags,
    ) -> PrefixDecision {
        let passed = PrefixDecision::Counted {
            token: token.to_string(),
        };
        if self.exempt_until.is_some_and(|until| until > now_ms) {
            // The operator said leave it alone: let it through uncounted.
            return passed;
        }
        let trusted = self.is_trusted(sender.subject, now_ms);
        if let Some(until) = self.suspended_until.filter(|until| *until > now_ms) {
            if trusted {
                return passed;
            }
            return PrefixDecision::Suspended {
                lift_in: Duration::from_millis(until - now_ms),
                verdict: None,
            };
        }
        self.suspended_until = None;
        self.keep_for_ms = self
            .keep_for_ms
            .max(ms(rule.window))
            .max(ms(rule.trust_for));
        self.forget_older_than(rule.window, now_ms);
        // A trusted number's send is counted but never the one that judges:
        // it must not be refused by the verdict it would bring.
        if !trusted {
            let after = now_ms.checked_sub(ms(rule.window)).max(self.judged_up_to);
            let verdict = self.verdict_counts(rule, now_ms, after);
            if rule.suspends(verdict.judged, verdict.approved)
                && now_ms
                    .checked_sub(ms(rule.judge_after))
                    .map_or(rule.min_sources == 0, |upto| {
                        self.sends.sources_at_least(after, upto, rule.min_sources)
                    })
            {
                // The counts stay (the evidence an operator lists), but are
                // never judged again: the next verdict reads later sends.
                self.suspended_until = Some(now_ms.saturating_add(ms(rule.suspension)));
                self.judged_up_to = Some(now_ms);
                return PrefixDecision::Suspended {
                    lift_in: rule.suspension,
                    verdict: Some(verdict),
                };
            }
        }
        self.sends.push(now_ms, token, sender);
        passed
    }

    /// The counts a verdict at `now_ms` reads: sends after `after`, old
    /// enough to judge. Each chunk of sends keeps its counts, so a busy
    /// prefix's hour of sends costs a read per chunk, a scan of the edges.
    fn verdict_counts(&self, rule: &PrefixRule, now_ms: u64, after: Option<u64>) -> PrefixVerdict {
        let Some(judged_before) = now_ms.checked_sub(ms(rule.judge_after)) else {
            return PrefixVerdict::default();
        };
        let (unapproved, approved) = self.sends.counts(after, judged_before);
        PrefixVerdict {
            judged: unapproved + approved,
            approved,
        }
    }

    fn is_trusted(&self, subject: u64, now_ms: u64) -> bool {
        self.trusted
            .get(&subject)
            .is_some_and(|until| *until > now_ms)
    }

    /// Takes back the send counted with `token`, if it is still here and
    /// unapproved.
    pub fn refund(&mut self, token: u32) {
        self.sends.refund(token);
    }

    /// Counts an approval of the code last sent to `subject` at `now_ms`:
    /// that send moves to the approved ones (if it is still counted here),
    /// and the number is trusted for `rule.trust_for`.
    pub fn count_approval(&mut self, rule: &PrefixRule, now_ms: u64, subject: u64) {
        self.keep_for_ms = self
            .keep_for_ms
            .max(ms(rule.window))
            .max(ms(rule.trust_for));
        // Sends that left the window are forgotten by the next send's
        // decision, which judges only what is inside it (as in Lua).
        if !rule.trust_for.is_zero() {
            self.trust(subject, now_ms.saturating_add(ms(rule.trust_for)), now_ms);
        }
        self.sends
            .approve_latest(subject, now_ms.checked_sub(ms(rule.window)));
    }

    /// Trusts `subject` until `until`, forgetting lapsed trust once the map
    /// has doubled since it was last pruned (amortised, as the Lua twin's
    /// ZREMRANGEBYSCORE per approval).
    fn trust(&mut self, subject: u64, until: u64, now_ms: u64) {
        self.trusted.insert(subject, until);
        if self.trusted.len() > 2 * self.trusted_pruned_len + 16 {
            self.trusted.retain(|_, until| *until > now_ms);
            self.trusted_pruned_len = self.trusted.len();
        }
    }

    /// When the current (or last) suspension lifts, ms on the store's clock.
    pub fn suspended_until(&self) -> Option<u64> {
        self.suspended_until
    }

    /// When the current exemption ends, if one is in force at `now_ms`.
    pub fn exempt_until(&self, now_ms: u64) -> Option<u64> {
        self.exempt_until.filter(|until| *until > now_ms)
    }

    /// Whether the prefix is suspended at `now_ms`.
    pub fn is_suspended(&self, now_ms: u64) -> bool {
        self.suspended_until.is_some_and(|until| until > now_ms)
    }

    /// Every judged send in the window and how many were approved, the
    /// evidence of a suspension included (the admin list).
    pub fn counts(&self, rule: &PrefixRule, now_ms: u64) -> PrefixVerdict {
        self.verdict_counts(rule, now_ms, now_ms.checked_sub(ms(rule.window)))
    }

    /// An operator's lift: the suspension ends, and the sends so far are
    /// never judged again (kept until they leave the window). Returns
    /// whether it was suspended at `now_ms`.
    pub fn lift(&mut self, now_ms: u64) -> bool {
        let was = self.is_suspended(now_ms);
        self.suspended_until = None;
        self.judged_up_to = Some(now_ms);
        was
    }

    /// An operator's exemption until `until` (`None` ends one), lifting any
    /// suspension.
    pub fn exempt(&mut self, until: Option<u64>, now_ms: u64) {
        self.lift(now_ms);
        self.exempt_until = until;
    }

    /// Whether the entry can be dropped: nothing in its window or trust, no
    /// suspension, no exemption.
    pub fn is_idle(&self, now_ms: u64) -> bool {
        let last = self.sends.newest();
        let trust_ends = self.trusted.values().max().copied();
        !self.is_suspended(now_ms)
            && self.exempt_until(now_ms).is_none()
            && last.is_none_or(|at| at.saturating_add(self.keep_for_ms) <= now_ms)
            && trust_ends.is_none_or(|until| until <= now_ms)
    }

    /// Drops sends at or before `now_ms - window` (whole chunks: the
    /// counts read only what is after it, as in Lua, whose buckets go whole).
    fn forget_older_than(&mut self, window: Duration, now_ms: u64) {
        if let Some(cutoff) = now_ms.checked_sub(ms(window)) {
            self.sends.forget(cutoff);
        }
    }
}

#[cfg(test)]
mod tests;
