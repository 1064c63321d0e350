//! README, "Errors": `UNAVAILABLE` when "the first call with the same
//! `idempotency_key` outlived its longest possible send".
//!
//! A retry waits for the first call as long as its own replica's longest
//! possible send (`Config::longest_send`), which is also how long a claim
//! lives. On replicas configured alike the first call's claim therefore
//! lapses before the retry gives up, and the retry takes the key over (and
//! meets the resend cooldown); the retry is UNAVAILABLE when the first call
//! runs on a replica whose longest send is longer than the retry's own.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use otp_service::proto::SendOtpRequest;
use tonic::Code;

use crate::common::{RecordingGateway, RedisServer, TestApp, unique_phone, wait_for};

/// The retrying replica's longest possible send (`Config::longest_send`):
/// eight store calls of 100 ms, a 100 ms send deadline, 5 s to spare.
const RETRY_LONGEST_SEND: Duration = Duration::from_millis(8 * 100 + 100 + 5_000);

/// The first call, on a replica with default timeouts (its claim lives
/// 18 s), is held in the gateway; its retry, on a replica whose longest send
/// is 5.9 s, waits that long and is then UNAVAILABLE — without an SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_unavailable_when_the_first_call_outlived_its_longest_send() {
    let redis = RedisServer::start().await;
    let first_sms = RecordingGateway::default();
    let first_replica = Arc::new(
        TestApp::builder()
            .redis(&redis)
            .gateway(first_sms.clone())
            .spawn()
            .await,
    );
    let retry_replica = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_REDIS_TIMEOUT_MS", "100"),
            ("OTP_SMS_CONNECT_TIMEOUT_MS", "100"),
            ("OTP_SMS_SEND_TIMEOUT_MS", "100"),
        ])
        .spawn()
        .await;
    let gate = first_sms.hold_sends();
    let phone = unique_phone();
    let request = SendOtpRequest {
        phone_number: phone.clone(),
        idempotency_key: format!("order-{phone}"),
        ..Default::default()
    };
    let first = {
        let app = Arc::clone(&first_replica);
        let request = request.clone();
        tokio::spawn(async move { app.send_request(request).await })
    };
    wait_for(
        "the first call is sending",
        Duration::from_secs(5),
        || async { (first_sms.in_flight() == 1).then_some(()) },
    )
    .await;

    let retried_at = Instant::now();
    let retry = retry_replica
        .send_request(request)
        .await
        .expect_err("the first call is still sending");
    let waited = retried_at.elapsed();
    assert_eq!(retry.code(), Code::Unavailable, "{retry:?}");
    assert!(
        waited >= RETRY_LONGEST_SEND,
        "gave up after {waited:?}, before its longest send"
    );
    assert!(
        waited < RETRY_LONGEST_SEND + Duration::from_secs(3),
        "waited {waited:?}, well past its longest send"
    );
    assert_eq!(retry_replica.sms.count(), 0, "the retry texted nothing");

    gate.add_permits(1);
    first.await.expect("task").expect("the first call sends");
    assert_eq!(first_sms.count(), 1, "one SMS");
}
