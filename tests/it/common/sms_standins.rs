//! What the SMS provider tests share: stand-ins that answer every send
//! alike (or the first send otherwise), a request's form fields, a port
//! nothing listens on, and the provider settings that point a server at a
//! wiremock stand-in. The stand-ins stand in for Twilio, Vonage, TextBee or
//! a webhook receiver only; everything on our side is the real code.

use std::collections::BTreeMap;

use otp_service::proto::VerifyOtpResult;
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers::method};

use super::{StoreKind, TestApp};

/// The Twilio account of every test (the stand-in checks it in the path).
pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "twilio_token_4f9a2c71";
pub const TWILIO_FROM: &str = "+14155550100";
pub const TWILIO_PATH: &str =
    "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
pub const VONAGE_KEY: &str = "a1b2c3d4";
pub const VONAGE_SECRET: &str = "vonage_secret_77e1";
pub const VONAGE_FROM: &str = "AcmeOTP";
pub const TEXTBEE_PATH: &str = "/api/v1/gateway/devices/dev-42/send-sms";
pub const TEXTBEE_KEY: &str = "tb_test_key_4f9a2c71";
pub const WEBHOOK_SECRET: &str = "whsec_0123456789abcdef0123456789abcdef";
pub const TWILIO_CALLS_PATH: &str =
    "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json";
pub const TWILIO_WHATSAPP_FROM: &str = "+14155550111";
pub const TWILIO_CONTENT_SID: &str = "HX0123456789abcdef0123456789abcdef";
pub const TWILIO_VOICE_FROM: &str = "+14155550122";
pub const WHATSAPP_PHONE_NUMBER_ID: &str = "106540352242922";
pub const WHATSAPP_TOKEN: &str = "EAAJB_test_token_3c1d9f";
pub const WHATSAPP_TEMPLATE: &str = "otp_code";
pub const WHATSAPP_PATH: &str = "/v25.0/106540352242922/messages";

/// The variables of Meta's WhatsApp Cloud API at `server`, with the template.
pub fn whatsapp_cloud_vars(server: &MockServer) -> Vec<(String, String)> {
    vec![
        (
            "OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID".into(),
            WHATSAPP_PHONE_NUMBER_ID.into(),
        ),
        (
            "OTP_WHATSAPP_CLOUD_ACCESS_TOKEN".into(),
            WHATSAPP_TOKEN.into(),
        ),
        ("OTP_WHATSAPP_CLOUD_BASE_URL".into(), server.uri()),
        ("OTP_WHATSAPP_TEMPLATE".into(), WHATSAPP_TEMPLATE.into()),
    ]
}

/// The Twilio account at `server` with its SMS, WhatsApp and voice senders.
pub fn twilio_channel_vars(server: &MockServer) -> Vec<(String, String)> {
    let mut vars = twilio_vars(server);
    vars.extend([
        (
            "OTP_TWILIO_WHATSAPP_FROM".to_owned(),
            TWILIO_WHATSAPP_FROM.to_owned(),
        ),
        (
            "OTP_TWILIO_WHATSAPP_CONTENT_SID".to_owned(),
            TWILIO_CONTENT_SID.to_owned(),
        ),
        (
            "OTP_TWILIO_VOICE_FROM".to_owned(),
            TWILIO_VOICE_FROM.to_owned(),
        ),
    ]);
    vars
}

/// The code a WhatsApp Cloud API request carries as the body's parameter.
pub fn whatsapp_code(request: &Request) -> String {
    let body: serde_json::Value = serde_json::from_slice(&request.body).expect("a JSON body");
    body.pointer("/template/components/0/parameters/0/text")
        .and_then(serde_json::Value::as_str)
        .expect("the body parameter")
        .to_owned()
}

/// The code a call's TwiML says (digit by digit, in its first `<Say>`).
pub fn spoken_code(twiml: &str) -> String {
    let start = twiml.find("<Say").expect("a <Say>");
    let end = twiml[start..].find("</Say>").expect("a </Say>") + start;
    twiml[start..end]
        .split_once('>')
        .map(|(_, said)| said.chars().filter(char::is_ascii_digit).collect())
        .expect("said text")
}

/// The variables of a Twilio account whose API is `server`.
pub fn twilio_vars(server: &MockServer) -> Vec<(String, String)> {
    vec![
        ("OTP_TWILIO_ACCOUNT_SID".into(), TWILIO_SID.into()),
        ("OTP_TWILIO_AUTH_TOKEN".into(), TWILIO_TOKEN.into()),
        ("OTP_TWILIO_FROM".into(), TWILIO_FROM.into()),
        ("OTP_TWILIO_BASE_URL".into(), server.uri()),
    ]
}

/// The variables of a Vonage account whose API is `server`.
pub fn vonage_vars(server: &MockServer) -> Vec<(String, String)> {
    vec![
        ("OTP_VONAGE_API_KEY".into(), VONAGE_KEY.into()),
        ("OTP_VONAGE_API_SECRET".into(), VONAGE_SECRET.into()),
        ("OTP_VONAGE_FROM".into(), VONAGE_FROM.into()),
        ("OTP_VONAGE_BASE_URL".into(), server.uri()),
    ]
}

/// The variables of a TextBee device served by `base` (a stand-in's URI).
pub fn textbee_vars(base: &str) -> Vec<(String, String)> {
    vec![
        ("SMS_SENDER_API".into(), format!("{base}{TEXTBEE_PATH}")),
        ("TEXTBEE_API_KEY".into(), TEXTBEE_KEY.into()),
    ]
}

/// The variables of a webhook receiver at `url`.
pub fn webhook_vars(url: &str) -> Vec<(String, String)> {
    vec![
        ("OTP_SMS_WEBHOOK_URL".into(), url.into()),
        ("OTP_SMS_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()),
    ]
}

/// A server on `store` sending through the TextBee device at `send_url`,
/// with `more` settings.
pub async fn textbee_app_at(store: StoreKind, send_url: &str, more: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("SMS_SENDER_API", send_url),
        ("TEXTBEE_API_KEY", TEXTBEE_KEY),
    ];
    vars.extend_from_slice(more);
    TestApp::builder()
        .store(store)
        .env(&vars)
        .configured_gateway()
        .spawn()
        .await
}

/// Borrowed pairs, as the harness takes them.
pub fn pairs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A URL on a loopback port where nothing listens, and nothing will while
/// the tests run: the port is held by a socket that is bound but never
/// listens (a connection to it is refused), kept for the whole process, so
/// a parallel test cannot be handed the same port and start listening there.
pub fn closed_port_url() -> String {
    static HELD: std::sync::Mutex<Vec<tokio::net::TcpSocket>> = std::sync::Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("bound to a free port");
    let closed = socket.local_addr().expect("bound");
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(socket);
    format!("http://{closed}")
}

/// A provider stand-in that answers every send (any POST) with `answer`.
pub async fn standin_answering(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// A provider stand-in that answers the first send with `first` and every
/// later one with `then`: a failed try, then what its retry gets.
pub async fn standin_answering_first(
    first: ResponseTemplate,
    then: ResponseTemplate,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(then)
        .mount(&server)
        .await;
    server
}

pub async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

/// A form-encoded body's fields (each name once).
pub fn form_fields(request: &Request) -> BTreeMap<String, String> {
    let body = std::str::from_utf8(&request.body).expect("utf-8 form");
    reqwest::Url::parse(&format!("http://form/?{body}"))
        .expect("form parses")
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// The first run of four or more digits in a text.
pub fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 4)
        .expect("a code in the text")
        .to_owned()
}

/// Verifies `code` for `phone` and asserts it is accepted.
pub async fn assert_code_works(app: &TestApp, phone: &str, code: &str) {
    let verified = app.verify(phone, code).await.expect("VerifyOtp answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved, "{code}");
}
