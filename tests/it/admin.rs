//! The admin API (`otp.admin.v1.OtpAdminService`): only a caller whose line
//! in the callers file carries `role:admin` may call it (without a callers
//! file, only loopback), over plaintext and TLS alike; bad input names its
//! field; a prefix suspended by real traffic is listed with its counts and
//! lifted on every replica by one call to one of them; an exemption frees a
//! prefix and ends on request; each change is an audit event.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use crate::{
    callers::{CHECKOUT_TOKEN, send_as},
    common::{
        RedisServer, StoreKind, TestApp, assert_bad_request, connect,
        tls::{CertDir, TestCa, tls_channel},
        unique_phone,
    },
    pumping::{MIN_SENDS, PUMPED_PREFIX, Replicas, assert_suspended, number},
};
use otp_service::{
    config::DEFAULT_GLOBAL_SEND_LIMIT,
    proto::admin::{
        EndPrefixExemptionRequest, ExemptPrefixRequest, GetAbuseSettingsRequest,
        GetAbuseSettingsResponse, LiftPrefixSuspensionRequest, ListPrefixExemptionsRequest,
        ListSuspendedPrefixesRequest, PumpingGuardMode,
        otp_admin_service_client::OtpAdminServiceClient,
    },
};
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

/// The token of `ops`, the callers file's admin.
const OPS_TOKEN: &str = "ops-token-5a1e77";

/// A callers file with an admin and a plain caller each by token and by
/// certificate.
fn callers_file_with_admins(dir: &CertDir) -> String {
    let digest = |token: &str| hex::encode(Sha256::digest(token.as_bytes()));
    dir.write(
        "callers",
        &format!(
            "# name     credential                          role\n\
             checkout   sha256:{}\n\
             ops        sha256:{}  role:admin\n\
             reports    san:reports.callers.internal\n\
             oncall     san:oncall.callers.internal  role:admin\n",
            digest(CHECKOUT_TOKEN),
            digest(OPS_TOKEN)
        ),
    )
}

/// `message` with `authorization: Bearer <token>`.
fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII header"),
    );
    request
}

/// Asserts PERMISSION_DENIED with the admin API's `ErrorInfo` `reason`.
fn assert_admin_refused(status: &Status, reason: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "otp.admin.v1");
}

async fn settings(
    admin: &mut OtpAdminServiceClient<Channel>,
) -> Result<GetAbuseSettingsResponse, Status> {
    admin
        .get_abuse_settings(GetAbuseSettingsRequest {})
        .await
        .map(tonic::Response::into_inner)
}

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
    // Zero (a forgotten field) never ends an exemption; 30 days is the most.
    for duration in [0, 30 * 24 * 3600 + 1] {
        let status = admin
            .exempt_prefix(exempt("+447700", duration))
            .await
            .expect_err("out of bounds");
        assert_bad_request(&status, "duration_seconds");
    }
}

async fn listed_suspensions(app: &TestApp) -> Vec<otp_service::proto::admin::SuspendedPrefix> {
    app.admin()
        .list_suspended_prefixes(ListSuspendedPrefixesRequest {})
        .await
        .expect("lists suspensions")
        .into_inner()
        .suspended_prefixes
}

async fn a_prefix_suspended_by_traffic_is_listed_and_lifted_on_every_replica(store: StoreKind) {
    let replicas = Replicas::start(store, &[("OTP_PUMPING_SUSPENSION_SECONDS", "600")]).await;
    let (refusal, _, _) = replicas.pump_until_refused().await;
    assert_suspended(&refusal, PUMPED_PREFIX);
    let (first, last) = (replicas.at(0), replicas.at(replicas.apps.len() - 1));

    let listed = listed_suspensions(last).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let suspended = &listed[0];
    assert_eq!(suspended.prefix, PUMPED_PREFIX);
    assert!(
        (590..=600).contains(&suspended.lift_in_seconds),
        "{suspended:?}"
    );
    assert!(
        suspended.judged_sends >= MIN_SENDS as u64,
        "the verdict's counts: {suspended:?}"
    );
    assert_eq!(suspended.approved_sends, 0, "{suspended:?}");

    let lifted = first
        .admin()
        .lift_prefix_suspension(LiftPrefixSuspensionRequest {
            prefix: PUMPED_PREFIX.into(),
        })
        .await
        .expect("lifts")
        .into_inner();
    assert!(lifted.lifted);
    last.send(&number("628", 900_000))
        .await
        .expect("the other replica sends to the lifted prefix");
    assert!(listed_suspensions(first).await.is_empty());
    let again = last
        .admin()
        .lift_prefix_suspension(LiftPrefixSuspensionRequest {
            prefix: PUMPED_PREFIX.into(),
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(!again.lifted, "nothing left to lift");
}

async fn an_exemption_frees_a_prefix_until_it_is_ended(store: StoreKind) {
    let replicas = Replicas::start(store, &[("OTP_PUMPING_SUSPENSION_SECONDS", "600")]).await;
    let (refusal, _, _) = replicas.pump_until_refused().await;
    assert_suspended(&refusal, PUMPED_PREFIX);
    let (first, last) = (replicas.at(0), replicas.at(replicas.apps.len() - 1));

    let exempted = first
        .admin()
        .exempt_prefix(ExemptPrefixRequest {
            prefix: PUMPED_PREFIX.into(),
            duration_seconds: 600,
        })
        .await
        .expect("exempts")
        .into_inner();
    assert_eq!(exempted.ends_in_seconds, 600);
    let exemptions = last
        .admin()
        .list_prefix_exemptions(ListPrefixExemptionsRequest {})
        .await
        .expect("lists exemptions")
        .into_inner()
        .prefix_exemptions;
    assert_eq!(exemptions.len(), 1, "{exemptions:?}");
    assert_eq!(exemptions[0].prefix, PUMPED_PREFIX);
    assert!((590..=600).contains(&exemptions[0].ends_in_seconds));
    assert!(
        listed_suspensions(last).await.is_empty(),
        "an exemption lifts the suspension"
    );
    for n in 0..3 {
        replicas
            .at(n)
            .send(&number("628", 800_000 + n))
            .await
            .expect("an exempt prefix is sent to on every replica");
    }

    last.admin()
        .end_prefix_exemption(EndPrefixExemptionRequest {
            prefix: PUMPED_PREFIX.into(),
        })
        .await
        .expect("ends the exemption");
    let exemptions = first
        .admin()
        .list_prefix_exemptions(ListPrefixExemptionsRequest {})
        .await
        .expect("lists exemptions")
        .into_inner()
        .prefix_exemptions;
    assert!(exemptions.is_empty(), "{exemptions:?}");
}

for_each_store!(
    a_prefix_suspended_by_traffic_is_listed_and_lifted_on_every_replica,
    an_exemption_frees_a_prefix_until_it_is_ended,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_an_audit_event_naming_the_operator_and_the_prefix() {
    let redis = RedisServer::start().await;
    let dir = CertDir::new();
    let callers = callers_file_with_admins(&dir);
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_CALLERS_FILE", &callers),
            ("OTP_EVENTS_STREAM", crate::events::STREAM),
        ])
        .spawn()
        .await;
    let mut admin = app.admin();
    let prefix = "+447700";
    admin
        .exempt_prefix(with_token(
            ExemptPrefixRequest {
                prefix: prefix.into(),
                duration_seconds: 3600,
            },
            OPS_TOKEN,
        ))
        .await
        .expect("exempts");
    // Not suspended: nothing changes, so no event.
    let lifted = admin
        .lift_prefix_suspension(with_token(
            LiftPrefixSuspensionRequest {
                prefix: prefix.into(),
            },
            OPS_TOKEN,
        ))
        .await
        .expect("answers")
        .into_inner();
    assert!(!lifted.lifted);
    admin
        .end_prefix_exemption(with_token(
            EndPrefixExemptionRequest {
                prefix: prefix.into(),
            },
            OPS_TOKEN,
        ))
        .await
        .expect("ends the exemption");

    // Written in order: an event for the lift would sit between these two.
    let events = crate::events::entries(&redis.url(), crate::events::STREAM_KEY, 2).await;
    let kinds: Vec<&str> = events.iter().map(|event| event["event"].as_str()).collect();
    assert_eq!(kinds, ["prefix_exempted", "prefix_exemption_ended"]);
    for event in &events {
        assert_eq!(event["prefix"], prefix, "{event:?}");
        assert_eq!(event["operator"], "ops", "{event:?}");
        assert!(!event.contains_key("phone_digest"), "{event:?}");
    }
    assert_eq!(events[0]["duration_seconds"], "3600");
    assert!(!events[1].contains_key("duration_seconds"));
}
