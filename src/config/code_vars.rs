//! How codes are made, checked and hashed: `OTP_CODE_LENGTH`,
//! `OTP_TTL_SECONDS`, `OTP_GRACE_SECONDS`, `OTP_MAX_ATTEMPTS`, `OTP_HMAC_SECRET`.

use std::time::Duration;

use clap::{Args, value_parser};

use super::{ConfigError, SecretSource};
use crate::{domain::HmacSecret, otp::OtpPolicy, store::StoreConfig};

/// Shortest accepted `OTP_HMAC_SECRET`, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// How codes are made, checked and hashed.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Codes")]
pub struct CodeVars {
    /// Digits per code [4-10]
    #[arg(long, env = "OTP_CODE_LENGTH", default_value_t = 6,
          value_parser = value_parser!(u8).range(4..=10))]
    pub code_length: u8,
    /// Advertised validity of a code, in seconds [1-600]
    #[arg(long, env = "OTP_TTL_SECONDS", default_value_t = 120,
          value_parser = value_parser!(u64).range(1..=600))]
    pub ttl_seconds: u64,
    /// Extra seconds a code is still accepted, for network delay [0-60]
    #[arg(long, env = "OTP_GRACE_SECONDS", default_value_t = 10,
          value_parser = value_parser!(u64).range(0..=60))]
    pub grace_seconds: u64,
    /// Wrong guesses before the number is locked [1-20]
    #[arg(long, env = "OTP_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Key for every stored hash, at least 32 bytes; required with Redis
    /// (unset: random for this process)
    #[arg(long, env = "OTP_HMAC_SECRET", value_name = "SECRET")]
    pub hmac_secret: Option<String>,
    /// Secrets OTP_HMAC_SECRET replaced, comma-separated, newest first
    #[arg(long, env = "OTP_HMAC_PREVIOUS_SECRETS", value_name = "SECRET")]
    pub hmac_previous_secrets: Option<String>,
}

/// The code rules the flow enforces.
pub(super) fn otp_policy(vars: &CodeVars) -> OtpPolicy {
    OtpPolicy {
        code_length: vars.code_length,
        ttl: Duration::from_secs(vars.ttl_seconds),
        grace: Duration::from_secs(vars.grace_seconds),
        max_attempts: vars.max_attempts,
    }
}

/// `OTP_HMAC_SECRET`, required with a shared (Redis) store; without one, a
/// random secret for this process only.
pub(super) fn hmac_secret(
    vars: &CodeVars,
    store: &StoreConfig,
) -> Result<(HmacSecret, SecretSource), ConfigError> {
    match vars.hmac_secret.as_deref() {
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
