//! The pumping guard's counts per destination prefix: judged only once old
//! enough, the approved share (per send), sources, trusted numbers,
//! refunds, the suspension, its lift and an operator's hand on it
//! (`count_prefix_send.lua`, `count_prefix_approval.lua`,
//! `suspended_prefixes.lua`, `lift_prefix.lua`, `prefix_counts.lua`,
//! `prefix_list.lua` and `prefix_window.rs`).

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use otp_service::{
    abuse::{DestinationPrefix, LimitKind, PrefixRule, RateRule, SendSource},
    domain::SubjectKey,
    store::{PrefixDecision, PrefixSender, PrefixVerdict, SendDecision, SendLog},
};
use tokio::time::Instant;

use super::{new_subject, prefix};
use crate::common::{StoreKind, TestStore, wait_for};

/// A send is judged 1 s after it was made (at least 1 s: these cases run on
/// the shared Cluster and Sentinel too); three judged sends make a verdict;
/// under half approved suspends for 1 s.
const RULE: PrefixRule = PrefixRule {
    window: Duration::from_secs(60),
    judge_after: Duration::from_secs(1),
    min_sends: 3,
    min_approved_percent: 50,
    suspension: Duration::from_secs(1),
    min_sources: 3,
    trust_for: Duration::from_secs(600),
};

/// Longer than [`RULE`]'s `judge_after`: spaces sends from their verdict
/// (time passing on the store's clock, not a wait for an effect).
const JUDGED: Duration = Duration::from_millis(1_200);

/// The `n`th of three sources: sends numbered in turn always come from
/// enough of them, for the cases that are not about sources.
fn source(n: usize) -> SendSource {
    SendSource([(n % 3) as u8 + 1; 8])
}

/// A send to a number nobody else texts, from the first source.
async fn count(store: &TestStore, prefix: &DestinationPrefix) -> PrefixDecision {
    count_to(store, prefix, &new_subject(), source(0)).await
}

/// When each number's record last logged a send (its subject tag -> ms),
/// as the record keeps it for `verify_and_consume` to reply with.
static LOGGED_AT: LazyLock<Mutex<HashMap<[u8; 8], u64>>> = LazyLock::new(Mutex::default);

/// Logs a send in `subject`'s own record, as a SendOtp does first; returns
/// the record's time for it (what the guard counts the send at).
async fn log_send(store: &TestStore, subject: &SubjectKey) -> Option<u64> {
    let roomy = RateRule {
        kind: LimitKind::PhoneDaily,
        limit: 1_000,
        period: Duration::from_secs(3_600),
    };
    let decision = store
        .record_send(&SendLog::Phone(*subject), &[roomy])
        .await
        .expect("record_send answers");
    let SendDecision::Admitted { sent_at_ms, .. } = decision else {
        panic!("admitted: {decision:?}");
    };
    if let Some(at) = sent_at_ms {
        LOGGED_AT
            .lock()
            .expect("not poisoned")
            .insert(subject.tag(), at);
    }
    sent_at_ms
}

/// A send to `subject` from `source`, logged in its record first.
async fn count_to(
    store: &TestStore,
    prefix: &DestinationPrefix,
    subject: &SubjectKey,
    source: SendSource,
) -> PrefixDecision {
    let sent_at_ms = log_send(store, subject).await;
    let sender = PrefixSender {
        subject,
        source,
        sent_at_ms,
    };
    store
        .count_prefix_send(prefix, &RULE, sender)
        .await
        .expect("count_prefix_send answers")
}

/// Counts `n` sends to new numbers from the three sources in turn, each of
/// which must be admitted; returns their tokens and numbers.
async fn counted(
    store: &TestStore,
    prefix: &DestinationPrefix,
    n: usize,
) -> Vec<(String, SubjectKey)> {
    let mut sends = Vec::new();
    for n in 0..n {
        let subject = new_subject();
        match count_to(store, prefix, &subject, source(n)).await {
            PrefixDecision::Counted { token } => sends.push((token, subject)),
            other => panic!("expected the send to be counted, got {other:?}"),
        }
    }
    sends
}

/// `subject` approves the code last sent to it (named by the time its
/// record logged that send, as `verify_and_consume` replies).
async fn approve(store: &TestStore, prefix: &DestinationPrefix, subject: &SubjectKey) {
    let sent_at_ms = LOGGED_AT
        .lock()
        .expect("not poisoned")
        .get(&subject.tag())
        .copied();
    store
        .count_prefix_approval(prefix, subject, &RULE, sent_at_ms)
        .await
        .expect("count_prefix_approval answers");
}

async fn unapproved_sends_suspend_once_judged_and_the_refusal_says_until_when(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let pumped = prefix("+1 628 200 0001");
    let first = Instant::now();
    counted(&store, &pumped, 4).await;
    let decision = count(&store, &pumped).await;
    let spent = first.elapsed();
    assert!(
        spent < RULE.judge_after,
        "stalled {spent:?}: sends may be judged already"
    );
    assert!(
        matches!(decision, PrefixDecision::Counted { .. }),
        "no send is old enough to judge yet"
    );
    tokio::time::sleep(JUDGED).await;
    let PrefixDecision::Suspended { lift_in, verdict } = count(&store, &pumped).await else {
        panic!("five judged sends, none approved: suspended");
    };
    assert_eq!(lift_in, RULE.suspension, "the whole suspension is ahead");
    assert_eq!(
        verdict,
        Some(PrefixVerdict {
            judged: 5,
            approved: 0
        })
    );
    let PrefixDecision::Suspended { lift_in, verdict } = count(&store, &pumped).await else {
        panic!("still suspended");
    };
    assert!(
        lift_in <= RULE.suspension && lift_in > Duration::ZERO,
        "{lift_in:?}"
    );
    assert_eq!(
        verdict, None,
        "only the suspending call carries the verdict"
    );
    let listed = store
        .suspended_prefixes(Some((&pumped, lift_in)))
        .await
        .expect("suspended_prefixes answers");
    assert_eq!(listed, 1);
}

async fn approvals_at_the_share_keep_a_prefix_open_and_below_it_do_not(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let verified = prefix("+1 650 200 0001");
    let thin = prefix("+1 628 200 0001");
    let verified_sends = counted(&store, &verified, 4).await;
    let thin_sends = counted(&store, &thin, 4).await;
    for (_, subject) in &verified_sends[..2] {
        approve(&store, &verified, subject).await;
    }
    approve(&store, &thin, &thin_sends[0].1).await;
    tokio::time::sleep(JUDGED).await;
    assert!(
        matches!(
            count(&store, &verified).await,
            PrefixDecision::Counted { .. }
        ),
        "2 of 4 approved is not below 50 %"
    );
    assert!(
        matches!(
            count(&store, &thin).await,
            PrefixDecision::Suspended {
                verdict: Some(PrefixVerdict {
                    judged: 4,
                    approved: 1
                }),
                ..
            }
        ),
        "1 of 4 is"
    );
}

async fn a_refunded_send_is_never_judged(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let range = prefix("+1 628 200 0001");
    let sends = counted(&store, &range, 3).await;
    store
        .refund_prefix_send(&range, &sends[0].0)
        .await
        .expect("refund answers");
    store
        .refund_prefix_send(&range, "no-such-token")
        .await
        .expect("an unknown token is ignored");
    tokio::time::sleep(JUDGED).await;
    assert!(
        matches!(count(&store, &range).await, PrefixDecision::Counted { .. }),
        "two judged sends are below the minimum volume"
    );
}

async fn a_suspension_lifts_on_time_and_the_prefix_starts_afresh(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let range = prefix("+1 628 200 0001");
    counted(&store, &range, 3).await;
    tokio::time::sleep(JUDGED).await;
    let suspended_at = Instant::now();
    let PrefixDecision::Suspended { lift_in, .. } = count(&store, &range).await else {
        panic!("suspended");
    };
    store
        .suspended_prefixes(Some((&range, lift_in)))
        .await
        .expect("listed");
    // Lifts, within a deadline that a busy core cannot reach by accident...
    wait_for(
        "the suspension lifts",
        RULE.suspension + Duration::from_secs(5),
        || async {
            matches!(count(&store, &range).await, PrefixDecision::Counted { .. }).then_some(())
        },
    )
    .await;
    // ...and never early: the suspension began after `suspended_at`. Both
    // stores keep time in whole milliseconds (the start truncated), so a
    // lift may come up to 1 ms before a full period of `Instant` time.
    let lifted_after = suspended_at.elapsed() + Duration::from_millis(1);
    assert!(
        lifted_after >= RULE.suspension,
        "a 1 s suspension lifted after {lifted_after:?}"
    );
    tokio::time::sleep(JUDGED).await;
    assert!(
        matches!(count(&store, &range).await, PrefixDecision::Counted { .. }),
        "the sends that suspended it are not judged again: one judged send is no verdict"
    );
    assert_eq!(
        store.suspended_prefixes(None).await.expect("answers"),
        0,
        "no longer listed"
    );
}

async fn each_suspended_prefix_is_counted_until_its_own_lift(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let long = prefix("+1 628 200 0001");
    let short = prefix("+1 650 200 0001");
    counted(&store, &long, 3).await;
    counted(&store, &short, 3).await;
    tokio::time::sleep(JUDGED).await;
    // The later suspension lifts first: the count must follow each lift
    // time, not the order they were decided in. Margins of seconds, so a
    // stalled machine cannot lift one early.
    for (range, suspension) in [
        (&long, Duration::from_secs(60)),
        (&short, Duration::from_secs(2)),
    ] {
        let rule = PrefixRule { suspension, ..RULE };
        let subject = new_subject();
        let sender = PrefixSender {
            subject: &subject,
            source: source(0),
            sent_at_ms: None,
        };
        let decision = store
            .count_prefix_send(range, &rule, sender)
            .await
            .expect("count_prefix_send answers");
        let PrefixDecision::Suspended { lift_in, .. } = decision else {
            panic!("{range} suspended: {decision:?}");
        };
        store
            .suspended_prefixes(Some((range, lift_in)))
            .await
            .expect("listed");
    }
    assert_eq!(store.suspended_prefixes(None).await.expect("answers"), 2);
    wait_for(
        "the short suspension lifts",
        Duration::from_secs(10),
        || async { (store.suspended_prefixes(None).await.expect("answers") == 1).then_some(()) },
    )
    .await;
    assert!(
        matches!(count(&store, &short).await, PrefixDecision::Counted { .. }),
        "the short one lifted"
    );
    assert!(
        matches!(count(&store, &long).await, PrefixDecision::Suspended { .. }),
        "the one still counted is the long one"
    );
}

async fn one_source_with_the_anonymous_one_cannot_suspend_and_a_third_can(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let range = prefix("+1 628 200 0001");
    let attacker = SendSource([7; 8]);
    for source in [attacker, SendSource::ANONYMOUS].repeat(4) {
        let decision = count_to(&store, &range, &new_subject(), source).await;
        assert!(
            matches!(decision, PrefixDecision::Counted { .. }),
            "{decision:?}"
        );
    }
    tokio::time::sleep(JUDGED).await;
    let decision = count_to(&store, &range, &new_subject(), attacker).await;
    assert!(
        matches!(decision, PrefixDecision::Counted { .. }),
        "8 judged unverified sends from two sources are no verdict: {decision:?}"
    );
    let decision = count_to(&store, &range, &new_subject(), SendSource([9; 8])).await;
    assert!(
        matches!(decision, PrefixDecision::Counted { .. }),
        "{decision:?}"
    );
    tokio::time::sleep(JUDGED).await;
    let decision = count_to(&store, &range, &new_subject(), attacker).await;
    assert!(
        matches!(
            decision,
            PrefixDecision::Suspended {
                verdict: Some(PrefixVerdict {
                    judged: 10,
                    approved: 0
                }),
                ..
            }
        ),
        "a third source's judged send completes the verdict: {decision:?}"
    );
}

async fn only_a_sends_own_approval_counts(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let range = prefix("+1 628 200 0001");
    let sends = counted(&store, &range, 4).await;
    // The pumper owns one number of the range and approves every code it
    // gets: only its own send counts as approved.
    let (_, owned) = &sends[0];
    for _ in 0..4 {
        approve(&store, &range, owned).await;
    }
    tokio::time::sleep(JUDGED).await;
    let decision = count(&store, &range).await;
    assert!(
        matches!(
            decision,
            PrefixDecision::Suspended {
                verdict: Some(PrefixVerdict {
                    judged: 4,
                    approved: 1
                }),
                ..
            }
        ),
        "1 of 4 approved is below half: {decision:?}"
    );
}

async fn a_number_that_approved_passes_a_suspended_prefix(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let range = prefix("+1 628 200 0001");
    let known = new_subject();
    let decision = count_to(&store, &range, &known, source(0)).await;
    assert!(matches!(decision, PrefixDecision::Counted { .. }));
    approve(&store, &range, &known).await;
    counted(&store, &range, 6).await;
    tokio::time::sleep(JUDGED).await;
    assert!(
        matches!(
            count(&store, &range).await,
            PrefixDecision::Suspended {
                verdict: Some(_),
                ..
            }
        ),
        "1 of 7 approved: suspended"
    );
    assert!(
        matches!(
            count(&store, &range).await,
            PrefixDecision::Suspended { .. }
        ),
        "a new number is refused"
    );
    let decision = count_to(&store, &range, &known, source(0)).await;
    assert!(
        matches!(decision, PrefixDecision::Counted { .. }),
        "the number that approved is never collateral: {decision:?}"
    );
}

/// Suspends `range` for 10 minutes by three unapproved judged sends and
/// lists it, as a SendOtp's guard does.
async fn suspend_for_ten_minutes(store: &TestStore, range: &DestinationPrefix) {
    counted(store, range, 3).await;
    tokio::time::sleep(JUDGED).await;
    let long = PrefixRule {
        suspension: Duration::from_secs(600),
        ..RULE
    };
    let subject = new_subject();
    let sender = PrefixSender {
        subject: &subject,
        source: source(0),
        sent_at_ms: None,
    };
    let decision = store
        .count_prefix_send(range, &long, sender)
        .await
        .expect("answers");
    let PrefixDecision::Suspended {
        lift_in,
        verdict: Some(_),
    } = decision
    else {
        panic!("suspended: {decision:?}");
    };
    store
        .suspended_prefixes(Some((range, lift_in)))
        .await
        .expect("listed");
}

async fn an_operator_lists_lifts_and_exempts_prefixes(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let range = prefix("+1 628 200 0001");
    suspend_for_ten_minutes(&store, &range).await;
    let listed = store.list_suspended_prefixes(&RULE).await.expect("lists");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].prefix, range);
    assert_eq!(
        listed[0].counts,
        PrefixVerdict {
            judged: 3,
            approved: 0
        },
        "the evidence is kept"
    );
    assert!(
        listed[0].lift_in > Duration::from_secs(590),
        "{:?}",
        listed[0].lift_in
    );

    assert!(
        store.lift_prefix_suspension(&range).await.expect("lifts"),
        "it was suspended"
    );
    assert!(
        !store.lift_prefix_suspension(&range).await.expect("lifts"),
        "no longer"
    );
    assert!(
        store
            .list_suspended_prefixes(&RULE)
            .await
            .expect("lists")
            .is_empty()
    );
    assert_eq!(store.suspended_prefixes(None).await.expect("answers"), 0);
    assert!(
        matches!(count(&store, &range).await, PrefixDecision::Counted { .. }),
        "lifted, and the evidence is not judged again"
    );

    let other = prefix("+1 650 200 0001");
    assert!(
        !store
            .exempt_prefix(&other, Duration::from_secs(300))
            .await
            .expect("exempts"),
        "no exemption was in force"
    );
    for _ in 0..6 {
        count(&store, &other).await;
    }
    tokio::time::sleep(JUDGED).await;
    assert!(
        matches!(count(&store, &other).await, PrefixDecision::Counted { .. }),
        "an exempt prefix is left alone"
    );
    let exemptions = store.list_prefix_exemptions().await.expect("lists");
    assert_eq!(exemptions.len(), 1, "{exemptions:?}");
    assert_eq!(exemptions[0].prefix, other);
    assert!(exemptions[0].ends_in > Duration::from_secs(290));
    assert!(
        store
            .exempt_prefix(&other, Duration::ZERO)
            .await
            .expect("ends the exemption"),
        "it was exempt"
    );
    assert_no_exemptions(&store).await;
    assert!(
        !store
            .exempt_prefix(&other, Duration::ZERO)
            .await
            .expect("answers"),
        "no longer exempt"
    );
}

async fn assert_no_exemptions(store: &TestStore) {
    let exemptions = store.list_prefix_exemptions().await.expect("lists");
    assert!(exemptions.is_empty(), "{exemptions:?}");
}

async fn ending_an_exemption_not_in_force_changes_nothing(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let range = prefix("+1 628 300 0001");
    suspend_for_ten_minutes(&store, &range).await;
    assert!(
        !store
            .exempt_prefix(&range, Duration::ZERO)
            .await
            .expect("answers"),
        "it was never exempt"
    );
    let listed = store.list_suspended_prefixes(&RULE).await.expect("lists");
    assert_eq!(listed.len(), 1, "still suspended: {listed:?}");
    assert_eq!(listed[0].prefix, range);
    assert!(
        matches!(
            count(&store, &range).await,
            PrefixDecision::Suspended { .. }
        ),
        "its sends are still refused"
    );
    let never_counted = prefix("+1 628 400 0001");
    assert!(
        !store
            .exempt_prefix(&never_counted, Duration::ZERO)
            .await
            .expect("answers")
    );
    assert_no_exemptions(&store).await;
}

for_each_store!(
    unapproved_sends_suspend_once_judged_and_the_refusal_says_until_when,
    each_suspended_prefix_is_counted_until_its_own_lift,
    approvals_at_the_share_keep_a_prefix_open_and_below_it_do_not,
    a_refunded_send_is_never_judged,
    a_suspension_lifts_on_time_and_the_prefix_starts_afresh,
    one_source_with_the_anonymous_one_cannot_suspend_and_a_third_can,
    only_a_sends_own_approval_counts,
    a_number_that_approved_passes_a_suspended_prefix,
    an_operator_lists_lifts_and_exempts_prefixes,
    ending_an_exemption_not_in_force_changes_nothing,
);
