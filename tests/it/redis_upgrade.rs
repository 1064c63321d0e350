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
/// if a developer built it.
fn old_binary() -> Option<String> {
    if let Ok(path) = std::env::var("OTP_OLD_BINARY") {
        assert!(
            Path::new(&path).exists(),
            "OTP_OLD_BINARY={path} does not exist"
        );
        return Some(path);
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/old/otp-service");
    Path::new(path).exists().then(|| path.to_owned())
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
        eprintln!(
            "SKIPPED: no build of {UPGRADE_FROM} at target/old/otp-service (nor OTP_OLD_BINARY); \
             scripts/old-binary.sh builds it"
        );
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

/// The pumping guard's record before issue 30's prefix log (as `3003b89`
/// writes it: a sorted set of 24-byte members, token, source and subject
/// tag, and each number's latest send in a hash) is read by this version
/// until it expires: its sends are judged, their sources counted, and a
/// number's approval of a send it kept counts, beside this version's sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_judges_the_sends_the_previous_layout_kept() {
    use deadpool_redis::redis::AsyncCommands;
    use otp_service::{
        abuse::{GuardMode, PrefixRule, PumpingGuardSettings, SendSource},
        domain::{HmacSecret, PhoneNumber},
        server::open_store,
        store::{PrefixDecision, PrefixSender, PrefixVerdict},
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
    let numbers: Vec<_> = (0..5)
        .map(|_| PhoneNumber::parse(&unique_phone()).expect("a valid number"))
        .collect();
    let prefix = settings.prefix_of(&numbers[0]);
    let subjects: Vec<_> = numbers
        .iter()
        .map(|phone| secret.subject_key(phone))
        .collect();

    // Three sends the previous version counted, from sources 1, 2 and 3, to
    // the first three numbers, 5 s ago.
    let mut redis_conn = redis.connection().await;
    let tagged = format!("otp:{{pumping:{}}}", prefix.as_str());
    let (seconds, micros): (u64, u64) = deadpool_redis::redis::cmd("TIME")
        .query_async(&mut redis_conn)
        .await
        .expect("TIME");
    let sent_at = seconds * 1000 + micros / 1000 - 5_000;
    for (n, subject) in subjects.iter().take(3).enumerate() {
        let mut member = vec![n as u8 + 10; 8];
        member.extend_from_slice(&[n as u8 + 1; 8]);
        member.extend_from_slice(&subject.tag());
        let _: () = redis_conn
            .zadd(format!("{tagged}:sends"), &member, sent_at)
            .await
            .expect("ZADD");
        let _: () = redis_conn
            .hset(format!("{tagged}:latest"), &subject.tag()[..], &member)
            .await
            .expect("HSET");
    }
    // The first number approves the code the previous version sent it.
    store
        .count_prefix_approval(&prefix, &subjects[0], &rule)
        .await
        .expect("count_prefix_approval answers");

    // This version's send from a fourth source: three judged, too few.
    let count = |subject, source| {
        let store = &store;
        let prefix = &prefix;
        let rule = &rule;
        async move {
            store
                .count_prefix_send(prefix, rule, PrefixSender { subject, source })
                .await
                .expect("count_prefix_send answers")
        }
    };
    let decision = count(&subjects[3], SendSource([4; 8])).await;
    assert!(
        matches!(decision, PrefixDecision::Counted { .. }),
        "{decision:?}"
    );
    // Once that send is judged: four judged, one approved (25 %), the
    // unapproved from sources 2, 3 and 4.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let decision = count(&subjects[4], SendSource([5; 8])).await;
    assert_eq!(
        decision,
        PrefixDecision::Suspended {
            lift_in: rule.suspension,
            verdict: Some(PrefixVerdict {
                judged: 4,
                approved: 1
            }),
        }
    );
}
