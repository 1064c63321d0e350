//! A rolling upgrade to the compact Redis layout (issue 30): a replica of
//! the version before it (`652cea2`, its codes in `…:code` hashes and its
//! send logs in sorted sets) beside one of this version, on one Redis. What
//! the old one stored is adopted by the new one: no code is lost, no guess
//! budget and no send limit starts again.
//!
//! Needs the old binary: `scripts/old-binary.sh` builds it into
//! `target/old/otp-service` (or set `OTP_OLD_BINARY`). Without it the test
//! says so and passes: building a second version of the service is minutes
//! of CPU that every `cargo test` would otherwise pay.

use std::{path::Path, time::Duration};

use otp_service::proto::{
    SendOtpRequest, TimeLeftRequest, VerifyOtpRequest, VerifyOtpResult,
    otp_service_client::OtpServiceClient,
};
use tokio::task::block_in_place;
use tonic::{Code, transport::Channel};

use crate::common::{RedisServer, binary::ServiceProcess, connect, unique_phone};

/// The last version with the layout before issue 30.
const UPGRADE_FROM: &str = "652cea2";
const SECRET: &str = "upgrade-secret-upgrade-secret-upgrade-secret";

/// The old build: `OTP_OLD_BINARY`, which must then exist (`scripts/test.sh`
/// builds it and sets it, so CI never skips), else `target/old/otp-service`
/// if a developer built it; without either the calling test says it is
/// skipped.
fn old_binary() -> Option<String> {
    if let Ok(path) = std::env::var("OTP_OLD_BINARY") {
        assert!(
            Path::new(&path).exists(),
            "OTP_OLD_BINARY={path} does not exist"
        );
        return Some(path);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/old/otp-service");
    let found = Path::new(path).exists().then(|| path.to_owned());
    if found.is_none() {
        eprintln!(
            "SKIPPED: no build of {UPGRADE_FROM} at target/old/otp-service (nor OTP_OLD_BINARY); \
             scripts/old-binary.sh builds it"
        );
    }
    found
}

/// One replica: its process (its console gateway prints the codes) and a client.
struct Replica {
    process: ServiceProcess,
    client: OtpServiceClient<Channel>,
}

impl Replica {
    async fn start(program: Option<&str>, vars: &[(&str, &str)]) -> Self {
        let process = block_in_place(|| match program {
            Some(program) => ServiceProcess::start_program(program, vars),
            None => ServiceProcess::start(vars),
        });
        let client = OtpServiceClient::new(connect(process.addr).await);
        Self { process, client }
    }

    async fn send(&self, phone: &str, client_key: &str) -> Result<(), Code> {
        let request = SendOtpRequest {
            phone_number: phone.to_owned(),
            client_key: client_key.to_owned(),
            ..Default::default()
        };
        let mut client = self.client.clone();
        client
            .send_otp(request)
            .await
            .map(|_| ())
            .map_err(|status| status.code())
    }

    /// The code its console gateway printed last for `phone`.
    fn code_for(&self, phone: &str) -> String {
        let prefix = format!("SMS to {phone}: ");
        self.process
            .wait_for_stdout(&prefix, Duration::from_secs(5), |line| {
                line.strip_prefix(&prefix)?
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|run| run.len() == 6)
                    .map(str::to_owned)
            })
    }

    async fn verify(&self, phone: &str, code: &str) -> (VerifyOtpResult, u32) {
        let mut client = self.client.clone();
        let answer = client
            .verify_otp(VerifyOtpRequest {
                phone_number: phone.to_owned(),
                code: code.to_owned(),
                ..Default::default()
            })
            .await
            .expect("VerifyOtp answers")
            .into_inner();
        (answer.result(), answer.attempts_remaining)
    }

    async fn pending(&self, phone: &str) -> bool {
        let mut client = self.client.clone();
        client
            .time_left(TimeLeftRequest {
                phone_number: phone.to_owned(),
            })
            .await
            .expect("TimeLeft answers")
            .into_inner()
            .pending
    }
}

fn wrong(code: &str) -> String {
    code.chars()
        .map(|digit| if digit == '0' { '1' } else { '0' })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_replica_beside_a_new_one_loses_no_code_and_resets_no_limit() {
    let Some(old_binary) = old_binary() else {
        return;
    };
    let redis = RedisServer::start().await;
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("OTP_HMAC_SECRET", SECRET),
        ("OTP_SMS_GATEWAY", "console"),
        ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
        ("OTP_SEND_LIMIT", "2"),
        ("OTP_DAILY_SEND_LIMIT", "2"),
        ("OTP_CLIENT_SEND_LIMIT", "2"),
        ("OTP_MAX_ATTEMPTS", "5"),
    ];
    let old = Replica::start(Some(&old_binary), &vars).await;
    let new = Replica::start(None, &vars).await;

    // A code the old replica sent verifies on the new one, with the guess
    // spent on the old one still spent.
    let phone = unique_phone();
    old.send(&phone, "upgrade-a").await.expect("old sends");
    let code = old.code_for(&phone);
    assert_eq!(
        old.verify(&phone, &wrong(&code)).await,
        (VerifyOtpResult::Incorrect, 4)
    );
    assert!(
        new.pending(&phone).await,
        "the new replica sees the old code"
    );
    assert_eq!(
        new.verify(&phone, &wrong(&code)).await,
        (VerifyOtpResult::Incorrect, 3),
        "the budget goes on where the old replica left it"
    );
    assert_eq!(new.verify(&phone, &code).await.0, VerifyOtpResult::Approved);
    assert_eq!(
        old.verify(&phone, &code).await.0,
        VerifyOtpResult::Expired,
        "approved once, for both"
    );

    // The number's sends counted by the old replica still count.
    let counted = unique_phone();
    for client_key in ["upgrade-b", "upgrade-c"] {
        old.send(&counted, client_key).await.expect("old sends");
    }
    assert_eq!(
        new.send(&counted, "upgrade-d").await,
        Err(Code::ResourceExhausted),
        "the per-number limit did not start again"
    );

    // So do the client_key's.
    for _ in 0..2 {
        old.send(&unique_phone(), "upgrade-e")
            .await
            .expect("old sends");
    }
    assert_eq!(
        new.send(&unique_phone(), "upgrade-e").await,
        Err(Code::ResourceExhausted),
        "the per-client limit did not start again"
    );
}

/// Sizes of the pumping guard's sorted sets and hashes named `…}:<kind>`.
async fn guard_sizes(redis: &RedisServer, kind: &str) -> u64 {
    use deadpool_redis::redis::{AsyncCommands, cmd};
    let mut conn = redis.connection().await;
    let keys: Vec<String> = cmd("KEYS")
        .arg(format!("otp:{{pumping:*}}:{kind}"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    let mut size = 0;
    for key in keys {
        let kind: String = cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("TYPE");
        let n: u64 = if kind == "hash" {
            conn.hlen(&key).await.expect("HLEN")
        } else {
            conn.zcard(&key).await.expect("ZCARD")
        };
        size += n;
    }
    size
}

/// The pumping guard across the upgrade: the send of a code the old
/// replica sent is found by the latest-send hash it still writes, the send
/// of one this version sent by the time the number's record kept (this
/// version writes no such hash); both are approved when their codes are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_replica_approves_the_guard_sends_of_either_version() {
    let Some(old_binary) = old_binary() else {
        return;
    };
    let redis = RedisServer::start().await;
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("OTP_HMAC_SECRET", SECRET),
        ("OTP_SMS_GATEWAY", "console"),
        ("OTP_PUMPING_GUARD", "enforce"),
    ];
    let old = Replica::start(Some(&old_binary), &vars).await;
    let new = Replica::start(None, &vars).await;

    let (by_old, by_new) = (unique_phone(), unique_phone());
    old.send(&by_old, "guard-a").await.expect("old sends");
    new.send(&by_new, "guard-b").await.expect("new sends");
    assert_eq!(guard_sizes(&redis, "sends").await, 2, "both sends counted");
    assert_eq!(
        guard_sizes(&redis, "latest").await,
        1,
        "only the old replica wrote its send's latest-send entry"
    );

    for phone in [&by_old, &by_new] {
        let code = if phone == &by_old {
            old.code_for(phone)
        } else {
            new.code_for(phone)
        };
        assert_eq!(new.verify(phone, &code).await.0, VerifyOtpResult::Approved);
    }
    // Approvals are counted in the background.
    crate::common::wait_for("both sends approved", Duration::from_secs(5), || async {
        (guard_sizes(&redis, "approved").await == 2).then_some(())
    })
    .await;
    // (The old send's latest-send entry may stay, when its time matched the
    // record's: it names a send no longer unapproved, so no approval uses it
    // again, and it expires with its hash.)
    assert_eq!(
        guard_sizes(&redis, "sends").await,
        0,
        "none left unapproved"
    );
    assert!(
        guard_sizes(&redis, "latest").await <= 1,
        "this version wrote no latest-send entry"
    );
}

/// A send an older version counted at its own clock (a millisecond off the
/// time its number's record kept) is found by that version's latest-send
/// hash, as it wrote it: raw (versions up to `5022918`, since issue 30) or
/// in hex with a `token:source:subject` member (before issue 30).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_falls_back_to_the_latest_send_an_old_version_wrote() {
    use deadpool_redis::redis::{AsyncCommands, cmd};
    use otp_service::{
        abuse::{GuardMode, PrefixRule, PumpingGuardSettings},
        domain::{HmacSecret, PhoneNumber},
        server::open_store,
    };

    let redis = RedisServer::start().await;
    let config = crate::common::store_set_up::test_config(&[
        ("REDIS_URL".to_owned(), redis.url()),
        ("OTP_SMS_GATEWAY".to_owned(), "console".to_owned()),
    ]);
    let store = open_store(&config.store, config.memory_max_entries).expect("the store opens");
    let rule = PrefixRule {
        window: Duration::from_secs(60),
        judge_after: Duration::from_secs(1),
        min_sends: 4,
        min_approved_percent: 50,
        suspension: Duration::from_secs(60),
        min_sources: 3,
        trust_for: Duration::ZERO,
    };
    let settings = PumpingGuardSettings {
        mode: GuardMode::Enforce,
        prefix_digits: 4,
        window: rule.window,
        min_sends: rule.min_sends,
        min_approved_percent: rule.min_approved_percent,
        suspension: rule.suspension,
        min_sources: rule.min_sources,
        trust_for: rule.trust_for,
    };
    let secret = HmacSecret::new(b"guard-upgrade");
    let numbers: Vec<_> = (0..2)
        .map(|_| PhoneNumber::parse(&unique_phone()).expect("a valid number"))
        .collect();
    let prefix = settings.prefix_of(&numbers[0]);
    let subjects: Vec<_> = numbers
        .iter()
        .map(|phone| secret.subject_key(phone))
        .collect();
    let tagged = format!("otp:{{pumping:{}}}", prefix.as_str());
    let (sends, latest) = (format!("{tagged}:sends"), format!("{tagged}:latest"));

    let mut conn = redis.connection().await;
    let (seconds, micros): (u64, u64) = cmd("TIME").query_async(&mut conn).await.expect("TIME");
    let sent_at = seconds * 1000 + micros / 1000 - 5_000;
    // The first number's send as issue 30 wrote it, the second's as before.
    let mut raw = vec![10; 8];
    raw.extend_from_slice(&[1; 8]);
    raw.extend_from_slice(&subjects[0].tag());
    let hex_subject = hex::encode(subjects[1].tag());
    let hex = format!("{}:{}:{hex_subject}", "0b".repeat(8), "02".repeat(8));
    let _: () = conn.zadd(&sends, &raw, sent_at).await.expect("ZADD");
    let _: () = conn.zadd(&sends, &hex, sent_at).await.expect("ZADD");
    let _: () = conn
        .hset(&latest, &subjects[0].tag()[..], &raw)
        .await
        .expect("HSET");
    let _: () = conn.hset(&latest, &hex_subject, &hex).await.expect("HSET");

    for subject in &subjects {
        // Their records kept the send a millisecond later than the guard.
        store
            .count_prefix_approval(&prefix, subject, &rule, Some(sent_at + 1))
            .await
            .expect("count_prefix_approval answers");
    }
    let left: u64 = conn.zcard(&sends).await.expect("ZCARD");
    let approved: Vec<(Vec<u8>, u64)> = conn
        .zrange_withscores(format!("{tagged}:approved"), 0, -1)
        .await
        .expect("ZRANGE");
    assert_eq!(left, 0, "both sends approved");
    let mut tokens: Vec<_> = approved.iter().map(|(token, _)| token.clone()).collect();
    tokens.sort();
    assert_eq!(tokens, [vec![10; 8], b"0b".repeat(8)], "each by its token");
    assert!(
        approved.iter().all(|(_, at)| *at == sent_at),
        "at its send time"
    );
    let entries: u64 = conn.hlen(&latest).await.expect("HLEN");
    assert_eq!(entries, 0, "each entry used up");
}
