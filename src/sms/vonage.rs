//! Vonage (formerly Nexmo) SMS API: `POST /sms/json`, form-encoded
//! `api_key`, `api_secret`, `from`, `to` (digits, no `+`), `text`, and
//! `type=unicode` when the text is not GSM-7. It answers 200 even when it
//! refuses: the verdict is each `messages[].status`.
//!
//! Which status means what (Vonage's "SMS API error codes"), and whether the
//! SMS surely did not go out:
//!
//! | status | meaning | here |
//! |---|---|---|
//! | 0 | accepted | sent |
//! | 1 | throttled | surely not sent: retried, then the next provider |
//! | 2, 3 | missing / invalid parameters | refused (surely not sent) |
//! | 4, 8, 14, 32 | bad credentials, account barred, bad signature | credentials: INTERNAL |
//! | 5 | internal error | **maybe sent**: nothing retried, the send counts |
//! | 6, 7, 33 | unroutable prefix, number barred, number deactivated | the number: INVALID_ARGUMENT |
//! | 9 | partner quota exceeded (no credit) | refused |
//! | 10 | too many existing binds | surely not sent: retried |
//! | 11, 12, 15, 22, 23, 29 | account / message / sender set-up | refused |
//! | other | not documented | maybe sent |
//!
//! Status 5 is the one Vonage does not pin down ("an error processing your
//! request"): it may come after the message was handed on, so it is
//! treated as maybe delivered. A long text goes as several parts, each
//! with its own status: if some were accepted and others not, the user may
//! get part of the message, which also counts as maybe delivered.

use async_trait::async_trait;
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;
use tokio::time::Instant;

use super::{
    GatewayError, OutgoingSms, SmsSetupError,
    http::{Answer, loggable, post},
    provider::SmsProvider,
    retry::{RetryPolicy, TryOutcome},
    segments::is_gsm7,
};
use crate::domain::ApiKey;

/// Vonage's SMS API host; tests point `OTP_VONAGE_BASE_URL` at a stand-in.
pub const VONAGE_BASE_URL: &str = "https://rest.nexmo.com";

/// Everything needed to send through Vonage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VonageConfig {
    /// API origin (`OTP_VONAGE_BASE_URL`, default [`VONAGE_BASE_URL`]).
    pub base_url: Url,
    /// `OTP_VONAGE_API_KEY`.
    pub api_key: ApiKey,
    /// `OTP_VONAGE_API_SECRET`.
    pub api_secret: ApiKey,
    /// Sender number (digits) or alphanumeric id (`OTP_VONAGE_FROM`).
    pub from: String,
}

/// Sends through Vonage; retries only on "throttled" (1), "too many binds"
/// (10), 429, 503 or a failed connect.
pub struct VonageGateway {
    client: Client,
    url: Url,
    api_key: ApiKey,
    api_secret: ApiKey,
    from: String,
    retry: RetryPolicy,
}

/// One part's verdict.
enum PartStatus {
    Accepted,
    NotSent,
    Failed(GatewayError),
}

impl VonageGateway {
    /// The gateway over the shared `client`.
    pub fn new(
        config: &VonageConfig,
        client: Client,
        retry: RetryPolicy,
    ) -> Result<Self, SmsSetupError> {
        let url = config
            .base_url
            .join("sms/json")
            .map_err(|err| SmsSetupError(format!("bad Vonage URL: {err}")))?;
        Ok(Self {
            client,
            url,
            api_key: config.api_key.clone(),
            api_secret: config.api_secret.clone(),
            from: config.from.clone(),
            retry,
        })
    }

    async fn try_once(
        &self,
        sms: &OutgoingSms<'_>,
        attempt: u32,
        deadline: Instant,
    ) -> TryOutcome<Option<String>> {
        let to = sms.to.e164().trim_start_matches('+');
        let mut form = vec![
            ("api_key", self.api_key.expose()),
            ("api_secret", self.api_secret.expose()),
            ("from", self.from.as_str()),
            ("to", to),
            ("text", sms.text),
        ];
        if !is_gsm7(sms.text) {
            form.push(("type", "unicode"));
        }
        let request = self.client.post(self.url.clone()).form(&form);
        let answer = match post(request, deadline).await.into_answer() {
            Ok(answer) => answer,
            Err(no_answer) => return no_answer,
        };
        if !answer.status.is_success() {
            return classify_http(&answer);
        }
        let verdict = read_verdict(answer.body.as_deref());
        if !matches!(verdict, TryOutcome::Done(_)) {
            tracing::warn!(attempt, "Vonage did not accept the message");
        }
        verdict
    }
}

/// A non-2xx answer (Vonage's edge, not its SMS verdict).
fn classify_http<T>(answer: &Answer) -> TryOutcome<T> {
    let reason = format!("HTTP {}", answer.status.as_u16());
    match answer.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            TryOutcome::Failed(GatewayError::Unauthorized(format!(
                "{reason}; check OTP_VONAGE_API_KEY and OTP_VONAGE_API_SECRET"
            )))
        }
        _ => answer.refusal(reason),
    }
}

/// Reads `{"message-count": "1", "messages": [{"status": "0", "message-id": "…"}]}`.
fn read_verdict(body: Option<&[u8]>) -> TryOutcome<Option<String>> {
    // A 200 is Vonage's answer to every request; without its body we cannot
    // tell whether the SMS went out.
    let Some(json) = body.and_then(|body| serde_json::from_slice::<Value>(body).ok()) else {
        return TryOutcome::Failed(GatewayError::Uncertain(
            "HTTP 200 without a readable verdict".into(),
        ));
    };
    let parts = json
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if parts.is_empty() {
        return TryOutcome::Failed(GatewayError::Uncertain(
            "HTTP 200 without any message status".into(),
        ));
    }
    let mut accepted = 0;
    let mut first_id = None;
    let mut refusal = None;
    for part in parts {
        let status = text_field(part, "status").unwrap_or_default();
        let error_text = text_field(part, "error-text").map_or_else(String::new, |t| loggable(&t));
        match part_status(&status, &error_text) {
            PartStatus::Accepted => {
                accepted += 1;
                first_id = first_id.or_else(|| text_field(part, "message-id"));
            }
            other => refusal = refusal.or(Some((status, other))),
        }
    }
    match refusal {
        None => TryOutcome::Done(first_id),
        Some((status, _)) if accepted > 0 => TryOutcome::Failed(GatewayError::Uncertain(format!(
            "{accepted} of {} parts accepted; another answered status {status}",
            parts.len()
        ))),
        Some((status, PartStatus::NotSent)) => TryOutcome::NotSent {
            reason: format!("Vonage status {status}"),
            retry_after: None,
            connect_failed: false,
        },
        Some((_, PartStatus::Failed(error))) => TryOutcome::Failed(error),
        Some((status, PartStatus::Accepted)) => {
            TryOutcome::Failed(GatewayError::Uncertain(format!("Vonage status {status}")))
        }
    }
}

/// A string field Vonage may send as text or number.
fn text_field(part: &Value, name: &str) -> Option<String> {
    match part.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// One part's status code, per the table in this module's docs.
fn part_status(status: &str, error_text: &str) -> PartStatus {
    let reason = format!("Vonage status {status}: {error_text}");
    match status {
        "0" => PartStatus::Accepted,
        "1" | "10" => PartStatus::NotSent,
        "4" | "8" | "14" | "32" => PartStatus::Failed(GatewayError::Unauthorized(format!(
            "{reason}; check OTP_VONAGE_API_KEY, OTP_VONAGE_API_SECRET and the Vonage account"
        ))),
        "6" | "7" | "33" => PartStatus::Failed(GatewayError::Undeliverable(reason)),
        "2" | "3" | "9" | "11" | "12" | "15" | "22" | "23" | "29" => {
            PartStatus::Failed(GatewayError::Rejected(reason))
        }
        // 5 (internal error) and anything undocumented: maybe sent.
        _ => PartStatus::Failed(GatewayError::Uncertain(reason)),
    }
}

#[async_trait]
impl SmsProvider for VonageGateway {
    async fn send(
        &self,
        sms: &OutgoingSms<'_>,
        deadline: Instant,
    ) -> Result<Option<String>, GatewayError> {
        self.retry
            .run(deadline, |attempt| self.try_once(sms, attempt, deadline))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(body: &str) -> TryOutcome<Option<String>> {
        read_verdict(Some(body.as_bytes()))
    }

    fn kind(outcome: &TryOutcome<Option<String>>) -> &'static str {
        match outcome {
            TryOutcome::Done(_) => "done",
            TryOutcome::NotSent { .. } => "not_sent",
            TryOutcome::Failed(error) => error.kind(),
        }
    }

    fn one_part(status: &str) -> String {
        format!(r#"{{"message-count":"1","messages":[{{"status":"{status}","error-text":"x"}}]}}"#)
    }

    #[test]
    fn each_documented_status_has_its_class() {
        for (status, expected) in [
            ("1", "not_sent"),
            ("10", "not_sent"),
            ("2", "rejected"),
            ("3", "rejected"),
            ("9", "rejected"),
            ("15", "rejected"),
            ("29", "rejected"),
            ("4", "unauthorized"),
            ("8", "unauthorized"),
            ("14", "unauthorized"),
            ("5", "uncertain"),
            ("6", "undeliverable"),
            ("7", "undeliverable"),
            ("33", "undeliverable"),
            ("99", "uncertain"),
        ] {
            assert_eq!(
                kind(&verdict(&one_part(status))),
                expected,
                "status {status}"
            );
        }
    }

    #[test]
    fn accepted_parts_give_the_first_message_id() {
        let body = r#"{"message-count":"2","messages":[
            {"to":"447700900000","message-id":"0A0000000123ABCD1","status":"0"},
            {"to":"447700900000","message-id":"0A0000000123ABCD2","status":"0"}]}"#;
        let TryOutcome::Done(id) = verdict(body) else {
            panic!("accepted");
        };
        assert_eq!(id.as_deref(), Some("0A0000000123ABCD1"));
    }

    #[test]
    fn a_partly_accepted_message_or_an_unreadable_verdict_may_have_gone_out() {
        let partly =
            r#"{"message-count":"2","messages":[{"status":"0","message-id":"a"},{"status":"1"}]}"#;
        assert_eq!(kind(&verdict(partly)), "uncertain");
        assert_eq!(kind(&read_verdict(None)), "uncertain");
        assert_eq!(kind(&verdict("{}")), "uncertain");
        assert_eq!(kind(&verdict("<html>")), "uncertain");
    }
}
