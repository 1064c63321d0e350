//! Vonage SMS API against a stand-in for rest.nexmo.com: it answers 200
//! even when it refuses, so each `messages[].status` decides.

use serde_json::{Value, json};
use tonic::Code;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path},
};

use super::{Expected, app_with, assert_send_outcome};
use crate::common::{
    sms_standins::{
        VONAGE_FROM, VONAGE_KEY, VONAGE_SECRET, assert_code_works, code_in, form_fields, requests,
        standin_answering, standin_answering_first, vonage_vars,
    },
    unique_phone,
};

/// Vonage's answer with one message part of `status`.
fn verdict(status: &str) -> ResponseTemplate {
    let mut part = json!({ "to": "14155550123", "status": status });
    if status == "0" {
        part["message-id"] = Value::from("0A0000000123ABCD1");
        part["remaining-balance"] = Value::from("3.14159265");
    } else {
        part["error-text"] = Value::from(format!("status {status}"));
    }
    ResponseTemplate::new(200).set_body_json(json!({ "message-count": "1", "messages": [part] }))
}

fn vars(server: &MockServer, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = vonage_vars(server);
    vars.push(("OTP_SMS_GATEWAY".into(), "vonage".into()));
    vars.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_is_the_documented_form_post_with_digits_only_to() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(verdict("0"))
        .mount(&server)
        .await;
    let app = app_with(&vars(&server, &[("OTP_MESSAGE_TEMPLATE", "Code: {code}")])).await;
    let phone = unique_phone();

    app.send(&phone).await.expect("Vonage accepted it");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 1);
    let fields = form_fields(&seen[0]);
    let code = code_in(&fields["text"]);
    assert_eq!(
        fields.into_iter().collect::<Vec<_>>(),
        [
            ("api_key".to_owned(), VONAGE_KEY.to_owned()),
            ("api_secret".to_owned(), VONAGE_SECRET.to_owned()),
            ("from".to_owned(), VONAGE_FROM.to_owned()),
            ("text".to_owned(), format!("Code: {code}")),
            ("to".to_owned(), phone[1..].to_owned()),
        ],
        "GSM-7 text goes without `type`; `to` has no `+`"
    );
    assert_code_works(&app, &phone, &code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_outside_gsm7_goes_as_unicode() {
    let server = standin_answering(verdict("0")).await;
    let app = app_with(&vars(
        &server,
        &[("OTP_MESSAGE_TEMPLATE", "Seu código: {code}")],
    ))
    .await;

    app.send(&unique_phone()).await.expect("accepted");

    let fields = form_fields(&requests(&server).await[0]);
    assert_eq!(fields["type"], "unicode");
    assert!(fields["text"].starts_with("Seu código: "), "{fields:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_status_has_its_outcome() {
    let refused = |code, requests| Expected {
        code,
        requests,
        counted: false,
    };
    let cases = [
        ("1", refused(Code::Unavailable, 3)), // throttled: retried, then unavailable
        ("2", refused(Code::Internal, 1)),    // missing parameters
        ("4", refused(Code::Internal, 1)),    // invalid credentials
        ("6", refused(Code::InvalidArgument, 1)), // unroutable prefix
        ("7", refused(Code::InvalidArgument, 1)), // number barred
        ("9", refused(Code::Internal, 1)),    // no credit
        // Internal error: may have been handed on; one request, counted.
        (
            "5",
            Expected {
                code: Code::Unavailable,
                requests: 1,
                counted: true,
            },
        ),
    ];
    for (status, expected) in cases {
        let server = standin_answering(verdict(status)).await;
        let app = app_with(&vars(&server, &[])).await;
        assert_send_outcome(&app, &unique_phone(), &expected, || async {
            requests(&server).await.len()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_then_accepted_is_one_sms_and_http_errors_keep_their_meaning() {
    let server = standin_answering_first(verdict("1"), verdict("0")).await;
    let app = app_with(&vars(&server, &[])).await;
    let phone = unique_phone();
    app.send(&phone).await.expect("accepted on the retry");
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2);
    assert_code_works(&app, &phone, &code_in(&form_fields(&seen[1])["text"])).await;

    for (http, expected) in [
        (
            503,
            Expected {
                code: Code::Unavailable,
                requests: 3,
                counted: false,
            },
        ),
        (
            500,
            Expected {
                code: Code::Unavailable,
                requests: 1,
                counted: true,
            },
        ),
        (
            401,
            Expected {
                code: Code::Internal,
                requests: 1,
                counted: false,
            },
        ),
    ] {
        let server = standin_answering(ResponseTemplate::new(http)).await;
        let app = app_with(&vars(&server, &[])).await;
        assert_send_outcome(&app, &unique_phone(), &expected, || async {
            requests(&server).await.len()
        })
        .await;
    }
}
