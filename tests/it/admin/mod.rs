//! The admin API (`otp.admin.v1.OtpAdminService`): who may call it
//! (`access.rs`: only a caller whose line in the callers file carries
//! `role:admin`; without a callers file, only loopback; plaintext and TLS
//! alike; bad input names its field) and what it does to the pumping guard's
//! prefixes on every store (`prefixes.rs`: a prefix suspended by real traffic
//! is listed with its counts and lifted on every replica by one call to one of
//! them; an exemption frees a prefix and ends on request; each change is an
//! audit event).

mod access;
mod prefixes;

use crate::{callers::CHECKOUT_TOKEN, common::tls::CertDir};
use otp_service::proto::admin::{
    GetAbuseSettingsRequest, GetAbuseSettingsResponse,
    otp_admin_service_client::OtpAdminServiceClient,
};
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

/// The token of `ops`, the callers file's admin.
const OPS_TOKEN: &str = "ops-token-5a1e77";

/// A callers file with an admin and a plain caller each by token and by
/// certificate.
fn callers_file_with_admins(dir: &CertDir) -> String {
    let digest = |token: &str| hex::encode(Sha256::digest(token.as_bytes()));
    dir.write(
        "callers",
        &format!(
            "# name     credential                          role\n\
             checkout   sha256:{}\n\
             ops        sha256:{}  role:admin\n\
             reports    san:reports.callers.internal\n\
             oncall     san:oncall.callers.internal  role:admin\n",
            digest(CHECKOUT_TOKEN),
            digest(OPS_TOKEN)
        ),
    )
}

/// `message` with `authorization: Bearer <token>`.
fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII header"),
    );
    request
}

/// Asserts PERMISSION_DENIED with the admin API's `ErrorInfo` `reason`.
fn assert_admin_refused(status: &Status, reason: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "otp.admin.v1");
}

async fn settings(
    admin: &mut OtpAdminServiceClient<Channel>,
) -> Result<GetAbuseSettingsResponse, Status> {
    admin
        .get_abuse_settings(GetAbuseSettingsRequest {})
        .await
        .map(tonic::Response::into_inner)
}
