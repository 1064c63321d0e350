//! `OTP_HMAC_PREVIOUS_SECRETS`: the secrets of earlier key generations, for
//! rotating `OTP_HMAC_SECRET` without losing codes or limits (see
//! `domain/key_ring.rs` for how they are used).

use super::{ConfigError, MIN_SECRET_BYTES};
use crate::domain::HmacSecret;

/// Previous secrets, newest first, comma-separated. Each must be as long as
/// `OTP_HMAC_SECRET` must be. The list may name the current secret too: in
/// the first step of a two-step rotation (`OTP_HMAC_SECRET=old`,
/// `OTP_HMAC_PREVIOUS_SECRETS=new,old`) every replica learns the new secret
/// before any signs with it. Never echoed in errors.
pub(super) fn previous_secrets(
    previous: Option<&str>,
    current: Option<&str>,
) -> Result<Vec<HmacSecret>, ConfigError> {
    const VAR: &str = "OTP_HMAC_PREVIOUS_SECRETS";
    let Some(raw) = previous else {
        return Ok(Vec::new());
    };
    if current.is_none() {
        return Err(ConfigError::new(VAR, "needs OTP_HMAC_SECRET to be set too"));
    }
    let mut secrets = Vec::new();
    for (index, secret) in raw.split(',').map(str::trim).enumerate() {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "secret #{} must be at least {MIN_SECRET_BYTES} bytes (comma-separated, newest first)",
                    index + 1
                ),
            ));
        }
        secrets.push(HmacSecret::new(secret.as_bytes()));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_refused, config};

    const OLD: &str = "old-secret-old-secret-old-secret-0001";
    const NEW: &str = "new-secret-new-secret-new-secret-0002";

    #[test]
    fn previous_secrets_are_checked_and_never_echoed() {
        let keys = config(&[
            ("OTP_HMAC_SECRET", NEW),
            ("OTP_HMAC_PREVIOUS_SECRETS", &format!("{OLD}, {OLD}x")),
        ])
        .expect("valid");
        assert_eq!(keys.hmac_previous_secrets.len(), 2);
        let line = assert_refused(
            &[
                ("OTP_HMAC_SECRET", NEW),
                ("OTP_HMAC_PREVIOUS_SECRETS", "short"),
            ],
            "OTP_HMAC_PREVIOUS_SECRETS",
            "#1 must be at least 32 bytes",
        );
        assert!(!line.contains("short"));
        assert_refused(
            &[("OTP_HMAC_PREVIOUS_SECRETS", OLD)],
            "OTP_HMAC_PREVIOUS_SECRETS",
            "needs OTP_HMAC_SECRET",
        );
    }
}
