//! A Redis whose `maxmemory-policy` may evict live keys (locks, guess
//! counters) cannot go unnoticed: startup is refused, readiness drops if the
//! policy changes later, an error is logged and a metric set — unless the
//! operator opts out. A Redis that forbids CONFIG GET is warned about and
//! trusted.

use std::time::Duration;

use crate::common::{
    RedisServer, TestApp,
    binary::{ServiceProcess, run_to_exit},
    wait_for,
};
use deadpool_redis::redis;

const SECRET: &str = "eviction-test-secret-eviction-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_stops_startup_with_a_line_naming_the_way_out() {
    let redis = RedisServer::start_with_args(&["--maxmemory-policy", "volatile-lru"]).await;
    refused_naming_the_policy(redis.url()).await;
    // RESP3 answers CONFIG GET with a map: the policy is still read, not
    // taken for a Redis that will not tell.
    refused_naming_the_policy(format!("{}?protocol=resp3", redis.url())).await;
}

async fn refused_naming_the_policy(url: String) {
    let (code, stderr) = tokio::task::spawn_blocking(move || {
        run_to_exit(&[
            ("OTP_LISTEN_ADDR", "127.0.0.1:0"),
            ("OTP_METRICS_ADDR", ""),
            ("REDIS_URL", &url),
            ("OTP_HMAC_SECRET", SECRET),
            ("OTP_SMS_GATEWAY", "console"),
        ])
    })
    .await
    .expect("joined");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("volatile-lru"), "{stderr}");
    assert!(stderr.contains("OTP_REDIS_ALLOW_EVICTION"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opt_out_starts_but_the_metric_and_the_log_still_say_so() {
    let redis = RedisServer::start_with_args(&["--maxmemory-policy", "allkeys-lru"]).await;
    let (service, metrics_addr) = ServiceProcess::start_with_metrics(&[
        ("REDIS_URL", &redis.url()),
        ("OTP_HMAC_SECRET", SECRET),
        ("OTP_REDIS_ALLOW_EVICTION", "true"),
        ("OTP_SMS_GATEWAY", "console"),
    ]);
    // Logged before the listening line, which start() waited for.
    assert!(
        service
            .stderr()
            .iter()
            .any(|line| line.contains("accepted by OTP_REDIS_ALLOW_EVICTION")),
        "{:?}",
        service.stderr()
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let page = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("scrape answers")
        .text()
        .await
        .expect("text page");
    assert!(
        page.lines().any(|l| l == "otp_redis_evicting_policy 1"),
        "{page}"
    );
}

async fn set_policy(redis: &RedisServer, policy: &str) {
    let mut connection = redis.connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg(policy)
        .query_async(&mut connection)
        .await
        .expect("CONFIG SET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_turned_evicting_at_runtime_drops_readiness_until_fixed() {
    let redis = RedisServer::start().await;
    let app = TestApp::builder().redis(&redis).env(&[]).spawn().await;
    assert_eq!(app.health("otp.v1.OtpService").await, "SERVING");

    set_policy(&redis, "allkeys-random").await;
    wait_for("readiness drops", Duration::from_secs(20), || async {
        (app.health("otp.v1.OtpService").await == "NOT_SERVING").then_some(())
    })
    .await;
    assert_eq!(
        app.health("").await,
        "SERVING",
        "the process itself is fine"
    );

    set_policy(&redis, "noeviction").await;
    wait_for("readiness returns", Duration::from_secs(20), || async {
        (app.health("otp.v1.OtpService").await == "SERVING").then_some(())
    })
    .await;
}

/// Starts the binary on `redis_url` and returns its exit code and log.
async fn exit_on(redis_url: String) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        run_to_exit(&[
            ("OTP_LISTEN_ADDR", "127.0.0.1:0"),
            ("OTP_METRICS_ADDR", ""),
            ("REDIS_URL", &redis_url),
            ("OTP_HMAC_SECRET", SECRET),
            ("OTP_SMS_GATEWAY", "console"),
        ])
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_forbids_config_get_is_refused_unless_the_operator_vouches_for_it() {
    let redis = RedisServer::start_with_user("otp", "otp-password").await;
    set_policy(&redis, "allkeys-lru").await;
    // As on managed Redis: this user may not run CONFIG at all.
    let mut connection = redis.connection().await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("otp")
        .arg("-config")
        .query_async(&mut connection)
        .await
        .expect("ACL SETUSER");

    let (code, stderr) = exit_on(redis.url()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("will not tell its maxmemory-policy"),
        "{stderr}"
    );
    assert!(stderr.contains("OTP_REDIS_ALLOW_EVICTION=true"), "{stderr}");

    let service = ServiceProcess::start(&[
        ("REDIS_URL", &redis.url()),
        ("OTP_HMAC_SECRET", SECRET),
        ("OTP_SMS_GATEWAY", "console"),
        ("OTP_REDIS_ALLOW_EVICTION", "true"),
    ]);
    // Logged before the listening line, which start() waited for.
    assert!(
        service
            .stderr()
            .iter()
            .any(|line| line.contains("trusted by OTP_REDIS_ALLOW_EVICTION")),
        "{:?}",
        service.stderr()
    );
}

/// A Redis with CONFIG renamed away (`rename-command CONFIG ""`, how some
/// providers hide it): refused at startup without the opt-out; with it the
/// service starts and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_with_config_renamed_away_is_refused_unless_allowed() {
    let redis = RedisServer::start_with_args(&["--rename-command", "CONFIG", ""]).await;
    let (code, stderr) = exit_on(redis.url()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("will not tell its maxmemory-policy"),
        "{stderr}"
    );

    let app = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_REDIS_ALLOW_EVICTION", "true")])
        .spawn()
        .await;
    assert_eq!(app.health("otp.v1.OtpService").await, "SERVING");
}
