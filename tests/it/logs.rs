//! JSON logs on the real binary: one line per call with the method, gRPC
//! code, latency and masked phone — and never the number or the code.

use std::time::Duration;

use crate::common::{RedisServer, TEST_SECRET, binary::ServiceProcess, connect, wait_for};
use otp_service::proto::{CancelOtpRequest, SendOtpRequest, otp_service_client::OtpServiceClient};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_carry_method_code_latency_and_masked_phone() {
    let service = ServiceProcess::start(&[("OTP_LOG_FORMAT", "json")]);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    let send = SendOtpRequest {
        phone_number: "+1 415 555 0166".into(),
        ..Default::default()
    };
    client.send_otp(send.clone()).await.expect("sent");
    client.send_otp(send).await.expect_err("cooldown");

    let finished = |code: &'static str| {
        move |line: &str| {
            let json: serde_json::Value = serde_json::from_str(line).ok()?;
            (json.pointer("/fields/message")?.as_str()? == "rpc finished"
                && json.pointer("/fields/grpc.code")?.as_str()? == code)
                .then_some(json)
        }
    };
    let ok = service.wait_for_stderr("rpc finished", Duration::from_secs(5), finished("OK"));
    assert_eq!(
        ok.pointer("/fields/grpc.method").and_then(|v| v.as_str()),
        Some("SendOtp")
    );
    assert!(
        ok.pointer("/fields/latency_ms")
            .and_then(serde_json::Value::as_f64)
            .is_some(),
        "{ok}"
    );
    assert_eq!(
        ok.pointer("/span/phone").and_then(|v| v.as_str()),
        Some("+1******0166"),
        "{ok}"
    );
    let refused = service.wait_for_stderr(
        "rpc finished",
        Duration::from_secs(5),
        finished("RESOURCE_EXHAUSTED"),
    );
    assert_eq!(
        refused.pointer("/span/phone").and_then(|v| v.as_str()),
        Some("+1******0166")
    );

    let code = service.wait_for_stdout("console SMS", Duration::from_secs(5), |line| {
        line.strip_prefix("SMS to +14155550166: ")?
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .map(str::to_owned)
    });
    let log = service.stderr().join("\n");
    assert!(
        !log.contains("4155550166"),
        "the log never has the full number"
    );
    assert!(
        !crate::common::holds_code(&log, &code),
        "the log never has the code"
    );
    for line in service.stderr() {
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
}

/// The startup line names every cap in force, the per-caller send cap and
/// the verify caps included, with their defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_in_force_line_names_every_cap() {
    let service = ServiceProcess::start(&[("OTP_LOG_FORMAT", "json")]);
    let caps = service.wait_for_stderr("caps in force", Duration::from_secs(5), |line| {
        serde_json::from_str::<serde_json::Value>(line).ok()
    });
    let field = |name: &str| {
        caps.pointer(&format!("/fields/{name}"))
            .and_then(|value| value.as_str())
            .unwrap_or_else(|| panic!("no {name}: {caps}"))
            .to_owned()
    };
    assert_eq!(
        field("send_limits"),
        "resend_cooldown=30s phone=5/600s phone_daily=10/24h client=20/600s \
         anonymous=50/600s caller=300/600s global=60/min"
    );
    assert_eq!(
        field("verify_limits"),
        "client=300/600s anonymous=3000/600s caller=3000/600s global=600/min"
    );
    assert_eq!(
        caps.pointer("/fields/max_attempts")
            .and_then(serde_json::Value::as_u64),
        Some(5)
    );
    // The memory store has no eviction policy: startup says nothing of Redis's.
    service.wait_for_stderr(
        "otp-service listening",
        Duration::from_secs(5),
        |_| Some(()),
    );
    let startup = service.stderr();
    assert!(
        !startup.iter().any(|line| line.contains("maxmemory-policy")),
        "{startup:#?}"
    );
}

/// A per-caller cap above the service-wide cap stops startup with one line
/// naming the variable (exit 2, like every refused setting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_cap_above_the_global_cap_stops_startup() {
    let (code, stderr) = tokio::task::spawn_blocking(|| {
        crate::common::binary::run_to_exit(&[
            ("OTP_LISTEN_ADDR", "127.0.0.1:0"),
            ("OTP_CALLER_SEND_LIMIT", "1000"),
        ])
    })
    .await
    .expect("joined");
    assert_eq!(code, Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains("OTP_CALLER_SEND_LIMIT"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("OTP_GLOBAL_SEND_LIMIT"), "{line}");
}

/// Each extra SMS segment is billed: the startup log names every template
/// that needs more than one (here the Hindi one, UCS-2 and long).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_warns_about_templates_longer_than_one_sms() {
    let dir = std::env::temp_dir().join(format!("otp-logs-templates-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("templates.toml");
    std::fs::write(
        &file,
        "en = \"Code {code}\"\nhi = \"आपका सत्यापन कोड {code} है। यह {minutes} मिनट में समाप्त हो जाएगा। इसे किसी के साथ साझा न करें।\"\n",
    )
    .expect("templates written");
    let service = ServiceProcess::start(&[
        ("OTP_LOG_FORMAT", "json"),
        (
            "OTP_MESSAGE_TEMPLATES_FILE",
            file.to_str().expect("utf-8 path"),
        ),
    ]);

    let warning = service.wait_for_stderr(
        "more than one SMS segment",
        Duration::from_secs(5),
        |line| serde_json::from_str::<serde_json::Value>(line).ok(),
    );

    assert_eq!(
        warning.pointer("/fields/locale").and_then(|v| v.as_str()),
        Some("hi")
    );
    assert_eq!(
        warning
            .pointer("/fields/segments")
            .and_then(serde_json::Value::as_u64),
        Some(2)
    );
    let all = service.stderr().join("\n");
    assert_eq!(
        all.matches("more than one SMS segment").count(),
        1,
        "only `hi`: {all}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const REDIS_PASSWORD: &str = "pa55-w0rd-in-the-url";
const CLIENT_KEY: &str = "client-key-7c1f0b";
const IDEMPOTENCY_KEY: &str = "idem-key-4d2e9a";

/// Sends with both request keys; the answer's gRPC code.
async fn keyed_send(client: &mut OtpServiceClient<tonic::transport::Channel>, phone: &str) -> Code {
    let request = SendOtpRequest {
        phone_number: phone.into(),
        client_key: CLIENT_KEY.into(),
        idempotency_key: IDEMPOTENCY_KEY.into(),
        ..Default::default()
    };
    match client.send_otp(request).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn assert_holds_no_secret(log: &str) {
    for secret in [REDIS_PASSWORD, CLIENT_KEY, IDEMPOTENCY_KEY] {
        assert!(!log.contains(secret), "the log holds {secret}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_time_logs_hold_no_request_key_or_redis_password_and_sigint_stops_cleanly() {
    let mut redis = RedisServer::start_with_user("otp-app", REDIS_PASSWORD).await;
    let url = redis.url();
    let mut service = ServiceProcess::start(&[
        ("OTP_LOG_FORMAT", "json"),
        ("OTP_HMAC_SECRET", TEST_SECRET),
        ("REDIS_URL", &url),
        ("RUST_LOG", "debug"),
        ("OTP_SMS_GATEWAY", "console"),
    ]);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    assert_eq!(keyed_send(&mut client, "+14155550167").await, Code::Ok);
    assert_eq!(
        keyed_send(&mut client, "+14155550167").await,
        Code::Ok,
        "an idempotent retry"
    );
    // Redis going away makes the store log its errors at run time.
    redis.kill();
    assert_eq!(
        keyed_send(&mut client, "+14155550168").await,
        Code::Unavailable
    );
    service.wait_for_stderr("rpc finished", Duration::from_secs(5), |line| {
        line.contains("UNAVAILABLE").then_some(())
    });
    // The store's own error line, with the Redis error text: the line most
    // likely to carry the URL, hence the password.
    let store_error = service.wait_for_stderr("store failed", Duration::from_secs(5), |line| {
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        json.pointer("/fields/error")?.as_str().map(str::to_owned)
    });
    assert!(!store_error.is_empty(), "the line says what failed");

    let status = service.interrupt();
    assert!(status.success(), "SIGINT is a clean exit: {status:?}");
    let log = service.stderr().join("\n");
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("otp-service stopped"), "{log}");
    assert_holds_no_secret(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_redis_password_is_not_logged() {
    let redis = RedisServer::start_with_user("otp-app", "the-right-one").await;
    let url = format!(
        "redis://otp-app:{REDIS_PASSWORD}@127.0.0.1:{}",
        redis.port()
    );
    let service = ServiceProcess::start(&[
        ("OTP_LOG_FORMAT", "json"),
        ("OTP_HMAC_SECRET", TEST_SECRET),
        ("REDIS_URL", &url),
        ("RUST_LOG", "debug"),
        ("OTP_SMS_GATEWAY", "console"),
    ]);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    assert_eq!(
        keyed_send(&mut client, "+14155550169").await,
        Code::Unavailable
    );
    service.wait_for_stderr("rpc finished", Duration::from_secs(5), |line| {
        line.contains("UNAVAILABLE").then_some(())
    });
    assert_holds_no_secret(&service.stderr().join("\n"));
}

/// CancelOtp's line says what happened: "pending code cancelled" only when
/// a code was pending, else "no pending code to cancel".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_with_nothing_pending_does_not_log_a_cancellation() {
    let service = ServiceProcess::start(&[("OTP_LOG_FORMAT", "json")]);
    let mut client = OtpServiceClient::new(connect(service.addr).await);
    let phone = "+14155550186";
    let cancel = || CancelOtpRequest {
        phone_number: phone.into(),
    };
    let messages = |service: &ServiceProcess| -> Vec<String> {
        service
            .stderr()
            .iter()
            .filter_map(|line| {
                let json: serde_json::Value = serde_json::from_str(line).ok()?;
                json.pointer("/fields/message")?.as_str().map(str::to_owned)
            })
            .collect()
    };
    let nothing = client.cancel_otp(cancel()).await.expect("answers");
    assert!(!nothing.into_inner().cancelled);
    cancels_finished(&service, 1).await;
    let said = messages(&service);
    assert!(
        said.iter().any(|m| m == "no pending code to cancel"),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|m| m.contains("cancelled")),
        "nothing was cancelled: {said:?}"
    );

    client
        .send_otp(SendOtpRequest {
            phone_number: phone.into(),
            ..Default::default()
        })
        .await
        .expect("sent");
    let pending = client.cancel_otp(cancel()).await.expect("answers");
    assert!(pending.into_inner().cancelled);
    cancels_finished(&service, 2).await;
    let said = messages(&service);
    assert!(
        said.iter().any(|m| m == "pending code cancelled"),
        "{said:?}"
    );
}

/// Waits until `count` CancelOtp calls logged their `rpc finished` line (the
/// flow's own line comes before it).
async fn cancels_finished(service: &ServiceProcess, count: usize) {
    wait_for(
        "CancelOtp's rpc finished lines",
        Duration::from_secs(5),
        || {
            let finished = service
                .stderr()
                .iter()
                .filter(|line| line.contains("rpc finished") && line.contains("CancelOtp"))
                .count();
            async move { (finished >= count).then_some(()) }
        },
    )
    .await;
}
