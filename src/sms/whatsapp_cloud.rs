//! WhatsApp through Meta's WhatsApp Cloud API:
//! `POST https://graph.facebook.com/{version}/{phone-number-id}/messages`
//! with `Authorization: Bearer {access token}` and a JSON authentication
//! template message: the code is the body's one parameter and the
//! copy-code button's (`"type": "button", "sub_type": "url", "index": "0"`),
//! as "Sending authentication templates" shows
//! (<https://developers.facebook.com/docs/whatsapp/business-management-api/authentication-templates/copy-code-button-authentication-templates>).
//! The answer names the message (`messages[0].id`); an error is
//! `{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}`
//! (Graph API errors; codes from the Cloud API's error-code reference,
//! <https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes>):
//!
//! | code | meaning | here |
//! |---|---|---|
//! | 131026 | message undeliverable: not a WhatsApp user, old app, terms not accepted | the number: undeliverable (another channel may carry it) |
//! | 131030 | recipient not in the test number's allowed list | refused (set-up) |
//! | 0, 190, 10, 200 | token invalid or expired, no permission | credentials: INTERNAL |
//! | 130429, 80007, 131056 | throughput, account or pair rate limit | surely not sent: retried within the deadline |
//! | 131048 | spam rate limit | refused |
//! | 132000, 132001, 132012 | template parameters, template or its language missing | refused (set-up) |
//! | other 4xx | a refusal | refused |
//! | 429, 503 | not processed | surely not sent: retried |
//! | other 5xx | may have been taken | **maybe sent**: nothing retried, no fallback |
//!
//! Meta reports most "undeliverable" verdicts later, by webhook (`statuses`
//! with `"status": "failed"`), after the 200 that took the message; this
//! service receives no webhooks, so only the synchronous answer decides.

use async_trait::async_trait;
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    GatewayError, OutgoingSms, SmsSetupError,
    http::{Answer, loggable, post},
    provider::SmsProvider,
    retry::{RetryPolicy, TryOutcome},
};
use crate::domain::ApiKey;

/// The Graph API host; tests point `OTP_WHATSAPP_CLOUD_BASE_URL` at a stand-in.
pub const WHATSAPP_CLOUD_BASE_URL: &str = "https://graph.facebook.com";
/// The Graph API version sent to, unless `OTP_WHATSAPP_CLOUD_API_VERSION` says.
pub const WHATSAPP_CLOUD_API_VERSION: &str = "v25.0";

/// Error codes that mean this number cannot get the message on WhatsApp.
const UNDELIVERABLE_CODES: [(u64, &str); 1] = [(
    131026,
    "message undeliverable: not a WhatsApp user, or an app that cannot receive it",
)];
/// Error codes that mean our token or its permissions are at fault.
const CREDENTIAL_CODES: [u64; 4] = [0, 10, 190, 200];
/// Error codes that mean "not now": nothing was sent, a retry may pass.
const THROTTLED_CODES: [u64; 3] = [80007, 130429, 131056];

/// Everything needed to send through the WhatsApp Cloud API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppCloudConfig {
    /// API origin (`OTP_WHATSAPP_CLOUD_BASE_URL`).
    pub base_url: Url,
    /// `v25.0` (`OTP_WHATSAPP_CLOUD_API_VERSION`).
    pub api_version: String,
    /// The business phone number's id (`OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID`).
    pub phone_number_id: String,
    /// A system user's access token (`OTP_WHATSAPP_CLOUD_ACCESS_TOKEN`).
    pub access_token: ApiKey,
}

/// Sends authentication templates through the WhatsApp Cloud API.
pub struct WhatsAppCloudGateway {
    client: Client,
    url: Url,
    access_token: ApiKey,
    retry: RetryPolicy,
}

impl WhatsAppCloudGateway {
    /// The gateway over the shared `client`.
    pub fn new(
        config: &WhatsAppCloudConfig,
        client: Client,
        retry: RetryPolicy,
    ) -> Result<Self, SmsSetupError> {
        let url = config
            .base_url
            .join(&format!(
                "{}/{}/messages",
                config.api_version, config.phone_number_id
            ))
            .map_err(|err| SmsSetupError(format!("bad WhatsApp Cloud API URL: {err}")))?;
        Ok(Self {
            client,
            url,
            access_token: config.access_token.clone(),
            retry,
        })
    }

    async fn try_once(
        &self,
        sms: &OutgoingSms<'_>,
        attempt: u32,
        deadline: Instant,
    ) -> TryOutcome<Option<String>> {
        let Some(whatsapp) = sms.whatsapp else {
            return TryOutcome::Failed(GatewayError::Rejected(
                "no WhatsApp template was rendered for this send".into(),
            ));
        };
        let code = json!([{ "type": "text", "text": whatsapp.code }]);
        let body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            // Digits with the country code; Meta takes them without the `+`.
            "to": sms.to.e164().trim_start_matches('+'),
            "type": "template",
            "template": {
                "name": whatsapp.template,
                "language": { "code": whatsapp.language },
                "components": [
                    { "type": "body", "parameters": code },
                    { "type": "button", "sub_type": "url", "index": "0", "parameters": code },
                ],
            },
        });
        let request = self
            .client
            .post(self.url.clone())
            .bearer_auth(self.access_token.expose())
            .json(&body);
        let answer = match post(request, deadline).await.into_answer() {
            Ok(answer) => answer,
            Err(no_answer) => return no_answer,
        };
        let json: Option<Value> = answer
            .body
            .as_deref()
            .and_then(|body| serde_json::from_slice(body).ok());
        if answer.status.is_success() {
            let id = json
                .as_ref()
                .and_then(|json| json.pointer("/messages/0/id")?.as_str().map(str::to_owned));
            return TryOutcome::Done(id);
        }
        let error = json.as_ref().and_then(|json| json.get("error"));
        let code = error.and_then(|error| error.get("code")?.as_u64());
        let message = error
            .and_then(|error| error.get("message")?.as_str().map(loggable))
            .unwrap_or_else(|| "(no message)".into());
        tracing::warn!(
            attempt,
            status = answer.status.as_u16(),
            whatsapp_code = code,
            whatsapp_message = %message,
            "WhatsApp Cloud API did not accept the message"
        );
        classify(&answer, code, &message)
    }
}

/// What a Cloud API refusal means.
fn classify<T>(answer: &Answer, code: Option<u64>, message: &str) -> TryOutcome<T> {
    let code_text = code.map_or_else(String::new, |code| format!(" code {code}"));
    let reason = format!("HTTP {}{code_text}: {message}", answer.status.as_u16());
    if let Some((_, meaning)) =
        code.and_then(|code| UNDELIVERABLE_CODES.iter().find(|(known, _)| *known == code))
    {
        return TryOutcome::Failed(GatewayError::Undeliverable(format!("{reason} ({meaning})")));
    }
    if code.is_some_and(|code| THROTTLED_CODES.contains(&code)) {
        return TryOutcome::NotSent {
            reason,
            retry_after: answer.retry_after,
            connect_failed: false,
        };
    }
    if answer.status == StatusCode::UNAUTHORIZED
        || answer.status == StatusCode::FORBIDDEN
        || code.is_some_and(|code| CREDENTIAL_CODES.contains(&code))
    {
        return TryOutcome::Failed(GatewayError::Unauthorized(format!(
            "{reason}; check OTP_WHATSAPP_CLOUD_ACCESS_TOKEN and its permissions"
        )));
    }
    answer.refusal(reason)
}

#[async_trait]
impl SmsProvider for WhatsAppCloudGateway {
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
