//! Redis Sentinel as the store: a real master, replica and three sentinels on
//! loopback. When the master dies (or is demoted), calls fail UNAVAILABLE
//! until the sentinels promote the replica, then reach the new master with no
//! restart of the service. (The behaviour suite runs on a sentinel set-up
//! too: `for_each_store!`.)

use std::time::Duration;

use crate::common::{
    RedisSentinels, SHARED_CAPS_LIFTED, TestApp,
    concurrent::RACE_SETTINGS,
    failover::{
        ConversationStream, Recovery, stop_after_a_steady_second, wait_for_health,
        wait_for_recovery,
    },
    redis_nodes::{free_port, query, wait_blocking},
    redis_sentinel::{DOWN_AFTER_MS, MASTER_NAME},
    unique_phone,
    unreachable_store::assert_starts_and_fails_calls_unavailable,
    wait_for,
};
use deadpool_redis::redis;
use tokio::time::Instant;

/// A server on `set_up`, texting as many numbers as a test needs.
async fn app_on(set_up: &RedisSentinels) -> TestApp {
    TestApp::builder()
        .sentinels(set_up)
        .env(&SHARED_CAPS_LIFTED)
        .spawn()
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
    let Recovery {
        first_approval,
        serving_at,
        outage,
        ..
    } = wait_for_recovery(stream, &app, killed_at, promoted_at).await;
    println!(
        "MEASURED sentinel failover (down-after {DOWN_AFTER_MS} ms; set-up ready in \
         {ready_in:?}): first UNAVAILABLE {:?} after SIGKILL, NOT_SERVING after {:?}, new \
         master named after {:?}, last UNAVAILABLE {:?}, first approval after the failover \
         {:?}, SERVING {:?}; {} of {} calls after the kill failed, slowest {:?}",
        outage.first_failure,
        not_serving_at - killed_at,
        promoted_at - killed_at,
        outage.last_failure,
        first_approval - killed_at,
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

    // The old master stays up, still a master for seconds until the
    // sentinels demote it, and loses whatever is written to it meanwhile.
    // The service must stop writing there as soon as the sentinels name the
    // new master, not when the old one is finally demoted.
    let old_master = set_up.master();
    let (set_up, switched_at, new_master) = tokio::task::spawn_blocking(move || {
        set_up.fail_over();
        let new_master = wait_blocking(
            "the sentinels name a new master",
            Duration::from_secs(30),
            || {
                let master = set_up.master();
                (master != old_master && set_up.is_master(master)).then_some(master)
            },
        );
        (set_up, Instant::now(), new_master)
    })
    .await
    .expect("failover completes");
    let set_up = std::sync::Arc::new(set_up);
    let moved = wait_for(
        "writes go to the new master only",
        Duration::from_secs(10),
        || {
            let set_up = std::sync::Arc::clone(&set_up);
            let stream = &stream;
            async move {
                // INFO unread (None) is "not yet", never a match of 0 == 0.
                let old_before = set_up.evalsha_calls(old_master)?;
                let new_before = set_up.evalsha_calls(new_master)?;
                let since = Instant::now();
                stream
                    .wait_for_call("approvals", since, Duration::from_secs(10), |call| {
                        call.approved && call.ended >= since + Duration::from_millis(300)
                    })
                    .await;
                let old_after = set_up.evalsha_calls(old_master)?;
                let new_after = set_up.evalsha_calls(new_master)?;
                (old_after == old_before && new_after > new_before).then(Instant::now)
            }
        },
    )
    .await;
    assert!(
        set_up.is_master(old_master),
        "the old master was still a master when the service had left it, or this test proves \
         nothing"
    );
    let calls = stop_after_a_steady_second(stream, "after the switch").await;

    // judge_outage also checks that nothing was answered wrongly; a manual
    // failover may cost no failed call at all, so only that part applies.
    let wrong: Vec<_> = calls.iter().filter(|call| call.wrong.is_some()).collect();
    assert!(wrong.is_empty(), "{wrong:?}");
    let failed = calls.iter().filter(|call| call.error.is_some()).count();
    println!(
        "MEASURED sentinel manual failover: the service wrote only to the new master {:?} \
         after the sentinels named it (checked over 300 ms windows); {failed} of {} calls \
         failed (UNAVAILABLE)",
        moved - switched_at,
        calls.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_starts_while_no_sentinel_answers_and_fails_calls_unavailable() {
    let nobody = format!("redis://127.0.0.1:{}", free_port());
    assert_starts_and_fails_calls_unavailable(&[
        ("REDIS_SENTINEL_URLS", nobody.as_str()),
        ("REDIS_SENTINEL_MASTER", MASTER_NAME),
    ])
    .await;
}

/// The store timeout governs the connections to the master too: a master
/// that holds every write for 3 s (`CLIENT PAUSE ... WRITE`, which lets the
/// sentinels' PINGs through, so no failover) is waited for under a 20 s
/// timeout. (deadpool-redis's sentinel manager used redis-rs's default of
/// 500 ms per reply; under it this call failed UNAVAILABLE. The margin
/// either side is seconds, not ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_slower_than_the_drivers_default_is_waited_for_within_the_store_timeout() {
    let (set_up, _) = own_set_up().await;
    let app = TestApp::builder()
        .sentinels(&set_up)
        .env(&RACE_SETTINGS)
        .env(&SHARED_CAPS_LIFTED)
        .spawn()
        .await;
    // A pooled connection to the master exists before the pause.
    app.send(&unique_phone())
        .await
        .expect("sent before the pause");
    let paused: Option<String> = query(
        set_up.master(),
        redis::cmd("CLIENT").arg("PAUSE").arg(3000).arg("WRITE"),
    );
    assert_eq!(paused.as_deref(), Some("OK"), "master paused");
    let sent_at = Instant::now();
    app.send(&unique_phone())
        .await
        .expect("sent through a master slower than 500 ms");
    // The pause held the send's write: slower than the driver's default.
    let took = sent_at.elapsed();
    assert!(
        took > Duration::from_millis(500),
        "the pause took effect: the send took {took:?}"
    );
    assert_eq!(app.sms.count(), 2);
}

/// Store calls on a sentinel-managed master lend pooled connections as on one
/// server: no PING per call (deadpool-redis's sentinel pool checked every
/// connection with a PING at each checkout, a second round trip per call).
/// The sentinels PING the master about once a second each, so the allowance
/// grows with the time the calls took; the calls alone would be 60 PINGs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_on_a_sentinel_master_do_not_ping_it_each_time() {
    let (set_up, _) = own_set_up().await;
    let app = app_on(&set_up).await;
    let master = set_up.master();
    // The pool's first connection is made (and checked) outside the window.
    let phone = unique_phone();
    app.send_and_read_code(&phone).await;
    let pings_before = set_up.command_calls(master, "ping").expect("INFO");
    let started = Instant::now();
    let mut calls = 0;
    for _ in 0..20 {
        let phone = unique_phone();
        let code = app.send_and_read_code(&phone).await;
        app.time_left(&phone).await.expect("answers");
        app.verify(&phone, &code).await.expect("answers");
        calls += 3;
    }
    let elapsed = started.elapsed().as_secs();
    let pings = set_up.command_calls(master, "ping").expect("INFO") - pings_before;
    // Three sentinels, a PING a second each, plus the health check and slack.
    let allowance = 4 * (elapsed + 2);
    assert!(
        allowance < calls,
        "{calls} calls took {elapsed} s: too slow to tell PINGs per call from the sentinels'"
    );
    assert!(
        pings <= allowance,
        "{pings} PINGs on the master during {calls} calls in {elapsed} s (allowance {allowance})"
    );
}
