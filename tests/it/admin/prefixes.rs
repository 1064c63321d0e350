//! What the admin API does to the pumping guard's prefixes, on every store
//! and across replicas: list and lift a suspension made by real traffic,
//! exempt a prefix and end the exemption; each change an audit event.

use super::{OPS_TOKEN, callers_file_with_admins, with_token};
use crate::{
    common::{RedisServer, StoreKind, TestApp, tls::CertDir},
    pumping::{MIN_SENDS, PUMPED_PREFIX, Replicas, assert_suspended, number},
};
use otp_service::proto::admin::{
    EndPrefixExemptionRequest, ExemptPrefixRequest, LiftPrefixSuspensionRequest,
    ListPrefixExemptionsRequest, ListSuspendedPrefixesRequest, SuspendedPrefix,
};

async fn listed_suspensions(app: &TestApp) -> Vec<SuspendedPrefix> {
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
    let end_exemption = |app: &TestApp| {
        let mut admin = app.admin();
        async move {
            admin
                .end_prefix_exemption(EndPrefixExemptionRequest {
                    prefix: PUMPED_PREFIX.into(),
                })
                .await
                .expect("answers")
                .into_inner()
                .ended
        }
    };

    assert!(
        !end_exemption(first).await,
        "a prefix never exempt has no exemption to end"
    );
    let listed = listed_suspensions(last).await;
    assert_eq!(
        listed.len(),
        1,
        "nothing changed: still suspended {listed:?}"
    );

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

    assert!(end_exemption(last).await, "ends the exemption");
    let exemptions = first
        .admin()
        .list_prefix_exemptions(ListPrefixExemptionsRequest {})
        .await
        .expect("lists exemptions")
        .into_inner()
        .prefix_exemptions;
    assert!(exemptions.is_empty(), "{exemptions:?}");
    assert!(!end_exemption(first).await, "no longer exempt");
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
    // Never exempt: nothing changes, so no event.
    let ended = admin
        .end_prefix_exemption(with_token(
            EndPrefixExemptionRequest {
                prefix: prefix.into(),
            },
            OPS_TOKEN,
        ))
        .await
        .expect("answers")
        .into_inner();
    assert!(!ended.ended);
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

    // Written in order: an event for the first end would come first, one
    // for the lift between these two.
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
