//! Caller identity: bearer tokens checked against the digests in
//! `OTP_CALLERS_FILE`, client certificate SANs, the right refusal for each
//! way of failing, the caller on the log line and as a metrics label, and a
//! send limit per caller shared by replicas.

use std::time::Duration;

use crate::common::{
    RedisServer, TestApp,
    binary::ServiceProcess,
    connect,
    tls::{CertDir, TestCa, tls_channel},
    unique_phone,
};
use otp_service::proto::{
    SendOtpRequest, SendOtpResponse, TimeLeftRequest, otp_service_client::OtpServiceClient,
};
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

pub(crate) const CHECKOUT_TOKEN: &str = "checkout-token-6f1c2a";
pub(crate) const BILLING_TOKEN: &str = "billing-token-90d3e7";

/// A callers file: two token callers and one certificate caller.
pub(crate) fn callers_file(dir: &CertDir) -> String {
    let digest = |token: &str| hex::encode(Sha256::digest(token.as_bytes()));
    dir.write(
        "callers",
        &format!(
            "# name     credential\n\
             checkout   sha256:{}\n\
             billing    sha256:{}\n\
             reports    san:reports.callers.internal\n",
            digest(CHECKOUT_TOKEN),
            digest(BILLING_TOKEN)
        ),
    )
}

fn send_request(phone: &str, authorization: Option<&str>) -> Request<SendOtpRequest> {
    let mut request = Request::new(SendOtpRequest {
        phone_number: phone.into(),
        ..Default::default()
    });
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ASCII header"));
    }
    request
}

pub(crate) async fn send_as(
    channel: Channel,
    phone: &str,
    authorization: Option<&str>,
) -> Result<SendOtpResponse, Status> {
    OtpServiceClient::new(channel)
        .send_otp(send_request(phone, authorization))
        .await
        .map(tonic::Response::into_inner)
}

pub(crate) fn assert_refused(result: Result<SendOtpResponse, Status>, code: Code, reason: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_error_details().error_info().cloned();
    assert_eq!(
        info.map(|i| i.reason).as_deref(),
        Some(reason),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_and_each_failure_has_its_code() {
    let dir = CertDir::new();
    let file = callers_file(&dir);
    let app = TestApp::builder()
        .env(&[("OTP_CALLERS_FILE", &file)])
        .spawn()
        .await;
    let channel = connect(app.addr).await;
    let phone = unique_phone();

    let none = send_as(channel.clone(), &phone, None).await;
    assert_refused(none, Code::Unauthenticated, "CALLER_CREDENTIALS_MISSING");
    let basic = send_as(channel.clone(), &phone, Some("Basic Y2hlY2tvdXQ6eA==")).await;
    assert_refused(basic, Code::Unauthenticated, "CALLER_CREDENTIALS_MISSING");
    let guessed = send_as(channel.clone(), &phone, Some("Bearer guessed-token")).await;
    assert_refused(guessed, Code::PermissionDenied, "CALLER_UNKNOWN");
    // The digest itself is not a token.
    let digest = hex::encode(Sha256::digest(CHECKOUT_TOKEN.as_bytes()));
    let replayed = send_as(channel.clone(), &phone, Some(&format!("Bearer {digest}"))).await;
    assert_refused(replayed, Code::PermissionDenied, "CALLER_UNKNOWN");
    assert_eq!(app.sms.count(), 0, "no refused call sent anything");

    let bearer = format!("Bearer {CHECKOUT_TOKEN}");
    send_as(channel.clone(), &phone, Some(&bearer))
        .await
        .expect("a listed token sends");
    let mut time_left = Request::new(TimeLeftRequest {
        phone_number: phone.clone(),
    });
    let unauthenticated = OtpServiceClient::new(channel.clone())
        .time_left(time_left)
        .await
        .expect_err("every method needs a caller");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    time_left = Request::new(TimeLeftRequest {
        phone_number: phone,
    });
    time_left
        .metadata_mut()
        .insert("authorization", bearer.parse().expect("ASCII"));
    let left = OtpServiceClient::new(channel)
        .time_left(time_left)
        .await
        .expect("TimeLeft with a token")
        .into_inner();
    assert!(left.pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_callers_must_be_listed_by_san() {
    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let dir = CertDir::new();
    let (cert, key) = dir.write_pair("server", &server_ca.issue_server());
    let ca = dir.write("clients.pem", &client_ca.pem());
    let file = callers_file(&dir);
    let app = TestApp::builder()
        .env(&[
            ("OTP_TLS_CERT_FILE", &cert),
            ("OTP_TLS_KEY_FILE", &key),
            ("OTP_TLS_CLIENT_CA_FILE", &ca),
            ("OTP_CALLERS_FILE", &file),
        ])
        .spawn()
        .await;
    let listed = client_ca.issue_client("reports.callers.internal");
    let unlisted = client_ca.issue_client("intruder.callers.internal");
    let phone = unique_phone();

    let channel = tls_channel(app.addr, &server_ca.pem(), Some(&unlisted))
        .await
        .expect("the CA vouches for the certificate");
    let refused = send_as(channel.clone(), &phone, None).await;
    assert_refused(refused, Code::PermissionDenied, "CALLER_UNKNOWN");
    // A token names the caller even on a certificate nobody listed.
    send_as(channel, &phone, Some(&format!("Bearer {BILLING_TOKEN}")))
        .await
        .expect("token caller over mTLS");

    let channel = tls_channel(app.addr, &server_ca.pem(), Some(&listed))
        .await
        .expect("connects");
    send_as(channel, &unique_phone(), None)
        .await
        .expect("listed certificate caller");
}

async fn send_through(app: &TestApp, token: &str) -> Result<SendOtpResponse, Status> {
    send_as(
        connect(app.addr).await,
        &unique_phone(),
        Some(&format!("Bearer {token}")),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_has_its_own_send_limit_across_replicas() {
    let dir = CertDir::new();
    let file = callers_file(&dir);
    let redis = RedisServer::start().await;
    let vars = [
        ("OTP_CALLERS_FILE", file.as_str()),
        ("OTP_CALLER_SEND_LIMIT", "3"),
    ];
    let a = TestApp::builder().redis(&redis).env(&vars).spawn().await;
    let b = TestApp::builder().redis(&redis).env(&vars).spawn().await;

    for app in [&a, &b, &a] {
        send_through(app, CHECKOUT_TOKEN)
            .await
            .expect("within the caller's limit");
    }
    let status = send_through(&b, CHECKOUT_TOKEN)
        .await
        .expect_err("fourth send by one caller, on the other replica");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    let quota = details.quota_failure().expect("QuotaFailure");
    assert!(
        quota
            .violations
            .iter()
            .any(|v| v.subject == "caller" && v.description.starts_with("caller_send_window")),
        "{quota:?}"
    );
    send_through(&b, BILLING_TOKEN)
        .await
        .expect("another caller has its own budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_is_on_the_log_line_and_a_metrics_label() {
    let dir = CertDir::new();
    let file = callers_file(&dir);
    let (service, metrics_addr) = ServiceProcess::start_with_metrics(&[
        ("OTP_CALLERS_FILE", &file),
        ("OTP_LOG_FORMAT", "json"),
    ]);
    let channel = connect(service.addr).await;
    send_as(
        channel.clone(),
        "+14155550161",
        Some(&format!("Bearer {CHECKOUT_TOKEN}")),
    )
    .await
    .expect("sent");
    send_as(channel, "+14155550162", Some("Bearer wrong"))
        .await
        .expect_err("unknown caller");

    let line = service.wait_for_stderr("rpc finished", Duration::from_secs(5), |line| {
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        (json.pointer("/fields/message")?.as_str()? == "rpc finished"
            && json.pointer("/fields/grpc.code")?.as_str()? == "OK")
            .then_some(json)
    });
    assert_eq!(
        line.pointer("/span/caller").and_then(|v| v.as_str()),
        Some("checkout"),
        "{line}"
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let page = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("scrape answers")
        .text()
        .await
        .expect("text page");
    for series in [
        r#"otp_grpc_requests_total{method="SendOtp",code="OK",caller="checkout"} 1"#,
        r#"otp_grpc_requests_total{method="SendOtp",code="PERMISSION_DENIED",caller="anonymous"} 1"#,
    ] {
        assert!(page.lines().any(|l| l == series), "{series} in:\n{page}");
    }
    assert!(!page.contains(CHECKOUT_TOKEN) && !page.contains("wrong"));
    assert!(
        service.stderr().iter().all(|l| !l.contains(CHECKOUT_TOKEN)),
        "no token in the log"
    );
}
