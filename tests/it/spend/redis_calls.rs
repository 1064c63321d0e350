//! On one Redis server a priced, capped SendOtp is one EVALSHA, as an
//! unpriced one is: the spend caps' reservation is a step of the send's
//! script (`count_send_and_put_code.lua`), undoing a send they refuse is
//! too, and settling at the carrier's price adds nothing when it is the
//! price reserved.

use super::{assert_spend_refused, console_prices};
use crate::common::{RedisServer, TestApp, unique_phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_send_on_one_redis_is_one_evalsha_reserved_or_refused() {
    let (_dir, prices) = console_prices("0.01");
    let redis = RedisServer::start().await;
    // The pumping guard is off: its gauge reads Redis in the background, at
    // no fixed moment.
    let app = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_PUMPING_GUARD", "off"),
            ("OTP_PRICES_FILE", &prices),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.06"),
            ("OTP_SPEND_LIMIT_PER_DAY", "1"),
        ])
        .spawn()
        .await;
    // The first send loads its scripts (NOSCRIPT, then the retry) and reads
    // the layout marker once for the process: counted from after it.
    app.send(&unique_phone()).await.expect("within the caps");
    let loaded = redis.command_calls("evalsha").await;
    for _ in 0..5 {
        app.send(&unique_phone()).await.expect("within the caps");
    }
    assert_eq!(
        redis.command_calls("evalsha").await,
        loaded + 5,
        "the counts, the code and both caps' reservation in one script"
    );

    let phone = unique_phone();
    let status = app.send(&phone).await.expect_err("0.07 would cross 0.06");
    assert_spend_refused(&status, "spend_per_hour");
    assert_eq!(
        redis.command_calls("evalsha").await,
        loaded + 5 + 1,
        "the refusal took the counts and the code back in the same script"
    );
    let left = app.time_left(&phone).await.expect("TimeLeft answers");
    assert!(!left.pending, "no code left behind by the refused send");
    assert_eq!(app.sms.count(), 6);
}
