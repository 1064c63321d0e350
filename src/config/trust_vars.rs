//! The trust boundary: the health-only listener (`OTP_HEALTH_ADDR`), TLS /
//! mTLS on the gRPC listener (`OTP_TLS_*`, `OTP_TLS_MAX_HANDSHAKES` among them), who may call (`OTP_CALLERS_FILE`),
//! and the in-memory store's size bound (`OTP_MEMORY_MAX_ENTRIES`).

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use clap::{Args, builder::RangedU64ValueParser};

use super::ConfigError;
use crate::{
    auth::{CallersFile, DEFAULT_MAX_HANDSHAKES, TlsSettings},
    store::DEFAULT_MAX_ENTRIES,
};

/// Who may call, over what, and the in-memory store's size bound.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Trust boundary")]
pub struct TrustVars {
    /// A second, plaintext listener with grpc.health.v1 only, IP:port (unset: none)
    #[arg(long, env = "OTP_HEALTH_ADDR")]
    pub health_addr: Option<SocketAddr>,
    /// TLS certificate chain (PEM, leaf first); unset: plaintext
    #[arg(long, env = "OTP_TLS_CERT_FILE")]
    pub tls_cert_file: Option<String>,
    /// TLS private key (PEM); required with OTP_TLS_CERT_FILE
    #[arg(long, env = "OTP_TLS_KEY_FILE")]
    pub tls_key_file: Option<String>,
    /// Client CA certificates (PEM): mutual TLS
    #[arg(long, env = "OTP_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<String>,
    /// Most TLS handshakes in progress at once [1-100000]
    #[arg(long, env = "OTP_TLS_MAX_HANDSHAKES", default_value_t = DEFAULT_MAX_HANDSHAKES,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pub tls_max_handshakes: usize,
    /// Who may call: `<name> sha256:<hex>` or `<name> san:<SAN>` lines
    #[arg(long, env = "OTP_CALLERS_FILE")]
    pub callers_file: Option<String>,
    /// Most entries per in-memory table; beyond it SendOtp is refused [100-100000000]
    #[arg(long, env = "OTP_MEMORY_MAX_ENTRIES", default_value_t = DEFAULT_MAX_ENTRIES,
          value_parser = RangedU64ValueParser::<usize>::new().range(100..=100_000_000))]
    pub memory_max_entries: usize,
}

/// `OTP_CALLERS_FILE`: must parse at startup; afterwards it is re-read
/// whenever it changes (a broken new version keeps the last good one).
pub(super) fn callers(vars: &TrustVars) -> Result<Option<Arc<CallersFile>>, ConfigError> {
    let Some(path) = readable_file(vars.callers_file.as_deref(), "OTP_CALLERS_FILE")? else {
        return Ok(None);
    };
    CallersFile::open_callers(&path)
        .map(|file| Some(Arc::new(file)))
        .map_err(|why| ConfigError::new("OTP_CALLERS_FILE", why))
}

/// `OTP_TLS_CERT_FILE` and `OTP_TLS_KEY_FILE` (both or neither) turn TLS on;
/// `OTP_TLS_CLIENT_CA_FILE` then makes a client certificate mandatory. Each
/// file must be readable now; its content is checked when the server starts.
pub(super) fn tls(vars: &TrustVars) -> Result<Option<TlsSettings>, ConfigError> {
    let cert = readable_file(vars.tls_cert_file.as_deref(), "OTP_TLS_CERT_FILE")?;
    let key = readable_file(vars.tls_key_file.as_deref(), "OTP_TLS_KEY_FILE")?;
    let client_ca = readable_file(vars.tls_client_ca_file.as_deref(), "OTP_TLS_CLIENT_CA_FILE")?;
    match (cert, key) {
        (Some(cert_file), Some(key_file)) => Ok(Some(TlsSettings {
            cert_file,
            key_file,
            client_ca_file: client_ca,
            max_handshakes: vars.tls_max_handshakes,
        })),
        (None, None) if client_ca.is_some() => Err(ConfigError::new(
            "OTP_TLS_CLIENT_CA_FILE",
            "needs TLS: set OTP_TLS_CERT_FILE and OTP_TLS_KEY_FILE too",
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            "OTP_TLS_KEY_FILE",
            "is required with OTP_TLS_CERT_FILE",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "OTP_TLS_CERT_FILE",
            "is required with OTP_TLS_KEY_FILE",
        )),
    }
}

/// The path in `var`, if set, after checking that it names a readable file.
pub(super) fn readable_file(
    raw: Option<&str>,
    var: &'static str,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match std::fs::File::open(raw).and_then(|file| file.metadata()) {
        Ok(meta) if meta.is_file() => Ok(Some(PathBuf::from(raw))),
        Ok(_) => Err(ConfigError::new(var, format!("`{raw}` is not a file"))),
        Err(err) => Err(ConfigError::new(var, format!("cannot read `{raw}`: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_refused, config};

    #[test]
    fn health_listener_is_off_unless_asked_for() {
        assert_eq!(config(&[]).expect("valid").health_addr, None);
        let on = config(&[("OTP_HEALTH_ADDR", "0.0.0.0:50052")]).expect("valid");
        assert_eq!(
            on.health_addr.map(|addr| addr.to_string()).as_deref(),
            Some("0.0.0.0:50052")
        );
        assert_refused(
            &[("OTP_HEALTH_ADDR", "50052")],
            "OTP_HEALTH_ADDR",
            "invalid socket address",
        );
    }
}
