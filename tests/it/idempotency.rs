//! Idempotent SendOtp as the README promises it: a retry while the first
//! call is still sending waits for it and gets its response; a key outlives
//! neither its code nor a failed send.

use std::time::Duration;

use crate::common::{
    StoreKind, TestApp,
    binary::ServiceProcess,
    connect,
    sms_standins::{pairs, requests, standin_answering, textbee_vars},
    unique_phone, wait_for,
};
use otp_service::proto::{SendOtpRequest, VerifyOtpResult, otp_service_client::OtpServiceClient};
use wiremock::ResponseTemplate;

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

/// The same promise on the binary, where the server's log shows that it
/// held the retry while the first call was sending (the stand-in answers
/// 3 s after it got the request): one SMS, and the retry gets the first
/// call's response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_holds_a_retry_while_the_first_call_sends() {
    const STANDIN_DELAY: Duration = Duration::from_secs(3);
    let textbee = standin_answering(
        ResponseTemplate::new(201)
            .set_body_json(serde_json::json!({"data": {"success": true, "smsBatchId": "b-1"}}))
            .set_delay(STANDIN_DELAY),
    )
    .await;
    let mut vars = textbee_vars(&textbee.uri());
    vars.push(("RUST_LOG".into(), "info,otp_service::otp=debug".into()));
    let service = ServiceProcess::start(&pairs(&vars));
    let request = keyed("+14155550182", "order-7731");
    let spawn_send = || {
        let request = request.clone();
        let addr = service.addr;
        tokio::spawn(async move {
            let mut client = OtpServiceClient::new(connect(addr).await);
            client.send_otp(request).await
        })
    };
    let first = spawn_send();
    // The first send of a fresh process may wait for the numbering plan.
    wait_for(
        "the first call's SMS reached the provider",
        Duration::from_secs(10),
        || async { (requests(&textbee).await.len() == 1).then_some(()) },
    )
    .await;
    let retry = spawn_send();
    service.wait_for_stderr("waiting for its answer", STANDIN_DELAY, |_| Some(()));
    assert!(
        !first.is_finished(),
        "the retry was held while the first call was sending"
    );

    let first = first
        .await
        .expect("task ran")
        .expect("first send")
        .into_inner();
    let retried = retry
        .await
        .expect("task ran")
        .expect("the retry succeeds")
        .into_inner();
    assert_eq!(retried, first, "the first call's response, unchanged");
    assert_eq!(requests(&textbee).await.len(), 1, "one SMS");
}
