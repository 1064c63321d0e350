//! Redis going away: the service fails closed and fast (UNAVAILABLE, health
//! NOT_SERVING), and comes back by itself when Redis does. Startup refuses a
//! bad REDIS_URL with one line.

use std::time::Duration;

use crate::common::{
    RedisServer, SHARED_CAPS_LIFTED, TEST_SECRET, TestApp,
    failover::{Call, ConversationStream, judge_outage, stop_after_a_steady_second},
    unique_phone, wait_for,
};
use otp_service::proto::SendOtpRequest;
use tokio::time::Instant;
use tonic::Code;

/// Readiness reaches `wanted` within 5 s (liveness stays SERVING).
async fn wait_for_health(app: &TestApp, wanted: &str) -> Instant {
    crate::common::failover::wait_for_health(app, wanted, Duration::from_secs(5)).await
}

/// Waits (10 s) for a call that started at or after `since` and matches `wanted`.
async fn wait_for_call(
    stream: &ConversationStream,
    what: &str,
    since: Instant,
    wanted: impl Fn(&Call) -> bool,
) -> Call {
    stream
        .wait_for_call(what, since, Duration::from_secs(10), wanted)
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
        .map(|call| call.ended - call.started)
        .max()
        .expect("calls overlapped the outage");
    (slowest, during.len())
}

/// Waits until at least `n` calls started after `since` have ended.
async fn wait_for_calls_since(stream: &ConversationStream, since: Instant, n: usize) {
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
    // The stream texts hundreds of numbers: the shared caps are not the subject.
    let app = TestApp::builder()
        .redis(&redis)
        .env(&SHARED_CAPS_LIFTED)
        .spawn()
        .await;
    wait_for_health(&app, "SERVING").await;
    let stream = ConversationStream::start(&app, 4);
    wait_for_call(&stream, "a code is approved", Instant::now(), |call| {
        call.approved
    })
    .await;

    redis.kill();
    let killed_at = Instant::now();
    let first_unavailable = wait_for_call(&stream, "a call fails", killed_at, |call| {
        call.error == Some(Code::Unavailable)
    })
    .await;
    let not_serving_at = wait_for_health(&app, "NOT_SERVING").await;
    wait_for_calls_since(&stream, killed_at, 50).await;

    let restart_at = Instant::now();
    redis.restart().await;
    let redis_up_at = Instant::now();
    let first_success = wait_for_call(&stream, "a code is approved again", restart_at, |call| {
        call.approved
    })
    .await;
    let serving_at = wait_for_health(&app, "SERVING").await;
    // Every answer was judged (no wrong one, every failure UNAVAILABLE), and
    // every call in a steady second after recovery succeeded.
    let calls = stop_after_a_steady_second(stream, "after the restart").await;
    judge_outage(&calls, killed_at);

    let (slowest, during) = slowest_call_during_outage(&calls, killed_at, restart_at);
    // A killed Redis refuses connections: no call may wait longer than the
    // default 1 s store timeout, plus margin for a loaded machine.
    assert!(
        slowest < Duration::from_millis(2_500),
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
    const TIMEOUT: Duration = Duration::from_millis(1_000);
    let redis = RedisServer::start().await;
    // A hung Redis accepts connections and never answers: only the timeout
    // can end those calls.
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_REDIS_TIMEOUT_MS", "1000")])
        .env(&SHARED_CAPS_LIFTED)
        .spawn()
        .await;
    wait_for_health(&app, "SERVING").await;
    let stream = ConversationStream::start(&app, 4);
    wait_for_call(&stream, "a code is approved", Instant::now(), |call| {
        call.approved
    })
    .await;

    // Taken once the kernel reports Redis stopped: a call that started
    // before may legitimately succeed (or be cut mid-way).
    redis.freeze().await;
    let frozen_at = Instant::now();
    let not_serving_at = wait_for_health(&app, "NOT_SERVING").await;
    wait_for_calls_since(&stream, frozen_at, 12).await;
    let resumed_at = Instant::now();
    redis.resume();
    let first_success = wait_for_call(&stream, "a code is approved again", resumed_at, |call| {
        call.approved
    })
    .await;
    let serving_at = wait_for_health(&app, "SERVING").await;
    let calls = stop_after_a_steady_second(stream, "after the resume").await;
    judge_outage(&calls, frozen_at);

    let (slowest, during) = slowest_call_during_outage(&calls, frozen_at, resumed_at);
    // A call that starts on the frozen Redis fails at its first store call:
    // the configured timeout, plus 1.5 s of margin for a loaded machine. (A
    // send caught mid-way by the freeze also waits out its undo: one timeout
    // for the refunds, one for the claim's release, see
    // `a_send_cut_by_a_frozen_redis_undoes_its_steps_at_once`; the stream's
    // 5 s call deadline bounds those, and `slowest` reports them.)
    let started_frozen = calls
        .iter()
        .filter(|call| call.started >= frozen_at && call.ended < resumed_at)
        .map(|call| call.ended - call.started)
        .max()
        .expect("calls started during the freeze");
    assert!(
        started_frozen < TIMEOUT + Duration::from_millis(1_500),
        "a call started on the frozen Redis took {started_frozen:?}"
    );
    assert!(
        started_frozen >= TIMEOUT * 9 / 10,
        "calls waited for the timeout, not less: {started_frozen:?}"
    );
    println!(
        "MEASURED freeze: slowest started during it {started_frozen:?}, slowest of {during} \
         overlapping it {slowest:?}; NOT_SERVING after {:?}. \
         resume: first successful call {:?}, SERVING {:?}",
        not_serving_at - frozen_at,
        first_success.ended - resumed_at,
        serving_at - resumed_at,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_pooled_connection_is_bounded_by_the_timeout() {
    // One pool slot, 500 ms timeout, Redis frozen before the service ever
    // connected: the slot is taken by a connection attempt that cannot
    // finish, and 16 calls queue for it. Bounded waits end each of them at
    // about 500 ms; unbounded ones would end one after another (a call can
    // take the slot only once the attempt before it timed out), the last
    // after 16 x 500 ms. (Connections are lent per call once made, so only
    // a fresh pool makes the calls wait for the slot.)
    let redis = RedisServer::start().await;
    redis.freeze().await;
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_REDIS_POOL_SIZE", "1"),
            ("OTP_REDIS_TIMEOUT_MS", "500"),
        ])
        .spawn()
        .await;
    let started = Instant::now();
    let calls = (0..16).map(|_| {
        let app = &app;
        async move {
            let call_started = Instant::now();
            let answer = app.time_left(&unique_phone()).await;
            (answer.map(|_| ()), call_started.elapsed())
        }
    });
    let answers = futures::future::join_all(calls).await;
    let all_done = started.elapsed();
    redis.resume();
    for (answer, took) in &answers {
        let status = answer.as_ref().expect_err("Redis is frozen");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(*took < Duration::from_millis(2_500), "a call took {took:?}");
    }
    assert!(
        all_done < Duration::from_millis(3_000),
        "16 calls on one frozen connection took {all_done:?}: the pool wait is not bounded"
    );
    println!(
        "MEASURED pool wait: 16 calls on 1 frozen connection all UNAVAILABLE after {all_done:?}"
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
    // Fast means bounded by the store timeout (500 ms), not by the caller's
    // deadline; 2.5 s of margin is for a loaded 2-core machine.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "UNAVAILABLE after {took:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_by_a_frozen_redis_undoes_its_steps_at_once() {
    // The text is held at the gateway while Redis freezes; then the gateway
    // fails (surely not sent). The send must discard its code, take back
    // every counted send and release its idempotency claim: each a store call
    // that can only time out. The discard and the refunds run at once (one
    // timeout), the release after them (one more); one after another they
    // took one timeout each, five in all.
    const TIMEOUT: Duration = Duration::from_millis(1_000);
    let redis = RedisServer::start().await;
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_REDIS_TIMEOUT_MS", "1000")])
        .spawn()
        .await;
    let gate = app.sms.hold_sends();
    let mut client = app.client();
    let request = SendOtpRequest {
        phone_number: unique_phone(),
        idempotency_key: "cut-by-a-freeze".into(),
        ..Default::default()
    };
    let caller = tokio::spawn(async move { client.send_otp(request).await });
    wait_for(
        "the text reached the gateway",
        Duration::from_secs(10),
        || async { (app.sms.in_flight() == 1).then_some(()) },
    )
    .await;
    redis.freeze().await;
    app.sms.fail_sends(true);
    let failed_at = Instant::now();
    gate.add_permits(1);
    let answer = caller.await.expect("the caller did not panic");
    let undone_in = failed_at.elapsed();
    redis.resume();
    let status = answer.expect_err("the text was not sent");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        undone_in >= TIMEOUT * 2 * 9 / 10,
        "the undo waited on the frozen store twice, not less: {undone_in:?}"
    );
    // Two timeouts plus 1.5 s of margin for a loaded machine; one after
    // another the steps need five.
    assert!(
        undone_in < TIMEOUT * 2 + Duration::from_millis(1_500),
        "the undo steps ran one after another: {undone_in:?}"
    );
    println!("MEASURED undo on a frozen Redis: UNAVAILABLE {undone_in:?} after the gateway failed");
}
