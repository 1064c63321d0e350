//! README, "Security": "provider redirects are not followed (they would
//! carry the credentials elsewhere)".

use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::common::{
    TestApp,
    sms_standins::{pairs, requests, standin_answering, textbee_vars, twilio_vars},
    unique_phone,
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
