//! The sliding-log rate limit every store implements: a send is admitted only
//! if, for every rule, fewer than `limit` earlier sends fall in the last
//! `period`. Keeping each send's time (not a counter) is what makes the
//! `RetryInfo` delay exact. `src/store/lua/record_send.lua` (sorted sets) and
//! `record_packed_send.lua` (a number's or a client's packed log) are the
//! same algorithm for Redis; the shared behaviour suite keeps the two in step.
//! The memory store keeps its logs two ways ([`SendTimes`] for the shared
//! logs, a packed log per number and per client): both are [`LoggedSends`].

use std::{collections::VecDeque, time::Duration};

use super::{SendDecision, Violation};
use crate::abuse::RateRule;

/// Send times (milliseconds on the store's clock) with their tokens, oldest first.
pub type SendTimes = VecDeque<(u64, u64)>;

/// A log of sends, oldest first, as the sliding log reads and writes it.
pub trait LoggedSends {
    /// Sends logged.
    fn count(&self) -> usize;
    /// When the send at `index` (oldest first) was made: ms on the store's clock.
    fn sent_at(&self, index: usize) -> u64;
    /// Forgets the `count` oldest sends.
    fn forget_oldest(&mut self, count: usize);
    /// Logs a send at `at_ms` (never earlier than the newest logged), made
    /// with the store's unique `token`; returns what refunds it.
    fn log(&mut self, at_ms: u64, token: u64) -> String;
}

impl LoggedSends for SendTimes {
    fn count(&self) -> usize {
        self.len()
    }

    fn sent_at(&self, index: usize) -> u64 {
        self.get(index).map_or(u64::MAX, |(at, _)| *at)
    }

    fn forget_oldest(&mut self, count: usize) {
        self.drain(..count.min(self.len()));
    }

    fn log(&mut self, at_ms: u64, token: u64) -> String {
        self.push_back((at_ms, token));
        token.to_string()
    }
}

fn period_ms(rule: &RateRule) -> u64 {
    u64::try_from(rule.period.as_millis()).unwrap_or(u64::MAX)
}

/// The longest period of `rules`, in ms: sends older than that count for none.
pub fn longest_period_ms(rules: &[RateRule]) -> u64 {
    rules.iter().map(period_ms).max().unwrap_or(0)
}

/// How many of the oldest sends were made more than `period` ms before
/// `now_ms`. Sends are oldest first (each log's clock is read under its lock
/// from a monotonic clock), so this is a binary search, as
/// `record_send.lua` finds them with `ZCOUNT`: a busy log (a caller's or the
/// global cap, up to its limit in entries) costs a lookup per send, not a
/// pass and a copy of the whole log.
fn older_than(times: &impl LoggedSends, period: u64, now_ms: u64) -> usize {
    let (mut low, mut high) = (0, times.count());
    while low < high {
        let middle = low + (high - low) / 2;
        if times.sent_at(middle).saturating_add(period) <= now_ms {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// When the send that must leave `rule`'s window for one more to fit does so,
/// counted from `now_ms`; `None` when there is room already. `extra` counts a
/// send about to be added at `now_ms`.
fn wait_for_room(
    times: &impl LoggedSends,
    rule: &RateRule,
    now_ms: u64,
    extra: bool,
) -> Option<Duration> {
    let period = period_ms(rule);
    let first_in_window = older_than(times, period, now_ms);
    let existing = times.count() - first_in_window;
    let extra_in_window = extra && now_ms.saturating_add(period) > now_ms;
    let count = existing + usize::from(extra_in_window);
    let limit = usize::try_from(rule.limit).unwrap_or(usize::MAX);
    (count >= limit).then(|| {
        // The send at index `count - limit` of the window leaves first to make
        // room; past the logged ones it is the extra send at `now_ms`. With
        // `limit` 0 no send can leave: like record_send.lua, count the whole
        // period from now rather than index past the end.
        let leaving_index = first_in_window + (count - limit);
        let leaving = if leaving_index < times.count() {
            times.sent_at(leaving_index)
        } else {
            now_ms
        };
        Duration::from_millis(leaving.saturating_add(period).saturating_sub(now_ms))
    })
}

/// Admits and records a send at `now_ms` under `rules`, or refuses it and
/// records nothing. Forgets sends older than the longest rule's period.
pub fn record(
    times: &mut impl LoggedSends,
    rules: &[RateRule],
    now_ms: u64,
    token: u64,
) -> SendDecision {
    let stale = older_than(times, longest_period_ms(rules), now_ms);
    times.forget_oldest(stale);
    let violations: Vec<Violation> = rules
        .iter()
        .filter_map(|rule| {
            wait_for_room(times, rule, now_ms, false).map(|retry_after| Violation {
                kind: rule.kind,
                retry_after,
            })
        })
        .collect();
    if !violations.is_empty() {
        return SendDecision::Refused { violations };
    }
    let next_allowed_in = rules
        .iter()
        .filter_map(|rule| wait_for_room(times, rule, now_ms, true))
        .max()
        .unwrap_or(Duration::ZERO);
    SendDecision::Admitted {
        token: times.log(now_ms, token),
        next_allowed_in,
        sent_at_ms: Some(now_ms),
    }
}

/// Takes back the send recorded with `token`, if it is still logged. Tokens
/// are unique, and a refund follows its send closely (the message was not
/// accepted): look from the newest end, not through a busy log's every send.
pub fn refund(times: &mut SendTimes, token: u64) {
    if let Some(at) = times.iter().rposition(|(_, logged)| *logged == token) {
        times.remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abuse::LimitKind;

    fn rule(kind: LimitKind, limit: u32, secs: u64) -> RateRule {
        RateRule {
            kind,
            limit,
            period: Duration::from_secs(secs),
        }
    }

    /// The window counted the long way (what `wait_for_room` did before it
    /// searched): every logged send, and the extra one, filtered by time.
    fn wait_by_scan(
        times: &SendTimes,
        rule: &RateRule,
        now_ms: u64,
        extra: bool,
    ) -> Option<Duration> {
        let period = period_ms(rule);
        let in_window: Vec<u64> = times
            .iter()
            .map(|(at, _)| *at)
            .chain(extra.then_some(now_ms))
            .filter(|at| at.saturating_add(period) > now_ms)
            .collect();
        let limit = usize::try_from(rule.limit).unwrap_or(usize::MAX);
        let count = in_window.len();
        (count >= limit).then(|| {
            let leaving = in_window.get(count - limit).copied().unwrap_or(now_ms);
            Duration::from_millis(leaving.saturating_add(period).saturating_sub(now_ms))
        })
    }

    #[test]
    fn the_search_agrees_with_a_full_scan() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed >> 33
        };
        let mut refusals = 0;
        for _ in 0..300 {
            let mut times = SendTimes::new();
            let mut at = next() % 5_000;
            for token in 0..next() % 40 {
                at += next() % 1_000;
                times.push_back((at, token));
            }
            let now_ms = at + next() % 4_000;
            for limit in [0, 1, 2, 5, 20] {
                for secs in [0, 1, 3, 10] {
                    let rule = rule(LimitKind::Global, limit, secs);
                    for extra in [false, true] {
                        let searched = wait_for_room(&times, &rule, now_ms, extra);
                        refusals += usize::from(searched.is_some());
                        assert_eq!(
                            searched,
                            wait_by_scan(&times, &rule, now_ms, extra),
                            "{times:?} {rule:?} now {now_ms} extra {extra}"
                        );
                    }
                }
            }
        }
        assert!(refusals > 1_000, "the cases must include full windows");
    }

    #[test]
    fn a_refund_takes_back_only_its_own_send() {
        let rules = [rule(LimitKind::PhoneWindow, 10, 100)];
        let mut times = SendTimes::new();
        for token in 0..5 {
            record(&mut times, &rules, 1_000, token);
        }
        refund(&mut times, 2);
        refund(&mut times, 2);
        refund(&mut times, 99);
        let tokens: Vec<u64> = times.iter().map(|(_, token)| *token).collect();
        assert_eq!(tokens, [0, 1, 3, 4]);
    }

    #[test]
    fn cooldown_refuses_until_it_has_passed_with_the_exact_delay() {
        let rules = [rule(LimitKind::PhoneCooldown, 1, 30)];
        let mut times = SendTimes::new();
        let first = record(&mut times, &rules, 1_000, 1);
        assert_eq!(
            first,
            SendDecision::Admitted {
                token: "1".into(),
                next_allowed_in: Duration::from_secs(30),
                sent_at_ms: Some(1_000),
            }
        );
        let refused = record(&mut times, &rules, 11_500, 2);
        assert_eq!(
            refused,
            SendDecision::Refused {
                violations: vec![Violation {
                    kind: LimitKind::PhoneCooldown,
                    retry_after: Duration::from_millis(19_500)
                }]
            }
        );
        assert!(matches!(
            record(&mut times, &rules, 31_000, 3),
            SendDecision::Admitted { .. }
        ));
    }

    #[test]
    fn window_cap_counts_sends_and_reports_when_the_oldest_leaves() {
        let rules = [rule(LimitKind::PhoneWindow, 3, 100)];
        let mut times = SendTimes::new();
        for (i, at) in [0u64, 10_000, 20_000].into_iter().enumerate() {
            let decision = record(&mut times, &rules, at, i as u64);
            assert!(
                matches!(decision, SendDecision::Admitted { .. }),
                "{decision:?}"
            );
        }
        let SendDecision::Refused { violations } = record(&mut times, &rules, 50_000, 9) else {
            panic!("fourth send in the window must be refused");
        };
        assert_eq!(violations[0].retry_after, Duration::from_secs(50));
        assert!(matches!(
            record(&mut times, &rules, 100_001, 10),
            SendDecision::Admitted { .. }
        ));
    }

    #[test]
    fn refusal_records_nothing_and_every_violated_rule_is_named() {
        let rules = [
            rule(LimitKind::PhoneCooldown, 1, 30),
            rule(LimitKind::PhoneWindow, 1, 600),
        ];
        let mut times = SendTimes::new();
        record(&mut times, &rules, 0, 1);
        let SendDecision::Refused { violations } = record(&mut times, &rules, 1_000, 2) else {
            panic!("refused");
        };
        let kinds: Vec<_> = violations.iter().map(|v| v.kind).collect();
        assert_eq!(kinds, [LimitKind::PhoneCooldown, LimitKind::PhoneWindow]);
        assert_eq!(times.len(), 1);
    }

    #[test]
    fn zero_limit_refuses_for_the_whole_period_without_panicking() {
        let rules = [rule(LimitKind::Global, 0, 60)];
        let mut times = SendTimes::new();
        let SendDecision::Refused { violations } = record(&mut times, &rules, 5_000, 1) else {
            panic!("refused");
        };
        assert_eq!(violations[0].retry_after, Duration::from_secs(60));
        assert!(times.is_empty());
    }

    #[test]
    fn next_allowed_in_accounts_for_the_send_just_made() {
        let rules = [rule(LimitKind::PhoneWindow, 2, 100)];
        let mut times = SendTimes::new();
        let SendDecision::Admitted {
            next_allowed_in, ..
        } = record(&mut times, &rules, 0, 1)
        else {
            panic!("admitted");
        };
        assert_eq!(next_allowed_in, Duration::ZERO, "room for one more");
        let SendDecision::Admitted {
            next_allowed_in, ..
        } = record(&mut times, &rules, 40_000, 2)
        else {
            panic!("admitted");
        };
        assert_eq!(
            next_allowed_in,
            Duration::from_secs(60),
            "full until the first leaves"
        );
    }
}
