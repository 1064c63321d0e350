//! Builds the gRPC server from settings: the OTP service, the admin service,
//! health, reflection, graceful shutdown. Tests start it on port 0 exactly as `main` does.

mod open;
mod startup_log;
mod trust_boundary;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use thiserror::Error;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

use crate::{
    admin::AdminGrpcService,
    auth::{self, Authenticator, TlsIncoming},
    config::Config,
    domain::{HmacKeys, PhoneNumber},
    events::{EventSink, EventWriter},
    eviction_guard::EvictionGuard,
    health::StoreHealthCheck,
    health_listener::HealthListener,
    otp::{AbuseRules, OtpFlow},
    proto::{
        FILE_DESCRIPTOR_SET,
        admin::otp_admin_service_server::OtpAdminServiceServer,
        otp_service_server::{OtpServiceServer, SERVICE_NAME},
    },
    service::{OtpGrpcService, counters_at_zero},
    sms::{SmsGateway, SmsSetupError},
    store::{OtpStore, StoreError},
};

pub use open::open_store;
use open::{open_gateway, open_store_with_events};
pub(crate) use startup_log::{caller_spend_cap_holding_nobody, countries_in_both, worst_case};
use startup_log::{log_caps_in_force, warn_about_development_settings};
pub(crate) use trust_boundary::open_beyond_loopback;
use trust_boundary::trust_boundary;

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum StartupError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} ({var}): {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The setting that asked for it.
        var: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The store could not be set up (not: is unreachable, which only makes
    /// the service NOT_SERVING until it answers).
    #[error("cannot set up the store: {0}")]
    Store(#[from] StoreError),
    /// The SMS providers could not be set up (their HTTP client, a header).
    #[error(transparent)]
    SmsGateway(#[from] SmsSetupError),
    /// Reflection descriptors could not be loaded (a build defect).
    #[error("cannot build reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// Redis may evict live keys and the operator has not accepted that.
    #[error("refusing to start: {0}")]
    EvictingStore(String),
    /// The TLS certificate, key or client CA could not be loaded.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The transport failed while serving.
    #[error("server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// What [`Application::build`] checks before it binds, without binding or
/// serving (`otp-service check-config`): the SMS routes build, and the TLS
/// certificate, key and client CA load.
pub fn check_before_start(config: &Config) -> Result<(), StartupError> {
    open_gateway(&config.sms)?;
    trust_boundary(config)?;
    Ok(())
}

/// How long shutdown waits for queued audit events to be written.
const EVENTS_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// A bound, ready-to-run OTP server.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The health-only listener (`OTP_HEALTH_ADDR`) and its bound address.
    health_listener: Option<(TcpListener, SocketAddr)>,
    /// Who may call the OTP API (and, of those, the admin API).
    auth: Authenticator,
    /// TLS on the gRPC listener; `None`: plaintext.
    tls: Option<auth::ServerTls>,
    flow: Arc<OtpFlow>,
    store: Arc<dyn OtpStore>,
    /// Whether the store's eviction policy lets it serve.
    eviction: Arc<EvictionGuard>,
    health: HealthReporter,
    /// Writes audit events off the request path (`OTP_EVENTS_STREAM`).
    events: Option<EventWriter>,
}

impl Application {
    /// Builds the server with the SMS routes the configuration selects.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let gateway = open_gateway(&config.sms)?;
        Self::build_with_gateway(config, gateway).await
    }

    /// Builds the server around a given SMS gateway (tests pass one that records).
    pub async fn build_with_gateway(
        config: Config,
        gateway: Arc<dyn SmsGateway>,
    ) -> Result<Self, StartupError> {
        log_caps_in_force(&config);
        warn_about_development_settings(&config);
        counters_at_zero();
        preload_numbering_plan();
        // Events digest the number with the secret that names records, so
        // a number's digest stays put across rotations as its records do.
        let keys = HmacKeys::new(
            config.hmac_secret.clone(),
            config.hmac_previous_secrets.clone(),
        );
        let events_config = config.events.as_ref().map(|events| (events, keys.clone()));
        let (store, events) =
            open_store_with_events(&config.store, config.memory_max_entries, events_config)?;
        let sink = events
            .as_ref()
            .map_or_else(EventSink::disabled, EventWriter::sink);
        let eviction = eviction_guard_checked(&config, store.as_ref()).await?;
        let (tls, auth) = trust_boundary(&config)?;
        let abuse = abuse_rules(&config);
        let mut flow = OtpFlow::new(
            config.policy,
            abuse,
            keys,
            config.messages,
            Arc::clone(&store),
            gateway,
        )
        .with_events(sink);
        if let Some(spend) = config.spend {
            flow = flow.with_spend(spend, config.sms.all_routes());
        }
        let flow = Arc::new(flow);
        // Health first: a client polling the API's port (a probe, a script
        // waiting for SERVING) connects from an ephemeral port, which could
        // be the health port if it were still unbound.
        let health_listener = match config.health_addr {
            Some(addr) => Some(bind(addr, "OTP_HEALTH_ADDR").await?),
            None => None,
        };
        let (listener, local_addr) = bind(config.listen_addr, "OTP_LISTEN_ADDR").await?;
        let (health, _) = tonic_health::server::health_reporter();
        Ok(Self {
            listener,
            local_addr,
            health_listener,
            tls,
            auth,
            flow,
            store,
            eviction,
            health,
            events,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the health-only listener, when `OTP_HEALTH_ADDR` is set.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// The OTP flow this server runs (shared with the gRPC service).
    pub fn flow(&self) -> Arc<OtpFlow> {
        Arc::clone(&self.flow)
    }

    /// Serves until `shutdown` completes, then stops accepting connections,
    /// lets in-flight calls finish, and returns. Health follows the store
    /// throughout (see [`StoreHealthCheck`]) and is NOT_SERVING while draining.
    pub async fn run_until<F>(self, shutdown: F) -> Result<(), StartupError>
    where
        F: Future<Output = ()> + Send,
    {
        let health = self.health;
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health.clone()),
        );
        // The process is up (liveness); whether it can serve OTPs (readiness)
        // comes from a real ping of the store, not a guess.
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let store_health = StoreHealthCheck::start(self.store, health.clone(), self.eviction).await;
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let health_only = self.health_listener.map(|(listener, addr)| {
            tracing::info!(addr = %addr, "health listening (grpc.health.v1 only)");
            HealthListener::serve(listener, health.clone())
        });
        tracing::info!(addr = %self.local_addr, "otp-service listening");
        let shutdown = drain_on(shutdown, store_health, health);
        let admin = AdminGrpcService::new(Arc::clone(&self.flow), self.auth.clone());
        let router = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(OtpServiceServer::new(OtpGrpcService::new(
                self.flow, self.auth,
            )))
            .add_service(OtpAdminServiceServer::new(admin));
        match self.tls {
            Some(tls) => {
                router
                    .serve_with_incoming_shutdown(TlsIncoming::new(self.listener, tls), shutdown)
                    .await?
            }
            None => {
                router
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                        shutdown,
                    )
                    .await?
            }
        }
        // Health answers (NOT_SERVING) until the API has drained, then stops.
        if let Some(health_only) = health_only {
            health_only.stop().await;
        }
        if let Some(events) = self.events {
            events.finish(EVENTS_FLUSH_WAIT).await;
        }
        tracing::info!("otp-service stopped");
        Ok(())
    }
}

/// phonenumber loads its numbering-plan database on first use (~0.1 s in
/// release, ~0.5 s in debug). Load it in the background, off the async
/// workers, so start-up (and health SERVING) does not wait for it and the
/// first request rarely does.
fn preload_numbering_plan() {
    drop(tokio::task::spawn_blocking(|| {
        drop(PhoneNumber::parse("+14155550123"))
    }));
}

/// The abuse rules the flow applies, from the settings.
fn abuse_rules(config: &Config) -> AbuseRules {
    AbuseRules {
        limits: config.limits,
        verify_limits: config.verify_limits,
        countries: config.countries.clone(),
        test_numbers: config.test_numbers.clone(),
        pumping_guard: config.pumping_guard,
        idempotency_claim_ttl: config.longest_send(),
    }
}

/// The eviction guard, after refusing to start on a store whose
/// `maxmemory-policy` may evict locks and guess counters (unless allowed).
async fn eviction_guard_checked(
    config: &Config,
    store: &dyn OtpStore,
) -> Result<Arc<EvictionGuard>, StartupError> {
    let eviction = Arc::new(EvictionGuard::new(config.redis_allow_eviction));
    eviction
        .check_at_startup(store)
        .await
        .map_err(StartupError::EvictingStore)?;
    Ok(eviction)
}

async fn bind(
    addr: SocketAddr,
    var: &'static str,
) -> Result<(TcpListener, SocketAddr), StartupError> {
    let bind_error = |source| StartupError::Bind { addr, var, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// The reflection services' descriptors, listed once for v1 and v1alpha.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so reflection clients (grpcurl) can
        // decode RetryInfo, BadRequest, QuotaFailure and ErrorInfo.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Waits for `shutdown`, then reports NOT_SERVING for the process and the
/// OTP service, so load balancers stop routing here while calls drain.
async fn drain_on(
    shutdown: impl Future<Output = ()>,
    store_health: StoreHealthCheck,
    health: HealthReporter,
) {
    shutdown.await;
    tracing::info!("shutdown requested: draining in-flight calls");
    // Stopped first, so it cannot flip the status back to SERVING.
    store_health.stop().await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    health
        .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::NotServing)
        .await;
}
