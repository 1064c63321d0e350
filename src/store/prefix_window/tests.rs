use std::time::Duration;

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
        min_sources: 3,
        trust_for: Duration::from_secs(86_400),
    }
}

/// A send to number `subject` asked for by `source`.
fn from(source: u64, subject: u64) -> SenderTags {
    SenderTags { subject, source }
}

fn counted(decision: &PrefixDecision) -> bool {
    matches!(decision, PrefixDecision::Counted { .. })
}

/// Sends to numbers 100.. from the given sources in turn, one a second from
/// `start`; returns the next token.
fn send_from(window: &mut PrefixWindow, sources: &[u64], start: u64) -> u32 {
    for (i, source) in sources.iter().enumerate() {
        let token = start + i as u64;
        let decision = window.count_send(
            &rule(),
            token * SECOND,
            token as u32,
            from(*source, 100 + token),
        );
        assert!(counted(&decision), "send {token}: {decision:?}");
    }
    (start + sources.len() as u64) as u32
}

/// What a full scan of the kept sends counts in (`after`, `upto`].
fn scanned(window: &PrefixWindow, after: Option<u64>, upto: u64) -> (u64, u64) {
    let in_range = |send: &&prefix_sends::PrefixSend| {
        send.at() <= upto && after.is_none_or(|after| send.at() > after)
    };
    let state = |state| {
        window
            .sends
            .iter()
            .filter(in_range)
            .filter(|send| send.state() == state)
            .count() as u64
    };
    (
        state(prefix_sends::SendState::Unapproved),
        state(prefix_sends::SendState::Approved),
    )
}

#[test]
fn the_chunk_counts_count_the_judged_sends_a_full_scan_counts() {
    // Seeded: a failure names a log that can be replayed.
    let mut random = StdRng::seed_from_u64(11);
    let mut judged_somewhere = 0;
    for _ in 0..300 {
        let mut window = PrefixWindow::default();
        let mut at = random.random_range(0..5_000);
        // Up to 600 sends: several chunks of 128.
        let sends = random.random_range(0..600);
        for token in 0..sends {
            // Several sends in one millisecond (a step of 0), as under load.
            at += random.random_range(0..3) * random.random_range(0..400);
            window
                .sends
                .push(at, token, from(u64::from(token % 4), u64::from(token)));
        }
        for _ in 0..random.random_range(0..20) {
            window.refund(random.random_range(0..sends.max(1)));
            let subject = random.random_range(0..u64::from(sends.max(1)));
            window.sends.approve_latest(subject, None);
        }
        for judge_after in [0, 1, 130, 1_000, 100_000] {
            let now_ms = at + random.random_range(0..3_000);
            let Some(upto) = now_ms.checked_sub(judge_after) else {
                continue;
            };
            let after = [None, Some(random.random_range(0..at.max(1)))][random.random_range(0..2)];
            let counted = window.sends.counts(after, upto);
            judged_somewhere += usize::from(counted.0 > 0 && counted.0 < u64::from(sends));
            assert_eq!(
                counted,
                scanned(&window, after, upto),
                "now {now_ms} {judge_after} {after:?}"
            );
        }
    }
    assert!(judged_somewhere > 100, "the cases must split the log");
}

#[test]
fn a_refund_takes_back_only_its_own_send() {
    let mut window = PrefixWindow::default();
    for token in 0..5 {
        window.count_send(&rule(), 7 * SECOND, token, from(1, u64::from(token)));
    }
    window.refund(2);
    window.refund(2);
    window.refund(99);
    let kept: Vec<u32> = window
        .sends
        .iter()
        .filter(|send| send.state() == prefix_sends::SendState::Unapproved)
        .map(prefix_sends::PrefixSend::token)
        .collect();
    assert_eq!(kept, [0, 1, 3, 4]);
    window.count_approval(&rule(), 8 * SECOND, 2);
    assert_eq!(
        window.counts(&rule(), 200 * SECOND),
        PrefixVerdict {
            judged: 4,
            approved: 0
        },
        "its number's latest send is the refunded one: an approval approves nothing"
    );
}

#[test]
fn unapproved_sends_from_enough_sources_suspend_once_old_enough_to_judge() {
    let mut window = PrefixWindow::default();
    let next = send_from(&mut window, &[1, 2, 3], 0);
    // Their codes are still valid: not judged yet, so more are counted.
    assert!(counted(&window.count_send(
        &rule(),
        100 * SECOND,
        next,
        from(1, 1)
    )));
    let at = 140 * SECOND;
    let decision = window.count_send(&rule(), at, 9, from(1, 2));
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
        window.count_send(&rule(), at + 100 * SECOND, 10, from(4, 3)),
        PrefixDecision::Suspended {
            lift_in: Duration::from_secs(500),
            verdict: None
        },
        "exact time to lift, and only the first refusal carries the verdict"
    );
    assert_eq!(
        window.counts(&rule(), at).judged,
        3,
        "a suspension keeps the counts (the operator's evidence)"
    );
    let lifted = at + 600 * SECOND;
    assert!(
        counted(&window.count_send(&rule(), lifted, 11, from(4, 4))),
        "lifts on time, and the sends it was decided on are not judged again"
    );
}

#[test]
fn one_source_and_the_anonymous_one_cannot_suspend_a_prefix() {
    let mut window = PrefixWindow::default();
    // 20 from one client_key, 20 anonymous: two sources, nobody verifies.
    let sources: Vec<u64> = (0..40).map(|i| if i % 2 == 0 { 7 } else { 0 }).collect();
    send_from(&mut window, &sources, 0);
    let decision = window.count_send(&rule(), 500 * SECOND, 99, from(7, 999));
    assert!(
        counted(&decision),
        "two sources are not enough: {decision:?}"
    );
    assert_eq!(window.counts(&rule(), 500 * SECOND).judged, 40);
    // A third source's unverified sends complete the verdict.
    send_from(&mut window, &[5], 600);
    let decision = window.count_send(&rule(), 800 * SECOND, 100, from(7, 998));
    assert!(matches!(
        decision,
        PrefixDecision::Suspended {
            verdict: Some(_),
            ..
        }
    ));
}

#[test]
fn only_a_sends_own_approval_counts_so_one_approving_number_keeps_nothing_open() {
    let mut window = PrefixWindow::default();
    send_from(&mut window, &[1, 2, 3, 1, 2, 3, 1, 2, 3, 1], 0);
    // The pumper owns number 100 and approves its code ten times over:
    // only its one send is approved.
    for _ in 0..10 {
        window.count_approval(&rule(), 50 * SECOND, 100);
    }
    assert_eq!(
        window.counts(&rule(), 200 * SECOND),
        PrefixVerdict {
            judged: 10,
            approved: 1
        }
    );
    let decision = window.count_send(&rule(), 200 * SECOND, 50, from(1, 555));
    assert!(
        matches!(
            decision,
            PrefixDecision::Suspended {
                verdict: Some(_),
                ..
            }
        ),
        "1 of 10 approved is below 20 %: {decision:?}"
    );
}

#[test]
fn approvals_of_their_own_sends_keep_a_prefix_open() {
    let mut window = PrefixWindow::default();
    send_from(&mut window, &[1, 2, 3, 1, 2, 3, 1, 2, 3, 1], 0);
    window.count_approval(&rule(), 50 * SECOND, 101);
    window.count_approval(&rule(), 60 * SECOND, 102);
    assert!(
        counted(&window.count_send(&rule(), 200 * SECOND, 10, from(1, 120))),
        "2 of 10 approved is not below 20 %"
    );
    window.refund(10);
    assert_eq!(
        window.counts(&rule(), 300 * SECOND).judged,
        10,
        "the refunded send is gone"
    );
}

#[test]
fn a_number_that_approved_passes_a_suspended_prefix_and_others_do_not() {
    let mut window = PrefixWindow::default();
    // Number 42 verified a code earlier.
    window.count_send(&rule(), 0, 0, from(9, 42));
    window.count_approval(&rule(), SECOND, 42);
    send_from(
        &mut window,
        &[1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3],
        1,
    );
    let at = 400 * SECOND;
    assert!(matches!(
        window.count_send(&rule(), at, 90, from(1, 77)),
        PrefixDecision::Suspended {
            verdict: Some(_),
            ..
        }
    ));
    assert!(
        counted(&window.count_send(&rule(), at + SECOND, 91, from(8, 42))),
        "the trusted number is never collateral"
    );
    assert!(!counted(&window.count_send(
        &rule(),
        at + SECOND,
        92,
        from(8, 43)
    )));
    let later = SECOND + 86_400 * SECOND;
    assert!(
        !window.is_trusted(42, later),
        "trust lapses after trust_for"
    );
}

#[test]
fn an_operator_lifts_and_exempts() {
    let mut window = PrefixWindow::default();
    send_from(&mut window, &[1, 2, 3], 0);
    let at = 200 * SECOND;
    assert!(!counted(&window.count_send(&rule(), at, 10, from(1, 5))));
    assert!(window.lift(at), "it was suspended");
    assert!(!window.lift(at), "and is no more");
    let later = at + 200 * SECOND;
    assert!(
        counted(&window.count_send(&rule(), later, 11, from(2, 6))),
        "the sends before the lift are never judged again"
    );
    assert_eq!(window.counts(&rule(), later).judged, 3, "but are kept");
    window.exempt(Some(later + 60 * SECOND), later);
    for token in 12..20 {
        let decision = window.count_send(
            &rule(),
            later + 10 * SECOND,
            token,
            from(u64::from(token), u64::from(token)),
        );
        assert!(counted(&decision));
    }
    assert_eq!(
        window.counts(&rule(), later + 500 * SECOND).judged,
        4,
        "exempt sends go uncounted"
    );
    assert_eq!(window.exempt_until(later), Some(later + 60 * SECOND));
    assert!(!window.is_idle(later + 59 * SECOND));
    window.exempt(None, later + SECOND);
    assert_eq!(
        window.exempt_until(later + SECOND),
        None,
        "an exemption ended early"
    );
}

#[test]
fn old_counts_leave_the_window_and_idle_entries_can_go() {
    let rule = PrefixRule {
        trust_for: Duration::ZERO,
        ..rule()
    };
    let mut window = PrefixWindow::default();
    for token in 0..3 {
        window.count_send(&rule, token * SECOND, token as u32, from(token, token));
    }
    let later = 3 * SECOND + 3600 * SECOND;
    assert!(counted(&window.count_send(&rule, later, 9, from(1, 9))));
    assert_eq!(
        window.sends.iter().count(),
        1,
        "the first three left the window (their chunk, whole)"
    );
    window.count_approval(&rule, later, 2);
    assert_eq!(
        window.counts(&rule, later + 200 * SECOND),
        PrefixVerdict {
            judged: 1,
            approved: 0
        },
        "they left the window: not counted, their numbers' sends not approved"
    );
    assert!(!window.is_idle(later));
    assert!(window.is_idle(later + 3600 * SECOND));
}

/// 300 sends to numbers 1000.. from three sources, one every 10 ms from
/// `start` (three chunks of 128); returns the next token.
fn many_sends(window: &mut PrefixWindow, start: u64) -> u32 {
    for i in 0..300u32 {
        let at = start + u64::from(i) * 10;
        let decision =
            window.count_send(&rule(), at, i, from(u64::from(i % 3), 1000 + u64::from(i)));
        assert!(counted(&decision), "send {i}: {decision:?}");
    }
    300
}

#[test]
fn a_send_exactly_judge_after_old_is_judged_and_one_ms_younger_is_not() {
    let mut window = PrefixWindow::default();
    window.count_send(&rule(), 5 * SECOND, 0, from(1, 1));
    let judge_after = 130 * SECOND;
    let at = |now| window.counts(&rule(), now).judged;
    assert_eq!(at(5 * SECOND + judge_after - 1), 0);
    assert_eq!(at(5 * SECOND + judge_after), 1);
}

#[test]
fn a_refund_and_an_approval_reach_a_send_in_an_old_chunk() {
    let mut window = PrefixWindow::default();
    let next = many_sends(&mut window, 0);
    // Send 5 (to number 1005) and send 7 are in the first chunk.
    window.refund(5);
    window.count_approval(&rule(), 4 * SECOND, 1007);
    let later = 3 * SECOND + 130 * SECOND;
    assert_eq!(
        window.counts(&rule(), later),
        PrefixVerdict {
            judged: 299,
            approved: 1
        }
    );
    window.refund(5);
    window.refund(7);
    assert_eq!(
        window.counts(&rule(), later).judged,
        299,
        "taken back once; an approved send is not taken back"
    );
    assert_eq!(next, 300);
}

#[test]
fn a_suspension_inside_a_chunk_judges_only_the_sends_after_it() {
    let rule = PrefixRule {
        min_sends: 100,
        ..rule()
    };
    let mut window = PrefixWindow::default();
    // Sends at 0, 10, ..., 2 990 ms, then the lift at 1 505 ms: inside the
    // second chunk (sends 128..255).
    for i in 0..300u32 {
        let at = u64::from(i) * 10;
        if at == 1_510 {
            assert!(
                !window.lift(1_505),
                "not suspended, but marks the sends so far"
            );
        }
        window.count_send(&rule, at, i, from(u64::from(i % 3), 1000 + u64::from(i)));
    }
    let now = 3 * SECOND + 130 * SECOND;
    assert_eq!(
        window.verdict_counts(&rule, now, window.judged_up_to),
        PrefixVerdict {
            judged: 149,
            approved: 0
        },
        "sends at 1 510 .. 2 990 ms"
    );
    assert_eq!(
        window.counts(&rule, now).judged,
        300,
        "all kept as evidence"
    );
    assert!(matches!(
        window.count_send(&rule, now, 400, from(1, 1)),
        PrefixDecision::Suspended {
            verdict: Some(PrefixVerdict {
                judged: 149,
                approved: 0
            }),
            ..
        }
    ));
}
