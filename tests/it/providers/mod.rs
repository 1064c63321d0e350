//! Each SMS provider against a stand-in for its API: the exact documented
//! request, and every documented class of answer mapped to the right gRPC
//! status, retry and limit accounting, through the real gRPC server.

mod twilio;
mod twilio_voice;
mod twilio_whatsapp;
mod vonage;
mod webhook;
mod webhook_receiver;
mod whatsapp_cloud;

use std::time::{Duration, Instant};

use crate::common::{TestApp, sms_standins::pairs};
use otp_service::proto::{Channel, SendOtpRequest};
use tonic::{Code, Status};

/// A server on the in-memory store sending through the gateway `vars` select.
async fn app_with(vars: &[(String, String)]) -> TestApp {
    TestApp::builder()
        .env(&pairs(vars))
        .configured_gateway()
        .spawn()
        .await
}

/// One case of a provider's answer table: what the stand-in answers, what
/// the caller gets, how many requests reached the stand-in.
struct Expected {
    code: Code,
    requests: usize,
    /// The send still counts against the limits (it may have gone out).
    counted: bool,
}

/// Sends once and checks the outcome against `expected`: the status, the
/// requests that reached the stand-in (via `seen`), the budget, and whether
/// the send was counted (a second send right away is refused by the
/// cooldown only if it was).
async fn assert_send_outcome<F, Fut>(app: &TestApp, phone: &str, expected: &Expected, seen: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    assert_channel_send_outcome(app, phone, Channel::Sms, expected, seen).await;
}

/// [`assert_send_outcome`] for a send asking for `channel`.
async fn assert_channel_send_outcome<F, Fut>(
    app: &TestApp,
    phone: &str,
    channel: Channel,
    expected: &Expected,
    seen: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let started = Instant::now();
    let result = app
        .send_request(SendOtpRequest {
            phone_number: phone.into(),
            channel: channel.into(),
            ..Default::default()
        })
        .await;
    let elapsed = started.elapsed();
    let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
    assert_eq!(code, expected.code, "{result:?}");
    assert_eq!(
        seen().await,
        expected.requests,
        "requests that reached the stand-in"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "within the 5 s budget: {elapsed:?}"
    );
    if code == Code::InvalidArgument {
        crate::common::assert_bad_request(result.as_ref().expect_err("refused"), "phone_number");
    }
    if code != Code::Ok {
        let again = app.send(phone).await.map(|_| ());
        let held_back = matches!(&again, Err(status) if status.code() == Code::ResourceExhausted);
        assert_eq!(
            held_back, expected.counted,
            "counted against the limits: {again:?}"
        );
    }
}
