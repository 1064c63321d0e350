//! The server around the service: health, reflection, graceful shutdown.

use std::time::Duration;

use crate::common::{RecordingGateway, StoreKind, TestApp, connect, unique_phone, wait_for};
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

#[tokio::test]
async fn health_reports_the_otp_service_and_the_server_as_serving() {
    let app = TestApp::builder().store(StoreKind::Memory).spawn().await;
    assert_eq!(app.health("otp.v1.OtpService").await, "SERVING");
    assert_eq!(app.health("").await, "SERVING");
}

#[tokio::test]
async fn reflection_v1_lists_every_service() {
    let app = TestApp::builder().store(StoreKind::Memory).spawn().await;
    let mut reflection = ServerReflectionClient::new(connect(app.addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in ["otp.v1.OtpService", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_calls_then_stops() {
    let sms = RecordingGateway::default();
    let app = TestApp::builder()
        .store(StoreKind::Memory)
        .gateway(sms.clone())
        .spawn()
        .await;
    let gate = sms.hold_sends();
    let phone = unique_phone();
    let in_flight = {
        let mut client = app.client();
        let phone = phone.clone();
        tokio::spawn(async move {
            client
                .send_otp(otp_service::proto::SendOtpRequest {
                    phone_number: phone,
                    ..Default::default()
                })
                .await
        })
    };
    wait_for(
        "the send reached the gateway",
        Duration::from_secs(5),
        || async { (sms.in_flight() == 1).then_some(()) },
    )
    .await;

    // Readiness watched over a connection opened before the shutdown: the
    // update must reach load balancers while calls drain.
    let mut health = HealthClient::new(connect(app.addr).await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "otp.v1.OtpService".into(),
        })
        .await
        .expect("Health/Watch answers")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("watch works")
        .expect("a status");
    assert_eq!(first.status(), ServingStatus::Serving);

    let addr = app.addr;
    let stopping = tokio::spawn(app.stop());
    let draining = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a status update within 5 s of the shutdown")
        .expect("watch works")
        .expect("a status");
    assert_eq!(draining.status(), ServingStatus::NotServing);
    drop(watch);
    // New connections are refused once shutdown has begun...
    wait_for("listener closed", Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(addr)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "the server waits for the in-flight call"
    );

    // ...while the call already in flight completes normally.
    gate.add_permits(1);
    let response = in_flight
        .await
        .expect("task ran")
        .expect("in-flight SendOtp succeeds");
    assert_eq!(response.into_inner().expires_in_seconds, 120);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("server stops once the call is done")
        .expect("stop task ran");
    assert_eq!(sms.count(), 1);
}
