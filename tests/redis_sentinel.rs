//! Redis Sentinel as the store: a real master, replica and three sentinels on
//! loopback. When the master dies (or is demoted), calls fail UNAVAILABLE
//! until the sentinels promote the replica, then reach the new master with no
//! restart of the service. (The behaviour suite runs on a sentinel set-up
//! too: `for_each_store!`.)

mod common;

use std::time::Duration;

use common::{
    RedisSentinels, TestApp,
    failover::{ConversationStream, judge_outage, wait_for_health},
    redis_nodes::{free_port, wait_blocking},
    redis_sentinel::{DOWN_AFTER_MS, MASTER_NAME},
    spawn_app_with_env, unique_phone,
};
use tokio::time::Instant;

async fn app_on(set_up: &RedisSentinels) -> TestApp {
    let urls = set_up.urls();
    spawn_app_with_env(&[
        ("REDIS_SENTINEL_URLS", urls.as_str()),
        ("REDIS_SENTINEL_MASTER", MASTER_NAME),
    ])
    .await
}

/// Starts a set-up of the test's own (it is about to lose its master).
async fn own_set_up() -> (RedisSentinels, Duration) {
    let started = Instant::now();
    let set_up = tokio::task::spawn_blocking(RedisSentinels::start)
        .await
        .expect("sentinel set-up starts");
    (set_up, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_fails_calls_unavailable_until_the_replica_is_promoted() {
    let (mut set_up, ready_in) = own_set_up().await;
    let app = app_on(&set_up).await;
    wait_for_health(&app, "SERVING", Duration::from_secs(5)).await;
    let stream = ConversationStream::start(&app, 4);
    stream
        .wait_for_call(
            "a code is approved",
            Instant::now(),
            Duration::from_secs(10),
            |call| call.approved,
        )
        .await;

    let old_master = set_up.master();
    set_up.kill(old_master);
    let killed_at = Instant::now();
    let not_serving_at = wait_for_health(&app, "NOT_SERVING", Duration::from_secs(10)).await;
    let (set_up, promoted_at) = tokio::task::spawn_blocking(move || {
        let new_master = wait_blocking(
            "the sentinels name a new master",
            Duration::from_secs(30),
            || {
                let master = set_up.master();
                (master != old_master && set_up.is_master(master)).then_some(master)
            },
        );
        assert_ne!(new_master, old_master);
        (set_up, Instant::now())
    })
    .await
    .expect("failover completes");
    let first_approval = stream
        .wait_for_call(
            "a code is approved after the failover",
            promoted_at,
            Duration::from_secs(15),
            |call| call.approved,
        )
        .await;
    let serving_at = wait_for_health(&app, "SERVING", Duration::from_secs(10)).await;
    let steady_from = Instant::now();
    stream
        .wait_for_call("more calls", steady_from, Duration::from_secs(10), |call| {
            call.ended >= steady_from + Duration::from_secs(1)
        })
        .await;
    let calls = stream.stop().await;

    let outage = judge_outage(&calls, killed_at);
    let late_failures: Vec<_> = calls
        .iter()
        .filter(|call| call.started >= steady_from && call.error.is_some())
        .collect();
    assert!(
        late_failures.is_empty(),
        "after recovery: {late_failures:?}"
    );
    println!(
        "MEASURED sentinel failover (down-after {DOWN_AFTER_MS} ms; set-up ready in \
         {ready_in:?}): first UNAVAILABLE {:?} after SIGKILL, NOT_SERVING after {:?}, new \
         master named after {:?}, last UNAVAILABLE {:?}, first approval after the failover \
         {:?}, SERVING {:?}; {} of {} calls after the kill failed, slowest {:?}",
        outage.first_failure,
        not_serving_at - killed_at,
        promoted_at - killed_at,
        outage.last_failure,
        first_approval.ended - killed_at,
        serving_at - killed_at,
        outage.failures,
        outage.calls,
        outage.slowest_call,
    );
    drop(set_up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_moves_calls_to_the_new_master_and_never_answers_wrongly() {
    let (set_up, _) = own_set_up().await;
    let app = app_on(&set_up).await;
    wait_for_health(&app, "SERVING", Duration::from_secs(5)).await;
    let stream = ConversationStream::start(&app, 4);
    stream
        .wait_for_call(
            "a code is approved",
            Instant::now(),
            Duration::from_secs(10),
            |call| call.approved,
        )
        .await;

    // The old master stays up and becomes a replica: connections still open
    // to it would answer READONLY to every write unless they are replaced.
    let old_master = set_up.master();
    let (set_up, switched_at) = tokio::task::spawn_blocking(move || {
        set_up.fail_over();
        wait_blocking(
            "the sentinels name a new master",
            Duration::from_secs(30),
            || {
                let master = set_up.master();
                (master != old_master && set_up.is_master(master) && !set_up.is_master(old_master))
                    .then_some(())
            },
        );
        (set_up, Instant::now())
    })
    .await
    .expect("failover completes");
    stream
        .wait_for_call(
            "a code is approved on the new master",
            switched_at,
            Duration::from_secs(15),
            |call| call.approved,
        )
        .await;
    let steady_from = Instant::now();
    stream
        .wait_for_call("more calls", steady_from, Duration::from_secs(10), |call| {
            call.ended >= steady_from + Duration::from_secs(1)
        })
        .await;
    let calls = stream.stop().await;

    // judge_outage also checks that nothing was answered wrongly; a manual
    // failover may cost no failed call at all, so only that part applies.
    let wrong: Vec<_> = calls.iter().filter(|call| call.wrong.is_some()).collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    let late_failures: Vec<_> = calls
        .iter()
        .filter(|call| call.started >= steady_from && call.error.is_some())
        .collect();
    assert!(
        late_failures.is_empty(),
        "after the switch: {late_failures:?}"
    );
    let failed = calls.iter().filter(|call| call.error.is_some()).count();
    println!(
        "MEASURED sentinel manual failover: {failed} of {} calls failed (UNAVAILABLE)",
        calls.len()
    );
    drop(set_up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_starts_while_no_sentinel_answers_and_fails_calls_unavailable() {
    let nobody = format!("redis://127.0.0.1:{}", free_port());
    let app = spawn_app_with_env(&[
        ("REDIS_SENTINEL_URLS", nobody.as_str()),
        ("REDIS_SENTINEL_MASTER", MASTER_NAME),
        ("OTP_REDIS_TIMEOUT_MS", "500"),
    ])
    .await;
    assert_eq!(app.health("").await, "NOT_SERVING");
    let started = Instant::now();
    let status = app.send(&unique_phone()).await.expect_err("no sentinel");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(app.sms.count(), 0, "nothing texted that was not stored");
}
