//! `OTP_MEMORY_MAX_ENTRIES`: the in-memory store stops taking new numbers at
//! its cap (RESOURCE_EXHAUSTED, STORE_FULL, a RetryInfo) instead of growing
//! without end, while numbers it already holds keep working.

use crate::common::{SHARED_CAPS_LIFTED, TestApp, unique_phone};
use otp_service::proto::VerifyOtpResult;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_new_numbers_stop_at_the_cap_and_held_numbers_still_verify() {
    // A hundred fresh numbers nobody verifies: lift the shared caps and the
    // pumping guard, which would (rightly) stop this traffic first.
    let app = TestApp::builder()
        .env(&SHARED_CAPS_LIFTED)
        .env(&[
            ("OTP_MEMORY_MAX_ENTRIES", "100"),
            ("OTP_PUMPING_GUARD", "off"),
        ])
        .spawn()
        .await;
    let first = unique_phone();
    let code = app.send_and_read_code(&first).await;
    // Each number takes one record (its code and its send log); the
    // shared anonymous log is in another table, so all 100 fit.
    let mut sent = 1;
    let status = loop {
        match app.send(&unique_phone()).await {
            Ok(_) => sent += 1,
            Err(status) => break status,
        }
        assert!(sent <= 100, "no refusal past the cap of 100");
    };
    assert!(
        sent >= 99,
        "refused at {sent} numbers, below the cap: {status:?}"
    );
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().map(|info| info.reason.as_str()),
        Some("STORE_FULL")
    );
    assert!(details.retry_info().is_some(), "{status:?}");
    assert_eq!(app.sms.count(), sent, "no SMS for the refused send");

    let verified = app.verify(&first, &code).await.expect("VerifyOtp");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}
