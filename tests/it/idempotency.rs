//! Idempotent SendOtp as the README promises it: a retry while the first
//! call is still sending waits for it and gets its response; a key outlives
//! neither its code nor a failed send.

use std::time::Duration;

use crate::common::{StoreKind, TestApp, unique_phone, wait_for};
use otp_service::proto::{SendOtpRequest, VerifyOtpResult};

fn keyed(phone: &str, key: &str) -> SendOtpRequest {
    SendOtpRequest {
        phone_number: phone.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

async fn a_retry_while_the_first_call_is_sending_gets_its_response(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let gate = app.sms.hold_sends();
    let phone = unique_phone();
    let key = format!("in-flight-{}", &phone[1..]);
    let spawn_send = || {
        let mut client = app.client();
        let request = keyed(&phone, &key);
        tokio::spawn(async move { client.send_otp(request).await })
    };
    let first = spawn_send();
    wait_for(
        "the first call is sending",
        Duration::from_secs(5),
        || async { (app.sms.in_flight() == 1).then_some(()) },
    )
    .await;
    let retry = spawn_send();
    // The retry waits: it neither sends (a second SMS would queue at the
    // gate) nor answers while the first is still sending.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.sms.in_flight(), 1, "the retry did not send");
    assert!(!retry.is_finished(), "the retry waits for the first call");
    gate.add_permits(1);
    let first = first
        .await
        .expect("task ran")
        .expect("first send")
        .into_inner();
    let retried = tokio::time::timeout(Duration::from_secs(5), retry)
        .await
        .expect("the retry answers once the first is done")
        .expect("task ran")
        .expect("the retry succeeds")
        .into_inner();
    assert_eq!(retried, first, "the first call's response, unchanged");
    assert_eq!(app.sms.count(), 1, "one SMS");
}

async fn a_key_reused_after_its_code_expired_sends_a_new_code(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_TTL_SECONDS", "1"),
            ("OTP_GRACE_SECONDS", "0"),
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
        ])
        .spawn()
        .await;
    let phone = unique_phone();
    let key = format!("reused-{}", &phone[1..]);
    app.send_request(keyed(&phone, &key)).await.expect("first");
    let first_code = app.sms.last_code_for(&phone).expect("texted");
    // Until the key's entry (which lives as long as the code) is gone, a
    // retry gets the first response and no SMS; then the key sends anew.
    wait_for(
        "the key sends a new code once its code's lifetime is over",
        Duration::from_secs(5),
        || async {
            let again = app.send_request(keyed(&phone, &key)).await.expect("sends");
            assert_eq!(again.expires_in_seconds, 1);
            (app.sms.count() == 2).then_some(())
        },
    )
    .await;
    assert_eq!(app.sms.count(), 2, "one new SMS");
    let new_code = app.sms.last_code_for(&phone).expect("texted");
    // Six fresh digits: equal to the first by chance once in 10^6 runs.
    assert_ne!(new_code, first_code, "a new code");
    let old = app.verify(&phone, &first_code).await.expect("answers");
    assert_eq!(
        old.result(),
        VerifyOtpResult::Incorrect,
        "the first code is gone"
    );
    let verified = app.verify(&phone, &new_code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

for_each_store!(
    a_retry_while_the_first_call_is_sending_gets_its_response,
    a_key_reused_after_its_code_expired_sends_a_new_code,
);
