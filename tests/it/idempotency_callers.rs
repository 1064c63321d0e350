//! Idempotency keys are scoped to the authenticated caller: the same key
//! from another caller is another key, so caller B replaying caller A's key
//! gets neither A's response nor any hint of the number A used it for.

use crate::{
    callers::{BILLING_TOKEN, CHECKOUT_TOKEN, callers_file},
    common::{StoreKind, TestApp, tls::CertDir, unique_phone},
};
use otp_service::proto::{SendOtpRequest, SendOtpResponse};
use tonic::{Code, Request, Status};

async fn keyed_send_as(
    app: &TestApp,
    token: &str,
    phone: &str,
    key: &str,
) -> Result<SendOtpResponse, Status> {
    let mut request = Request::new(SendOtpRequest {
        phone_number: phone.into(),
        idempotency_key: key.into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII header"),
    );
    app.client()
        .send_otp(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn another_callers_idempotency_key_is_a_fresh_key(store: StoreKind) {
    let dir = CertDir::new();
    let file = callers_file(&dir);
    let app = TestApp::builder()
        .store(store)
        .env(&[
            ("OTP_CALLERS_FILE", &file),
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
        ])
        .spawn()
        .await;
    let (a_phone, b_phone) = (unique_phone(), unique_phone());
    let key = format!("shared-{}", &a_phone[1..]);

    let first = keyed_send_as(&app, CHECKOUT_TOKEN, &a_phone, &key)
        .await
        .expect("A sends");
    // B with A's key, for another number: not "already used for a different
    // phone_number" (that would say A used it), but a send of B's own.
    let b_first = keyed_send_as(&app, BILLING_TOKEN, &b_phone, &key)
        .await
        .expect("B's key is B's own");
    assert_eq!(app.sms.count(), 2, "B's call texted B's number");
    assert!(app.sms.last_code_for(&b_phone).is_some());
    assert!(
        b_first
            .masked_phone_number
            .ends_with(&b_phone[b_phone.len() - 4..]),
        "B's own number: {}",
        b_first.masked_phone_number
    );

    // Each caller's retries get that caller's own first response, no SMS.
    let a_again = keyed_send_as(&app, CHECKOUT_TOKEN, &a_phone, &key)
        .await
        .expect("A's retry");
    assert_eq!(a_again, first);
    let b_again = keyed_send_as(&app, BILLING_TOKEN, &b_phone, &key)
        .await
        .expect("B's retry");
    assert_eq!(b_again, b_first);
    assert_eq!(app.sms.count(), 2, "retries send nothing");

    // Within one caller the key is still bound to its number.
    let reused = keyed_send_as(&app, CHECKOUT_TOKEN, &b_phone, &key)
        .await
        .expect_err("A's key, another number");
    assert_eq!(reused.code(), Code::InvalidArgument);
}

for_each_store!(another_callers_idempotency_key_is_a_fresh_key);
