//! The spend caps on every store: the exact crossing, refunds of sure
//! failures, the per-caller cap, two replicas racing, segments, and a
//! destination without a price.

use std::time::Duration;

use futures_util::future::join_all;
use tonic::Code;
use tonic_types::StatusExt;

use super::{assert_spend_refused, console_prices, prices_file};
use crate::{
    callers::{BILLING_TOKEN, CHECKOUT_TOKEN, callers_file, send_as},
    common::{RedisServer, StoreKind, TestApp, connect, tls::CertDir, unique_phone},
};

async fn the_hourly_cap_refuses_exactly_the_send_that_would_cross_it(kind: StoreKind) {
    let (_dir, prices) = console_prices("0.01");
    let app = TestApp::builder()
        .store(kind)
        .env(&[
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.03"),
            ("OTP_SPEND_LIMIT_PER_DAY", "1"),
        ])
        .spawn()
        .await;
    for _ in 0..3 {
        app.send(&unique_phone()).await.expect("within the cap");
    }
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("the fourth crosses it");
    let retry = assert_spend_refused(&status, "spend_per_hour");
    assert!((3_540..=3_661).contains(&retry), "about an hour: {retry}");
    assert_eq!(app.sms.count(), 3, "nothing sent past the cap");
}

async fn a_send_that_surely_failed_gives_its_estimate_back(kind: StoreKind) {
    let (_dir, prices) = console_prices("0.01");
    let app = TestApp::builder()
        .store(kind)
        .env(&[
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.02"),
        ])
        .spawn()
        .await;
    app.sms.fail_sends(true);
    for _ in 0..3 {
        let status = app.send(&unique_phone()).await.expect_err("gateway down");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    app.sms.fail_sends(false);
    for _ in 0..2 {
        app.send(&unique_phone())
            .await
            .expect("the failures were refunded");
    }
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("now the cap is full");
    assert_spend_refused(&status, "spend_per_hour");
}

async fn each_caller_has_its_own_daily_spend_cap(kind: StoreKind) {
    let (_dir, prices) = console_prices("0.5");
    let dir = CertDir::new();
    let callers = callers_file(&dir);
    let app = TestApp::builder()
        .store(kind)
        .env(&[
            ("OTP_PRICES_FILE", &prices),
            ("OTP_CALLERS_FILE", &callers),
            ("OTP_CALLER_SPEND_LIMIT_PER_DAY", "1"),
        ])
        .spawn()
        .await;
    let channel = connect(app.addr).await;
    let checkout = format!("Bearer {CHECKOUT_TOKEN}");
    for _ in 0..2 {
        send_as(channel.clone(), &unique_phone(), Some(&checkout))
            .await
            .expect("within checkout's cap");
    }
    let status = send_as(channel.clone(), &unique_phone(), Some(&checkout))
        .await
        .expect_err("checkout's third");
    let retry = assert_spend_refused(&status, "caller_spend_per_day");
    assert!(retry > 86_000, "about a day: {retry}");
    let billing = format!("Bearer {BILLING_TOKEN}");
    send_as(channel, &unique_phone(), Some(&billing))
        .await
        .expect("billing's own cap is untouched");
}

async fn long_gsm7_and_ucs2_templates_are_estimated_per_segment(kind: StoreKind) {
    let (_dir, prices) = console_prices("0.01");
    // 70 characters of Cyrillic plus the code: UCS-2, two segments (67 each).
    let template = format!("{} {{code}}", "Ж".repeat(70));
    let app = TestApp::builder()
        .store(kind)
        .env(&[
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.05"),
            ("OTP_MESSAGE_TEMPLATE", &template),
        ])
        .spawn()
        .await;
    for _ in 0..2 {
        app.send(&unique_phone()).await.expect("two segments each");
    }
    // 0.04 spent: a third two-segment send (0.06) would cross 0.05.
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("two segments more");
    assert_spend_refused(&status, "spend_per_hour");

    // GSM-7: 153 letters, a space, the code and `€` (an escape plus itself):
    // 162 septets, two segments; one fewer letter and no `€` would be one.
    let template = format!("{} {{code}}€", "a".repeat(153));
    let app = TestApp::builder()
        .store(kind)
        .env(&[
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.03"),
            ("OTP_MESSAGE_TEMPLATE", &template),
        ])
        .spawn()
        .await;
    app.send(&unique_phone()).await.expect("0.02");
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("0.04 would cross 0.03");
    assert_spend_refused(&status, "spend_per_hour");
}

async fn a_destination_without_a_price_is_refused_and_never_sent(kind: StoreKind) {
    let (_dir, prices) = prices_file("currency = \"USD\"\n[console]\nUS = { sms = \"0.01\" }\n");
    let app = TestApp::builder()
        .store(kind)
        .env(&[("OTP_PRICES_FILE", &prices)])
        .spawn()
        .await;
    let status = app
        .send("+447400123456")
        .await
        .expect_err("no GB row, no default");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .expect("ErrorInfo");
    assert_eq!(info.reason, "PRICE_UNKNOWN");
    assert_eq!(info.metadata.get("region").map(String::as_str), Some("GB"));
    assert_eq!(app.sms.count(), 0);
    app.send(&unique_phone()).await.expect("the US has a price");
    // The refusal counted nothing: the number may be sent to at once once priced.
    assert_eq!(app.sms.count(), 1);
}

for_each_store!(
    the_hourly_cap_refuses_exactly_the_send_that_would_cross_it,
    a_send_that_surely_failed_gives_its_estimate_back,
    each_caller_has_its_own_daily_spend_cap,
    long_gsm7_and_ucs2_templates_are_estimated_per_segment,
    a_destination_without_a_price_is_refused_and_never_sent,
);

/// Two replicas on one Redis, sending at once: the cap holds across them,
/// never overshooting by more than one send's estimate (here: not at all,
/// as every reservation is all or nothing and the same size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_over_two_replicas_never_overshoot_the_cap() {
    let (_dir, prices) = console_prices("0.01");
    let redis = RedisServer::start().await;
    let vars = [
        ("OTP_PRICES_FILE", prices.as_str()),
        ("OTP_SPEND_LIMIT_PER_HOUR", "0.05"),
    ];
    let a = TestApp::builder().redis(&redis).env(&vars).spawn().await;
    let b = TestApp::builder().redis(&redis).env(&vars).spawn().await;
    let sends = (0..24).map(|n| {
        let app = if n % 2 == 0 { &a } else { &b };
        async move { app.send(&unique_phone()).await }
    });
    let results = tokio::time::timeout(Duration::from_secs(30), join_all(sends))
        .await
        .expect("sends answer");
    let sent = results.iter().filter(|result| result.is_ok()).count();
    for status in results.iter().filter_map(|result| result.as_ref().err()) {
        assert_spend_refused(status, "spend_per_hour");
    }
    assert_eq!(sent, 5, "0.05 at 0.01 a send, across both replicas");
    assert_eq!(a.sms.count() + b.sms.count(), 5);
}
