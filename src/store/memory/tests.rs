//! The memory store's own checks: the sweeper forgets what expired (codes,
//! send logs, idempotency entries) and keeps what lives; the size cap.

use super::*;
use crate::store::memory::state::SWEEP_INTERVAL;

fn subject(n: u32) -> SubjectKey {
    crate::domain::HmacSecret::new(b"k")
        .subject_key(&crate::domain::PhoneNumber::parse(&format!("+1415555{n:04}")).expect("valid"))
}

#[tokio::test(start_paused = true)]
async fn expired_entries_are_swept_so_memory_stays_bounded() {
    let store = MemoryStore::new();
    let digest = CodeDigest::from_bytes([1; 32]);
    for n in 0..1000 {
        store
            .put_code(&subject(n), &digest, Duration::from_secs(2), 5)
            .await
            .expect("stored");
    }
    assert_eq!(store.len(), 1000);
    // Virtual time: the runtime jumps ahead, running the sweeper on its way.
    tokio::time::sleep(SWEEP_INTERVAL * 2).await;
    assert!(
        store.is_empty(),
        "{} entries left after expiry",
        store.len()
    );
}

#[tokio::test(start_paused = true)]
async fn live_entries_survive_the_sweep() {
    let store = MemoryStore::new();
    let digest = CodeDigest::from_bytes([1; 32]);
    store
        .put_code(&subject(1), &digest, Duration::from_secs(60), 5)
        .await
        .expect("stored");
    store
        .put_code(&subject(2), &digest, Duration::from_secs(1), 5)
        .await
        .expect("stored");
    tokio::time::sleep(SWEEP_INTERVAL * 2).await;
    assert_eq!(store.len(), 1);
    assert!(
        store
            .pending_lifetime(&subject(1))
            .await
            .expect("answers")
            .is_some()
    );
}

#[tokio::test]
async fn a_full_table_refuses_new_entries_but_serves_existing_ones() {
    let store = MemoryStore::with_max_entries(100);
    let digest = CodeDigest::from_bytes([1; 32]);
    let lifetime = Duration::from_secs(60);
    for n in 0..100 {
        store
            .put_code(&subject(n), &digest, lifetime, 5)
            .await
            .expect("below the cap");
    }
    let refused = store.put_code(&subject(100), &digest, lifetime, 5).await;
    assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");
    store
        .put_code(&subject(7), &digest, lifetime, 5)
        .await
        .expect("an existing subject still takes a new code");
    let verified = store
        .verify_and_consume(&subject(7), &[digest], 5)
        .await
        .expect("answers");
    assert_eq!(verified, VerifyOutcome::Approved { sent_at_ms: None });
    store
        .put_code(&subject(100), &digest, lifetime, 5)
        .await
        .expect("room again once an entry is gone");
}

#[tokio::test(start_paused = true)]
async fn send_logs_and_idempotency_entries_are_swept_after_their_lifetime() {
    use crate::abuse::{LimitKind, RateRule};
    let store = MemoryStore::new();
    let minute = [RateRule {
        kind: LimitKind::PhoneWindow,
        limit: 5,
        period: Duration::from_secs(60),
    }];
    let hour = [RateRule {
        kind: LimitKind::ClientWindow,
        limit: 5,
        period: Duration::from_secs(3600),
    }];
    let response = RecordedSend {
        expires_in_secs: 120,
        code_length: 6,
        attempts_remaining: 5,
        resend_after_secs: 30,
        channel: 0,
    };
    for n in 0..100 {
        let log = SendLog::Phone(subject(n));
        store.record_send(&log, &minute).await.expect("counted");
        let key = subject(10_000 + n);
        let claim = store
            .claim_idempotency(&key, &subject(n), Duration::from_secs(10))
            .await
            .expect("claimed");
        let IdempotencyClaim::Claimed { owner } = claim else {
            panic!("a fresh key is claimed: {claim:?}");
        };
        if n % 2 == 0 {
            let completed = store
                .complete_idempotency(&key, &owner, &response, Duration::from_secs(30))
                .await
                .expect("completed");
            assert!(completed, "the owner completes its own claim");
        }
    }
    // One log whose rule remembers an hour must outlive the minute logs.
    store
        .record_send(&SendLog::Client(subject(9_999)), &hour)
        .await
        .expect("counted");
    assert_eq!(store.len(), 201);
    tokio::time::sleep(Duration::from_secs(60) + SWEEP_INTERVAL * 2).await;
    assert_eq!(
        store.len(),
        1,
        "expired send logs and idempotency entries are forgotten; the hour log stays"
    );
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(store.is_empty(), "{} entries left", store.len());
}

#[tokio::test(start_paused = true)]
async fn prefix_counts_are_swept_once_their_window_and_suspension_are_over() {
    use crate::abuse::PrefixRule;
    let store = MemoryStore::new();
    let rule = PrefixRule {
        window: Duration::from_secs(60),
        judge_after: Duration::ZERO,
        min_sends: 1,
        min_approved_percent: 50,
        suspension: Duration::from_secs(600),
        min_sources: 1,
        trust_for: Duration::ZERO,
    };
    let settings = crate::abuse::PumpingGuardSettings {
        mode: crate::abuse::GuardMode::Enforce,
        prefix_digits: 5,
        window: rule.window,
        min_sends: rule.min_sends,
        min_approved_percent: rule.min_approved_percent,
        suspension: rule.suspension,
        min_sources: rule.min_sources,
        trust_for: rule.trust_for,
    };
    // 30 ranges (+1 415 20 … +1 415 49), spread over the shards.
    let prefixes: Vec<DestinationPrefix> = (20..50)
        .map(|exchange| {
            let phone =
                crate::domain::PhoneNumber::parse(&format!("+1415{exchange}00001")).expect("valid");
            settings.prefix_of(&phone)
        })
        .collect();
    let subject = crate::domain::HmacSecret::new(b"k")
        .subject_key(&crate::domain::PhoneNumber::parse("+14155550100").expect("valid"));
    let sender = crate::store::PrefixSender {
        subject: &subject,
        source: crate::abuse::SendSource::ANONYMOUS,
        sent_at_ms: None,
    };
    for prefix in &prefixes {
        store
            .count_prefix_send(prefix, &rule, sender)
            .await
            .expect("counted");
    }
    // One prefix is judged and suspended (its one send is old enough at once).
    let suspended = &prefixes[0];
    let decision = store
        .count_prefix_send(suspended, &rule, sender)
        .await
        .expect("answers");
    assert!(
        matches!(
            decision,
            PrefixDecision::Suspended {
                verdict: Some(_),
                ..
            }
        ),
        "{decision:?}"
    );
    assert_eq!(store.len(), 30);
    tokio::time::sleep(rule.window + SWEEP_INTERVAL * 2).await;
    assert_eq!(store.len(), 1, "only the suspended prefix is kept");
    assert_eq!(store.suspended_prefixes(None).await.expect("answers"), 1);
    tokio::time::sleep(rule.suspension).await;
    assert!(store.is_empty(), "{} entries left", store.len());
    assert_eq!(store.suspended_prefixes(None).await.expect("answers"), 0);
}
