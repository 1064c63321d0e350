//! TextBee (textbee.dev or self-hosted): the exact request TextBee expects,
//! its answers sorted into "surely not sent", "taken" or "maybe taken",
//! and only harmless facts in the log.

use async_trait::async_trait;
use reqwest::{Client, StatusCode, Url, header::HeaderValue};
use serde_json::{Value, json};
use tokio::time::Instant;

mod answer;

use answer::{batch_id, gateway_message};

use super::{
    GatewayError, OutgoingSms, SmsSetupError,
    http::{Answer, Posted, millis, post},
    provider::SmsProvider,
    retry::{RetryPolicy, TryOutcome},
};
use crate::domain::ApiKey;

/// Everything needed to send through TextBee. `Debug` never shows the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBeeConfig {
    /// The full send URL (`SMS_SENDER_API`), e.g.
    /// `https://api.textbee.dev/api/v1/gateway/devices/<DEVICE_ID>/send-sms`;
    /// http or https, without credentials in it.
    pub url: Url,
    /// Sent as `x-api-key` (`TEXTBEE_API_KEY`).
    pub api_key: ApiKey,
}

/// Sends through TextBee's `POST …/gateway/devices/<id>/send-sms`:
/// header `x-api-key`, body `{"recipients": ["+<E.164>"], "message": "<text>"}`.
///
/// Retries only after a try that surely did not reach TextBee (no
/// connection, 429, 503). Logs carry the masked phone, try number, HTTP
/// status, latency and TextBee's batch id; never the key or the text.
pub struct TextBeeGateway {
    client: Client,
    url: Url,
    api_key: HeaderValue,
    retry: RetryPolicy,
}

impl TextBeeGateway {
    /// The gateway over the shared `client`.
    pub fn new(
        config: &TextBeeConfig,
        client: Client,
        retry: RetryPolicy,
    ) -> Result<Self, SmsSetupError> {
        let mut api_key = HeaderValue::from_str(config.api_key.expose())
            .map_err(|_| SmsSetupError("TEXTBEE_API_KEY is not a valid header value".into()))?;
        // Keeps the key out of `Debug` output of the request and out of HTTP/2 header tables.
        api_key.set_sensitive(true);
        Ok(Self {
            client,
            url: config.url.clone(),
            api_key,
            retry,
        })
    }

    /// One POST, its answer classified.
    async fn try_once(
        &self,
        sms: &OutgoingSms<'_>,
        body: &Value,
        attempt: u32,
        deadline: Instant,
    ) -> TryOutcome<Option<String>> {
        let started = Instant::now();
        let request = self
            .client
            .post(self.url.clone())
            .header("x-api-key", self.api_key.clone())
            .json(body);
        let answer = match post(request, deadline).await {
            Posted::Answered(answer) => answer,
            Posted::NotSent(reason) => {
                tracing::warn!(phone = %sms.to, attempt, error = %reason, "TextBee could not be reached");
                return TryOutcome::NotSent {
                    reason,
                    retry_after: None,
                    connect_failed: true,
                };
            }
            Posted::Lost(reason) => {
                tracing::warn!(phone = %sms.to, attempt, error = %reason, "TextBee request lost; it may have been taken");
                return TryOutcome::Failed(GatewayError::Uncertain(reason));
            }
        };
        let latency_ms = millis(started.elapsed());
        let status = answer.status;
        if status.is_success() {
            let batch_id = answer.body.as_deref().and_then(batch_id);
            tracing::info!(
                phone = %sms.to,
                attempt,
                status = status.as_u16(),
                latency_ms,
                sms_batch_id = batch_id.as_deref().unwrap_or("-"),
                "TextBee accepted the message"
            );
            return TryOutcome::Done(batch_id);
        }
        let message = gateway_message(answer.body.as_deref().unwrap_or_default());
        tracing::warn!(
            phone = %sms.to,
            attempt,
            status = status.as_u16(),
            latency_ms,
            retry_after_ms = answer.retry_after.map(millis),
            gateway_message = %message,
            "TextBee did not accept the message"
        );
        classify_refusal(&answer, format!("HTTP {}: {message}", status.as_u16()))
    }
}

/// What a non-2xx answer means.
fn classify_refusal<T>(answer: &Answer, reason: String) -> TryOutcome<T> {
    match answer.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => TryOutcome::Failed(
            GatewayError::Unauthorized(format!("{reason}; check TEXTBEE_API_KEY")),
        ),
        // 429 and 503 say "not processed"; any other 5xx may have come
        // after TextBee queued the message.
        _ => answer.refusal(reason),
    }
}

#[async_trait]
impl SmsProvider for TextBeeGateway {
    async fn send(
        &self,
        sms: &OutgoingSms<'_>,
        deadline: Instant,
    ) -> Result<Option<String>, GatewayError> {
        let body = json!({ "recipients": [sms.to.e164()], "message": sms.text });
        self.retry
            .run(deadline, |attempt| {
                self.try_once(sms, &body, attempt, deadline)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::PhoneNumber;

    /// A refused connection surely sent nothing, so it is retried: the
    /// final reason counts every try, and the send ends well within budget.
    #[tokio::test]
    async fn a_refused_connection_is_retried_within_the_budget() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port");
        let config = TextBeeConfig {
            url: Url::parse(&format!("http://{closed}/send-sms")).expect("url"),
            api_key: ApiKey::parse("key").expect("key"),
        };
        let connect_timeout = Duration::from_millis(500);
        let client = super::super::http_client(connect_timeout).expect("client");
        let retry = RetryPolicy {
            max_retries: 2,
            connect_timeout,
        };
        let gateway = TextBeeGateway::new(&config, client, retry).expect("gateway");
        let phone = PhoneNumber::parse("+14155550123").expect("phone");
        let sms = OutgoingSms::new(&phone, "code 123456", 6, Duration::from_secs(60), None);
        let budget = Duration::from_secs(5);
        let started = Instant::now();

        let result = SmsProvider::send(&gateway, &sms, started + budget).await;

        let Err(GatewayError::Unavailable(reason)) = result else {
            panic!("expected Unavailable, got {result:?}");
        };
        assert!(reason.contains("try 3 of 3"), "{reason}");
        assert!(reason.contains("cannot connect"), "{reason}");
        assert!(started.elapsed() < budget, "{:?}", started.elapsed());
    }
}
