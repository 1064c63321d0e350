//! Who may call the admin API: `role:admin` in the callers file (by token
//! or certificate), loopback without one, over plaintext and TLS; and bad
//! input refused naming its field.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use super::{OPS_TOKEN, assert_admin_refused, callers_file_with_admins, settings, with_token};
use crate::{
    callers::{CHECKOUT_TOKEN, send_as},
    common::{
        TestApp, assert_bad_request, connect,
        tls::{CertDir, TestCa, tls_channel},
        unique_phone,
    },
};
use otp_service::{
    abuse::{DEFAULT_SHARED_VERIFY_LIMIT, GLOBAL_VERIFIES_PER_SEND},
    config::DEFAULT_GLOBAL_SEND_LIMIT,
    proto::admin::{
        EndPrefixExemptionRequest, ExemptPrefixRequest, GetAbuseSettingsRequest,
        LiftPrefixSuspensionRequest, ListPrefixExemptionsRequest, PumpingGuardMode,
        otp_admin_service_client::OtpAdminServiceClient,
    },
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_callers_with_the_admin_role_may_administer() {
    let dir = CertDir::new();
    let file = callers_file_with_admins(&dir);
    let app = TestApp::builder()
        .env(&[
            ("OTP_CALLERS_FILE", &file),
            ("OTP_PUMPING_MIN_SENDS", "7"),
            ("OTP_CALLER_SEND_LIMIT", "40"),
        ])
        .spawn()
        .await;
    let mut admin = app.admin();

    let anonymous = settings(&mut admin).await.expect_err("no credentials");
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    let checkout = admin
        .get_abuse_settings(with_token(GetAbuseSettingsRequest {}, CHECKOUT_TOKEN))
        .await
        .expect_err("a caller without the role");
    assert_admin_refused(&checkout, "ADMIN_ROLE_REQUIRED");
    // Refused before its input is read: a non-admin learns nothing from it.
    let lift = admin
        .lift_prefix_suspension(with_token(
            LiftPrefixSuspensionRequest {
                prefix: "not a prefix".into(),
            },
            CHECKOUT_TOKEN,
        ))
        .await
        .expect_err("a caller without the role");
    assert_admin_refused(&lift, "ADMIN_ROLE_REQUIRED");

    let settings = admin
        .get_abuse_settings(with_token(GetAbuseSettingsRequest {}, OPS_TOKEN))
        .await
        .expect("an admin reads the settings")
        .into_inner();
    let guard = settings.pumping_guard.expect("guard settings");
    assert_eq!(guard.mode(), PumpingGuardMode::Enforce);
    assert_eq!(guard.min_sends, 7);
    assert_eq!(settings.send_limits.expect("limits").caller_limit, 40);
    // The role adds the admin API; the OTP API is as before.
    send_as(
        connect(app.addr).await,
        &unique_phone(),
        Some(&format!("Bearer {OPS_TOKEN}")),
    )
    .await
    .expect("an admin is still a caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_callers_file_loopback_may_administer() {
    let app = TestApp::builder()
        .env(&[
            ("OTP_TTL_SECONDS", "90"),
            ("OTP_ALLOWED_COUNTRIES", "US,GB"),
            ("OTP_CLIENT_VERIFY_LIMIT", "250"),
            ("OTP_CALLER_VERIFY_LIMIT", "2500"),
            ("OTP_VERIFY_WINDOW_SECONDS", "900"),
        ])
        .spawn()
        .await;
    let settings = settings(&mut app.admin())
        .await
        .expect("loopback administers without a callers file");
    let code = settings.code_policy.expect("code policy");
    assert_eq!((code.ttl_seconds, code.code_length), (90, 6));
    let limits = settings.send_limits.expect("limits");
    assert_eq!(limits.global_per_minute, DEFAULT_GLOBAL_SEND_LIMIT);
    assert_eq!(settings.allowed_countries, ["GB", "US"]);
    assert!(settings.denied_countries.is_empty());
    let guard = settings.pumping_guard.expect("guard settings");
    assert_eq!(
        (
            guard.prefix_digits,
            guard.window_seconds,
            guard.suspension_seconds
        ),
        (4, 3600, 3600)
    );
    assert_eq!((guard.min_sources, guard.trust_days), (3, 30));
    // The verify limits of the caps line: set, defaulted and derived.
    let verify = settings.verify_limits.expect("verify limits");
    assert_eq!(
        (
            verify.window_seconds,
            verify.client_limit,
            verify.anonymous_limit,
            verify.caller_limit
        ),
        (900, 250, DEFAULT_SHARED_VERIFY_LIMIT, 2500)
    );
    assert_eq!(
        verify.global_per_minute,
        DEFAULT_GLOBAL_SEND_LIMIT * GLOBAL_VERIFIES_PER_SEND
    );
}

/// This host's address on its default route, if it has one (no packet is
/// sent: connecting a UDP socket only picks the route).
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_callers_file_other_addresses_are_refused() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("SKIPPED: this host has no non-loopback address to call from");
        return;
    };
    let app = TestApp::builder()
        .env(&[("OTP_LISTEN_ADDR", "0.0.0.0:0")])
        .spawn()
        .await;
    let from_outside = connect(SocketAddr::new(ip, app.addr.port())).await;
    let status = settings(&mut OtpAdminServiceClient::new(from_outside))
        .await
        .expect_err("not loopback");
    assert_admin_refused(&status, "ADMIN_LOOPBACK_ONLY");
    let on_loopback = connect(SocketAddr::from(([127, 0, 0, 1], app.addr.port()))).await;
    settings(&mut OtpAdminServiceClient::new(on_loopback))
        .await
        .expect("the same server answers loopback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_loopback_rule_and_the_role_hold_alike() {
    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let dir = CertDir::new();
    let (cert, key) = dir.write_pair("server", &server_ca.issue_server());
    let tls = [
        ("OTP_TLS_CERT_FILE", cert.as_str()),
        ("OTP_TLS_KEY_FILE", key.as_str()),
    ];

    // TLS, no callers: our listener, not tonic's, tells the address.
    let plain_tls = TestApp::builder().env(&tls).spawn().await;
    let channel = tls_channel(plain_tls.addr, &server_ca.pem(), None)
        .await
        .expect("TLS connects");
    settings(&mut OtpAdminServiceClient::new(channel))
        .await
        .expect("loopback over TLS administers");

    let client_ca_file = dir.write("clients-ca.pem", &client_ca.pem());
    let callers = callers_file_with_admins(&dir);
    let mutual = TestApp::builder()
        .env(&tls)
        .env(&[
            ("OTP_TLS_CLIENT_CA_FILE", &client_ca_file),
            ("OTP_CALLERS_FILE", &callers),
        ])
        .spawn()
        .await;
    let as_certificate = |name: &str| {
        let issued = client_ca.issue_client(name);
        let (addr, ca) = (mutual.addr, server_ca.pem());
        async move {
            let channel = tls_channel(addr, &ca, Some(&issued))
                .await
                .expect("mTLS connects");
            settings(&mut OtpAdminServiceClient::new(channel)).await
        }
    };
    as_certificate("oncall.callers.internal")
        .await
        .expect("a certificate with the role administers");
    let status = as_certificate("reports.callers.internal")
        .await
        .expect_err("a certificate without the role");
    assert_admin_refused(&status, "ADMIN_ROLE_REQUIRED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_invalid_argument_naming_the_field() {
    let app = TestApp::builder().spawn().await;
    let mut admin = app.admin();
    for prefix in ["447700", "+0447", "+44 77a", "+1234567890123", ""] {
        let status = admin
            .lift_prefix_suspension(LiftPrefixSuspensionRequest {
                prefix: prefix.into(),
            })
            .await
            .expect_err("not a prefix");
        assert_bad_request(&status, "prefix");
        let status = admin
            .end_prefix_exemption(EndPrefixExemptionRequest {
                prefix: prefix.into(),
            })
            .await
            .expect_err("not a prefix");
        assert_bad_request(&status, "prefix");
    }
    let exempt = |prefix: &str, duration_seconds| ExemptPrefixRequest {
        prefix: prefix.into(),
        duration_seconds,
    };
    let status = admin
        .exempt_prefix(exempt("+44x", 60))
        .await
        .expect_err("not a prefix");
    assert_bad_request(&status, "prefix");
    // Well-formed, but the guard (4 digits by default) never counts them:
    // an exemption would exempt nothing.
    for never in ["+4477001", "+447", "+9997700"] {
        let status = admin
            .exempt_prefix(exempt(never, 60))
            .await
            .expect_err("not a prefix the guard counts");
        assert_bad_request(&status, "prefix");
        assert!(
            status.message().contains("next 4 digits") && status.message().contains("+447700"),
            "says what a prefix is here: {status:?}"
        );
    }
    let listed = admin
        .list_prefix_exemptions(ListPrefixExemptionsRequest {})
        .await
        .expect("lists")
        .into_inner();
    assert!(listed.prefix_exemptions.is_empty(), "{listed:?}");
    admin
        .exempt_prefix(exempt("+44 7700", 60))
        .await
        .expect("the prefix the guard counts +44 7700 900123 under");
    // Zero (a forgotten field) never ends an exemption; 30 days is the most.
    for duration in [0, 30 * 24 * 3600 + 1] {
        let status = admin
            .exempt_prefix(exempt("+447700", duration))
            .await
            .expect_err("out of bounds");
        assert_bad_request(&status, "duration_seconds");
    }
}

/// Every refused admin call is a WARN line with the reason (README, "Admin
/// API"): an unknown token and no credentials too, not only a caller
/// without the role; the token is never in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_admin_call_is_a_warn_line() {
    let dir = CertDir::new();
    let file = callers_file_with_admins(&dir);
    let service = crate::common::binary::ServiceProcess::start(&[("OTP_CALLERS_FILE", &file)]);
    let mut admin = OtpAdminServiceClient::new(connect(service.addr).await);
    let unknown = "unknown-admin-token-9f3c";
    for (token, code) in [
        (Some(unknown), Code::PermissionDenied),
        (None, Code::Unauthenticated),
        (Some(CHECKOUT_TOKEN), Code::PermissionDenied),
    ] {
        let request = match token {
            Some(token) => with_token(GetAbuseSettingsRequest {}, token),
            None => tonic::Request::new(GetAbuseSettingsRequest {}),
        };
        let refused = admin
            .get_abuse_settings(request)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), code, "{refused:?}");
    }
    let warned = |count: usize| {
        let lines = service.stderr();
        let refusals: Vec<String> = lines
            .into_iter()
            .filter(|line| line.contains("WARN") && line.contains("admin API call refused"))
            .collect();
        (refusals.len() >= count).then_some(refusals)
    };
    let refusals = crate::common::wait_for(
        "a WARN line per refused admin call",
        std::time::Duration::from_secs(5),
        || std::future::ready(warned(3)),
    )
    .await;
    assert!(
        refusals.iter().all(|line| !line.contains(unknown)),
        "{refusals:?}"
    );
}
