//! Refuses to run silently on a Redis that may evict live keys. Every key the
//! store writes has a TTL, so under a `volatile-*` or `allkeys-*`
//! `maxmemory-policy` (a common managed-Redis default) memory pressure could
//! remove a wrong-guess counter or a lock early and reset brute-force
//! protection. Such a policy stops startup and, if it appears later, makes
//! `otp.v1.OtpService` NOT_SERVING, logs an error and sets
//! `otp_redis_evicting_policy` — unless the operator accepted it
//! (`OTP_REDIS_ALLOW_EVICTION=true`).
//!
//! A Redis that will not say (`CONFIG GET` forbidden or renamed, as on
//! several managed offerings) is treated like an evicting one: nothing
//! tells a `volatile-lru` default apart from `noeviction` there, so it
//! stops startup (and makes the service NOT_SERVING if it appears later)
//! until the operator, having checked the policy in the provider's console,
//! says so with `OTP_REDIS_ALLOW_EVICTION=true`.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::{
    metrics,
    store::{EvictionPolicy, OtpStore},
};

/// What was last reported, so each change is logged once.
const UNSEEN: u8 = 0;
const SAFE: u8 = 1;
const EVICTING: u8 = 2;
const UNKNOWN: u8 = 3;

/// The policy check, shared by startup and the health checker.
#[derive(Debug, Default)]
pub struct EvictionGuard {
    /// `OTP_REDIS_ALLOW_EVICTION`: the operator accepts an evicting policy.
    allowed: bool,
    last: AtomicU8,
}

impl EvictionGuard {
    /// A guard; `allowed` is the explicit opt-out.
    pub fn new(allowed: bool) -> Self {
        Self {
            allowed,
            last: AtomicU8::new(UNSEEN),
        }
    }

    /// At startup: an error (naming the policy and the opt-out) when the
    /// store is reachable and evicting, or will not say; else the policy
    /// read (`None`: unreachable, left to the health checker, which keeps
    /// asking), for check-config to say what the opt-out accepted.
    pub async fn check_at_startup(
        &self,
        store: &dyn OtpStore,
    ) -> Result<Option<EvictionPolicy>, String> {
        match store.eviction_policy().await {
            Ok(EvictionPolicy::Evicting(policy)) if !self.allowed => {
                self.record(EVICTING, &policy);
                Err(format!(
                    "Redis maxmemory-policy is `{policy}`: it may evict wrong-guess counters and \
                     locks, resetting brute-force protection. Set it to `noeviction`, or accept \
                     the risk with OTP_REDIS_ALLOW_EVICTION=true"
                ))
            }
            Ok(EvictionPolicy::Unknown) if !self.allowed => {
                self.record(UNKNOWN, "");
                Err(
                    "Redis will not tell its maxmemory-policy (CONFIG GET refused or renamed, as \
                     on many managed Redis): an evicting policy could remove wrong-guess counters \
                     and locks. Check in your provider's console that it is `noeviction`, then \
                     start with OTP_REDIS_ALLOW_EVICTION=true"
                        .to_owned(),
                )
            }
            Ok(policy) => {
                self.observe(&policy);
                Ok(Some(policy))
            }
            Err(_) => Ok(None),
        }
    }

    /// Whether the store's policy lets it serve (true when unreachable: the
    /// ping decides that). Logs and sets the metric on each change.
    pub async fn permits_serving(&self, store: &dyn OtpStore) -> bool {
        match store.eviction_policy().await {
            Ok(policy) => self.observe(&policy),
            Err(_) => true,
        }
    }

    fn observe(&self, policy: &EvictionPolicy) -> bool {
        match policy {
            EvictionPolicy::Evicting(name) => {
                self.record(EVICTING, name);
                self.allowed
            }
            EvictionPolicy::Unknown => {
                self.record(UNKNOWN, "");
                self.allowed
            }
            EvictionPolicy::NoEviction => {
                self.record(SAFE, "");
                true
            }
            // The memory store: nothing to report of a Redis policy.
            EvictionPolicy::NotApplicable => {
                metrics::redis_evicting(false);
                true
            }
        }
    }

    fn record(&self, state: u8, policy: &str) {
        metrics::redis_evicting(state == EVICTING);
        if self.last.swap(state, Ordering::Relaxed) == state {
            return;
        }
        match state {
            EVICTING if self.allowed => tracing::warn!(
                policy,
                "Redis may evict live keys (maxmemory-policy); accepted by OTP_REDIS_ALLOW_EVICTION"
            ),
            EVICTING => tracing::error!(
                policy,
                "Redis may evict live keys (maxmemory-policy): wrong-guess counters and locks could \
                 vanish; otp.v1.OtpService is NOT_SERVING until it is `noeviction` \
                 (or OTP_REDIS_ALLOW_EVICTION=true)"
            ),
            UNKNOWN if self.allowed => tracing::warn!(
                "cannot read Redis maxmemory-policy (CONFIG GET refused, as on many managed \
                 Redis); trusted by OTP_REDIS_ALLOW_EVICTION: make sure it is `noeviction`, or \
                 locks and guess counters may be evicted"
            ),
            UNKNOWN => tracing::error!(
                "cannot read Redis maxmemory-policy (CONFIG GET refused, as on many managed \
                 Redis): otp.v1.OtpService is NOT_SERVING until it can be read, or \
                 OTP_REDIS_ALLOW_EVICTION=true says it was checked"
            ),
            _ => tracing::info!("Redis maxmemory-policy does not evict live keys"),
        }
    }
}
