//! Where the service listens besides the gRPC API: the health-only listener
//! (`OTP_HEALTH_ADDR`).

use std::net::SocketAddr;

use super::{ConfigError, Env};

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
