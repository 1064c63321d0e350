//! Every setting the service takes: a flag and its environment variable,
//! parsed by clap (numbers, ranges, choices, addresses), then validated and
//! assembled here, once, at startup. Nothing else in the crate reads env vars.
//!
//! The settings types live beside what they configure (`OtpPolicy` in `otp`,
//! `SmsConfig` in `sms`, `StoreConfig` in `store`, ...); this module only
//! declares the flags, one `*_vars` file per group (its clap `Args` struct and
//! the checks clap cannot say), and assembles [`Config`].

mod abuse_vars;
mod channel_vars;
mod code_vars;
mod cross_checks;
mod effective;
mod env;
mod events_vars;
mod gateway_vars;
mod listen_vars;
mod message_vars;
mod otel_vars;
mod provider_vars;
mod pumping_vars;
mod redis_vars;
mod secret_vars;
mod spend_vars;
mod textbee_vars;
mod trust_vars;
mod twilio_channel_vars;
mod twilio_vars;
mod whatsapp_vars;

use std::{net::SocketAddr, sync::Arc, time::Duration};

pub use abuse_vars::DEFAULT_GLOBAL_SEND_LIMIT;
pub use code_vars::MIN_SECRET_BYTES;
pub use cross_checks::MAX_DAILY_GUESS_ODDS;
pub use effective::EffectiveSettings;
pub use env::{ConfigError, Stop};
pub(crate) use env::{Vars, parse, settings_everywhere};
pub use events_vars::{DEFAULT_EVENTS_MAX_AGE_SECONDS, DEFAULT_EVENTS_MAXLEN};
pub use listen_vars::{DEFAULT_LISTEN_ADDR, DEFAULT_METRICS_ADDR};
pub use message_vars::{DEFAULT_APP_NAME, MAX_APP_NAME_CHARS};
pub use redis_vars::{DEFAULT_REDIS_PREFIX, REDIS_SELECTORS};

use abuse_vars::AbuseVars;
use channel_vars::ChannelVars;
use clap::{Args, FromArgMatches};
use code_vars::CodeVars;
use events_vars::EventsVars;
use gateway_vars::SmsVars;
use listen_vars::ListenVars;
use message_vars::MessageVars;
use otel_vars::OtelVars;
use pumping_vars::PumpingVars;
use redis_vars::RedisVars;
use spend_vars::SpendVars;
use trust_vars::TrustVars;

use crate::{
    abuse::{CountryPolicy, PumpingGuardSettings, SendLimits, TestNumbers, VerifyLimits},
    auth::{CallersFile, TlsSettings},
    domain::HmacSecret,
    events::EventsConfig,
    otp::OtpPolicy,
    sms::{MessageTemplates, SmsConfig},
    spend::SpendSettings,
    store::StoreConfig,
    telemetry::{LogFormat, TraceExport},
};

/// Every setting as given (a flag or its variable, else the default), before
/// the checks that need more than one value; `otp-service --help` lists them.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    listen: ListenVars,
    #[command(flatten)]
    code: CodeVars,
    #[command(flatten)]
    trust: TrustVars,
    #[command(flatten)]
    redis: RedisVars,
    #[command(flatten)]
    abuse: AbuseVars,
    #[command(flatten)]
    pumping: PumpingVars,
    #[command(flatten)]
    sms: SmsVars,
    #[command(flatten)]
    channels: ChannelVars,
    #[command(flatten)]
    message: MessageVars,
    #[command(flatten)]
    spend: SpendVars,
    #[command(flatten)]
    otel: OtelVars,
    #[command(flatten)]
    events: EventsVars,
}

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
    /// certificate SANs, re-read when the file changes. `None`: no bearer
    /// tokens (mTLS alone, or anonymous).
    pub callers: Option<Arc<CallersFile>>,
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
    /// Run on a Redis whose `maxmemory-policy` may evict live keys
    /// (`OTP_REDIS_ALLOW_EVICTION`); by default such a Redis stops startup
    /// and makes the service NOT_SERVING.
    pub redis_allow_eviction: bool,
    /// Most entries per in-memory table (`OTP_MEMORY_MAX_ENTRIES`); beyond
    /// it, SendOtp is refused with RESOURCE_EXHAUSTED.
    pub memory_max_entries: usize,
    /// Whether `hmac_secret` came from the environment or was generated for this process.
    pub hmac_secret_source: SecretSource,
    /// Log output format (`OTP_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Which providers send the codes, per channel and country, and the
    /// fallback between channels.
    pub sms: SmsConfig,
    /// How many codes may be sent, per number, caller and service.
    pub limits: SendLimits,
    /// How many codes may be checked, per `client_key`, anonymous callers
    /// and caller, across every number (`OTP_*VERIFY*`).
    pub verify_limits: VerifyLimits,
    /// Which countries may be texted.
    pub countries: CountryPolicy,
    /// Numbers with a fixed code and no SMS (`OTP_TEST_NUMBERS`).
    pub test_numbers: TestNumbers,
    /// The SMS-pumping guard per destination prefix (`OTP_PUMPING_*`).
    pub pumping_guard: PumpingGuardSettings,
    /// Where pending codes are kept.
    pub store: StoreConfig,
    /// The text a code is sent in, per locale (`OTP_MESSAGE_TEMPLATE`,
    /// `OTP_MESSAGE_TEMPLATES_FILE`, `OTP_APP_NAME`, `OTP_WEBOTP_DOMAIN`,
    /// `OTP_ANDROID_APP_HASH`).
    pub messages: MessageTemplates,
    /// Prices and spend caps (`OTP_PRICES_FILE`, `OTP_*SPEND_LIMIT*`);
    /// `None`: no prices file, spend is neither estimated nor capped.
    pub spend: Option<SpendSettings>,
    /// Whether spans are exported over OTLP (the standard `OTEL_*` variables).
    pub traces: TraceExport,
    /// Where audit events go (`OTP_EVENTS_STREAM`); `None`: off.
    pub events: Option<EventsConfig>,
}

/// Where the HMAC secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// Set by the operator in `OTP_HMAC_SECRET`.
    Environment,
    /// Random for this process only: codes do not survive a restart and cannot be shared by replicas.
    GeneratedForThisProcess,
}

impl Config {
    /// Whether callers are ever authenticated: a callers file, or client
    /// certificates checked against a CA (mTLS).
    pub fn authenticates_callers(&self) -> bool {
        self.callers.is_some()
            || self
                .tls
                .as_ref()
                .is_some_and(|tls| tls.client_ca_file.is_some())
    }

    /// Reads the process environment alone (no flags): what a program that
    /// embeds the server, such as the benchmark's, takes.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Vars::Process)
    }

    /// Reads settings from name/value pairs, exactly as if they were the
    /// environment and nothing else were set (tests use this to configure a
    /// server like an operator would).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let pairs = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::read(Vars::Only(pairs))
    }

    /// The settings from `vars` alone.
    fn read(vars: Vars) -> Result<Self, ConfigError> {
        let command = Settings::augment_args(clap::Command::new("otp-service"));
        let parsed = match parse(command, vec!["otp-service".into()], vars) {
            Ok(parsed) => parsed,
            Err(Stop::Config(err)) => return Err(err),
            // With no flags only a value can be refused.
            Err(Stop::Display(text) | Stop::Usage(text)) => {
                return Err(ConfigError::new("(environment)", text.trim()));
            }
        };
        let settings = Settings::from_arg_matches(&parsed.matches)
            .map_err(|err| ConfigError::new("(environment)", err.to_string().trim()))?;
        Self::from_settings(&settings)
    }

    /// Checks what clap could not (files, secrets, values that depend on
    /// each other) and assembles the settings. The first refusal, in the
    /// order checked here, is the one reported.
    pub fn from_settings(vars: &Settings) -> Result<Self, ConfigError> {
        let policy = code_vars::otp_policy(&vars.code);
        let tls = trust_vars::tls(&vars.trust)?;
        let callers = trust_vars::callers(&vars.trust)?;
        let store = redis_vars::store_config(&vars.redis)?;
        let (hmac_secret, hmac_secret_source) = code_vars::hmac_secret(&vars.code, &store)?;
        let hmac_previous_secrets = secret_vars::previous_secrets(
            vars.code.hmac_previous_secrets.as_deref(),
            vars.code.hmac_secret.as_deref(),
        )?;
        let mut sms = gateway_vars::sms_from_env(&vars.sms)?;
        channel_vars::channels_from_env(&vars.channels, &vars.sms.twilio, &mut sms)?;
        if !sms.channel_routes.is_empty() {
            // Channels fall through on an open circuit: the breakers are on.
            sms.breaker = gateway_vars::breaker_settings(&vars.sms);
        }
        // After the channels: every channel's routed providers need prices.
        let spend = spend_vars::spend_settings(&vars.spend, &mut sms)?;
        let channel_templates = channel_vars::channel_templates(&vars.channels, &sms)?;
        let messages = message_vars::templates_from_env(&vars.message, channel_templates)?;
        let limits = abuse_vars::send_limits(&vars.abuse);
        let verify_limits = abuse_vars::verify_limits(&vars.abuse, &limits);
        let countries = abuse_vars::country_policy(&vars.abuse)?;
        let test_numbers = abuse_vars::test_numbers(&vars.abuse, policy.code_length)?;
        let traces = otel_vars::trace_export(&vars.otel)?;
        let events = events_vars::events_config(&vars.events, &store)?;
        let pumping_guard = pumping_vars::pumping_guard_from_env(&vars.pumping, &policy)?;
        cross_checks::refuse_unsafe_combinations(
            &vars.sms,
            vars.abuse.caller_send_limit.is_some(),
            &policy,
            &limits,
            &store,
            &sms,
        )?;
        Ok(Self {
            listen_addr: vars.listen.listen_addr,
            health_addr: vars.trust.health_addr,
            tls,
            callers,
            metrics_addr: vars.listen.metrics_addr.0,
            policy,
            hmac_secret,
            hmac_secret_source,
            hmac_previous_secrets,
            redis_allow_eviction: vars.redis.redis_allow_eviction,
            memory_max_entries: vars.trust.memory_max_entries,
            log_format: listen_vars::log_format(&vars.listen),
            sms,
            limits,
            verify_limits,
            countries,
            test_numbers,
            pumping_guard,
            store,
            messages,
            spend,
            traces,
            events,
        })
    }

    /// The longest one SendOtp can take: every store call at its timeout plus
    /// the whole SMS budget, with a margin. An idempotency claim must outlive
    /// it, or a retry could send a second code while the first is in flight.
    pub fn longest_send(&self) -> Duration {
        const STORE_CALLS_PER_SEND: u32 = 8;
        // With a spend cap: its reservation, and the give-back once sent.
        const SPEND_CALLS_PER_SEND: u32 = 2;
        let store_timeout = match &self.store {
            StoreConfig::Memory => Duration::ZERO,
            StoreConfig::Redis(settings) => settings.timeout,
        };
        let capped = self.spend.as_ref().is_some_and(|spend| spend.caps.any());
        let calls = STORE_CALLS_PER_SEND + if capped { SPEND_CALLS_PER_SEND } else { 0 };
        store_timeout * calls + self.sms.sending.send_timeout + Duration::from_secs(5)
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
mod tests;
