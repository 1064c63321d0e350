//! A code whose SMS failed is removed (README, security model) — also when
//! the caller hung up mid-send, and never at the cost of a newer code that
//! was sent to the same number meanwhile.

use std::time::Duration;

use crate::common::{StoreKind, TestApp, unique_phone, wait_for};
use otp_service::proto::{SendOtpRequest, VerifyOtpResult};
use tonic::Code;

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
