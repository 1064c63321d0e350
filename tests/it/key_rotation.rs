//! HMAC key rotation as a rolling deploy: two replicas on one Redis, one
//! still on the old secret, one on the new secret with the old as previous.
//! Codes sent on the old secret verify on the new one; spent guesses, locks,
//! send limits and idempotency records carry over; the two-step rotation
//! verifies in both directions.

use crate::common::{RedisServer, TestApp, unique_phone};
use otp_service::proto::{SendOtpRequest, VerifyOtpResult};
use tonic::Code;

const OLD: &str = "old-secret-old-secret-old-secret-0001";
const NEW: &str = "new-secret-new-secret-new-secret-0002";

/// The replica not yet rolled, and the one on the new configuration.
async fn rolling_deploy(redis: &RedisServer, extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    let mut old_vars = vec![("OTP_HMAC_SECRET", OLD)];
    old_vars.extend_from_slice(extra);
    let mut new_vars = vec![("OTP_HMAC_SECRET", NEW), ("OTP_HMAC_PREVIOUS_SECRETS", OLD)];
    new_vars.extend_from_slice(extra);
    (
        TestApp::builder().redis(redis).env(&old_vars).spawn().await,
        TestApp::builder().redis(redis).env(&new_vars).spawn().await,
    )
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_sent_on_the_old_secret_verifies_on_the_new_one_once() {
    let redis = RedisServer::start().await;
    let (old, new) = rolling_deploy(&redis, &[]).await;
    let phone = unique_phone();
    let code = old.send_and_read_code(&phone).await;

    assert!(new.time_left(&phone).await.expect("TimeLeft").pending);
    let verified = new.verify(&phone, &code).await.expect("VerifyOtp");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
    let again = old.verify(&phone, &code).await.expect("VerifyOtp");
    assert_eq!(
        again.result(),
        VerifyOtpResult::Expired,
        "used up everywhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_guesses_and_the_lock_carry_over() {
    let redis = RedisServer::start().await;
    let (old, new) = rolling_deploy(&redis, &[("OTP_MAX_ATTEMPTS", "3")]).await;
    let phone = unique_phone();
    let code = old.send_and_read_code(&phone).await;

    let first = old.verify(&phone, wrong(&code)).await.expect("VerifyOtp");
    assert_eq!(first.attempts_remaining, 2);
    let second = new.verify(&phone, wrong(&code)).await.expect("VerifyOtp");
    assert_eq!(
        second.attempts_remaining, 1,
        "the new replica sees the spent guess"
    );
    let third = old.verify(&phone, wrong(&code)).await.expect("VerifyOtp");
    assert_eq!(third.attempts_remaining, 0);
    let locked = new.verify(&phone, &code).await.expect("VerifyOtp");
    assert_eq!(
        locked.result(),
        VerifyOtpResult::Locked,
        "locked on the new key too"
    );
    let refused = new
        .send(&phone)
        .await
        .expect_err("no new code while locked");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_limits_and_idempotency_carry_over() {
    let redis = RedisServer::start().await;
    let (old, new) = rolling_deploy(&redis, &[]).await;
    let phone = unique_phone();
    old.send(&phone).await.expect("first send");
    let cooldown = new
        .send(&phone)
        .await
        .expect_err("within the resend cooldown");
    assert_eq!(cooldown.code(), Code::ResourceExhausted, "{cooldown:?}");

    let other = unique_phone();
    let request = SendOtpRequest {
        phone_number: other.clone(),
        client_key: "tenant-7".into(),
        idempotency_key: format!("signup-{other}"),
        ..Default::default()
    };
    let first = old.send_request(request.clone()).await.expect("sent");
    let retried = new.send_request(request).await.expect("idempotent retry");
    assert_eq!(first, retried);
    assert_eq!(old.sms.count() + new.sms.count(), 2, "one SMS per phone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_step_rotation_verifies_in_both_directions() {
    // Step one: every replica learns the new secret before any signs with it.
    let redis = RedisServer::start().await;
    let learning = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_HMAC_SECRET", OLD),
            ("OTP_HMAC_PREVIOUS_SECRETS", &format!("{NEW},{OLD}")),
        ])
        .spawn()
        .await;
    let signing = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_HMAC_SECRET", NEW), ("OTP_HMAC_PREVIOUS_SECRETS", OLD)])
        .spawn()
        .await;
    let phone = unique_phone();
    let code = signing.send_and_read_code(&phone).await;
    let verified = learning.verify(&phone, &code).await.expect("VerifyOtp");
    assert_eq!(
        verified.result(),
        VerifyOtpResult::Approved,
        "new code, step-one replica"
    );
    let phone = unique_phone();
    let code = learning.send_and_read_code(&phone).await;
    let verified = signing.verify(&phone, &code).await.expect("VerifyOtp");
    assert_eq!(
        verified.result(),
        VerifyOtpResult::Approved,
        "old code, step-two replica"
    );
}
