//! Who may call the admin API: the caller as the OTP API identifies it
//! (`service::identify`), then [`Authenticator::authorize_admin`] — a
//! `role:admin` line in the callers file, or, without a callers file, a
//! connection from loopback.

use std::net::IpAddr;

use tonic::Request;

use crate::{
    auth::{Authenticator, Caller, PeerCertificate},
    error::Error,
    service::identify,
};

/// The operator's name in logs and events when no callers file names one:
/// the call came from loopback.
const LOOPBACK_OPERATOR: &str = "loopback";

/// The caller of `request` (for the call's log line and metrics, also when
/// refused), and the operator's name if it may administer, else why not.
pub(super) fn admit<T>(
    auth: &Authenticator,
    request: &Request<T>,
) -> (Option<Caller>, Result<String, Error>) {
    let caller = match identify(auth, request) {
        Ok(caller) => caller,
        Err(err) => {
            // No credentials, or ones the callers file does not name (the
            // error names neither the token nor its digest).
            tracing::warn!(reason = %err, "admin API call refused");
            return (None, Err(err));
        }
    };
    let admitted = auth
        .authorize_admin(caller.as_ref(), remote_ip(request))
        .map(|()| {
            caller.as_ref().map_or_else(
                || LOOPBACK_OPERATOR.to_owned(),
                |caller| caller.name().to_owned(),
            )
        })
        .map_err(|refusal| {
            // A refused admin call is worth a look: who tried, and why not.
            tracing::warn!(reason = %refusal, "admin API call refused");
            Error::AdminDenied(refusal)
        });
    (caller, admitted)
}

/// The address the call came from: tonic tells it for plaintext
/// connections; our TLS listener puts it beside the client certificate.
fn remote_ip<T>(request: &Request<T>) -> Option<IpAddr> {
    request
        .remote_addr()
        .or_else(|| {
            request
                .extensions()
                .get::<PeerCertificate>()
                .and_then(|peer| peer.remote)
        })
        .map(|addr| addr.ip())
}
