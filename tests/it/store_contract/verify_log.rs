//! The verify limits' logs: the same sliding log as sends
//! (`record_send.lua`, `sliding_log.rs`), under keys of their own, so a
//! client's guesses never spend its sends or another client's guesses.

use std::time::Duration;

use otp_service::{
    abuse::{LimitKind, RateRule},
    store::{CheckOutcome, SendDecision, SendLog, VerifyOutcome, VerifyPlan},
};

use super::{LIFETIME, MAX_ATTEMPTS, digest, new_subject, pending};
use crate::common::{StoreKind, TestStore};

fn rule(kind: LimitKind, limit: u32) -> [RateRule; 1] {
    [RateRule {
        kind,
        limit,
        period: Duration::from_secs(600),
    }]
}

async fn admits(store: &TestStore, log: &SendLog, rules: &[RateRule]) -> bool {
    match store
        .record_send(log, rules)
        .await
        .expect("record_send answers")
    {
        SendDecision::Admitted { .. } => true,
        SendDecision::Refused { violations } => {
            assert_eq!(violations.len(), 1, "{violations:?}");
            assert_eq!(violations[0].kind, rules[0].kind);
            assert!(violations[0].retry_after > Duration::from_secs(590));
            false
        }
    }
}

async fn each_verify_log_is_counted_on_its_own(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let client = new_subject();
    let verifies = SendLog::ClientVerifies(client);
    let client_rules = rule(LimitKind::ClientVerifyWindow, 3);
    for _ in 0..3 {
        assert!(admits(&store, &verifies, &client_rules).await);
    }
    assert!(
        !admits(&store, &verifies, &client_rules).await,
        "the fourth guess in the window is refused"
    );

    // Keyed apart: the same client's sends, another client's guesses, a
    // caller's (a SAN may hold braces) and the anonymous bucket.
    let sends = rule(LimitKind::ClientWindow, 1);
    assert!(admits(&store, &SendLog::Client(client), &sends).await);
    let other = SendLog::ClientVerifies(new_subject());
    assert!(admits(&store, &other, &client_rules).await);
    let caller = SendLog::CallerVerifies("spiffe://{a}/b".to_owned());
    let caller_rules = rule(LimitKind::CallerVerifyWindow, 1);
    assert!(admits(&store, &caller, &caller_rules).await);
    assert!(!admits(&store, &caller, &caller_rules).await);
    assert!(
        admits(
            &store,
            &SendLog::Caller("spiffe://{a}/b".to_owned()),
            &sends
        )
        .await
    );
    let anonymous = rule(LimitKind::AnonymousVerifyWindow, 1);
    assert!(admits(&store, &SendLog::AnonymousVerifies, &anonymous).await);
    assert!(!admits(&store, &SendLog::AnonymousVerifies, &anonymous).await);
    assert!(
        admits(
            &store,
            &SendLog::Anonymous,
            &rule(LimitKind::AnonymousWindow, 1)
        )
        .await,
        "anonymous sends are not anonymous guesses"
    );
    let global = rule(LimitKind::GlobalVerify, 1);
    assert!(admits(&store, &SendLog::GlobalVerifies, &global).await);
    assert!(!admits(&store, &SendLog::GlobalVerifies, &global).await);
    assert!(
        admits(&store, &SendLog::Global, &rule(LimitKind::Global, 1)).await,
        "the service's sends are not its guesses"
    );
}

/// `count_verify_and_consume` (one script on one Redis server or Sentinel,
/// steps elsewhere): counted in every log, then checked; a log that refuses
/// leaves nothing counted in the others and the code uncompared.
async fn a_guess_is_counted_then_checked_and_a_refusal_touches_nothing(kind: StoreKind) {
    let store = TestStore::open(kind).await;
    let subject = new_subject();
    store
        .put_code(&subject, &digest(1), LIFETIME, MAX_ATTEMPTS)
        .await
        .expect("put_code answers");
    let client = SendLog::ClientVerifies(new_subject());
    let caller = SendLog::CallerVerifies(format!("caller-{}", new_subject()));
    let logs = [
        (
            client.clone(),
            rule(LimitKind::ClientVerifyWindow, 2).to_vec(),
        ),
        (caller, rule(LimitKind::CallerVerifyWindow, 1).to_vec()),
    ];
    let check = |candidate: u8| {
        let candidates = [digest(candidate)];
        let store = &store;
        let logs = &logs;
        let subject = &subject;
        async move {
            store
                .count_verify_and_consume(VerifyPlan {
                    logs,
                    subject,
                    candidates: &candidates,
                    max_attempts: MAX_ATTEMPTS,
                })
                .await
                .expect("count_verify_and_consume answers")
        }
    };
    assert_eq!(
        check(2).await,
        CheckOutcome::Checked(VerifyOutcome::Incorrect {
            attempts_remaining: MAX_ATTEMPTS - 1
        })
    );
    let CheckOutcome::Refused { violations } = check(1).await else {
        panic!("the caller's log is full");
    };
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, LimitKind::CallerVerifyWindow);
    assert!(
        pending(&store, &subject).await.is_some(),
        "the right code was not compared, so not consumed"
    );
    let client_rules = rule(LimitKind::ClientVerifyWindow, 2);
    assert!(
        admits(&store, &client, &client_rules).await,
        "the refused guess was taken back from the client's log"
    );
    assert!(!admits(&store, &client, &client_rules).await);

    let fresh = [(
        SendLog::ClientVerifies(new_subject()),
        rule(LimitKind::ClientVerifyWindow, 1).to_vec(),
    )];
    let approved = store
        .count_verify_and_consume(VerifyPlan {
            logs: &fresh,
            subject: &subject,
            candidates: &[digest(1)],
            max_attempts: MAX_ATTEMPTS,
        })
        .await
        .expect("answers");
    assert_eq!(
        approved,
        CheckOutcome::Checked(VerifyOutcome::Approved { sent_at_ms: None })
    );
}

for_each_store!(
    each_verify_log_is_counted_on_its_own,
    a_guess_is_counted_then_checked_and_a_refusal_touches_nothing,
);
