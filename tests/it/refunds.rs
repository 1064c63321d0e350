//! Which failed sends are taken back from the limits (README, SendOtp): only
//! a send that surely never reached the gateway is refunded; one that may
//! have gone out still counts, so a slow or flaky gateway cannot be used to
//! text a number without limit. One table, through the real server and a
//! stand-in TextBee; and `Retry-After` in both its forms.

use std::time::{Duration, Instant, SystemTime};

use crate::common::{
    StoreKind,
    sms_standins::{closed_port_url, standin_answering_first, textbee_app_at},
    unique_phone,
};
use tonic::Code;
use tonic_types::StatusExt;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

const SEND_PATH: &str = "/api/v1/gateway/devices/dev-42/send-sms";

/// What the gateway does on the first try.
#[derive(Clone, Copy, Debug)]
enum FirstTry {
    /// Nothing listens on the gateway's port.
    ConnectError,
    /// Answers this HTTP status.
    Status(u16),
    /// Answers only after the send timeout.
    NoAnswer,
}

/// One row: what the gateway did, what the caller is told, whether the
/// send is refunded (the cooldown does not refuse an immediate resend).
struct Row {
    first_try: FirstTry,
    caller_sees: Code,
    refunded: bool,
}

const MATRIX: [Row; 9] = [
    Row {
        first_try: FirstTry::ConnectError,
        caller_sees: Code::Unavailable,
        refunded: true,
    },
    Row {
        first_try: FirstTry::Status(429),
        caller_sees: Code::Unavailable,
        refunded: true,
    },
    Row {
        first_try: FirstTry::Status(503),
        caller_sees: Code::Unavailable,
        refunded: true,
    },
    Row {
        first_try: FirstTry::Status(401),
        caller_sees: Code::Internal,
        refunded: true,
    },
    Row {
        first_try: FirstTry::Status(403),
        caller_sees: Code::Internal,
        refunded: true,
    },
    Row {
        first_try: FirstTry::Status(400),
        caller_sees: Code::Internal,
        refunded: true,
    },
    Row {
        first_try: FirstTry::NoAnswer,
        caller_sees: Code::Unavailable,
        refunded: false,
    },
    Row {
        first_try: FirstTry::Status(500),
        caller_sees: Code::Unavailable,
        refunded: false,
    },
    Row {
        first_try: FirstTry::Status(502),
        caller_sees: Code::Unavailable,
        refunded: false,
    },
];

fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(serde_json::json!({
        "data": { "success": true, "smsBatchId": "b1", "recipientCount": 1 }
    }))
}

/// A gateway URL whose first POST does `first_try` and later ones succeed;
/// the server is kept alive by the caller.
async fn gateway(first_try: FirstTry) -> (String, Option<MockServer>) {
    if let FirstTry::ConnectError = first_try {
        return (format!("{}{SEND_PATH}", closed_port_url()), None);
    }
    let first = match first_try {
        FirstTry::Status(status) => ResponseTemplate::new(status),
        _ => accepted().set_delay(Duration::from_secs(30)),
    };
    let server = standin_answering_first(first, accepted()).await;
    (format!("{}{SEND_PATH}", server.uri()), Some(server))
}

async fn refund_matrix(store: StoreKind) {
    for row in MATRIX {
        let (url, server) = gateway(row.first_try).await;
        let app = textbee_app_at(
            store,
            &url,
            &[
                ("OTP_SMS_MAX_RETRIES", "0"),
                // The send budget must cover at least one connect.
                ("OTP_SMS_CONNECT_TIMEOUT_MS", "500"),
                ("OTP_SMS_SEND_TIMEOUT_MS", "1000"),
            ],
        )
        .await;
        let phone = unique_phone();
        let what = format!("{:?}", row.first_try);
        let failed = app.send(&phone).await.expect_err(&what);
        assert_eq!(failed.code(), row.caller_sees, "{what}: {failed:?}");
        let resend = app.send(&phone).await;
        let refused = matches!(&resend, Err(status) if status.code() == Code::ResourceExhausted);
        assert_eq!(
            !refused, row.refunded,
            "{what}: refunded should be {}, the resend got {resend:?}",
            row.refunded
        );
        let tries = match &server {
            Some(server) => server.received_requests().await.expect("recorded").len(),
            None => 0,
        };
        let expected_tries = match (row.first_try, row.refunded) {
            (FirstTry::ConnectError, _) => 0,
            (_, true) => 2,
            (_, false) => 1,
        };
        assert_eq!(
            tries, expected_tries,
            "{what}: requests that reached the gateway"
        );
        app.stop().await;
    }
}

/// The first whole second at or after `time`.
fn whole_second_after(time: SystemTime) -> SystemTime {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970");
    let whole = since_epoch.as_secs() + u64::from(since_epoch.subsec_nanos() > 0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(whole)
}

/// A 429 whose `Retry-After` (delta-seconds or HTTP-date) is honoured before
/// the retry, within the send budget.
async fn retry_after_in_seconds_and_as_a_date_is_honoured(store: StoreKind) {
    for form in ["seconds", "HTTP-date"] {
        let server = MockServer::start().await;
        let url = format!("{}{SEND_PATH}", server.uri());
        let app = textbee_app_at(store, &url, &[("OTP_SMS_SEND_TIMEOUT_MS", "6000")]).await;
        // Mounted once the app is up, so the date is still ahead when sent.
        // The date is a whole second (an HTTP-date has no fraction), so it
        // says exactly when the retry may go.
        let not_before = whole_second_after(SystemTime::now() + Duration::from_secs(2));
        let value = match form {
            "seconds" => "1".to_owned(),
            _ => httpdate::fmt_http_date(not_before),
        };
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", value.as_str()))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(accepted())
            .mount(&server)
            .await;
        let started = Instant::now();
        app.send(&unique_phone())
            .await
            .unwrap_or_else(|status| panic!("{form}: retried and sent: {status:?}"));
        let waited = started.elapsed();
        let seen = server.received_requests().await.expect("recorded");
        assert_eq!(seen.len(), 2, "{form}: one 429, one retry");
        if form == "seconds" {
            assert!(
                waited >= Duration::from_secs(1),
                "{form} {value:?}: retried after {waited:?}"
            );
        } else {
            // The send ends after its retry, which may not precede the date.
            assert!(
                SystemTime::now() >= not_before,
                "{form} {value:?}: done before the date it was told to wait for"
            );
        }
        assert!(waited < Duration::from_secs(6), "{form}: {waited:?}");
        app.stop().await;
    }
}

/// README: UNAVAILABLE is "safe to retry (with the same idempotency_key)".
/// After a send that may have gone out, the retry must not text again: it is
/// refused by the cooldown, with the delay to wait; after a sure failure
/// the same retry sends.
async fn an_idempotent_retry_after_a_failed_send_never_texts_twice(store: StoreKind) {
    for (first_try, sends_again) in [
        (FirstTry::Status(500), false),
        (FirstTry::Status(503), true),
    ] {
        let (url, server) = gateway(first_try).await;
        let server = server.expect("a stand-in gateway");
        let app = textbee_app_at(store, &url, &[("OTP_SMS_MAX_RETRIES", "0")]).await;
        let phone = unique_phone();
        let request = otp_service::proto::SendOtpRequest {
            phone_number: phone.clone(),
            idempotency_key: format!("retry-{}", &phone[1..]),
            ..Default::default()
        };
        let failed = app.send_request(request.clone()).await.expect_err("failed");
        assert_eq!(
            failed.code(),
            Code::Unavailable,
            "{first_try:?}: {failed:?}"
        );
        let retry = app.send_request(request).await;
        let tries = server.received_requests().await.expect("recorded").len();
        if sends_again {
            retry.unwrap_or_else(|status| panic!("{first_try:?}: retry sends: {status:?}"));
            assert_eq!(tries, 2, "{first_try:?}");
        } else {
            let refused = retry.expect_err("a send that may have gone out is not repeated");
            assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
            // The delay to wait is the resend cooldown (30 s by default).
            let delay = refused
                .get_error_details()
                .retry_info()
                .and_then(|retry| retry.retry_delay)
                .expect("RetryInfo with the delay to wait");
            assert!(
                delay > Duration::ZERO && delay <= Duration::from_secs(30),
                "{first_try:?}: retry in {delay:?}"
            );
            assert_eq!(tries, 1, "{first_try:?}: no second SMS");
        }
        app.stop().await;
    }
}

for_each_store!(
    an_idempotent_retry_after_a_failed_send_never_texts_twice,
    refund_matrix,
    retry_after_in_seconds_and_as_a_date_is_honoured
);
