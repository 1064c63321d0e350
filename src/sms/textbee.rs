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

use super::{
    GatewayError, SmsGateway,
    retry::{RetryPolicy, TryOutcome, millis, parse_retry_after},
};
use crate::domain::{ApiKey, PhoneNumber};

/// Most of an answer's body that is read: enough for any JSON TextBee
/// sends, little enough that a broken proxy cannot fill memory.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest gateway message put in a log line.
const MAX_LOGGED_MESSAGE_CHARS: usize = 200;
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
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                // Only a failed connect proves the request never left.
                let maybe_delivered = !err.is_connect();
                // The URL names the device; the host alone is in the startup log.
                let reason = transport_reason(&err.without_url());
                tracing::warn!(
                    phone = %to,
                    attempt,
                    latency_ms = millis(started.elapsed()),
                    error = %reason,
                    "TextBee could not be reached"
                );
                return TryOutcome::Transient {
                    reason,
                    retry_after: None,
                    maybe_delivered,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            let body = tokio::time::timeout(SUCCESS_BODY_WAIT, read_capped(response))
                .await
                .unwrap_or_default();
            let batch_id = batch_id(&body);
            tracing::info!(
                phone = %to,
                attempt,
                status = status.as_u16(),
                latency_ms = millis(started.elapsed()),
                sms_batch_id = batch_id.as_deref().unwrap_or("-"),
                "TextBee accepted the message"
            );
            return TryOutcome::Done(());
        }

        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let message = gateway_message(&read_capped(response).await);
        tracing::warn!(
            phone = %to,
            attempt,
            status = status.as_u16(),
            latency_ms = millis(started.elapsed()),
            retry_after_ms = retry_after.map(millis),
            gateway_message = %message,
            "TextBee did not accept the message"
        );
        let reason = format!("HTTP {}: {message}", status.as_u16());
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                TryOutcome::Fatal(GatewayError::Unauthorized(reason))
            }
            // 429 and 503 say "not processed"; any other 5xx may have come
            // after TextBee queued the message.
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                TryOutcome::Transient {
                    reason,
                    retry_after,
                    maybe_delivered: false,
                }
            }
            status if status.is_server_error() => TryOutcome::Transient {
                reason,
                retry_after,
                maybe_delivered: true,
            },
            _ => TryOutcome::Fatal(GatewayError::Rejected(reason)),
        }
    }
}

#[async_trait]
impl SmsGateway for TextBeeGateway {
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

/// Reads at most [`MAX_BODY_BYTES`] of the body; a broken body reads as what arrived.
async fn read_capped(mut response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY_BYTES {
            break;
        }
    }
    body
}

/// TextBee answers a send with `{"data": {"smsBatchId": "…", …}}`; other
/// shapes (older or self-hosted servers) are accepted without an id.
fn batch_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let id = value
        .pointer("/data/smsBatchId")
        .or_else(|| value.get("smsBatchId"))?;
    match id {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The gateway's own explanation, fit for a log line: TextBee's `error`
/// (or NestJS's `message`), else the raw text; one line, shortened, and with
/// every run of 4+ digits hidden in case the gateway echoed the number or
/// the message (and so the code) back.
fn gateway_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(value) => ["/error", "/message", "/data/error", "/data/message"]
            .iter()
            .find_map(|pointer| match value.pointer(pointer)? {
                Value::String(text) => Some(text.clone()),
                Value::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                _ => None,
            })
            .unwrap_or_else(|| value.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    // Mask the whole text first, then cut: cutting first could split a code
    // at the limit and leave its first digits unmasked.
    let mut clean = String::with_capacity(text.len());
    let mut digit_run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 4 {
            out.push_str(&"#".repeat(run.len()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digit_run.push(c);
            continue;
        }
        flush(&mut digit_run, &mut clean);
        clean.push(if c.is_control() { ' ' } else { c });
    }
    flush(&mut digit_run, &mut clean);
    if clean.chars().count() > MAX_LOGGED_MESSAGE_CHARS {
        clean = clean.chars().take(MAX_LOGGED_MESSAGE_CHARS).collect();
        clean.push('…');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_id_is_read_from_textbees_answer() {
        let body = br#"{"data":{"success":true,"message":"SMS added to queue for processing","smsBatchId":"6650f0c2","recipientCount":1}}"#;
        assert_eq!(batch_id(body).as_deref(), Some("6650f0c2"));
        assert_eq!(batch_id(br#"{"data":{"success":true}}"#), None);
        assert_eq!(batch_id(b"OK"), None);
        assert_eq!(batch_id(b""), None);
    }

    #[test]
    fn gateway_message_prefers_textbees_error_field() {
        assert_eq!(
            gateway_message(br#"{"success":false,"error":"Invalid recipients"}"#),
            "Invalid recipients"
        );
        assert_eq!(
            gateway_message(br#"{"statusCode":400,"message":["message should not be empty","x"]}"#),
            "message should not be empty; x"
        );
        assert_eq!(gateway_message(b"Bad Gateway\r\n"), "Bad Gateway");
        assert_eq!(gateway_message(b""), "(no message)");
    }

    #[test]
    fn gateway_message_hides_echoed_numbers_and_codes() {
        let message = gateway_message(
            br#"{"error":"cannot send 'Your code is 042917' to +14155550123 (HTTP 503)"}"#,
        );
        assert_eq!(
            message,
            "cannot send 'Your code is ######' to +########### (HTTP 503)"
        );
    }

    #[test]
    fn a_code_at_the_cut_is_masked_whole() {
        let body = format!("{}042917 more", "x".repeat(MAX_LOGGED_MESSAGE_CHARS - 2));
        let message = gateway_message(body.as_bytes());
        assert!(message.ends_with("##…"), "{message}");
        assert!(!message.contains("04"), "{message}");
    }

    #[test]
    fn gateway_message_is_one_short_line() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let message = gateway_message(long.as_bytes());
        assert!(!message.contains('\n'), "{message}");
        assert_eq!(message.chars().count(), MAX_LOGGED_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }

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
