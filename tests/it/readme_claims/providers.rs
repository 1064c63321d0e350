//! README, "Security": "provider redirects are not followed (they would
//! carry the credentials elsewhere)"; "Operate", metrics:
//! "`otp_sms_provider_skipped_total{provider}` (circuit open)".

use std::time::Duration;

use otp_service::proto::{SendOtpRequest, otp_service_client::OtpServiceClient};
use tonic::Code;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::{
    common::{
        TestApp,
        binary::ServiceProcess,
        connect,
        sms_standins::{pairs, requests, standin_answering, textbee_vars, twilio_vars},
        unique_phone,
    },
    metrics::{sample, scrape},
};

/// Twilio and TextBee each answer the send with a 307 (which keeps the
/// method, the body with the code, and TextBee's `x-api-key`) to a host
/// that would take it: nothing reaches that host, and the send is not
/// reported as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_redirects_are_not_followed() {
    let elsewhere = standin_answering(ResponseTemplate::new(201)).await;
    let redirecting = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", elsewhere.uri().as_str()),
        )
        .mount(&redirecting)
        .await;
    let providers = [
        ("twilio", twilio_vars(&redirecting)),
        ("textbee", textbee_vars(&redirecting.uri())),
    ];
    for (provider, mut vars) in providers {
        vars.push(("OTP_SMS_GATEWAY".into(), provider.into()));
        vars.push(("OTP_SMS_MAX_RETRIES".into(), "0".into()));
        let app = TestApp::builder()
            .env(&pairs(&vars))
            .configured_gateway()
            .spawn()
            .await;
        let asked_before = requests(&redirecting).await.len();
        let result = app.send(&unique_phone()).await;
        assert!(
            requests(&redirecting).await.len() > asked_before,
            "{provider}: the send reached the redirecting stand-in"
        );
        result.expect_err("a redirect is no delivery");
        assert!(
            requests(&elsewhere).await.is_empty(),
            "{provider} followed the redirect: {:?}",
            requests(&elsewhere).await
        );
    }
}

/// Twilio refuses for now (503: surely not sent); with routes (which turn
/// the breakers on) and a breaker that opens after one failure, the next send skips Twilio without asking it, which
/// `otp_sms_provider_skipped_total{provider="twilio"}` counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_skipped_while_its_circuit_is_open_is_counted() {
    let twilio = standin_answering(ResponseTemplate::new(503)).await;
    let mut vars = twilio_vars(&twilio);
    vars.extend(
        [
            ("OTP_SMS_ROUTES", "*=twilio"),
            ("OTP_SMS_MAX_RETRIES", "0"),
            ("OTP_SMS_BREAKER_FAILURES", "1"),
            ("OTP_SMS_BREAKER_COOLDOWN_SECONDS", "600"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let (service, metrics_addr) = ServiceProcess::start_with_metrics(&pairs(&vars));
    let client = OtpServiceClient::new(connect(service.addr).await);
    let send = || {
        let mut client = client.clone();
        async move {
            client
                .send_otp(SendOtpRequest {
                    phone_number: unique_phone(),
                    ..Default::default()
                })
                .await
        }
    };
    let refused = send().await.expect_err("Twilio refused");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let page = scrape(&metrics_addr).await;
    let skipped = r#"otp_sms_provider_skipped_total{provider="twilio"}"#;
    assert_eq!(sample(&page, skipped), 0.0, "not skipped while closed");

    let skipped_send = send().await.expect_err("no provider to send through");
    assert_eq!(skipped_send.code(), Code::Unavailable, "{skipped_send:?}");
    assert_eq!(
        requests(&twilio).await.len(),
        1,
        "the open circuit kept Twilio out"
    );
    let page = scrape(&metrics_addr).await;
    assert_eq!(sample(&page, skipped), 1.0, "{page}");
    tokio::task::block_in_place(|| {
        service.wait_for_stderr(
            "circuit open: provider skipped",
            Duration::from_secs(5),
            |line| line.contains("twilio").then_some(()),
        )
    });
}
