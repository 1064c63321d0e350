//! The callers file and the client-CA bundle are re-read when their files
//! change, like the server certificate: a caller added is accepted and a
//! caller removed refused without a restart, a swapped CA decides the next
//! handshake (and no session opened under the old CA resumes), and a broken
//! new file is logged while the last good one stays in force — but a
//! callers file that lists nobody, or is deleted, revokes every caller.

use std::time::Duration;

use rustls::HandshakeKind;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::{
    callers::{BILLING_TOKEN, CHECKOUT_TOKEN, assert_refused, send_as},
    common::{
        TestApp,
        binary::ServiceProcess,
        connect,
        tls::{CertDir, Issued, TestCa, client_config, tls_handshake},
        unique_phone,
    },
    tls::{send_over_tls, tls_app},
};

/// A callers-file line for a token caller.
fn token_line(name: &str, token: &str) -> String {
    format!(
        "{name} sha256:{}\n",
        hex::encode(Sha256::digest(token.as_bytes()))
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_added_and_removed_from_the_file_take_effect_without_a_restart() {
    let dir = CertDir::new();
    let file = dir.write("callers", &token_line("checkout", CHECKOUT_TOKEN));
    let app = TestApp::builder()
        .env(&[("OTP_CALLERS_FILE", &file)])
        .spawn()
        .await;
    // One connection throughout: the file is consulted per call, not per connection.
    let channel = connect(app.addr).await;
    let billing = bearer(BILLING_TOKEN);
    let checkout = bearer(CHECKOUT_TOKEN);

    let before = send_as(channel.clone(), &unique_phone(), Some(&billing)).await;
    assert_refused(before, Code::PermissionDenied, "CALLER_UNKNOWN");

    dir.write(
        "callers",
        &(token_line("checkout", CHECKOUT_TOKEN) + &token_line("billing", BILLING_TOKEN)),
    );
    send_as(channel.clone(), &unique_phone(), Some(&billing))
        .await
        .expect("a caller added to the file is accepted");

    dir.write("callers", &token_line("billing", BILLING_TOKEN));
    let removed = send_as(channel.clone(), &unique_phone(), Some(&checkout)).await;
    assert_refused(removed, Code::PermissionDenied, "CALLER_UNKNOWN");
    send_as(channel, &unique_phone(), Some(&billing))
        .await
        .expect("the caller still listed is accepted");
    assert_eq!(app.sms.count(), 2, "only the accepted sends texted");
}

/// Revoking the last token (a file that names nobody) locks every caller out
/// at the very next call, also on a connection opened before, and says so
/// loudly; listing a caller again lets it back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_last_token_locks_callers_out_at_the_next_call() {
    let dir = CertDir::new();
    let file = dir.write("callers", &token_line("checkout", CHECKOUT_TOKEN));
    let service = ServiceProcess::start(&[("OTP_CALLERS_FILE", &file)]);
    let channel = connect(service.addr).await;
    let checkout = bearer(CHECKOUT_TOKEN);
    send_as(channel.clone(), "+14155550176", Some(&checkout))
        .await
        .expect("listed");

    dir.write("callers", "# checkout's token leaked: revoked\n");
    let revoked = send_as(channel.clone(), "+14155550177", Some(&checkout)).await;
    assert_refused(revoked, Code::PermissionDenied, "CALLER_UNKNOWN");
    let line = service.wait_for_stderr(
        "callers file lists no caller: nobody may call",
        Duration::from_secs(5),
        |line| Some(line.to_owned()),
    );
    assert!(line.contains("ERROR"), "logged loudly: {line}");

    dir.write("callers", &token_line("checkout", CHECKOUT_TOKEN));
    send_as(channel, "+14155550178", Some(&checkout))
        .await
        .expect("listed again");
}

/// A file that names nobody from the start is said at startup too (it is
/// read before logging is set up, so the reading itself cannot say it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_file_naming_nobody_at_startup_is_an_error_line() {
    let dir = CertDir::new();
    let file = dir.write("callers", "# nobody yet\n");
    let service = ServiceProcess::start(&[("OTP_CALLERS_FILE", &file)]);
    let line = service.wait_for_stderr(
        "OTP_CALLERS_FILE lists no caller",
        Duration::from_secs(5),
        |line| Some(line.to_owned()),
    );
    assert!(line.contains("ERROR"), "logged loudly: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_callers_file_keeps_the_last_good_one_but_a_deleted_one_revokes_all() {
    let dir = CertDir::new();
    let file = dir.write("callers", &token_line("checkout", CHECKOUT_TOKEN));
    let service = ServiceProcess::start(&[("OTP_CALLERS_FILE", &file)]);
    let channel = connect(service.addr).await;
    let (checkout, billing) = (bearer(CHECKOUT_TOKEN), bearer(BILLING_TOKEN));

    // Half-edited: billing added, but the next line does not parse.
    dir.write(
        "callers",
        &(token_line("billing", BILLING_TOKEN) + "checkout sha256:not-hex\n"),
    );
    send_as(channel.clone(), "+14155550171", Some(&checkout))
        .await
        .expect("the last good file still names checkout");
    let half = send_as(channel.clone(), "+14155550172", Some(&billing)).await;
    assert_refused(half, Code::PermissionDenied, "CALLER_UNKNOWN");
    let invalid = "callers file changed but is invalid";
    service.wait_for_stderr(invalid, Duration::from_secs(5), |line| {
        line.contains("error=line 2:").then_some(())
    });

    // Deleted is not broken: it withdraws every caller, from the next call.
    std::fs::remove_file(&file).expect("remove the file");
    let deleted = send_as(channel.clone(), "+14155550173", Some(&checkout)).await;
    assert_refused(deleted, Code::PermissionDenied, "CALLER_UNKNOWN");
    service.wait_for_stderr(
        "callers file is gone: nobody may call",
        Duration::from_secs(5),
        |line| line.contains("ERROR").then_some(()),
    );

    dir.write("callers", &token_line("billing", BILLING_TOKEN));
    send_as(channel.clone(), "+14155550174", Some(&billing))
        .await
        .expect("the next good file is loaded");
    let gone = send_as(channel, "+14155550175", Some(&checkout)).await;
    assert_refused(gone, Code::PermissionDenied, "CALLER_UNKNOWN");
}

/// One SendOtp to a fresh number over a fresh mTLS connection.
async fn send_as_certificate(
    app: &TestApp,
    server_pem: &str,
    caller: &Issued,
) -> Result<(), String> {
    send_over_tls(app.addr, server_pem, Some(caller), &unique_phone())
        .await
        .map(drop)
}

/// A TLS server trusting the old client CA, and the new CA it will rotate to.
struct CaRotation {
    server_ca: TestCa,
    old_ca: TestCa,
    new_ca: TestCa,
    dir: CertDir,
    app: TestApp,
}

async fn ca_rotation() -> CaRotation {
    let (server_ca, old_ca, new_ca) = (
        TestCa::new("server CA"),
        TestCa::new("old client CA"),
        TestCa::new("new client CA"),
    );
    let dir = CertDir::new();
    let app = tls_app(&dir, &server_ca.issue_server(), Some(&old_ca)).await;
    CaRotation {
        server_ca,
        old_ca,
        new_ca,
        dir,
        app,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_client_ca_decides_the_next_handshake() {
    let CaRotation {
        server_ca,
        old_ca,
        new_ca,
        dir,
        app,
    } = ca_rotation().await;
    let old_caller = old_ca.issue_client("checkout.callers.internal");
    let new_caller = new_ca.issue_client("checkout.callers.internal");
    let server_pem = server_ca.pem();
    let send = |caller| send_as_certificate(&app, &server_pem, caller);

    send(&old_caller).await.expect("old CA's client accepted");
    assert!(send(&new_caller).await.is_err(), "new CA not trusted yet");

    // Rotation, step one: both CAs in the bundle.
    dir.write("clients-ca.pem", &(old_ca.pem() + &new_ca.pem()));
    send(&new_caller).await.expect("new CA's client accepted");
    send(&old_caller)
        .await
        .expect("old CA's client still accepted");

    // Step two: the old CA leaves the bundle.
    dir.write("clients-ca.pem", &new_ca.pem());
    let refused = send(&old_caller).await;
    assert!(refused.is_err(), "old CA's client refused: {refused:?}");
    send(&new_caller).await.expect("new CA's client accepted");
    assert_eq!(app.sms.count(), 4, "exactly the accepted sends texted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_under_a_removed_ca_does_not_resume() {
    let CaRotation {
        server_ca,
        old_ca,
        new_ca,
        dir,
        app,
    } = ca_rotation().await;
    // One client configuration: it keeps the session tickets it is given.
    let client = client_config(
        &server_ca.pem(),
        Some(&old_ca.issue_client("checkout.callers.internal")),
    );

    let (_, first) = tls_handshake(app.addr, client.clone()).await;
    assert!(matches!(first, Ok(n) if n > 0), "accepted: {first:?}");
    let (kind, again) = tls_handshake(app.addr, client.clone()).await;
    assert_eq!(kind, Some(HandshakeKind::Resumed), "resumes while trusted");
    assert!(matches!(again, Ok(n) if n > 0), "{again:?}");

    dir.write("clients-ca.pem", &new_ca.pem());
    let (kind, after) = tls_handshake(app.addr, client).await;
    assert_ne!(
        kind,
        Some(HandshakeKind::Resumed),
        "no resumption past the swap"
    );
    assert!(
        !matches!(after, Ok(n) if n > 0),
        "the old CA's client is refused: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_client_ca_bundle_keeps_the_previous_one() {
    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let dir = CertDir::new();
    let app = tls_app(&dir, &server_ca.issue_server(), Some(&client_ca)).await;
    let caller = client_ca.issue_client("checkout.callers.internal");
    let stranger = TestCa::new("stranger CA").issue_client("checkout.callers.internal");
    let server_pem = server_ca.pem();

    for broken in [
        "",
        "not a certificate\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    ] {
        dir.write("clients-ca.pem", broken);
        send_over_tls(app.addr, &server_pem, Some(&caller), &unique_phone())
            .await
            .unwrap_or_else(|err| panic!("previous CA kept after {broken:?}: {err}"));
        let refused = send_over_tls(app.addr, &server_pem, Some(&stranger), &unique_phone()).await;
        assert!(
            refused.is_err(),
            "never fails open ({broken:?}): {refused:?}"
        );
        let none = send_over_tls(app.addr, &server_pem, None, &unique_phone()).await;
        assert!(none.is_err(), "still mandatory ({broken:?}): {none:?}");
    }
}
