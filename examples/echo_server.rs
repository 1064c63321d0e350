//! The gRPC stack's own ceiling: `otp.v1.OtpService` answered with no work at
//! all (no parsing, hashing, store or gateway), plus `grpc.health.v1`.
//!
//! It runs on the same runtime (`#[tokio::main]`), transport settings
//! (`TCP_NODELAY`) and generated code as the service, and speaks the same
//! messages, so one load generator drives both and their ratio measures what
//! the service itself costs. Each response echoes a little of its request so
//! the request is really decoded and used.
//!
//! ```text
//! OTP_LISTEN_ADDR=127.0.0.1:50052 cargo run --release --example echo_server
//! ```

use std::net::SocketAddr;

use otp_service::proto::{
    CancelOtpRequest, CancelOtpResponse, SendOtpRequest, SendOtpResponse, TimeLeftRequest,
    TimeLeftResponse, VerifyOtpRequest, VerifyOtpResponse, VerifyOtpResult,
    otp_service_server::{OtpService, OtpServiceServer},
};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

struct EchoService;

fn len_u32(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

#[tonic::async_trait]
impl OtpService for EchoService {
    async fn send_otp(
        &self,
        request: Request<SendOtpRequest>,
    ) -> Result<Response<SendOtpResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(SendOtpResponse {
            expires_in_seconds: 120,
            code_length: 6,
            attempts_remaining: 20,
            masked_phone_number: request.phone_number,
            resend_after_seconds: 30,
            ..Default::default()
        }))
    }

    async fn verify_otp(
        &self,
        request: Request<VerifyOtpRequest>,
    ) -> Result<Response<VerifyOtpResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(VerifyOtpResponse {
            valid: false,
            result: VerifyOtpResult::Incorrect.into(),
            attempts_remaining: len_u32(&request.phone_number) + len_u32(&request.code),
        }))
    }

    async fn time_left(
        &self,
        request: Request<TimeLeftRequest>,
    ) -> Result<Response<TimeLeftResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(TimeLeftResponse {
            pending: true,
            seconds_left: len_u32(&request.phone_number),
        }))
    }

    async fn cancel_otp(
        &self,
        request: Request<CancelOtpRequest>,
    ) -> Result<Response<CancelOtpResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(CancelOtpResponse {
            cancelled: !request.phone_number.is_empty(),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("OTP_LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:50052".to_owned())
        .parse()?;
    let listener = TcpListener::bind(addr).await?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    eprintln!("echo_server listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(OtpServiceServer::new(EchoService))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    Ok(())
}
