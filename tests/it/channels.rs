//! Channels beside SMS, through the real server and the real providers'
//! wire formats against stand-ins, on every store: WhatsApp and voice
//! deliver the code; WhatsApp falls through to SMS on Meta's documented
//! "not a WhatsApp user" answer (one SMS, one code); an uncertain WhatsApp
//! answer never falls through; a channel without routes is
//! FAILED_PRECONDITION and counts nothing; a value that is no channel is
//! INVALID_ARGUMENT; an idempotent retry answers with the channel that
//! carried the first call's code.

use otp_service::proto::{Channel, SendOtpRequest, SendOtpResponse, VerifyOtpResult};
use serde_json::json;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    common::{
        RedisServer, StoreKind, TestApp, assert_bad_request,
        sms_standins::{
            TWILIO_CALLS_PATH, TWILIO_PATH, WHATSAPP_PATH, assert_code_works, closed_port_url,
            code_in, form_fields, pairs, requests, spoken_code, twilio_channel_vars,
            whatsapp_cloud_vars, whatsapp_code,
        },
        unique_phone,
    },
    events::{STREAM, STREAM_KEY, entries},
};

/// Stand-ins for Meta's Cloud API and for Twilio (SMS and calls).
pub(crate) struct Providers {
    pub(crate) meta: MockServer,
    pub(crate) twilio: MockServer,
}

impl Providers {
    /// Meta answers every message with `whatsapp`; Twilio queues every SMS
    /// and creates every call.
    pub(crate) async fn start(whatsapp: ResponseTemplate) -> Self {
        let providers = Self {
            meta: MockServer::start().await,
            twilio: MockServer::start().await,
        };
        Mock::given(method("POST"))
            .and(path(WHATSAPP_PATH))
            .respond_with(whatsapp)
            .mount(&providers.meta)
            .await;
        for (resource, sid) in [
            (TWILIO_PATH, "SM0123456789abcdef0123456789abcdef"),
            (TWILIO_CALLS_PATH, "CA0123456789abcdef0123456789abcdef"),
        ] {
            Mock::given(method("POST"))
                .and(path(resource))
                .respond_with(
                    ResponseTemplate::new(201)
                        .set_body_json(json!({"sid": sid, "status": "queued"})),
                )
                .mount(&providers.twilio)
                .await;
        }
        providers
    }

    /// The settings of SMS through Twilio, WhatsApp through Meta, voice
    /// through Twilio, and `more`.
    pub(crate) fn vars(&self, more: &[(&str, &str)]) -> Vec<(String, String)> {
        // WhatsApp through Meta here: Twilio's WhatsApp sender stays unset.
        let mut vars = twilio_channel_vars(&self.twilio);
        vars.retain(|(k, _)| !k.starts_with("OTP_TWILIO_WHATSAPP"));
        vars.extend(whatsapp_cloud_vars(&self.meta));
        vars.extend(
            [
                ("OTP_SMS_ROUTES", "*=twilio"),
                ("OTP_WHATSAPP_ROUTES", "*=whatsapp_cloud"),
                ("OTP_VOICE_ROUTES", "*=twilio_voice"),
            ]
            .into_iter()
            .chain(more.iter().copied())
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        vars
    }

    /// A server on `store` with [`Providers::vars`].
    async fn app(&self, store: StoreKind, more: &[(&str, &str)]) -> TestApp {
        TestApp::builder()
            .store(store)
            .env(&pairs(&self.vars(more)))
            .configured_gateway()
            .spawn()
            .await
    }

    /// The SMS bodies and call TwiMLs Twilio was asked for, in order.
    pub(crate) async fn twilio_requests(&self, resource: &str) -> Vec<String> {
        requests(&self.twilio)
            .await
            .iter()
            .filter(|request| request.url.path() == resource)
            .map(|request| {
                let fields = form_fields(request);
                fields
                    .get("Body")
                    .or_else(|| fields.get("Twiml"))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// What Meta answers when it has taken a message.
pub(crate) fn meta_accepted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": "14155550123", "wa_id": "14155550123"}],
        "messages": [{"id": "wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}],
    }))
}

/// Meta's error body for `code`.
pub(crate) fn meta_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "AazWxFOyQkMdL1Yp3lp2Jm4",
        }
    }))
}

pub(crate) async fn send_on(
    app: &TestApp,
    phone: &str,
    channel: Channel,
) -> Result<SendOtpResponse, Status> {
    app.send_request(SendOtpRequest {
        phone_number: phone.into(),
        channel: channel.into(),
        ..Default::default()
    })
    .await
}

async fn whatsapp_delivers_the_code(store: StoreKind) {
    let providers = Providers::start(meta_accepted()).await;
    let app = providers.app(store, &[]).await;
    let phone = unique_phone();

    let sent = send_on(&app, &phone, Channel::Whatsapp)
        .await
        .expect("WhatsApp took it");

    assert_eq!(sent.channel(), Channel::Whatsapp);
    let seen = requests(&providers.meta).await;
    assert_eq!(seen.len(), 1);
    assert!(providers.twilio_requests(TWILIO_PATH).await.is_empty());
    assert_code_works(&app, &phone, &whatsapp_code(&seen[0])).await;
}

async fn not_on_whatsapp_falls_through_to_one_sms_with_the_one_code(store: StoreKind) {
    let not_on_whatsapp = meta_error(
        400,
        131026,
        "(#131026) Message Undeliverable: receiver is not a WhatsApp user",
    );
    let providers = Providers::start(not_on_whatsapp).await;
    let app = providers
        .app(store, &[("OTP_CHANNEL_FALLBACK", "whatsapp>sms")])
        .await;
    let phone = unique_phone();

    let sent = send_on(&app, &phone, Channel::Whatsapp)
        .await
        .expect("SMS carried it");

    assert_eq!(
        sent.channel(),
        Channel::Sms,
        "the response names the carrier"
    );
    let whatsapp = requests(&providers.meta).await;
    assert_eq!(whatsapp.len(), 1, "WhatsApp was asked once");
    let sms = providers.twilio_requests(TWILIO_PATH).await;
    assert_eq!(sms.len(), 1, "exactly one SMS");
    let code = code_in(&sms[0]);
    assert_eq!(
        whatsapp_code(&whatsapp[0]),
        code,
        "one code: WhatsApp was handed the code the SMS carried"
    );
    assert_code_works(&app, &phone, &code).await;
    let again = app.verify(&phone, &code).await.expect("VerifyOtp answers");
    assert_eq!(
        again.result(),
        VerifyOtpResult::Expired,
        "no second code to approve"
    );
}

async fn voice_reads_the_code(store: StoreKind) {
    let providers = Providers::start(meta_accepted()).await;
    let app = providers.app(store, &[]).await;
    let phone = unique_phone();

    let sent = send_on(&app, &phone, Channel::Voice)
        .await
        .expect("Twilio placed the call");

    assert_eq!(sent.channel(), Channel::Voice);
    let calls = providers.twilio_requests(TWILIO_CALLS_PATH).await;
    assert_eq!(calls.len(), 1);
    assert!(providers.twilio_requests(TWILIO_PATH).await.is_empty());
    assert_code_works(&app, &phone, &spoken_code(&calls[0])).await;
}

async fn an_uncertain_whatsapp_answer_never_falls_through(store: StoreKind) {
    let maybe_taken = meta_error(500, 1, "(#1) An unknown error occurred");
    let providers = Providers::start(maybe_taken).await;
    let app = providers
        .app(store, &[("OTP_CHANNEL_FALLBACK", "whatsapp>sms")])
        .await;
    let phone = unique_phone();

    let status = send_on(&app, &phone, Channel::Whatsapp)
        .await
        .expect_err("maybe delivered");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(requests(&providers.meta).await.len(), 1, "never retried");
    assert!(
        providers.twilio_requests(TWILIO_PATH).await.is_empty(),
        "no SMS after a WhatsApp message that may have gone out"
    );
    let again = send_on(&app, &phone, Channel::Sms).await;
    assert!(
        matches!(&again, Err(status) if status.code() == Code::ResourceExhausted),
        "the maybe-sent WhatsApp message still counts: {again:?}"
    );
}

async fn a_channel_without_routes_is_failed_precondition_and_counts_nothing(store: StoreKind) {
    let providers = Providers::start(meta_accepted()).await;
    let mut vars = twilio_channel_vars(&providers.twilio);
    vars.retain(|(k, _)| k != "OTP_TWILIO_VOICE_FROM" && !k.contains("WHATSAPP"));
    vars.push(("OTP_SMS_ROUTES".into(), "*=twilio".into()));
    let app = TestApp::builder()
        .store(store)
        .env(&pairs(&vars))
        .configured_gateway()
        .spawn()
        .await;
    let phone = unique_phone();

    for channel in [Channel::Voice, Channel::Whatsapp] {
        let status = send_on(&app, &phone, channel)
            .await
            .expect_err("not configured");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        let info = status.get_error_details().error_info().cloned();
        let info = info.expect("ErrorInfo");
        assert_eq!(info.reason, "CHANNEL_NOT_CONFIGURED");
        assert_eq!(
            info.metadata["channel"],
            channel
                .as_str_name()
                .trim_start_matches("CHANNEL_")
                .to_lowercase()
        );
    }
    assert!(requests(&providers.twilio).await.is_empty());
    let sent = app.send(&phone).await.expect("nothing was counted");
    assert_eq!(sent.channel(), Channel::Sms, "unset is SMS");
}

/// A `channel` that is no `Channel` value (a typo, a newer client's) is
/// refused naming the field, and nothing is sent or counted: it is not
/// quietly sent as SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_channel_is_invalid_argument_and_sends_nothing() {
    let app = TestApp::builder().spawn().await;
    let phone = unique_phone();
    let status = app
        .send_request(SendOtpRequest {
            phone_number: phone.clone(),
            channel: 99,
            ..Default::default()
        })
        .await
        .expect_err("99 is no channel");
    assert_bad_request(&status, "channel");
    let details = status.get_error_details();
    let violation = &details.bad_request().expect("BadRequest").field_violations[0];
    for known in ["CHANNEL_SMS", "CHANNEL_WHATSAPP", "CHANNEL_VOICE"] {
        assert!(violation.description.contains(known), "{violation:?}");
    }
    assert!(app.sms.last_code_for(&phone).is_none(), "nothing was sent");
    let sent = app.send(&phone).await.expect("nothing was counted");
    assert_eq!(sent.channel(), Channel::Sms, "unset is still SMS");
}

async fn an_idempotent_retry_of_a_whatsapp_send_names_whatsapp_and_sends_nothing(store: StoreKind) {
    let providers = Providers::start(meta_accepted()).await;
    let app = providers.app(store, &[]).await;
    let phone = unique_phone();
    let request = SendOtpRequest {
        phone_number: phone.clone(),
        channel: Channel::Whatsapp.into(),
        idempotency_key: format!("wa-{phone}"),
        ..Default::default()
    };

    let first = app.send_request(request.clone()).await.expect("sent");
    let again = app.send_request(request).await.expect("the first answer");

    assert_eq!(again, first, "the recorded response, channel included");
    assert_eq!(again.channel(), Channel::Whatsapp);
    assert_eq!(requests(&providers.meta).await.len(), 1, "one message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_to_a_landline_falls_through_to_a_call_with_the_same_code() {
    let providers = Providers::start(meta_accepted()).await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21614,
            "message": "'To' number is not a valid mobile number",
            "status": 400,
        })))
        .with_priority(1)
        .mount(&providers.twilio)
        .await;
    let app = providers
        .app(StoreKind::Memory, &[("OTP_CHANNEL_FALLBACK", "sms>voice")])
        .await;
    let phone = unique_phone();

    let sent = app.send(&phone).await.expect("the call carried it");

    assert_eq!(sent.channel(), Channel::Voice);
    let calls = providers.twilio_requests(TWILIO_CALLS_PATH).await;
    assert_eq!(calls.len(), 1, "one call");
    let sms = providers.twilio_requests(TWILIO_PATH).await;
    assert_eq!(sms.len(), 1, "the SMS was refused once");
    let code = spoken_code(&calls[0]);
    assert_eq!(code_in(&sms[0]), code, "one code");
    assert_code_works(&app, &phone, &code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_whatsapp_provider_falls_through_and_events_name_the_carrier() {
    let providers = Providers::start(meta_accepted()).await;
    let redis = RedisServer::start().await;
    let mut vars = providers.vars(&[
        ("OTP_CHANNEL_FALLBACK", "whatsapp>sms"),
        ("OTP_EVENTS_STREAM", STREAM),
    ]);
    // Connection refused: surely not sent.
    vars.push(("OTP_WHATSAPP_CLOUD_BASE_URL".into(), closed_port_url()));
    let app = TestApp::builder()
        .redis(&redis)
        .env(&pairs(&vars))
        .configured_gateway()
        .spawn()
        .await;
    let phone = unique_phone();

    let sent = send_on(&app, &phone, Channel::Whatsapp)
        .await
        .expect("SMS carried it");

    assert_eq!(sent.channel(), Channel::Sms);
    assert_eq!(providers.twilio_requests(TWILIO_PATH).await.len(), 1);
    let events = entries(&redis.url(), STREAM_KEY, 1).await;
    assert_eq!(events[0]["event"], "sent");
    assert_eq!(events[0]["channel"], "sms", "the channel that carried it");
    assert_eq!(events[0]["provider"], "twilio");
}

for_each_store!(
    whatsapp_delivers_the_code,
    not_on_whatsapp_falls_through_to_one_sms_with_the_one_code,
    voice_reads_the_code,
    an_uncertain_whatsapp_answer_never_falls_through,
    a_channel_without_routes_is_failed_precondition_and_counts_nothing,
    an_idempotent_retry_of_a_whatsapp_send_names_whatsapp_and_sends_nothing,
);
