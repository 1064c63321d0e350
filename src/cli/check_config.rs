//! `otp-service check-config`: for CI pipelines and a Kubernetes init step.
//! The settings and the files they name were checked while reading them;
//! this builds what the server builds before it binds (SMS routes, TLS),
//! connects to the store once and reports what would be in force.

use std::{fmt::Write as _, time::Duration};

use crate::{
    config::{Config, EffectiveSettings, SecretSource},
    eviction_guard::EvictionGuard,
    server::{check_before_start, open_store, worst_case},
    store::StoreConfig,
};

/// How long the one store check may take, on top of the store's own timeout.
const STORE_CHECK_MARGIN: Duration = Duration::from_secs(1);

/// Connects to the store once (and checks its eviction policy); `Ok` holds
/// the report to print, `Err` the one line saying why the configuration
/// would not serve.
pub async fn check_config(
    config: &Config,
    effective: &EffectiveSettings,
) -> Result<String, String> {
    check_before_start(config).map_err(|err| err.to_string())?;
    check_store(config).await?;
    let mut report = String::new();
    let _ = writeln!(report, "settings in force:");
    let _ = write!(report, "{effective}");
    let _ = writeln!(
        report,
        "caps in force: send limits {}; verify limits {}; max attempts {}; code length {}; \
         pumping guard {}; countries {}",
        config.limits,
        config.verify_limits,
        config.policy.max_attempts,
        config.policy.code_length,
        config.pumping_guard,
        config.countries,
    );
    if let (Some(spend), Some(worst)) = (&config.spend, worst_case(config)) {
        let cap = |limit: Option<crate::spend::Micros>| {
            limit.map_or_else(|| "off".to_owned(), |limit| limit.to_string())
        };
        let _ = writeln!(
            report,
            "spend caps in force ({}): per hour {}, per day {}, per caller per day {}; worst case {worst}",
            spend.prices.currency(),
            cap(spend.caps.per_hour),
            cap(spend.caps.per_day),
            cap(spend.caps.caller_per_day),
        );
    }
    let _ = writeln!(report, "store: {}", store_name(&config.store));
    for warning in development_settings(config) {
        let _ = writeln!(report, "warning: {warning}");
    }
    let _ = writeln!(report, "configuration OK");
    Ok(report)
}

/// Opens the store, pings it once within its timeout, and refuses a Redis
/// whose eviction policy the server would refuse.
async fn check_store(config: &Config) -> Result<(), String> {
    let store = open_store(&config.store, config.memory_max_entries)
        .map_err(|err| format!("store: {err}"))?;
    let timeout = match &config.store {
        StoreConfig::Memory => STORE_CHECK_MARGIN,
        StoreConfig::Redis(settings) => settings.timeout + STORE_CHECK_MARGIN,
    };
    match tokio::time::timeout(timeout, store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(format!("store: not reachable: {err}")),
        Err(_) => return Err(format!("store: no answer within {timeout:?}")),
    }
    EvictionGuard::new(config.redis_allow_eviction)
        .check_at_startup(store.as_ref())
        .await
        .map_err(|why| format!("store: {why}"))
}

/// Settings that start, but that the server warns about at startup.
fn development_settings(config: &Config) -> Vec<&'static str> {
    let no_callers = config
        .callers
        .as_ref()
        .is_some_and(|callers| callers.current().is_empty());
    [
        (
            no_callers,
            "OTP_CALLERS_FILE lists no caller: every call is refused",
        ),
        (
            config.hmac_secret_source == SecretSource::GeneratedForThisProcess,
            "OTP_HMAC_SECRET is not set: a random secret for this process only",
        ),
        (
            config.sms.prints_to_console(),
            "the console gateway prints codes and full numbers to stdout",
        ),
        (
            config.limits.global_per_minute.is_none(),
            "OTP_GLOBAL_SEND_LIMIT=0: no service-wide send cap",
        ),
        (
            config.verify_limits.global_per_minute.is_none(),
            "OTP_GLOBAL_VERIFY_LIMIT=0: no service-wide verify cap",
        ),
        (
            !config.test_numbers.is_empty(),
            "OTP_TEST_NUMBERS is set: these numbers get fixed codes and no SMS",
        ),
    ]
    .into_iter()
    .filter_map(|(applies, warning)| applies.then_some(warning))
    .collect()
}

/// The store, passwords masked.
fn store_name(store: &StoreConfig) -> String {
    match store {
        StoreConfig::Memory => "in memory".to_owned(),
        StoreConfig::Redis(settings) => {
            format!("Redis {} (prefix {})", settings.topology, settings.prefix)
        }
    }
}
