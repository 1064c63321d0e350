//! Idempotency records: claim, complete, release and expiry, and the owner
//! token that lets only the claiming call settle its claim
//! (`claim_idempotency.lua`, `complete_idempotency.lua`,
//! `release_idempotency.lua` and their `MemoryStore` twins).

use std::time::Duration;

use tokio::time::Instant;

use otp_service::{
    domain::SubjectKey,
    store::{ClaimOwner, IdempotencyClaim, RecordedSend},
};

use super::new_subject;
use crate::common::{StoreKind, TestStore, wait_for};

async fn claim(store: &TestStore, key: &SubjectKey, subject: &SubjectKey) -> IdempotencyClaim {
    store
        .claim_idempotency(key, subject, Duration::from_secs(60))
        .await
        .expect("claim_idempotency answers")
}

/// Claims a free `key`; panics if someone else holds it.
async fn claim_owned(store: &TestStore, key: &SubjectKey, subject: &SubjectKey) -> ClaimOwner {
    match claim(store, key, subject).await {
        IdempotencyClaim::Claimed { owner } => owner,
        other => panic!("a free key is claimed, got {other:?}"),
    }
}

fn response(n: u32) -> RecordedSend {
    RecordedSend {
        expires_in_secs: 120,
        code_length: 6,
        attempts_remaining: n,
        resend_after_secs: 30,
        // Every channel's number round-trips (0, SMS, as before channels).
        channel: n % 3,
    }
}

async fn idempotency_claim_complete_and_release(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let (key, phone, other_phone) = (new_subject(), new_subject(), new_subject());
    let ttl = Duration::from_secs(60);
    let owner = claim_owned(&store, &key, &phone).await;
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        claim(&store, &key, &other_phone).await,
        IdempotencyClaim::OtherSubject
    );
    assert!(
        store
            .release_idempotency(&key, &owner)
            .await
            .expect("answers")
    );
    let owner = claim_owned(&store, &key, &phone).await;
    assert!(
        store
            .complete_idempotency(&key, &owner, &response(4), ttl)
            .await
            .expect("answers")
    );
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::Completed(response(4))
    );
    assert!(
        !store
            .release_idempotency(&key, &owner)
            .await
            .expect("answers")
    );
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::Completed(response(4)),
        "release keeps a completed record: retries must get its response"
    );
    assert_eq!(
        claim(&store, &key, &other_phone).await,
        IdempotencyClaim::OtherSubject
    );
    assert!(
        !store
            .release_idempotency(&new_subject(), &owner)
            .await
            .expect("releasing an unknown key is a no-op")
    );
}

async fn unfinished_idempotency_claim_expires(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let (key, phone) = (new_subject(), new_subject());
    // At least 1 s: these cases run on the shared Cluster and Sentinel too.
    let ttl = Duration::from_millis(1_500);
    let claim = || store.claim_idempotency(&key, &phone, ttl);
    let claimed_at = Instant::now();
    assert!(matches!(
        claim().await.expect("answers"),
        IdempotencyClaim::Claimed { .. }
    ));
    assert_eq!(
        claim().await.expect("answers"),
        IdempotencyClaim::InProgress
    );
    let asked_after = claimed_at.elapsed();
    assert!(
        asked_after < ttl,
        "stalled {asked_after:?}: the claim may have expired"
    );
    wait_for(
        "the claim expires",
        ttl + Duration::from_secs(5),
        || async {
            matches!(
                claim().await.expect("answers"),
                IdempotencyClaim::Claimed { .. }
            )
            .then_some(())
        },
    )
    .await;
}

/// A call whose claim expired (and was claimed again) can neither complete
/// nor release the new holder's claim.
async fn an_expired_owner_cannot_settle_its_successors_claim(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let (key, phone) = (new_subject(), new_subject());
    let first = match store
        .claim_idempotency(&key, &phone, Duration::from_millis(50))
        .await
        .expect("answers")
    {
        IdempotencyClaim::Claimed { owner } => owner,
        other => panic!("a free key is claimed, got {other:?}"),
    };
    let second = wait_for(
        "the first claim expires",
        Duration::from_secs(5),
        || async {
            match claim(&store, &key, &phone).await {
                IdempotencyClaim::Claimed { owner } => Some(owner),
                _ => None,
            }
        },
    )
    .await;
    assert_ne!(first, second);
    let ttl = Duration::from_secs(60);
    assert!(
        !store
            .complete_idempotency(&key, &first, &response(1), ttl)
            .await
            .expect("answers"),
        "the expired holder cannot complete the new claim"
    );
    assert!(
        !store
            .release_idempotency(&key, &first)
            .await
            .expect("answers"),
        "the expired holder cannot release the new claim"
    );
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::InProgress,
        "the new claim stands"
    );
    assert!(
        store
            .complete_idempotency(&key, &second, &response(2), ttl)
            .await
            .expect("answers")
    );
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::Completed(response(2))
    );
}

for_each_store!(
    idempotency_claim_complete_and_release,
    unfinished_idempotency_claim_expires,
    an_expired_owner_cannot_settle_its_successors_claim,
);
