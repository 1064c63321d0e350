//! `otp-service check-config`: for CI pipelines and a Kubernetes init step.
//! The settings and the files they name were checked while reading them;
//! this builds what the server builds before it binds (SMS routes, TLS),
//! connects to the store once and reports what would be in force.

use std::{fmt::Write as _, time::Duration};

use crate::{
    config::{Config, EffectiveSettings, SecretSource},
    eviction_guard::EvictionGuard,
    server::{
        caller_spend_cap_holding_nobody, check_before_start, countries_in_both,
        open_beyond_loopback, open_store, worst_case,
    },
    store::{EvictionPolicy, StoreConfig},
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
    let store_warning = check_store(config).await?;
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
    for warning in warnings(config).into_iter().chain(store_warning) {
        let _ = writeln!(report, "warning: {warning}");
    }
    let _ = writeln!(report, "configuration OK");
    Ok(report)
}

/// Opens the store, pings it once within its timeout, and refuses a Redis
/// whose eviction policy the server would refuse; `Ok` holds the warning
/// for a policy the operator accepted (`OTP_REDIS_ALLOW_EVICTION`).
async fn check_store(config: &Config) -> Result<Option<String>, String> {
    // Which store and where (passwords masked), on one line: a driver's
    // error may span several.
    let store_named = store_name(&config.store);
    let one_line = |why: String| why.split_whitespace().collect::<Vec<_>>().join(" ");
    let store = open_store(&config.store, config.memory_max_entries)
        .map_err(|err| one_line(format!("store: {store_named}: {err}")))?;
    let timeout = match &config.store {
        StoreConfig::Memory => STORE_CHECK_MARGIN,
        StoreConfig::Redis(settings) => settings.timeout + STORE_CHECK_MARGIN,
    };
    match tokio::time::timeout(timeout, store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            return Err(one_line(format!(
                "store: {store_named} not reachable: {err}"
            )));
        }
        Err(_) => {
            return Err(format!(
                "store: {store_named}: no answer within {timeout:?}"
            ));
        }
    }
    let policy = EvictionGuard::new(config.redis_allow_eviction)
        .check_at_startup(store.as_ref())
        .await
        .map_err(|why| format!("store: {why}"))?;
    // Read once: an evicting or unknown policy that got here was accepted.
    Ok(match policy {
        Some(EvictionPolicy::Evicting(policy)) => Some(format!(
            "Redis maxmemory-policy is `{policy}`, accepted by OTP_REDIS_ALLOW_EVICTION: \
             wrong-guess counters and locks may be evicted"
        )),
        Some(EvictionPolicy::Unknown) => Some(
            "Redis will not tell its maxmemory-policy; trusted by OTP_REDIS_ALLOW_EVICTION"
                .to_owned(),
        ),
        _ => None,
    })
}

/// What the server would warn about at startup (besides the store's
/// eviction policy, read by [`check_store`]).
fn warnings(config: &Config) -> Vec<String> {
    let no_callers = config
        .callers
        .as_ref()
        .is_some_and(|callers| callers.current().is_empty());
    let mut warnings: Vec<String> = [
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
    .filter(|(applies, _)| *applies)
    .map(|(_, warning)| warning.to_owned())
    .collect();
    warnings.extend(
        [
            open_beyond_loopback(config),
            caller_spend_cap_holding_nobody(config),
        ]
        .into_iter()
        .flatten()
        .map(str::to_owned),
    );
    warnings.extend(countries_in_both(config));
    warnings.extend(config.sms.plain_http_endpoints().into_iter().map(|var| {
        format!("{var} is plain http: credentials and codes cross the network unencrypted")
    }));
    let long = config
        .messages
        .multi_segment(config.policy.code_length, config.policy.ttl);
    warnings.extend(long.into_iter().map(|(locale, segments)| {
        format!(
            "the `{locale}` message template takes {} SMS segments; each is billed",
            segments.count
        )
    }));
    warnings
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
