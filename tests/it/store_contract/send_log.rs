//! Send logs: the sliding window's edges, refusals and refunds
//! (`record_send.lua`, `refund_send.lua` and `sliding_log.rs`).

use std::time::Duration;

use otp_service::{
    abuse::{LimitKind, RateRule},
    store::{SendDecision, SendLog},
};
use tokio::time::Instant;

use super::new_subject;
use crate::common::{StoreKind, TestStore, wait_for};

/// One sliding-window rule: at most `limit` sends in any `period`.
pub(super) fn window(limit: u32, period: Duration) -> [RateRule; 1] {
    [RateRule {
        kind: LimitKind::PhoneWindow,
        limit,
        period,
    }]
}

async fn record(store: &TestStore, log: &SendLog, rules: &[RateRule]) -> SendDecision {
    store
        .record_send(log, rules)
        .await
        .expect("record_send answers")
}

fn admitted(decision: &SendDecision) -> Option<(String, Duration)> {
    match decision {
        SendDecision::Admitted {
            token,
            next_allowed_in,
            ..
        } => Some((token.clone(), *next_allowed_in)),
        SendDecision::Refused { .. } => None,
    }
}

/// The one violation of a refusal by a single rule: its delay.
fn refused_for(decision: &SendDecision) -> Duration {
    let SendDecision::Refused { violations } = decision else {
        panic!("expected a refusal, got {decision:?}");
    };
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, LimitKind::PhoneWindow);
    violations[0].retry_after
}

async fn sliding_window_admits_the_limit_refuses_one_more_and_slides(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let log = SendLog::Phone(new_subject());
    let period = Duration::from_millis(1500);
    let rules = window(2, period);
    // Store time is never earlier than this, whatever clock the store keeps.
    let started = Instant::now();
    let first = record(&store, &log, &rules).await;
    assert_eq!(
        admitted(&first).expect("first").1,
        Duration::ZERO,
        "room for one more"
    );
    // Spaces the two sends so the window's slide is visible (not a wait for
    // an effect): the second leaves the window 600 ms after the first.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, next) = admitted(&record(&store, &log, &rules).await).expect("second, at the limit");
    assert!(
        next > Duration::ZERO && next <= period - Duration::from_millis(600),
        "counted from the first send, not this one: {next:?}"
    );
    let refused_at = Instant::now();
    let retry_after = refused_for(&record(&store, &log, &rules).await);
    assert!(
        retry_after > Duration::ZERO && retry_after <= next,
        "{retry_after:?}"
    );

    let (_, next) = wait_for(
        "the first send leaves the window",
        Duration::from_secs(10),
        || async { admitted(&record(&store, &log, &rules).await) },
    )
    .await;
    let slack = Duration::from_millis(2); // millisecond clocks round down
    assert!(
        started.elapsed() + slack >= period,
        "admitted before the first send left the window: {:?}",
        started.elapsed()
    );
    assert!(
        refused_at.elapsed() + slack >= retry_after,
        "admitted before the refusal said: {:?} < {retry_after:?}",
        refused_at.elapsed()
    );
    assert!(
        next > Duration::ZERO,
        "the second send is still in the window, so it is full again"
    );
    refused_for(&record(&store, &log, &rules).await);
}

async fn refusal_and_unknown_refunds_count_nothing(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let log = SendLog::Phone(new_subject());
    let other = SendLog::Client(new_subject());
    let rules = window(2, Duration::from_secs(600));
    let (first, _) = admitted(&record(&store, &log, &rules).await).expect("first");
    let (other_token, _) = admitted(&record(&store, &other, &rules).await).expect("other log");
    for unknown in [
        "",
        "no-such-token",
        "18446744073709551615",
        other_token.as_str(),
    ] {
        store
            .refund_send(&log, unknown)
            .await
            .expect("refund answers");
    }
    admitted(&record(&store, &log, &rules).await).expect("second");
    for _ in 0..3 {
        refused_for(&record(&store, &log, &rules).await);
    }
    store
        .refund_send(&log, &first)
        .await
        .expect("refund answers");
    admitted(&record(&store, &log, &rules).await).expect("the refunded send's room");
    store
        .refund_send(&log, &first)
        .await
        .expect("a second refund of one token answers");
    refused_for(&record(&store, &log, &rules).await);
    store
        .refund_send(&SendLog::Global, "no-such-token")
        .await
        .expect("refund on a log never written");
}

async fn zero_limit_refuses_every_send_for_the_whole_period(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let log = SendLog::Phone(new_subject());
    let period = Duration::from_secs(60);
    let retry_after = refused_for(&record(&store, &log, &window(0, period)).await);
    assert_eq!(retry_after, period);
}

/// Two client keys whose digests share their first 12 bits: on Redis their
/// logs are two fields of one bucket hash (`number_record.lua`).
fn clients_in_one_bucket() -> (SendLog, SendLog) {
    let mut seen = std::collections::HashMap::new();
    loop {
        let client = new_subject();
        let bytes = client.as_bytes();
        let bucket = [bytes[0], bytes[1] & 0xf0];
        if let Some(other) = seen.insert(bucket, client) {
            return (SendLog::Client(other), SendLog::Client(client));
        }
    }
}

async fn clients_sharing_a_bucket_keep_their_own_counts_refunds_and_ends(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let (first, second) = clients_in_one_bucket();
    let short = window(1, Duration::from_millis(300));
    let long = window(2, Duration::from_secs(600));
    admitted(&record(&store, &first, &short).await).expect("the first client's send");
    let (token, _) = admitted(&record(&store, &second, &long).await).expect("the second's");
    refused_for(&record(&store, &first, &short).await);
    store
        .refund_send(&first, &token)
        .await
        .expect("refund answers");
    // The first client's send leaves its short window (and its field its
    // time: a later write may prune it); the second's stays counted.
    wait_for(
        "the first client's send leaves its window",
        Duration::from_secs(10),
        || async { admitted(&record(&store, &first, &short).await) },
    )
    .await;
    admitted(&record(&store, &second, &long).await).expect("the second's second send");
    refused_for(&record(&store, &second, &long).await);
    store
        .refund_send(&second, &token)
        .await
        .expect("refund answers");
    admitted(&record(&store, &second, &long).await).expect("the refunded send's room");
    refused_for(&record(&store, &first, &short).await);
}

for_each_store!(
    sliding_window_admits_the_limit_refuses_one_more_and_slides,
    refusal_and_unknown_refunds_count_nothing,
    zero_limit_refuses_every_send_for_the_whole_period,
    clients_sharing_a_bucket_keep_their_own_counts_refunds_and_ends,
);
