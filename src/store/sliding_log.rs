//! The sliding-log rate limit every store implements: a send is admitted only
//! if, for every rule, fewer than `limit` earlier sends fall in the last
//! `period`. Keeping each send's time (not a counter) is what makes the
//! `RetryInfo` delay exact. `src/store/lua/record_send.lua` is the same
//! algorithm for Redis; the shared behaviour suite keeps the two in step.

use std::{collections::VecDeque, time::Duration};

use super::{SendDecision, Violation};
use crate::abuse::RateRule;

/// Send times (milliseconds on the store's clock) with their tokens, oldest first.
pub type SendTimes = VecDeque<(u64, u64)>;

fn period_ms(rule: &RateRule) -> u64 {
    u64::try_from(rule.period.as_millis()).unwrap_or(u64::MAX)
}

/// When the send that must leave `rule`'s window for one more to fit does so,
/// counted from `now_ms`; `None` when there is room already. `extra` counts a
/// send about to be added at `now_ms`.
fn wait_for_room(times: &SendTimes, rule: &RateRule, now_ms: u64, extra: bool) -> Option<Duration> {
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
        // With `limit` 0 no send can leave to make room: like record_send.lua,
        // count the whole period from now rather than index past the end.
        let leaving = in_window.get(count - limit).copied().unwrap_or(now_ms);
        Duration::from_millis(leaving.saturating_add(period).saturating_sub(now_ms))
    })
}

/// Admits and records a send at `now_ms` under `rules`, or refuses it and
/// records nothing. Forgets sends older than the longest rule's period.
pub fn record(times: &mut SendTimes, rules: &[RateRule], now_ms: u64, token: u64) -> SendDecision {
    let longest = rules.iter().map(period_ms).max().unwrap_or(0);
    while times
        .front()
        .is_some_and(|(at, _)| at.saturating_add(longest) <= now_ms)
    {
        times.pop_front();
    }
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
    times.push_back((now_ms, token));
    SendDecision::Admitted {
        token: token.to_string(),
        next_allowed_in,
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

    #[test]
    fn cooldown_refuses_until_it_has_passed_with_the_exact_delay() {
        let rules = [rule(LimitKind::PhoneCooldown, 1, 30)];
        let mut times = SendTimes::new();
        let first = record(&mut times, &rules, 1_000, 1);
        assert_eq!(
            first,
            SendDecision::Admitted {
                token: "1".into(),
                next_allowed_in: Duration::from_secs(30)
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
