//! The signed webhook: the SMS as JSON to the operator's own endpoint (an
//! in-house gateway, AWS SNS behind a lambda, a queue), signed the way
//! Stripe signs its webhooks, so the receiver knows it came from us.
//!
//! ```text
//! POST <OTP_SMS_WEBHOOK_URL>
//! Content-Type: application/json
//! X-OTP-Signature: t=1717000000,v1=<hex HMAC-SHA256(secret, "1717000000." + body)>
//!
//! {"request_id":"9f…","destination":"+14155550123","text":"Your code is 123456…",
//!  "code_length":6,"expires_in_seconds":120,"locale":"pt-BR"}
//! ```
//!
//! The receiver recomputes the HMAC over the timestamp, a dot and the raw
//! body bytes, compares in constant time, refuses timestamps more than five
//! minutes away (replays), and may drop a repeated `request_id` (a retry
//! after a 503). Its answer: 2xx taken (optionally `{"message_id": "…"}`),
//! 422 the number cannot take SMS, 401/403 signature refused, 429/503 not
//! taken now (retried); any other 5xx is taken as "maybe sent".

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::{Client, StatusCode, Url, header::CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::time::Instant;

use super::{
    GatewayError, OutgoingSms,
    http::{Answer, loggable, post},
    provider::SmsProvider,
    retry::{RetryPolicy, TryOutcome},
};
use crate::domain::ApiKey;

/// The header that carries `t=<unix seconds>,v1=<hex signature>`.
pub const SIGNATURE_HEADER: &str = "X-OTP-Signature";
/// Shortest accepted `OTP_SMS_WEBHOOK_SECRET`, in bytes.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// Where the webhook posts and the key it signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `OTP_SMS_WEBHOOK_URL`: http(s), without credentials.
    pub url: Url,
    /// `OTP_SMS_WEBHOOK_SECRET`: at least [`MIN_WEBHOOK_SECRET_BYTES`].
    pub secret: ApiKey,
}

/// Posts each SMS to the operator's endpoint, signed.
pub struct WebhookGateway {
    client: Client,
    url: Url,
    secret: ApiKey,
    retry: RetryPolicy,
}

/// The `X-OTP-Signature` value for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>." ‖ body)>`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

impl WebhookGateway {
    /// The gateway over the shared `client`.
    pub fn new(config: &WebhookConfig, client: Client, retry: RetryPolicy) -> Self {
        Self {
            client,
            url: config.url.clone(),
            secret: config.secret.clone(),
            retry,
        }
    }

    async fn try_once(&self, body: &[u8], deadline: Instant) -> TryOutcome<Option<String>> {
        // Signed per try: a retry carries a fresh timestamp, so a receiver's
        // replay window does not refuse it.
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                sign(self.secret.expose().as_bytes(), timestamp, body),
            )
            .body(body.to_vec());
        let answer = match post(request, deadline).await.into_answer() {
            Ok(answer) => answer,
            Err(no_answer) => return no_answer,
        };
        if answer.status.is_success() {
            let message_id = answer
                .body
                .as_deref()
                .and_then(|body| serde_json::from_slice::<Value>(body).ok())
                .and_then(|json| json.get("message_id")?.as_str().map(str::to_owned));
            return TryOutcome::Done(message_id);
        }
        classify(&answer)
    }
}

/// What a receiver's refusal means (see the module docs).
fn classify<T>(answer: &Answer) -> TryOutcome<T> {
    let said = answer
        .body
        .as_deref()
        .map(|body| loggable(&String::from_utf8_lossy(body)))
        .unwrap_or_default();
    let reason = format!("HTTP {}: {said}", answer.status.as_u16());
    tracing::warn!(status = answer.status.as_u16(), receiver_message = %said, "SMS webhook did not take the message");
    match answer.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            TryOutcome::Failed(GatewayError::Unauthorized(format!(
                "{reason}; the receiver refused the signature: check that it uses OTP_SMS_WEBHOOK_SECRET"
            )))
        }
        StatusCode::UNPROCESSABLE_ENTITY => TryOutcome::Failed(GatewayError::Undeliverable(reason)),
        _ => answer.refusal(reason),
    }
}

#[async_trait]
impl SmsProvider for WebhookGateway {
    async fn send(
        &self,
        sms: &OutgoingSms<'_>,
        deadline: Instant,
    ) -> Result<Option<String>, GatewayError> {
        let body = json!({
            "request_id": sms.request_id,
            "destination": sms.to.e164(),
            "text": sms.text,
            "code_length": sms.code_length,
            "expires_in_seconds": sms.expires_in.as_secs(),
            "locale": sms.locale,
        })
        .to_string()
        .into_bytes();
        self.retry
            .run(deadline, |_| self.try_once(&body, deadline))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Cross-checked with: printf '1717000000.{"a":1}' |
        //   openssl dgst -sha256 -hmac 'whsec_test_0123456789abcdef0123456789'
        assert_eq!(
            sign(
                b"whsec_test_0123456789abcdef0123456789",
                1_717_000_000,
                br#"{"a":1}"#
            ),
            "t=1717000000,v1=2ff43237f53bf7aa616090bf6a0194dff67666d93679e8a8146250cf853287f5"
        );
    }
}
