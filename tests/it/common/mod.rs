//! The one test harness: [`TestApp::builder`] starts the real server
//! in-process on 127.0.0.1:0 (on the store and with the gateway the test
//! asks for) and hands out real tonic clients; [`TestStore`] opens a store
//! the same way for tests that drive the store trait directly. Redis comes
//! from a private redis-server per test, or the process's shared Redis
//! Cluster or Sentinel set-up; never the Redis on 6379.

pub mod app;
pub mod binary;
pub mod concurrent;
pub mod failover;
pub mod otlp_collector;
pub mod recording_gateway;
pub mod redis_cluster;
pub mod redis_nodes;
pub mod redis_sentinel;
pub mod redis_server;
pub mod sms_standins;
pub mod store_set_up;
pub mod tls;
pub mod unreachable_store;

use std::{
    future::Future,
    net::SocketAddr,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;

pub use app::TestApp;
pub use recording_gateway::RecordingGateway;
pub use redis_cluster::RedisCluster;
pub use redis_sentinel::RedisSentinels;
pub use redis_server::RedisServer;
pub use store_set_up::{StoreKind, TestStore};

/// Lifts the caps every send and every verify shares (the buckets of calls
/// without a `client_key`, the service-wide rates), for tests about
/// something else that text and check many numbers.
pub const SHARED_CAPS_LIFTED: [(&str, &str); 4] = [
    ("OTP_ANONYMOUS_SEND_LIMIT", "100000"),
    ("OTP_GLOBAL_SEND_LIMIT", "0"),
    ("OTP_ANONYMOUS_VERIFY_LIMIT", "1000000"),
    ("OTP_GLOBAL_VERIFY_LIMIT", "0"),
];

/// Secret every test server shares (replicas must share one).
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret!";

/// Runs each named `async fn name(store: StoreKind)` once per store, as its
/// own test: a suite is written once and proven on every store.
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

/// A key prefix no other server in this process uses, so servers sharing
/// one Redis (fixed test numbers, the global send log) never see each
/// other's keys.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("otp-test-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A phone number no other test in this process uses (US 415 area code):
/// eight million before one repeats.
pub fn unique_phone() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // An exchange (the three digits after the area code) below 200 is not a
    // valid US number: it has no region, and country rules refuse it. The
    // process id spreads concurrent test processes over the exchanges.
    let exchange = 200 + (std::process::id() + n / 10_000) % 800;
    format!("+1415{exchange:03}{:04}", n % 10_000)
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

/// `grpc.health.v1.Health/Check` for `service` at `addr`, as a status name.
pub async fn health_at(addr: SocketAddr, service: &str) -> String {
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

/// Whether `text` holds `code` as a whole run of digits: a code inside a
/// longer number (a microsecond timestamp, a float) is not the code.
pub fn holds_code(text: &str, code: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run == code)
}
