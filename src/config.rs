//! Every setting the service reads from its environment: parsed, validated and
//! defaulted here, once, at startup. Nothing else in the crate reads env vars.

mod listeners;
mod message;
mod secrets;
mod sms;
mod store;

use std::{collections::HashMap, fmt, net::SocketAddr, time::Duration};

use thiserror::Error;

pub use message::{DEFAULT_APP_NAME, MAX_APP_NAME_CHARS};
pub use sms::{SmsConfig, TextBeeConfig};
pub use store::{DEFAULT_REDIS_PREFIX, REDIS_SELECTORS, StoreConfig};

use crate::{
    abuse::{CountryPolicy, SendLimits, TestNumbers},
    auth::{CallerList, TlsSettings},
    domain::HmacSecret,
    sms::MessageTemplate,
};

/// Fully validated service settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the gRPC server binds (`OTP_LISTEN_ADDR`).
    pub listen_addr: SocketAddr,
    /// A second listener serving only `grpc.health.v1` (`OTP_HEALTH_ADDR`), so
    /// probes reach health on the pod IP while the API stays on loopback.
    pub health_addr: Option<SocketAddr>,
    /// TLS on the gRPC listener (`OTP_TLS_CERT_FILE`, `OTP_TLS_KEY_FILE`,
    /// `OTP_TLS_CLIENT_CA_FILE`); `None`: plaintext (the loopback sidecar).
    pub tls: Option<TlsSettings>,
    /// Who may call (`OTP_CALLERS_FILE`): names with token digests or
    /// certificate SANs. `None`: no bearer tokens (mTLS alone, or anonymous).
    pub callers: Option<CallerList>,
    /// Where Prometheus metrics are served (`OTP_METRICS_ADDR`); `None`: off.
    pub metrics_addr: Option<SocketAddr>,
    /// How codes are made and checked.
    pub policy: OtpPolicy,
    /// Key for every hash the service stores (`OTP_HMAC_SECRET`).
    pub hmac_secret: HmacSecret,
    /// Secrets `hmac_secret` replaced (`OTP_HMAC_PREVIOUS_SECRETS`, newest
    /// first): codes digested with them still verify, and the last names
    /// store records, so a rotation keeps codes, guesses, locks and limits.
    pub hmac_previous_secrets: Vec<HmacSecret>,
    /// Whether `hmac_secret` came from the environment or was generated for this process.
    pub hmac_secret_source: SecretSource,
    /// Log output format (`OTP_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Which SMS gateway sends the codes.
    pub sms: SmsConfig,
    /// How many codes may be sent, per number, caller and service.
    pub limits: SendLimits,
    /// Which countries may be texted.
    pub countries: CountryPolicy,
    /// Numbers with a fixed code and no SMS (`OTP_TEST_NUMBERS`).
    pub test_numbers: TestNumbers,
    /// Where pending codes are kept.
    pub store: StoreConfig,
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

impl Config {
    /// The longest one SendOtp can take: every store call at its timeout plus
    /// the whole SMS budget, with a margin. An idempotency claim must outlive
    /// it, or a retry could send a second code while the first is in flight.
    pub fn longest_send(&self) -> Duration {
        const STORE_CALLS_PER_SEND: u32 = 8;
        let store_timeout = match &self.store {
            StoreConfig::Memory => Duration::ZERO,
            StoreConfig::Redis(settings) => settings.timeout,
        };
        let sms_budget = match &self.sms {
            SmsConfig::Console => Duration::from_secs(1),
            SmsConfig::TextBee(textbee) => textbee.send_timeout,
        };
        store_timeout * STORE_CALLS_PER_SEND + sms_budget + Duration::from_secs(5)
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
/// Default Prometheus address: loopback, scraped through the pod's port mapping.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
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

        // Unlike other variables, an explicitly empty value means "off" here.
        let metrics_addr = match env.0.get("OTP_METRICS_ADDR").map(|raw| raw.trim()) {
            Some("" | "off") => None,
            _ => Some(env.parsed("OTP_METRICS_ADDR", DEFAULT_METRICS_ADDR, |raw| {
                raw.parse::<SocketAddr>().map_err(|_| {
                    "must be an IP:port socket address, or empty to turn metrics off".to_owned()
                })
            })?),
        };
        let listen_addr = env.parsed("OTP_LISTEN_ADDR", DEFAULT_LISTEN_ADDR, |raw| {
            raw.parse::<SocketAddr>()
                .map_err(|_| "must be an IP:port socket address, e.g. 127.0.0.1:50051".to_owned())
        })?;
        let health_addr = listeners::health_addr(&env)?;
        let tls = listeners::tls(&env)?;
        let callers = listeners::callers(&env)?;
        let policy = OtpPolicy {
            code_length: env.int_in_range("OTP_CODE_LENGTH", 6, 4, 10)?,
            ttl: Duration::from_secs(env.int_in_range("OTP_TTL_SECONDS", 120, 1, 600)?),
            grace: Duration::from_secs(env.int_in_range("OTP_GRACE_SECONDS", 10, 0, 60)?),
            max_attempts: env.int_in_range("OTP_MAX_ATTEMPTS", 5, 1, 20)?,
        };
        let store = store::store_config(&env)?;
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
            // Replicas sharing a Redis must derive the same keys and digests,
            // so a per-process secret would make every cross-replica verify fail.
            None if matches!(store, StoreConfig::Redis(_)) => {
                return Err(ConfigError::new(
                    "OTP_HMAC_SECRET",
                    "is required with a Redis store (REDIS_URL, REDIS_CLUSTER_URLS or \
                     REDIS_SENTINEL_URLS): every replica must share one secret \
                     (e.g. `openssl rand -hex 32`)",
                ));
            }
            None => (
                HmacSecret::generate(),
                SecretSource::GeneratedForThisProcess,
            ),
        };
        let hmac_previous_secrets = secrets::previous_secrets(&env, env.get("OTP_HMAC_SECRET"))?;
        let log_format = env.parsed("OTP_LOG_FORMAT", "text", |raw| match raw {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be `text` or `json`".to_owned()),
        })?;
        let sms = sms::sms_from_env(&env)?;
        let template = message::template_from_env(&env)?;

        let window = env.int_in_range("OTP_SEND_WINDOW_SECONDS", 600, 1, 86_400)?;
        let global: u32 = env.int_in_range("OTP_GLOBAL_SEND_LIMIT", 0, 0, 100_000)?;
        let limits = SendLimits {
            resend_cooldown: Duration::from_secs(env.int_in_range(
                "OTP_RESEND_COOLDOWN_SECONDS",
                30,
                0,
                3_600,
            )?),
            phone_limit: env.int_in_range("OTP_SEND_LIMIT", 5, 1, 1_000)?,
            window: Duration::from_secs(window),
            phone_daily_limit: env.int_in_range("OTP_DAILY_SEND_LIMIT", 10, 1, 10_000)?,
            client_limit: env.int_in_range("OTP_CLIENT_SEND_LIMIT", 20, 1, 100_000)?,
            global_per_minute: (global > 0).then_some(global),
            caller_limit: env.int_in_range("OTP_CALLER_SEND_LIMIT", 1_000, 1, 1_000_000)?,
        };
        let allowed = env.get("OTP_ALLOWED_COUNTRIES").unwrap_or_default();
        let denied = env.get("OTP_DENIED_COUNTRIES").unwrap_or_default();
        let countries = CountryPolicy::parse(allowed, denied).map_err(|err| {
            let var = if CountryPolicy::parse(allowed, "").is_err() {
                "OTP_ALLOWED_COUNTRIES"
            } else {
                "OTP_DENIED_COUNTRIES"
            };
            ConfigError::new(var, err.to_string())
        })?;
        let test_numbers = TestNumbers::parse(
            env.get("OTP_TEST_NUMBERS").unwrap_or_default(),
            policy.code_length,
        )
        .map_err(|err| ConfigError::new("OTP_TEST_NUMBERS", err.to_string()))?;

        Ok(Self {
            listen_addr,
            health_addr,
            tls,
            callers,
            metrics_addr,
            policy,
            hmac_secret,
            hmac_secret_source,
            hmac_previous_secrets,
            log_format,
            sms,
            limits,
            countries,
            test_numbers,
            store,
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

/// What every configuration test needs: settings from pairs, and the check
/// that a refusal is one line naming the variable.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Config, ConfigError};

    /// Settings from name/value pairs, as the environment would give them.
    pub(crate) fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().copied())
    }

    /// Asserts that `vars` stop startup with one line that names `var` and
    /// says `expected`; returns that line for further checks.
    pub(crate) fn assert_refused(vars: &[(&str, &str)], var: &str, expected: &str) -> String {
        let err = config(vars).expect_err(var);
        assert_eq!(err.var, var, "{vars:?}");
        let line = err.to_string();
        assert!(line.starts_with(var), "{line}");
        assert!(line.contains(expected), "{vars:?}: {line}");
        assert!(!line.contains('\n'), "one line: {line}");
        line
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{assert_refused, config};
    use super::*;

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
        assert_eq!(config.store, StoreConfig::Memory);
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
            ("OTP_REDIS_PREFIX", "otp{x}", "1 to 64 characters"),
            ("OTP_REDIS_POOL_SIZE", "0", "from 1 to 1024"),
            ("OTP_REDIS_TIMEOUT_MS", "5", "from 10 to 60000"),
            ("REDIS_URL", "localhost:6379", "redis://"),
        ];
        for (var, value, expected) in cases {
            assert_refused(&[(var, value)], var, expected);
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
    fn metrics_default_to_loopback_and_empty_turns_them_off() {
        assert_eq!(
            config(&[])
                .expect("valid")
                .metrics_addr
                .map(|a| a.to_string())
                .as_deref(),
            Some(DEFAULT_METRICS_ADDR)
        );
        assert_eq!(
            config(&[("OTP_METRICS_ADDR", "")])
                .expect("valid")
                .metrics_addr,
            None
        );
        let err = config(&[("OTP_METRICS_ADDR", "9464")]).expect_err("no host");
        assert_eq!(err.var, "OTP_METRICS_ADDR");
    }

    #[test]
    fn send_limits_have_safe_defaults() {
        let limits = config(&[]).expect("valid").limits;
        assert_eq!(limits.resend_cooldown, Duration::from_secs(30));
        assert_eq!(limits.phone_limit, 5);
        assert_eq!(limits.window, Duration::from_secs(600));
        assert_eq!(limits.phone_daily_limit, 10);
        assert_eq!(limits.client_limit, 20);
        assert_eq!(limits.global_per_minute, None);
        let on = config(&[("OTP_GLOBAL_SEND_LIMIT", "500")])
            .expect("valid")
            .limits;
        assert_eq!(on.global_per_minute, Some(500));
    }

    #[test]
    fn abuse_settings_are_validated() {
        let cases = [
            ("OTP_ALLOWED_COUNTRIES", "US,USA", "ISO 3166-1"),
            ("OTP_DENIED_COUNTRIES", "9", "ISO 3166-1"),
            ("OTP_TEST_NUMBERS", "+15005550006=12", "exactly 6 digits"),
            ("OTP_TEST_NUMBERS", "15005550006", "form"),
            ("OTP_SEND_LIMIT", "0", "from 1 to 1000"),
            ("OTP_RESEND_COOLDOWN_SECONDS", "3601", "from 0 to 3600"),
        ];
        for (var, value, expected) in cases {
            let err = config(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn empty_values_mean_unset() {
        let config = config(&[("OTP_CODE_LENGTH", ""), ("OTP_LOG_FORMAT", " ")]).expect("valid");
        assert_eq!(config.policy.code_length, 6);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn redis_requires_a_shared_secret() {
        let err = config(&[("REDIS_URL", "redis://cache:6379")]).expect_err("no secret");
        assert_eq!(err.var, "OTP_HMAC_SECRET");
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn every_redis_mode_requires_a_shared_secret() {
        for vars in [
            vec![("REDIS_CLUSTER_URLS", "redis://h:7000")],
            vec![
                ("REDIS_SENTINEL_URLS", "redis://s:26379"),
                ("REDIS_SENTINEL_MASTER", "m"),
            ],
        ] {
            let err = config(&vars).expect_err("no secret");
            assert_eq!(err.var, "OTP_HMAC_SECRET", "{vars:?}");
        }
    }
}
