//! The pumping guard's counts per destination prefix: judged only once old
//! enough, the approved share, refunds, the suspension and its lift
//! (`count_prefix_send.lua`, `count_prefix_approval.lua`,
//! `suspended_prefixes.lua` and `prefix_window.rs`).

use std::time::Duration;

use otp_service::{
    abuse::{DestinationPrefix, PrefixRule},
    store::{PrefixDecision, PrefixVerdict},
};
use tokio::time::Instant;

use super::prefix;
use crate::common::{StoreKind, TestStore, wait_for};

/// A send is judged 300 ms after it was made; three judged sends make a
/// verdict; under half approved suspends for 1 s.
const RULE: PrefixRule = PrefixRule {
    window: Duration::from_secs(60),
    judge_after: Duration::from_millis(300),
    min_sends: 3,
    min_approved_percent: 50,
    suspension: Duration::from_secs(1),
};

/// Longer than [`RULE`]'s `judge_after`: spaces sends from their verdict
/// (time passing on the store's clock, not a wait for an effect).
const JUDGED: Duration = Duration::from_millis(450);

async fn count(store: &TestStore, prefix: &DestinationPrefix) -> PrefixDecision {
    store
        .count_prefix_send(prefix, &RULE)
        .await
        .expect("count_prefix_send answers")
}

/// Counts `n` sends, each of which must be admitted; returns their tokens.
async fn counted(store: &TestStore, prefix: &DestinationPrefix, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for _ in 0..n {
        match count(store, prefix).await {
            PrefixDecision::Counted { token } => tokens.push(token),
            other => panic!("expected the send to be counted, got {other:?}"),
        }
    }
    tokens
}

async fn approve(store: &TestStore, prefix: &DestinationPrefix) {
    store
        .count_prefix_approval(prefix, RULE.window)
        .await
        .expect("count_prefix_approval answers");
}

async fn unapproved_sends_suspend_once_judged_and_the_refusal_says_until_when(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let pumped = prefix("+1 628 200 0001");
    counted(&store, &pumped, 4).await;
    assert!(
        matches!(count(&store, &pumped).await, PrefixDecision::Counted { .. }),
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
    counted(&store, &verified, 4).await;
    counted(&store, &thin, 4).await;
    for _ in 0..2 {
        approve(&store, &verified).await;
    }
    approve(&store, &thin).await;
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
    let tokens = counted(&store, &range, 3).await;
    store
        .refund_prefix_send(&range, &tokens[0])
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
    wait_for("the suspension lifts", Duration::from_secs(5), || async {
        matches!(count(&store, &range).await, PrefixDecision::Counted { .. }).then_some(())
    })
    .await;
    let lifted_after = suspended_at.elapsed();
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(3)).contains(&lifted_after),
        "a 1 s suspension lifted after {lifted_after:?}"
    );
    tokio::time::sleep(JUDGED).await;
    assert!(
        matches!(count(&store, &range).await, PrefixDecision::Counted { .. }),
        "the sends that suspended it were forgotten: one judged send is no verdict"
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
        let decision = store
            .count_prefix_send(range, &rule)
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

for_each_store!(
    unapproved_sends_suspend_once_judged_and_the_refusal_says_until_when,
    each_suspended_prefix_is_counted_until_its_own_lift,
    approvals_at_the_share_keep_a_prefix_open_and_below_it_do_not,
    a_refunded_send_is_never_judged,
    a_suspension_lifts_on_time_and_the_prefix_starts_afresh,
);
