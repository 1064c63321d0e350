//! `OTP_MEMORY_MAX_ENTRIES`: the in-memory store stops taking new numbers at
//! its cap (RESOURCE_EXHAUSTED, STORE_FULL, a RetryInfo) instead of growing
//! without end, while numbers it already holds keep working.

use crate::common::{TestApp, unique_phone};
use otp_service::proto::VerifyOtpResult;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_new_numbers_stop_at_the_cap_and_held_numbers_still_verify() {
    let app = TestApp::builder()
        .env(&[("OTP_MEMORY_MAX_ENTRIES", "100")])
        .spawn()
        .await;
    let first = unique_phone();
    let code = app.send_and_read_code(&first).await;
    for _ in 1..100 {
        app.send(&unique_phone()).await.expect("below the cap");
    }
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("the 101st number is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().map(|info| info.reason.as_str()),
        Some("STORE_FULL")
    );
    assert!(details.retry_info().is_some(), "{status:?}");
    assert_eq!(app.sms.count(), 100, "no SMS for the refused send");

    let verified = app.verify(&first, &code).await.expect("VerifyOtp");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}
