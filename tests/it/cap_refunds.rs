//! The client and global caps are counted after the phone's own limits: when
//! they refuse, what was already counted is taken back, so a refused send
//! costs the numbers (and the client) nothing — under concurrency, and as
//! every replica sees it.

use crate::common::{
    RedisServer, StoreKind, TestApp,
    concurrent::{RACE_SETTINGS, count},
    unique_phone,
};
use futures::future::join_all;
use otp_service::proto::SendOtpRequest;
use tonic::Code;

fn request(phone: &str, client_key: &str) -> SendOtpRequest {
    SendOtpRequest {
        phone_number: phone.into(),
        client_key: client_key.into(),
        ..Default::default()
    }
}

/// One send per phone, all at once, round-robin over `apps`; the gRPC code
/// of each answer, in `phones` order.
async fn send_each_at_once(apps: &[&TestApp], phones: &[String], client_key: &str) -> Vec<Code> {
    let calls = phones.iter().enumerate().map(|(i, phone)| {
        let mut client = apps[i % apps.len()].client();
        let request = request(phone, client_key);
        async move {
            match client.send_otp(request).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        }
    });
    join_all(calls).await
}

fn client_key() -> String {
    format!("client-{}", unique_phone().trim_start_matches('+'))
}

async fn client_cap_refusals_leave_the_numbers_uncounted(store: StoreKind) {
    let app = TestApp::builder()
        .store(store)
        .env(&RACE_SETTINGS)
        .env(&[("OTP_CLIENT_SEND_LIMIT", "3")])
        .spawn()
        .await;
    let client = client_key();
    let phones: Vec<String> = (0..20).map(|_| unique_phone()).collect();
    let codes = send_each_at_once(&[&app], &phones, &client).await;
    assert_eq!(count(&codes, Code::Ok), 3, "{codes:?}");
    assert_eq!(count(&codes, Code::ResourceExhausted), 17, "{codes:?}");
    // The refused numbers' cooldowns were refunded: each can be texted now.
    for (phone, code) in phones.iter().zip(&codes) {
        if *code == Code::ResourceExhausted {
            app.send(phone)
                .await
                .unwrap_or_else(|status| panic!("{phone} was counted: {status:?}"));
        }
    }
    assert_eq!(app.sms.count(), 20);
}

for_each_store!(client_cap_refusals_leave_the_numbers_uncounted);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cap_holds_across_replicas_and_refunds_the_numbers_for_both() {
    let redis = RedisServer::start().await;
    let settings = [("OTP_CLIENT_SEND_LIMIT", "4")];
    let a = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .env(&settings)
        .spawn()
        .await;
    let b = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .env(&settings)
        .spawn()
        .await;
    let client = client_key();
    let phones: Vec<String> = (0..30).map(|_| unique_phone()).collect();
    let codes = send_each_at_once(&[&a, &b], &phones, &client).await;
    assert_eq!(count(&codes, Code::Ok), 4, "{codes:?}");
    assert_eq!(count(&codes, Code::ResourceExhausted), 26, "{codes:?}");
    for (i, (phone, code)) in phones.iter().zip(&codes).enumerate() {
        if *code == Code::ResourceExhausted {
            // Through the other replica than the one that refused it.
            let other = if i % 2 == 0 { &b } else { &a };
            other
                .send(phone)
                .await
                .unwrap_or_else(|status| panic!("{phone} was counted: {status:?}"));
        }
    }
    assert_eq!(a.sms.count() + b.sms.count(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_cap_refusals_refund_the_numbers_and_the_client() {
    // Replica A has a global cap of 3 per minute; replica B, sharing its
    // Redis and its global log, allows far more, so what A refused can be
    // sent through B at once — if (and only if) it was taken back.
    let redis = RedisServer::start().await;
    let a = TestApp::builder()
        .redis(&redis)
        .env(&RACE_SETTINGS)
        .env(&[
            ("OTP_GLOBAL_SEND_LIMIT", "3"),
            ("OTP_CLIENT_SEND_LIMIT", "20"),
        ])
        .spawn()
        .await;
    let b = TestApp::builder()
        .redis(&redis)
        .env(&[
            ("OTP_GLOBAL_SEND_LIMIT", "1000"),
            ("OTP_CLIENT_SEND_LIMIT", "20"),
        ])
        .spawn()
        .await;
    let client = client_key();
    let phones: Vec<String> = (0..20).map(|_| unique_phone()).collect();
    let codes = send_each_at_once(&[&a], &phones, &client).await;
    assert_eq!(count(&codes, Code::Ok), 3, "{codes:?}");
    assert_eq!(count(&codes, Code::ResourceExhausted), 17, "{codes:?}");
    // 3 counted + 17 resends = 20: the client cap admits them only if none
    // of A's 17 refusals was left counted against the client.
    for (phone, code) in phones.iter().zip(&codes) {
        if *code == Code::ResourceExhausted {
            b.send_request(request(phone, &client))
                .await
                .unwrap_or_else(|status| panic!("{phone} or the client was counted: {status:?}"));
        }
    }
    assert_eq!(a.sms.count() + b.sms.count(), 20);
}
