//! Redis as the shared store: replicas on one Redis behave like one service,
//! and what lands in Redis reveals neither phones nor codes and always expires.

use crate::common::{
    RedisServer, TestApp,
    concurrent::{RACE_SETTINGS, count, send_concurrently, verify_concurrently, wrong_code},
    unique_phone, wait_for,
};
use std::time::Duration;
use tokio::time::Instant;

use deadpool_redis::redis::{self, AsyncCommands};
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

/// Every key (raw bytes: a number's record is named by 16 raw bytes) and
/// its value, with its remaining TTL in milliseconds.
async fn dump(redis: &RedisServer) -> Vec<(Vec<u8>, Vec<Vec<u8>>, i64)> {
    let mut connection = redis.connection().await;
    let keys: Vec<Vec<u8>> = {
        let mut scan = connection.scan::<Vec<u8>>().await.expect("SCAN answers");
        let mut keys = Vec::new();
        while let Some(key) = scan.next_item().await {
            keys.push(key.expect("a key"));
        }
        keys
    };
    let mut entries = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .expect("TYPE");
        // A number's record and a client's send log are binary strings;
        // idempotency records are hashes; the shared send logs (and the
        // pumping guard's) are sorted sets of random tokens scored by time.
        let fields: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![connection.get(&key).await.expect("GET")],
            "hash" => connection.hgetall(&key).await.expect("HGETALL"),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut connection)
                .await
                .expect("ZRANGE"),
            other => panic!("{} holds an unexpected {other}", name(&key)),
        };
        let ttl: i64 = connection.pttl(&key).await.expect("PTTL");
        entries.push((key, fields, ttl));
    }
    entries
}

/// A key as text for messages, its raw bytes escaped.
fn name(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

/// Whether `key` is `<prefix>:<letter><16 raw bytes>`: a number's record
/// (`n`) or a client's packed send log (`c`).
fn packed(key: &[u8], prefix: &str, letter: u8) -> bool {
    key.len() == prefix.len() + 18
        && key.starts_with(prefix.as_bytes())
        && key[prefix.len()..prefix.len() + 2] == [b':', letter]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Whether `value` holds `code` as a token of its own: a 6-digit run inside
/// a hex subject key ("…ab523634cd…") is chance, not a stored code.
fn holds_code(value: &[u8], code: &str) -> bool {
    value
        .split(|byte| !byte.is_ascii_alphanumeric())
        .any(|token| token == code.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_neither_phone_nor_code_and_every_key_expires() {
    let redis = RedisServer::start().await;
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_REDIS_PREFIX", "tenant7:otp"),
            ("OTP_TTL_SECONDS", "60"),
            ("OTP_GRACE_SECONDS", "5"),
            ("OTP_MAX_ATTEMPTS", "2"),
            ("OTP_CLIENT_SEND_LIMIT", "10"),
            ("OTP_GLOBAL_SEND_LIMIT", "1000"),
        ])
        .spawn()
        .await;
    let lifetime_ms = 65_000;
    let phones = [unique_phone(), unique_phone()];
    // Every key kind: codes, phone / client / global send logs, idempotency
    // entries. The request keys must not appear in Redis either.
    let client_key = "203.0.113.77";
    let idempotency_keys = ["signup-alpha-7f3e", "signup-beta-9c1d"];
    let mut codes = Vec::new();
    for (phone, idempotency_key) in phones.iter().zip(idempotency_keys) {
        app.send_request(SendOtpRequest {
            phone_number: phone.clone(),
            client_key: client_key.into(),
            idempotency_key: idempotency_key.into(),
            ..Default::default()
        })
        .await
        .expect("SendOtp succeeds");
        codes.push(app.sms.last_code_for(phone).expect("an SMS was recorded"));
    }
    // One subject with a spent guess, one locked: the states that keep a
    // count or a lock must expire too.
    app.verify(&phones[0], &wrong_code(&codes[0]))
        .await
        .expect("answers");
    for _ in 0..2 {
        app.verify(&phones[1], &wrong_code(&codes[1]))
            .await
            .expect("answers");
    }

    let entries = dump(&redis).await;
    let prefix = "tenant7:otp";
    let kinds = |suffix: &str| {
        entries
            .iter()
            .filter(|(key, _, _)| key.ends_with(suffix.as_bytes()))
            .count()
    };
    let packed_kinds = |letter: u8| {
        entries
            .iter()
            .filter(|(key, _, _)| packed(key, prefix, letter))
            .count()
    };
    assert_eq!(
        [
            packed_kinds(b'n'),
            kinds("}:idempotency"),
            packed_kinds(b'c'),
            kinds("}:sends"),
            kinds("}:latest"),
            kinds("}:verifies"),
        ],
        [2, 2, 1, 2, 1, 2],
        "per phone a record (code and send log) and an idempotency entry; one \
         client log; the service's log and the destination prefix's sends and \
         each number's latest send there (the pumping guard); the anonymous and \
         the service's verify logs (the guesses named no client_key): {:?}",
        entries
            .iter()
            .map(|(key, ..)| name(key))
            .collect::<Vec<_>>()
    );
    assert_eq!(entries.len(), 10, "nothing else: {entries:?}");
    for (key, fields, ttl) in &entries {
        let key_name = name(key);
        assert!(key.starts_with(b"tenant7:otp:"), "prefix: {key_name}");
        if key.ends_with(b"}:idempotency") {
            assert!(
                *ttl > 0 && *ttl <= lifetime_ms,
                "{key_name} TTL {ttl} ms must be within TTL + grace"
            );
        } else {
            // The send limits must remember a day of sends (OTP_DAILY_SEND_LIMIT),
            // a number's record with them; the pumping guard's keys, its
            // window (an hour); the verify limits', theirs (10 min, a minute).
            assert!(
                packed(key, prefix, b'n')
                    || packed(key, prefix, b'c')
                    || key.ends_with(b"sends")
                    || key.ends_with(b"}:latest")
                    || key.ends_with(b"}:verifies"),
                "unexpected key {key_name}"
            );
            assert!(
                *ttl > 0 && *ttl <= 86_400_000,
                "{key_name} TTL {ttl} ms must be within the longest limit window"
            );
        }
        for request_key in idempotency_keys.iter().chain([&client_key]) {
            assert!(
                !contains(key, request_key.as_bytes()),
                "{key_name} contains {request_key}"
            );
            for value in fields {
                assert!(
                    !contains(value, request_key.as_bytes()),
                    "{key_name} has a value containing {request_key}"
                );
            }
        }
        for (phone, code) in phones.iter().zip(&codes) {
            let digits = phone.trim_start_matches('+');
            // The national part alone, too: a key must not hold it in any form.
            let national = &digits[1..];
            for secret in [digits, national] {
                assert!(
                    !contains(key, secret.as_bytes()),
                    "{key_name} contains {secret}"
                );
                for value in fields {
                    assert!(
                        !contains(value, secret.as_bytes()),
                        "{key_name} has a value containing {secret}"
                    );
                }
            }
            assert!(!holds_code(key, code), "{key_name} holds {code}");
            for value in fields {
                assert!(
                    !holds_code(value, code),
                    "{key_name} has a value holding {code}: {:?}",
                    String::from_utf8_lossy(value)
                );
            }
        }
    }

    // The right code is consumed with its code state: both records stay, for
    // their send logs (which must outlive codes), one with no code state
    // (first byte 0), the locked phone's locked (3).
    let approved = app.verify(&phones[0], &codes[0]).await.expect("answers");
    assert_eq!(approved.result(), VerifyOtpResult::Approved);
    let remaining = dump(&redis).await;
    let mut states: Vec<u8> = remaining
        .iter()
        .filter(|(key, _, _)| packed(key, prefix, b'n'))
        .map(|(_, value, _)| value[0][0])
        .collect();
    states.sort_unstable();
    assert_eq!(states, [0, 3], "no code state and a lock");
}

/// `calls=` of `command` in `INFO commandstats` (0 when never called).
async fn calls(redis: &RedisServer, command: &str) -> u64 {
    let mut connection = redis.connection().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .expect("INFO");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map(|n| n.parse().expect("a count"))
        .unwrap_or(0)
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
    // answers NOSCRIPT.
    assert_eq!(calls(&redis, "evalsha").await, 30 + 3);
    assert_eq!(
        calls(&redis, "eval").await,
        0,
        "never the script text per call"
    );
    assert_eq!(
        calls(&redis, "script|load").await,
        3,
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
    assert_eq!(calls(&redis, "script|load").await, 6);
    assert_eq!(calls(&redis, "evalsha").await, 33 + 9 + 3);
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
    // The first send loads its script; the guard's gauge, refreshed in the
    // background from the start, loads its own: two EVALSHA each (NOSCRIPT,
    // then the retry). After both the gauge keeps still for 15 s.
    app.send_and_read_code(&unique_phone()).await;
    wait_for(
        "the send's and the gauge's first calls",
        Duration::from_secs(10),
        || async {
            let loaded = calls(&redis, "script|load").await;
            (loaded == 2 && calls(&redis, "evalsha").await == 4).then_some(())
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
         send logs and the destination prefix's sends and latest sends live in \
         database 3"
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
