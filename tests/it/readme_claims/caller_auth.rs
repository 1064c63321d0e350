//! README, "Caller identity": "every OtpService call must name a caller
//! (health and reflection stay open)"; "Threats": "an unknown token is
//! `PERMISSION_DENIED` and logged without the token".

use std::time::Duration;

use otp_service::proto::{SendOtpRequest, otp_service_client::OtpServiceClient};
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;
use tonic::{Code, Request, transport::Channel};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::common::{
    TestApp, binary::ServiceProcess, connect, health_at, tls::CertDir, unique_phone,
};

/// A callers file with one token caller; returns its path.
fn one_caller(dir: &CertDir) -> String {
    let digest = hex::encode(Sha256::digest(b"listed-token-5b2e91"));
    dir.write("callers", &format!("checkout sha256:{digest}\n"))
}

fn send_with(authorization: Option<&str>) -> Request<SendOtpRequest> {
    let mut request = Request::new(SendOtpRequest {
        phone_number: unique_phone(),
        ..Default::default()
    });
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ASCII header"));
    }
    request
}

/// The services reflection lists, asked without any credentials.
async fn reflected_services(channel: Channel) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers without credentials")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    list.service
        .into_iter()
        .map(|service| service.name)
        .collect()
}

/// With a callers file, a call with no credentials is refused by the OTP
/// service, yet health (readiness and liveness) and reflection answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_stay_open_under_caller_authentication() {
    let dir = CertDir::new();
    let app = TestApp::builder()
        .env(&[("OTP_CALLERS_FILE", &one_caller(&dir))])
        .spawn()
        .await;
    let channel = connect(app.addr).await;
    let refused = OtpServiceClient::new(channel.clone())
        .send_otp(send_with(None))
        .await
        .expect_err("the OTP service needs a caller");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    assert_eq!(health_at(app.addr, "otp.v1.OtpService").await, "SERVING");
    assert_eq!(health_at(app.addr, "").await, "SERVING");
    let services = reflected_services(channel).await;
    assert!(
        services.iter().any(|name| name == "otp.v1.OtpService"),
        "{services:?}"
    );
}

/// A bearer token nobody listed is refused with PERMISSION_DENIED; the
/// refusal is logged (the call's line, with its code), and no line of the
/// log holds the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_bearer_token_is_never_logged() {
    const UNKNOWN_TOKEN: &str = "guessed-token-c0ffee7d41";
    let dir = CertDir::new();
    let callers = one_caller(&dir);
    let service = tokio::task::block_in_place(|| {
        ServiceProcess::start(&[
            ("OTP_CALLERS_FILE", callers.as_str()),
            ("OTP_LOG_FORMAT", "json"),
        ])
    });
    let refused = OtpServiceClient::new(connect(service.addr).await)
        .send_otp(send_with(Some(&format!("Bearer {UNKNOWN_TOKEN}"))))
        .await
        .expect_err("an unknown token is refused");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    tokio::task::block_in_place(|| {
        service.wait_for_stderr("rpc finished", Duration::from_secs(5), |line| {
            line.contains("PERMISSION_DENIED").then_some(())
        })
    });
    let log = tokio::task::block_in_place(|| service.stop());
    assert!(
        !log.iter().any(|line| line.contains(UNKNOWN_TOKEN)),
        "the token in the log: {log:#?}"
    );
    assert!(!refused.message().contains(UNKNOWN_TOKEN), "{refused:?}");
}
