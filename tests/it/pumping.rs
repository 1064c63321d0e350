//! The SMS-pumping guard: a destination prefix whose codes are never verified
//! is suspended on every replica, with the exact time it lifts; a prefix whose
//! users verify keeps working; `monitor` only counts. On every store.

use std::time::Duration;

use crate::{
    common::{
        RedisServer, StoreKind, TEST_SECRET, TestApp, binary::ServiceProcess, connect,
        unique_prefix,
    },
    metrics::{sample, scrape},
};
use deadpool_redis::redis;
use otp_service::proto::admin::ListSuspendedPrefixesRequest;
use otp_service::proto::{
    SendOtpRequest, VerifyOtpRequest, VerifyOtpResult, otp_service_client::OtpServiceClient,
};
use tokio::time::Instant;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A code lives 1 s + 1 s grace, so a send is judged 2 s after it was made;
/// the other caps are lifted so that only the guard refuses. These cases
/// pump from one source (the anonymous one), so one source is enough for a
/// verdict here; `pumping_sources.rs` runs the default of three.
/// The pumping loops send and verify as fast as the machine allows until a
/// verdict, which needs sends older than a code's lifetime: on a fast
/// machine that is more than the default shared send and verify caps allow.
pub(crate) const GUARD_VARS: [(&str, &str); 8] = [
    ("OTP_TTL_SECONDS", "1"),
    ("OTP_GRACE_SECONDS", "1"),
    ("OTP_PUMPING_WINDOW_SECONDS", "120"),
    ("OTP_ANONYMOUS_SEND_LIMIT", "100000"),
    ("OTP_GLOBAL_SEND_LIMIT", "0"),
    ("OTP_ANONYMOUS_VERIFY_LIMIT", "1000000"),
    ("OTP_GLOBAL_VERIFY_LIMIT", "0"),
    ("OTP_PUMPING_MIN_SOURCES", "1"),
];
/// `OTP_PUMPING_MIN_SENDS`'s default: sends judged before a verdict.
pub(crate) const MIN_SENDS: usize = 20;
/// Numbers of the pumped range: +1 628 2xx xxxx, prefix `+16282` (4 digits).
pub(crate) const PUMPED_PREFIX: &str = "+16282";
/// Numbers whose users verify: +1 650 2xx xxxx, prefix `+16502`.
const VERIFIED_AREA: &str = "650";

pub(crate) fn number(area: &str, n: usize) -> String {
    format!("+1{area}2{n:06}")
}

/// Replicas sharing one store: two on every Redis set-up, one in memory.
pub(crate) struct Replicas {
    pub(crate) apps: Vec<TestApp>,
    /// Owned here so that it outlives both replicas.
    _redis: Option<RedisServer>,
}

impl Replicas {
    pub(crate) async fn start(store: StoreKind, extra: &[(&str, &str)]) -> Self {
        let mut vars = GUARD_VARS.to_vec();
        vars.extend_from_slice(extra);
        let replica = || TestApp::builder().env(&vars);
        match store {
            StoreKind::Memory => Self {
                apps: vec![replica().spawn().await],
                _redis: None,
            },
            StoreKind::Redis => {
                let redis = RedisServer::start().await;
                let apps = vec![
                    replica().redis(&redis).spawn().await,
                    replica().redis(&redis).spawn().await,
                ];
                Self {
                    apps,
                    _redis: Some(redis),
                }
            }
            StoreKind::RedisCluster | StoreKind::RedisSentinel => {
                // One key prefix for both, so they share the set-up's data.
                let prefix = unique_prefix();
                let shared = [("OTP_REDIS_PREFIX", prefix.as_str())];
                let apps = vec![
                    replica().store(store).env(&shared).spawn().await,
                    replica().store(store).env(&shared).spawn().await,
                ];
                Self { apps, _redis: None }
            }
        }
    }

    /// The replica that serves call `n` (round robin).
    pub(crate) fn at(&self, n: usize) -> &TestApp {
        &self.apps[n % self.apps.len()]
    }

    /// Sends to the pumped range (never verified) and to the verified range
    /// (each code verified at once), alternating replicas, until a pumped
    /// send is refused; returns that refusal, when it came, and how many
    /// pumped sends were admitted before it.
    pub(crate) async fn pump_until_refused(&self) -> (Status, Instant, usize) {
        let give_up = Instant::now() + Duration::from_secs(30);
        for n in 0.. {
            assert!(Instant::now() < give_up, "no suspension after {n} sends");
            send_and_verify(self.at(n + 1), &number(VERIFIED_AREA, n)).await;
            if let Err(status) = self.at(n).send(&number("628", n)).await {
                return (status, Instant::now(), n);
            }
        }
        unreachable!("the loop returns or panics")
    }
}

pub(crate) async fn send_and_verify(app: &TestApp, phone: &str) {
    let code = app.send_and_read_code(phone).await;
    let verified = app.verify(phone, &code).await.expect("VerifyOtp answers");
    assert_eq!(verified.result(), VerifyOtpResult::Approved, "{phone}");
}

/// Asserts a DESTINATION_SUSPENDED refusal naming `prefix`; returns its RetryInfo delay.
pub(crate) fn assert_suspended(status: &Status, prefix: &str) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "DESTINATION_SUSPENDED");
    assert_eq!(info.domain, "otp.v1");
    assert_eq!(info.metadata["prefix"], prefix);
    assert!(status.message().contains(prefix), "{status:?}");
    details
        .retry_info()
        .and_then(|retry| retry.retry_delay)
        .expect("RetryInfo with a delay")
}

/// Two replicas share each Redis topology; the memory store is one
/// process's own, so there the one replica that holds it is every replica.
async fn unverified_prefix_is_suspended_on_every_replica_sharing_the_store(store: StoreKind) {
    let replicas = Replicas::start(store, &[("OTP_PUMPING_SUSPENSION_SECONDS", "600")]).await;
    let (refusal, _, admitted) = replicas.pump_until_refused().await;
    assert!(
        admitted >= MIN_SENDS,
        "suspended after {admitted} sends, below the minimum volume"
    );
    println!("MEASURED {store:?}: suspended after {admitted} unverified sends");
    assert_eq!(
        assert_suspended(&refusal, PUMPED_PREFIX),
        Duration::from_secs(600),
        "the suspending call tells the whole suspension"
    );
    for (n, app) in replicas.apps.iter().enumerate() {
        let status = app
            .send(&number("628", 900_000 + n))
            .await
            .expect_err("every replica refuses the suspended prefix");
        let delay = assert_suspended(&status, PUMPED_PREFIX);
        assert!(
            (Duration::from_secs(590)..=Duration::from_secs(600)).contains(&delay),
            "{delay:?}"
        );
        send_and_verify(app, &number(VERIFIED_AREA, 900_000 + n)).await;
    }
    let texted_pumped = replicas
        .apps
        .iter()
        .flat_map(|app| app.sms.sent())
        .filter(|sms| sms.to_e164.starts_with(PUMPED_PREFIX))
        .count();
    assert_eq!(texted_pumped, admitted, "no SMS for a refused send");
}

async fn suspension_lifts_on_time(store: StoreKind) {
    let replicas = Replicas::start(store, &[("OTP_PUMPING_SUSPENSION_SECONDS", "3")]).await;
    let (refusal, suspended_at, _) = replicas.pump_until_refused().await;
    assert_eq!(
        assert_suspended(&refusal, PUMPED_PREFIX),
        Duration::from_secs(3)
    );
    let mut probe = 0;
    let lifted_after = loop {
        probe += 1;
        match replicas
            .at(probe)
            .send(&number("628", 800_000 + probe))
            .await
        {
            Ok(_) => break suspended_at.elapsed(),
            Err(status) => {
                assert_suspended(&status, PUMPED_PREFIX);
                assert!(
                    suspended_at.elapsed() < Duration::from_secs(10),
                    "still suspended after {:?}",
                    suspended_at.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(
        (Duration::from_millis(2_500)..Duration::from_secs(6)).contains(&lifted_after),
        "a 3 s suspension lifted after {lifted_after:?}"
    );
    println!("MEASURED {store:?}: a 3 s suspension lifted after {lifted_after:?}");
    // The counts started afresh: the next sends are admitted, not re-judged.
    for n in 0..3 {
        replicas
            .at(n)
            .send(&number("628", 700_000 + n))
            .await
            .expect("a lifted prefix starts afresh");
    }
}

async fn monitor_mode_never_refuses(store: StoreKind) {
    let replicas = Replicas::start(store, &[("OTP_PUMPING_GUARD", "monitor")]).await;
    let started = Instant::now();
    // Long enough for the first sends to be judged several times over.
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(4) || n < 2 * MIN_SENDS {
        replicas
            .at(n)
            .send(&number("628", n))
            .await
            .expect("monitor never refuses");
        n += 1;
    }
    // The guard was judging all along: the store holds the verdict it did
    // not enforce, for every replica (the admin API lists it).
    let listed = replicas
        .at(0)
        .admin()
        .list_suspended_prefixes(ListSuspendedPrefixesRequest {})
        .await
        .expect("the admin API lists suspensions")
        .into_inner()
        .suspended_prefixes;
    assert!(
        listed
            .iter()
            .any(|suspended| suspended.prefix == PUMPED_PREFIX),
        "monitor counted and judged the pumped prefix: {listed:?}"
    );
}

async fn failed_deliveries_are_not_read_as_pumping(store: StoreKind) {
    let replicas = Replicas::start(store, &[]).await;
    for app in &replicas.apps {
        app.sms.fail_sends(true);
    }
    // Undelivered codes, long enough that the first ones would be judged.
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(4) || n < 2 * MIN_SENDS {
        let status = replicas
            .at(n)
            .send(&number("628", n))
            .await
            .expect_err("the gateway is down");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        n += 1;
    }
    for app in &replicas.apps {
        app.sms.fail_sends(false);
    }
    for extra in 0..3 {
        replicas
            .at(extra)
            .send(&number("628", n + extra))
            .await
            .expect("sends that never went out are not held against the prefix");
    }
}

for_each_store!(
    unverified_prefix_is_suspended_on_every_replica_sharing_the_store,
    suspension_lifts_on_time,
    monitor_mode_never_refuses,
    failed_deliveries_are_not_read_as_pumping,
);

/// The guard's approval write is best effort: when the store refuses it
/// (here an ACL user barred from the guard's keys), VerifyOtp still
/// approves, and the failure is logged and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_succeeds_when_the_guard_cannot_count_the_approval() {
    let redis = RedisServer::start().await;
    let mut admin = redis.connection().await;
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("no-guard")
        .arg("on")
        .arg(">no-guard-pw")
        .arg("~otp:{[0-9a-f]*}:*")
        .arg("~otp:n*")
        .arg("~otp:c*")
        .arg("~otp:{anonymous}:*")
        .arg("~otp:{global}:*")
        .arg("+@all")
        .query_async::<()>(&mut admin)
        .await
        .expect("ACL user created");
    let sender = TestApp::builder()
        .redis(&redis)
        .env(&[("OTP_PUMPING_GUARD", "off")])
        .spawn()
        .await;
    let url = format!("redis://no-guard:no-guard-pw@127.0.0.1:{}", redis.port());
    let (verifier, metrics_addr) = ServiceProcess::start_with_metrics(&[
        ("REDIS_URL", &url),
        ("OTP_HMAC_SECRET", TEST_SECRET),
        ("OTP_SMS_GATEWAY", "console"),
    ]);
    let phone = number(VERIFIED_AREA, 1);
    let code = sender.send_and_read_code(&phone).await;
    let mut client = OtpServiceClient::new(connect(verifier.addr).await);
    let verified = client
        .verify_otp(VerifyOtpRequest {
            phone_number: phone.clone(),
            code,
            ..Default::default()
        })
        .await
        .expect("VerifyOtp answers")
        .into_inner();
    assert_eq!(verified.result(), VerifyOtpResult::Approved);

    let line = tokio::task::block_in_place(|| {
        verifier.wait_for_stderr(
            "could not count an approval",
            Duration::from_secs(5),
            |line| Some(line.to_owned()),
        )
    });
    assert!(line.contains("+16502"), "names the prefix: {line}");
    assert!(
        !line.contains("phone="),
        "no masked number beside it: {line}"
    );
    let failures = r#"otp_pumping_guard_errors_total{operation="count_prefix_approval"}"#;
    assert_eq!(sample(&scrape(&metrics_addr).await, failures), 1.0);
}

/// `monitor` on the real binary: every send goes out, and the would-be
/// suspension is counted once, listed in the gauge and logged by prefix,
/// never by number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_mode_counts_logs_and_lists_the_prefix() {
    let mut vars = GUARD_VARS.to_vec();
    vars.extend([("OTP_PUMPING_GUARD", "monitor"), ("OTP_LOG_FORMAT", "json")]);
    let (service, metrics_addr) = ServiceProcess::start_with_metrics(&vars);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    let counter = r#"otp_pumping_suspensions_total{country="US"}"#;
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while sample(&scrape(&metrics_addr).await, counter) < 1.0 {
        assert!(Instant::now() < give_up, "no suspension counted");
        client
            .send_otp(SendOtpRequest {
                phone_number: number("628", n),
                ..Default::default()
            })
            .await
            .expect("monitor never refuses");
        n += 1;
    }
    assert!(n > MIN_SENDS, "counted after {n} sends");
    for extra in 0..3 {
        client
            .send_otp(SendOtpRequest {
                phone_number: number("628", n + extra),
                ..Default::default()
            })
            .await
            .expect("still sending while the prefix would be suspended");
    }
    let give_up = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = scrape(&metrics_addr).await;
        if sample(&page, "otp_pumping_suspended_prefixes") == 1.0 {
            break page;
        }
        assert!(
            Instant::now() < give_up,
            "the gauge never listed it: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sample(&page, counter), 1.0, "counted once: {page}");

    let line = tokio::task::block_in_place(|| {
        service.wait_for_stderr("would be suspended", Duration::from_secs(5), |line| {
            Some(line.to_owned())
        })
    });
    assert!(line.contains(r#""level":"WARN""#), "{line}");
    assert!(line.contains(r#""prefix":"+16282""#), "{line}");
    assert!(line.contains(r#""country":"US""#), "{line}");
    assert!(
        !line.contains(r#""span""#),
        "no masked number beside the prefix: {line}"
    );
    assert!(!line.contains("+1628200"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_destination_is_an_audit_event() {
    let events = [("OTP_EVENTS_STREAM", crate::events::STREAM)];
    let replicas = Replicas::start(StoreKind::Redis, &events).await;
    let (refusal, _, admitted) = replicas.pump_until_refused().await;
    assert_suspended(&refusal, PUMPED_PREFIX);
    let redis = replicas._redis.as_ref().expect("private redis");
    // Per round one event each for the verified number's send and approval
    // and the pumped send: `admitted` sent, then the refused one.
    let written =
        crate::events::entries(&redis.url(), crate::events::STREAM_KEY, 3 * (admitted + 1)).await;
    let last = written
        .iter()
        .rev()
        .find(|event| event["event"] == "destination_suspended")
        .expect("a destination_suspended event");
    assert_eq!(last["limit"], "pumping_guard");
    let refused =
        otp_service::domain::PhoneNumber::parse(&number("628", admitted)).expect("valid number");
    assert_eq!(last["masked_phone"], refused.masked());
    assert!(
        last.values().all(|value| !value.contains(PUMPED_PREFIX)),
        "{last:?}"
    );
}
