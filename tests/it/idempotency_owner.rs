//! Idempotency claims carry an owner token, through the whole SendOtp flow:
//! a call whose claim expired (and was claimed again by a retry) cannot free
//! the retry's claim. The store-level rule is in
//! `store_contract/idempotency.rs`, on every store.

use std::{sync::Arc, time::Duration};

use deadpool_redis::redis::{self, AsyncCommands};
use otp_service::proto::SendOtpRequest;

use crate::common::{RedisServer, TestApp, unique_phone, wait_for};

/// Through the flow: call A's claim lapses while its SMS is stuck; call B
/// claims the key again and sends; A then fails and releases — which must
/// not free B's claim, or a third call C would send a second SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_claim_lapsed_does_not_free_the_next_calls_claim() {
    let redis = RedisServer::start().await;
    let app = Arc::new(
        TestApp::builder()
            .redis(&redis)
            .env(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")])
            .spawn()
            .await,
    );
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
