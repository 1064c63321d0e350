//! The gRPC face of the flow: turns requests into domain values (refusing bad
//! input), calls [`OtpFlow`], and turns results into responses. Every call
//! ends in [`finish`], which logs it and counts it. While traces are
//! exported each call's span continues the caller's trace (`trace_context.rs`).

mod hang_up;
mod send_call;
mod trace_context;

use std::sync::Arc;

use tokio::time::Instant;
use tonic::{Code, Request, Response, Status};
use tracing::{Instrument, Span, field};

use crate::{
    abuse::LimitKind,
    auth::{AuthError, Authenticator, Caller, PeerCertificate},
    domain::{ClientKey, PhoneNumber},
    error::Error,
    metrics,
    otp::{OtpFlow, Verification, VerifyRequest},
    proto::{
        CancelOtpRequest, CancelOtpResponse, SendOtpRequest, SendOtpResponse, TimeLeftRequest,
        TimeLeftResponse, VerifyOtpRequest, VerifyOtpResponse, VerifyOtpResult,
        otp_service_server::OtpService,
    },
    sms::Channel,
    telemetry,
};

/// `otp.v1.OtpService` over an [`OtpFlow`]. Each call runs in a span carrying
/// the RPC name and the masked phone number, so every log line it causes is
/// attributable without exposing the number.
pub struct OtpGrpcService {
    flow: Arc<OtpFlow>,
    auth: Authenticator,
}

impl OtpGrpcService {
    /// Serves `flow` to the callers `auth` accepts.
    pub fn new(flow: Arc<OtpFlow>, auth: Authenticator) -> Self {
        Self { flow, auth }
    }

    fn identify<T>(&self, request: &Request<T>) -> Result<Option<Caller>, Error> {
        identify(&self.auth, request)
    }
}

/// The caller of `request` by `auth` (client certificate, then bearer
/// token), put on the call's span; `Ok(None)` when no caller authentication
/// is set up. The admin API (`src/admin.rs`) identifies its callers alike.
pub(crate) fn identify<T>(
    auth: &Authenticator,
    request: &Request<T>,
) -> Result<Option<Caller>, Error> {
    let caller = auth
        .identify(
            request.extensions().get::<PeerCertificate>(),
            request
                .metadata()
                .get("authorization")
                .map(|value| value.as_bytes()),
        )
        .map_err(|err| match err {
            AuthError::Unauthenticated => Error::Unauthenticated,
            AuthError::UnknownCaller => Error::UnknownCaller,
        })?;
    if let Some(caller) = &caller {
        Span::current().record("caller", field::display(caller));
    }
    Ok(caller)
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, Error> {
    let phone = PhoneNumber::parse(raw).map_err(Error::InvalidPhone)?;
    Span::current().record("phone", field::display(&phone));
    Ok(phone)
}

/// Logs one line per call (method, gRPC code, latency; the span adds the
/// masked phone), counts it, and maps an error to its status. The admin API
/// ends its calls here too.
pub(crate) fn finish<T>(
    method: &'static str,
    started: Instant,
    caller: Option<&Caller>,
    result: Result<T, Error>,
) -> Result<Response<T>, Status> {
    let result = result.map_err(|err| {
        if let Error::RateLimited { violations } = &err {
            for violation in violations {
                metrics::send_limit_refused(violation.kind.as_str());
                telemetry::note(
                    &Span::current(),
                    "send limit refused",
                    &[("otp.limit", violation.kind.as_str())],
                );
            }
        }
        Status::from(err)
    });
    let status_code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
    let code = code_name(status_code);
    let elapsed = started.elapsed();
    metrics::rpc_finished(method, code, caller.map(Caller::metric_label), elapsed);
    // The semantic conventions' attribute is the numeric code.
    telemetry::annotate_current("rpc.grpc.status_code", status_code as u32);
    tracing::info!(
        grpc.method = method,
        grpc.code = code,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "rpc finished"
    );
    result.map(Response::new)
}

/// The span of one call, named after the method and carrying the masked
/// phone once parsed and the authenticated caller (`identify`). While traces are exported it is also the server span
/// of the caller's trace; otherwise it is the same plain span as ever.
macro_rules! rpc_span {
    ($method:literal, $request:expr) => {
        if telemetry::exporting() {
            let span = tracing::info_span!(
                $method,
                phone = field::Empty,
                caller = field::Empty,
                otel.kind = "server"
            );
            trace_context::continue_caller(&span, $method, $request.metadata());
            span
        } else {
            tracing::info_span!($method, phone = field::Empty, caller = field::Empty)
        }
    };
}

#[tonic::async_trait]
impl OtpService for OtpGrpcService {
    async fn send_otp(
        &self,
        request: Request<SendOtpRequest>,
    ) -> Result<Response<SendOtpResponse>, Status> {
        let span = rpc_span!("SendOtp", request);
        self.serve_send(request).instrument(span).await
    }

    async fn verify_otp(
        &self,
        request: Request<VerifyOtpRequest>,
    ) -> Result<Response<VerifyOtpResponse>, Status> {
        let span = rpc_span!("VerifyOtp", request);
        self.serve_verify(request).instrument(span).await
    }

    async fn time_left(
        &self,
        request: Request<TimeLeftRequest>,
    ) -> Result<Response<TimeLeftResponse>, Status> {
        let span = rpc_span!("TimeLeft", request);
        self.serve_time_left(request).instrument(span).await
    }

    async fn cancel_otp(
        &self,
        request: Request<CancelOtpRequest>,
    ) -> Result<Response<CancelOtpResponse>, Status> {
        let span = rpc_span!("CancelOtp", request);
        self.serve_cancel(request).instrument(span).await
    }
}

/// The calls, each run inside its [`rpc_span!`].
impl OtpGrpcService {
    /// A VerifyOtp parsed and handed to the flow.
    async fn verify(
        &self,
        request: &VerifyOtpRequest,
        caller: Option<&Caller>,
    ) -> Result<Verification, Error> {
        let phone = parse_phone(&request.phone_number)?;
        let client_key = ClientKey::parse(&request.client_key).map_err(Error::InvalidClientKey)?;
        self.flow
            .verify(VerifyRequest {
                phone: &phone,
                code: &request.code,
                client_key: client_key.as_ref(),
                caller,
            })
            .await
    }

    async fn serve_send(
        &self,
        request: Request<SendOtpRequest>,
    ) -> Result<Response<SendOtpResponse>, Status> {
        let started = Instant::now();
        let caller = match self.identify(&request) {
            Ok(caller) => caller,
            Err(err) => return finish("SendOtp", started, None, Err(err)),
        };
        let request = request.into_inner();
        // A refused send is counted under the channel asked for; an unknown
        // one under SMS, the default (the label is a closed set).
        let channel = send_call::requested_channel(request.channel).unwrap_or(Channel::Sms);
        let flow = Arc::clone(&self.flow);
        let task_caller = caller.clone();
        // Run the send as its own task: if the caller hangs up mid-send, the
        // flow still finishes (and rolls back a code whose SMS failed) rather
        // than being dropped halfway.
        let sending =
            tokio::spawn(send_call::send(flow, request, task_caller).instrument(Span::current()));
        let watch = hang_up::HangUpWatch::default();
        let joined = sending.await;
        watch.answered();
        let result = match joined {
            Ok(result) => result,
            Err(join_error) => {
                tracing::error!(error = %join_error, "send task failed");
                return Err(Status::internal("internal error"));
            }
        };
        // A sent code names the channel that carried it, a failed or
        // refused send the one asked for.
        let (outcome, channel) = match &result {
            Ok((_, sent)) => ("sent", sent.channel),
            Err(err) => (err.kind(), channel),
        };
        metrics::send_finished(outcome, channel.as_str());
        telemetry::annotate_current("otp.result", outcome);
        telemetry::annotate_current("otp.channel", channel.as_str());
        let response = result.map(|(phone, sent)| send_call::response(&phone, &sent));
        finish("SendOtp", started, caller.as_ref(), response)
    }

    async fn serve_verify(
        &self,
        request: Request<VerifyOtpRequest>,
    ) -> Result<Response<VerifyOtpResponse>, Status> {
        let started = Instant::now();
        let caller = match self.identify(&request) {
            Ok(caller) => caller,
            Err(err) => return finish("VerifyOtp", started, None, Err(err)),
        };
        let request = request.into_inner();
        let verification = self.verify(&request, caller.as_ref()).await;
        let response = verification.map(|verification| {
            let (result, attempts_remaining) = match verification {
                Verification::Approved => (VerifyOtpResult::Approved, 0),
                Verification::Incorrect { attempts_remaining } => {
                    (VerifyOtpResult::Incorrect, attempts_remaining)
                }
                Verification::Expired => (VerifyOtpResult::Expired, 0),
                Verification::Locked => (VerifyOtpResult::Locked, 0),
            };
            VerifyOtpResponse {
                valid: verification == Verification::Approved,
                result: result.into(),
                attempts_remaining,
            }
        });
        let outcome = match &response {
            Ok(response) => match response.result() {
                VerifyOtpResult::Approved => "approved",
                VerifyOtpResult::Incorrect => "incorrect",
                VerifyOtpResult::Expired => "expired",
                VerifyOtpResult::Locked => "locked",
                VerifyOtpResult::Unspecified => "unspecified",
            },
            Err(err) => err.kind(),
        };
        metrics::verify_finished(outcome);
        telemetry::annotate_current("otp.result", outcome);
        finish("VerifyOtp", started, caller.as_ref(), response)
    }

    async fn serve_time_left(
        &self,
        request: Request<TimeLeftRequest>,
    ) -> Result<Response<TimeLeftResponse>, Status> {
        let started = Instant::now();
        let caller = match self.identify(&request) {
            Ok(caller) => caller,
            Err(err) => return finish("TimeLeft", started, None, Err(err)),
        };
        let request = request.into_inner();
        let time_left = match parse_phone(&request.phone_number) {
            Ok(phone) => self.flow.time_left(&phone).await,
            Err(err) => Err(err),
        };
        let response = time_left.map(|time_left| TimeLeftResponse {
            pending: time_left.pending,
            seconds_left: time_left.seconds_left,
        });
        finish("TimeLeft", started, caller.as_ref(), response)
    }

    async fn serve_cancel(
        &self,
        request: Request<CancelOtpRequest>,
    ) -> Result<Response<CancelOtpResponse>, Status> {
        let started = Instant::now();
        let caller = match self.identify(&request) {
            Ok(caller) => caller,
            Err(err) => return finish("CancelOtp", started, None, Err(err)),
        };
        let request = request.into_inner();
        let cancelled = match parse_phone(&request.phone_number) {
            Ok(phone) => self.flow.cancel(&phone).await,
            Err(err) => Err(err),
        };
        finish(
            "CancelOtp",
            started,
            caller.as_ref(),
            cancelled.map(|cancelled| CancelOtpResponse { cancelled }),
        )
    }
}

/// The `result` labels of VerifyOtp besides the error kinds it can end in
/// ([`Error::VERIFY_KINDS`]).
const VERIFY_RESULTS: [&str; 4] = ["approved", "incorrect", "expired", "locked"];

/// Exports every counter this service labels from a closed set at 0 (once
/// the metrics recorder is installed): sends and verifications by result,
/// refusals by limit.
pub fn counters_at_zero() {
    let sends: Vec<&'static str> = std::iter::once("sent").chain(Error::KINDS).collect();
    metrics::sends_start_at_zero(&sends, &Channel::ALL.map(Channel::as_str));
    let verifies: Vec<&'static str> = VERIFY_RESULTS
        .into_iter()
        .chain(Error::VERIFY_KINDS)
        .collect();
    metrics::start_at_zero(metrics::VERIFIES, "result", &verifies);
    let limits = LimitKind::SEND_LIMITS.map(LimitKind::as_str);
    metrics::start_at_zero(metrics::LIMIT_REFUSALS, "limit", &limits);
}

/// The canonical name of a gRPC code, as a metric label.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
