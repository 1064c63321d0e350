//! Traces on the real binary: a caller's W3C trace context is continued,
//! the RPC, its store calls and the SMS send with its retries are exported
//! over OTLP to a collector stand-in, log lines carry the trace and span
//! ids, the server span names the authenticated caller — and no exported
//! attribute or event holds the number or the code.

use std::time::Duration;

use crate::common::{
    binary::ServiceProcess,
    connect,
    otlp_collector::{OtlpCollector, attribute, exported_text},
    recording_gateway::extract_code,
    tls::CertDir,
    wait_for,
};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use otp_service::proto::{
    SendOtpRequest, VerifyOtpRequest, VerifyOtpResult, otp_service_client::OtpServiceClient,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

const SEND_PATH: &str = "/api/v1/gateway/devices/dev-7/send-sms";
/// The caller's trace and its span (the parent of ours).
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const PHONE: &str = "+14155550177";
const PHONE_DIGITS: &str = "4155550177";

/// TextBee refusing once for now (503), then taking the message.
async fn textbee_failing_once() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SEND_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "data": { "success": true, "smsBatchId": "b1", "recipientCount": 1 }
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

/// A request carrying the caller's `traceparent` and `tracestate`.
fn traced<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    let parent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    metadata.insert("traceparent", parent.parse().expect("ascii"));
    metadata.insert("tracestate", "caller=1".parse().expect("ascii"));
    request
}

fn hex_id(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|span| span.parent_span_id == parent.span_id)
        .collect()
}

fn named<'a>(spans: &[&'a Span], name: &str) -> &'a Span {
    spans
        .iter()
        .copied()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no `{name}` span among {:?}", names(spans)))
}

fn names(spans: &[&Span]) -> Vec<String> {
    spans.iter().map(|span| span.name.clone()).collect()
}

/// Send (one 503, then accepted), a wrong guess and the right one.
async fn send_wrong_right(client: &mut OtpServiceClient<Channel>, textbee: &MockServer) -> String {
    let send = SendOtpRequest {
        phone_number: PHONE.into(),
        client_key: "checkout-web".into(),
        ..Default::default()
    };
    client.send_otp(traced(send)).await.expect("sent");
    let requests = textbee.received_requests().await.expect("recording");
    let body: Value = requests.last().expect("texted").body_json().expect("JSON");
    let code = extract_code(body["message"].as_str().expect("text")).expect("a code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for (guess, expected) in [
        (wrong, VerifyOtpResult::Incorrect),
        (code.as_str(), VerifyOtpResult::Approved),
    ] {
        let verify = VerifyOtpRequest {
            phone_number: PHONE.into(),
            code: guess.into(),
            ..Default::default()
        };
        let answer = client.verify_otp(traced(verify)).await.expect("verified");
        assert_eq!(answer.get_ref().result(), expected);
    }
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_and_hold_no_number_or_code() {
    let (collector, endpoint) = OtlpCollector::start().await;
    let textbee = textbee_failing_once().await;
    let send_url = format!("{}{SEND_PATH}", textbee.uri());
    let service = tokio::task::spawn_blocking(move || {
        ServiceProcess::start(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "otp-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTP_LOG_FORMAT", "json"),
            ("SMS_SENDER_API", send_url.as_str()),
            ("TEXTBEE_API_KEY", "tb_key_for_traces"),
        ])
    })
    .await
    .expect("binary starts");
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    let code = send_wrong_right(&mut client, &textbee).await;

    let spans = wait_for("the three RPC spans", Duration::from_secs(15), || {
        let spans = collector.spans();
        let rpcs = spans
            .iter()
            .filter(|span| hex_id(&span.trace_id) == CALLER_TRACE)
            .filter(|span| span.kind == SpanKind::Server as i32)
            .count();
        async move { (rpcs == 3).then_some(spans) }
    })
    .await;
    let traced: Vec<Span> = spans
        .into_iter()
        .filter(|span| hex_id(&span.trace_id) == CALLER_TRACE)
        .collect();
    let send = assert_send_tree(&traced);
    assert_verify_spans(&traced);

    for span in &traced {
        for text in exported_text(span) {
            assert!(
                !text.contains(PHONE_DIGITS),
                "number in {}: {text}",
                span.name
            );
            // As a run of digits of its own, not inside busy_ns or idle_ns.
            assert!(
                !crate::common::holds_code(&text, &code),
                "code in {}: {text}",
                span.name
            );
        }
    }
    let service_names: Vec<_> = collector
        .resources()
        .iter()
        .filter_map(|resource| attribute(resource, "service.name"))
        .collect();
    assert!(
        service_names.iter().all(|name| name == "otp-under-test"),
        "{service_names:?}"
    );

    let send_span_id = hex_id(&send.span_id);
    let line = service.wait_for_stderr("rpc finished", Duration::from_secs(5), |line| {
        let json: Value = serde_json::from_str(line).ok()?;
        (json["span_id"] == send_span_id.as_str()).then_some(json)
    });
    assert_eq!(line["trace_id"], CALLER_TRACE, "{line}");
    assert_eq!(line["fields"]["grpc.method"], "SendOtp", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_span_names_the_authenticated_caller() {
    const TOKEN: &str = "traced-caller-token-3b7e";
    let (collector, endpoint) = OtlpCollector::start().await;
    let dir = CertDir::new();
    let callers = dir.write(
        "callers",
        &format!("checkout sha256:{}\n", hex::encode(Sha256::digest(TOKEN))),
    );
    let service = tokio::task::spawn_blocking(move || {
        ServiceProcess::start(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTP_CALLERS_FILE", callers.as_str()),
        ])
    })
    .await
    .expect("binary starts");
    let mut request = tonic::Request::new(SendOtpRequest {
        phone_number: "+14155550178".into(),
        ..Default::default()
    });
    let bearer = format!("Bearer {TOKEN}");
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().expect("ASCII header"));
    OtpServiceClient::new(connect(service.addr).await)
        .send_otp(request)
        .await
        .expect("sent");

    let send = wait_for("the SendOtp span", Duration::from_secs(15), || {
        let send = collector
            .spans()
            .into_iter()
            .find(|span| span.name == "SendOtp");
        async move { send }
    })
    .await;
    assert_eq!(
        attribute(&send.attributes, "caller").as_deref(),
        Some("checkout")
    );
}

/// SendOtp is a server span under the caller's span, with its store calls
/// and the SMS send (two tries: a 503, then accepted) beneath it.
fn assert_send_tree(spans: &[Span]) -> &Span {
    let send = spans
        .iter()
        .find(|span| span.name == "SendOtp")
        .expect("a SendOtp span");
    assert_eq!(
        hex_id(&send.parent_span_id),
        CALLER_SPAN,
        "continues the caller"
    );
    assert_eq!(send.kind, SpanKind::Server as i32);
    assert_eq!(send.trace_state, "caller=1");
    assert_eq!(
        attribute(&send.attributes, "rpc.method").as_deref(),
        Some("SendOtp")
    );
    assert_eq!(
        attribute(&send.attributes, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        attribute(&send.attributes, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert_eq!(
        attribute(&send.attributes, "otp.result").as_deref(),
        Some("sent")
    );
    assert_eq!(
        attribute(&send.attributes, "phone").as_deref(),
        Some("+1******0177")
    );

    let steps = children(spans, send);
    for store_call in ["record_send", "put_code"] {
        let step = named(&steps, store_call);
        assert_eq!(step.kind, SpanKind::Client as i32, "{store_call}");
        assert_eq!(
            attribute(&step.attributes, "otp.store.operation").as_deref(),
            Some(store_call)
        );
    }
    let sms = named(&steps, "sms send");
    assert_eq!(
        attribute(&sms.attributes, "otp.sms.provider").as_deref(),
        Some("textbee")
    );
    assert_eq!(
        attribute(&sms.attributes, "otp.sms.result").as_deref(),
        Some("sent")
    );
    let mut tries = children(spans, sms);
    tries.sort_by_key(|span| span.start_time_unix_nano);
    let outcomes: Vec<_> = tries
        .iter()
        .map(|span| {
            (
                attribute(&span.attributes, "otp.sms.attempt"),
                attribute(&span.attributes, "otp.sms.try_result"),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (Some("1".into()), Some("transient_failure".into())),
            (Some("2".into()), Some("accepted".into())),
        ]
    );
    send
}

/// Both guesses are server spans of the caller's trace with their store call.
fn assert_verify_spans(spans: &[Span]) {
    let verifies: Vec<&Span> = spans
        .iter()
        .filter(|span| span.name == "VerifyOtp")
        .collect();
    assert_eq!(
        verifies.len(),
        2,
        "{:?}",
        names(&spans.iter().collect::<Vec<_>>())
    );
    let mut results = Vec::new();
    for verify in verifies {
        assert_eq!(hex_id(&verify.parent_span_id), CALLER_SPAN);
        named(&children(spans, verify), "verify_and_consume");
        results.extend(attribute(&verify.attributes, "otp.result"));
    }
    results.sort();
    assert_eq!(results, ["approved", "incorrect"]);
}
