//! Spend per channel, through the real server and the providers' wire
//! formats against stand-ins: a WhatsApp message costs the WhatsApp price
//! per message and a call the voice price per minute (one minute), whatever
//! the SMS text's segments; a `whatsapp>sms` send reserves the dearer of
//! the two and keeps the price of the channel that carried it. The audit
//! events show each send's estimate and channel; the hourly cap shows what
//! was kept.

use otp_service::proto::Channel;
use tonic::Code;

use super::{assert_spend_refused, prices_file};
use crate::{
    channels::{Providers, meta_accepted, meta_error, send_on},
    common::{RedisServer, TestApp, sms_standins::pairs, unique_phone},
    events::{STREAM, STREAM_KEY, entries},
};

/// SMS through Twilio at 0.05 a segment, WhatsApp through Meta at 0.004 a
/// message, calls through Twilio at 0.12 a minute.
const PRICES: &str = r#"
currency = "USD"
[twilio]
"*" = { sms = "0.05" }
[whatsapp_cloud]
"*" = { whatsapp = "0.004" }
[twilio_voice]
"*" = { voice = "0.12" }
"#;

/// A server on a private Redis (the audit events' stream) with the three
/// channels, [`PRICES`] and `more`.
async fn app(providers: &Providers, redis: &RedisServer, more: &[(&str, &str)]) -> TestApp {
    let (dir, prices) = prices_file(PRICES);
    let mut vars = providers.vars(more);
    vars.push(("OTP_PRICES_FILE".into(), prices));
    vars.push(("OTP_EVENTS_STREAM".into(), STREAM.into()));
    let app = TestApp::builder()
        .redis(redis)
        .env(&pairs(&vars))
        .configured_gateway()
        .spawn()
        .await;
    // The server read the file at startup.
    drop(dir);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_message_and_a_call_cost_their_price_per_message_and_per_minute() {
    let providers = Providers::start(meta_accepted()).await;
    let redis = RedisServer::start().await;
    // Room for one call (0.12) and one WhatsApp message (0.004), not two:
    // priced as SMS (0.05) the message would not fit after the call.
    let app = app(&providers, &redis, &[("OTP_SPEND_LIMIT_PER_HOUR", "0.125")]).await;

    let call = send_on(&app, &unique_phone(), Channel::Voice).await;
    assert_eq!(call.expect("a call").channel(), Channel::Voice);
    let message = send_on(&app, &unique_phone(), Channel::Whatsapp).await;
    assert_eq!(message.expect("a message").channel(), Channel::Whatsapp);
    let status = send_on(&app, &unique_phone(), Channel::Whatsapp)
        .await
        .expect_err("0.124 spent: 0.004 more crosses 0.125");
    assert_spend_refused(&status, "spend_per_hour");

    let events = entries(&redis.url(), STREAM_KEY, 3).await;
    let sent: Vec<_> = events.iter().filter(|e| e["event"] == "sent").collect();
    assert_eq!(sent.len(), 2, "{events:?}");
    // One minute at 0.12, one message at 0.004, in millionths.
    let field = |event: &crate::events::Entry, name: &str| event[name].clone();
    assert_eq!(
        ["channel", "provider", "estimate_micros"].map(|name| field(sent[0], name)),
        ["voice", "twilio_voice", "120000"]
    );
    assert_eq!(
        ["channel", "provider", "estimate_micros"].map(|name| field(sent[1], name)),
        ["whatsapp", "whatsapp_cloud", "4000"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_send_that_falls_through_to_sms_costs_the_sms_price() {
    let not_on_whatsapp = meta_error(
        400,
        131026,
        "(#131026) Message Undeliverable: receiver is not a WhatsApp user",
    );
    let providers = Providers::start(not_on_whatsapp).await;
    let redis = RedisServer::start().await;
    let app = app(
        &providers,
        &redis,
        &[
            ("OTP_CHANNEL_FALLBACK", "whatsapp>sms"),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.09"),
        ],
    )
    .await;

    let sent = send_on(&app, &unique_phone(), Channel::Whatsapp)
        .await
        .expect("SMS carried it");
    assert_eq!(sent.channel(), Channel::Sms);
    // 0.05 kept (the SMS price); the next reserves 0.05 again: over 0.09.
    let status = send_on(&app, &unique_phone(), Channel::Whatsapp)
        .await
        .expect_err("0.05 spent: 0.05 more crosses 0.09");
    assert_spend_refused(&status, "spend_per_hour");

    let events = entries(&redis.url(), STREAM_KEY, 2).await;
    let sent = &events[0];
    assert_eq!(
        ["event", "channel", "provider", "estimate_micros"].map(|name| sent[name].clone()),
        ["sent", "sms", "twilio", "50000"],
        "the SMS price, at the provider and on the channel that carried it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_send_with_an_sms_fallback_reserves_the_sms_price_and_keeps_its_own() {
    let providers = Providers::start(meta_accepted()).await;
    let redis = RedisServer::start().await;
    // Each send reserves 0.05 (SMS, the dearer channel it may fall through
    // to) and keeps 0.004: eleven fit in 0.09 (the eleventh reaches it
    // exactly: 10 × 0.004 + 0.05) only if 0.046 comes back each time.
    let app = app(
        &providers,
        &redis,
        &[
            ("OTP_CHANNEL_FALLBACK", "whatsapp>sms"),
            ("OTP_SPEND_LIMIT_PER_HOUR", "0.09"),
        ],
    )
    .await;
    for _ in 0..11 {
        let sent = send_on(&app, &unique_phone(), Channel::Whatsapp).await;
        assert_eq!(sent.expect("0.004 kept each").channel(), Channel::Whatsapp);
    }
    // 0.044 kept; 0.05 more reserved would cross 0.09.
    let status = send_on(&app, &unique_phone(), Channel::Whatsapp)
        .await
        .expect_err("cap");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_spend_refused(&status, "spend_per_hour");
    // Without the fallback's SMS price in the reservation, 0.004 would fit.
    let sms = providers.twilio_requests(crate::common::sms_standins::TWILIO_PATH);
    assert!(sms.await.is_empty(), "no SMS was sent");
}
