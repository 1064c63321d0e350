//! What lands in Redis: one key per phone number (its code and send log),
//! one per `client_key`, the shared logs and the pumping guard's keys;
//! none reveals a phone, a code or a request key, and every one expires.

use deadpool_redis::redis::{self, AsyncCommands};
use otp_service::proto::{SendOtpRequest, VerifyOtpResult};

use crate::common::{RedisServer, TestApp, concurrent::wrong_code, unique_phone};

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

/// Whether `key` is `<prefix>:n<16 raw bytes>`, a number's record.
fn record(key: &[u8], prefix: &str) -> bool {
    key.len() == prefix.len() + 18
        && key.starts_with(prefix.as_bytes())
        && key[prefix.len()..prefix.len() + 2] == *b":n"
}

/// Whether `key` is `<prefix>:c<2 raw bytes>`, a bucket of client send logs
/// (the first 12 bits of the clients' digests).
fn client_bucket(key: &[u8], prefix: &str) -> bool {
    key.len() == prefix.len() + 4
        && key.starts_with(prefix.as_bytes())
        && key[prefix.len()..prefix.len() + 2] == *b":c"
        && key[prefix.len() + 3] & 0x0f == 0
}

/// `entries` less the one key of the deployment rather than of a number:
/// the marker saying when this layout first ran and whether an older
/// version's records could exist then (a time and a flag, no TTL: it must
/// outlive every record to keep saying so).
fn without_layout_marker(
    entries: Vec<(Vec<u8>, Vec<Vec<u8>>, i64)>,
    prefix: &str,
) -> Vec<(Vec<u8>, Vec<Vec<u8>>, i64)> {
    let marker = format!("{prefix}:layout");
    let (markers, others): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(key, _, _)| key == marker.as_bytes());
    assert_eq!(markers.len(), 1, "the layout marker");
    let fields = &markers[0].1;
    assert_eq!(fields.len(), 4, "since and legacy: {fields:?}");
    assert_eq!(
        (&fields[2][..], &fields[3][..]),
        (&b"legacy"[..], &b"0"[..]),
        "the database was empty at the first call: no older records to adopt"
    );
    others
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

    let prefix = "tenant7:otp";
    let entries = without_layout_marker(dump(&redis).await, prefix);
    let kinds = |suffix: &str| {
        entries
            .iter()
            .filter(|(key, _, _)| key.ends_with(suffix.as_bytes()))
            .count()
    };
    let of_kind = |kind: fn(&[u8], &str) -> bool| {
        entries
            .iter()
            .filter(|(key, _, _)| kind(key, prefix))
            .count()
    };
    assert_eq!(
        [
            of_kind(record),
            kinds("}:idempotency"),
            of_kind(client_bucket),
            kinds("}:sends"),
            kinds("}:latest"),
            kinds("}:verifies"),
        ],
        [2, 2, 1, 2, 0, 2],
        "per phone a record (code and send log) and an idempotency entry; one \
         client bucket; the service's log and the destination prefix's sends \
         (the pumping guard; no hash of each number's latest send: an approval \
         finds its send by the time the record kept); the anonymous and the \
         service's verify logs (the guesses named no client_key): {:?}",
        entries
            .iter()
            .map(|(key, ..)| name(key))
            .collect::<Vec<_>>()
    );
    assert_eq!(entries.len(), 9, "nothing else: {entries:?}");
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
                record(key, prefix)
                    || client_bucket(key, prefix)
                    || key.ends_with(b"sends")
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
    let remaining = without_layout_marker(dump(&redis).await, prefix);
    let mut states: Vec<u8> = remaining
        .iter()
        .filter(|(key, _, _)| record(key, prefix))
        .map(|(_, value, _)| value[0][0])
        .collect();
    states.sort_unstable();
    assert_eq!(states, [0, 3], "no code state and a lock");
}
