//! The one test harness: starts the real server in-process on 127.0.0.1:0
//! with a recording SMS gateway (or the gateway its settings select; for
//! Redis, a private redis-server too, or the test binary's shared Redis
//! Cluster or Sentinel set-up), and hands out real tonic clients.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod binary;
pub mod concurrent;
pub mod failover;
pub mod recording_gateway;
pub mod redis_cluster;
pub mod redis_nodes;
pub mod redis_sentinel;
pub mod redis_server;
pub mod tls;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use otp_service::{
    Application, Config,
    proto::{
        CancelOtpRequest, SendOtpRequest, SendOtpResponse, TimeLeftRequest, TimeLeftResponse,
        VerifyOtpRequest, VerifyOtpResponse, otp_service_client::OtpServiceClient,
    },
    sms::SmsGateway,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;

pub use recording_gateway::RecordingGateway;
pub use redis_cluster::RedisCluster;
pub use redis_sentinel::RedisSentinels;
pub use redis_server::RedisServer;

/// Secret every test server shares (replicas must share one).
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";

/// Which store implementation a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded in-memory store.
    Memory,
    /// A private redis-server started for the test.
    Redis,
    /// The test binary's shared 3+3 Redis Cluster ([`RedisCluster::shared`]),
    /// under a key prefix of the server's own.
    RedisCluster,
    /// The test binary's shared Sentinel set-up ([`RedisSentinels::shared`]),
    /// under a key prefix of the server's own.
    RedisSentinel,
}

/// Runs each named `async fn name(store: StoreKind)` once per store, as its
/// own test: the behaviour suite is written once and proven on every store.
#[macro_export]
macro_rules! for_each_store {
    ($($test:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::StoreKind::Memory).await
                }
            )*
        }
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::StoreKind::Redis).await
                }
            )*
        }
        mod redis_cluster_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::StoreKind::RedisCluster).await
                }
            )*
        }
        mod redis_sentinel_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::common::StoreKind::RedisSentinel).await
                }
            )*
        }
    };
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The health-only listener, when the test set `OTP_HEALTH_ADDR`.
    pub health_addr: Option<SocketAddr>,
    pub client: OtpServiceClient<Channel>,
    /// What the server texted; stays empty when the server runs the gateway
    /// its settings select ([`spawn_app_with_configured_gateway`]).
    pub sms: RecordingGateway,
    /// The private redis-server of a `StoreKind::Redis` app (`None` when the
    /// test owns the server, see [`spawn_app_on_redis`]).
    pub redis: Option<RedisServer>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Starts a server on `store` with default settings plus `vars` (env names,
/// exactly as an operator would set them).
pub async fn spawn_app(store: StoreKind, vars: &[(&str, &str)]) -> TestApp {
    spawn_app_with_gateway(store, vars, RecordingGateway::default()).await
}

/// Like [`spawn_app`], with a gateway the test controls.
pub async fn spawn_app_with_gateway(
    store: StoreKind,
    vars: &[(&str, &str)],
    sms: RecordingGateway,
) -> TestApp {
    let gateway: Arc<dyn SmsGateway> = Arc::new(sms.clone());
    start(store, vars, Some(gateway), sms).await
}

/// Like [`spawn_app`], but the server sends through the gateway `vars`
/// select (e.g. TextBee at a local stand-in), exactly as `main` would.
pub async fn spawn_app_with_configured_gateway(store: StoreKind, vars: &[(&str, &str)]) -> TestApp {
    start(store, vars, None, RecordingGateway::default()).await
}

/// A server on a Redis the test owns, so several servers (replicas) can share
/// it and the test can kill and restart it.
pub async fn spawn_app_on_redis(redis: &RedisServer, vars: &[(&str, &str)]) -> TestApp {
    let url = redis.url();
    let mut with_url = vec![("REDIS_URL", url.as_str())];
    with_url.extend_from_slice(vars);
    spawn_app_with_env(&with_url).await
}

/// A server configured by `vars` alone (plus listen address and secret),
/// for tests that set `REDIS_URL` themselves.
pub async fn spawn_app_with_env(vars: &[(&str, &str)]) -> TestApp {
    let sms = RecordingGateway::default();
    start_app(vars, Some(Arc::new(sms.clone())), sms, None).await
}

async fn start(
    store: StoreKind,
    vars: &[(&str, &str)],
    gateway: Option<Arc<dyn SmsGateway>>,
    sms: RecordingGateway,
) -> TestApp {
    match store {
        StoreKind::Memory => start_app(vars, gateway, sms, None).await,
        StoreKind::Redis => {
            let redis = RedisServer::start().await;
            let url = redis.url();
            let mut with_url = vec![("REDIS_URL", url.as_str())];
            with_url.extend_from_slice(vars);
            start_app(&with_url, gateway, sms, Some(redis)).await
        }
        StoreKind::RedisCluster => {
            let urls = tokio::task::spawn_blocking(|| RedisCluster::shared().urls())
                .await
                .expect("cluster starts");
            let prefix = unique_prefix();
            let mut with_urls = vec![
                ("REDIS_CLUSTER_URLS", urls.as_str()),
                ("OTP_REDIS_PREFIX", prefix.as_str()),
            ];
            with_urls.extend_from_slice(vars);
            start_app(&with_urls, gateway, sms, None).await
        }
        StoreKind::RedisSentinel => {
            let urls = tokio::task::spawn_blocking(|| RedisSentinels::shared().urls())
                .await
                .expect("sentinels start");
            let prefix = unique_prefix();
            let mut with_urls = vec![
                ("REDIS_SENTINEL_URLS", urls.as_str()),
                ("REDIS_SENTINEL_MASTER", redis_sentinel::MASTER_NAME),
                ("OTP_REDIS_PREFIX", prefix.as_str()),
            ];
            with_urls.extend_from_slice(vars);
            start_app(&with_urls, gateway, sms, None).await
        }
    }
}

/// A key prefix no other server in this process uses, so servers sharing
/// one Redis (fixed test numbers, the global send log) never see each
/// other's keys.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("otp-test-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn start_app(
    vars: &[(&str, &str)],
    gateway: Option<Arc<dyn SmsGateway>>,
    sms: RecordingGateway,
    redis: Option<RedisServer>,
) -> TestApp {
    let mut settings: Vec<(String, String)> = vec![
        ("OTP_LISTEN_ADDR".into(), "127.0.0.1:0".into()),
        ("OTP_HMAC_SECRET".into(), TEST_SECRET.into()),
    ];
    settings.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_vars(settings).expect("test configuration is valid");
    let app = match gateway {
        Some(gateway) => Application::build_with_gateway(config, gateway).await,
        None => Application::build(config).await,
    }
    .expect("server builds");
    let addr = app.local_addr();
    let health_addr = app.health_addr();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stop.await;
        })
        .await
        .expect("server runs");
    });
    // A TLS server needs a TLS client (tests/common/tls.rs); this one stays
    // unconnected so building it never waits on a handshake.
    let tls = vars.iter().any(|(k, _)| *k == "OTP_TLS_CERT_FILE");
    let client = if tls {
        OtpServiceClient::new(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("valid URI")
                .connect_lazy(),
        )
    } else {
        OtpServiceClient::new(connect(addr).await)
    };
    TestApp {
        addr,
        health_addr,
        client,
        sms,
        redis,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// A channel to `addr`, retried until the server accepts (deadline 5 s).
pub async fn connect(addr: SocketAddr) -> Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URI")
        .connect_timeout(Duration::from_secs(1));
    wait_for("server accepts connections", Duration::from_secs(5), || {
        let endpoint = endpoint.clone();
        async move { endpoint.connect().await.ok() }
    })
    .await
}

/// Polls `probe` every 20 ms until it yields `Some`, or panics after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

static NEXT_PHONE: AtomicU32 = AtomicU32::new(0);

/// A phone number no other test in this process uses (US 415 area code).
pub fn unique_phone() -> String {
    let n = NEXT_PHONE.fetch_add(1, Ordering::Relaxed);
    // An exchange (the three digits after the area code) below 200 is not a
    // valid US number: it has no region, and country rules refuse it.
    let exchange = 200 + std::process::id() % 800;
    format!("+1415{exchange:03}{:04}", n % 10_000)
}

impl TestApp {
    pub fn client(&self) -> OtpServiceClient<Channel> {
        self.client.clone()
    }

    pub async fn send(&self, phone: &str) -> Result<SendOtpResponse, Status> {
        self.send_request(SendOtpRequest {
            phone_number: phone.into(),
            ..Default::default()
        })
        .await
    }

    pub async fn send_request(&self, request: SendOtpRequest) -> Result<SendOtpResponse, Status> {
        self.client()
            .send_otp(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn cancel(&self, phone: &str) -> Result<bool, Status> {
        self.client()
            .cancel_otp(CancelOtpRequest {
                phone_number: phone.into(),
            })
            .await
            .map(|response| response.into_inner().cancelled)
    }

    /// Sends a code and returns the digits the gateway was asked to text.
    pub async fn send_and_read_code(&self, phone: &str) -> String {
        self.send(phone).await.expect("SendOtp succeeds");
        self.sms.last_code_for(phone).expect("an SMS was recorded")
    }

    pub async fn verify(&self, phone: &str, code: &str) -> Result<VerifyOtpResponse, Status> {
        self.client()
            .verify_otp(VerifyOtpRequest {
                phone_number: phone.into(),
                code: code.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn time_left(&self, phone: &str) -> Result<TimeLeftResponse, Status> {
        self.client()
            .time_left(TimeLeftRequest {
                phone_number: phone.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// `grpc.health.v1.Health/Check` for `service`, as a status name.
    pub async fn health(&self, service: &str) -> String {
        health_at(self.addr, service).await
    }
}

/// `grpc.health.v1.Health/Check` for `service` at `addr`, as a status name.
pub async fn health_at(addr: SocketAddr, service: &str) -> String {
    {
        let mut health = HealthClient::new(connect(addr).await);
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check answers")
            .into_inner();
        response.status().as_str_name().to_owned()
    }
}

impl TestApp {
    /// Asks the server to stop and waits until it has.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops within 10 s")
                .expect("server task did not panic");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Asserts `status` is INVALID_ARGUMENT with a BadRequest violation on `field`.
pub fn assert_bad_request(status: &Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let bad_request = details.bad_request().expect("BadRequest detail present");
    assert!(
        bad_request
            .field_violations
            .iter()
            .any(|violation| violation.field == field && !violation.description.is_empty()),
        "no violation for {field}: {bad_request:?}"
    );
}
