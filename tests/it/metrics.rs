//! Prometheus metrics on the real binary: scraped after known traffic, every
//! counter moved by exactly the traffic's amount, and no number leaked.

use std::time::Duration;

use crate::common::{RedisServer, binary::ServiceProcess, connect, wait_for};
use otp_service::proto::{
    CancelOtpRequest, SendOtpRequest, TimeLeftRequest, VerifyOtpRequest,
    otp_service_client::OtpServiceClient,
};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

/// The Prometheus text page served at `addr`.
pub(crate) async fn scrape(addr: &str) -> String {
    // reqwest is built without a default TLS provider (the service installs ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape answers")
        .text()
        .await
        .expect("text page")
}

/// The value of the sample `name{labels}` in a Prometheus text page (0 if absent).
pub(crate) fn sample(page: &str, name_and_labels: &str) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name_and_labels)
                .then(|| value.parse().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_the_traffic_and_carry_no_phone_numbers() {
    let (service, metrics_addr) = ServiceProcess::start_with_metrics(&[]);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    let phone = "+14155550177";
    let send = |phone: &str| SendOtpRequest {
        phone_number: phone.into(),
        ..Default::default()
    };
    let verify = |code: &str| VerifyOtpRequest {
        phone_number: phone.into(),
        code: code.into(),
        ..Default::default()
    };

    client.send_otp(send(phone)).await.expect("sent");
    let code = service.wait_for_stdout("the console SMS", Duration::from_secs(5), |line| {
        line.strip_prefix("SMS to +14155550177: ")?
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .map(str::to_owned)
    });
    client.send_otp(send(phone)).await.expect_err("cooldown");
    client
        .send_otp(send("not a phone"))
        .await
        .expect_err("invalid");
    let wrong = crate::common::concurrent::wrong_code(&code);
    client.verify_otp(verify(&wrong)).await.expect("incorrect");
    client.verify_otp(verify(&code)).await.expect("approved");
    client.verify_otp(verify(&code)).await.expect("expired");

    let page = scrape(&metrics_addr).await;

    let expected = [
        (r#"otp_sends_total{result="sent",channel="sms"}"#, 1.0),
        (
            r#"otp_sends_total{result="rate_limited",channel="sms"}"#,
            1.0,
        ),
        (
            r#"otp_sends_total{result="invalid_argument",channel="sms"}"#,
            1.0,
        ),
        (
            r#"otp_send_limit_refusals_total{limit="phone_resend_cooldown"}"#,
            1.0,
        ),
        (r#"otp_verifies_total{result="incorrect"}"#, 1.0),
        (r#"otp_verifies_total{result="approved"}"#, 1.0),
        (r#"otp_verifies_total{result="expired"}"#, 1.0),
        (
            r#"otp_grpc_requests_total{method="SendOtp",code="OK",caller="anonymous"}"#,
            1.0,
        ),
        (
            r#"otp_grpc_requests_total{method="SendOtp",code="RESOURCE_EXHAUSTED",caller="anonymous"}"#,
            1.0,
        ),
        (
            r#"otp_grpc_requests_total{method="SendOtp",code="INVALID_ARGUMENT",caller="anonymous"}"#,
            1.0,
        ),
        (
            r#"otp_grpc_requests_total{method="VerifyOtp",code="OK",caller="anonymous"}"#,
            3.0,
        ),
        (
            r#"otp_store_operation_duration_seconds_count{operation="verify_and_consume"}"#,
            3.0,
        ),
        (
            r#"otp_store_operation_duration_seconds_count{operation="put_code"}"#,
            1.0,
        ),
        // The first send is counted in the phone's log, the bucket of sends
        // without client_key and the service-wide log; the second is refused
        // by the phone's own.
        (
            r#"otp_store_operation_duration_seconds_count{operation="record_send"}"#,
            4.0,
        ),
        (
            r#"otp_store_operation_duration_seconds_count{operation="count_prefix_send"}"#,
            1.0,
        ),
        (
            r#"otp_sms_gateway_duration_seconds_count{provider="console"}"#,
            1.0,
        ),
        (
            r#"otp_sms_provider_sends_total{provider="console",channel="sms",result="accepted"}"#,
            1.0,
        ),
        ("otp_store_up", 1.0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&page, series), value, "{series} in:\n{page}");
    }
    assert!(
        page.contains("otp_sms_provider_breaker_state{provider=\"console\"} 0"),
        "each provider's breaker is a gauge from the start:\n{page}"
    );
    assert!(!page.contains("4155550177"), "no phone number in metrics");
    assert!(
        !crate::common::holds_code(&page, &code),
        "no code in metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_every_method_and_a_store_outage_are_counted() {
    let mut redis = RedisServer::start().await;
    let gateway = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&gateway)
        .await;
    let sms_url = format!("{}/api/v1/gateway/devices/d/send-sms", gateway.uri());
    let (service, metrics_addr) = ServiceProcess::start_with_metrics(&[
        ("OTP_HMAC_SECRET", crate::common::TEST_SECRET),
        ("REDIS_URL", &redis.url()),
        ("SMS_SENDER_API", &sms_url),
        ("TEXTBEE_API_KEY", "tb_test_key"),
        ("OTP_SMS_MAX_RETRIES", "0"),
    ]);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    let phone = "+14155550178";
    client
        .send_otp(SendOtpRequest {
            phone_number: phone.into(),
            ..Default::default()
        })
        .await
        .expect_err("the gateway is down");
    client
        .time_left(TimeLeftRequest {
            phone_number: phone.into(),
        })
        .await
        .expect("TimeLeft answers");
    client
        .cancel_otp(CancelOtpRequest {
            phone_number: phone.into(),
        })
        .await
        .expect("CancelOtp answers");

    let page = wait_for("the store is up", Duration::from_secs(10), || async {
        let page = scrape(&metrics_addr).await;
        (sample(&page, "otp_store_up") == 1.0).then_some(page)
    })
    .await;
    let expected = [
        (
            r#"otp_sms_gateway_errors_total{provider="textbee",kind="unavailable"}"#,
            1.0,
        ),
        (
            r#"otp_sends_total{result="gateway_error",channel="sms"}"#,
            1.0,
        ),
        (
            r#"otp_grpc_requests_total{method="SendOtp",code="UNAVAILABLE",caller="anonymous"}"#,
            1.0,
        ),
        (
            r#"otp_grpc_requests_total{method="TimeLeft",code="OK",caller="anonymous"}"#,
            1.0,
        ),
        (
            r#"otp_grpc_requests_total{method="CancelOtp",code="OK",caller="anonymous"}"#,
            1.0,
        ),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&page, series), value, "{series} in:\n{page}");
    }

    redis.kill();
    wait_for(
        "otp_store_up drops to 0",
        Duration::from_secs(10),
        || async {
            let page = scrape(&metrics_addr).await;
            page.lines()
                .any(|line| line == "otp_store_up 0")
                .then_some(())
        },
    )
    .await;
}

/// Every counter whose labels are a closed set is on the first scrape at 0,
/// so dashboards show 0 rather than "No data" and `rate()` works at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_with_known_labels_are_exported_at_zero_from_the_start() {
    use otp_service::{abuse::LimitKind, error::Error, metrics as names, sms::Channel};

    let (_service, metrics_addr) = ServiceProcess::start_with_metrics(&[]);
    let page = scrape(&metrics_addr).await;
    let mut expected = Vec::new();
    for result in std::iter::once("sent").chain(Error::KINDS) {
        for channel in Channel::ALL {
            expected.push(format!(
                "{}{{result=\"{result}\",channel=\"{channel}\"}}",
                names::SENDS
            ));
        }
    }
    for kind in Error::VERIFY_KINDS {
        expected.push(format!("{}{{result=\"{kind}\"}}", names::VERIFIES));
    }
    let verify_results = ["approved", "incorrect", "expired", "locked"];
    for result in verify_results {
        expected.push(format!("{}{{result=\"{result}\"}}", names::VERIFIES));
    }
    for limit in LimitKind::SEND_LIMITS {
        expected.push(format!(
            "{}{{limit=\"{}\"}}",
            names::LIMIT_REFUSALS,
            limit.as_str()
        ));
    }
    for operation in names::PUMPING_GUARD_OPERATIONS {
        expected.push(format!(
            "{}{{operation=\"{operation}\"}}",
            names::PUMPING_GUARD_ERRORS
        ));
    }
    for reason in names::EVENTS_DROP_REASONS {
        expected.push(format!("{}{{reason=\"{reason}\"}}", names::EVENTS_DROPPED));
    }
    for action in names::ADMIN_ACTION_NAMES {
        for result in names::ADMIN_RESULTS {
            expected.push(format!(
                "{}{{action=\"{action}\",result=\"{result}\"}}",
                names::ADMIN_ACTIONS
            ));
        }
    }
    let series: Vec<&str> = page.lines().filter(|line| !line.starts_with('#')).collect();
    for wanted in expected {
        assert!(
            series.contains(&format!("{wanted} 0").as_str()),
            "{wanted} 0 missing from:\n{page}"
        );
    }
    // VerifyOtp never ends in a send's refusal: those are not its results
    // (`locked` is both: a send to a locked number, a guess at one).
    let send_only = Error::KINDS
        .into_iter()
        .filter(|kind| !Error::VERIFY_KINDS.contains(kind) && !verify_results.contains(kind));
    for kind in send_only.chain(["country_not_allowed", "gateway_error", "price_unknown"]) {
        let series_name = format!("{}{{result=\"{kind}\"}}", names::VERIFIES);
        assert!(
            !series.iter().any(|line| line.starts_with(&series_name)),
            "{series_name} is not a VerifyOtp result:\n{page}"
        );
    }
}

/// The delivery counters whose labels the routes decide start at 0 too:
/// each routed provider's sends by result, failures by kind and skips, and
/// each fall-through the fallback order can make, so `rate()` sees the
/// first failure or fallback after a start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_counters_of_the_routes_start_at_zero() {
    use otp_service::{metrics as names, sms::GatewayError};

    let (_service, metrics_addr) = ServiceProcess::start_with_metrics(&[
        ("OTP_WHATSAPP_ROUTES", "*=whatsapp_cloud"),
        ("OTP_WHATSAPP_TEMPLATE", "otp_code"),
        ("OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID", "106540352242922"),
        ("OTP_WHATSAPP_CLOUD_ACCESS_TOKEN", "meta-token-not-used"),
        ("OTP_CHANNEL_FALLBACK", "whatsapp>sms"),
    ]);
    let page = scrape(&metrics_addr).await;
    let series: Vec<&str> = page.lines().filter(|line| !line.starts_with('#')).collect();
    let mut expected = vec![format!(
        "{}{{from=\"whatsapp\",to=\"sms\"}}",
        names::CHANNEL_FALLBACKS
    )];
    for (provider, channel) in [("console", "sms"), ("whatsapp_cloud", "whatsapp")] {
        for result in std::iter::once("accepted").chain(GatewayError::KINDS) {
            expected.push(format!(
                "{}{{provider=\"{provider}\",channel=\"{channel}\",result=\"{result}\"}}",
                names::SMS_SENDS
            ));
        }
        for kind in GatewayError::KINDS {
            expected.push(format!(
                "{}{{provider=\"{provider}\",kind=\"{kind}\"}}",
                names::GATEWAY_ERRORS
            ));
        }
        expected.push(format!("{}{{provider=\"{provider}\"}}", names::SMS_SKIPPED));
    }
    for wanted in expected {
        assert!(
            series.contains(&format!("{wanted} 0").as_str()),
            "{wanted} 0 missing from:\n{page}"
        );
    }
    assert!(
        !series
            .iter()
            .any(|line| line.contains("provider=\"twilio\"")),
        "only routed providers: {page}"
    );
}
