//! Redis going away: the service fails closed and fast (UNAVAILABLE, health
//! NOT_SERVING), and comes back by itself when Redis does. Startup refuses a
//! bad REDIS_URL with one line.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::common::{RedisServer, TEST_SECRET, TestApp, unique_phone, wait_for};
use tokio::{task::JoinHandle, time::Instant};
use tonic::Code;

/// One call made by the [`CallStream`].
#[derive(Debug, Clone, Copy)]
struct Call {
    started: Instant,
    ended: Instant,
    /// `None`: the call succeeded; `Some(code)`: the gRPC error code.
    error: Option<Code>,
}

impl Call {
    fn took(&self) -> Duration {
        self.ended - self.started
    }
}

/// Workers calling SendOtp, TimeLeft and VerifyOtp in a loop (so every store
/// script is exercised), recording each call, until stopped. Bounded: each
/// worker stops by itself after 60 s.
struct CallStream {
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl CallStream {
    fn start(app: &TestApp, workers: usize) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|_| {
                let app_client = app.client();
                let calls = Arc::clone(&calls);
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let give_up = Instant::now() + Duration::from_secs(60);
                    let phone = unique_phone();
                    let mut turn = 0u32;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                        let mut client = app_client.clone();
                        let started = Instant::now();
                        let call = async {
                            match turn % 3 {
                                0 => client
                                    .send_otp(otp_service::proto::SendOtpRequest {
                                        phone_number: phone.clone(),
                                        ..Default::default()
                                    })
                                    .await
                                    .map(|_| ()),
                                1 => client
                                    .time_left(otp_service::proto::TimeLeftRequest {
                                        phone_number: phone.clone(),
                                    })
                                    .await
                                    .map(|_| ()),
                                _ => client
                                    .verify_otp(otp_service::proto::VerifyOtpRequest {
                                        phone_number: unique_phone(),
                                        code: "123456".into(),
                                    })
                                    .await
                                    .map(|_| ()),
                            }
                        };
                        // A hung call shows up as DEADLINE_EXCEEDED and fails the test.
                        let error = match tokio::time::timeout(Duration::from_secs(5), call).await {
                            Ok(Ok(())) => None,
                            Ok(Err(status)) => Some(status.code()),
                            Err(_) => Some(Code::DeadlineExceeded),
                        };
                        calls.lock().expect("calls lock").push(Call {
                            started,
                            ended: Instant::now(),
                            error,
                        });
                        turn += 1;
                    }
                })
            })
            .collect();
        Self {
            calls,
            stop,
            workers,
        }
    }

    fn snapshot(&self) -> Vec<Call> {
        self.calls.lock().expect("calls lock").clone()
    }

    /// Waits for a call that started after `since` and matches `wanted`.
    async fn wait_for_call(
        &self,
        what: &str,
        since: Instant,
        wanted: impl Fn(&Call) -> bool,
    ) -> Call {
        wait_for(what, Duration::from_secs(10), || {
            let found = self
                .snapshot()
                .into_iter()
                .find(|call| call.started >= since && wanted(call));
            async move { found }
        })
        .await
    }

    async fn stop(self) -> Vec<Call> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.expect("worker did not panic");
        }
        self.calls.lock().expect("calls lock").clone()
    }
}

/// Waits until the OTP service's health reports `wanted`; returns when it
/// was seen. The server-wide `""` (liveness) must stay SERVING throughout: a
/// store outage is not a reason to restart the process.
async fn wait_for_health(app: &TestApp, wanted: &str) -> Instant {
    wait_for(
        &format!("health {wanted}"),
        Duration::from_secs(5),
        || async {
            let overall = app.health("").await;
            assert_eq!(overall, "SERVING", "liveness does not follow the store");
            let service = app.health("otp.v1.OtpService").await;
            (service == wanted).then(Instant::now)
        },
    )
    .await
}

/// The longest call that overlapped `from..to`, after asserting that every
/// call made wholly inside it failed UNAVAILABLE (no hang, no silent success).
fn slowest_call_during_outage(calls: &[Call], from: Instant, to: Instant) -> (Duration, usize) {
    let during: Vec<&Call> = calls
        .iter()
        .filter(|call| call.ended >= from && call.started < to)
        .collect();
    for call in during
        .iter()
        .filter(|call| call.started >= from && call.ended < to)
    {
        assert_eq!(call.error, Some(Code::Unavailable), "{call:?}");
    }
    let slowest = during
        .iter()
        .map(|call| call.took())
        .max()
        .unwrap_or_default();
    (slowest, during.len())
}

/// Waits until at least `n` calls started after `since` have ended.
async fn wait_for_calls_since(stream: &CallStream, since: Instant, n: usize) {
    wait_for("calls during the outage", Duration::from_secs(20), || {
        let seen = stream
            .snapshot()
            .iter()
            .filter(|call| call.started >= since)
            .count();
        async move { (seen >= n).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_fails_calls_fast_and_recovers_without_a_restart() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::builder().redis(&redis).spawn().await;
    wait_for_health(&app, "SERVING").await;
    let stream = CallStream::start(&app, 4);
    stream
        .wait_for_call("calls succeed", Instant::now(), |call| call.error.is_none())
        .await;

    redis.kill();
    let killed_at = Instant::now();
    let first_unavailable = stream
        .wait_for_call("a call fails", killed_at, |call| {
            call.error == Some(Code::Unavailable)
        })
        .await;
    let not_serving_at = wait_for_health(&app, "NOT_SERVING").await;
    wait_for_calls_since(&stream, killed_at, 50).await;

    let restart_at = Instant::now();
    redis.restart().await;
    let redis_up_at = Instant::now();
    let first_success = stream
        .wait_for_call("calls succeed again", restart_at, |call| {
            call.error.is_none()
        })
        .await;
    let serving_at = wait_for_health(&app, "SERVING").await;
    let calls = stream.stop().await;

    let (slowest, during) = slowest_call_during_outage(&calls, killed_at, restart_at);
    assert!(
        slowest < Duration::from_secs(2),
        "slowest call took {slowest:?}"
    );
    println!(
        "MEASURED kill: first UNAVAILABLE {:?} after SIGKILL; slowest of {during} calls in the \
         outage {slowest:?}; NOT_SERVING after {:?}. restart: redis-server answered PING after \
         {:?}, first successful call ended {:?} and SERVING {:?} after the restart began",
        first_unavailable.ended - killed_at,
        not_serving_at - killed_at,
        redis_up_at - restart_at,
        first_success.ended - restart_at,
        serving_at - restart_at,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_fails_calls_within_the_timeout() {
    let redis = RedisServer::start().await;
    // A hung Redis accepts connections and never answers: only the timeout
    // can end those calls.
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_REDIS_TIMEOUT_MS", "1000")])
        .spawn()
        .await;
    wait_for_health(&app, "SERVING").await;
    let stream = CallStream::start(&app, 4);
    stream
        .wait_for_call("calls succeed", Instant::now(), |call| call.error.is_none())
        .await;

    // Taken once SIGSTOP has been sent: a call that started while the signal
    // was still on its way may legitimately succeed.
    redis.freeze();
    let frozen_at = Instant::now();
    let not_serving_at = wait_for_health(&app, "NOT_SERVING").await;
    wait_for_calls_since(&stream, frozen_at, 12).await;
    let resumed_at = Instant::now();
    redis.resume();
    let first_success = stream
        .wait_for_call("calls succeed again", resumed_at, |call| {
            call.error.is_none()
        })
        .await;
    let serving_at = wait_for_health(&app, "SERVING").await;
    let calls = stream.stop().await;

    let (slowest, during) = slowest_call_during_outage(&calls, frozen_at, resumed_at);
    assert!(
        slowest < Duration::from_secs(2),
        "slowest call took {slowest:?}"
    );
    assert!(
        slowest >= Duration::from_millis(900),
        "calls in flight waited for the timeout, not less: {slowest:?}"
    );
    println!(
        "MEASURED freeze: slowest of {during} calls {slowest:?}; NOT_SERVING after {:?}. \
         resume: first successful call {:?}, SERVING {:?}",
        not_serving_at - frozen_at,
        first_success.ended - resumed_at,
        serving_at - resumed_at,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_starts_while_redis_is_down_and_serves_once_it_is_up() {
    let mut redis = RedisServer::start().await;
    redis.kill();
    let app = TestApp::builder().redis(&redis).spawn().await;
    assert_eq!(app.health("").await, "SERVING", "the process is alive");
    assert_eq!(app.health("otp.v1.OtpService").await, "NOT_SERVING");
    let phone = unique_phone();
    let status = app.send(&phone).await.expect_err("Redis is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        app.sms.count(),
        0,
        "no code is texted that could not be stored"
    );

    redis.restart().await;
    wait_for_health(&app, "SERVING").await;
    let code = app.send_and_read_code(&phone).await;
    let verified = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(
        verified.result(),
        otp_service::proto::VerifyOtpResult::Approved
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_url_to_a_server_without_tls_is_unavailable() {
    // Proves the rediss:// path is wired (crypto provider, rustls) and that a
    // failed handshake fails closed instead of crashing or falling back.
    let redis = RedisServer::start().await;
    let url = format!("rediss://127.0.0.1:{}", redis.port());
    let app = TestApp::builder()
        .env(&[("REDIS_URL", &url), ("OTP_REDIS_TIMEOUT_MS", "500")])
        .spawn()
        .await;
    assert_eq!(app.health("otp.v1.OtpService").await, "NOT_SERVING");
    let started = Instant::now();
    let status = app.time_left(&unique_phone()).await.expect_err("no TLS");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn bad_redis_settings_stop_the_binary_with_one_clear_line() {
    let cases = [
        (
            vec![
                ("REDIS_URL", "redis://app:hunter2@cache:port/0"),
                ("OTP_HMAC_SECRET", TEST_SECRET),
            ],
            "REDIS_URL",
        ),
        (vec![("REDIS_URL", "cache.internal:6379")], "REDIS_URL"),
        (
            vec![("REDIS_URL", "redis://127.0.0.1:6399")],
            "OTP_HMAC_SECRET",
        ),
        (
            vec![
                ("REDIS_URL", "redis://app:hunter2@cache:6379"),
                ("REDIS_CLUSTER_URLS", "redis://app:hunter2@node:7000"),
                ("OTP_HMAC_SECRET", TEST_SECRET),
            ],
            "REDIS_CLUSTER_URLS",
        ),
        (
            vec![
                ("REDIS_CLUSTER_URLS", "redis://app:hunter2@node:7000"),
                ("REDIS_SENTINEL_URLS", "redis://app:hunter2@sentinel:26379"),
                ("REDIS_SENTINEL_MASTER", "otp"),
                ("OTP_HMAC_SECRET", TEST_SECRET),
            ],
            "REDIS_SENTINEL_URLS",
        ),
        (
            vec![
                (
                    "REDIS_CLUSTER_URLS",
                    "redis://app:hunter2@node:7000,node:7001",
                ),
                ("OTP_HMAC_SECRET", TEST_SECRET),
            ],
            "REDIS_CLUSTER_URLS",
        ),
        (
            vec![
                ("REDIS_SENTINEL_URLS", "redis://app:hunter2@sentinel:26379"),
                ("OTP_HMAC_SECRET", TEST_SECRET),
            ],
            "REDIS_SENTINEL_MASTER",
        ),
        (
            vec![("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000")],
            "OTP_HMAC_SECRET",
        ),
        // A TextBee secret that failed to mount must not turn into codes on
        // stdout: with Redis, the console gateway is only taken by name.
        (
            vec![
                ("REDIS_URL", "redis://app:hunter2@cache:6379"),
                ("OTP_HMAC_SECRET", TEST_SECRET),
            ],
            "OTP_SMS_GATEWAY",
        ),
    ];
    for (vars, var) in cases {
        let (code, stderr) = crate::common::binary::run_to_exit(&vars);
        assert_eq!(code, Some(2), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].starts_with(&format!("otp-service: invalid configuration: {var}: ")),
            "{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
    }
}
