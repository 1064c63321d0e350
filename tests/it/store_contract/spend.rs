//! Spend windows: a reservation in every window of a decision or in none,
//! the exact crossing, the window's slide, refunds
//! (`reserve_spend.lua`, `refund_spend.lua` and `spend_window.rs`).

use std::time::Duration;

use otp_service::{
    spend::{Micros, SpendCap},
    store::{SpendDecision, SpendLedger, SpendRefusal, SpendReservation, SpendWindow},
};
use tokio::time::Instant;

use crate::common::{StoreKind, TestStore, unique_prefix, wait_for};

/// A window on the service's ledger: at most `limit` µ in any `period`.
fn service(limit: u64, period: Duration) -> SpendWindow {
    SpendWindow {
        cap: SpendCap::PerHour,
        ledger: SpendLedger::Service,
        period,
        limit: Micros(limit),
    }
}

/// A window on one caller's ledger.
fn caller(name: &str, limit: u64, period: Duration) -> SpendWindow {
    SpendWindow {
        cap: SpendCap::CallerPerDay,
        ledger: SpendLedger::Caller(name.to_owned()),
        period,
        limit: Micros(limit),
    }
}

async fn reserve(store: &TestStore, amount: u64, windows: &[SpendWindow]) -> SpendDecision {
    store
        .reserve_spend(Micros(amount), windows)
        .await
        .expect("reserve_spend answers")
}

fn reserved(decision: SpendDecision) -> SpendReservation {
    match decision {
        SpendDecision::Reserved(reservation) => reservation,
        SpendDecision::Refused { refusals } => panic!("refused: {refusals:?}"),
    }
}

fn refused(decision: SpendDecision) -> Vec<SpendRefusal> {
    match decision {
        SpendDecision::Refused { refusals } => refusals,
        SpendDecision::Reserved(reservation) => panic!("reserved: {reservation:?}"),
    }
}

async fn the_cap_refuses_at_the_exact_crossing_and_lifts_when_the_spend_leaves_the_window(
    kind: StoreKind,
) {
    let store = TestStore::open(kind).await;
    // A short window on the store's own clock: the hour's rule, in 1.2 s.
    let period = Duration::from_millis(1_200);
    let window = [service(100, period)];
    let started = Instant::now();
    reserved(reserve(&store, 60, &window).await);
    reserved(reserve(&store, 40, &window).await);
    let refused_at = Instant::now();
    let refusals = refused(reserve(&store, 1, &window).await);
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].cap, SpendCap::PerHour);
    let retry_after = refusals[0].retry_after;
    assert!(
        retry_after > Duration::ZERO && retry_after <= period + period / 60 + period / 60,
        "{retry_after:?}"
    );

    wait_for(
        "the spend leaves the window",
        Duration::from_secs(10),
        || async {
            match reserve(&store, 1, &window).await {
                SpendDecision::Reserved(_) => Some(()),
                SpendDecision::Refused { .. } => None,
            }
        },
    )
    .await;
    let slack = Duration::from_millis(2); // millisecond clocks round down
    assert!(
        started.elapsed() + slack >= period,
        "lifted before a whole period passed: {:?}",
        started.elapsed()
    );
    assert!(
        refused_at.elapsed() + slack >= retry_after,
        "lifted before the refusal said: {:?} < {retry_after:?}",
        refused_at.elapsed()
    );
}

async fn a_decision_reserves_in_every_window_or_in_none(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let hour = Duration::from_secs(3_600);
    let day = Duration::from_secs(86_400);
    let name = unique_prefix();
    let windows = [service(1_000, hour), caller(&name, 50, day)];
    reserved(reserve(&store, 50, &windows).await);
    let refusals = refused(reserve(&store, 1, &windows).await);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].cap, SpendCap::CallerPerDay);
    assert!(refusals[0].retry_after > day - Duration::from_secs(60));
    // The refused decision left the service's window untouched: 950 fit.
    reserved(reserve(&store, 950, &[service(1_000, hour)]).await);
    refused(reserve(&store, 1, &[service(1_000, hour)]).await);
    // Another caller's ledger is its own, but the service's is full.
    let other = [caller(&unique_prefix(), 50, day)];
    reserved(reserve(&store, 50, &other).await);
    // More than a limit never fits: the wait is the whole window.
    let never = refused(reserve(&store, 51, &[caller(&unique_prefix(), 50, day)]).await);
    assert!(never[0].retry_after >= day, "{never:?}");
}

async fn a_refund_gives_back_the_amount_in_every_window(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let hour = Duration::from_secs(3_600);
    let name = unique_prefix();
    let windows = [service(100, hour), caller(&name, 100, hour)];
    let first = reserved(reserve(&store, 70, &windows).await);
    refused(reserve(&store, 70, &windows).await);
    store
        .refund_spend(&first, Micros(70))
        .await
        .expect("refund answers");
    let second = reserved(reserve(&store, 70, &windows).await);
    // A partial refund: the carrier was cheaper than reserved.
    store
        .refund_spend(&second, Micros(40))
        .await
        .expect("refund answers");
    reserved(reserve(&store, 70, &windows).await);
    refused(reserve(&store, 1, &windows).await);
    // A refund of a bucket long gone, or of more than is kept, changes nothing else.
    let stale = SpendReservation {
        amount: Micros(1_000),
        buckets: vec![
            (SpendLedger::Service, hour, 1),
            (SpendLedger::Caller(name), hour, 1),
        ],
    };
    store
        .refund_spend(&stale, Micros(1_000))
        .await
        .expect("refund answers");
    refused(reserve(&store, 1, &windows).await);
}

/// A refund reaches a reservation whose bucket is no longer the current
/// one (on Redis the current bucket keeps the window's running total, an
/// older one only its own amount: both must drop).
async fn a_refund_reaches_a_bucket_the_window_has_moved_past(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    // Buckets of 100 ms.
    let window = [service(1_000, Duration::from_secs(6))];
    let first = reserved(reserve(&store, 600, &window).await);
    let first_bucket = first.buckets[0].2;
    let (store_ref, window_ref) = (&store, &window);
    let mut since = 0;
    wait_for(
        "a reservation in a later bucket",
        Duration::from_secs(5),
        || {
            since += 1;
            async move {
                let later = reserved(reserve(store_ref, 1, window_ref).await);
                (later.buckets[0].2 > first_bucket).then_some(())
            }
        },
    )
    .await;
    // 600 + `since` reserved; the refund leaves `since`.
    store
        .refund_spend(&first, Micros(600))
        .await
        .expect("refund answers");
    reserved(reserve(&store, 1_000 - since, &window).await);
    refused(reserve(&store, 1, &window).await);
}

for_each_store!(
    the_cap_refuses_at_the_exact_crossing_and_lifts_when_the_spend_leaves_the_window,
    a_decision_reserves_in_every_window_or_in_none,
    a_refund_gives_back_the_amount_in_every_window,
    a_refund_reaches_a_bucket_the_window_has_moved_past,
);
