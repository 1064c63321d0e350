//! What a server started while no node of its Redis answers must do, on
//! every topology: stay alive, report the OTP service NOT_SERVING, and fail
//! calls UNAVAILABLE within the store timeout, texting nothing.

use std::time::Duration;

use tokio::time::Instant;

use super::{TestApp, unique_phone};

/// Starts a server on `topology` (its `REDIS_*` variables, naming nodes
/// that do not answer) with a 500 ms store timeout, and asserts the above.
pub async fn assert_starts_and_fails_calls_unavailable(topology: &[(&str, &str)]) {
    let app = TestApp::builder()
        .env(topology)
        .env(&[("OTP_REDIS_TIMEOUT_MS", "500")])
        .spawn()
        .await;
    assert_eq!(app.health("").await, "SERVING", "the process is alive");
    assert_eq!(app.health("otp.v1.OtpService").await, "NOT_SERVING");
    let started = Instant::now();
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("no Redis node answers");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    // Fast means bounded by the store timeout (500 ms), not by the caller's
    // deadline; 2.5 s of margin is for a loaded 2-core machine.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "UNAVAILABLE after {took:?}");
    assert_eq!(app.sms.count(), 0, "nothing texted that was not stored");
}
