//! TextBee (textbee.dev or self-hosted) over reqwest: the exact request
//! TextBee expects, its answers sorted into "retry" or "stop", and only
//! harmless facts in the log.

use std::{
    fmt::Write as _,
    time::{Duration, Instant, SystemTime},
};

use async_trait::async_trait;
use reqwest::{
    Client, Response, StatusCode, Url,
    header::{HeaderValue, RETRY_AFTER},
};
use serde_json::{Value, json};
use thiserror::Error;

mod answer;

use answer::{batch_id, gateway_message, read_capped};

use super::{
    GatewayError, SmsGateway,
    retry::{RetryPolicy, TryOutcome, millis, parse_retry_after},
};
use crate::domain::{ApiKey, PhoneNumber};

/// After a 2xx the message is accepted; its body only names the batch, so
/// it is not worth a retry (and a duplicate SMS) if it is slow to arrive.
const SUCCESS_BODY_WAIT: Duration = Duration::from_secs(1);

/// Everything needed to send through TextBee. `Debug` never shows the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBeeConfig {
    /// The full send URL (`SMS_SENDER_API`), e.g.
    /// `https://api.textbee.dev/api/v1/gateway/devices/<DEVICE_ID>/send-sms`;
    /// http or https, without credentials in it.
    pub url: Url,
    /// Sent as `x-api-key` (`TEXTBEE_API_KEY`).
    pub api_key: ApiKey,
    /// Longest wait for a TCP/TLS connection (`OTP_SMS_CONNECT_TIMEOUT_MS`).
    pub connect_timeout: Duration,
    /// Budget for one whole send: every try and every wait between tries
    /// (`OTP_SMS_SEND_TIMEOUT_MS`).
    pub send_timeout: Duration,
    /// Tries after the first one, on connection errors, timeouts, 5xx and
    /// 429 only (`OTP_SMS_MAX_RETRIES`).
    pub max_retries: u32,
}

/// Sends through TextBee's `POST …/gateway/devices/<id>/send-sms`:
/// header `x-api-key`, body `{"recipients": ["+<E.164>"], "message": "<text>"}`.
///
/// One [`reqwest::Client`] serves every send, so connections are reused.
/// Retries follow [`RetryPolicy`]: only connection errors, timeouts, 5xx and
/// 429, and the whole send ends within the configured budget. Logs carry the
/// masked phone, try number, HTTP status, latency and TextBee's batch id;
/// never the key, the message text or the code.
pub struct TextBeeGateway {
    client: Client,
    url: Url,
    api_key: HeaderValue,
    retry: RetryPolicy,
}

/// The HTTP client could not be built (e.g. no TLS roots could be loaded).
#[derive(Debug, Error)]
#[error("cannot set up the TextBee HTTP client: {0}")]
pub struct TextBeeSetupError(String);

impl TextBeeGateway {
    /// Builds the gateway and its shared HTTP client from validated settings.
    pub fn new(config: &TextBeeConfig) -> Result<Self, TextBeeSetupError> {
        install_crypto_provider();
        let client = Client::builder()
            .connect_timeout(config.connect_timeout)
            // A redirect would turn the POST into a GET or carry the key to
            // another host; TextBee never redirects its API, so stop and say so.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| TextBeeSetupError(error_chain(&err)))?;
        let mut api_key = HeaderValue::from_str(config.api_key.expose())
            .map_err(|_| TextBeeSetupError("TEXTBEE_API_KEY is not a valid header value".into()))?;
        // Keeps the key out of `Debug` output of the request and out of HTTP/2 header tables.
        api_key.set_sensitive(true);
        Ok(Self {
            client,
            url: config.url.clone(),
            api_key,
            retry: RetryPolicy {
                budget: config.send_timeout,
                max_retries: config.max_retries,
            },
        })
    }

    /// One POST, its answer classified.
    async fn try_once(&self, to: &PhoneNumber, body: &Value, attempt: u32) -> TryOutcome<()> {
        let started = Instant::now();
        let sent = self
            .client
            .post(self.url.clone())
            .header("x-api-key", self.api_key.clone())
            .json(body)
            .send()
            .await;
        let tried = Try {
            to,
            attempt,
            started,
        };
        match sent {
            Err(err) => tried.not_reached(err),
            Ok(response) if response.status().is_success() => tried.accepted(response).await,
            Ok(response) => tried.not_accepted(response).await,
        }
    }
}

/// One try, for its log lines: the masked phone, the try number, the latency.
struct Try<'a> {
    to: &'a PhoneNumber,
    attempt: u32,
    started: Instant,
}

impl Try<'_> {
    /// No HTTP answer: worth a retry.
    fn not_reached(&self, err: reqwest::Error) -> TryOutcome<()> {
        // Only a failed connect proves the request never left.
        let maybe_delivered = !err.is_connect();
        // The URL names the device; the host alone is in the startup log.
        let reason = transport_reason(&err.without_url());
        tracing::warn!(
            phone = %self.to,
            attempt = self.attempt,
            latency_ms = millis(self.started.elapsed()),
            error = %reason,
            "TextBee could not be reached"
        );
        TryOutcome::Transient {
            reason,
            retry_after: None,
            maybe_delivered,
        }
    }

    /// A 2xx: the message is queued; the batch id (if it comes soon) is logged.
    async fn accepted(&self, response: Response) -> TryOutcome<()> {
        let status = response.status();
        let body = tokio::time::timeout(SUCCESS_BODY_WAIT, read_capped(response))
            .await
            .unwrap_or_default();
        let batch_id = batch_id(&body);
        tracing::info!(
            phone = %self.to,
            attempt = self.attempt,
            status = status.as_u16(),
            latency_ms = millis(self.started.elapsed()),
            sms_batch_id = batch_id.as_deref().unwrap_or("-"),
            "TextBee accepted the message"
        );
        TryOutcome::Done(())
    }

    /// Any other status: logged with TextBee's (masked) explanation, then sorted.
    async fn not_accepted(&self, response: Response) -> TryOutcome<()> {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let message = gateway_message(&read_capped(response).await);
        tracing::warn!(
            phone = %self.to,
            attempt = self.attempt,
            status = status.as_u16(),
            latency_ms = millis(self.started.elapsed()),
            retry_after_ms = retry_after.map(millis),
            gateway_message = %message,
            "TextBee did not accept the message"
        );
        let reason = format!("HTTP {}: {message}", status.as_u16());
        classify(status, reason, retry_after)
    }
}

/// Sorts a refusal into "stop" (our key, a bad request) or "retry".
fn classify(status: StatusCode, reason: String, retry_after: Option<Duration>) -> TryOutcome<()> {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            TryOutcome::Fatal(GatewayError::Unauthorized(reason))
        }
        // 429 and 503 say "not processed"; any other 5xx may have come
        // after TextBee queued the message.
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => TryOutcome::Transient {
            reason,
            retry_after,
            maybe_delivered: false,
        },
        status if status.is_server_error() => TryOutcome::Transient {
            reason,
            retry_after,
            maybe_delivered: true,
        },
        _ => TryOutcome::Fatal(GatewayError::Rejected(reason)),
    }
}

#[async_trait]
impl SmsGateway for TextBeeGateway {
    fn provider(&self) -> &'static str {
        "textbee"
    }

    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<(), GatewayError> {
        let body = json!({ "recipients": [to.e164()], "message": text });
        self.retry
            .run(|attempt| self.try_once(to, &body, attempt))
            .await
    }
}

/// reqwest is built without its default aws-lc provider (that needs a C
/// toolchain and CMake to build); this installs ring once per process. A
/// provider some other part of the process installed first is kept.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What went wrong below HTTP.
fn transport_reason(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", error_chain(err))
}

/// An error and its causes on one line: reqwest's own text ("error sending
/// request") says little; the cause ("Connection refused") says what to fix.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(err);
    while let Some(err) = next {
        if !line.is_empty() {
            line.push_str(": ");
        }
        let _ = write!(line, "{err}");
        next = err.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_shows_every_cause_on_one_line() {
        #[derive(Debug, Error)]
        #[error("error sending request")]
        struct Outer(#[source] std::io::Error);
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        assert_eq!(
            error_chain(&Outer(refused)),
            "error sending request: Connection refused"
        );
    }
}
