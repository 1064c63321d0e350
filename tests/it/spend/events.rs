//! Audit events carry the estimate: a sent code its price at the provider
//! that took it, a spend-cap refusal the cap.

use super::console_prices;
use crate::{
    common::{RedisServer, TestApp, unique_phone},
    events::{STREAM, STREAM_KEY, entries},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_event_carries_its_estimate_and_a_cap_refusal_names_the_cap() {
    let (_dir, prices) = console_prices("0.0125");
    let redis = RedisServer::start().await;
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_EVENTS_STREAM", STREAM),
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.02"),
        ])
        .spawn()
        .await;
    app.send(&unique_phone()).await.expect("sent");
    app.send(&unique_phone())
        .await
        .expect_err("a second would cross 0.02");

    let events = entries(&redis.url(), STREAM_KEY, 2).await;
    assert_eq!(events[0]["event"], "sent");
    // One segment at 0.0125: 12 500 millionths.
    assert_eq!(events[0]["estimate_micros"], "12500");
    assert_eq!(events[0]["currency"], "EUR");
    assert_eq!(events[1]["event"], "refused");
    assert_eq!(events[1]["limit"], "spend_per_hour");
}
