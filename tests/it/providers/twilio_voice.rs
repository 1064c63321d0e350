//! Voice through Twilio's Calls API against a stand-in: the form with the
//! inline TwiML that says the code digit by digit, twice, and the Calls
//! API's documented answers.

use serde_json::json;
use tonic::Code;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{basic_auth, header, method, path},
};

use super::{Expected, app_with, assert_channel_send_outcome};
use crate::common::{
    sms_standins::{
        TWILIO_CALLS_PATH, TWILIO_SID, TWILIO_TOKEN, TWILIO_VOICE_FROM, assert_code_works,
        form_fields, requests, spoken_code, standin_answering, twilio_channel_vars,
    },
    unique_phone,
};
use otp_service::proto::{Channel, SendOtpRequest};

fn vars(server: &MockServer, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = twilio_channel_vars(server);
    vars.retain(|(k, _)| !k.starts_with("OTP_TWILIO_WHATSAPP"));
    vars.push(("OTP_SMS_GATEWAY".into(), "twilio".into()));
    vars.push(("OTP_VOICE_ROUTES".into(), "*=twilio_voice".into()));
    vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
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
async fn the_request_is_the_documented_call_with_twiml_said_twice() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TWILIO_CALLS_PATH))
        .and(basic_auth(TWILIO_SID, TWILIO_TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "sid": "CA0123456789abcdef0123456789abcdef",
            "status": "queued",
        })))
        .mount(&server)
        .await;
    let app = app_with(&vars(&server, &[("OTP_APP_NAME", "Acme")])).await;
    let phone = unique_phone();

    let sent = app
        .send_request(SendOtpRequest {
            phone_number: phone.clone(),
            channel: Channel::Voice.into(),
            ..Default::default()
        })
        .await
        .expect("Twilio placed the call");

    assert_eq!(sent.channel(), Channel::Voice);
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 1);
    let fields = form_fields(&seen[0]);
    let code = spoken_code(&fields["Twiml"]);
    let spelled = code
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    let say = format!("<Say language=\"en-US\">Your Acme verification code is {spelled}.</Say>");
    assert_eq!(
        fields.into_iter().collect::<Vec<_>>(),
        [
            ("From".to_owned(), TWILIO_VOICE_FROM.to_owned()),
            ("To".to_owned(), phone.clone()),
            (
                "Twiml".to_owned(),
                format!("<Response>{say}<Pause length=\"1\"/>{say}</Response>")
            ),
        ],
        "To, From and the TwiML that says the code digit by digit, twice"
    );
    assert_code_works(&app, &phone, &code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_answer_has_its_outcome() {
    let cases = [
        (
            twilio_error(400, 21215, "Account not authorized to call +1415..."),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(400, 13224, "Dial: Invalid phone number format"),
            Expected {
                code: Code::InvalidArgument,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(400, 21210, "'From' phone number not verified"),
            Expected {
                code: Code::Internal,
                requests: 1,
                counted: false,
            },
        ),
        (
            twilio_error(401, 20003, "Authenticate"),
            Expected {
                code: Code::Internal,
                requests: 1,
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
        assert_channel_send_outcome(&app, &phone, Channel::Voice, &expected, || async {
            requests(&server).await.len()
        })
        .await;
    }
}
