//! TLS and mTLS on the gRPC listener with certificates made at test time:
//! real tonic and grpcurl clients; refused handshakes; a rotated certificate
//! served on the next connection without a restart.

use std::{net::SocketAddr, process::Command, sync::Arc, time::Duration};

use crate::common::{
    TestApp,
    tls::{CertDir, Issued, TestCa, client_config, tls_channel, tls_handshake},
    unique_phone, wait_for,
};
use otp_service::proto::{
    SendOtpRequest, SendOtpResponse, VerifyOtpRequest, VerifyOtpResult,
    otp_service_client::OtpServiceClient,
};
use tonic::Status;

/// A server with TLS on its gRPC listener; with `client_ca`, mutual TLS.
pub(crate) async fn tls_app(dir: &CertDir, server: &Issued, client_ca: Option<&TestCa>) -> TestApp {
    let (cert, key) = dir.write_pair("server", server);
    let mut vars = vec![
        ("OTP_TLS_CERT_FILE", cert.clone()),
        ("OTP_TLS_KEY_FILE", key.clone()),
    ];
    if let Some(ca) = client_ca {
        vars.push((
            "OTP_TLS_CLIENT_CA_FILE",
            dir.write("clients-ca.pem", &ca.pem()),
        ));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::builder().env(&vars).spawn().await
}

/// One SendOtp through a fresh TLS connection; a refused handshake is an
/// error string, a refused call its status.
pub(crate) async fn send_over_tls(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Issued>,
    phone: &str,
) -> Result<SendOtpResponse, String> {
    let channel = tls_channel(addr, ca_pem, client)
        .await
        .map_err(|err| format!("connect: {err:?}"))?;
    OtpServiceClient::new(channel)
        .send_otp(SendOtpRequest {
            phone_number: phone.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status: Status| format!("call: {status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_client_with_a_certificate_from_the_client_ca_round_trips_a_code() {
    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let dir = CertDir::new();
    let app = tls_app(&dir, &server_ca.issue_server(), Some(&client_ca)).await;
    let caller = client_ca.issue_client("checkout.callers.internal");
    let phone = unique_phone();

    send_over_tls(app.addr, &server_ca.pem(), Some(&caller), &phone)
        .await
        .expect("SendOtp over mTLS");
    let code = app.sms.last_code_for(&phone).expect("texted");
    let channel = tls_channel(app.addr, &server_ca.pem(), Some(&caller))
        .await
        .expect("connects");
    let verified = OtpServiceClient::new(channel)
        .verify_otp(VerifyOtpRequest {
            phone_number: phone,
            code,
            ..Default::default()
        })
        .await
        .expect("VerifyOtp over mTLS")
        .into_inner();
    assert_eq!(verified.result(), VerifyOtpResult::Approved);
}

/// Asserts that a bare TLS connection with `config` gets the server's
/// `alert` (rustls's name for it) instead of its first HTTP/2 frame.
async fn assert_refused_with(addr: SocketAddr, config: Arc<rustls::ClientConfig>, alert: &str) {
    let (_, read) = tls_handshake(addr, config).await;
    let error = read.expect_err("the server refuses instead of speaking");
    assert!(
        format!("{error:?}").contains(&format!("AlertReceived({alert})")),
        "expected the {alert} alert: {error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_no_certificate_a_foreign_certificate_and_plaintext() {
    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let dir = CertDir::new();
    let app = tls_app(&dir, &server_ca.issue_server(), Some(&client_ca)).await;
    let phone = unique_phone();

    // Each refusal for its own reason: the server's TLS alert (a bare
    // handshake shows it; the gRPC client only sees the connection close),
    // or the client's own check of the server.
    let no_cert = send_over_tls(app.addr, &server_ca.pem(), None, &phone).await;
    assert!(no_cert.is_err(), "no client certificate: {no_cert:?}");
    assert_refused_with(
        app.addr,
        client_config(&server_ca.pem(), None),
        "CertificateRequired",
    )
    .await;
    let stranger = TestCa::new("someone else's CA").issue_client("checkout.callers.internal");
    let foreign = send_over_tls(app.addr, &server_ca.pem(), Some(&stranger), &phone).await;
    assert!(foreign.is_err(), "certificate from another CA: {foreign:?}");
    assert_refused_with(
        app.addr,
        client_config(&server_ca.pem(), Some(&stranger)),
        "UnknownCA",
    )
    .await;
    let caller = client_ca.issue_client("checkout.callers.internal");
    let wrong_server_ca = TestCa::new("not the server's CA").pem();
    let unverified = send_over_tls(app.addr, &wrong_server_ca, Some(&caller), &phone).await;
    assert!(
        unverified
            .as_ref()
            .is_err_and(|err| err.contains("UnknownIssuer")),
        "server not trusted: {unverified:?}"
    );
    // Plaintext h2 on the TLS port: the server closes the connection, so
    // the call fails whether or not the lazy connect already did.
    let plaintext = tonic::transport::Endpoint::from_shared(format!("http://{}", app.addr))
        .expect("URI")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await;
    let refused = match plaintext {
        Ok(channel) => OtpServiceClient::new(channel)
            .send_otp(SendOtpRequest {
                phone_number: phone.clone(),
                ..Default::default()
            })
            .await
            .map(drop)
            .map_err(|status| format!("{status:?}")),
        Err(err) => Err(format!("{err:?}")),
    };
    // A transport failure (closed, reset, broken pipe), never an answer
    // from the service.
    assert!(
        refused
            .as_ref()
            .is_err_and(|err| err.contains("transport::Error")),
        "plaintext call on the TLS port: {refused:?}"
    );
    assert_eq!(app.sms.count(), 0, "nothing was sent");

    send_over_tls(app.addr, &server_ca.pem(), Some(&caller), &phone)
        .await
        .expect("the right certificate still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_is_served_on_the_next_connection() {
    let (old_ca, new_ca) = (TestCa::new("old CA"), TestCa::new("new CA"));
    let dir = CertDir::new();
    let app = tls_app(&dir, &old_ca.issue_server(), None).await;
    send_over_tls(app.addr, &old_ca.pem(), None, &unique_phone())
        .await
        .expect("old certificate served");
    // Kept open across the rotation: an established connection is not cut.
    let established = tls_channel(app.addr, &old_ca.pem(), None)
        .await
        .expect("connects");

    dir.write_pair("server", &new_ca.issue_server());
    send_over_tls(app.addr, &new_ca.pem(), None, &unique_phone())
        .await
        .expect("the next connection gets the new certificate");
    let stale = send_over_tls(app.addr, &old_ca.pem(), None, &unique_phone()).await;
    assert!(
        stale
            .as_ref()
            .is_err_and(|err| err.contains("UnknownIssuer")),
        "old certificate no longer served (the new one is not the old CA's): {stale:?}"
    );
    OtpServiceClient::new(established)
        .send_otp(SendOtpRequest {
            phone_number: unique_phone(),
            ..Default::default()
        })
        .await
        .expect("the connection opened before the rotation still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_rotation_keeps_the_previous_certificate() {
    let ca = TestCa::new("CA");
    let dir = CertDir::new();
    let app = tls_app(&dir, &ca.issue_server(), None).await;
    // A new certificate whose key has not arrived yet.
    dir.write("server.crt", &ca.issue_server().cert_pem);
    send_over_tls(app.addr, &ca.pem(), None, &unique_phone())
        .await
        .expect("the previous pair is still served");
}

fn grpcurl(args: &[&str]) -> (bool, String) {
    let program = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".into());
    let output = Command::new(&program)
        .arg("-max-time")
        .arg("10")
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run `{program}` ({err}); see scripts/test.sh"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_over_mtls_sends_and_is_refused_without_a_certificate() {
    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let dir = CertDir::new();
    let app = tls_app(&dir, &server_ca.issue_server(), Some(&client_ca)).await;
    let ca_file = dir.write("server-ca.pem", &server_ca.pem());
    let (cert, key) = dir.write_pair("caller", &client_ca.issue_client("ops.callers.internal"));
    let addr = format!("localhost:{}", app.addr.port());
    let phone = unique_phone();
    let body = format!(r#"{{"phone_number":"{phone}"}}"#);

    let (ok, sent) = tokio::task::spawn_blocking({
        let (ca_file, addr, body) = (ca_file.clone(), addr.clone(), body.clone());
        move || {
            grpcurl(&[
                "-cacert",
                &ca_file,
                "-cert",
                &cert,
                "-key",
                &key,
                "-d",
                &body,
                &addr,
                "otp.v1.OtpService/SendOtp",
            ])
        }
    })
    .await
    .expect("grpcurl ran");
    assert!(ok, "{sent}");
    assert!(sent.contains("expiresInSeconds"), "{sent}");

    let (ok, refused) = tokio::task::spawn_blocking(move || {
        grpcurl(&[
            "-cacert",
            &ca_file,
            "-d",
            &body,
            &addr,
            "otp.v1.OtpService/SendOtp",
        ])
    })
    .await
    .expect("grpcurl ran");
    assert!(!ok, "no client certificate must fail: {refused}");
    wait_for("the one SMS", Duration::from_secs(5), || async {
        (app.sms.count() == 1).then_some(())
    })
    .await;
}

/// The Python venv of tests/clients (created on first use), as run.sh uses it.
fn python() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(format!("{root}/tests/clients/python/venv.sh"))
        .output()
        .expect("tests/clients/python/venv.sh runs");
    assert!(
        output.status.success(),
        "venv.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_over_mtls_is_served_and_refused_with_the_right_codes() {
    use sha2::{Digest, Sha256};

    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let dir = CertDir::new();
    let token = "python-token-77a1";
    let callers = dir.write(
        "callers",
        &format!(
            "python san:python.callers.internal\nchecker sha256:{}\n",
            hex::encode(Sha256::digest(token.as_bytes()))
        ),
    );
    let (server_cert, server_key) = dir.write_pair("server", &server_ca.issue_server());
    let clients_ca = dir.write("clients-ca.pem", &client_ca.pem());
    let app = TestApp::builder()
        .env(&[
            ("OTP_TLS_CERT_FILE", &server_cert),
            ("OTP_TLS_KEY_FILE", &server_key),
            ("OTP_TLS_CLIENT_CA_FILE", &clients_ca),
            ("OTP_CALLERS_FILE", &callers),
        ])
        .spawn()
        .await;
    let (cert, key) = dir.write_pair("python", &client_ca.issue_client("python.callers.internal"));
    let vars = [
        ("OTP_ADDR", format!("localhost:{}", app.addr.port())),
        ("CA_FILE", dir.write("server-ca.pem", &server_ca.pem())),
        (
            "OTHER_CA_FILE",
            dir.write("other-ca.pem", &TestCa::new("other").pem()),
        ),
        ("CERT_FILE", cert),
        ("KEY_FILE", key),
        ("TOKEN", token.to_owned()),
        ("PHONE", unique_phone()),
        ("GEN_DIR", dir.dir().join("stubs").display().to_string()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/python/tls_scenario.py"
        );
        Command::new(python()).arg(script).envs(vars).output()
    })
    .await
    .expect("joined")
    .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("wrong CA refused"), "{text}");
    assert_eq!(app.sms.count(), 1, "only the certificate caller's send");
}

/// Handshakes in progress are bounded (`OTP_TLS_MAX_HANDSHAKES`): with the
/// bound at 1, a connection that never speaks holds the one slot, and the
/// next client's handshake waits until that connection is gone — here
/// closed, well before the 10 s handshake timeout would free the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_holds_a_handshake_slot_until_it_is_gone() {
    let ca = TestCa::new("server CA");
    let dir = CertDir::new();
    let (cert, key) = dir.write_pair("server", &ca.issue_server());
    let app = TestApp::builder()
        .env(&[
            ("OTP_TLS_CERT_FILE", &cert),
            ("OTP_TLS_KEY_FILE", &key),
            ("OTP_TLS_MAX_HANDSHAKES", "1"),
        ])
        .spawn()
        .await;
    let stalled = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("TCP connect");
    let started = std::time::Instant::now();
    let handshake = tokio::spawn(tls_handshake(app.addr, client_config(&ca.pem(), None)));
    // Nothing to wait for but time: the handshake must not finish while the
    // silent connection holds the slot.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !handshake.is_finished(),
        "a second handshake ran beside the stalled one"
    );

    drop(stalled);
    let (kind, read) = tokio::time::timeout(Duration::from_secs(5), handshake)
        .await
        .expect("the handshake completes once the slot is free")
        .expect("task ran");
    assert!(kind.is_some(), "handshaken: {read:?}");
    assert!(read.is_ok_and(|bytes| bytes > 0), "the server spoke h2");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "freed by the close, not by the handshake timeout"
    );
}
