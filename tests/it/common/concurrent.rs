//! Many calls at once, spread over one or more servers (replicas): the
//! races that atomicity must survive.

use futures::future::join_all;
use otp_service::proto::{SendOtpRequest, SendOtpResponse, VerifyOtpRequest, VerifyOtpResult};
use tonic::Status;

use super::TestApp;

/// Settings for tests that fire hundreds of calls at once. They test
/// atomicity, not latency: on a loaded machine running a debug build (and a
/// test process running other tests beside them), a call can queue for a
/// pool connection longer than the default 1 s, and the store would then
/// (rightly) fail closed with UNAVAILABLE, which is not what these tests are
/// about. Nor are they about the verify caps (`verify_limits.rs` is), which a
/// thousand guesses in a second would reach: those are lifted.
pub const RACE_SETTINGS: [(&str, &str); 3] = [
    ("OTP_REDIS_TIMEOUT_MS", "20000"),
    ("OTP_GLOBAL_VERIFY_LIMIT", "0"),
    ("OTP_ANONYMOUS_VERIFY_LIMIT", "1000000"),
];

/// `total` concurrent VerifyOtp calls of `code`, round-robin over `apps`.
pub async fn verify_concurrently(
    apps: &[&TestApp],
    phone: &str,
    code: &str,
    total: usize,
) -> Vec<VerifyOtpResult> {
    let calls = (0..total).map(|i| {
        let mut client = apps[i % apps.len()].client();
        let request = VerifyOtpRequest {
            phone_number: phone.to_owned(),
            code: code.to_owned(),
            ..Default::default()
        };
        tokio::spawn(async move {
            client
                .verify_otp(request)
                .await
                .expect("VerifyOtp answers")
                .into_inner()
                .result()
        })
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.expect("task ran"))
        .collect()
}

/// `total` concurrent SendOtp calls of `request`, round-robin over `apps`.
pub async fn send_concurrently(
    apps: &[&TestApp],
    request: SendOtpRequest,
    total: usize,
) -> Vec<Result<SendOtpResponse, Status>> {
    let calls = (0..total).map(|i| {
        let mut client = apps[i % apps.len()].client();
        let request = request.clone();
        tokio::spawn(async move {
            client
                .send_otp(request)
                .await
                .map(tonic::Response::into_inner)
        })
    });
    join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.expect("task ran"))
        .collect()
}

/// How many of `results` equal `wanted`.
pub fn count<T: PartialEq>(results: &[T], wanted: T) -> usize {
    results.iter().filter(|result| **result == wanted).count()
}

/// A code of the same length guaranteed to differ from `code` (last digit + 1).
pub fn wrong_code(code: &str) -> String {
    let last = code.as_bytes()[code.len() - 1] - b'0';
    format!("{}{}", &code[..code.len() - 1], (last + 1) % 10)
}
