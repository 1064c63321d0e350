//! README, "Audit events": "An event is lost when the queue is full […]
//! (a shutdown waits up to 2 s for the queue) […] Every loss is counted in
//! `otp_events_dropped_total{reason}` (`queue_full`, …) and logged at most
//! once per 10 s". The queue holds 8192 events.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use otp_service::{
    Application, domain::PhoneNumber, error::Error, otp::SendRequest, sms::SmsGateway,
};
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{
    RecordingGateway, RedisServer, TEST_SECRET, binary::ServiceProcess, connect,
    store_set_up::test_config, unique_phone, wait_for,
};

/// `events::sink::QUEUE_CAPACITY`: events that may wait for the writer.
const QUEUE_CAPACITY: usize = 8192;
/// Most events the writer takes out of the queue for one write.
const BATCH: usize = 256;
/// Events made while the writer is stuck: more than the queue and a batch hold.
const EVENTS: usize = QUEUE_CAPACITY + BATCH + 300;
/// How long a shutdown waits for queued events (`EVENTS_FLUSH_WAIT`).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// The settings of a server writing events to `redis`, with every number
/// outside GB refused by the country policy (which needs no store, so such
/// a send is answered, and makes a `refused` event, while Redis is frozen).
fn events_vars(redis: &RedisServer, redis_timeout_ms: &str) -> Vec<(String, String)> {
    [
        ("REDIS_URL", redis.url()),
        ("OTP_HMAC_SECRET", TEST_SECRET.to_owned()),
        ("OTP_SMS_GATEWAY", "console".to_owned()),
        ("OTP_EVENTS_STREAM", "events".to_owned()),
        ("OTP_ALLOWED_COUNTRIES", "GB".to_owned()),
        ("OTP_REDIS_TIMEOUT_MS", redis_timeout_ms.to_owned()),
    ]
    .map(|(name, value)| (name.to_owned(), value))
    .to_vec()
}

/// Log lines written in this test's thread (the writer task runs there too:
/// a current-thread runtime), so the count the writer logs can be read
/// without a process-wide subscriber.
#[derive(Clone, Default)]
struct ThreadLog(Arc<Mutex<Vec<u8>>>);

impl ThreadLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl std::io::Write for ThreadLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadLog {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The number after `name=` in `line`.
fn count_in(line: &str, name: &str) -> Option<usize> {
    let rest = &line[line.find(&format!("{name}="))? + name.len() + 1..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// With the writer stuck on a frozen Redis, events past the 8192 the queue
/// holds (and the one batch the writer took) are dropped, and the writer's
/// drop report counts them as `queue_full` — the same count
/// `otp_events_dropped_total{reason="queue_full"}` is given. (Metrics are
/// not recorded in the test process; 8 000+ gRPC calls to the binary took
/// 16 s on a loaded 2-core machine, so the flow is called directly.)
#[tokio::test]
async fn events_past_a_full_queue_are_dropped_and_counted_as_queue_full() {
    let log = ThreadLog::default();
    let _in_this_thread = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish(),
    );
    let redis = RedisServer::start().await;
    let gateway: Arc<dyn SmsGateway> = Arc::new(RecordingGateway::default());
    let app = Application::build_with_gateway(test_config(&events_vars(&redis, "300")), gateway)
        .await
        .expect("server builds");
    let flow = app.flow();
    redis.freeze().await;

    // One number will do: the country policy refuses it without counting.
    let phone = PhoneNumber::parse(&unique_phone()).expect("a valid number");
    for _ in 0..EVENTS {
        let refused = flow
            .send(SendRequest {
                phone: &phone,
                client_key: None,
                idempotency_key: None,
                caller: None,
                locale: None,
                channel: Default::default(),
            })
            .await;
        assert!(
            matches!(refused, Err(Error::CountryNotAllowed { .. })),
            "{refused:?}"
        );
    }
    let report = wait_for("the drop report", Duration::from_secs(5), || {
        let text = log.text();
        async move {
            text.lines()
                .find(|line| line.contains("audit events dropped"))
                .map(str::to_owned)
        }
    })
    .await;
    redis.resume();
    let queue_full = count_in(&report, "queue_full").expect("a queue_full count");
    let most = EVENTS - QUEUE_CAPACITY;
    assert!(
        (most - BATCH..=most).contains(&queue_full),
        "{EVENTS} events, the queue holds {QUEUE_CAPACITY} and the stuck writer at most \
         {BATCH}: {report}"
    );
}

/// The writer is stuck on a frozen Redis (10 s timeout) with queued events:
/// SIGTERM waits the 2 s for them — not the Redis timeout — then says they
/// were left unwritten and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_waits_2_s_for_queued_events() {
    let redis = RedisServer::start().await;
    let vars = events_vars(&redis, "10000");
    let mut service = tokio::task::block_in_place(|| {
        ServiceProcess::start(&crate::common::sms_standins::pairs(&vars))
    });
    let mut client =
        otp_service::proto::otp_service_client::OtpServiceClient::new(connect(service.addr).await);
    redis.freeze().await;
    for _ in 0..3 {
        client
            .send_otp(otp_service::proto::SendOtpRequest {
                phone_number: unique_phone(),
                ..Default::default()
            })
            .await
            .expect_err("a US number, only GB allowed");
    }

    let signalled = Instant::now();
    let status = tokio::task::block_in_place(|| service.terminate());
    let exited_after = signalled.elapsed();
    redis.resume();
    assert!(status.success(), "{status:?}");
    assert!(
        (SHUTDOWN_WAIT..SHUTDOWN_WAIT + Duration::from_secs(3)).contains(&exited_after),
        "a shutdown waits 2 s for the queue: exited {exited_after:?} after SIGTERM"
    );
    let log = service.stop();
    assert!(
        log.iter()
            .any(|line| line.contains("audit events still queued at shutdown were not written")),
        "{log:#?}"
    );
}
