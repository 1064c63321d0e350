//! README, "The pumping guard": "Test numbers are exempt".

use otp_service::proto::VerifyOtpResult;

use crate::{
    common::StoreKind,
    pumping::{PUMPED_PREFIX, Replicas, assert_suspended, number},
};

/// A test number inside the pumped range (prefix `+16282`).
const TEST_NUMBER: &str = "+16282999999";
const TEST_CODE: &str = "123456";

/// Once the guard has suspended a prefix, a test number inside it is still
/// sent its fixed code and approved, while any other number there is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_numbers_are_exempt_from_the_pumping_guard() {
    let test_numbers = format!("{TEST_NUMBER}={TEST_CODE}");
    let replicas = Replicas::start(
        StoreKind::Memory,
        &[
            ("OTP_TEST_NUMBERS", &test_numbers),
            ("OTP_PUMPING_SUSPENSION_SECONDS", "600"),
        ],
    )
    .await;
    let (refusal, _, _) = replicas.pump_until_refused().await;
    assert_suspended(&refusal, PUMPED_PREFIX);
    let app = replicas.at(0);

    app.send(TEST_NUMBER)
        .await
        .expect("the test number passes the suspended prefix");
    let verified = app.verify(TEST_NUMBER, TEST_CODE).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
    let other = app
        .send(&number("628", 999_998))
        .await
        .expect_err("the prefix is still suspended for other numbers");
    assert_suspended(&other, PUMPED_PREFIX);
    assert!(
        app.sms.sent().iter().all(|sms| sms.to_e164 != TEST_NUMBER),
        "no SMS to a test number"
    );
}
