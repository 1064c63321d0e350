//! Audit events in a Redis Stream: every decision appended in order with a
//! digest, country and masked form of the number (never the number or the
//! code); the stream lives under the store's key prefix; a number's digest
//! survives a key rotation; a stream that cannot be written never fails a
//! call and is counted.

use std::{collections::HashMap, time::Duration};

use tokio::time::Instant;

/// The writer logs drops at most once per this (`src/events/writer.rs`).
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

use crate::common::{
    RedisServer, TEST_SECRET, TestApp, binary::ServiceProcess, connect, holds_code, wait_for,
};
use deadpool_redis::redis::{self, AsyncCommands};
use otp_service::proto::{
    SendOtpRequest, VerifyOtpRequest, VerifyOtpResult, otp_service_client::OtpServiceClient,
};
use tonic::Code;

/// `OTP_EVENTS_STREAM` in these tests.
pub(crate) const STREAM: &str = "events";
/// The stream's key under the default `OTP_REDIS_PREFIX`.
pub(crate) const STREAM_KEY: &str = "otp:events";

pub(crate) type Entry = HashMap<String, String>;

/// Every entry of the stream at `key`, oldest first, as text.
async fn read_stream(
    connection: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> Option<Vec<Entry>> {
    let reply: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(connection)
        .await
        .ok()?;
    let entries = reply.into_iter().map(|(_id, fields)| {
        let pairs = fields.chunks_exact(2);
        pairs
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect()
    });
    Some(entries.collect())
}

/// The entries of the stream at `key` once there are at least `count`.
pub(crate) async fn entries(redis_url: &str, key: &str, count: usize) -> Vec<Entry> {
    let client = redis::Client::open(redis_url).expect("redis URL");
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    wait_for("the audit events", Duration::from_secs(5), || {
        let mut connection = connection.clone();
        async move {
            let entries = read_stream(&mut connection, key).await?;
            (entries.len() >= count).then_some(entries)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_is_appended_in_order_without_the_number_or_the_code() {
    let redis = RedisServer::start().await;
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_EVENTS_STREAM", STREAM),
            ("OTP_REPLICA_ID", "replica-a"),
        ])
        .spawn()
        .await;
    let phone = "+14155550191";
    let send = SendOtpRequest {
        phone_number: phone.into(),
        client_key: "checkout-web".into(),
        ..Default::default()
    };
    app.send_request(send.clone()).await.expect("sent");
    let code = app.sms.last_code_for(phone).expect("texted");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let guesses = [
        (wrong, VerifyOtpResult::Incorrect),
        (code.as_str(), VerifyOtpResult::Approved),
        (code.as_str(), VerifyOtpResult::Expired),
    ];
    for (guess, expected) in guesses {
        let answer = app.verify(phone, guess).await.expect("answered");
        assert_eq!(answer.result(), expected);
    }
    let refused = app.send_request(send).await.expect_err("cooldown");
    assert_eq!(refused.code(), Code::ResourceExhausted);

    let events = entries(&redis.url(), STREAM_KEY, 4).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str()).collect();
    // A guess with nothing pending makes no event (only a metric): anyone
    // may make as many as the verify limits allow.
    assert_eq!(kinds, ["sent", "incorrect", "approved", "refused"]);
    let digest = &events[0]["phone_digest"];
    assert_eq!(digest.len(), 32, "a keyed digest");
    for event in &events {
        assert_eq!(&event["phone_digest"], digest, "one number: {event:?}");
        assert_eq!(event["country"], "US");
        assert_eq!(event["masked_phone"], "+1******0191");
        assert_eq!(event["replica"], "replica-a");
        assert!(
            event["time"]
                .parse::<u64>()
                .is_ok_and(|ms| ms > 1_700_000_000_000)
        );
        for value in event.values() {
            assert!(!value.contains("4155550191"), "number in {event:?}");
            // As a run of digits of its own: `time` is 13 digits that may
            // hold any six by chance.
            assert!(!holds_code(value, &code), "code in {event:?}");
        }
    }
    assert_eq!(events[0]["provider"], "custom", "the test gateway");
    assert_eq!(events[0]["channel"], "sms");
    assert_eq!(events[1]["attempts_remaining"], "4");
    assert_eq!(events[3]["limit"], "phone_resend_cooldown");
    assert_eq!(events[0].get("caller"), events[3].get("caller"));
    assert_eq!(events[0].get("caller").map(String::len), Some(32));
    assert_eq!(
        events[2].get("caller"),
        None,
        "VerifyOtp names no client key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_under_two_prefixes_on_one_redis_keep_their_events_apart() {
    let redis = RedisServer::start().await;
    let tenant = |prefix: &'static str| {
        TestApp::builder().redis(&redis).env(&[
            ("OTP_REDIS_PREFIX", prefix),
            ("OTP_REPLICA_ID", prefix),
            ("OTP_EVENTS_STREAM", STREAM),
        ])
    };
    let (a, b) = (
        tenant("tenant-a").spawn().await,
        tenant("tenant-b").spawn().await,
    );
    a.send("+14155550195").await.expect("sent by a");
    b.send("+14155550196").await.expect("sent by b");
    b.send("+14155550197").await.expect("sent by b");

    let of_a = entries(&redis.url(), "tenant-a:events", 1).await;
    let of_b = entries(&redis.url(), "tenant-b:events", 2).await;
    assert_eq!(of_a.len(), 1, "{of_a:?}");
    assert_eq!(of_a[0]["replica"], "tenant-a");
    assert_eq!(of_a[0]["masked_phone"], "+1******0195");
    assert_eq!(of_b.len(), 2, "{of_b:?}");
    assert!(of_b.iter().all(|event| event["replica"] == "tenant-b"));
    let client = redis::Client::open(redis.url()).expect("redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let unprefixed: bool = connection.exists(STREAM).await.expect("EXISTS");
    assert!(!unprefixed, "no stream outside the prefixes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numbers_digest_is_the_same_before_during_and_after_a_key_rotation() {
    const OLD: &str = "old-secret-old-secret-old-secret-0001";
    const NEW: &str = "new-secret-new-secret-new-secret-0002";
    const NEWER: &str = "newer-secret-newer-secret-newer-0003";
    // The second rotation: NEW and OLD, newest first.
    const NEWER_PREVIOUS: &str =
        "new-secret-new-secret-new-secret-0002,old-secret-old-secret-old-secret-0001";
    let redis = RedisServer::start().await;
    let replica = |id: &'static str, secret: &'static str, previous: &'static str| {
        let mut vars = vec![
            ("OTP_REPLICA_ID", id),
            ("OTP_EVENTS_STREAM", STREAM),
            ("OTP_HMAC_SECRET", secret),
        ];
        if !previous.is_empty() {
            vars.push(("OTP_HMAC_PREVIOUS_SECRETS", previous));
        }
        TestApp::builder().redis(&redis).env(&vars).spawn()
    };
    let before = replica("before", OLD, "").await;
    let during = replica("during", NEW, OLD).await;
    let after = replica("after", NEWER, NEWER_PREVIOUS).await;
    let phone = "+14155550198";

    let code = before.send_and_read_code(phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    during.verify(phone, wrong).await.expect("answered");
    let approved = after.verify(phone, &code).await.expect("answered");
    assert_eq!(approved.result(), VerifyOtpResult::Approved);

    let events = entries(&redis.url(), STREAM_KEY, 3).await;
    // Each replica writes its own events in the background: the stream
    // orders them per replica, not across replicas.
    let mut by: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["replica"].as_str(), e["event"].as_str()))
        .collect();
    by.sort_unstable();
    assert_eq!(
        by,
        [
            ("after", "approved"),
            ("before", "sent"),
            ("during", "incorrect")
        ]
    );
    assert!(
        events
            .iter()
            .all(|event| event["phone_digest"] == events[0]["phone_digest"]),
        "one digest across the rotation: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_stream_fails_no_call_and_is_counted_and_logged() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    // A plain string where the stream should be: every XADD fails (WRONGTYPE).
    let client = redis::Client::open(url.as_str()).expect("redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let () = connection
        .set(STREAM_KEY, "not a stream")
        .await
        .expect("SET");

    let started = Instant::now();
    let (service, metrics_addr) = ServiceProcess::start_with_metrics(&[
        ("REDIS_URL", url.as_str()),
        ("OTP_HMAC_SECRET", TEST_SECRET),
        ("OTP_SMS_GATEWAY", "console"),
        ("OTP_EVENTS_STREAM", STREAM),
    ]);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    for phone in ["+14155550192", "+14155550193", "+14155550194"] {
        let send = SendOtpRequest {
            phone_number: phone.into(),
            ..Default::default()
        };
        client.send_otp(send).await.expect("the call succeeds");
        let verify = VerifyOtpRequest {
            phone_number: phone.into(),
            code: "000000".into(),
            ..Default::default()
        };
        client.verify_otp(verify).await.expect("the call succeeds");
    }

    let _ = rustls::crypto::ring::default_provider().install_default();
    let dropped = wait_for("the dropped events counted", Duration::from_secs(5), || {
        let url = format!("http://{metrics_addr}/metrics");
        async move {
            let page = reqwest::get(url).await.ok()?.text().await.ok()?;
            let dropped = page.lines().find_map(|line| {
                line.strip_prefix("otp_events_dropped_total{reason=\"stream_unwritable\"} ")?
                    .parse::<f64>()
                    .ok()
            })?;
            (dropped >= 6.0).then_some(dropped)
        }
    })
    .await;
    assert_eq!(dropped, 6.0, "three sends and three guesses");
    let logged = service.wait_for_stderr("audit events dropped", Duration::from_secs(5), |line| {
        Some(line.to_owned())
    });
    assert!(logged.contains("WRONGTYPE"), "{logged}");
    let lines = service.stderr();
    let drop_lines = lines
        .iter()
        .filter(|line| line.contains("audit events dropped"))
        .count();
    // At most one line per interval the process has lived (10 s,
    // `DROP_LOG_INTERVAL` in src/events/writer.rs): exactly one unless a
    // busy machine stretched the run past an interval.
    let intervals = 1 + started.elapsed().as_secs() / DROP_LOG_INTERVAL.as_secs();
    assert!(
        (1..=intervals).contains(&(drop_lines as u64)),
        "{drop_lines} lines in {intervals} interval(s): {lines:?}"
    );
}

/// The ids of the stream's entries (milliseconds of Redis's clock), oldest first.
async fn entry_times(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<u64> {
    let reply: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(connection)
        .await
        .expect("XRANGE");
    reply
        .iter()
        .map(|(id, _)| {
            id.split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .expect("an entry id")
        })
        .collect()
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_never_holds_events_older_than_its_age_bound() {
    let redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).expect("redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    // Left by an earlier run long ago: trimmed at startup, before any write.
    let _: String = redis::cmd("XADD")
        .arg(STREAM_KEY)
        .arg("1000-0")
        .arg("event")
        .arg("ancient")
        .query_async(&mut connection)
        .await
        .expect("XADD an old entry");
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_EVENTS_STREAM", STREAM),
            ("OTP_EVENTS_MAX_AGE_SECONDS", "2"),
        ])
        .spawn()
        .await;
    // The bound, plus the trim interval (the bound itself when shorter than
    // 10 s), plus a second for a loaded machine.
    let oldest_allowed = || now_ms().saturating_sub(2_000 + 2_000 + 1_000);
    wait_for("the old entry trimmed", Duration::from_secs(5), || {
        let mut connection = connection.clone();
        async move {
            let times = entry_times(&mut connection, STREAM_KEY).await;
            (!times.contains(&1000)).then_some(())
        }
    })
    .await;

    app.send("+14155550199").await.expect("sent");
    let written = wait_for("the sent event", Duration::from_secs(5), || {
        let mut connection = connection.clone();
        async move {
            let times = entry_times(&mut connection, STREAM_KEY).await;
            times.first().copied()
        }
    })
    .await;
    // Then, with no further event to trigger a write, it ages out on its own,
    // and at no look is anything older than the bound there.
    wait_for("the event aged out", Duration::from_secs(10), || {
        let mut connection = connection.clone();
        async move {
            let times = entry_times(&mut connection, STREAM_KEY).await;
            let bound = oldest_allowed();
            assert!(
                times.iter().all(|at| *at >= bound),
                "{times:?} older than {bound}"
            );
            times.is_empty().then_some(())
        }
    })
    .await;
    assert!(now_ms() >= written + 2_000, "not trimmed before its age");
}
