//! Codes: put, verify, lifetime, discard and cancel — the guess budget and
//! the lock in every order they can meet (`put_code.lua`,
//! `verify_and_consume.lua`, `pending_lifetime.lua`, `discard_code.lua`,
//! `cancel_code.lua` and their `MemoryStore` twins).

use std::time::Duration;

use tokio::time::Instant;

use otp_service::{
    abuse::{LimitKind, RateRule},
    domain::SubjectKey,
    store::{PutOutcome, SendDecision, SendLog, VerifyOutcome},
};

use super::{LIFETIME, MAX_ATTEMPTS, digest, new_subject, pending};
use crate::common::{StoreKind, TestStore, wait_for};

pub(super) async fn put(
    store: &TestStore,
    subject: &SubjectKey,
    n: u8,
    max_attempts: u32,
) -> PutOutcome {
    store
        .put_code(subject, &digest(n), LIFETIME, max_attempts)
        .await
        .expect("put_code answers")
}

async fn verify(
    store: &TestStore,
    subject: &SubjectKey,
    n: u8,
    max_attempts: u32,
) -> VerifyOutcome {
    store
        .verify_and_consume(subject, &[digest(n)], max_attempts)
        .await
        .expect("verify_and_consume answers")
}

fn stored(attempts_remaining: u32) -> PutOutcome {
    PutOutcome::Stored { attempts_remaining }
}

fn incorrect(attempts_remaining: u32) -> VerifyOutcome {
    VerifyOutcome::Incorrect { attempts_remaining }
}

async fn last_wrong_guess_destroys_the_code_and_locks(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    assert_eq!(put(&store, &subject, 1, 3).await, stored(3));
    assert_eq!(verify(&store, &subject, 9, 3).await, incorrect(2));
    assert_eq!(verify(&store, &subject, 9, 3).await, incorrect(1));
    assert_eq!(verify(&store, &subject, 9, 3).await, incorrect(0));
    assert_eq!(
        verify(&store, &subject, 1, 3).await,
        VerifyOutcome::Locked,
        "the right code is gone with the last wrong guess"
    );
    assert_eq!(pending(&store, &subject).await, None);
    let PutOutcome::Locked { retry_after } = put(&store, &subject, 2, 3).await else {
        panic!("a locked subject gets no new code");
    };
    assert!(
        retry_after > LIFETIME - Duration::from_secs(10) && retry_after <= LIFETIME,
        "the lock lasts as long as the code would have: {retry_after:?}"
    );
}

async fn lock_ends_when_the_locked_code_would_have_expired(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    // At least 1 s: these cases run on the shared Cluster and Sentinel too.
    let short = Duration::from_millis(1_500);
    let code = digest(1);
    let put_short = || store.put_code(&subject, &code, short, 1);
    let before_put = Instant::now();
    assert_eq!(put_short().await.expect("answers"), stored(1));
    assert_eq!(verify(&store, &subject, 9, 1).await, incorrect(0));
    assert!(matches!(
        put_short().await.expect("answers"),
        PutOutcome::Locked { retry_after } if retry_after <= short
    ));
    wait_for("the lock ends", short + Duration::from_secs(5), || async {
        (put_short().await.expect("answers") == stored(1)).then_some(())
    })
    .await;
    let ended_after = before_put.elapsed();
    assert!(
        ended_after >= short,
        "the lock ended {ended_after:?} after the code was stored, before the code would have expired"
    );
}

async fn approval_is_single_use_and_resets_the_guess_budget(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    assert_eq!(
        verify(&store, &subject, 9, MAX_ATTEMPTS).await,
        incorrect(4)
    );
    assert_eq!(
        verify(&store, &subject, 1, MAX_ATTEMPTS).await,
        VerifyOutcome::Approved { sent_at_ms: None }
    );
    assert_eq!(
        verify(&store, &subject, 1, MAX_ATTEMPTS).await,
        VerifyOutcome::Expired
    );
    assert_eq!(pending(&store, &subject).await, None);
    assert_eq!(
        put(&store, &subject, 2, MAX_ATTEMPTS).await,
        stored(MAX_ATTEMPTS),
        "an approval starts the next code with a full budget"
    );
}

async fn resend_keeps_spent_guesses_and_never_shrinks_the_lifetime(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    assert_eq!(
        verify(&store, &subject, 9, MAX_ATTEMPTS).await,
        incorrect(4)
    );
    let shorter = store
        .put_code(&subject, &digest(2), Duration::from_secs(5), MAX_ATTEMPTS)
        .await
        .expect("answers");
    assert_eq!(shorter, stored(4), "the spent guess survives the resend");
    let left = pending(&store, &subject).await.expect("pending");
    assert!(
        left > LIFETIME - Duration::from_secs(10),
        "a shorter resend keeps the longer lifetime: {left:?}"
    );
    let longer = LIFETIME * 2;
    store
        .put_code(&subject, &digest(3), longer, MAX_ATTEMPTS)
        .await
        .expect("answers");
    let left = pending(&store, &subject).await.expect("pending");
    assert!(
        left > LIFETIME && left <= longer,
        "a longer one extends it: {left:?}"
    );
    assert_eq!(
        verify(&store, &subject, 2, MAX_ATTEMPTS).await,
        incorrect(3),
        "the replaced code no longer works"
    );
    assert_eq!(
        verify(&store, &subject, 3, MAX_ATTEMPTS).await,
        VerifyOutcome::Approved { sent_at_ms: None }
    );
}

async fn spent_guesses_expire_with_the_record(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    let short = Duration::from_secs(1);
    store
        .put_code(&subject, &digest(1), short, MAX_ATTEMPTS)
        .await
        .expect("answers");
    assert_eq!(
        verify(&store, &subject, 9, MAX_ATTEMPTS).await,
        incorrect(4)
    );
    wait_for("the code expires", Duration::from_secs(5), || async {
        pending(&store, &subject).await.is_none().then_some(())
    })
    .await;
    assert_eq!(
        verify(&store, &subject, 1, MAX_ATTEMPTS).await,
        VerifyOutcome::Expired
    );
    wait_for("the record expires", Duration::from_secs(5), || async {
        let outcome = put(&store, &subject, 2, MAX_ATTEMPTS).await;
        (outcome == stored(MAX_ATTEMPTS)).then_some(())
    })
    .await;
}

async fn discard_removes_only_its_own_code_and_keeps_spent_guesses(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    assert_eq!(
        verify(&store, &subject, 9, MAX_ATTEMPTS).await,
        incorrect(4)
    );
    put(&store, &subject, 2, MAX_ATTEMPTS).await;
    // A rollback of the older send (digest 1) must not remove the newer code.
    store
        .discard_code(&subject, &digest(1))
        .await
        .expect("answers");
    assert!(
        pending(&store, &subject).await.is_some(),
        "code 2 is still pending"
    );
    store
        .discard_code(&subject, &digest(2))
        .await
        .expect("answers");
    assert_eq!(pending(&store, &subject).await, None);
    assert_eq!(
        verify(&store, &subject, 2, MAX_ATTEMPTS).await,
        VerifyOutcome::Expired
    );
    assert_eq!(
        put(&store, &subject, 3, MAX_ATTEMPTS).await,
        stored(4),
        "the discarded code's spent guess still counts"
    );
    store
        .discard_code(&new_subject(), &digest(3))
        .await
        .expect("discarding where nothing is pending is a no-op");
}

async fn cancel_keeps_spent_guesses_and_the_lock(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    assert_eq!(
        verify(&store, &subject, 9, MAX_ATTEMPTS).await,
        incorrect(4)
    );
    assert!(store.cancel_code(&subject).await.expect("answers"));
    assert!(
        !store.cancel_code(&subject).await.expect("answers"),
        "nothing left"
    );
    assert_eq!(
        verify(&store, &subject, 1, MAX_ATTEMPTS).await,
        VerifyOutcome::Expired
    );
    assert_eq!(put(&store, &subject, 2, MAX_ATTEMPTS).await, stored(4));

    let locked = new_subject();
    put(&store, &locked, 1, 1).await;
    assert_eq!(verify(&store, &locked, 9, 1).await, incorrect(0));
    assert!(
        !store.cancel_code(&locked).await.expect("answers"),
        "a lock has no pending code to cancel"
    );
    assert!(
        matches!(put(&store, &locked, 2, 1).await, PutOutcome::Locked { .. }),
        "cancel does not lift a lock"
    );
}

async fn pending_lifetime_is_what_was_put_and_none_when_nothing_is(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    assert_eq!(pending(&store, &subject).await, None);
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    let left = pending(&store, &subject).await.expect("pending");
    assert!(
        left > LIFETIME - Duration::from_secs(10) && left <= LIFETIME,
        "{left:?}"
    );
    store.ping().await.expect("ping answers");
}

/// Key rotation: the code's digest under every secret of the ring is a
/// candidate; any one matching approves, and a miss costs one guess however
/// many candidates were compared.
async fn any_candidate_digest_approves_and_a_miss_spends_one_guess(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    let miss = store
        .verify_and_consume(&subject, &[digest(8), digest(9)], MAX_ATTEMPTS)
        .await
        .expect("answers");
    assert_eq!(
        miss,
        VerifyOutcome::Incorrect {
            attempts_remaining: MAX_ATTEMPTS - 1
        }
    );
    let hit = store
        .verify_and_consume(&subject, &[digest(9), digest(1)], MAX_ATTEMPTS)
        .await
        .expect("answers");
    assert_eq!(
        hit,
        VerifyOutcome::Approved { sent_at_ms: None },
        "the previous secret's digest"
    );
}

/// An approval names when the approved code was sent: the newest send the
/// number's log holds (the pumping guard counted the send at that time),
/// also under a daily limit too large for the memory store to pack.
async fn an_approval_names_the_time_its_send_was_logged(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    for limit in [10, 10_000] {
        let subject = new_subject();
        let daily = RateRule {
            kind: LimitKind::PhoneDaily,
            limit,
            period: Duration::from_secs(86_400),
        };
        let mut logged = None;
        for _ in 0..2 {
            let decision = store
                .record_send(&SendLog::Phone(subject), &[daily])
                .await
                .expect("record_send answers");
            let SendDecision::Admitted { sent_at_ms, .. } = decision else {
                panic!("admitted: {decision:?}");
            };
            assert!(sent_at_ms.is_some(), "a number's log keeps its send time");
            logged = sent_at_ms;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            put(&store, &subject, 1, MAX_ATTEMPTS).await,
            stored(MAX_ATTEMPTS)
        );
        assert_eq!(
            verify(&store, &subject, 1, MAX_ATTEMPTS).await,
            VerifyOutcome::Approved { sent_at_ms: logged },
            "the newer of two sends, daily limit {limit}"
        );
    }
}

for_each_store!(
    an_approval_names_the_time_its_send_was_logged,
    any_candidate_digest_approves_and_a_miss_spends_one_guess,
    last_wrong_guess_destroys_the_code_and_locks,
    lock_ends_when_the_locked_code_would_have_expired,
    approval_is_single_use_and_resets_the_guess_budget,
    resend_keeps_spent_guesses_and_never_shrinks_the_lifetime,
    spent_guesses_expire_with_the_record,
    discard_removes_only_its_own_code_and_keeps_spent_guesses,
    cancel_keeps_spent_guesses_and_the_lock,
    pending_lifetime_is_what_was_put_and_none_when_nothing_is,
);
