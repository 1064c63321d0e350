//! Every setting the service reads from its environment: parsed, validated and
//! defaulted here, once, at startup. Nothing else in the crate reads env vars.

mod message;
mod sms;

use std::{collections::HashMap, fmt, net::SocketAddr, time::Duration};

use thiserror::Error;

pub use message::{DEFAULT_APP_NAME, MAX_APP_NAME_CHARS};
pub use sms::{SmsConfig, TextBeeConfig};

use crate::{domain::HmacSecret, sms::MessageTemplate};

/// Fully validated service settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the gRPC server binds (`OTP_LISTEN_ADDR`).
    pub listen_addr: SocketAddr,
    /// How codes are made and checked.
    pub policy: OtpPolicy,
    /// Key for every hash the service stores (`OTP_HMAC_SECRET`).
    pub hmac_secret: HmacSecret,
    /// Whether `hmac_secret` came from the environment or was generated for this process.
    pub hmac_secret_source: SecretSource,
    /// Log output format (`OTP_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Which SMS gateway sends the codes.
    pub sms: SmsConfig,
    /// The text a code is sent in (`OTP_MESSAGE_TEMPLATE`, `OTP_APP_NAME`, `OTP_WEBOTP_DOMAIN`).
    pub template: MessageTemplate,
}

/// The OTP rules the flow enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpPolicy {
    /// Digits per code (`OTP_CODE_LENGTH`, 4–10).
    pub code_length: u8,
    /// Advertised validity of a code (`OTP_TTL_SECONDS`, 1–600).
    pub ttl: Duration,
    /// Extra time a code is still accepted after `ttl`, for network delay (`OTP_GRACE_SECONDS`, 0–60).
    pub grace: Duration,
    /// Wrong guesses allowed per pending code's lifetime (`OTP_MAX_ATTEMPTS`, 1–20).
    pub max_attempts: u32,
}

impl OtpPolicy {
    /// How long a stored code lives: validity plus grace.
    pub fn code_lifetime(&self) -> Duration {
        self.ttl + self.grace
    }
}

/// Where the HMAC secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// Set by the operator in `OTP_HMAC_SECRET`.
    Environment,
    /// Random for this process only: codes do not survive a restart and cannot be shared by replicas.
    GeneratedForThisProcess,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A setting that could not be accepted. Its message names the variable and
/// what is allowed, and never echoes a secret's value.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong and what would be accepted.
    pub problem: String,
}

impl ConfigError {
    fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// Default gRPC listen address: loopback, because a sidecar serves only its pod.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// Shortest accepted `OTP_HMAC_SECRET`, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from name/value pairs, exactly as if they were the
    /// environment (tests use this to configure a server like an operator would).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env = Env(vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect());

        let listen_addr = env.parsed("OTP_LISTEN_ADDR", DEFAULT_LISTEN_ADDR, |raw| {
            raw.parse::<SocketAddr>()
                .map_err(|_| "must be an IP:port socket address, e.g. 127.0.0.1:50051".to_owned())
        })?;
        let policy = OtpPolicy {
            code_length: env.int_in_range("OTP_CODE_LENGTH", 6, 4, 10)?,
            ttl: Duration::from_secs(env.int_in_range("OTP_TTL_SECONDS", 120, 1, 600)?),
            grace: Duration::from_secs(env.int_in_range("OTP_GRACE_SECONDS", 10, 0, 60)?),
            max_attempts: env.int_in_range("OTP_MAX_ATTEMPTS", 5, 1, 20)?,
        };
        let (hmac_secret, hmac_secret_source) = match env.get("OTP_HMAC_SECRET") {
            Some(raw) if raw.len() >= MIN_SECRET_BYTES => {
                (HmacSecret::new(raw.as_bytes()), SecretSource::Environment)
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "OTP_HMAC_SECRET",
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                    ),
                ));
            }
            None => (
                HmacSecret::generate(),
                SecretSource::GeneratedForThisProcess,
            ),
        };
        let log_format = env.parsed("OTP_LOG_FORMAT", "text", |raw| match raw {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be `text` or `json`".to_owned()),
        })?;
        let sms = sms::sms_from_env(&env)?;
        let template = message::template_from_env(&env)?;

        Ok(Self {
            listen_addr,
            policy,
            hmac_secret,
            hmac_secret_source,
            log_format,
            sms,
            template,
        })
    }
}

/// The variables being read, with empty values treated as unset (as shells and
/// container runtimes commonly pass `VAR=` for "not configured").
struct Env(HashMap<String, String>);

impl Env {
    fn get(&self, var: &str) -> Option<&str> {
        self.0
            .get(var)
            .map(|v| v.trim())
            .filter(|value| !value.is_empty())
    }

    fn parsed<T>(
        &self,
        var: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.get(var).unwrap_or(default);
        parse(raw).map_err(|why| ConfigError::new(var, format!("{why} (got `{raw}`)")))
    }

    fn int_in_range<T>(
        &self,
        var: &'static str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + Copy + fmt::Display,
    {
        self.parsed(var, &default.to_string(), |raw| {
            raw.parse::<T>()
                .ok()
                .filter(|value| (min..=max).contains(value))
                .ok_or_else(|| format!("must be a whole number from {min} to {max}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().copied())
    }

    #[test]
    fn defaults_give_a_loopback_service_with_six_digit_codes() {
        let config = config(&[]).expect("defaults are valid");
        assert_eq!(config.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
        assert_eq!(config.policy.code_length, 6);
        assert_eq!(config.policy.ttl, Duration::from_secs(120));
        assert_eq!(config.policy.grace, Duration::from_secs(10));
        assert_eq!(config.policy.max_attempts, 5);
        assert_eq!(
            config.hmac_secret_source,
            SecretSource::GeneratedForThisProcess
        );
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn out_of_range_values_name_the_variable_and_the_range() {
        let cases = [
            ("OTP_CODE_LENGTH", "3", "from 4 to 10"),
            ("OTP_CODE_LENGTH", "six", "from 4 to 10"),
            ("OTP_TTL_SECONDS", "601", "from 1 to 600"),
            ("OTP_TTL_SECONDS", "0", "from 1 to 600"),
            ("OTP_GRACE_SECONDS", "-1", "from 0 to 60"),
            ("OTP_MAX_ATTEMPTS", "0", "from 1 to 20"),
            ("OTP_LISTEN_ADDR", "localhost", "IP:port"),
            ("OTP_LOG_FORMAT", "xml", "`text` or `json`"),
            ("OTP_SMS_GATEWAY", "pigeon", "must be"),
        ];
        for (var, value, expected) in cases {
            let err = config(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var);
            let line = err.to_string();
            assert!(line.starts_with(var), "{line}");
            assert!(line.contains(expected), "{line}");
            assert!(!line.contains('\n'), "one line: {line}");
        }
    }

    #[test]
    fn short_secret_is_refused_without_echoing_it() {
        let err = config(&[("OTP_HMAC_SECRET", "hunter2")]).expect_err("too short");
        assert_eq!(err.var, "OTP_HMAC_SECRET");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn configured_secret_is_used() {
        let secret = "0123456789abcdef0123456789abcdef";
        let config = config(&[("OTP_HMAC_SECRET", secret)]).expect("valid");
        assert_eq!(config.hmac_secret_source, SecretSource::Environment);
        assert_eq!(config.hmac_secret, HmacSecret::new(secret.as_bytes()));
    }

    #[test]
    fn empty_values_mean_unset() {
        let config = config(&[("OTP_CODE_LENGTH", ""), ("OTP_LOG_FORMAT", " ")]).expect("valid");
        assert_eq!(config.policy.code_length, 6);
        assert_eq!(config.log_format, LogFormat::Text);
    }
}
