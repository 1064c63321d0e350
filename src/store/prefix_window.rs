//! The pumping guard's per-prefix counts, as the in-memory store keeps them:
//! the counted sends (unapproved and approved apart, each at the time its
//! number's record logged it), the numbers trusted here, a suspension and
//! an exemption.
//! Twin of `src/store/lua/count_prefix_send.lua` (the decision),
//! `count_prefix_approval.lua` (an approval) and `lift_prefix.lua` (the
//! admin API's lifts and exemptions); a change to one is a change to the
//! other, and the behaviour suite runs both.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    ops::Range,
    time::Duration,
};

use super::{PrefixDecision, PrefixVerdict};
use crate::abuse::PrefixRule;

/// One prefix's counts. Times are milliseconds on the store's clock.
#[derive(Debug, Default)]
pub struct PrefixWindow {
    /// Counted sends whose own code has not been approved, oldest first.
    unapproved: VecDeque<PrefixSend>,
    /// Send times (not approval times) of the counted sends whose own code
    /// was approved, oldest first: judged by when they were sent.
    approved: VecDeque<u64>,
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

/// One counted send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PrefixSend {
    at: u64,
    token: u64,
    source: u64,
    subject: u64,
}

/// Who a send to a prefix is for and from, as 8-byte tags (see
/// [`crate::store::PrefixSender`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderTags {
    /// The number's tag (the first 8 bytes of its keyed subject digest).
    pub subject: u64,
    /// The [`crate::abuse::SendSource`] as a number.
    pub source: u64,
    /// When the number's record logged the send (ms), if it did: the send
    /// is counted at that time, the one its approval names
    /// ([`PrefixWindow::count_approval`]); else at the decision's.
    pub sent_at_ms: Option<u64>,
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
        token: u64,
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
            let (verdict, unapproved) = self.verdict_counts(rule, now_ms, self.judged_up_to);
            if rule.suspends(verdict.judged, verdict.approved)
                && self.sources_at_least(unapproved, rule.min_sources)
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
        // The record's time was read before this prefix's lock (a moment
        // earlier, or on another Cluster master in Lua): kept in order.
        let at = sender.sent_at_ms.unwrap_or(now_ms);
        let place = self.unapproved.partition_point(|send| send.at <= at);
        self.unapproved.insert(
            place,
            PrefixSend {
                at,
                token,
                source: sender.source,
                subject: sender.subject,
            },
        );
        passed
    }

    /// The counts a verdict at `now_ms` reads (sends after `after`, old
    /// enough to judge), and the range of unapproved sends they cover. Sends
    /// are oldest first (`count_prefix_send` reads the clock under the
    /// lock), so the range is found by binary search, as the Lua twin's
    /// ZCOUNT finds it: a busy prefix's hour of sends costs a lookup per send.
    fn verdict_counts(
        &self,
        rule: &PrefixRule,
        now_ms: u64,
        after: Option<u64>,
    ) -> (PrefixVerdict, Range<usize>) {
        let Some(judged_before) = now_ms.checked_sub(ms(rule.judge_after)) else {
            return (PrefixVerdict::default(), 0..0);
        };
        let after = |at: u64| after.is_some_and(|after| at <= after);
        let from = self.unapproved.partition_point(|send| after(send.at));
        let to = self
            .unapproved
            .partition_point(|send| send.at <= judged_before);
        let approved_from = self.approved.partition_point(|at| after(*at));
        let approved_to = self.approved.partition_point(|at| *at <= judged_before);
        let approved = approved_to.saturating_sub(approved_from);
        let unapproved = from.min(to)..to;
        let verdict = PrefixVerdict {
            judged: (unapproved.len() + approved) as u64,
            approved: approved as u64,
        };
        (verdict, unapproved)
    }

    /// Whether the unapproved sends in `judged` came from at least
    /// `min_sources` sources. Stops as soon as it has seen enough; asked only
    /// once the counts alone call for a suspension.
    fn sources_at_least(&self, judged: Range<usize>, min_sources: u32) -> bool {
        let needed = usize::try_from(min_sources).unwrap_or(usize::MAX);
        let mut seen = HashSet::new();
        needed == 0
            || self
                .unapproved
                .range(judged)
                .any(|send| seen.insert(send.source) && seen.len() >= needed)
    }

    fn is_trusted(&self, subject: u64, now_ms: u64) -> bool {
        self.trusted
            .get(&subject)
            .is_some_and(|until| *until > now_ms)
    }

    /// Takes back the send counted with `token`, if it is still here.
    pub fn refund(&mut self, token: u64) {
        if let Some(at) = self.unapproved.iter().rposition(|send| send.token == token) {
            self.unapproved.remove(at);
        }
    }

    /// Counts an approval at `now_ms` of the code sent to `subject` at
    /// `sent_at_ms` (its record's newest send): that send, found among the
    /// sends of that millisecond, moves to the approved ones (if it is still
    /// counted here), and the number is trusted for `rule.trust_for`.
    pub fn count_approval(
        &mut self,
        rule: &PrefixRule,
        now_ms: u64,
        subject: u64,
        sent_at_ms: Option<u64>,
    ) {
        self.keep_for_ms = self
            .keep_for_ms
            .max(ms(rule.window))
            .max(ms(rule.trust_for));
        // Sends that left the window are forgotten by the next send's
        // decision, which judges only what is inside it (as in Lua).
        if !rule.trust_for.is_zero() {
            self.trust(subject, now_ms.saturating_add(ms(rule.trust_for)), now_ms);
        }
        let Some(sent) = sent_at_ms else {
            return;
        };
        let from = self.unapproved.partition_point(|send| send.at < sent);
        let Some(at) = self
            .unapproved
            .range(from..)
            .take_while(|send| send.at == sent)
            .position(|send| send.subject == subject)
        else {
            return;
        };
        if let Some(send) = self.unapproved.remove(from + at) {
            let place = self.approved.partition_point(|sent| *sent <= send.at);
            self.approved.insert(place, send.at);
        }
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
        self.verdict_counts(rule, now_ms, None).0
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
    /// suspension. Returns whether an exemption was in force at `now_ms`;
    /// ending one when none is changes nothing (a suspension stays).
    pub fn exempt(&mut self, until: Option<u64>, now_ms: u64) -> bool {
        let was = self.exempt_until(now_ms).is_some();
        if until.is_some() || was {
            self.lift(now_ms);
            self.exempt_until = until;
        }
        was
    }

    /// Whether the entry can be dropped: nothing in its window or trust, no
    /// suspension, no exemption.
    pub fn is_idle(&self, now_ms: u64) -> bool {
        let last = self
            .unapproved
            .back()
            .map(|send| send.at)
            .max(self.approved.back().copied());
        let trust_ends = self.trusted.values().max().copied();
        !self.is_suspended(now_ms)
            && self.exempt_until(now_ms).is_none()
            && last.is_none_or(|at| at.saturating_add(self.keep_for_ms) <= now_ms)
            && trust_ends.is_none_or(|until| until <= now_ms)
    }

    /// Drops sends at or before `now_ms - window` (the Lua twin's
    /// `ZREMRANGEBYSCORE -inf now-window`, which on a clock younger than the
    /// window removes nothing).
    fn forget_older_than(&mut self, window: Duration, now_ms: u64) {
        let Some(cutoff) = now_ms.checked_sub(ms(window)) else {
            return;
        };
        while self
            .unapproved
            .front()
            .is_some_and(|send| send.at <= cutoff)
        {
            self.unapproved.pop_front();
        }
        while self.approved.front().is_some_and(|at| *at <= cutoff) {
            self.approved.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
