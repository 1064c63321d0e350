//! WhatsApp through Twilio's Messages API against a stand-in: `whatsapp:`
//! addresses, the content template and its one variable, and Twilio's
//! documented WhatsApp answers.

use serde_json::json;
use tonic::Code;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{basic_auth, method, path},
};

use super::{Expected, app_with, assert_channel_send_outcome};
use crate::common::{
    sms_standins::{
        TWILIO_CONTENT_SID, TWILIO_PATH, TWILIO_SID, TWILIO_TOKEN, TWILIO_WHATSAPP_FROM,
        assert_code_works, form_fields, requests, standin_answering, twilio_channel_vars,
    },
    unique_phone,
};
use otp_service::proto::{Channel, SendOtpRequest};

fn vars(server: &MockServer) -> Vec<(String, String)> {
    let mut vars = twilio_channel_vars(server);
    vars.retain(|(k, _)| k != "OTP_TWILIO_VOICE_FROM");
    vars.push(("OTP_SMS_GATEWAY".into(), "twilio".into()));
    vars.push(("OTP_WHATSAPP_ROUTES".into(), "*=twilio_whatsapp".into()));
    vars
}

fn twilio_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_is_the_documented_content_template_post() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_PATH))
        .and(basic_auth(TWILIO_SID, TWILIO_TOKEN))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "MM0123456789abcdef0123456789abcdef",
            "status": "queued",
        })))
        .mount(&server)
        .await;
    let app = app_with(&vars(&server)).await;
    let phone = unique_phone();

    let sent = app
        .send_request(SendOtpRequest {
            phone_number: phone.clone(),
            channel: Channel::Whatsapp.into(),
            ..Default::default()
        })
        .await
        .expect("Twilio queued it");

    assert_eq!(sent.channel(), Channel::Whatsapp);
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 1);
    let fields = form_fields(&seen[0]);
    let variables: serde_json::Value =
        serde_json::from_str(&fields["ContentVariables"]).expect("JSON variables");
    let code = variables["1"].as_str().expect("variable 1").to_owned();
    assert_eq!(
        fields.into_iter().collect::<Vec<_>>(),
        [
            ("ContentSid".to_owned(), TWILIO_CONTENT_SID.to_owned()),
            (
                "ContentVariables".to_owned(),
                json!({ "1": code }).to_string()
            ),
            (
                "From".to_owned(),
                format!("whatsapp:{TWILIO_WHATSAPP_FROM}")
            ),
            ("To".to_owned(), format!("whatsapp:{phone}")),
        ],
        "whatsapp: addresses and the content template; no Body"
    );
    assert_code_works(&app, &phone, &code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locale_may_have_its_own_content_template() {
    const JAPANESE: &str = "HXfedcba9876543210fedcba9876543210";
    let server = standin_answering(ResponseTemplate::new(201).set_body_json(json!({
        "sid": "MM0123456789abcdef0123456789abcdef",
    })))
    .await;
    let file = std::env::temp_dir().join(format!("otp-twa-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        format!("default = \"{{code}}\"\n[whatsapp]\nja = {{ language = \"ja\", content_sid = \"{JAPANESE}\" }}\n"),
    )
    .expect("templates file");
    let mut vars = vars(&server);
    vars.push((
        "OTP_MESSAGE_TEMPLATES_FILE".into(),
        file.to_str().expect("utf-8 path").into(),
    ));
    let app = app_with(&vars).await;

    for (locale, content_sid) in [("ja-JP", JAPANESE), ("de", TWILIO_CONTENT_SID)] {
        app.send_request(SendOtpRequest {
            phone_number: unique_phone(),
            channel: Channel::Whatsapp.into(),
            locale: locale.into(),
            ..Default::default()
        })
        .await
        .expect("queued");
        let seen = requests(&server).await;
        let fields = form_fields(&seen[seen.len() - 1]);
        assert_eq!(fields["ContentSid"], content_sid, "{locale}");
    }
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_answer_has_its_outcome() {
    let cases = [
        (
            twilio_error(400, 63003, "Channel could not find To address"),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(400, 63024, "Invalid message recipient"),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(
                400,
                63007,
                "Twilio could not find a Channel with the specified From address",
            ),
            Expected {
                code: Code::Internal,
                requests: 1,
                counted: false,
            },
        ),
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
        let app = app_with(&vars(&server)).await;
        let phone = unique_phone();
        assert_channel_send_outcome(&app, &phone, Channel::Whatsapp, &expected, || async {
            requests(&server).await.len()
        })
        .await;
    }
}
