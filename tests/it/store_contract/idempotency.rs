//! Idempotency records: claim, complete, release and expiry
//! (`claim_idempotency.lua`, `complete_idempotency.lua`,
//! `release_idempotency.lua` and their `MemoryStore` twins).

use std::time::Duration;

use otp_service::{
    domain::SubjectKey,
    store::{IdempotencyClaim, RecordedSend},
};

use super::new_subject;
use crate::common::{StoreKind, TestStore, wait_for};

async fn claim(store: &TestStore, key: &SubjectKey, subject: &SubjectKey) -> IdempotencyClaim {
    store
        .claim_idempotency(key, subject, Duration::from_secs(60))
        .await
        .expect("claim_idempotency answers")
}

fn response(n: u32) -> RecordedSend {
    RecordedSend {
        expires_in_secs: 120,
        code_length: 6,
        attempts_remaining: n,
        resend_after_secs: 30,
    }
}

async fn idempotency_claim_complete_and_release(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let (key, phone, other_phone) = (new_subject(), new_subject(), new_subject());
    let ttl = Duration::from_secs(60);
    assert_eq!(claim(&store, &key, &phone).await, IdempotencyClaim::Claimed);
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        claim(&store, &key, &other_phone).await,
        IdempotencyClaim::OtherSubject
    );
    store.release_idempotency(&key).await.expect("answers");
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::Claimed,
        "a released key can be claimed again"
    );
    store
        .complete_idempotency(&key, &phone, &response(4), ttl)
        .await
        .expect("answers");
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::Completed(response(4))
    );
    store.release_idempotency(&key).await.expect("answers");
    assert_eq!(
        claim(&store, &key, &phone).await,
        IdempotencyClaim::Completed(response(4)),
        "release keeps a completed record: retries must get its response"
    );
    assert_eq!(
        claim(&store, &key, &other_phone).await,
        IdempotencyClaim::OtherSubject
    );
    store
        .release_idempotency(&new_subject())
        .await
        .expect("releasing an unknown key is a no-op");
}

async fn unfinished_idempotency_claim_expires(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let (key, phone) = (new_subject(), new_subject());
    let ttl = Duration::from_millis(300);
    let claim = || store.claim_idempotency(&key, &phone, ttl);
    assert_eq!(claim().await.expect("answers"), IdempotencyClaim::Claimed);
    assert_eq!(
        claim().await.expect("answers"),
        IdempotencyClaim::InProgress
    );
    wait_for("the claim expires", Duration::from_secs(5), || async {
        (claim().await.expect("answers") == IdempotencyClaim::Claimed).then_some(())
    })
    .await;
}

for_each_store!(
    idempotency_claim_complete_and_release,
    unfinished_idempotency_claim_expires,
);
