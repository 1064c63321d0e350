//! The gRPC face of the flow: turns requests into domain values (refusing bad
//! input), calls [`OtpFlow`], and turns results into responses.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::{Span, field};

use crate::{
    domain::{ClientKey, IdempotencyKey, PhoneNumber},
    error::Error,
    otp::{OtpFlow, SendRequest, Verification, ceil_seconds},
    proto::{
        CancelOtpRequest, CancelOtpResponse, SendOtpRequest, SendOtpResponse, TimeLeftRequest,
        TimeLeftResponse, VerifyOtpRequest, VerifyOtpResponse, VerifyOtpResult,
        otp_service_server::OtpService,
    },
};

/// `otp.v1.OtpService` over an [`OtpFlow`]. Each call runs in a span carrying
/// the RPC name and the masked phone number, so every log line it causes is
/// attributable without exposing the number.
pub struct OtpGrpcService {
    flow: Arc<OtpFlow>,
}

impl OtpGrpcService {
    /// Serves `flow`.
    pub fn new(flow: Arc<OtpFlow>) -> Self {
        Self { flow }
    }
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, Error> {
    let phone = PhoneNumber::parse(raw).map_err(Error::InvalidPhone)?;
    Span::current().record("phone", field::display(&phone));
    Ok(phone)
}

#[tonic::async_trait]
impl OtpService for OtpGrpcService {
    #[tracing::instrument(name = "SendOtp", skip_all, fields(phone = field::Empty))]
    async fn send_otp(
        &self,
        request: Request<SendOtpRequest>,
    ) -> Result<Response<SendOtpResponse>, Status> {
        let request = request.into_inner();
        let phone = parse_phone(&request.phone_number)?;
        let client_key = ClientKey::parse(&request.client_key).map_err(Error::InvalidClientKey)?;
        let idempotency_key = IdempotencyKey::parse(&request.idempotency_key)
            .map_err(Error::InvalidIdempotencyKey)?;
        let sent = self
            .flow
            .send(SendRequest {
                phone: &phone,
                client_key: client_key.as_ref(),
                idempotency_key: idempotency_key.as_ref(),
            })
            .await?;
        Ok(Response::new(SendOtpResponse {
            expires_in_seconds: ceil_seconds(sent.expires_in),
            code_length: u32::from(sent.code_length),
            attempts_remaining: sent.attempts_remaining,
            masked_phone_number: phone.masked(),
            resend_after_seconds: ceil_seconds(sent.resend_after),
        }))
    }

    #[tracing::instrument(name = "VerifyOtp", skip_all, fields(phone = field::Empty))]
    async fn verify_otp(
        &self,
        request: Request<VerifyOtpRequest>,
    ) -> Result<Response<VerifyOtpResponse>, Status> {
        let request = request.into_inner();
        let phone = parse_phone(&request.phone_number)?;
        let verification = self.flow.verify(&phone, &request.code).await?;
        let (result, attempts_remaining) = match verification {
            Verification::Approved => (VerifyOtpResult::Approved, 0),
            Verification::Incorrect { attempts_remaining } => {
                (VerifyOtpResult::Incorrect, attempts_remaining)
            }
            Verification::Expired => (VerifyOtpResult::Expired, 0),
            Verification::Locked => (VerifyOtpResult::Locked, 0),
        };
        tracing::info!(result = result.as_str_name(), "code checked");
        Ok(Response::new(VerifyOtpResponse {
            valid: verification == Verification::Approved,
            result: result.into(),
            attempts_remaining,
        }))
    }

    #[tracing::instrument(name = "TimeLeft", skip_all, fields(phone = field::Empty))]
    async fn time_left(
        &self,
        request: Request<TimeLeftRequest>,
    ) -> Result<Response<TimeLeftResponse>, Status> {
        let request = request.into_inner();
        let phone = parse_phone(&request.phone_number)?;
        let time_left = self.flow.time_left(&phone).await?;
        Ok(Response::new(TimeLeftResponse {
            pending: time_left.pending,
            seconds_left: time_left.seconds_left,
        }))
    }

    #[tracing::instrument(name = "CancelOtp", skip_all, fields(phone = field::Empty))]
    async fn cancel_otp(
        &self,
        request: Request<CancelOtpRequest>,
    ) -> Result<Response<CancelOtpResponse>, Status> {
        let request = request.into_inner();
        let phone = parse_phone(&request.phone_number)?;
        let cancelled = self.flow.cancel(&phone).await?;
        Ok(Response::new(CancelOtpResponse { cancelled }))
    }
}
