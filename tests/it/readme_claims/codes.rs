//! README, "API": "The code itself is never returned by any RPC."

use otp_service::proto::SendOtpRequest;
use tonic::Status;

use crate::common::{TestApp, concurrent::wrong_code, holds_code, unique_phone};

/// Every answer about a pending code — the send, its idempotent retry, a
/// refusal with its details, the time left, a wrong guess, the cancel — is
/// searched for the code the SMS carried, as text and as wire bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rpc_returns_the_code() {
    let app = TestApp::builder().spawn().await;
    let phone = unique_phone();
    let idempotent = SendOtpRequest {
        phone_number: phone.clone(),
        idempotency_key: format!("claim-{phone}"),
        ..Default::default()
    };
    let sent = app.send_request(idempotent.clone()).await.expect("sent");
    let code = app.sms.last_code_for(&phone).expect("texted");
    let retried = app
        .send_request(idempotent)
        .await
        .expect("the first response again");
    let refused = app.send(&phone).await.expect_err("the resend cooldown");
    let time_left = app.time_left(&phone).await.expect("pending");
    let wrong = app
        .verify(&phone, &wrong_code(&code))
        .await
        .expect("incorrect");
    let cancelled = app.cancel(&phone).await.expect("cancelled");
    assert!(cancelled, "the code was pending");

    let answers = [
        format!("{sent:?}"),
        format!("{retried:?}"),
        format!("{time_left:?}"),
        format!("{wrong:?}"),
        status_text(&refused),
    ];
    for answer in &answers {
        assert!(!holds_code(answer, &code), "the code {code} in {answer}");
    }
    assert!(
        !refused
            .details()
            .windows(code.len())
            .any(|bytes| bytes == code.as_bytes()),
        "the code in the refusal's details"
    );
}

/// A status as a caller sees it: code, message and metadata.
fn status_text(status: &Status) -> String {
    format!(
        "{:?} {} {:?}",
        status.code(),
        status.message(),
        status.metadata()
    )
}
