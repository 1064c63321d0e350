//! The trust boundary: the health-only listener (`OTP_HEALTH_ADDR`), TLS /
//! mTLS on the gRPC listener (`OTP_TLS_*`, `OTP_TLS_MAX_HANDSHAKES` among them), who may call (`OTP_CALLERS_FILE`),
//! and the in-memory store's size bound (`OTP_MEMORY_MAX_ENTRIES`).

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use super::{ConfigError, Env};
use crate::{
    auth::{CallersFile, DEFAULT_MAX_HANDSHAKES, TlsSettings},
    store::DEFAULT_MAX_ENTRIES,
};

/// `OTP_MEMORY_MAX_ENTRIES`: most entries per in-memory table (codes, send
/// logs, idempotency keys), so a flood of sends to fresh numbers is refused
/// instead of exhausting the process's memory.
pub(super) fn memory_max_entries(env: &Env) -> Result<usize, ConfigError> {
    env.int_in_range(
        "OTP_MEMORY_MAX_ENTRIES",
        DEFAULT_MAX_ENTRIES,
        100,
        100_000_000,
    )
}

/// `OTP_CALLERS_FILE`: must parse at startup; afterwards it is re-read
/// whenever it changes (a broken new version keeps the last good one).
pub(super) fn callers(env: &Env) -> Result<Option<Arc<CallersFile>>, ConfigError> {
    let Some(path) = readable_file(env, "OTP_CALLERS_FILE")? else {
        return Ok(None);
    };
    CallersFile::open_callers(&path)
        .map(|file| Some(Arc::new(file)))
        .map_err(|why| ConfigError::new("OTP_CALLERS_FILE", why))
}

/// `OTP_TLS_CERT_FILE` and `OTP_TLS_KEY_FILE` (both or neither) turn TLS on;
/// `OTP_TLS_CLIENT_CA_FILE` then makes a client certificate mandatory. Each
/// file must be readable now; its content is checked when the server starts.
pub(super) fn tls(env: &Env) -> Result<Option<TlsSettings>, ConfigError> {
    let cert = readable_file(env, "OTP_TLS_CERT_FILE")?;
    let key = readable_file(env, "OTP_TLS_KEY_FILE")?;
    let client_ca = readable_file(env, "OTP_TLS_CLIENT_CA_FILE")?;
    match (cert, key) {
        (Some(cert_file), Some(key_file)) => Ok(Some(TlsSettings {
            cert_file,
            key_file,
            client_ca_file: client_ca,
            max_handshakes: env.int_in_range(
                "OTP_TLS_MAX_HANDSHAKES",
                DEFAULT_MAX_HANDSHAKES,
                1,
                100_000,
            )?,
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
pub(super) fn readable_file(env: &Env, var: &'static str) -> Result<Option<PathBuf>, ConfigError> {
    let Some(raw) = env.get(var) else {
        return Ok(None);
    };
    match std::fs::File::open(raw).and_then(|file| file.metadata()) {
        Ok(meta) if meta.is_file() => Ok(Some(PathBuf::from(raw))),
        Ok(_) => Err(ConfigError::new(var, format!("`{raw}` is not a file"))),
        Err(err) => Err(ConfigError::new(var, format!("cannot read `{raw}`: {err}"))),
    }
}

/// `OTP_HEALTH_ADDR`: unset or empty, no separate health listener (health is
/// still served on the gRPC listener).
pub(super) fn health_addr(env: &Env) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(raw) = env.get("OTP_HEALTH_ADDR") else {
        return Ok(None);
    };
    raw.parse::<SocketAddr>().map(Some).map_err(|_| {
        ConfigError::new(
            "OTP_HEALTH_ADDR",
            format!("must be an IP:port socket address, e.g. 0.0.0.0:50052 (got `{raw}`)"),
        )
    })
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
            "IP:port",
        );
    }
}
