//! Abuse protection: send limits, country policy, idempotent sends,
//! CancelOtp and test numbers — on every store.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::{
    StoreKind, TestApp, assert_bad_request,
    concurrent::{RACE_SETTINGS, send_concurrently, wrong_code},
    unique_phone, wait_for,
};
use otp_service::proto::{SendOtpRequest, SendOtpResponse, VerifyOtpResult};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Asserts a RESOURCE_EXHAUSTED refusal by `limit` on `subject`, and returns its RetryInfo delay.
fn assert_refused_by(status: &Status, limit: &str, subject: &str) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    let quota = details.quota_failure().expect("QuotaFailure detail");
    assert!(
        quota
            .violations
            .iter()
            .any(|v| v.subject == subject && v.description.starts_with(limit)),
        "no {limit} violation on {subject}: {quota:?}"
    );
    let info = details.error_info().expect("ErrorInfo detail");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("SEND_LIMIT_REACHED", "otp.v1")
    );
    assert_eq!(
        info.metadata.get("limit").map(String::as_str),
        Some(limit),
        "{info:?}"
    );
    details
        .retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay")
}

/// Asserts a RetryInfo delay of `limit` less at most 3 s (what a loaded
/// machine may spend between the counted send and the refusal).
/// Asserts a `RetryInfo` delay (or `resend_after_seconds`) for a window of
/// `limit` seconds whose oldest counted send was made after `first`: at
/// most the whole window, and short of it by no more than the time spent
/// since (the delay is exact, rounded up to a whole second), however slow
/// the machine.
fn assert_delay_since(delay: Duration, limit: u64, first: Instant) {
    let high = Duration::from_secs(limit);
    let low = high.saturating_sub(first.elapsed());
    assert!(
        (low..=high).contains(&delay),
        "RetryInfo {delay:?}, expected {low:?}..={high:?}"
    );
}

fn request(phone: &str, client_key: &str, idempotency_key: &str) -> SendOtpRequest {
    SendOtpRequest {
        phone_number: phone.into(),
        client_key: client_key.into(),
        idempotency_key: idempotency_key.into(),
        ..Default::default()
    }
}

async fn resend_cooldown_refuses_with_the_cooldown_as_retry_delay(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let phone = unique_phone();
    let first = Instant::now();
    let sent = app.send(&phone).await.expect("first send");
    assert_eq!(
        sent.resend_after_seconds, 30,
        "counted from the send itself"
    );
    let status = app.send(&phone).await.expect_err("within the cooldown");
    let delay = assert_refused_by(&status, "phone_resend_cooldown", "phone_number");
    assert_delay_since(delay, 30, first);
    assert_eq!(app.sms.count(), 1, "no SMS for a refused send");
}

async fn window_cap_refuses_the_send_that_crosses_it(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
            ("OTP_SEND_LIMIT", "3"),
        ])
        .spawn()
        .await;
    let phone = unique_phone();
    let first = Instant::now();
    let mut last = None;
    for _ in 0..3 {
        last = Some(app.send(&phone).await.expect("within the cap"));
    }
    // The window is full after the third: the next send is admitted once
    // the first leaves it, however long the three took.
    let resend_after = last.expect("sent").resend_after_seconds;
    assert_delay_since(Duration::from_secs(resend_after.into()), 600, first);
    let status = app.send(&phone).await.expect_err("fourth in the window");
    let delay = assert_refused_by(&status, "phone_send_window", "phone_number");
    assert_delay_since(delay, 600, first);
    assert_eq!(app.sms.count(), 3);
}

async fn window_slides_and_admits_again(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
            ("OTP_SEND_LIMIT", "1"),
            ("OTP_SEND_WINDOW_SECONDS", "1"),
        ])
        .spawn()
        .await;
    let phone = unique_phone();
    app.send(&phone).await.expect("first");
    let status = app.send(&phone).await.expect_err("window full");
    let delay = assert_refused_by(&status, "phone_send_window", "phone_number");
    assert!(delay <= Duration::from_secs(1), "{delay:?}");
    wait_for(
        "the window admits again",
        Duration::from_secs(5),
        || async { app.send(&phone).await.ok() },
    )
    .await;
    assert_eq!(app.sms.count(), 2);
}

async fn daily_cap_refuses_for_the_rest_of_the_day(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
            ("OTP_SEND_LIMIT", "100"),
            ("OTP_DAILY_SEND_LIMIT", "2"),
        ])
        .spawn()
        .await;
    let phone = unique_phone();
    let first = Instant::now();
    app.send(&phone).await.expect("first");
    app.send(&phone).await.expect("second");
    let status = app.send(&phone).await.expect_err("third today");
    let delay = assert_refused_by(&status, "phone_daily", "phone_number");
    assert_delay_since(delay, 86_400, first);
}

async fn client_cap_counts_sends_across_numbers(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_CLIENT_SEND_LIMIT", "2")])
        .spawn()
        .await;
    let client = format!("203.0.113.{}", std::process::id() % 250);
    let first = Instant::now();
    for _ in 0..2 {
        app.send_request(request(&unique_phone(), &client, ""))
            .await
            .expect("within the cap");
    }
    let status = app
        .send_request(request(&unique_phone(), &client, ""))
        .await
        .expect_err("third number from one client");
    let delay = assert_refused_by(&status, "client_send_window", "client_key");
    assert_delay_since(delay, 600, first);
    app.send_request(request(&unique_phone(), "198.51.100.1", ""))
        .await
        .expect("another client is not affected");
    app.send(&unique_phone())
        .await
        .expect("a send without client_key is not affected");
    assert_eq!(app.sms.count(), 4);
}

async fn sends_without_client_key_share_one_bucket(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_ANONYMOUS_SEND_LIMIT", "3")])
        .spawn()
        .await;
    let first = Instant::now();
    for _ in 0..3 {
        app.send(&unique_phone())
            .await
            .expect("within the shared bucket");
    }
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("a fourth number without client_key");
    let delay = assert_refused_by(&status, "anonymous_send_window", "client_key");
    assert_delay_since(delay, 600, first);
    let info = status.get_error_details();
    let info = info.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "SEND_LIMIT_REACHED");
    assert_eq!(info.metadata["limit"], "anonymous_send_window");
    app.send_request(request(&unique_phone(), "198.51.100.7", ""))
        .await
        .expect("a caller that names its end user has its own bucket");
    assert_eq!(app.sms.count(), 4);
}

async fn global_cap_stops_all_sends(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_GLOBAL_SEND_LIMIT", "3")])
        .spawn()
        .await;
    let first = Instant::now();
    for _ in 0..3 {
        app.send(&unique_phone())
            .await
            .expect("within the global cap");
    }
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("fourth send this minute");
    let delay = assert_refused_by(&status, "global_send_rate", "service");
    assert_delay_since(delay, 60, first);
    assert_eq!(app.sms.count(), 3);
}

async fn concurrent_sends_to_one_number_text_it_once(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let phone = unique_phone();
    let results = send_concurrently(&[&app], request(&phone, "", ""), 200).await;
    let sent = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(status) if status.code() == Code::ResourceExhausted))
        .count();
    let other: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|status| status.code() != Code::ResourceExhausted)
        .collect();
    assert_eq!((sent, refused), (1, 199), "other answers: {other:?}");
    assert_eq!(app.sms.count(), 1);
}

async fn idempotent_sends_text_once_and_answer_identically(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let phone = unique_phone();
    let key = format!("signup-{phone}");
    let results = send_concurrently(&[&app], request(&phone, "", &key), 50).await;
    let responses: Vec<SendOtpResponse> = results
        .into_iter()
        .map(|r| r.expect("every call succeeds"))
        .collect();
    assert!(
        responses.iter().all(|r| *r == responses[0]),
        "{responses:?}"
    );
    assert_eq!(app.sms.count(), 1);
    // A later retry (inside the cooldown) still gets the first response, not a refusal.
    let retry = app
        .send_request(request(&phone, "", &key))
        .await
        .expect("retry");
    assert_eq!(retry, responses[0]);
    assert_eq!(app.sms.count(), 1);
}

async fn idempotency_key_for_another_number_is_invalid(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let key = format!("k-{}", unique_phone());
    app.send_request(request(&unique_phone(), "", &key))
        .await
        .expect("first use");
    let status = app
        .send_request(request(&unique_phone(), "", &key))
        .await
        .expect_err("same key, other phone");
    assert_bad_request(&status, "idempotency_key");
    assert_eq!(app.sms.count(), 1);
}

async fn failed_idempotent_send_can_be_retried(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let phone = unique_phone();
    let key = format!("retry-{phone}");
    app.sms.fail_sends(true);
    let status = app
        .send_request(request(&phone, "", &key))
        .await
        .expect_err("gateway down");
    assert_eq!(status.code(), Code::Unavailable);
    app.sms.fail_sends(false);
    let sent = app
        .send_request(request(&phone, "", &key))
        .await
        .expect("retry sends");
    assert_eq!(sent.expires_in_seconds, 120);
    assert_eq!(
        app.sms.count(),
        1,
        "the failed attempt did not count against the cooldown"
    );
}

async fn bad_request_keys_are_invalid_argument(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let status = app
        .send_request(request(&unique_phone(), "", "has spaces"))
        .await
        .expect_err("bad key");
    assert_bad_request(&status, "idempotency_key");
    let status = app
        .send_request(request(&unique_phone(), &"c".repeat(300), ""))
        .await
        .expect_err("bad client key");
    assert_bad_request(&status, "client_key");
    assert_eq!(app.sms.count(), 0);
}

async fn allowed_countries_refuse_other_regions(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_ALLOWED_COUNTRIES", "IN")])
        .spawn()
        .await;
    let status = app.send(&unique_phone()).await.expect_err("US not allowed");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "COUNTRY_NOT_ALLOWED");
    assert_eq!(info.metadata.get("region").map(String::as_str), Some("US"));
    app.send("+91 98765 43210").await.expect("IN allowed");
    assert_eq!(app.sms.count(), 1);
}

async fn denied_countries_are_refused(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_DENIED_COUNTRIES", "us,gb")])
        .spawn()
        .await;
    let status = app.send(&unique_phone()).await.expect_err("US denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = app
        .send("+882 1234 5678")
        .await
        .expect_err("no region: refused once countries are restricted");
    assert_eq!(status.code(), Code::PermissionDenied);
    app.send("+91 98765 43211").await.expect("IN not denied");
    assert_eq!(app.sms.count(), 1);
}

async fn cancelled_code_no_longer_verifies_and_keeps_budget_and_limits(store: StoreKind) {
    // Cooldown 0 and two sends per window: the resend after the cancel is
    // admitted (so the budget it carries can be read), the next is not.
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
            ("OTP_SEND_LIMIT", "2"),
        ])
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    let wrong = app
        .verify(&phone, &wrong_code(&code))
        .await
        .expect("answers");
    assert_eq!(wrong.result(), VerifyOtpResult::Incorrect);
    assert_eq!(wrong.attempts_remaining, 4);
    assert!(app.cancel(&phone).await.expect("CancelOtp answers"));
    assert!(
        !app.cancel(&phone).await.expect("CancelOtp answers"),
        "nothing left to cancel"
    );
    assert!(!app.time_left(&phone).await.expect("answers").pending);
    let verify = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(verify.result(), VerifyOtpResult::Expired);
    let resent = app.send(&phone).await.expect("second send in the window");
    assert_eq!(
        resent.attempts_remaining, 4,
        "the cancel did not give back the spent guess"
    );
    let status = app
        .send(&phone)
        .await
        .expect_err("cancel does not reset the send window");
    assert_refused_by(&status, "phone_send_window", "phone_number");
    assert_eq!(app.sms.count(), 2);
}

async fn cancel_keeps_the_spent_guess_budget(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")])
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    for _ in 0..2 {
        app.verify(&phone, &wrong_code(&code))
            .await
            .expect("answers");
    }
    app.cancel(&phone).await.expect("cancelled");
    let resent = app.send(&phone).await.expect("resend");
    assert_eq!(resent.attempts_remaining, 3);
    let status = app.cancel("0123").await.expect_err("bad phone");
    assert_bad_request(&status, "phone_number");
}

async fn test_numbers_get_their_fixed_code_and_no_sms(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_TEST_NUMBERS", "+1 500 555 0006=123456")])
        .spawn()
        .await;
    let sent = app.send("+15005550006").await.expect("sent");
    assert_eq!(sent.expires_in_seconds, 120);
    assert_eq!(app.sms.count(), 0, "no SMS for a test number");
    let verified = app.verify("+15005550006", "123456").await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
    let status = app
        .send("+15005550006")
        .await
        .expect_err("limits still apply");
    assert_refused_by(&status, "phone_resend_cooldown", "phone_number");
    app.send(&unique_phone()).await.expect("other numbers");
    assert_eq!(app.sms.count(), 1, "other numbers are texted as usual");
}

for_each_store!(
    resend_cooldown_refuses_with_the_cooldown_as_retry_delay,
    window_cap_refuses_the_send_that_crosses_it,
    window_slides_and_admits_again,
    daily_cap_refuses_for_the_rest_of_the_day,
    client_cap_counts_sends_across_numbers,
    sends_without_client_key_share_one_bucket,
    global_cap_stops_all_sends,
    concurrent_sends_to_one_number_text_it_once,
    idempotent_sends_text_once_and_answer_identically,
    idempotency_key_for_another_number_is_invalid,
    failed_idempotent_send_can_be_retried,
    bad_request_keys_are_invalid_argument,
    allowed_countries_refuse_other_regions,
    denied_countries_are_refused,
    cancelled_code_no_longer_verifies_and_keeps_budget_and_limits,
    cancel_keeps_the_spent_guess_budget,
    test_numbers_get_their_fixed_code_and_no_sms,
);
