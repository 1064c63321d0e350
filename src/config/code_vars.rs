//! How codes are made, checked and hashed: `OTP_CODE_LENGTH`,
//! `OTP_TTL_SECONDS`, `OTP_GRACE_SECONDS`, `OTP_MAX_ATTEMPTS`, `OTP_HMAC_SECRET`.

use std::time::Duration;

use super::{ConfigError, Env, SecretSource};
use crate::{domain::HmacSecret, otp::OtpPolicy, store::StoreConfig};

/// Shortest accepted `OTP_HMAC_SECRET`, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The code rules the flow enforces.
pub(super) fn otp_policy(env: &Env) -> Result<OtpPolicy, ConfigError> {
    Ok(OtpPolicy {
        code_length: env.int_in_range("OTP_CODE_LENGTH", 6, 4, 10)?,
        ttl: Duration::from_secs(env.int_in_range("OTP_TTL_SECONDS", 120, 1, 600)?),
        grace: Duration::from_secs(env.int_in_range("OTP_GRACE_SECONDS", 10, 0, 60)?),
        max_attempts: env.int_in_range("OTP_MAX_ATTEMPTS", 5, 1, 20)?,
    })
}

/// `OTP_HMAC_SECRET`, required with a shared (Redis) store; without one, a
/// random secret for this process only.
pub(super) fn hmac_secret(
    env: &Env,
    store: &StoreConfig,
) -> Result<(HmacSecret, SecretSource), ConfigError> {
    match env.get("OTP_HMAC_SECRET") {
        Some(raw) if raw.len() >= MIN_SECRET_BYTES => {
            Ok((HmacSecret::new(raw.as_bytes()), SecretSource::Environment))
        }
        Some(_) => Err(ConfigError::new(
            "OTP_HMAC_SECRET",
            format!("must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"),
        )),
        // Replicas sharing a Redis must derive the same keys and digests,
        // so a per-process secret would make every cross-replica verify fail.
        None if matches!(store, StoreConfig::Redis(_)) => Err(ConfigError::new(
            "OTP_HMAC_SECRET",
            "is required with a Redis store (REDIS_URL, REDIS_CLUSTER_URLS or \
             REDIS_SENTINEL_URLS): every replica must share one secret \
             (e.g. `openssl rand -hex 32`)",
        )),
        None => Ok((
            HmacSecret::generate(),
            SecretSource::GeneratedForThisProcess,
        )),
    }
}
