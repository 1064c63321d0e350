//! Keeps `grpc.health.v1` in step with the store: `otp.v1.OtpService` is
//! SERVING while the store answers and NOT_SERVING while it does not, so load
//! balancers and readiness probes route around a replica that would only
//! answer UNAVAILABLE. The server-wide name `""` says whether the process
//! itself is up: it stays SERVING through a store outage (until shutdown), so
//! a liveness probe on it does not restart every replica when Redis blips.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    eviction_guard::EvictionGuard, proto::otp_service_server::SERVICE_NAME, store::OtpStore,
};

/// The eviction policy is asked every this many checks (every 5 s): it
/// changes only by an operator's hand, and CONFIG GET need not run twice a second.
const POLICY_CHECK_EVERY: u32 = 10;

/// How often the store is pinged. Short enough that a probe sees an outage
/// (or the recovery) within about a second; each ping is one cheap round trip.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The background check. Stops on [`StoreHealthCheck::stop`] or when dropped.
pub struct StoreHealthCheck {
    task: JoinHandle<()>,
}

impl StoreHealthCheck {
    /// Pings the store once and publishes the result before returning, so the
    /// server never advertises SERVING on a store it has not reached; then
    /// keeps checking every [`CHECK_INTERVAL`]. A store that is down at boot
    /// is simply NOT_SERVING until it answers.
    /// An evicting store is NOT_SERVING too (see [`EvictionGuard`]).
    pub async fn start(
        store: Arc<dyn OtpStore>,
        reporter: HealthReporter,
        eviction: Arc<EvictionGuard>,
    ) -> Self {
        let mut policy_ok = eviction.permits_serving(store.as_ref()).await;
        let mut serving = check(store.as_ref()).await && policy_ok;
        publish(&reporter, serving).await;
        if !serving {
            tracing::warn!("store unreachable at startup: NOT_SERVING until it answers");
        }
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECK_INTERVAL);
            // After a slow (timed-out) ping, carry on at the normal pace
            // instead of firing the missed ticks back to back.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            let mut checks: u32 = 0;
            loop {
                ticks.tick().await;
                checks = checks.wrapping_add(1);
                if checks.is_multiple_of(POLICY_CHECK_EVERY) {
                    policy_ok = eviction.permits_serving(store.as_ref()).await;
                }
                let now_serving = check(store.as_ref()).await && policy_ok;
                if now_serving != serving {
                    serving = now_serving;
                    publish(&reporter, serving).await;
                    if serving {
                        tracing::info!("store reachable again: SERVING");
                    } else {
                        tracing::warn!("store unreachable: NOT_SERVING");
                    }
                }
            }
        });
        Self { task }
    }

    /// Stops checking and waits until the task has ended, so nothing it does
    /// can overwrite a status set afterwards (e.g. NOT_SERVING on shutdown).
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for StoreHealthCheck {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn check(store: &dyn OtpStore) -> bool {
    match store.ping().await {
        Ok(()) => true,
        Err(err) => {
            tracing::debug!(error = %err, "store health check failed");
            false
        }
    }
}

async fn publish(reporter: &HealthReporter, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    crate::metrics::store_up(serving);
    reporter.set_service_status(SERVICE_NAME, status).await;
}
