//! The pumping guard's per-prefix counts, as the in-memory store keeps them:
//! send times and approval times in a sliding window, and a suspension.
//! Twin of `src/store/lua/count_prefix_send.lua` (the decision) and
//! `count_prefix_approval.lua` (an approval); a change to one is a change to
//! the other, and the behaviour suite runs both.

use std::{collections::VecDeque, time::Duration};

use super::{
    PrefixDecision, PrefixVerdict,
    sliding_log::{self, SendTimes},
};
use crate::abuse::PrefixRule;

/// One prefix's counts. Times are milliseconds on the store's clock.
#[derive(Debug, Default)]
pub struct PrefixWindow {
    /// Counted sends, oldest first, with their tokens.
    sends: SendTimes,
    /// Approval times, oldest first.
    approvals: VecDeque<u64>,
    /// When the current suspension lifts, if any.
    suspended_until: Option<u64>,
    /// The longest window this prefix was counted with: after that, and
    /// once any suspension has lifted, the entry holds nothing useful.
    keep_for_ms: u64,
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl PrefixWindow {
    /// The decision for one send at `now_ms` (see [`super::OtpStore::count_prefix_send`]).
    pub fn count_send(&mut self, rule: &PrefixRule, now_ms: u64, token: u64) -> PrefixDecision {
        if let Some(until) = self.suspended_until.filter(|until| *until > now_ms) {
            return PrefixDecision::Suspended {
                lift_in: Duration::from_millis(until - now_ms),
                verdict: None,
            };
        }
        self.suspended_until = None;
        self.keep_for_ms = self.keep_for_ms.max(ms(rule.window));
        self.forget_older_than(rule.window, now_ms);
        let verdict = PrefixVerdict {
            judged: self.judged(rule, now_ms),
            approved: self.approvals.len() as u64,
        };
        if rule.suspends(verdict.judged, verdict.approved) {
            self.sends.clear();
            self.approvals.clear();
            self.suspended_until = Some(now_ms.saturating_add(ms(rule.suspension)));
            return PrefixDecision::Suspended {
                lift_in: rule.suspension,
                verdict: Some(verdict),
            };
        }
        self.sends.push_back((now_ms, token));
        PrefixDecision::Counted {
            token: token.to_string(),
        }
    }

    /// Sends at `now_ms` old enough to judge (sent at or before `now_ms -
    /// judge_after`). Sends are oldest first (`count_prefix_send` reads the
    /// clock under the lock), so they are a prefix found by binary search, as
    /// the Lua twin's ZCOUNT finds them: a busy prefix's hour of sends costs a
    /// lookup per send, not a pass over all of them.
    fn judged(&self, rule: &PrefixRule, now_ms: u64) -> u64 {
        now_ms
            .checked_sub(ms(rule.judge_after))
            .map_or(0, |judged_before| {
                self.sends.partition_point(|(at, _)| *at <= judged_before) as u64
            })
    }

    /// Takes back the send counted with `token`, if it is still here.
    pub fn refund(&mut self, token: u64) {
        sliding_log::refund(&mut self.sends, token);
    }

    /// Counts an approval at `now_ms`, kept for `window`.
    pub fn count_approval(&mut self, window: Duration, now_ms: u64) {
        self.keep_for_ms = self.keep_for_ms.max(ms(window));
        self.forget_older_than(window, now_ms);
        self.approvals.push_back(now_ms);
    }

    /// When the current (or last) suspension lifts, ms on the store's clock.
    pub fn suspended_until(&self) -> Option<u64> {
        self.suspended_until
    }

    /// Whether the prefix is suspended at `now_ms`.
    pub fn is_suspended(&self, now_ms: u64) -> bool {
        self.suspended_until.is_some_and(|until| until > now_ms)
    }

    /// Whether the entry can be dropped: nothing in its window, no suspension.
    pub fn is_idle(&self, now_ms: u64) -> bool {
        let last = self
            .sends
            .back()
            .map(|(at, _)| *at)
            .max(self.approvals.back().copied());
        !self.is_suspended(now_ms)
            && last.is_none_or(|at| at.saturating_add(self.keep_for_ms) <= now_ms)
    }

    /// Drops sends and approvals at or before `now_ms - window` (the Lua
    /// twin's `ZREMRANGEBYSCORE -inf now-window`, which on a clock younger
    /// than the window removes nothing).
    fn forget_older_than(&mut self, window: Duration, now_ms: u64) {
        let Some(cutoff) = now_ms.checked_sub(ms(window)) else {
            return;
        };
        while self.sends.front().is_some_and(|(at, _)| *at <= cutoff) {
            self.sends.pop_front();
        }
        while self.approvals.front().is_some_and(|at| *at <= cutoff) {
            self.approvals.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    const SECOND: u64 = 1_000;

    fn rule() -> PrefixRule {
        PrefixRule {
            window: Duration::from_secs(3600),
            judge_after: Duration::from_secs(130),
            min_sends: 3,
            min_approved_percent: 20,
            suspension: Duration::from_secs(600),
        }
    }

    fn counted(decision: &PrefixDecision) -> bool {
        matches!(decision, PrefixDecision::Counted { .. })
    }

    #[test]
    fn the_search_counts_the_judged_sends_a_full_scan_counts() {
        // Seeded: a failure names a log that can be replayed.
        let mut random = StdRng::seed_from_u64(11);
        let mut judged_somewhere = 0;
        for _ in 0..300 {
            let mut window = PrefixWindow::default();
            let mut at = random.random_range(0..5_000);
            for token in 0..random.random_range(0..60) {
                // Several sends in one millisecond (a step of 0), as under load.
                at += random.random_range(0..3) * random.random_range(0..400);
                window.sends.push_back((at, token));
            }
            for _ in 0..random.random_range(0..5) {
                window.refund(random.random_range(0..60));
            }
            for judge_after in [0, 1, 130, 1_000, 100_000] {
                let rule = PrefixRule {
                    judge_after: Duration::from_millis(judge_after),
                    ..rule()
                };
                let now_ms = at + random.random_range(0..3_000);
                let scanned = now_ms.checked_sub(judge_after).map_or(0, |before| {
                    window.sends.iter().filter(|(at, _)| *at <= before).count() as u64
                });
                let judged = window.judged(&rule, now_ms);
                judged_somewhere += usize::from(judged > 0 && judged < window.sends.len() as u64);
                assert_eq!(
                    judged, scanned,
                    "{:?} now {now_ms} {judge_after}",
                    window.sends
                );
            }
        }
        assert!(judged_somewhere > 100, "the cases must split the log");
    }

    #[test]
    fn a_refund_takes_back_only_its_own_send() {
        let mut window = PrefixWindow::default();
        for token in 0..5 {
            window.count_send(&rule(), 7 * SECOND, token);
        }
        window.refund(2);
        window.refund(2);
        window.refund(99);
        let tokens: Vec<u64> = window.sends.iter().map(|(_, token)| *token).collect();
        assert_eq!(tokens, [0, 1, 3, 4]);
    }

    #[test]
    fn unapproved_sends_suspend_once_old_enough_to_judge() {
        let mut window = PrefixWindow::default();
        for token in 0..3 {
            assert!(counted(&window.count_send(&rule(), token * SECOND, token)));
        }
        // Their codes are still valid: not judged yet, so more are counted.
        assert!(counted(&window.count_send(&rule(), 100 * SECOND, 3)));
        let at = 140 * SECOND;
        let decision = window.count_send(&rule(), at, 4);
        assert_eq!(
            decision,
            PrefixDecision::Suspended {
                lift_in: Duration::from_secs(600),
                verdict: Some(PrefixVerdict {
                    judged: 3,
                    approved: 0
                }),
            }
        );
        assert_eq!(
            window.count_send(&rule(), at + 100 * SECOND, 5),
            PrefixDecision::Suspended {
                lift_in: Duration::from_secs(500),
                verdict: None
            },
            "exact time to lift, and only the first refusal carries the verdict"
        );
        assert!(
            counted(&window.count_send(&rule(), at + 600 * SECOND, 6)),
            "lifts on time, with the counts started afresh"
        );
    }

    #[test]
    fn approvals_keep_a_prefix_open() {
        let mut window = PrefixWindow::default();
        for token in 0..10 {
            assert!(counted(&window.count_send(&rule(), token * SECOND, token)));
        }
        window.count_approval(rule().window, 50 * SECOND);
        window.count_approval(rule().window, 60 * SECOND);
        assert!(
            counted(&window.count_send(&rule(), 200 * SECOND, 10)),
            "2 of 10 approved is not below 20 %"
        );
        window.refund(10);
        assert_eq!(window.sends.len(), 10, "the refunded send is gone");
    }

    #[test]
    fn old_counts_leave_the_window_and_idle_entries_can_go() {
        let mut window = PrefixWindow::default();
        for token in 0..3 {
            window.count_send(&rule(), token * SECOND, token);
        }
        let later = 3 * SECOND + 3600 * SECOND;
        assert!(counted(&window.count_send(&rule(), later, 9)));
        assert_eq!(window.sends.len(), 1, "the first three left the window");
        assert!(!window.is_idle(later));
        assert!(window.is_idle(later + 3600 * SECOND));
    }
}
