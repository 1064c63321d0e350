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
    if let Some(warning) = open_beyond_loopback(config) {
        tracing::warn!("{warning}");
    }
    Ok((tls, auth))
}

/// No caller authentication on a listener other hosts can reach.
pub(crate) fn open_beyond_loopback(config: &Config) -> Option<&'static str> {
    (!config.authenticates_callers() && !config.listen_addr.ip().is_loopback()).then_some(
        "no caller authentication (OTP_CALLERS_FILE, OTP_TLS_CLIENT_CA_FILE): anyone who \
         can reach the gRPC listener can send codes; keep it on loopback",
    )
}
