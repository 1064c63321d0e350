//! Races: many calls at once on one key, each on its own task. One approval,
//! one claim, and exactly as many counted sends as the rule allows, whatever
//! the store. On RACE_SETTINGS (20 s store timeout): they test atomicity,
//! not latency on a loaded machine.

use std::sync::Arc;

use futures::future::join_all;
use otp_service::store::{IdempotencyClaim, OtpStore, SendDecision, SendLog, VerifyOutcome};

use super::{LIFETIME, MAX_ATTEMPTS, codes::put, digest, new_subject, send_log::window};
use crate::common::{StoreKind, TestStore, concurrent::RACE_SETTINGS};

/// `calls` copies of `call` at once, each on its own task.
async fn concurrently<T, F, Fut>(store: &TestStore, calls: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn OtpStore>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let tasks = (0..calls).map(|_| tokio::spawn(call(store.shared())));
    join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("task ran"))
        .collect()
}

async fn concurrent_verifies_of_the_right_code_approve_it_once(kind: StoreKind) {
    let store = TestStore::open_with(kind, &RACE_SETTINGS).await;
    let subject = new_subject();
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    let verdicts = concurrently(&store, 50, |store| async move {
        store
            .verify_and_consume(&subject, &[digest(1)], MAX_ATTEMPTS)
            .await
    })
    .await;
    let approved = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(VerifyOutcome::Approved { .. })))
        .count();
    assert_eq!(approved, 1, "{verdicts:?}");
    // Every other call answered too, with "nothing pending": none failed.
    let expired = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(VerifyOutcome::Expired)))
        .count();
    assert_eq!(expired, 49, "{verdicts:?}");
}

async fn concurrent_claims_of_one_key_claim_it_once(kind: StoreKind) {
    let store = TestStore::open_with(kind, &RACE_SETTINGS).await;
    let (key, phone) = (new_subject(), new_subject());
    let claims = concurrently(&store, 50, |store| async move {
        store.claim_idempotency(&key, &phone, LIFETIME).await
    })
    .await;
    let claimed = claims
        .iter()
        .filter(|c| matches!(c, Ok(IdempotencyClaim::Claimed { .. })))
        .count();
    assert_eq!(claimed, 1, "{claims:?}");
    let in_progress = claims
        .iter()
        .filter(|c| matches!(c, Ok(IdempotencyClaim::InProgress)))
        .count();
    assert_eq!(in_progress, 49, "every other claim answered: {claims:?}");
}

async fn concurrent_sends_count_exactly_the_limit(kind: StoreKind) {
    let store = TestStore::open_with(kind, &RACE_SETTINGS).await;
    let log = SendLog::Phone(new_subject());
    let rules = window(3, LIFETIME);
    let sends = concurrently(&store, 50, |store| {
        let log = log.clone();
        async move { store.record_send(&log, &rules).await }
    })
    .await;
    let counted = sends
        .iter()
        .filter(|s| matches!(s, Ok(SendDecision::Admitted { .. })))
        .count();
    assert_eq!(counted, 3, "{sends:?}");
    let refused = sends
        .iter()
        .filter(|s| matches!(s, Ok(SendDecision::Refused { .. })))
        .count();
    assert_eq!(refused, 47, "every other send answered, refused: {sends:?}");
}

for_each_store!(
    concurrent_verifies_of_the_right_code_approve_it_once,
    concurrent_claims_of_one_key_claim_it_once,
    concurrent_sends_count_exactly_the_limit,
);
