//! The trust boundary the server is built with: TLS on the gRPC listener
//! and who may call (`src/auth/` decides each call; this only assembles it).

use super::StartupError;
use crate::{
    auth::{self, Authenticator},
    config::Config,
};

/// TLS on the gRPC listener and who may call, from `OTP_TLS_*` and
/// `OTP_CALLERS_FILE`, announced in the log.
pub(super) fn trust_boundary(
    config: &Config,
) -> Result<(Option<auth::ServerTls>, Authenticator), StartupError> {
    let tls = match &config.tls {
        Some(settings) => {
            let tls = auth::server_config(settings).map_err(StartupError::Tls)?;
            tracing::info!(
                mutual = settings.client_ca_file.is_some(),
                "TLS on the gRPC listener (certificate and client CA reloaded when their files change)"
            );
            Some(tls)
        }
        None => None,
    };
    let mutual_tls = config
        .tls
        .as_ref()
        .is_some_and(|tls| tls.client_ca_file.is_some());
    let auth = Authenticator::new(config.callers.clone(), mutual_tls);
    if !auth.required() && !config.listen_addr.ip().is_loopback() {
        tracing::warn!(
            "no caller authentication (OTP_CALLERS_FILE, OTP_TLS_CLIENT_CA_FILE): anyone who \
             can reach the gRPC listener can send codes; keep it on loopback"
        );
    }
    Ok((tls, auth))
}
