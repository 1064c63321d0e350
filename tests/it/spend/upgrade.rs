//! A rolling upgrade keeps the spend caps: a window new in this layout
//! (`spend_window.lua`) takes over the spend the version before kept in its
//! own hash (`<prefix>:{spend}:service:<period>`, a running total `t` beside
//! each bucket), and leaves that hash to the replicas still running it.

use deadpool_redis::redis::{self, AsyncCommands};

use super::{assert_spend_refused, console_prices};
use crate::common::{RedisServer, TestApp, unique_phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_the_previous_layout_reserved_still_counts_after_the_upgrade() {
    let (_dir, prices) = console_prices("0.01");
    let redis = RedisServer::start().await;
    let mut conn = redis.connection().await;
    // What the version before wrote for 0.05 reserved this minute: the
    // bucket (a minute of the hour's window), the total and its lowest bucket.
    let (seconds, _micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut conn)
        .await
        .expect("TIME");
    let bucket = (seconds * 1_000 / 60_000).to_string();
    let old = "otp:{spend}:service:3600000";
    let _: () = conn
        .hset_multiple(
            old,
            &[(bucket.as_str(), "50000"), ("t", "50000"), ("o", &bucket)],
        )
        .await
        .expect("HSET");

    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.06"),
        ])
        .spawn()
        .await;
    app.send(&unique_phone())
        .await
        .expect("0.05 before the upgrade + 0.01 = the cap");
    let status = app
        .send(&unique_phone())
        .await
        .expect_err("0.07 would cross 0.06: the old layout's 0.05 counts");
    assert_spend_refused(&status, "spend_per_hour");
    assert_eq!(app.sms.count(), 1);

    let kept: Vec<(String, String)> = conn.hgetall(old).await.expect("HGETALL");
    assert_eq!(kept.len(), 3, "the old hash is left as it was: {kept:?}");
}
