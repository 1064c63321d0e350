//! Redis Cluster as the store: a real 3-master, 3-replica cluster on
//! loopback. Keys spread over every master while each phone's keys stay in
//! one slot; scripts reach every master; and a killed master costs only
//! UNAVAILABLE answers until its replica takes over, with no restart of the
//! service. (The behaviour suite runs on a cluster too: `for_each_store!`.)

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::{
    RedisCluster, SHARED_CAPS_LIFTED, TestApp,
    concurrent::RACE_SETTINGS,
    failover::{ConversationStream, Recovery, wait_for_health, wait_for_recovery},
    redis_cluster::NODE_TIMEOUT_MS,
    redis_nodes::{free_port, query},
    unique_phone, unique_prefix,
    unreachable_store::assert_starts_and_fails_calls_unavailable,
};
use deadpool_redis::redis;
use futures::{StreamExt, stream};
use otp_service::proto::VerifyOtpResult;
use tokio::time::Instant;

/// A server on `cluster` under key prefix `prefix`, texting as many numbers
/// as a test needs.
async fn app_on(cluster: &RedisCluster, prefix: &str) -> TestApp {
    TestApp::builder()
        .redis_cluster(cluster)
        .env(&[("OTP_REDIS_PREFIX", prefix)])
        .env(&SHARED_CAPS_LIFTED)
        .spawn()
        .await
}

async fn shared_cluster() -> &'static RedisCluster {
    tokio::task::spawn_blocking(RedisCluster::shared)
        .await
        .expect("cluster starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_1000_phones_land_on_all_three_masters_one_slot_per_phone() {
    let cluster = shared_cluster().await;
    let prefix = unique_prefix();
    let app = TestApp::builder()
        .redis_cluster(cluster)
        .env(&[("OTP_REDIS_PREFIX", &prefix)])
        .env(&RACE_SETTINGS)
        .env(&SHARED_CAPS_LIFTED)
        .spawn()
        .await;
    let phones: Vec<String> = (0..1000).map(|_| unique_phone()).collect();
    let sent: Vec<bool> = stream::iter(&phones)
        .map(|phone| async { app.send(phone).await.is_ok() })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(sent.iter().all(|ok| *ok), "every SendOtp succeeds");

    let pattern = format!("{prefix}:*");
    let keys = tokio::task::spawn_blocking(move || cluster.keys_by_master(&pattern))
        .await
        .expect("keys listed");
    assert_eq!(keys.len(), 3, "three masters: {:?}", keys.keys());
    let mut codes_per_master = Vec::new();
    for (master, keys) in &keys {
        // A phone's code and send log are one key, `<prefix>:n<16 raw
        // bytes>`: one slot, so no script on it can span two nodes. (The
        // shared logs and the destination prefixes' keys have tags of their own.)
        let records = keys
            .iter()
            .filter(|key| {
                key.len() == prefix.len() + 18 && key.starts_with(format!("{prefix}:n").as_bytes())
            })
            .count();
        assert!(records > 0, "master {master} holds records");
        codes_per_master.push(records);
    }
    assert_eq!(codes_per_master.iter().sum::<usize>(), 1000);
    assert!(
        codes_per_master.iter().all(|n| *n >= 200),
        "roughly a third each: {codes_per_master:?}"
    );
    println!("MEASURED 1000 phones' code records per master: {codes_per_master:?}");

    for phone in &phones[..30] {
        let code = app.sms.last_code_for(phone).expect("texted");
        let verified = app.verify(phone, &code).await.expect("answers");
        assert_eq!(verified.result(), VerifyOtpResult::Approved);
    }
}

/// The script TimeLeft runs, which no background task of the server runs.
const TIME_LEFT_SCRIPT: &str = include_str!("../../src/store/lua/pending_lifetime.lua");

/// Whether each master of `cluster` has the TimeLeft script cached.
fn time_left_script_by_master(cluster: &RedisCluster) -> Vec<(u16, bool)> {
    let hash = redis::Script::new(TIME_LEFT_SCRIPT).get_hash().to_owned();
    cluster
        .masters()
        .into_iter()
        .map(|port| {
            let exists: Vec<bool> =
                query(port, redis::cmd("SCRIPT").arg("EXISTS").arg(&hash)).expect("SCRIPT EXISTS");
            (port, exists == [true])
        })
        .collect()
}

/// On a cluster of its own: on the shared one, another test's TimeLeft
/// could load the script again before this test's first call met NOSCRIPT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_loaded_again_on_every_master_after_a_script_flush() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .expect("cluster starts");
    let app = app_on(&cluster, "otp").await;
    let before = unique_phone();
    let code = app.send_and_read_code(&before).await;
    assert_eq!(
        app.verify(&before, &code).await.expect("answers").result(),
        VerifyOtpResult::Approved
    );

    let (cluster, flushed) = tokio::task::spawn_blocking(move || {
        cluster.flush_scripts();
        let cached = time_left_script_by_master(&cluster);
        (cluster, cached)
    })
    .await
    .expect("scripts flushed");
    assert!(
        flushed.iter().all(|(_, cached)| !cached),
        "the flush emptied every master's script cache: {flushed:?}"
    );
    // Enough phones that every master meets NOSCRIPT at least once
    // (30 random slots miss one of three masters with odds ~1e-5).
    for _ in 0..30 {
        let phone = unique_phone();
        let code = app.send_and_read_code(&phone).await;
        let left = app.time_left(&phone).await.expect("TimeLeft answers");
        assert!(left.pending);
        assert_eq!(
            app.verify(&phone, &code).await.expect("answers").result(),
            VerifyOtpResult::Approved
        );
    }
    let (_cluster, reloaded) = tokio::task::spawn_blocking(move || {
        let cached = time_left_script_by_master(&cluster);
        (cluster, cached)
    })
    .await
    .expect("SCRIPT EXISTS read");
    assert!(
        reloaded.iter().all(|(_, cached)| *cached),
        "this server's TimeLeft calls loaded it again on every master: {reloaded:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_fails_calls_unavailable_until_its_replica_takes_over() {
    let started = Instant::now();
    let mut cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .expect("cluster starts");
    let cluster_ready = started.elapsed();
    let app = app_on(&cluster, "otp").await;
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

    let master = cluster.masters()[0];
    let replica = cluster.replica_of(master);
    cluster.kill(master);
    let killed_at = Instant::now();
    let not_serving_at = wait_for_health(&app, "NOT_SERVING", Duration::from_secs(10)).await;
    let (cluster, promoted_at) = tokio::task::spawn_blocking(move || {
        crate::common::redis_nodes::wait_blocking(
            "the replica is promoted",
            Duration::from_secs(30),
            || cluster.is_master(replica).then_some(()),
        );
        let promoted_at = Instant::now();
        cluster.wait_until_healthy(Duration::from_secs(30));
        (cluster, promoted_at)
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
        "MEASURED cluster failover (node timeout {NODE_TIMEOUT_MS} ms; cluster of 6 ready in \
         {cluster_ready:?}): first UNAVAILABLE {:?} after SIGKILL, NOT_SERVING after {:?}, \
         replica promoted after {:?}, last UNAVAILABLE {:?}, first approval after the failover \
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
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_starts_while_no_seed_node_answers_and_fails_calls_unavailable() {
    let nobody = format!("redis://127.0.0.1:{}", free_port());
    assert_starts_and_fails_calls_unavailable(&[("REDIS_CLUSTER_URLS", nobody.as_str())]).await;
}

/// A seed node that answers only `delay` after each connection: a loopback
/// proxy to the node on `port` that holds every accepted connection for
/// `delay` before forwarding it. (The wait is the stand-in's behaviour, not a
/// guess at how long something takes.)
async fn slow_seed(port: u16, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // Counted once the delay is over: a connection the driver
                // kept waiting for instead of giving up on.
                counter.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut node) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut node).await;
                }
            });
        }
    });
    (format!("redis://{address}"), served)
}

/// The store timeout governs the cluster driver's node connections too: a
/// seed that takes 3 s to answer is waited for under a 20 s timeout. (The
/// driver's own default gives up on a node after 1 s; under it every call
/// here failed UNAVAILABLE, the margin either side is seconds, not ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_slower_than_the_drivers_default_is_waited_for_within_the_store_timeout() {
    let cluster = shared_cluster().await;
    let (seed, served) = slow_seed(cluster.masters()[0], Duration::from_secs(3)).await;
    let prefix = unique_prefix();
    let app = TestApp::builder()
        .env(&[
            ("REDIS_CLUSTER_URLS", seed.as_str()),
            ("OTP_REDIS_PREFIX", prefix.as_str()),
        ])
        .env(&RACE_SETTINGS)
        .env(&SHARED_CAPS_LIFTED)
        .spawn()
        .await;
    app.send(&unique_phone())
        .await
        .expect("sent through a seed slower than 1 s");
    assert_eq!(app.sms.count(), 1);
    assert!(
        served.load(Ordering::SeqCst) >= 1,
        "the driver waited out the seed's delay at least once"
    );
}
