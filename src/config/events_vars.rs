//! Audit events: `OTP_EVENTS_STREAM`, `OTP_EVENTS_MAXLEN`,
//! `OTP_EVENTS_MAX_AGE_SECONDS`, `OTP_REPLICA_ID`.

use std::time::Duration;

use clap::{Args, value_parser};

use super::ConfigError;
use crate::{
    events::{EventsConfig, stream_key},
    store::StoreConfig,
};

/// Default `OTP_EVENTS_MAXLEN`: about a day of a busy service's decisions.
pub const DEFAULT_EVENTS_MAXLEN: u64 = 1_000_000;

/// Default `OTP_EVENTS_MAX_AGE_SECONDS`: a day. Long enough for a consumer
/// that was down overnight to catch up, short enough that a flood of
/// events (which `OTP_EVENTS_MAXLEN` alone would let reach ~200 MB) cannot
/// keep filling a `noeviction` Redis for longer than that.
pub const DEFAULT_EVENTS_MAX_AGE_SECONDS: u64 = 86_400;

/// Audit events to a Redis Stream.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Audit events")]
pub struct EventsVars {
    /// The stream audit events are appended to, under OTP_REDIS_PREFIX; needs Redis
    /// (unset: no events)
    #[arg(long, env = "OTP_EVENTS_STREAM")]
    pub events_stream: Option<String>,
    /// About how many events the stream keeps (XADD MAXLEN ~) [1000-100000000]
    #[arg(long, env = "OTP_EVENTS_MAXLEN", default_value_t = DEFAULT_EVENTS_MAXLEN,
          value_parser = value_parser!(u64).range(1_000..=100_000_000))]
    pub events_maxlen: u64,
    /// Events older than this many seconds are trimmed [1-2592000]
    #[arg(long, env = "OTP_EVENTS_MAX_AGE_SECONDS", default_value_t = DEFAULT_EVENTS_MAX_AGE_SECONDS,
          value_parser = value_parser!(u64).range(1..=2_592_000))]
    pub events_max_age_seconds: u64,
    /// The `replica` field of each event (unset: HOSTNAME, else the kernel host name)
    #[arg(long, env = "OTP_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// The host name, the replica id's fallback
    #[arg(long, env = "HOSTNAME", hide = true)]
    pub hostname: Option<String>,
}

/// Where audit events go; `None` when `OTP_EVENTS_STREAM` is unset. Events
/// need Redis: the stream lives beside the store.
pub(super) fn events_config(
    vars: &EventsVars,
    store: &StoreConfig,
) -> Result<Option<EventsConfig>, ConfigError> {
    let Some(stream) = vars.events_stream.as_deref() else {
        return Ok(None);
    };
    let StoreConfig::Redis(redis) = store else {
        return Err(ConfigError::new(
            "OTP_EVENTS_STREAM",
            "needs a Redis store (REDIS_URL, REDIS_CLUSTER_URLS or REDIS_SENTINEL_URLS)",
        ));
    };
    if stream.len() > 200 || stream.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            "OTP_EVENTS_STREAM",
            "must be a Redis key of at most 200 characters without spaces",
        ));
    }
    let maxlen = vars.events_maxlen;
    let max_age = vars.events_max_age_seconds;
    let replica = match vars.replica_id.as_deref() {
        Some(id) if id.len() <= 128 => id.to_owned(),
        Some(_) => {
            return Err(ConfigError::new(
                "OTP_REPLICA_ID",
                "must be at most 128 characters",
            ));
        }
        None => host_name(vars),
    };
    Ok(Some(EventsConfig {
        stream: stream_key(&redis.prefix, stream),
        maxlen,
        max_age: Duration::from_secs(max_age),
        replica,
    }))
}

/// The host name: `HOSTNAME` (set by container runtimes, the pod name on
/// Kubernetes), else the kernel's, else `unknown`.
fn host_name(vars: &EventsVars) -> String {
    vars.hostname
        .clone()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_refused, config};
    use super::*;

    const REDIS: [(&str, &str); 3] = [
        ("REDIS_URL", "redis://cache:6379"),
        ("OTP_HMAC_SECRET", "0123456789abcdef0123456789abcdef"),
        ("OTP_SMS_GATEWAY", "console"),
    ];

    #[test]
    fn events_are_off_by_default_and_need_redis() {
        assert_eq!(config(&REDIS).expect("valid").events, None);
        assert_refused(
            &[("OTP_EVENTS_STREAM", "events")],
            "OTP_EVENTS_STREAM",
            "Redis",
        );
    }

    #[test]
    fn events_take_the_stream_maxlen_and_replica() {
        let mut vars = REDIS.to_vec();
        vars.extend([
            ("OTP_EVENTS_STREAM", "events"),
            ("OTP_EVENTS_MAXLEN", "5000"),
            ("OTP_REPLICA_ID", "otp-7f9c"),
        ]);
        let events = config(&vars).expect("valid").events.expect("on");
        assert_eq!(events.stream, "otp:events", "under the default prefix");
        assert_eq!(events.maxlen, 5000);
        assert_eq!(
            events.max_age,
            Duration::from_secs(DEFAULT_EVENTS_MAX_AGE_SECONDS)
        );
        assert_eq!(events.replica, "otp-7f9c");
        vars.retain(|(var, _)| *var != "OTP_REPLICA_ID" && *var != "OTP_EVENTS_MAXLEN");
        vars.push(("HOSTNAME", "pod-1"));
        vars.push(("OTP_REDIS_PREFIX", "tenant7"));
        let events = config(&vars).expect("valid").events.expect("on");
        assert_eq!(
            (events.replica.as_str(), events.maxlen),
            ("pod-1", DEFAULT_EVENTS_MAXLEN)
        );
        assert_eq!(events.stream, "tenant7:events", "under OTP_REDIS_PREFIX");
    }

    #[test]
    fn bad_events_settings_name_the_variable() {
        let mut vars = REDIS.to_vec();
        vars.extend([("OTP_EVENTS_STREAM", "events"), ("OTP_EVENTS_MAXLEN", "10")]);
        assert_refused(&vars, "OTP_EVENTS_MAXLEN", "from 1000");
        let mut vars = REDIS.to_vec();
        vars.extend([
            ("OTP_EVENTS_STREAM", "events"),
            ("OTP_EVENTS_MAX_AGE_SECONDS", "0"),
        ]);
        assert_refused(&vars, "OTP_EVENTS_MAX_AGE_SECONDS", "from 1 to 2592000");
        let mut vars = REDIS.to_vec();
        vars.push(("OTP_EVENTS_STREAM", "otp events"));
        assert_refused(&vars, "OTP_EVENTS_STREAM", "without spaces");
    }
}
