//! The pumping guard cannot be aimed at real users (issue 25), run as an
//! attacker would, at the default of three sources, on every store: one
//! `client_key` plus the anonymous bucket cannot suspend a prefix, three
//! sources can; a number that approved a code passes the suspended prefix;
//! a pumper who approves codes sent to a number it owns inside the range
//! does not keep the range open.

use std::time::Duration;

use otp_service::proto::SendOtpRequest;
use tonic::Status;

use crate::{
    common::{StoreKind, TestApp},
    pumping::{GUARD_VARS, PUMPED_PREFIX, Replicas, assert_suspended, number, send_and_verify},
};

/// The defaults this module is about, over [`GUARD_VARS`] (codes judged 2 s
/// after they are sent); per-number and per-client caps lifted so that only
/// the guard refuses, and no resend cooldown so one number can be texted
/// again at once.
const ATTACK_VARS: [(&str, &str); 5] = [
    ("OTP_PUMPING_MIN_SOURCES", "3"),
    ("OTP_CLIENT_SEND_LIMIT", "100000"),
    ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
    ("OTP_SEND_LIMIT", "20"),
    ("OTP_DAILY_SEND_LIMIT", "20"),
];

/// Longer than a code lives (1 s + 1 s grace): every send made before it is
/// judged on the next one. Time passing on the store's clock, not a wait for
/// an effect.
const JUDGED: Duration = Duration::from_millis(2_500);

async fn start(store: StoreKind) -> Replicas {
    let mut vars = GUARD_VARS.to_vec();
    vars.extend(ATTACK_VARS);
    vars.push(("OTP_PUMPING_SUSPENSION_SECONDS", "600"));
    Replicas::start(store, &vars).await
}

/// A send to `phone` asked for with `client_key` ("" for none).
async fn send_as(app: &TestApp, phone: &str, client_key: &str) -> Result<(), Status> {
    app.send_request(SendOtpRequest {
        phone_number: phone.into(),
        client_key: client_key.into(),
        ..Default::default()
    })
    .await
    .map(drop)
}

/// `count` unverified sends to new numbers of the pumped range from
/// `client_key`, numbered from `first`, alternating replicas; each admitted.
async fn pump(replicas: &Replicas, client_key: &str, first: usize, count: usize) {
    for n in first..first + count {
        send_as(replicas.at(n), &number("628", n), client_key)
            .await
            .unwrap_or_else(|status| panic!("send {n} from `{client_key}`: {status:?}"));
    }
}

async fn one_source_and_the_anonymous_one_cannot_suspend_a_prefix_three_can(store: StoreKind) {
    let replicas = start(store).await;
    // A real user of the range verified a code earlier.
    let known = number("628", 999_999);
    send_and_verify(replicas.at(0), &known).await;
    // The attack: one client_key texts 20 numbers of the range and
    // the anonymous bucket 20 more; nobody verifies.
    pump(&replicas, "attacker", 0, 20).await;
    pump(&replicas, "", 100, 20).await;
    tokio::time::sleep(JUDGED).await;
    pump(&replicas, "attacker", 200, 5).await;
    pump(&replicas, "", 300, 5).await;
    send_as(replicas.at(1), &number("628", 400), "a-real-app")
        .await
        .expect("another caller's user is not refused");
    // That send made a third source with an unverified send: once judged,
    // the prefix is pumped by three sources and suspended.
    tokio::time::sleep(JUDGED).await;
    let refusal = send_as(replicas.at(0), &number("628", 500), "attacker")
        .await
        .expect_err("three sources of unverified sends suspend the prefix");
    assert_suspended(&refusal, PUMPED_PREFIX);
    for (n, app) in replicas.apps.iter().enumerate() {
        let status = send_as(app, &number("628", 600 + n), "a-real-app")
            .await
            .expect_err("every replica refuses a new number of the range");
        assert_suspended(&status, PUMPED_PREFIX);
        // The number that approved a code is never collateral.
        let code_sent = send_as(app, &known, "a-real-app").await;
        assert!(code_sent.is_ok(), "the known-good number: {code_sent:?}");
    }
}

async fn a_pumped_prefix_with_one_approving_number_inside_is_still_suspended(store: StoreKind) {
    let replicas = start(store).await;
    // The pumper owns one number of the range (so it is trusted, and its
    // sends never bring a verdict themselves).
    let owned = number("628", 777_777);
    send_and_verify(replicas.at(0), &owned).await;
    for (first, source) in [(0, "pumper-1"), (100, "pumper-2"), (200, "")] {
        pump(&replicas, source, first, 10).await;
    }
    tokio::time::sleep(JUDGED).await;
    // Just before the next verdict it approves 10 more codes sent there:
    // 11 approvals against 31 judged sends would be a third of them if
    // approvals were counted per prefix; per send, 1 of the 31 was approved.
    for round in 0..10 {
        send_and_verify(replicas.at(round), &owned).await;
    }
    let refusal = send_as(replicas.at(0), &number("628", 500), "pumper-1")
        .await
        .expect_err("the approvals of one number keep nothing open");
    assert_suspended(&refusal, PUMPED_PREFIX);
}

for_each_store!(
    one_source_and_the_anonymous_one_cannot_suspend_a_prefix_three_can,
    a_pumped_prefix_with_one_approving_number_inside_is_still_suspended,
);
