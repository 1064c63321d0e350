//! VerifyOtp: a right code works exactly once; wrong guesses are capped.

use std::time::{Duration, Instant};

use crate::common::{
    StoreKind, TestApp, assert_bad_request, binary,
    concurrent::{RACE_SETTINGS, count, verify_concurrently, wrong_code},
    unique_phone, wait_for,
};
use otp_service::proto::VerifyOtpResult;

async fn right_code_is_accepted_exactly_once(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    let first = app.verify(&phone, &code).await.expect("answers");
    assert!(first.valid);
    assert_eq!(first.result(), VerifyOtpResult::Approved);
    let again = app.verify(&phone, &code).await.expect("answers");
    assert!(!again.valid);
    assert_eq!(again.result(), VerifyOtpResult::Expired);
    assert!(!app.time_left(&phone).await.expect("answers").pending);
}

async fn right_code_is_accepted_exactly_once_under_concurrency(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    let results = verify_concurrently(&[&app], &phone, &code, 100).await;
    assert_eq!(count(&results, VerifyOtpResult::Approved), 1, "{results:?}");
    assert_eq!(count(&results, VerifyOtpResult::Expired), 99, "{results:?}");
}

async fn concurrent_wrong_guesses_are_capped_then_locked(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    let results = verify_concurrently(&[&app], &phone, &wrong_code(&code), 100).await;
    assert_eq!(
        count(&results, VerifyOtpResult::Incorrect),
        5,
        "{results:?}"
    );
    assert_eq!(count(&results, VerifyOtpResult::Locked), 95, "{results:?}");
    let right = app.verify(&phone, &code).await.expect("answers");
    assert!(!right.valid, "the right code no longer works once locked");
    assert_eq!(right.result(), VerifyOtpResult::Locked);
    assert!(!app.time_left(&phone).await.expect("answers").pending);
}

async fn wrong_guesses_count_down_attempts(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_MAX_ATTEMPTS", "3")])
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    let wrong = wrong_code(&code);
    for expected_left in [2, 1, 0] {
        let response = app.verify(&phone, &wrong).await.expect("answers");
        assert_eq!(response.result(), VerifyOtpResult::Incorrect);
        assert_eq!(response.attempts_remaining, expected_left);
    }
    let locked = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(locked.result(), VerifyOtpResult::Locked);
    assert_eq!(locked.attempts_remaining, 0);
}

async fn resend_keeps_the_spent_guess_budget(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")])
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    for _ in 0..4 {
        app.verify(&phone, &wrong_code(&code))
            .await
            .expect("answers");
    }
    let resent = app
        .send(&phone)
        .await
        .expect("resend allowed while guesses remain");
    assert_eq!(
        resent.attempts_remaining, 1,
        "the spent budget survives the resend"
    );
    let new_code = app.sms.last_code_for(&phone).expect("recorded");
    let last = app
        .verify(&phone, &wrong_code(&new_code))
        .await
        .expect("answers");
    assert_eq!(last.result(), VerifyOtpResult::Incorrect);
    assert_eq!(last.attempts_remaining, 0);
    let after = app.verify(&phone, &new_code).await.expect("answers");
    assert_eq!(after.result(), VerifyOtpResult::Locked);
}

/// A number locked by one wrong guess (`OTP_MAX_ATTEMPTS=1`, the lock lasting
/// TTL + 1 s of grace) and the send refused right after: the app, the number,
/// when its code was sent and the refusal.
async fn lock_a_number(
    store: StoreKind,
    ttl_seconds: &str,
    cooldown_seconds: &str,
) -> (TestApp, String, Instant, tonic::Status) {
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_MAX_ATTEMPTS", "1"),
            ("OTP_RESEND_COOLDOWN_SECONDS", cooldown_seconds),
            ("OTP_TTL_SECONDS", ttl_seconds),
            ("OTP_GRACE_SECONDS", "1"),
        ])
        .spawn()
        .await;
    let phone = unique_phone();
    let sent_at = Instant::now();
    let code = app.send_and_read_code(&phone).await;
    app.verify(&phone, &wrong_code(&code))
        .await
        .expect("answers");
    let status = app.send(&phone).await.expect_err("locked");
    (app, phone, sent_at, status)
}

async fn locked_number_gets_no_new_code_until_the_lock_ends(store: StoreKind) {
    // The lock lasts as long as the locked record: TTL + grace (1 + 1 s here).
    let (app, phone, sent_at, status) = lock_a_number(store, "1", "0").await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let details = tonic_types::StatusExt::get_error_details(&status);
    let delay = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(
        delay <= Duration::from_secs(2),
        "at most TTL + grace: {delay:?}"
    );
    assert!(details.quota_failure().is_some());
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "VERIFY_ATTEMPTS_EXHAUSTED");
    assert_eq!(app.sms.count(), 1, "no SMS for a locked number");
    // The lock ends: a send is admitted again, and its new code works.
    wait_for("the lock ends", Duration::from_secs(10), || async {
        app.send(&phone).await.ok()
    })
    .await;
    // The locked record lives 2 s from the send; 1.5 s allows for rounding.
    assert!(
        sent_at.elapsed() >= Duration::from_millis(1_500),
        "the lock ended {:?} after the send",
        sent_at.elapsed()
    );
    assert_eq!(app.sms.count(), 2, "a new code once the lock ended");
    let new_code = app.sms.last_code_for(&phone).expect("recorded");
    let verified = app.verify(&phone, &new_code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn a_locked_number_tells_the_caller_how_long_the_lock_lasts(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_MAX_ATTEMPTS", "1"),
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
        ])
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    app.verify(&phone, &wrong_code(&code))
        .await
        .expect("answers");
    let status = app.send(&phone).await.expect_err("locked");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let delay = tonic_types::StatusExt::get_error_details(&status)
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    // TTL 120 s + grace 10 s, less what a loaded machine spent since the send.
    assert!(
        delay <= Duration::from_secs(130) && delay >= Duration::from_secs(120),
        "{delay:?}"
    );
}

/// The reviewer's case: a locked number still in its resend cooldown. The
/// refusal is the lock's, with the lock's delay, not the shorter cooldown's;
/// a client waiting that delay out is then sent a code.
async fn a_locked_number_in_its_cooldown_is_told_to_wait_for_the_lock(store: StoreKind) {
    // The lock lasts as long as the locked code: TTL + grace (4 + 1 s here),
    // the cooldown 2 s of it.
    let lock = Duration::from_secs(5);
    let (app, phone, sent_at, status) = lock_a_number(store, "4", "2").await;
    let answered_at = Instant::now();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let details = tonic_types::StatusExt::get_error_details(&status);
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "VERIFY_ATTEMPTS_EXHAUSTED", "{status:?}");
    let delay = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    // The lock ends `lock` after the first send's code was stored, which is
    // after `sent_at`; 50 ms for the store's clock against this one.
    assert!(
        answered_at + delay + Duration::from_millis(50) >= sent_at + lock,
        "{delay:?} ends before the lock"
    );
    assert!(delay <= lock, "{delay:?}");
    // The client does as told: waits the delay out, then sends.
    tokio::time::sleep(delay).await;
    app.send(&phone)
        .await
        .expect("neither the lock nor the cooldown refuses");
    assert_eq!(app.sms.count(), 2, "a new code once the lock ended");
}

async fn malformed_code_is_refused_without_spending_a_guess(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    for bad in [
        "",
        "12345",
        "1234567",
        "12a456",
        "12 456",
        "１２３４５６",
        "-12345",
    ] {
        let status = app.verify(&phone, bad).await.expect_err(bad);
        assert_bad_request(&status, "code");
    }
    let status = app.verify("0044", &code).await.expect_err("bad phone");
    assert_bad_request(&status, "phone_number");
    let wrong = app
        .verify(&phone, &wrong_code(&code))
        .await
        .expect("answers");
    assert_eq!(
        wrong.attempts_remaining, 4,
        "only the well-formed wrong code counted"
    );
    let right = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(right.result(), VerifyOtpResult::Approved);
}

async fn verify_without_a_code_is_expired(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let response = app
        .verify(&unique_phone(), "123456")
        .await
        .expect("answers");
    assert!(!response.valid);
    assert_eq!(response.result(), VerifyOtpResult::Expired);
}

async fn code_expires_after_ttl_plus_grace(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_TTL_SECONDS", "1"), ("OTP_GRACE_SECONDS", "3")])
        .spawn()
        .await;
    let phone = unique_phone();
    let sent_at = Instant::now();
    let code = app.send_and_read_code(&phone).await;
    let left = app.time_left(&phone).await.expect("answers");
    assert!(left.pending);
    assert!(left.seconds_left <= 1, "{left:?}");
    // Past the advertised TTL, inside the grace period: the code is still
    // held (a wrong guess is judged Incorrect, not Expired).
    wait_for(
        "the advertised TTL is over",
        Duration::from_secs(5),
        || async {
            let left = app.time_left(&phone).await.expect("answers");
            (left.pending && left.seconds_left == 0).then_some(())
        },
    )
    .await;
    let during_grace = app
        .verify(&phone, &wrong_code(&code))
        .await
        .expect("answers");
    assert_eq!(
        during_grace.result(),
        VerifyOtpResult::Incorrect,
        "the code is still held during grace ({:?} after the send)",
        sent_at.elapsed()
    );
    wait_for("the grace period ends", Duration::from_secs(10), || async {
        (!app.time_left(&phone).await.expect("answers").pending).then_some(())
    })
    .await;
    // TTL + grace is 4 s; 3 s leaves a second for whole-second rounding.
    assert!(
        sent_at.elapsed() >= Duration::from_secs(3),
        "gone after {:?}, before TTL + grace",
        sent_at.elapsed()
    );
    let late = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(late.result(), VerifyOtpResult::Expired);
}

async fn code_is_still_accepted_during_grace(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&[("OTP_TTL_SECONDS", "1"), ("OTP_GRACE_SECONDS", "30")])
        .spawn()
        .await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;
    wait_for(
        "advertised validity over",
        Duration::from_secs(5),
        || async {
            let left = app.time_left(&phone).await.expect("answers");
            (left.pending && left.seconds_left == 0).then_some(())
        },
    )
    .await;
    let verified = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(
        verified.result(),
        VerifyOtpResult::Approved,
        "grace covers network delay"
    );
}

async fn time_left_without_a_code_is_zero(store: StoreKind) {
    let app = TestApp::builder().store(store).spawn().await;
    let left = app.time_left(&unique_phone()).await.expect("answers");
    assert!(!left.pending);
    assert_eq!(left.seconds_left, 0);
    let status = app.time_left("12").await.expect_err("bad phone");
    assert_bad_request(&status, "phone_number");
}

for_each_store!(
    right_code_is_accepted_exactly_once,
    right_code_is_accepted_exactly_once_under_concurrency,
    concurrent_wrong_guesses_are_capped_then_locked,
    wrong_guesses_count_down_attempts,
    resend_keeps_the_spent_guess_budget,
    locked_number_gets_no_new_code_until_the_lock_ends,
    a_locked_number_tells_the_caller_how_long_the_lock_lasts,
    a_locked_number_in_its_cooldown_is_told_to_wait_for_the_lock,
    malformed_code_is_refused_without_spending_a_guess,
    verify_without_a_code_is_expired,
    code_expires_after_ttl_plus_grace,
    code_is_still_accepted_during_grace,
    time_left_without_a_code_is_zero,
);

/// Settings under which one number's code could be guessed within a day with
/// odds above 1 in 10 000 stop the binary with one line naming every
/// variable of the product and the bound.
#[test]
fn settings_that_make_guessing_likely_stop_the_binary_with_one_line() {
    let (code, stderr) = binary::run_to_exit(&[
        ("OTP_CODE_LENGTH", "4"),
        ("OTP_MAX_ATTEMPTS", "20"),
        ("OTP_DAILY_SEND_LIMIT", "10000"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    for named in [
        "OTP_DAILY_SEND_LIMIT",
        "OTP_MAX_ATTEMPTS",
        "OTP_CODE_LENGTH",
        "10000 × 20 / 10^4",
        "1 in 10000",
    ] {
        assert!(lines[0].contains(named), "{named}: {stderr}");
    }
}
