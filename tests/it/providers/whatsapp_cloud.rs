//! Meta's WhatsApp Cloud API against a stand-in for graph.facebook.com: the
//! exact documented request (an authentication template with the code as
//! the body's parameter and the copy-code button's) and each documented
//! class of answer.

use serde_json::json;
use tonic::Code;
use wiremock::{
    Mock, MockServer,
    matchers::{header, method, path},
};

use super::{Expected, app_with, assert_channel_send_outcome};
use crate::{
    channels::{meta_accepted, meta_error},
    common::{
        sms_standins::{
            WHATSAPP_PATH, WHATSAPP_TEMPLATE, WHATSAPP_TOKEN, assert_code_works, requests,
            standin_answering, whatsapp_cloud_vars, whatsapp_code,
        },
        unique_phone,
    },
};
use otp_service::proto::{Channel, SendOtpRequest};

fn vars(server: &MockServer, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = whatsapp_cloud_vars(server);
    vars.push(("OTP_WHATSAPP_ROUTES".into(), "*=whatsapp_cloud".into()));
    vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_is_the_documented_authentication_template() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(WHATSAPP_PATH))
        .and(header("authorization", format!("Bearer {WHATSAPP_TOKEN}")))
        .and(header("content-type", "application/json"))
        .respond_with(meta_accepted())
        .mount(&server)
        .await;
    let app = app_with(&vars(&server, &[])).await;
    let phone = unique_phone();

    let sent = app
        .send_request(SendOtpRequest {
            phone_number: phone.clone(),
            channel: Channel::Whatsapp.into(),
            locale: "pt-BR".into(),
            ..Default::default()
        })
        .await
        .expect("Meta took it");

    assert_eq!(sent.channel(), Channel::Whatsapp);
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 1);
    let code = whatsapp_code(&seen[0]);
    let expected = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": phone.trim_start_matches('+'),
        "type": "template",
        "template": {
            "name": WHATSAPP_TEMPLATE,
            // No `[whatsapp]` entry for pt-BR: OTP_WHATSAPP_LANGUAGE's default.
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": code}]},
                {"type": "button", "sub_type": "url", "index": "0",
                 "parameters": [{"type": "text", "text": code}]},
            ],
        },
    });
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).expect("a JSON body");
    assert_eq!(
        body, expected,
        "exactly the documented message, nothing else"
    );
    assert_code_works(&app, &phone, &code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_answer_has_its_outcome() {
    let cases = [
        // Not a WhatsApp user: the number's, nothing sent, nothing counted.
        (
            meta_error(400, 131026, "(#131026) Message Undeliverable."),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        // Our token: an operator must act.
        (
            meta_error(
                401,
                190,
                "Error validating access token: Session has expired",
            ),
            Expected {
                code: Code::Internal,
                requests: 1,
                counted: false,
            },
        ),
        // The template is missing or not approved in that language.
        (
            meta_error(
                404,
                132001,
                "(#132001) Template name does not exist in the translation",
            ),
            Expected {
                code: Code::Internal,
                requests: 1,
                counted: false,
            },
        ),
        // Throughput limit: not processed, retried (first try plus two).
        (
            meta_error(400, 130429, "(#130429) Rate limit hit"),
            Expected {
                code: Code::Unavailable,
                requests: 3,
                counted: false,
            },
        ),
        // May have been taken: one request, and the send counts.
        (
            meta_error(500, 131000, "(#131000) Something went wrong"),
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
        assert_channel_send_outcome(&app, &phone, Channel::Whatsapp, &expected, || async {
            requests(&server).await.len()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_language_follows_the_locale() {
    let server = standin_answering(meta_accepted()).await;
    let dir = std::env::temp_dir().join(format!("otp-wa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("templates.toml");
    std::fs::write(
        &file,
        "default = \"{code}\"\n[whatsapp]\npt = \"pt_BR\"\nes = \"es\"\n",
    )
    .expect("templates file");
    let file = file.to_str().expect("utf-8 path").to_owned();
    let app = app_with(&vars(&server, &[("OTP_MESSAGE_TEMPLATES_FILE", &file)])).await;

    for (locale, language) in [("pt-PT", "pt_BR"), ("es-419", "es"), ("fr", "en_US")] {
        let phone = unique_phone();
        app.send_request(SendOtpRequest {
            phone_number: phone,
            channel: Channel::Whatsapp.into(),
            locale: locale.into(),
            ..Default::default()
        })
        .await
        .expect("Meta took it");
        let seen = requests(&server).await;
        let body: serde_json::Value =
            serde_json::from_slice(&seen[seen.len() - 1].body).expect("JSON");
        assert_eq!(body["template"]["language"]["code"], language, "{locale}");
    }
}
