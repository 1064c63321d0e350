//! WhatsApp through Twilio's Messages API: the same
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` as an SMS, with
//! `whatsapp:`-prefixed `To` and `From` and, instead of a `Body`, an
//! approved content template: `ContentSid` (`HX…`, a
//! `whatsapp/authentication` template) and `ContentVariables`, a JSON
//! object whose `"1"` is the code
//! (<https://www.twilio.com/docs/content/send-templates-created-with-the-content-template-builder>,
//! <https://www.twilio.com/docs/content/whatsappauthentication>). Answers and
//! refusals are Twilio's (`twilio.rs`), with WhatsApp's own codes for "this
//! number cannot get it on WhatsApp"
//! (<https://www.twilio.com/docs/whatsapp/api/error-code-mapping>):
//! 63003 (channel could not find the `To` address: not a WhatsApp user),
//! 63024 (invalid message recipient: WhatsApp's 1002/1026, incapable
//! receiver), 63032 (the user's number is part of a WhatsApp experiment),
//! and 21211 (invalid `To` number). Twilio reports most of these later, on
//! the message's status callback; only a synchronous answer decides here.

use async_trait::async_trait;
use reqwest::Client;
use serde_json::json;
use tokio::time::Instant;

use super::{
    GatewayError, OutgoingSms, SmsSetupError,
    provider::SmsProvider,
    retry::{RetryPolicy, TryOutcome},
    twilio::{TwilioAccount, TwilioEndpoint},
};

/// Twilio error codes that mean the destination cannot get a WhatsApp message.
const UNDELIVERABLE_CODES: [(u64, &str); 4] = [
    (21211, "invalid 'To' phone number"),
    (
        63003,
        "channel could not find the 'To' address: not a WhatsApp user",
    ),
    (63024, "invalid message recipient (not able to receive it)"),
    (63032, "the user's number is part of a WhatsApp experiment"),
];

/// Everything needed to send WhatsApp messages through Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioWhatsAppConfig {
    /// The Twilio account (`OTP_TWILIO_ACCOUNT_SID` and its credentials).
    pub account: TwilioAccount,
    /// The WhatsApp sender, a `+` number (`OTP_TWILIO_WHATSAPP_FROM`).
    pub from: String,
    /// The approved `whatsapp/authentication` content template, `HX…`
    /// (`OTP_TWILIO_WHATSAPP_CONTENT_SID`); a locale's `[whatsapp]` entry
    /// may name its own.
    pub content_sid: String,
}

/// Sends WhatsApp authentication templates through Twilio.
pub struct TwilioWhatsAppGateway {
    endpoint: TwilioEndpoint,
    from: String,
    content_sid: String,
    retry: RetryPolicy,
}

impl TwilioWhatsAppGateway {
    /// The gateway over the shared `client`.
    pub fn new(
        config: &TwilioWhatsAppConfig,
        client: Client,
        retry: RetryPolicy,
    ) -> Result<Self, SmsSetupError> {
        Ok(Self {
            endpoint: TwilioEndpoint::new(
                &config.account,
                client,
                "Messages.json",
                &UNDELIVERABLE_CODES,
            )?,
            from: format!("whatsapp:{}", config.from),
            content_sid: config.content_sid.clone(),
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
        let to = format!("whatsapp:{}", sms.to.e164());
        let variables = json!({ "1": whatsapp.code }).to_string();
        let form = [
            ("To", to.as_str()),
            ("From", self.from.as_str()),
            (
                "ContentSid",
                whatsapp.content_sid.unwrap_or(self.content_sid.as_str()),
            ),
            ("ContentVariables", variables.as_str()),
        ];
        self.endpoint.post_form(&form, attempt, deadline).await
    }
}

#[async_trait]
impl SmsProvider for TwilioWhatsAppGateway {
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
