//! A `cheapest:` route: the provider cheaper to the destination's country
//! is asked first, and a sure failure there fails over to the other; the
//! spend cap counts what the carrier charges, not the reserved worst case.

use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use super::{assert_spend_refused, prices_file};
use crate::common::{
    TestApp,
    sms_standins::{TWILIO_PATH, pairs, requests, twilio_vars, vonage_vars},
    unique_phone,
};

/// Twilio is the cheaper to the US, Vonage to Great Britain.
const PRICES: &str = r#"
currency = "USD"
[twilio]
"*" = { sms = "0.05" }
US = { sms = "0.01" }
[vonage]
"*" = { sms = "0.02" }
US = { sms = "0.03" }
"#;

async fn standin(route: &str, answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn twilio_queued() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"}))
}

fn vonage_accepted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "message-count": "1",
        "messages": [{"status": "0", "message-id": "0A01"}]
    }))
}

async fn app(
    twilio: &MockServer,
    vonage: &MockServer,
    more: &[(&str, &str)],
) -> (TestApp, crate::common::tls::CertDir) {
    let (dir, prices) = prices_file(PRICES);
    let mut vars = twilio_vars(twilio);
    vars.extend(vonage_vars(vonage));
    vars.push(("OTP_SMS_ROUTES".into(), "*=cheapest:vonage,twilio".into()));
    vars.push(("OTP_PRICES_FILE".into(), prices));
    vars.push(("OTP_SMS_MAX_RETRIES".into(), "0".into()));
    vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let app = TestApp::builder()
        .env(&pairs(&vars))
        .configured_gateway()
        .spawn()
        .await;
    (app, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cheaper_provider_for_the_country_is_asked_first() {
    let twilio = standin(TWILIO_PATH, twilio_queued()).await;
    let vonage = standin("/sms/json", vonage_accepted()).await;
    let (app, _dir) = app(&twilio, &vonage, &[]).await;

    app.send(&unique_phone())
        .await
        .expect("US: Twilio is cheaper");
    assert_eq!(
        (requests(&twilio).await.len(), requests(&vonage).await.len()),
        (1, 0)
    );
    app.send("+447400123456")
        .await
        .expect("GB: Vonage is cheaper");
    assert_eq!(
        (requests(&twilio).await.len(), requests(&vonage).await.len()),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sure_failure_at_the_cheaper_provider_fails_over_to_the_other() {
    let twilio = standin(TWILIO_PATH, ResponseTemplate::new(503)).await;
    let vonage = standin("/sms/json", vonage_accepted()).await;
    // 0.03 is Vonage's US price, reserved as the route's highest.
    let (app, _dir) = app(&twilio, &vonage, &[("OTP_SPEND_LIMIT_PER_HOUR", "0.05")]).await;

    app.send(&unique_phone()).await.expect("Vonage texts it");
    assert_eq!(
        (requests(&twilio).await.len(), requests(&vonage).await.len()),
        (1, 1),
        "one refused try, one SMS"
    );
    // 0.03 spent by Vonage: a second US send (0.03 reserved) would cross 0.05.
    let status = app.send(&unique_phone()).await.expect_err("cap");
    assert_spend_refused(&status, "spend_per_hour");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_keeps_the_carriers_price_and_gives_back_the_rest() {
    let twilio = standin(TWILIO_PATH, twilio_queued()).await;
    let vonage = standin("/sms/json", vonage_accepted()).await;
    // Each US send reserves 0.03 (Vonage, the route's highest) and keeps
    // 0.01 (Twilio carried it): three fit in 0.05 only if 0.02 comes back each time.
    let (app, _dir) = app(&twilio, &vonage, &[("OTP_SPEND_LIMIT_PER_HOUR", "0.05")]).await;
    for _ in 0..3 {
        app.send(&unique_phone()).await.expect("0.01 kept each");
    }
    // 0.03 kept; 0.03 more would cross 0.05.
    let status = app.send(&unique_phone()).await.expect_err("cap");
    assert_spend_refused(&status, "spend_per_hour");
    assert_eq!(requests(&twilio).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cheaper_provider_with_an_open_circuit_is_passed_over() {
    let twilio = standin(TWILIO_PATH, ResponseTemplate::new(503)).await;
    let vonage = standin("/sms/json", vonage_accepted()).await;
    let (app, _dir) = app(&twilio, &vonage, &[("OTP_SMS_BREAKER_FAILURES", "1")]).await;

    app.send(&unique_phone())
        .await
        .expect("Vonage, after Twilio's 503");
    // Twilio's circuit is open: the cheapest healthy provider is Vonage.
    app.send(&unique_phone()).await.expect("Vonage at once");
    assert_eq!(
        (requests(&twilio).await.len(), requests(&vonage).await.len()),
        (1, 2),
        "Twilio asked once, then skipped"
    );
}
