//! Idempotency claims carry an owner token: a call whose claim expired
//! (and was claimed again by a retry) can neither complete nor release the
//! retry's claim. Proven on the store trait directly (memory and Redis) and
//! through the whole SendOtp flow.

mod common;

use std::{sync::Arc, time::Duration};

use common::{RedisServer, spawn_app_on_redis, unique_phone, wait_for};
use deadpool_redis::redis::{self, AsyncCommands};
use otp_service::{
    domain::{HmacSecret, IdempotencyKey, PhoneNumber},
    proto::SendOtpRequest,
    store::{
        ClaimOwner, IdempotencyClaim, MemoryStore, OtpStore, RecordedSend, RedisSettings,
        RedisStore, RedisTopology, RedisUrl,
    },
};

const RESPONSE: RecordedSend = RecordedSend {
    expires_in_secs: 120,
    code_length: 6,
    attempts_remaining: 5,
    resend_after_secs: 30,
};

/// Claims `key` until a claim succeeds (the previous one has expired).
async fn claim_after_expiry(store: &dyn OtpStore, key: &str) -> ClaimOwner {
    let (key, subject) = keys(key);
    wait_for(
        "the first claim expires",
        Duration::from_secs(5),
        || async {
            match store
                .claim_idempotency(&key, &subject, Duration::from_secs(60))
                .await
                .expect("store answers")
            {
                IdempotencyClaim::Claimed { owner } => Some(owner),
                _ => None,
            }
        },
    )
    .await
}

fn keys(
    raw: &str,
) -> (
    otp_service::domain::SubjectKey,
    otp_service::domain::SubjectKey,
) {
    let secret = HmacSecret::new(b"owner-token-test-secret");
    let key = IdempotencyKey::parse(raw)
        .expect("valid key")
        .expect("non-empty key");
    let phone = PhoneNumber::parse("+14155550100").expect("valid phone");
    (secret.idempotency_subject(&key), secret.subject_key(&phone))
}

async fn an_expired_claim_cannot_settle_its_successor(store: &dyn OtpStore) {
    let (key, subject) = keys("checkout-1");
    let IdempotencyClaim::Claimed { owner: first } = store
        .claim_idempotency(&key, &subject, Duration::from_millis(50))
        .await
        .expect("store answers")
    else {
        panic!("a free key is claimed");
    };
    let second = claim_after_expiry(store, "checkout-1").await;
    assert_ne!(first, second);

    assert!(
        !store
            .complete_idempotency(&key, &first, &RESPONSE, Duration::from_secs(60))
            .await
            .expect("store answers"),
        "the expired holder cannot complete the new claim"
    );
    assert!(
        !store
            .release_idempotency(&key, &first)
            .await
            .expect("store answers"),
        "the expired holder cannot release the new claim"
    );
    let third = store
        .claim_idempotency(&key, &subject, Duration::from_secs(60))
        .await
        .expect("store answers");
    assert_eq!(third, IdempotencyClaim::InProgress, "the new claim stands");

    assert!(
        store
            .complete_idempotency(&key, &second, &RESPONSE, Duration::from_secs(60))
            .await
            .expect("store answers")
    );
    assert!(
        !store
            .release_idempotency(&key, &second)
            .await
            .expect("store answers"),
        "a completed record is never released"
    );
    let retry = store
        .claim_idempotency(&key, &subject, Duration::from_secs(60))
        .await
        .expect("store answers");
    assert_eq!(retry, IdempotencyClaim::Completed(RESPONSE));
}

#[tokio::test]
async fn memory_store_refuses_settling_by_an_expired_owner() {
    an_expired_claim_cannot_settle_its_successor(&MemoryStore::new()).await;
}

#[tokio::test]
async fn redis_store_refuses_settling_by_an_expired_owner() {
    let redis = RedisServer::start().await;
    let store = RedisStore::new(&RedisSettings {
        topology: RedisTopology::Single(RedisUrl::parse(&redis.url()).expect("valid URL")),
        prefix: "owner-test".into(),
        pool_size: 2,
        timeout: Duration::from_secs(5),
    })
    .expect("store builds");
    an_expired_claim_cannot_settle_its_successor(&store).await;
}

/// Through the flow: call A's claim lapses while its SMS is stuck; call B
/// claims the key again and sends; A then fails and releases — which must
/// not free B's claim, or a third call C would send a second SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_claim_lapsed_does_not_free_the_next_calls_claim() {
    let redis = RedisServer::start().await;
    let app = Arc::new(spawn_app_on_redis(&redis, &[("OTP_RESEND_COOLDOWN_SECONDS", "0")]).await);
    let gate = app.sms.hold_sends();
    let phone = unique_phone();
    let request = SendOtpRequest {
        phone_number: phone.clone(),
        idempotency_key: format!("order-{phone}"),
        ..Default::default()
    };
    let send = |request: SendOtpRequest| {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.send_request(request).await })
    };

    let call_a = send(request.clone());
    wait_for("A is in the gateway", Duration::from_secs(10), || async {
        (app.sms.in_flight() == 1).then_some(())
    })
    .await;
    expire_every_idempotency_record(&redis).await;
    let call_b = send(request.clone());
    wait_for("B is in the gateway", Duration::from_secs(10), || async {
        (app.sms.in_flight() == 2).then_some(())
    })
    .await;

    app.sms.fail_sends(true);
    gate.add_permits(1); // the semaphore is fair: A goes first
    let a = call_a.await.expect("task").expect_err("A's SMS failed");
    assert_eq!(a.code(), tonic::Code::Unavailable, "{a:?}");

    app.sms.fail_sends(false);
    let call_c = send(request.clone());
    // Were B's claim freed by A, C would claim it and enter the gateway too;
    // two permits let such a second SMS through.
    gate.add_permits(2);
    let b = call_b.await.expect("task").expect("B sends");
    let c = call_c.await.expect("task").expect("C gets B's response");
    assert_eq!(b, c);
    assert_eq!(app.sms.count(), 1, "one SMS for B, none for C");
}

async fn expire_every_idempotency_record(redis: &RedisServer) {
    let client = redis::Client::open(redis.url()).expect("valid URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let keys: Vec<String> = conn.keys("*:idempotency").await.expect("KEYS");
    assert_eq!(keys.len(), 1, "{keys:?}");
    for key in keys {
        let _: i64 = conn.pexpire(&key, 1).await.expect("PEXPIRE");
    }
    wait_for("the record expired", Duration::from_secs(5), || {
        let mut conn = conn.clone();
        async move {
            let left: Vec<String> = conn.keys("*:idempotency").await.ok()?;
            left.is_empty().then_some(())
        }
    })
    .await;
}
