//! JSON logs on the real binary: one line per call with the method, gRPC
//! code, latency and masked phone — and never the number or the code.

use std::time::Duration;

use crate::common::{binary::ServiceProcess, connect};
use otp_service::proto::{SendOtpRequest, otp_service_client::OtpServiceClient};

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
    assert!(!log.contains(&code), "the log never has the code");
    for line in service.stderr() {
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
}
