//! The signed webhook against a wiremock receiver: the JSON body, the
//! signature header, and the receiver's answers.

use std::time::{SystemTime, UNIX_EPOCH};

use otp_service::sms::{SIGNATURE_HEADER, sign};
use serde_json::{Value, json};
use tonic::Code;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{header, method, path},
};

use super::{Expected, app_with, assert_send_outcome};
use crate::common::{
    sms_standins::{
        WEBHOOK_SECRET, assert_code_works, code_in, requests, standin_answering,
        standin_answering_first, webhook_vars,
    },
    unique_phone,
};

fn vars(server: &MockServer) -> Vec<(String, String)> {
    let mut vars = webhook_vars(&format!("{}/sms", server.uri()));
    vars.push(("OTP_SMS_GATEWAY".into(), "webhook".into()));
    vars
}

/// The timestamp of a request's signature, after checking the signature.
fn checked_signature(request: &Request) -> u64 {
    let header = request
        .headers
        .get(SIGNATURE_HEADER)
        .expect("signature header")
        .to_str()
        .expect("ASCII header");
    let timestamp: u64 = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .expect("t=<unix seconds>");
    assert_eq!(
        header,
        sign(WEBHOOK_SECRET.as_bytes(), timestamp, &request.body),
        "v1 is HMAC-SHA256 over `<t>.<body>`"
    );
    timestamp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_is_signed_json_with_every_documented_field() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"message_id": "wh-1"})))
        .mount(&server)
        .await;
    let app = app_with(&vars(&server)).await;
    let phone = unique_phone();

    app.send(&phone).await.expect("receiver took it");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 1);
    let timestamp = checked_signature(&seen[0]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(
        now.abs_diff(timestamp) <= 60,
        "timestamp {timestamp}, now {now}"
    );
    let body: Value = serde_json::from_slice(&seen[0].body).expect("JSON body");
    let request_id = body["request_id"].as_str().expect("request_id").to_owned();
    assert_eq!(request_id.len(), 32, "128 random bits in hex: {request_id}");
    let text = body["text"].as_str().expect("text").to_owned();
    assert_eq!(
        body,
        json!({
            "request_id": request_id,
            "destination": phone,
            "text": text,
            "code_length": 6,
            "expires_in_seconds": 120,
            "locale": null,
        })
    );
    assert_code_works(&app, &phone, &code_in(&text)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_503_keeps_the_request_id_and_signs_again() {
    let server =
        standin_answering_first(ResponseTemplate::new(503), ResponseTemplate::new(200)).await;
    let app = app_with(&vars(&server)).await;

    app.send(&unique_phone()).await.expect("taken on the retry");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2);
    checked_signature(&seen[1]);
    let id = |request: &Request| {
        serde_json::from_slice::<Value>(&request.body).expect("JSON")["request_id"].clone()
    };
    assert_eq!(
        id(&seen[0]),
        id(&seen[1]),
        "the receiver can drop a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_answer_has_its_outcome() {
    let refused = |code, requests| Expected {
        code,
        requests,
        counted: false,
    };
    let cases = [
        (422, refused(Code::InvalidArgument, 1)),
        (401, refused(Code::Internal, 1)),
        (400, refused(Code::Internal, 1)),
        (429, refused(Code::Unavailable, 3)),
        (503, refused(Code::Unavailable, 3)),
        (
            500,
            Expected {
                code: Code::Unavailable,
                requests: 1,
                counted: true,
            },
        ),
        (
            502,
            Expected {
                code: Code::Unavailable,
                requests: 1,
                counted: true,
            },
        ),
    ];
    for (status, expected) in cases {
        let server = standin_answering(ResponseTemplate::new(status)).await;
        let app = app_with(&vars(&server)).await;
        assert_send_outcome(&app, &unique_phone(), &expected, || async {
            requests(&server).await.len()
        })
        .await;
    }
}
