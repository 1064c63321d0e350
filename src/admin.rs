//! The admin API's gRPC face (`otp.admin.v1.OtpAdminService`): who may call
//! (`access.rs`), requests into domain values (refusing bad input, naming
//! the field), the pumping guard's operations ([`PumpingAdmin`], where the
//! policy is), and answers back into proto (`answers.rs`). Every call ends in
//! the same [`finish`] as the OTP API's: one log line, its metrics, its
//! status from `error.rs`. Served beside `otp.v1.OtpService` on the same
//! listener, under the same TLS and caller authentication.

mod access;
mod answers;

use std::{future::Future, sync::Arc};

use tokio::time::Instant;
use tonic::{Request, Response, Status};
use tracing::{Instrument, field};

use crate::{
    abuse::{DestinationPrefix, ExemptionPeriod},
    auth::Authenticator,
    error::Error,
    otp::{OtpFlow, PumpingAdmin},
    proto::admin::{
        EndPrefixExemptionRequest, EndPrefixExemptionResponse, ExemptPrefixRequest,
        ExemptPrefixResponse, GetAbuseSettingsRequest, GetAbuseSettingsResponse,
        LiftPrefixSuspensionRequest, LiftPrefixSuspensionResponse, ListPrefixExemptionsRequest,
        ListPrefixExemptionsResponse, ListSuspendedPrefixesRequest, ListSuspendedPrefixesResponse,
        otp_admin_service_server::OtpAdminService,
    },
    service::finish,
};

/// `otp.admin.v1.OtpAdminService` over a flow's pumping guard and settings.
pub struct AdminGrpcService {
    flow: Arc<OtpFlow>,
    admin: PumpingAdmin,
    auth: Authenticator,
}

impl AdminGrpcService {
    /// Serves `flow`'s guard and settings to the callers `auth` admits as
    /// admins ([`Authenticator::authorize_admin`]).
    pub fn new(flow: Arc<OtpFlow>, auth: Authenticator) -> Self {
        Self {
            admin: flow.pumping_admin(),
            flow,
            auth,
        }
    }

    /// One admin call: refused unless the caller may administer; else
    /// `call` with the request and the operator's name; then [`finish`].
    async fn serve<Req, Resp, Fut>(
        &self,
        method: &'static str,
        request: Request<Req>,
        call: impl FnOnce(Req, String) -> Fut,
    ) -> Result<Response<Resp>, Status>
    where
        Fut: Future<Output = Result<Resp, Error>>,
    {
        let started = Instant::now();
        let (caller, admitted) = access::admit(&self.auth, &request);
        let result = match admitted {
            Ok(operator) => call(request.into_inner(), operator).await,
            Err(err) => Err(err),
        };
        finish(method, started, caller.as_ref(), result)
    }
}

/// The span of one admin call, named after the method, with the caller.
macro_rules! admin_span {
    ($method:literal) => {
        tracing::info_span!($method, caller = field::Empty)
    };
}

/// A prefix to lift or end an exemption of: any well-formed one, so what
/// the lists show can always be acted on, even one counted before
/// `OTP_PUMPING_PREFIX_DIGITS` changed (and still by replicas not yet
/// redeployed).
fn parse_prefix(raw: &str) -> Result<DestinationPrefix, Error> {
    DestinationPrefix::parse(raw).map_err(Error::InvalidPrefix)
}

#[tonic::async_trait]
impl OtpAdminService for AdminGrpcService {
    async fn list_suspended_prefixes(
        &self,
        request: Request<ListSuspendedPrefixesRequest>,
    ) -> Result<Response<ListSuspendedPrefixesResponse>, Status> {
        self.serve("ListSuspendedPrefixes", request, |_, _| async {
            let suspended = self.admin.suspended().await?;
            Ok(answers::suspended_prefixes(suspended))
        })
        .instrument(admin_span!("ListSuspendedPrefixes"))
        .await
    }

    async fn lift_prefix_suspension(
        &self,
        request: Request<LiftPrefixSuspensionRequest>,
    ) -> Result<Response<LiftPrefixSuspensionResponse>, Status> {
        self.serve(
            "LiftPrefixSuspension",
            request,
            |request, operator| async move {
                let prefix = parse_prefix(&request.prefix)?;
                let lifted = self.admin.lift(&operator, &prefix).await?;
                Ok(LiftPrefixSuspensionResponse { lifted })
            },
        )
        .instrument(admin_span!("LiftPrefixSuspension"))
        .await
    }

    async fn exempt_prefix(
        &self,
        request: Request<ExemptPrefixRequest>,
    ) -> Result<Response<ExemptPrefixResponse>, Status> {
        self.serve("ExemptPrefix", request, |request, operator| async move {
            // Exempting a prefix the guard never counts would exempt nothing.
            let prefix = self
                .flow
                .abuse()
                .pumping_guard
                .counted_prefix(&request.prefix)
                .map_err(Error::InvalidPrefix)?;
            let period = ExemptionPeriod::from_secs(u64::from(request.duration_seconds))
                .map_err(Error::InvalidExemptionPeriod)?;
            self.admin.exempt(&operator, &prefix, period).await?;
            Ok(ExemptPrefixResponse {
                ends_in_seconds: request.duration_seconds,
            })
        })
        .instrument(admin_span!("ExemptPrefix"))
        .await
    }

    async fn end_prefix_exemption(
        &self,
        request: Request<EndPrefixExemptionRequest>,
    ) -> Result<Response<EndPrefixExemptionResponse>, Status> {
        self.serve(
            "EndPrefixExemption",
            request,
            |request, operator| async move {
                let prefix = parse_prefix(&request.prefix)?;
                let ended = self.admin.end_exemption(&operator, &prefix).await?;
                Ok(EndPrefixExemptionResponse { ended })
            },
        )
        .instrument(admin_span!("EndPrefixExemption"))
        .await
    }

    async fn list_prefix_exemptions(
        &self,
        request: Request<ListPrefixExemptionsRequest>,
    ) -> Result<Response<ListPrefixExemptionsResponse>, Status> {
        self.serve("ListPrefixExemptions", request, |_, _| async {
            let exemptions = self.admin.exemptions().await?;
            Ok(answers::prefix_exemptions(exemptions))
        })
        .instrument(admin_span!("ListPrefixExemptions"))
        .await
    }

    async fn get_abuse_settings(
        &self,
        request: Request<GetAbuseSettingsRequest>,
    ) -> Result<Response<GetAbuseSettingsResponse>, Status> {
        self.serve("GetAbuseSettings", request, |_, _| async {
            Ok(answers::abuse_settings(
                self.flow.policy(),
                self.flow.abuse(),
            ))
        })
        .instrument(admin_span!("GetAbuseSettings"))
        .await
    }
}
