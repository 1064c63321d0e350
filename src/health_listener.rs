//! The health-only listener (`OTP_HEALTH_ADDR`): `grpc.health.v1` and nothing
//! else, in plaintext. Kubelet gRPC probes dial the pod IP and speak neither
//! TLS nor our caller authentication, so this lets the API itself stay on
//! loopback (or behind mTLS) while probes still reach health.

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::server::TcpIncoming;
use tonic_health::server::{HealthReporter, HealthService};

/// A running health-only server. It reports what the one [`HealthReporter`]
/// of the process says, so it goes NOT_SERVING while the API drains.
pub struct HealthListener {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl HealthListener {
    /// Serves health on `listener` until [`HealthListener::stop`].
    pub fn serve(listener: TcpListener, reporter: HealthReporter) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let service = tonic_health::pb::health_server::HealthServer::new(
            HealthService::from_health_reporter(reporter),
        );
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "health listener failed");
            }
        });
        Self { stop, task }
    }

    /// Stops accepting probes and waits until the server has ended.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
