//! The TextBee gateway against a real HTTP server standing in for TextBee:
//! the exact request, retries, time budget, error mapping and rollback, all
//! driven through the real gRPC server.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::common::{
    StoreKind, TestApp,
    binary::ServiceProcess,
    connect,
    recording_gateway::extract_code,
    sms_standins::{
        closed_port_url, requests, standin_answering, standin_answering_first, textbee_app_at,
    },
    unique_phone,
};
use otp_service::proto::{SendOtpRequest, VerifyOtpResult, otp_service_client::OtpServiceClient};
use serde_json::{Value, json};
use tonic::Code;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{body_partial_json, method, path},
};

const SEND_PATH: &str = "/api/v1/gateway/devices/dev-42/send-sms";
const KEY: &str = "tb_test_key_4f9a2c71";
const BATCH_ID: &str = "6650f0c2aa19";

/// What TextBee answers when it has queued the message.
fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "data": {
            "success": true,
            "message": "SMS added to queue for processing",
            "smsBatchId": BATCH_ID,
            "recipientCount": 1
        }
    }))
}

fn send_url(server: &MockServer) -> String {
    format!("{}{SEND_PATH}", server.uri())
}

/// A server whose gateway is chosen by its settings, pointed at `server`.
async fn textbee_app(store: StoreKind, server: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    textbee_app_at(store, &send_url(server), extra).await
}

fn message_of(request: &Request) -> String {
    let body: Value = request.body_json().expect("JSON body");
    body["message"]
        .as_str()
        .expect("message is text")
        .to_owned()
}

/// No code is pending, so nothing the user never received can be guessed.
async fn assert_nothing_pending(app: &TestApp, phone: &str) {
    let left = app.time_left(phone).await.expect("TimeLeft answers");
    assert!(!left.pending, "a code is still pending: {left:?}");
    let guess = app
        .verify(phone, "000000")
        .await
        .expect("VerifyOtp answers");
    assert_eq!(guess.result(), VerifyOtpResult::Expired);
}

async fn exact_request_is_sent_and_the_texted_code_verifies(store: StoreKind) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(accepted())
        .mount(&server)
        .await;
    let app = textbee_app(
        store,
        &server,
        &[
            ("OTP_SMS_GATEWAY", "textbee"),
            (
                "OTP_MESSAGE_TEMPLATE",
                "{app}: your code is {code}, valid {minutes} min ({seconds}s)",
            ),
            ("OTP_APP_NAME", "Acme"),
            ("OTP_WEBOTP_DOMAIN", "login.example.com"),
        ],
    )
    .await;
    let phone = unique_phone();

    app.send(&format!("{} {}", &phone[..5], &phone[5..]))
        .await
        .expect("SendOtp succeeds");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 1, "exactly one request");
    let request = &seen[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), SEND_PATH);
    assert_eq!(request.headers.get("x-api-key").expect("key header"), KEY);
    assert_eq!(
        request.headers.get("content-type").expect("content type"),
        "application/json"
    );
    let body: Value = request.body_json().expect("JSON body");
    let code = extract_code(&message_of(request)).expect("code in message");
    assert_eq!(code.len(), 6);
    assert_eq!(
        body,
        json!({
            "recipients": [phone],
            "message": format!(
                "Acme: your code is {code}, valid 2 min (120s)\n\n@login.example.com #{code}"
            ),
        }),
        "recipients in E.164 and the rendered template, nothing else"
    );

    let verified = app.verify(&phone, &code).await.expect("VerifyOtp answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn server_error_then_success_is_one_successful_send(store: StoreKind) {
    let server = standin_answering_first(
        ResponseTemplate::new(503).set_body_string("upstream restarting"),
        accepted(),
    )
    .await;
    let app = textbee_app(store, &server, &[]).await;
    let phone = unique_phone();

    app.send(&phone)
        .await
        .expect("SendOtp succeeds after a retry");

    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2, "one failed try, one retry");
    assert_eq!(
        seen[0].body, seen[1].body,
        "the retry sends the same message"
    );
    let code = extract_code(&message_of(&seen[1])).expect("code in message");
    let verified = app.verify(&phone, &code).await.expect("VerifyOtp answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn persistent_refusals_give_up_after_bounded_retries(store: StoreKind) {
    // 503: not processed, so each retry is safe.
    let server = standin_answering(ResponseTemplate::new(503)).await;
    let app = textbee_app(store, &server, &[("OTP_SMS_MAX_RETRIES", "2")]).await;
    let phone = unique_phone();

    let status = app.send(&phone).await.expect_err("gateway keeps refusing");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        requests(&server).await.len(),
        3,
        "first try plus two retries"
    );
    assert_nothing_pending(&app, &phone).await;
}

async fn a_send_that_may_have_gone_out_still_counts_against_the_limits(store: StoreKind) {
    // A 500 may come after TextBee queued the message: the SMS may arrive,
    // so it is neither retried (retries are on) nor taken back.
    let server = standin_answering(ResponseTemplate::new(500)).await;
    let app = textbee_app(store, &server, &[("OTP_SMS_MAX_RETRIES", "2")]).await;
    let phone = unique_phone();
    let started = Instant::now();
    let status = app.send(&phone).await.expect_err("gateway failed");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(requests(&server).await.len(), 1, "a 500 is never retried");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_nothing_pending(&app, &phone).await;
    let again = app
        .send(&phone)
        .await
        .expect_err("the uncertain send counted");
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
    assert_eq!(requests(&server).await.len(), 1, "no second SMS");
}

async fn a_send_that_surely_failed_is_not_counted(store: StoreKind) {
    // 503: TextBee did not process it; nothing can arrive.
    let server = standin_answering_first(ResponseTemplate::new(503), accepted()).await;
    let app = textbee_app(store, &server, &[("OTP_SMS_MAX_RETRIES", "0")]).await;
    let phone = unique_phone();
    let status = app.send(&phone).await.expect_err("gateway refused");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    app.send(&phone)
        .await
        .expect("the retry is not held back by the cooldown");
}

async fn bad_request_is_not_retried_and_its_detail_stays_internal(store: StoreKind) {
    let server = standin_answering(
        ResponseTemplate::new(400)
            .set_body_json(json!({"success": false, "error": "Invalid recipients"})),
    )
    .await;
    let app = textbee_app(store, &server, &[]).await;
    let phone = unique_phone();

    let status = app.send(&phone).await.expect_err("gateway refuses");

    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        !status.message().contains("Invalid recipients"),
        "{status:?}"
    );
    assert_eq!(requests(&server).await.len(), 1, "4xx is never retried");
    assert_nothing_pending(&app, &phone).await;
}

async fn refused_key_is_internal_and_not_retried(store: StoreKind) {
    for refusal in [401, 403] {
        let server = standin_answering(
            ResponseTemplate::new(refusal)
                .set_body_json(json!({"statusCode": refusal, "message": "Unauthorized"})),
        )
        .await;
        let app = textbee_app(store, &server, &[]).await;
        let phone = unique_phone();

        let status = app.send(&phone).await.expect_err("gateway refuses our key");

        assert_eq!(status.code(), Code::Internal, "{refusal}: {status:?}");
        assert!(!status.message().contains(KEY));
        assert_eq!(
            requests(&server).await.len(),
            1,
            "{refusal} is never retried"
        );
        assert_nothing_pending(&app, &phone).await;
    }
}

async fn never_answering_gateway_is_one_request_and_unavailable_within_the_budget(
    store: StoreKind,
) {
    let budget = Duration::from_millis(1_500);
    // Rollback and a loaded machine get 1.5 s; three tries of 1.5 s each
    // without the budget would take 4.5 s, so the bound still tells.
    let margin = Duration::from_millis(1_500);
    let server = standin_answering(accepted().set_delay(Duration::from_secs(60))).await;
    let app = textbee_app(
        store,
        &server,
        &[
            ("OTP_SMS_CONNECT_TIMEOUT_MS", "1000"),
            ("OTP_SMS_SEND_TIMEOUT_MS", "1500"),
            ("OTP_SMS_MAX_RETRIES", "2"),
        ],
    )
    .await;
    let phone = unique_phone();

    let started = Instant::now();
    let status = app.send(&phone).await.expect_err("gateway never answers");
    let elapsed = started.elapsed();

    eprintln!("never-answering gateway: SendOtp took {elapsed:?} with a {budget:?} budget");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        elapsed < budget + margin,
        "took {elapsed:?}, budget {budget:?}"
    );
    assert!(
        elapsed >= budget * 9 / 10,
        "gave up after {elapsed:?}: the one try gets the whole budget"
    );
    assert_eq!(
        requests(&server).await.len(),
        1,
        "a try that may have been taken is never repeated"
    );
    assert_nothing_pending(&app, &phone).await;
    let again = app
        .send(&phone)
        .await
        .expect_err("the uncertain send counted");
    assert_eq!(again.code(), Code::ResourceExhausted, "{again:?}");
}

/// Issue 12: a gateway slower than a third of the budget used to be cut
/// off and asked again, texting the code twice.
async fn slow_answer_within_the_budget_is_one_sms_and_a_success(store: StoreKind) {
    let server = standin_answering(accepted().set_delay(Duration::from_millis(1_800))).await;
    let app = textbee_app(store, &server, &[]).await;
    let phone = unique_phone();

    let started = Instant::now();
    app.send(&phone)
        .await
        .expect("a slow answer is still a success");
    let elapsed = started.elapsed();

    assert_eq!(requests(&server).await.len(), 1, "exactly one SMS");
    assert!(elapsed >= Duration::from_millis(1_800), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "within the 5 s budget: {elapsed:?}"
    );
    let code = extract_code(&message_of(&requests(&server).await[0])).expect("code");
    let verified = app.verify(&phone, &code).await.expect("VerifyOtp answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

async fn unreachable_gateway_is_unavailable(store: StoreKind) {
    let url = format!("{}{SEND_PATH}", closed_port_url());
    let app = textbee_app_at(store, &url, &[]).await;
    let phone = unique_phone();

    let started = Instant::now();
    let status = app.send(&phone).await.expect_err("nothing listens");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_nothing_pending(&app, &phone).await;
}

async fn retry_after_from_429_is_honoured(store: StoreKind) {
    let server = standin_answering_first(
        ResponseTemplate::new(429).insert_header("retry-after", "1"),
        accepted(),
    )
    .await;
    let app = textbee_app(store, &server, &[("OTP_SMS_SEND_TIMEOUT_MS", "5000")]).await;
    let phone = unique_phone();

    let started = Instant::now();
    app.send(&phone)
        .await
        .expect("SendOtp succeeds after waiting");
    let elapsed = started.elapsed();

    assert_eq!(requests(&server).await.len(), 2);
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried after {elapsed:?}, before the gateway's Retry-After of 1 s"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

async fn retry_after_beyond_the_budget_fails_at_once(store: StoreKind) {
    let server =
        standin_answering(ResponseTemplate::new(429).insert_header("retry-after", "30")).await;
    let app = textbee_app(store, &server, &[("OTP_SMS_SEND_TIMEOUT_MS", "2000")]).await;
    let phone = unique_phone();

    let started = Instant::now();
    let status = app.send(&phone).await.expect_err("cannot wait 30 s");
    let elapsed = started.elapsed();

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        requests(&server).await.len(),
        1,
        "no retry that could not fit"
    );
    // At once: without waiting out any of the 2 s budget first.
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_nothing_pending(&app, &phone).await;
}

for_each_store!(
    a_send_that_may_have_gone_out_still_counts_against_the_limits,
    a_send_that_surely_failed_is_not_counted,
    exact_request_is_sent_and_the_texted_code_verifies,
    server_error_then_success_is_one_successful_send,
    persistent_refusals_give_up_after_bounded_retries,
    bad_request_is_not_retried_and_its_detail_stays_internal,
    refused_key_is_internal_and_not_retried,
    never_answering_gateway_is_one_request_and_unavailable_within_the_budget,
    slow_answer_within_the_budget_is_one_sms_and_a_success,
    unreachable_gateway_is_unavailable,
    retry_after_from_429_is_honoured,
    retry_after_beyond_the_budget_fails_at_once,
);

/// The real binary's logs, for one accepted and one refused send: the
/// masked phone, status and batch id are there; the key, the full numbers
/// and the code are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_logs_never_carry_the_key_the_code_or_a_full_number() {
    let accepted_phone = unique_phone();
    let refused_phone = unique_phone();
    let server = MockServer::start().await;
    Mock::given(body_partial_json(json!({"recipients": [accepted_phone]})))
        .respond_with(accepted())
        .mount(&server)
        .await;
    Mock::given(body_partial_json(json!({"recipients": [refused_phone]})))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthorized"})))
        .mount(&server)
        .await;
    let url = send_url(&server);
    let binary = tokio::task::block_in_place(|| {
        ServiceProcess::start(&[
            ("OTP_LOG_FORMAT", "json"),
            ("SMS_SENDER_API", url.as_str()),
            ("TEXTBEE_API_KEY", KEY),
        ])
    });
    let mut client = OtpServiceClient::new(connect(binary.addr).await);

    let send = |phone: &str| SendOtpRequest {
        phone_number: phone.into(),
        ..Default::default()
    };
    client
        .send_otp(send(&accepted_phone))
        .await
        .expect("accepted send succeeds");
    let refused = client
        .send_otp(send(&refused_phone))
        .await
        .expect_err("refused send fails");
    assert_eq!(refused.code(), Code::Internal);
    tokio::task::block_in_place(|| {
        binary.wait_for_stderr(
            "check TEXTBEE_API_KEY",
            Duration::from_secs(5),
            |_| Some(()),
        )
    });
    let code = extract_code(&message_of(&requests(&server).await[0])).expect("code");
    let logs = binary.stop();

    // Timestamps carry microseconds: six digits that could equal the code by chance.
    let all = logs
        .iter()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(mut json) => {
                if let Some(fields) = json.as_object_mut() {
                    fields.remove("timestamp");
                }
                json.to_string()
            }
            Err(_) => line.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("TextBee accepted the message"), "{all}");
    assert!(all.contains(BATCH_ID), "batch id logged: {all}");
    assert!(
        all.contains(&format!("+1******{}", &accepted_phone[8..])),
        "{all}"
    );
    assert!(all.contains("\"status\":401"), "{all}");
    assert!(
        !all.contains(KEY),
        "the API key leaked into the logs:\n{all}"
    );
    // A code or a number is a run of digits of its own: six digits inside a
    // longer number (a latency, a count) are not it.
    for secret in [code.as_str(), &accepted_phone[2..], &refused_phone[2..]] {
        assert!(
            !crate::common::holds_code(&all, secret),
            "{secret:?} leaked into the logs:\n{all}"
        );
    }
}

/// Misconfiguration stops the real binary before it listens, with one line
/// on stderr naming the variable, and a non-zero exit.
#[test]
fn binary_refuses_bad_sms_settings_with_one_clear_line() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[
                ("OTP_SMS_GATEWAY", "textbee"),
                ("SMS_SENDER_API", "https://api.textbee.dev/x"),
            ],
            "TEXTBEE_API_KEY",
        ),
        (
            &[("OTP_SMS_GATEWAY", "textbee"), ("TEXTBEE_API_KEY", KEY)],
            "SMS_SENDER_API",
        ),
        (
            &[
                ("SMS_SENDER_API", "textbee.dev/send-sms"),
                ("TEXTBEE_API_KEY", KEY),
            ],
            "SMS_SENDER_API",
        ),
        (
            &[("OTP_MESSAGE_TEMPLATE", "Code {code} for {user}")],
            "OTP_MESSAGE_TEMPLATE",
        ),
        (&[("OTP_SMS_ROUTES", "US=textbee")], "OTP_SMS_ROUTES"),
        (
            &[("OTP_SMS_ROUTES", "IN=textbee; *=twilio")],
            "SMS_SENDER_API",
        ),
    ];
    for (vars, var) in cases {
        let mut env = vec![("OTP_LISTEN_ADDR", "127.0.0.1:0")];
        env.extend_from_slice(vars);
        let mut binary = ServiceProcess::spawn(&env);
        let status = binary.wait_for_exit(Duration::from_secs(10));
        let lines = binary.stop();
        assert_eq!(status.code(), Some(2), "{var}: {lines:?}");
        assert_eq!(lines.len(), 1, "{var}: one line, got {lines:?}");
        assert!(
            lines[0].starts_with(&format!("otp-service: invalid configuration: {var}: ")),
            "{lines:?}"
        );
        assert!(!lines[0].contains(KEY), "{lines:?}");
    }
}

/// A TextBee stand-in that answers 201 at once but holds the body back for
/// `body_delay`; it keeps the JSON of every request it read.
async fn slow_body_standin(body_delay: Duration) -> (String, Arc<Mutex<Vec<Value>>>, HeadSentAt) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}{SEND_PATH}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let head_sent_at = HeadSentAt::default();
    let head_sent = Arc::clone(&head_sent_at);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            let head_sent = Arc::clone(&head_sent);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then as much body as Content-Length says.
                let body = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break request[end + 4..end + 4 + length].to_vec();
                    }
                };
                if let Ok(json) = serde_json::from_slice(&body) {
                    record.lock().expect("lock").push(json);
                }
                let answer = br#"{"data":{"smsBatchId":"slow-body-1"}}"#;
                let head = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    answer.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.flush().await;
                *head_sent.lock().expect("lock") = Some(Instant::now());
                // The stand-in's own behaviour: a body that trickles in late.
                tokio::time::sleep(body_delay).await;
                let _ = socket.write_all(answer).await;
            });
        }
    });
    (url, seen, head_sent_at)
}

/// When the stand-in wrote a response's status line and headers.
type HeadSentAt = Arc<Mutex<Option<Instant>>>;

/// How long a send waits for a 2xx's body after its status line (README,
/// "Providers and routes": "the body is read for the message id for at most 1 s").
const BODY_WAIT: Duration = Duration::from_secs(1);

/// Issue 12: a 2xx is a delivery as soon as its status line arrives; a body
/// that is slow to follow is waited for briefly (for the batch id) and
/// never turns the send into a failure or a second SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_after_2xx_is_still_one_successful_send() {
    let (url, seen, head_sent_at) = slow_body_standin(Duration::from_secs(30)).await;
    let app = TestApp::builder()
        .env(&[("SMS_SENDER_API", url.as_str()), ("TEXTBEE_API_KEY", KEY)])
        .configured_gateway()
        .spawn()
        .await;
    let phone = unique_phone();

    app.send(&phone).await.expect("accepted on the status line");
    let answered_at = Instant::now();
    let head_sent_at = head_sent_at
        .lock()
        .expect("lock")
        .expect("the stand-in answered");

    // The body is held for 30 s; the send waits for it BODY_WAIT after the
    // status line, then answers (a second of margin for a busy core to pass
    // the answer back through gRPC).
    let waited = answered_at.duration_since(head_sent_at);
    eprintln!("slow body after 2xx: answered {waited:?} after the status line");
    assert!(
        (BODY_WAIT..BODY_WAIT + Duration::from_secs(1)).contains(&waited),
        "the body is waited for {BODY_WAIT:?}, no longer: {waited:?}"
    );
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1, "exactly one SMS");
    let code = extract_code(requests[0]["message"].as_str().expect("message")).expect("code");
    let verified = app.verify(&phone, &code).await.expect("VerifyOtp answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}
