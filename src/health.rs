//! Keeps `grpc.health.v1` in step with the store: `otp.v1.OtpService` is
//! SERVING while the store answers and NOT_SERVING while it does not, so load
//! balancers and readiness probes route around a replica that would only
//! answer UNAVAILABLE. The server-wide name `""` says whether the process
//! itself is up: it stays SERVING through a store outage (until shutdown), so
//! a liveness probe on it does not restart every replica when Redis blips.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{proto::otp_service_server::SERVICE_NAME, store::OtpStore};

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
    pub async fn start(store: Arc<dyn OtpStore>, reporter: HealthReporter) -> Self {
        let mut serving = check(store.as_ref()).await;
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
            loop {
                ticks.tick().await;
                let now_serving = check(store.as_ref()).await;
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
