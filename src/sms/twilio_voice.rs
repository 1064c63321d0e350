//! Voice calls through Twilio's Calls API:
//! `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`, form-encoded `To`,
//! `From` (a voice-capable Twilio number or verified caller id) and
//! `Twiml`, the call's instructions inline
//! (<https://www.twilio.com/docs/voice/api/call-resource>,
//! <https://www.twilio.com/docs/voice/make-calls>). The TwiML says the text
//! (the code spelled digit by digit, so it is read slowly) twice, a pause
//! between: `<Response><Say language="en-US">…</Say><Pause length="1"/>
//! <Say language="en-US">…</Say></Response>` (TwiML `<Say>` and `<Pause>`).
//! A 201 has created the call (`sid` `CA…`); refusals are Twilio's
//! (`twilio.rs`), with the Calls API's codes for "this number cannot be
//! called": 13224 (not a number Twilio can call), 21211 (invalid `To`),
//! 21214 (`To` cannot be reached), 21215 (the account may not call that
//! region: geo permissions), 21216 (the number is blocked for calls),
//! 21217 (not a valid phone number).

use std::fmt::Write as _;

use async_trait::async_trait;
use reqwest::Client;
use tokio::time::Instant;

use super::{
    GatewayError, OutgoingSms, SmsSetupError,
    provider::SmsProvider,
    retry::{RetryPolicy, TryOutcome},
    twilio::{TwilioAccount, TwilioEndpoint},
};

/// Twilio error codes that mean the destination cannot be called.
const UNDELIVERABLE_CODES: [(u64, &str); 6] = [
    (13224, "not a number Twilio can call"),
    (21211, "invalid 'To' phone number"),
    (21214, "'To' phone number cannot be reached"),
    (
        21215,
        "the account is not allowed to call this region (geo permissions)",
    ),
    (21216, "calls to this number are blocked"),
    (21217, "phone number does not appear to be valid"),
];

/// Everything needed to call through Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioVoiceConfig {
    /// The Twilio account (`OTP_TWILIO_ACCOUNT_SID` and its credentials).
    pub account: TwilioAccount,
    /// The caller id, a voice-capable `+` number (`OTP_TWILIO_VOICE_FROM`).
    pub from: String,
}

/// Calls the number and reads the code twice.
pub struct TwilioVoiceGateway {
    endpoint: TwilioEndpoint,
    from: String,
    retry: RetryPolicy,
}

impl TwilioVoiceGateway {
    /// The gateway over the shared `client`.
    pub fn new(
        config: &TwilioVoiceConfig,
        client: Client,
        retry: RetryPolicy,
    ) -> Result<Self, SmsSetupError> {
        Ok(Self {
            endpoint: TwilioEndpoint::new(
                &config.account,
                client,
                "Calls.json",
                &UNDELIVERABLE_CODES,
            )?,
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
        let Some(voice) = sms.voice else {
            return TryOutcome::Failed(GatewayError::Rejected(
                "no voice text was rendered for this send".into(),
            ));
        };
        let twiml = twiml(voice.text, voice.language);
        let form = [
            ("To", sms.to.e164()),
            ("From", self.from.as_str()),
            ("Twiml", twiml.as_str()),
        ];
        self.endpoint.post_form(&form, attempt, deadline).await
    }
}

/// The call's TwiML: `text` said twice in `language`, a second apart.
pub(super) fn twiml(text: &str, language: &str) -> String {
    let say = format!(
        "<Say language=\"{}\">{}</Say>",
        xml_escape(language),
        xml_escape(text)
    );
    let mut twiml = String::with_capacity(2 * say.len() + 64);
    let _ = write!(
        twiml,
        "<Response>{say}<Pause length=\"1\"/>{say}</Response>"
    );
    twiml
}

/// `text` safe inside an XML element or a quoted attribute.
fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[async_trait]
impl SmsProvider for TwilioVoiceGateway {
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

    #[test]
    fn the_code_is_said_twice_and_the_text_is_escaped() {
        assert_eq!(
            twiml("Code 1, 2 <&> \"x\"", "en-US"),
            "<Response><Say language=\"en-US\">Code 1, 2 &lt;&amp;&gt; &quot;x&quot;</Say>\
             <Pause length=\"1\"/><Say language=\"en-US\">Code 1, 2 &lt;&amp;&gt; &quot;x&quot;</Say>\
             </Response>"
        );
    }
}
