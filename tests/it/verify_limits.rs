//! The verify limits: guesses across numbers are capped per `client_key`
//! (and per caller, and for calls without a key together), refused with
//! RESOURCE_EXHAUSTED and a RetryInfo before the guess reaches the code —
//! on every store, also under concurrent calls.

use std::time::Duration;

use crate::common::{StoreKind, TestApp, unique_phone};
use futures_util::future::join_all;
use otp_service::proto::{VerifyOtpRequest, VerifyOtpResponse, VerifyOtpResult};
use tonic::{Code, Status};
use tonic_types::StatusExt;

fn guess(phone: &str, code: &str, client_key: &str) -> VerifyOtpRequest {
    VerifyOtpRequest {
        phone_number: phone.into(),
        code: code.into(),
        client_key: client_key.into(),
    }
}

async fn verify(app: &TestApp, request: VerifyOtpRequest) -> Result<VerifyOtpResponse, Status> {
    app.client()
        .verify_otp(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts a refusal by the verify limit `limit` on `subject`, with a
/// RetryInfo for (nearly) the whole window.
fn assert_verify_limited(status: &Status, limit: &str, subject: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "VERIFY_LIMIT_REACHED", "{info:?}");
    assert_eq!(info.metadata.get("limit").map(String::as_str), Some(limit));
    let quota = details.quota_failure().expect("QuotaFailure");
    assert!(
        quota.violations.iter().any(|v| v.subject == subject),
        "{quota:?}"
    );
    let delay = details
        .retry_info()
        .and_then(|retry| retry.retry_delay)
        .expect("RetryInfo with a delay");
    assert!(
        (Duration::from_secs(590)..=Duration::from_secs(600)).contains(&delay),
        "{delay:?}"
    );
}

async fn a_verify_flood_from_one_client_key_is_refused_before_any_code_is_compared(
    store: StoreKind,
) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_CLIENT_VERIFY_LIMIT", "5")])
        .spawn()
        .await;
    let victim = unique_phone();
    let code = app.send_and_read_code(&victim).await;
    let flooder = format!("flood-{}", &victim[1..]);
    // Guesses at numbers nobody texted: each is one of the client's five.
    for _ in 0..5 {
        let answer = verify(&app, guess(&unique_phone(), "123456", &flooder))
            .await
            .expect("within the limit");
        assert_eq!(answer.result(), VerifyOtpResult::Expired);
    }
    // Even the right code is refused now: the guess never reaches the store.
    let refused = verify(&app, guess(&victim, &code, &flooder))
        .await
        .expect_err("the sixth guess in the window");
    assert_verify_limited(&refused, "client_verify_window", "client_key");

    // Another client is not held back, and the victim's code (and its guess
    // budget) is untouched by the refused guess.
    let user = format!("user-{}", &victim[1..]);
    let approved = verify(&app, guess(&victim, &code, &user))
        .await
        .expect("another client_key has its own budget");
    assert_eq!(approved.result(), VerifyOtpResult::Approved);
}

async fn concurrent_guesses_from_one_client_key_are_counted_exactly(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_CLIENT_VERIFY_LIMIT", "10")])
        .spawn()
        .await;
    let flooder = format!("race-{}", &unique_phone()[1..]);
    let answers = join_all((0..40).map(|_| {
        let mut client = app.client();
        let request = guess(&unique_phone(), "123456", &flooder);
        async move { client.verify_otp(request).await }
    }))
    .await;
    let answered = answers.iter().filter(|answer| answer.is_ok()).count();
    assert_eq!(answered, 10, "exactly the limit answered: {answers:?}");
    for refused in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        assert_verify_limited(refused, "client_verify_window", "client_key");
    }
}

async fn guesses_without_a_client_key_share_one_bucket(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_ANONYMOUS_VERIFY_LIMIT", "3")])
        .spawn()
        .await;
    for _ in 0..3 {
        verify(&app, guess(&unique_phone(), "123456", ""))
            .await
            .expect("within the anonymous bucket");
    }
    let refused = verify(&app, guess(&unique_phone(), "123456", ""))
        .await
        .expect_err("the bucket is full");
    assert_verify_limited(&refused, "anonymous_verify_window", "client_key");
    verify(&app, guess(&unique_phone(), "123456", "named-user"))
        .await
        .expect("a call naming its user is counted on its own");
}

/// A flood naming a fresh `client_key` each call escapes the per-client cap
/// but not the service-wide one, which bounds the logs it leaves behind.
async fn a_flood_with_a_fresh_client_key_per_call_is_held_by_the_global_cap(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_GLOBAL_VERIFY_LIMIT", "4")])
        .spawn()
        .await;
    let fresh = || format!("fresh-{}", &unique_phone()[1..]);
    for _ in 0..4 {
        verify(&app, guess(&unique_phone(), "123456", &fresh()))
            .await
            .expect("within the global cap");
    }
    let refused = verify(&app, guess(&unique_phone(), "123456", &fresh()))
        .await
        .expect_err("the fifth guess this minute");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let details = refused.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(
        info.metadata.get("limit").map(String::as_str),
        Some("global_verify_rate")
    );
    let delay = details
        .retry_info()
        .and_then(|retry| retry.retry_delay)
        .expect("RetryInfo");
    assert!(delay <= Duration::from_secs(60), "{delay:?}");
}

for_each_store!(
    a_flood_with_a_fresh_client_key_per_call_is_held_by_the_global_cap,
    a_verify_flood_from_one_client_key_is_refused_before_any_code_is_compared,
    concurrent_guesses_from_one_client_key_are_counted_exactly,
    guesses_without_a_client_key_share_one_bucket,
);
