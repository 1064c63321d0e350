//! README, "Operate": liveness (the server-wide name `""`) is "NOT_SERVING
//! only during shutdown"; "Traces": "The last spans are flushed on shutdown
//! (up to 3 s)".

use std::time::{Duration, Instant};

use otp_service::proto::{SendOtpRequest, otp_service_client::OtpServiceClient};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::{
    RecordingGateway, TestApp, binary::ServiceProcess, connect, otlp_collector::OtlpCollector,
    unique_phone, wait_for,
};

/// Liveness, watched over a connection opened before the shutdown, turns
/// NOT_SERVING while a call is still in flight (the server is draining),
/// having been SERVING until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_is_not_serving_during_shutdown() {
    let sms = RecordingGateway::default();
    let app = TestApp::builder().gateway(sms.clone()).spawn().await;
    let gate = sms.hold_sends();
    let mut client = app.client();
    let in_flight = tokio::spawn(async move {
        client
            .send_otp(SendOtpRequest {
                phone_number: unique_phone(),
                ..Default::default()
            })
            .await
    });
    wait_for("the send is in flight", Duration::from_secs(5), || async {
        (sms.in_flight() == 1).then_some(())
    })
    .await;
    let mut watch = HealthClient::new(connect(app.addr).await)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("Health/Watch answers")
        .into_inner();
    let before = watch
        .message()
        .await
        .expect("watch works")
        .expect("a status");
    assert_eq!(before.status(), ServingStatus::Serving);

    let stopping = tokio::spawn(app.stop());
    let during = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a liveness update within 5 s of the shutdown")
        .expect("watch works")
        .expect("a status");
    assert_eq!(during.status(), ServingStatus::NotServing);
    assert!(
        !in_flight.is_finished() && !stopping.is_finished(),
        "NOT_SERVING came while the server was still draining"
    );
    drop(watch);

    gate.add_permits(1);
    in_flight
        .await
        .expect("task ran")
        .expect("the in-flight send completes");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server stops once the call is done")
        .expect("stop task ran");
}

/// With the batch exporter told to wait a minute between exports, a call's
/// span is not exported while the process runs; SIGTERM exports it, within
/// the 3 s the README allows, before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_spans_are_flushed_on_shutdown() {
    let (collector, endpoint) = OtlpCollector::start().await;
    let mut service = tokio::task::block_in_place(|| {
        ServiceProcess::start(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ])
    });
    OtpServiceClient::new(connect(service.addr).await)
        .send_otp(SendOtpRequest {
            phone_number: unique_phone(),
            ..Default::default()
        })
        .await
        .expect("sent");
    let sent_spans = |collector: &OtlpCollector| {
        collector
            .spans()
            .iter()
            .filter(|span| span.name == "SendOtp")
            .count()
    };
    assert_eq!(sent_spans(&collector), 0, "exported before the shutdown");

    let signalled = Instant::now();
    let status = tokio::task::block_in_place(|| service.terminate());
    let exited_after = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        exited_after < Duration::from_secs(3) + Duration::from_secs(2),
        "the flush waits at most 3 s: exited after {exited_after:?}"
    );
    wait_for("the flushed span", Duration::from_secs(2), || async {
        (sent_spans(&collector) == 1).then_some(())
    })
    .await;
}
