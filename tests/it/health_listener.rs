//! `OTP_HEALTH_ADDR`: a second, plaintext listener with `grpc.health.v1`
//! only, so kubelet probes reach health on the pod IP while the API stays on
//! loopback (or behind mTLS).

use std::time::Duration;

use crate::common::{RedisServer, TestApp, health_at, wait_for};
use otp_service::proto::{SendOtpRequest, otp_service_client::OtpServiceClient};
use tonic::Code;

const HEALTH_ON_ITS_OWN_PORT: [(&str, &str); 1] = [("OTP_HEALTH_ADDR", "127.0.0.1:0")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_port_answers_health_and_nothing_else() {
    let app = TestApp::builder()
        .env(&HEALTH_ON_ITS_OWN_PORT)
        .spawn()
        .await;
    let health_addr = app.health_addr.expect("health listener bound");
    assert_ne!(health_addr, app.addr);
    assert_eq!(health_at(health_addr, "").await, "SERVING");
    assert_eq!(health_at(health_addr, "otp.v1.OtpService").await, "SERVING");

    let mut otp = OtpServiceClient::new(crate::common::connect(health_addr).await);
    let refused = otp
        .send_otp(SendOtpRequest {
            phone_number: crate::common::unique_phone(),
            ..Default::default()
        })
        .await
        .expect_err("the OTP API is not on the health port");
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    assert_eq!(app.sms.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_port_follows_the_store() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::builder()
        .redis(&redis)
        .env(&HEALTH_ON_ITS_OWN_PORT)
        .spawn()
        .await;
    let health_addr = app.health_addr.expect("health listener bound");
    assert_eq!(health_at(health_addr, "otp.v1.OtpService").await, "SERVING");
    redis.kill();
    wait_for("readiness drops", Duration::from_secs(10), || async {
        (health_at(health_addr, "otp.v1.OtpService").await == "NOT_SERVING").then_some(())
    })
    .await;
    assert_eq!(health_at(health_addr, "").await, "SERVING", "still alive");
}

#[tokio::test]
async fn health_port_is_off_by_default() {
    let app = TestApp::builder().env(&[]).spawn().await;
    assert_eq!(app.health_addr, None);
}
