//! Routes per country with failover and circuit breakers, through the real
//! server, with a stand-in per provider: each country reaches its provider,
//! a sure failure hands the SMS to the next one (one SMS in total), a
//! maybe-delivered failure ends the send, and an open circuit is skipped
//! until a probe closes it again.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::{
    TestApp,
    sms_standins::{
        TEXTBEE_PATH, TWILIO_PATH, closed_port_url, pairs, requests, textbee_vars, twilio_vars,
        vonage_vars,
    },
    unique_phone, wait_for,
};
use serde_json::json;
use tonic::Code;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// Stand-ins for Twilio, Vonage and TextBee, each accepting every message
/// unless a test mounts something else first.
struct Providers {
    twilio: MockServer,
    vonage: MockServer,
    textbee: MockServer,
}

impl Providers {
    async fn start() -> Self {
        Self {
            twilio: MockServer::start().await,
            vonage: MockServer::start().await,
            textbee: MockServer::start().await,
        }
    }

    async fn accepting() -> Self {
        let providers = Self::start().await;
        providers.twilio_answers(twilio_queued()).await;
        providers.vonage_answers(vonage_accepted()).await;
        Mock::given(path(TEXTBEE_PATH))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({"data": {"smsBatchId": "b1"}})),
            )
            .mount(&providers.textbee)
            .await;
        providers
    }

    async fn twilio_answers(&self, answer: ResponseTemplate) {
        self.twilio.reset().await;
        Mock::given(method("POST"))
            .and(path(TWILIO_PATH))
            .respond_with(answer)
            .mount(&self.twilio)
            .await;
    }

    async fn vonage_answers(&self, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/sms/json"))
            .respond_with(answer)
            .mount(&self.vonage)
            .await;
    }

    /// A server routed by `routes`, every provider configured.
    async fn app(&self, routes: &str, more: &[(&str, &str)]) -> TestApp {
        let mut vars = twilio_vars(&self.twilio);
        vars.extend(vonage_vars(&self.vonage));
        vars.extend(textbee_vars(&self.textbee.uri()));
        vars.push(("OTP_SMS_ROUTES".into(), routes.into()));
        vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        spawn(&vars).await
    }

    /// Requests each stand-in received: (twilio, vonage, textbee).
    async fn counts(&self) -> (usize, usize, usize) {
        (
            requests(&self.twilio).await.len(),
            requests(&self.vonage).await.len(),
            requests(&self.textbee).await.len(),
        )
    }
}

/// A server on the in-memory store sending through the providers `vars` configure.
async fn spawn(vars: &[(String, String)]) -> TestApp {
    TestApp::builder()
        .env(&pairs(vars))
        .configured_gateway()
        .spawn()
        .await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_country_goes_to_its_route() {
    let providers = Providers::accepting().await;
    let app = providers
        .app("IN=textbee; US,CA=twilio; *=vonage", &[])
        .await;

    app.send("+919876543210").await.expect("IN via TextBee");
    assert_eq!(providers.counts().await, (0, 0, 1));
    app.send("+14155550123").await.expect("US via Twilio");
    app.send("+16045550123").await.expect("CA via Twilio");
    assert_eq!(providers.counts().await, (2, 0, 1));
    app.send("+447700900123")
        .await
        .expect("GB via the default route");
    assert_eq!(providers.counts().await, (2, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sure_failure_hands_the_sms_to_the_next_provider() {
    let providers = Providers::start().await;
    providers.twilio_answers(ResponseTemplate::new(503)).await;
    providers.vonage_answers(vonage_accepted()).await;
    let app = providers
        .app("*=twilio,vonage", &[("OTP_SMS_MAX_RETRIES", "0")])
        .await;
    let phone = unique_phone();

    app.send(&phone).await.expect("Vonage texts it");

    assert_eq!(
        providers.counts().await,
        (1, 1, 0),
        "one refused try, one SMS"
    );
    let text =
        crate::common::sms_standins::form_fields(&requests(&providers.vonage).await[0])["text"]
            .clone();
    crate::common::sms_standins::assert_code_works(
        &app,
        &phone,
        &crate::common::sms_standins::code_in(&text),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_cannot_be_reached_is_passed_over() {
    let vonage = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(vonage_accepted())
        .mount(&vonage)
        .await;
    let mut vars = textbee_vars(&closed_port_url());
    vars.extend(vonage_vars(&vonage));
    vars.push(("OTP_SMS_ROUTES".into(), "*=textbee,vonage".into()));
    let app = spawn(&vars).await;

    app.send(&unique_phone()).await.expect("Vonage texts it");

    assert_eq!(requests(&vonage).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maybe_delivered_failure_is_never_handed_on() {
    let providers = Providers::start().await;
    providers.twilio_answers(ResponseTemplate::new(500)).await;
    providers.vonage_answers(vonage_accepted()).await;
    let app = providers.app("*=twilio,vonage", &[]).await;
    let phone = unique_phone();

    let status = app.send(&phone).await.expect_err("Twilio may have sent it");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(providers.counts().await, (1, 0, 0), "one request in total");
    let again = app.send(&phone).await.expect_err("the send counted");
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_number_is_not_handed_on() {
    let providers = Providers::start().await;
    providers
        .twilio_answers(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21614, "message": "'To' number is not a valid mobile number", "status": 400
        })))
        .await;
    providers.vonage_answers(vonage_accepted()).await;
    let app = providers.app("*=twilio,vonage", &[]).await;

    let status = app.send(&unique_phone()).await.expect_err("not a mobile");

    crate::common::assert_bad_request(&status, "phone_number");
    assert_eq!(providers.counts().await, (1, 0, 0));
}

/// `OTP_SMS_BREAKER_COOLDOWN_SECONDS` in the breaker case: long enough
/// that a busy core does not end it between two sends.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_skips_probes_and_closes() {
    let providers = Providers::start().await;
    providers.twilio_answers(ResponseTemplate::new(503)).await;
    providers.vonage_answers(vonage_accepted()).await;
    let app = providers
        .app(
            "*=twilio,vonage",
            &[
                ("OTP_SMS_MAX_RETRIES", "0"),
                ("OTP_SMS_BREAKER_FAILURES", "2"),
                ("OTP_SMS_BREAKER_COOLDOWN_SECONDS", "3"),
                // Every poll for the probe below is a send.
                ("OTP_ANONYMOUS_SEND_LIMIT", "100000"),
                ("OTP_GLOBAL_SEND_LIMIT", "0"),
            ],
        )
        .await;

    // Two sure failures open Twilio's circuit; Vonage texts both.
    for _ in 0..2 {
        app.send(&unique_phone()).await.expect("failed over");
    }
    let opened = Instant::now();
    assert_eq!(providers.counts().await, (2, 2, 0));
    // Open: Twilio is not asked at all (a send within the cool-down).
    app.send(&unique_phone()).await.expect("straight to Vonage");
    let within = opened.elapsed();
    assert!(
        within < BREAKER_COOLDOWN,
        "the machine stalled {within:?}, past the cool-down: nothing to conclude"
    );
    assert_eq!(providers.counts().await, (2, 3, 0), "skipped while open");
    assert_eq!(
        app.health("otp.v1.OtpService").await,
        "SERVING",
        "SMS trouble is not ill health"
    );

    // Twilio recovers; after the cool-down one probe reaches it and closes the circuit.
    providers.twilio_answers(twilio_queued()).await;
    wait_for(
        "a probe reaches Twilio",
        BREAKER_COOLDOWN + Duration::from_secs(10),
        || async {
            app.send(&unique_phone()).await.expect("sent");
            (requests(&providers.twilio).await.len() == 1).then_some(())
        },
    )
    .await;
    let vonage_before = requests(&providers.vonage).await.len();
    for _ in 0..3 {
        app.send(&unique_phone()).await.expect("Twilio again");
    }
    assert_eq!(
        requests(&providers.twilio).await.len(),
        4,
        "closed: Twilio sends again"
    );
    assert_eq!(requests(&providers.vonage).await.len(), vonage_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_circuit_open_is_unavailable_at_once_and_not_counted() {
    let providers = Providers::start().await;
    providers.twilio_answers(ResponseTemplate::new(503)).await;
    let app = providers
        .app(
            "*=twilio",
            &[
                ("OTP_SMS_MAX_RETRIES", "0"),
                ("OTP_SMS_BREAKER_FAILURES", "1"),
                ("OTP_SMS_BREAKER_COOLDOWN_SECONDS", "600"),
            ],
        )
        .await;
    let phone = unique_phone();
    app.send(&phone).await.expect_err("Twilio refuses");

    let status = app.send(&phone).await.expect_err("circuit open");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(providers.counts().await, (1, 0, 0), "no request while open");
    let again = app.send(&phone).await.expect_err("still open");
    assert_eq!(
        again.code(),
        Code::Unavailable,
        "not held back by the limits: {again:?}"
    );
}
