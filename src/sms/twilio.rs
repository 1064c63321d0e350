//! Twilio Programmable Messaging: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! form-encoded `To`, `Body` and `From` or `MessagingServiceSid`, HTTP Basic
//! auth. Errors come as `{code, message, more_info, status}`; the code says
//! whether the number, our credentials or Twilio itself is at fault.

use async_trait::async_trait;
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;
use tokio::time::Instant;

use super::{
    GatewayError, OutgoingSms, SmsSetupError,
    http::{Answer, loggable, post},
    provider::SmsProvider,
    retry::{RetryPolicy, TryOutcome},
};
use crate::domain::ApiKey;

/// Twilio's API host; tests point `OTP_TWILIO_BASE_URL` at a stand-in.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";

/// Twilio error codes that mean the destination cannot take this SMS:
/// another try or provider would not help, and the caller should know the
/// number is the problem (`INVALID_ARGUMENT`).
/// <https://www.twilio.com/docs/api/errors>
const UNDELIVERABLE_CODES: [(u64, &str); 11] = [
    (21211, "invalid 'To' phone number"),
    (21214, "'To' phone number cannot be reached"),
    (21217, "phone number does not appear to be valid"),
    (21401, "invalid phone number"),
    (21407, "this number type does not support SMS"),
    (
        21408,
        "sending to this number's region is not enabled for the account",
    ),
    (21421, "phone number is invalid"),
    (21610, "recipient unsubscribed (replied STOP)"),
    (21612, "'To' number is not currently reachable via SMS"),
    (21614, "'To' number is not a valid mobile number"),
    (21635, "'To' number is a landline"),
];
/// Twilio error codes that mean our credentials or account are at fault.
const CREDENTIAL_CODES: [u64; 4] = [20003, 20005, 20008, 20404];

/// How we authenticate: the account's auth token, or an API key (which
/// can be revoked on its own). `Debug` never shows a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioAuth {
    /// User = Account SID, password = auth token (`OTP_TWILIO_AUTH_TOKEN`).
    AuthToken(ApiKey),
    /// User = API key SID, password = its secret
    /// (`OTP_TWILIO_API_KEY_SID`, `OTP_TWILIO_API_KEY_SECRET`).
    ApiKey {
        /// `SK…`
        sid: String,
        /// The key's secret.
        secret: ApiKey,
    },
}

/// Who the SMS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioSender {
    /// A Twilio number or alphanumeric sender id (`OTP_TWILIO_FROM`).
    From(String),
    /// A Messaging Service picks the sender (`OTP_TWILIO_MESSAGING_SERVICE_SID`).
    MessagingService(String),
}

/// Everything needed to send through Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// API origin (`OTP_TWILIO_BASE_URL`, default [`TWILIO_BASE_URL`]).
    pub base_url: Url,
    /// `AC…` (`OTP_TWILIO_ACCOUNT_SID`).
    pub account_sid: String,
    /// Basic-auth credentials.
    pub auth: TwilioAuth,
    /// The sender.
    pub sender: TwilioSender,
}

/// A Twilio account's credentials and API origin: what the SMS, WhatsApp
/// and voice providers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioAccount {
    /// API origin (`OTP_TWILIO_BASE_URL`, default [`TWILIO_BASE_URL`]).
    pub base_url: Url,
    /// `AC…` (`OTP_TWILIO_ACCOUNT_SID`).
    pub account_sid: String,
    /// Basic-auth credentials.
    pub auth: TwilioAuth,
}

impl TwilioConfig {
    /// The account part of these settings.
    pub fn account(&self) -> TwilioAccount {
        TwilioAccount {
            base_url: self.base_url.clone(),
            account_sid: self.account_sid.clone(),
            auth: self.auth.clone(),
        }
    }
}

/// One resource of a Twilio account (`Messages.json`, `Calls.json`) and
/// the one way to post a form to it and read Twilio's answer.
pub(super) struct TwilioEndpoint {
    client: Client,
    url: Url,
    user: String,
    password: ApiKey,
    /// Error codes that mean the destination cannot be reached this way.
    undeliverable: &'static [(u64, &'static str)],
}

impl TwilioEndpoint {
    /// `resource` of `account`, over the shared `client`.
    pub(super) fn new(
        account: &TwilioAccount,
        client: Client,
        resource: &str,
        undeliverable: &'static [(u64, &'static str)],
    ) -> Result<Self, SmsSetupError> {
        let url = account
            .base_url
            .join(&format!(
                "2010-04-01/Accounts/{}/{resource}",
                account.account_sid
            ))
            .map_err(|err| SmsSetupError(format!("bad Twilio URL: {err}")))?;
        let (user, password) = match &account.auth {
            TwilioAuth::AuthToken(token) => (account.account_sid.clone(), token.clone()),
            TwilioAuth::ApiKey { sid, secret } => (sid.clone(), secret.clone()),
        };
        Ok(Self {
            client,
            url,
            user,
            password,
            undeliverable,
        })
    }

    /// Posts `form`; a 2xx gives the new resource's `sid`, anything else
    /// what Twilio's refusal means.
    pub(super) async fn post_form(
        &self,
        form: &[(&str, &str)],
        attempt: u32,
        deadline: Instant,
    ) -> TryOutcome<Option<String>> {
        let request = self
            .client
            .post(self.url.clone())
            .basic_auth(&self.user, Some(self.password.expose()))
            .form(form);
        let answer = match post(request, deadline).await.into_answer() {
            Ok(answer) => answer,
            Err(no_answer) => return no_answer,
        };
        let json: Option<Value> = answer
            .body
            .as_deref()
            .and_then(|body| serde_json::from_slice(body).ok());
        if answer.status.is_success() {
            let sid = json
                .as_ref()
                .and_then(|json| json.get("sid")?.as_str().map(str::to_owned));
            return TryOutcome::Done(sid);
        }
        let code = json.as_ref().and_then(|json| json.get("code")?.as_u64());
        let message = json
            .as_ref()
            .and_then(|json| json.get("message")?.as_str().map(loggable))
            .unwrap_or_else(|| "(no message)".into());
        tracing::warn!(
            attempt,
            status = answer.status.as_u16(),
            twilio_code = code,
            twilio_message = %message,
            "Twilio did not accept the message"
        );
        classify(&answer, code, &message, self.undeliverable)
    }
}

/// Sends through Twilio; retries only after 429, 503 or a failed connect.
pub struct TwilioGateway {
    endpoint: TwilioEndpoint,
    sender: TwilioSender,
    retry: RetryPolicy,
}

impl TwilioGateway {
    /// The gateway over the shared `client`.
    pub fn new(
        config: &TwilioConfig,
        client: Client,
        retry: RetryPolicy,
    ) -> Result<Self, SmsSetupError> {
        Ok(Self {
            endpoint: TwilioEndpoint::new(
                &config.account(),
                client,
                "Messages.json",
                &UNDELIVERABLE_CODES,
            )?,
            sender: config.sender.clone(),
            retry,
        })
    }

    async fn try_once(
        &self,
        sms: &OutgoingSms<'_>,
        attempt: u32,
        deadline: Instant,
    ) -> TryOutcome<Option<String>> {
        let sender = match &self.sender {
            TwilioSender::From(from) => ("From", from.as_str()),
            TwilioSender::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form = [("To", sms.to.e164()), ("Body", sms.text), sender];
        self.endpoint.post_form(&form, attempt, deadline).await
    }
}

/// What a Twilio refusal means; `undeliverable` are the codes that blame
/// the destination for this resource.
fn classify<T>(
    answer: &Answer,
    code: Option<u64>,
    message: &str,
    undeliverable: &[(u64, &str)],
) -> TryOutcome<T> {
    let code_text = code.map_or_else(String::new, |code| format!(" code {code}"));
    let reason = format!("HTTP {}{code_text}: {message}", answer.status.as_u16());
    if let Some((_, meaning)) = code.and_then(|code| {
        undeliverable
            .iter()
            .find(|(undeliverable, _)| *undeliverable == code)
    }) {
        return TryOutcome::Failed(GatewayError::Undeliverable(format!("{reason} ({meaning})")));
    }
    if answer.status == StatusCode::UNAUTHORIZED
        || answer.status == StatusCode::FORBIDDEN
        || code.is_some_and(|code| CREDENTIAL_CODES.contains(&code))
    {
        return TryOutcome::Failed(GatewayError::Unauthorized(format!(
            "{reason}; check the Twilio credentials (OTP_TWILIO_ACCOUNT_SID, \
             OTP_TWILIO_AUTH_TOKEN or OTP_TWILIO_API_KEY_SID/SECRET)"
        )));
    }
    // Twilio documents 429 and 503 as "not processed, try again later".
    answer.refusal(reason)
}

#[async_trait]
impl SmsProvider for TwilioGateway {
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
