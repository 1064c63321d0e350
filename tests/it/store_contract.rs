//! The store contract: the edge cases of every [`OtpStore`] operation,
//! called directly (no gRPC, no flow) on every store. `MemoryStore` and the
//! Lua scripts of `RedisStore` implement each rule twice; this suite is what
//! keeps the twins saying the same thing.

use std::{sync::Arc, time::Duration};

use futures::future::join_all;
use otp_service::{
    abuse::{LimitKind, RateRule},
    domain::{CodeDigest, HmacSecret, PhoneNumber, SubjectKey},
    store::{
        IdempotencyClaim, OtpStore, PutOutcome, RecordedSend, SendDecision, SendLog, VerifyOutcome,
    },
};
use tokio::time::Instant;

use crate::common::{StoreKind, TestStore, unique_phone, wait_for};

const MAX_ATTEMPTS: u32 = 5;
const LIFETIME: Duration = Duration::from_secs(60);

/// A subject no other test uses.
fn new_subject() -> SubjectKey {
    let phone = PhoneNumber::parse(&unique_phone()).expect("a valid number");
    HmacSecret::new(b"store-contract").subject_key(&phone)
}

fn digest(n: u8) -> CodeDigest {
    CodeDigest::from_bytes([n; 32])
}

async fn put(store: &TestStore, subject: &SubjectKey, n: u8, max_attempts: u32) -> PutOutcome {
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
        .verify_and_consume(subject, &digest(n), max_attempts)
        .await
        .expect("verify_and_consume answers")
}

async fn pending(store: &TestStore, subject: &SubjectKey) -> Option<Duration> {
    store
        .pending_lifetime(subject)
        .await
        .expect("pending_lifetime answers")
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
    let short = Duration::from_millis(300);
    let code = digest(1);
    let put_short = || store.put_code(&subject, &code, short, 1);
    assert_eq!(put_short().await.expect("answers"), stored(1));
    assert_eq!(verify(&store, &subject, 9, 1).await, incorrect(0));
    assert!(matches!(
        put_short().await.expect("answers"),
        PutOutcome::Locked { retry_after } if retry_after <= short
    ));
    wait_for("the lock ends", Duration::from_secs(5), || async {
        (put_short().await.expect("answers") == stored(1)).then_some(())
    })
    .await;
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
        VerifyOutcome::Approved
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
        VerifyOutcome::Approved
    );
}

async fn spent_guesses_expire_with_the_record(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    let short = Duration::from_millis(300);
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

fn window(limit: u32, period: Duration) -> [RateRule; 1] {
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

async fn concurrent_calls_have_exactly_one_winner(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    put(&store, &subject, 1, MAX_ATTEMPTS).await;
    let verdicts = concurrently(&store, 50, |store| {
        let subject = subject.clone();
        async move {
            store
                .verify_and_consume(&subject, &digest(1), MAX_ATTEMPTS)
                .await
        }
    })
    .await;
    let approved = verdicts
        .iter()
        .filter(|v| matches!(v, Ok(VerifyOutcome::Approved)))
        .count();
    assert_eq!(approved, 1, "{verdicts:?}");

    let (key, phone) = (new_subject(), new_subject());
    let claims = concurrently(&store, 50, |store| {
        let (key, phone) = (key.clone(), phone.clone());
        async move { store.claim_idempotency(&key, &phone, LIFETIME).await }
    })
    .await;
    let claimed = claims
        .iter()
        .filter(|c| matches!(c, Ok(IdempotencyClaim::Claimed)))
        .count();
    assert_eq!(claimed, 1, "{claims:?}");

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

for_each_store!(
    last_wrong_guess_destroys_the_code_and_locks,
    lock_ends_when_the_locked_code_would_have_expired,
    approval_is_single_use_and_resets_the_guess_budget,
    resend_keeps_spent_guesses_and_never_shrinks_the_lifetime,
    spent_guesses_expire_with_the_record,
    discard_removes_only_its_own_code_and_keeps_spent_guesses,
    cancel_keeps_spent_guesses_and_the_lock,
    sliding_window_admits_the_limit_refuses_one_more_and_slides,
    refusal_and_unknown_refunds_count_nothing,
    zero_limit_refuses_every_send_for_the_whole_period,
    idempotency_claim_complete_and_release,
    unfinished_idempotency_claim_expires,
    concurrent_calls_have_exactly_one_winner,
    pending_lifetime_is_what_was_put_and_none_when_nothing_is,
);
