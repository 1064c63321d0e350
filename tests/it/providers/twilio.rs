//! Twilio Programmable Messaging against a stand-in for api.twilio.com.

use serde_json::json;
use tonic::Code;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{basic_auth, header, method, path},
};

use super::{Expected, app_with, assert_send_outcome};
use crate::common::{
    sms_standins::{
        TWILIO_FROM, TWILIO_PATH, TWILIO_SID, TWILIO_TOKEN, assert_code_works, code_in,
        form_fields, requests, standin_answering, standin_answering_first, twilio_vars,
    },
    unique_phone,
};

const MESSAGE_SID: &str = "SM0123456789abcdef0123456789abcdef";

/// What Twilio answers when it has queued the message.
fn queued() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "sid": MESSAGE_SID,
        "status": "queued",
        "error_code": null,
    }))
}

/// Twilio's error body.
fn twilio_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

fn vars(server: &MockServer, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = twilio_vars(server);
    vars.push(("OTP_SMS_GATEWAY".into(), "twilio".into()));
    vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_token_request_is_the_documented_form_post() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(basic_auth(TWILIO_SID, TWILIO_TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(queued())
        .mount(&server)
        .await;
    let app = app_with(&vars(&server, &[("OTP_MESSAGE_TEMPLATE", "Code: {code}")])).await;
    let phone = unique_phone();

    app.send(&phone).await.expect("Twilio queued it");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 1);
    let fields = form_fields(&seen[0]);
    let code = code_in(&fields["Body"]);
    assert_eq!(
        fields.into_iter().collect::<Vec<_>>(),
        [
            ("Body".to_owned(), format!("Code: {code}")),
            ("From".to_owned(), TWILIO_FROM.to_owned()),
            ("To".to_owned(), phone.clone()),
        ],
        "To in E.164, the rendered Body, From; nothing else"
    );
    assert_code_works(&app, &phone, &code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_and_messaging_service_are_used_when_configured() {
    const KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
    const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(basic_auth(KEY_SID, "key_secret_3c1d"))
        .respond_with(queued())
        .mount(&server)
        .await;
    let mut vars: Vec<(String, String)> = vars(&server, &[])
        .into_iter()
        .filter(|(k, _)| k != "OTP_TWILIO_AUTH_TOKEN" && k != "OTP_TWILIO_FROM")
        .collect();
    for (k, v) in [
        ("OTP_TWILIO_API_KEY_SID", KEY_SID),
        ("OTP_TWILIO_API_KEY_SECRET", "key_secret_3c1d"),
        ("OTP_TWILIO_MESSAGING_SERVICE_SID", SERVICE),
    ] {
        vars.push((k.into(), v.into()));
    }
    let app = app_with(&vars).await;
    let phone = unique_phone();

    app.send(&phone).await.expect("Twilio queued it");

    let fields = form_fields(&requests(&server).await[0]);
    assert_eq!(fields["MessagingServiceSid"], SERVICE);
    assert!(!fields.contains_key("From"), "{fields:?}");
    assert_eq!(fields["To"], phone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_answer_has_its_outcome() {
    let cases = [
        // The number is the problem: the caller's to fix, nothing was sent.
        (
            twilio_error(
                400,
                21211,
                "The 'To' number +1415... is not a valid phone number.",
            ),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(400, 21614, "'To' number is not a valid mobile number"),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(
                400,
                21408,
                "Permission to send an SMS has not been enabled for the region",
            ),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        // Our credentials or set-up: an operator must act; never retried.
        (
            twilio_error(401, 20003, "Authenticate"),
            Expected {
                code: Code::Internal,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(
                400,
                21606,
                "The From phone number is not a valid, SMS-capable number",
            ),
            Expected {
                code: Code::Internal,
                requests: 1,
                counted: false,
            },
        ),
        // Not processed: retried (first try plus two), then unavailable.
        (
            twilio_error(429, 20429, "Too Many Requests"),
            Expected {
                code: Code::Unavailable,
                requests: 3,
                counted: false,
            },
        ),
        (
            ResponseTemplate::new(503),
            Expected {
                code: Code::Unavailable,
                requests: 3,
                counted: false,
            },
        ),
        // May have been queued: one request, and the send counts.
        (
            twilio_error(500, 20500, "Internal Server Error"),
            Expected {
                code: Code::Unavailable,
                requests: 1,
                counted: true,
            },
        ),
    ];
    for (answer, expected) in cases {
        let server = standin_answering(answer).await;
        let app = app_with(&vars(&server, &[])).await;
        let phone = unique_phone();
        assert_send_outcome(&app, &phone, &expected, || async {
            requests(&server).await.len()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_429_then_success_is_one_sms() {
    let server = standin_answering_first(
        twilio_error(429, 20429, "Too Many Requests").insert_header("retry-after", "0"),
        queued(),
    )
    .await;
    let app = app_with(&vars(&server, &[])).await;
    let phone = unique_phone();

    app.send(&phone).await.expect("second try queued");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "the retry is the same message");
    assert_code_works(&app, &phone, &code_in(&form_fields(&seen[1])["Body"])).await;
}
