//! Redis as the shared store: replicas on one Redis behave like one service,
//! and what lands in Redis reveals neither phones nor codes and always
//! expires (`redis_keys.rs`).

use crate::common::{
    RedisServer, TestApp,
    concurrent::{RACE_SETTINGS, count, send_concurrently, verify_concurrently, wrong_code},
    unique_phone, wait_for,
};
use std::time::Duration;
use tokio::time::Instant;

use deadpool_redis::redis;
use otp_service::proto::{SendOtpRequest, SendOtpResponse, VerifyOtpResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_sent_through_one_replica_verifies_through_another() {
    let redis = RedisServer::start().await;
    let a = TestApp::builder().redis(&redis).spawn().await;
    let b = TestApp::builder().redis(&redis).spawn().await;
    let phone = unique_phone();

    a.send(&phone).await.expect("SendOtp through A");
    let code = a.sms.last_code_for(&phone).expect("A texted the code");
    let left = b.time_left(&phone).await.expect("TimeLeft through B");
    assert!(left.pending, "B sees the code A stored");
    let verified = b.verify(&phone, &code).await.expect("VerifyOtp through B");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
    let again = a.verify(&phone, &code).await.expect("VerifyOtp through A");
    assert_eq!(
        again.result(),
        VerifyOtpResult::Expired,
        "used up for A as well"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_code_is_approved_exactly_once_across_two_replicas() {
    let redis = RedisServer::start().await;
    let a = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let b = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let phone = unique_phone();
    let code = a.send_and_read_code(&phone).await;

    let results = verify_concurrently(&[&a, &b], &phone, &code, 1000).await;
    assert_eq!(count(&results, VerifyOtpResult::Approved), 1);
    assert_eq!(count(&results, VerifyOtpResult::Expired), 999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_guesses_across_two_replicas_are_capped_at_max_attempts() {
    let redis = RedisServer::start().await;
    let replica = || {
        TestApp::builder()
            .redis(&redis)
            .env(&RACE_SETTINGS)
            .env(&[("OTP_MAX_ATTEMPTS", "7")])
            .spawn()
    };
    let (a, b) = (replica().await, replica().await);
    let phone = unique_phone();
    let code = a.send_and_read_code(&phone).await;

    let results = verify_concurrently(&[&a, &b], &phone, &wrong_code(&code), 1000).await;
    assert_eq!(count(&results, VerifyOtpResult::Incorrect), 7);
    assert_eq!(count(&results, VerifyOtpResult::Locked), 993);
    let right = b.verify(&phone, &code).await.expect("answers");
    assert_eq!(
        right.result(),
        VerifyOtpResult::Locked,
        "the lock is shared"
    );
}

/// `calls=` of `command` in `INFO commandstats` (0 when never called).
async fn calls(redis: &RedisServer, command: &str) -> u64 {
    redis.command_calls(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_is_one_evalsha_and_scripts_load_once_per_server() {
    let redis = RedisServer::start().await;
    // The pumping guard is off: its approvals and its gauge run in the
    // background, so their calls would land at no fixed moment.
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_PUMPING_GUARD", "off")])
        .spawn()
        .await;
    for _ in 0..10 {
        let phone = unique_phone();
        let code = app.send_and_read_code(&phone).await;
        app.time_left(&phone).await.expect("answers");
        app.verify(&phone, &code).await.expect("answers");
    }
    // 30 calls: one EVALSHA per call (SendOtp's three send logs and its code
    // are one script, and so are VerifyOtp's two verify logs and its check),
    // plus one retry for each script's first use, which a fresh server
    // answers NOSCRIPT, and the layout marker read once by the process
    // (whether there are older records to adopt: `legacy_adoption.rs`), and
    // its retry.
    assert_eq!(calls(&redis, "evalsha").await, 30 + 3 + 2);
    assert_eq!(
        calls(&redis, "eval").await,
        0,
        "never the script text per call"
    );
    assert_eq!(
        calls(&redis, "script|load").await,
        4,
        "each used script loaded once (discard_code was not needed)"
    );

    // A Redis that forgot its scripts (restart, failover, SCRIPT FLUSH)
    // answers NOSCRIPT; each script is loaded again, once.
    let mut connection = redis.connection().await;
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .expect("SCRIPT FLUSH");
    for _ in 0..3 {
        let phone = unique_phone();
        let code = app.send_and_read_code(&phone).await;
        assert!(app.time_left(&phone).await.expect("answers").pending);
        let verified = app.verify(&phone, &code).await.expect("answers");
        assert_eq!(verified.result(), VerifyOtpResult::Approved);
    }
    assert_eq!(calls(&redis, "script|load").await, 7);
    assert_eq!(calls(&redis, "evalsha").await, 35 + 9 + 3);
}

/// How often the pumping guard's gauge re-reads the suspended prefixes
/// (`otp/pumping_guard.rs`), one EVALSHA each time.
const GAUGE_REFRESH: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_judged_by_the_pumping_guard_is_one_evalsha() {
    let redis = RedisServer::start().await;
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_PUMPING_GUARD", "enforce")])
        .spawn()
        .await;
    // The first send loads its script and, before it, the layout marker's
    // (read once per process); the guard's gauge, refreshed in the
    // background from the start, loads its own: two EVALSHA each (NOSCRIPT,
    // then the retry). After both the gauge keeps still for 15 s.
    app.send_and_read_code(&unique_phone()).await;
    wait_for(
        "the send's and the gauge's first calls",
        Duration::from_secs(10),
        || async {
            let loaded = calls(&redis, "script|load").await;
            (loaded == 3 && calls(&redis, "evalsha").await == 6).then_some(())
        },
    )
    .await;
    // Start right after one of the gauge's refreshes, so that none falls
    // among the sends counted.
    let loaded = calls(&redis, "evalsha").await;
    wait_for(
        "the gauge's next refresh",
        GAUGE_REFRESH + Duration::from_secs(10),
        || async { (calls(&redis, "evalsha").await > loaded).then_some(()) },
    )
    .await;
    let refreshed_at = Instant::now();
    let before = calls(&redis, "evalsha").await;
    for _ in 0..5 {
        app.send_and_read_code(&unique_phone()).await;
    }
    let counted = calls(&redis, "evalsha").await - before;
    let spent = refreshed_at.elapsed();
    assert!(
        spent < GAUGE_REFRESH,
        "stalled {spent:?}: the gauge may have refreshed among the sends"
    );
    assert_eq!(
        counted, 5,
        "the send logs, the prefix's verdict and the code in one script"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_database_in_the_url_are_used() {
    let redis = RedisServer::start_with_user("otp-app", "s3cret-pa55").await;
    let url = format!("{}/3", redis.url());
    let app = TestApp::builder().env(&[("REDIS_URL", &url)]).spawn().await;
    let phone = unique_phone();
    let code = app.send_and_read_code(&phone).await;

    let mut db3 = redis.connection_to_db(3).await;
    let in_db3: u64 = redis::cmd("DBSIZE")
        .query_async(&mut db3)
        .await
        .expect("DBSIZE");
    let mut db0 = redis.connection_to_db(0).await;
    let in_db0: u64 = redis::cmd("DBSIZE")
        .query_async(&mut db0)
        .await
        .expect("DBSIZE");
    assert_eq!(
        (in_db3, in_db0),
        (5, 0),
        "the phone's record (code and send log), the anonymous and the global \
         send logs, the destination prefix's sends and the layout marker live \
         in database 3"
    );
    let verified = app.verify(&phone, &code).await.expect("answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved);

    // A wrong password is an outage, not a crash and not a fallback.
    let wrong = url.replace("s3cret-pa55", "wrong");
    let refused = TestApp::builder()
        .env(&[("REDIS_URL", &wrong)])
        .spawn()
        .await;
    assert_eq!(refused.health("otp.v1.OtpService").await, "NOT_SERVING");
    let status = refused.send(&unique_phone()).await.expect_err("auth fails");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(refused.sms.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_across_two_replicas_text_the_number_once() {
    let redis = RedisServer::start().await;
    let a = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let b = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let request = SendOtpRequest {
        phone_number: unique_phone(),
        ..Default::default()
    };
    let results = send_concurrently(&[&a, &b], request, 200).await;
    let sent = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == tonic::Code::ResourceExhausted))
        .count();
    assert_eq!((sent, refused), (1, 199));
    assert_eq!(a.sms.count() + b.sms.count(), 1, "exactly one SMS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_across_two_replicas_sends_once() {
    let redis = RedisServer::start().await;
    let a = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let b = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .spawn()
        .await;
    let phone = unique_phone();
    let request = SendOtpRequest {
        phone_number: phone.clone(),
        idempotency_key: format!("checkout-{phone}"),
        ..Default::default()
    };
    let results = send_concurrently(&[&a, &b], request, 50).await;
    let responses: Vec<SendOtpResponse> = results
        .into_iter()
        .map(|r| r.expect("every call succeeds"))
        .collect();
    assert!(
        responses.iter().all(|r| *r == responses[0]),
        "{responses:?}"
    );
    assert_eq!(a.sms.count() + b.sms.count(), 1, "exactly one SMS");
}
