//! SendOtp: a code is made, stored as a digest, texted, and replaced by a resend.

use crate::common::{StoreKind, TestApp, assert_bad_request, unique_phone};
use otp_service::proto::VerifyOtpResult;
use tonic::Code;

async fn sent_code_round_trips_to_approved(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let phone = unique_phone();

    let sent = app.send(&phone).await.expect("SendOtp succeeds");
    assert_eq!(sent.expires_in_seconds, 120);
    assert_eq!(sent.code_length, 6);
    assert_eq!(sent.attempts_remaining, 5);
    assert!(
        sent.masked_phone_number.starts_with("+1******"),
        "{}",
        sent.masked_phone_number
    );

    let sms = app.sms.sent();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to_e164, phone);
    let code = app.sms.last_code_for(&phone).expect("code in SMS");
    assert_eq!(code.len(), 6);
    assert!(sms[0].text.contains("expires in 2 min"), "{}", sms[0].text);

    let verified = app.verify(&phone, &code).await.expect("VerifyOtp answers");
    assert!(verified.valid);
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn configured_code_length_and_ttl_are_used(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_CODE_LENGTH", "8"), ("OTP_TTL_SECONDS", "300")])
        .spawn()
        .await;
    let phone = unique_phone();
    let sent = app.send(&phone).await.expect("SendOtp succeeds");
    assert_eq!(sent.code_length, 8);
    assert_eq!(sent.expires_in_seconds, 300);
    let code = app.sms.last_code_for(&phone).expect("code in SMS");
    assert_eq!(code.len(), 8);
    let left = app.time_left(&phone).await.expect("TimeLeft answers");
    assert!(left.pending);
    assert!(
        (299..=300).contains(&left.seconds_left),
        "{}",
        left.seconds_left
    );
}

async fn resend_replaces_the_pending_code(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")])
        .spawn()
        .await;
    let phone = unique_phone();
    let first = app.send_and_read_code(&phone).await;
    let mut second = app.send_and_read_code(&phone).await;
    // One in a million the two codes are equal; send again so the test means something.
    while second == first {
        second = app.send_and_read_code(&phone).await;
    }
    let old = app.verify(&phone, &first).await.expect("answers");
    assert_eq!(
        old.result(),
        VerifyOtpResult::Incorrect,
        "the replaced code stops working"
    );
    let new = app.verify(&phone, &second).await.expect("answers");
    assert_eq!(new.result(), VerifyOtpResult::Approved);
}

async fn spellings_of_one_number_share_one_code(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    app.send("+91 12345 67890").await.expect("sent");
    let code = app
        .sms
        .last_code_for("+911234567890")
        .expect("recorded under E.164");
    assert_eq!(app.sms.sent()[0].to_e164, "+911234567890");
    let left = app.time_left("+91-1234-567890").await.expect("answers");
    assert!(left.pending);
    let verified = app.verify("+91-1234-567890", &code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn gateway_failure_is_unavailable_and_leaves_no_pending_code(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")])
        .spawn()
        .await;
    let phone = unique_phone();
    app.sms.fail_sends(true);
    let status = app.send(&phone).await.expect_err("gateway down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let left = app.time_left(&phone).await.expect("answers");
    assert!(
        !left.pending,
        "no code the user never received may stay pending"
    );
    assert_eq!(left.seconds_left, 0);
    let verify = app.verify(&phone, "123456").await.expect("answers");
    assert_eq!(verify.result(), VerifyOtpResult::Expired);

    app.sms.fail_sends(false);
    let code = app.send_and_read_code(&phone).await;
    let verified = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(
        verified.result(),
        VerifyOtpResult::Approved,
        "works again once the gateway is back"
    );
}

async fn numbers_without_a_region_are_served_when_no_country_rule_applies(store: StoreKind) {
    // +882 (international networks) parses as E.164 but has no region; only
    // a country rule may refuse it (see limits.rs, denied_countries...).
    let app = TestApp::builder().store(store).spawn().await;
    let phone = "+882 1234 5678";
    let code = app.send_and_read_code(phone).await;
    let verified = app.verify("+88212345678", &code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn failed_resend_keeps_nothing_pending(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")])
        .spawn()
        .await;
    let phone = unique_phone();
    let delivered = app.send_and_read_code(&phone).await;
    app.sms.fail_sends(true);
    app.send(&phone).await.expect_err("gateway down");
    // The resend replaced the delivered code before it failed, and its rollback
    // removed the replacement: the user must ask again.
    let verify = app.verify(&phone, &delivered).await.expect("answers");
    assert_eq!(verify.result(), VerifyOtpResult::Expired);
    assert!(!app.time_left(&phone).await.expect("answers").pending);
}

async fn bad_phone_numbers_are_invalid_argument_naming_the_field(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    for bad in [
        "",
        "4155550123",
        "+",
        "+1",
        "not a number",
        "+1 415 CALL NOW",
        "+999999",
    ] {
        let status = app.send(bad).await.expect_err(bad);
        assert_bad_request(&status, "phone_number");
        assert!(
            status.message().contains("phone_number"),
            "{}",
            status.message()
        );
    }
    assert_eq!(app.sms.count(), 0, "nothing was texted");
}

for_each_store!(
    sent_code_round_trips_to_approved,
    configured_code_length_and_ttl_are_used,
    resend_replaces_the_pending_code,
    spellings_of_one_number_share_one_code,
    gateway_failure_is_unavailable_and_leaves_no_pending_code,
    failed_resend_keeps_nothing_pending,
    numbers_without_a_region_are_served_when_no_country_rule_applies,
    bad_phone_numbers_are_invalid_argument_naming_the_field,
);
