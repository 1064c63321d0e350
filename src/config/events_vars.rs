//! Audit events: `OTP_EVENTS_STREAM`, `OTP_EVENTS_MAXLEN`,
//! `OTP_EVENTS_MAX_AGE_SECONDS`, `OTP_REPLICA_ID`.

use std::time::Duration;

use super::{ConfigError, Env};
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

/// Where audit events go; `None` when `OTP_EVENTS_STREAM` is unset. Events
/// need Redis: the stream lives beside the store.
pub(super) fn events_config(
    env: &Env,
    store: &StoreConfig,
) -> Result<Option<EventsConfig>, ConfigError> {
    let Some(stream) = env.get("OTP_EVENTS_STREAM") else {
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
    let maxlen = env.int_in_range(
        "OTP_EVENTS_MAXLEN",
        DEFAULT_EVENTS_MAXLEN,
        1_000,
        100_000_000,
    )?;
    let max_age = env.int_in_range(
        "OTP_EVENTS_MAX_AGE_SECONDS",
        DEFAULT_EVENTS_MAX_AGE_SECONDS,
        1,
        2_592_000,
    )?;
    let replica = match env.get("OTP_REPLICA_ID") {
        Some(id) if id.len() <= 128 => id.to_owned(),
        Some(_) => {
            return Err(ConfigError::new(
                "OTP_REPLICA_ID",
                "must be at most 128 characters",
            ));
        }
        None => host_name(env),
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
fn host_name(env: &Env) -> String {
    env.get("HOSTNAME")
        .map(str::to_owned)
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
