//! A code whose SMS failed is removed (README, security model) — also when
//! the caller hung up mid-send, and never at the cost of a newer code that
//! was sent to the same number meanwhile.

use std::time::Duration;

use crate::common::{
    StoreKind, TestApp,
    binary::ServiceProcess,
    connect,
    sms_standins::{pairs, requests, standin_answering, textbee_vars},
    unique_phone, wait_for,
};
use otp_service::proto::{
    SendOtpRequest, TimeLeftRequest, VerifyOtpResult, otp_service_client::OtpServiceClient,
};
use tonic::Code;
use wiremock::ResponseTemplate;

/// How long the provider stand-in of the binary-level tests takes to answer.
const STANDIN_DELAY: Duration = Duration::from_secs(3);

/// The server's line for a caller that hung up mid-send.
const HUNG_UP: &str = "caller hung up mid-send";

fn send_request(phone: &str) -> SendOtpRequest {
    SendOtpRequest {
        phone_number: phone.into(),
        ..Default::default()
    }
}

async fn code_is_rolled_back_when_the_caller_hung_up_mid_send(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let gate = app.sms.hold_sends();
    let phone = unique_phone();
    let mut client = app.client();
    let request = send_request(&phone);
    let caller = tokio::spawn(async move { client.send_otp(request).await });
    wait_for(
        "the send reached the gateway",
        Duration::from_secs(5),
        || async { (app.sms.in_flight() == 1).then_some(()) },
    )
    .await;
    assert!(
        app.time_left(&phone).await.expect("answers").pending,
        "the code is stored before it is texted"
    );
    // The caller hangs up (its stream is reset); then the SMS fails.
    caller.abort();
    let _ = caller.await;
    app.sms.fail_sends(true);
    gate.add_permits(1);
    wait_for("the gateway call ended", Duration::from_secs(5), || async {
        (app.sms.in_flight() == 0).then_some(())
    })
    .await;
    wait_for(
        "the undelivered code is removed",
        Duration::from_secs(5),
        || async { (!app.time_left(&phone).await.expect("answers").pending).then_some(()) },
    )
    .await;
    assert_eq!(app.sms.count(), 0);
}

async fn a_hung_up_caller_still_gets_its_code_delivered_and_kept(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let gate = app.sms.hold_sends();
    let phone = unique_phone();
    let mut client = app.client();
    let request = send_request(&phone);
    let caller = tokio::spawn(async move { client.send_otp(request).await });
    wait_for(
        "the send reached the gateway",
        Duration::from_secs(5),
        || async { (app.sms.in_flight() == 1).then_some(()) },
    )
    .await;
    caller.abort();
    let _ = caller.await;
    gate.add_permits(1);
    let code = wait_for("the SMS went out", Duration::from_secs(5), || async {
        app.sms.last_code_for(&phone)
    })
    .await;
    let verified = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn rollback_of_a_failed_send_keeps_a_newer_code(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")])
        .spawn()
        .await;
    let gate = app.sms.hold_sends();
    let phone = unique_phone();
    let spawn_send = || {
        let mut client = app.client();
        let request = send_request(&phone);
        tokio::spawn(async move { client.send_otp(request).await })
    };
    let older = spawn_send();
    wait_for(
        "the first send is at the gateway",
        Duration::from_secs(5),
        || async { (app.sms.in_flight() == 1).then_some(()) },
    )
    .await;
    // The second send replaces the first code in the store, then waits
    // behind the first at the gateway (the gate lets sends through in order).
    let newer = spawn_send();
    wait_for(
        "the second send is at the gateway",
        Duration::from_secs(5),
        || async { (app.sms.in_flight() == 2).then_some(()) },
    )
    .await;
    app.sms.fail_sends(true);
    gate.add_permits(1);
    let failed = older.await.expect("task ran").expect_err("its SMS failed");
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    assert!(
        app.time_left(&phone).await.expect("answers").pending,
        "the failed send's rollback removed the newer code"
    );
    app.sms.fail_sends(false);
    gate.add_permits(1);
    newer
        .await
        .expect("task ran")
        .expect("the newer send succeeds");
    let code = app
        .sms
        .last_code_for(&phone)
        .expect("the newer code was texted");
    let verified = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
    assert_eq!(app.sms.count(), 1);
}

for_each_store!(
    code_is_rolled_back_when_the_caller_hung_up_mid_send,
    a_hung_up_caller_still_gets_its_code_delivered_and_kept,
    rollback_of_a_failed_send_keeps_a_newer_code,
);

/// The same promise on the binary, where the server's log shows the order:
/// the server saw the caller hang up while the SMS was still in flight (the
/// stand-in answers 3 s after it got the request), and only then did the
/// provider refuse and the code go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sees_the_hang_up_before_the_failed_sms_rolls_the_code_back() {
    let textbee = standin_answering(
        ResponseTemplate::new(400)
            .set_body_json(serde_json::json!({"success": false, "error": "Invalid recipients"}))
            .set_delay(STANDIN_DELAY),
    )
    .await;
    let vars = textbee_vars(&textbee.uri());
    let service = ServiceProcess::start(&pairs(&vars));
    let phone = "+14155550181";
    let mut caller = OtpServiceClient::new(connect(service.addr).await);
    let sending = tokio::spawn(async move { caller.send_otp(send_request(phone)).await });
    // The first send of a fresh process may wait for the numbering plan.
    wait_for(
        "the SMS reached the provider",
        Duration::from_secs(10),
        || async { (requests(&textbee).await.len() == 1).then_some(()) },
    )
    .await;

    sending.abort();
    let _ = sending.await;
    service.wait_for_stderr(HUNG_UP, STANDIN_DELAY, |_| Some(()));
    let rejected = "SMS gateway rejected the message";
    service.wait_for_stderr(rejected, STANDIN_DELAY * 2, |_| Some(()));
    let lines = service.stderr();
    let at = |what: &str| lines.iter().position(|line| line.contains(what));
    assert!(at(HUNG_UP) < at(rejected), "hang-up seen first: {lines:#?}");

    let mut client = OtpServiceClient::new(connect(service.addr).await);
    let left = client
        .time_left(TimeLeftRequest {
            phone_number: phone.into(),
        })
        .await
        .expect("TimeLeft answers")
        .into_inner();
    assert!(!left.pending, "the undelivered code is gone");
    assert_eq!(requests(&textbee).await.len(), 1, "one try: a 400 is final");
}
