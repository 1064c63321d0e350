//! Every limit and the pumping guard count a WhatsApp message or a call
//! exactly like an SMS (the send is counted before it goes out, whatever
//! the channel), and a resend may ask for another channel: a new code under
//! the same limits and wrong-guess budget. On every store.

use std::time::Duration;

use otp_service::proto::{Channel, SendOtpRequest, SendOtpResponse, VerifyOtpResult};
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::{
    common::{RecordingGateway, StoreKind, TestApp, sms_standins::assert_code_works},
    pumping::{GUARD_VARS, MIN_SENDS, assert_suspended, number, send_and_verify},
};

/// The pumped range of these cases: +1 669 2xx xxxx, prefix `+16692`.
const PUMPED_AREA: &str = "669";
const PUMPED_PREFIX: &str = "+16692";

async fn send_on(app: &TestApp, phone: &str, channel: Channel) -> Result<SendOtpResponse, Status> {
    app.send_request(SendOtpRequest {
        phone_number: phone.into(),
        channel: channel.into(),
        ..Default::default()
    })
    .await
}

/// A server whose gateway takes every channel (recording what it sends).
async fn app(store: StoreKind, vars: &[(&str, &str)]) -> TestApp {
    TestApp::builder()
        .store(store)
        .env(vars)
        .gateway(RecordingGateway::default().serving_every_channel())
        .spawn()
        .await
}

async fn a_resend_on_another_channel_is_a_new_code_under_the_same_limits(store: StoreKind) {
    let app = app(
        store,
        &[
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
            ("OTP_SEND_LIMIT", "2"),
        ],
    )
    .await;
    let phone = crate::common::unique_phone();

    let first = send_on(&app, &phone, Channel::Sms).await.expect("SMS sent");
    let sms_code = app.sms.last_code_for(&phone).expect("an SMS");
    // The user got no SMS and asks for a call.
    let call = send_on(&app, &phone, Channel::Voice)
        .await
        .expect("call placed");
    let voice_code = app.sms.last_code_for(&phone).expect("a call");
    assert_eq!(call.channel(), Channel::Voice);
    assert_eq!(call.attempts_remaining, first.attempts_remaining);

    if sms_code != voice_code {
        let stale = app.verify(&phone, &sms_code).await.expect("answers");
        assert_eq!(
            stale.result(),
            VerifyOtpResult::Incorrect,
            "the SMS code died"
        );
        assert_eq!(stale.attempts_remaining, first.attempts_remaining - 1);
    }
    let third = send_on(&app, &phone, Channel::Whatsapp).await;
    assert!(
        matches!(&third, Err(status) if status.code() == Code::ResourceExhausted),
        "the call counted against OTP_SEND_LIMIT like an SMS: {third:?}"
    );
    assert_eq!(app.sms.count(), 2, "no message for the refused send");
    assert_code_works(&app, &phone, &voice_code).await;
}

async fn a_call_waits_out_the_cooldown_of_an_sms_and_the_other_way_round(store: StoreKind) {
    let app = app(store, &[]).await;
    let (one, two) = (crate::common::unique_phone(), crate::common::unique_phone());
    for (phone, first, then) in [
        (&one, Channel::Sms, Channel::Voice),
        (&two, Channel::Voice, Channel::Sms),
    ] {
        let sent = send_on(&app, phone, first).await.expect("first send");
        assert!(sent.resend_after_seconds > 0);
        let status = send_on(&app, phone, then).await.expect_err("cooldown");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
}

async fn the_pumping_guard_suspends_a_prefix_pumped_with_calls(store: StoreKind) {
    let app = app(store, &GUARD_VARS).await;
    let give_up = Instant::now() + Duration::from_secs(30);
    let (refusal, admitted) = 'pump: {
        for n in 0.. {
            assert!(Instant::now() < give_up, "no suspension after {n} calls");
            send_and_verify(&app, &number("650", 500_000 + n)).await;
            if let Err(status) = send_on(&app, &number(PUMPED_AREA, n), Channel::Voice).await {
                break 'pump (status, n);
            }
        }
        unreachable!("the loop breaks or panics")
    };
    assert!(admitted >= MIN_SENDS, "suspended after {admitted} calls");
    assert_suspended(&refusal, PUMPED_PREFIX);
    let calls = app
        .sms
        .sent()
        .into_iter()
        .filter(|sent| sent.to_e164.starts_with(PUMPED_PREFIX))
        .inspect(|sent| assert_eq!(sent.channel, otp_service::sms::Channel::Voice))
        .count();
    assert_eq!(calls, admitted, "no call for a refused send");
    let sms = send_on(&app, &number(PUMPED_AREA, 900_000), Channel::Sms).await;
    assert_suspended(&sms.expect_err("SMS to the prefix too"), PUMPED_PREFIX);
}

for_each_store!(
    a_resend_on_another_channel_is_a_new_code_under_the_same_limits,
    a_call_waits_out_the_cooldown_of_an_sms_and_the_other_way_round,
    the_pumping_guard_suspends_a_prefix_pumped_with_calls,
);
