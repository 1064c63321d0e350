//! Sending the code to the user's phone: the message text (per locale), the
//! channels (SMS, WhatsApp, voice) and the fallback between them, the
//! providers (one wire format each), and the routes that pick a provider per
//! channel and country with failover and circuit breakers.
//!
//! The one rule every part keeps: **never two messages for one send**. A try
//! is repeated, or the next provider or channel tried, only when the message
//! surely did not reach the provider (no connection, 429, 503, an explicit
//! refusal); a failure after the request may have been taken ends the send
//! ([`GatewayError::Uncertain`]).

mod breaker;
mod channel;
mod channel_message;
mod console;
mod http;
mod message;
mod provider;
mod retry;
mod route;
mod router;
mod segments;
mod setup;
mod template;
mod textbee;
mod twilio;
mod twilio_voice;
mod twilio_whatsapp;
mod vonage;
mod webhook;
mod whatsapp_cloud;

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use thiserror::Error;

pub use breaker::{BreakerSettings, BreakerState, CircuitBreaker};
pub use channel::{Channel, ChannelFallback, FallbackError};
pub use channel_message::{
    ChannelEntries, ChannelTemplates, VoiceMessage, WhatsAppEntry, WhatsAppMessage,
    WhatsAppTemplate, is_language_code,
};
pub use console::ConsoleGateway;
pub use http::{SmsSetupError, http_client};
pub use message::{
    ANDROID_APP_HASH_LEN, LocaleEntries, MessageTemplates, Rendered, TemplatesError,
};
pub use provider::{Provider, ProviderName, SmsProvider};
pub use retry::{RetryPolicy, SendSettings};
pub use route::{RouteTable, RouteTableError};
pub use router::{MissingProvider, SmsRouter};
pub use segments::{Segments, SmsEncoding, count_segments, is_gsm7};
pub use setup::{ProviderSettings, SmsConfig};
pub use template::{MessageTemplate, TemplateError};
pub use textbee::{TextBeeConfig, TextBeeGateway};
pub use twilio::{
    TWILIO_BASE_URL, TwilioAccount, TwilioAuth, TwilioConfig, TwilioGateway, TwilioSender,
};
pub use twilio_voice::{TwilioVoiceConfig, TwilioVoiceGateway};
pub use twilio_whatsapp::{TwilioWhatsAppConfig, TwilioWhatsAppGateway};
pub use vonage::{VONAGE_BASE_URL, VonageConfig, VonageGateway};
pub use webhook::{
    MIN_WEBHOOK_SECRET_BYTES, SIGNATURE_HEADER, WebhookConfig, WebhookGateway, sign,
};
pub use whatsapp_cloud::{
    WHATSAPP_CLOUD_API_VERSION, WHATSAPP_CLOUD_BASE_URL, WhatsAppCloudConfig, WhatsAppCloudGateway,
};

use crate::domain::PhoneNumber;

/// Why a message was not sent. Text is for logs, never for callers.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// Unreachable or refusing for now (no connection, 429, 503, throttled):
    /// nothing was sent, and the caller may try again later.
    #[error("SMS gateway unavailable: {0}")]
    Unavailable(String),
    /// The request may have reached the provider before failing (cut off
    /// after it went out, a 500, an unreadable answer): the SMS may still
    /// arrive, so nothing is retried and the send still counts.
    #[error("SMS gateway failed, delivery uncertain: {0}")]
    Uncertain(String),
    /// The provider refused our credentials or account: an operator must fix
    /// the configuration. Nothing was sent.
    #[error("SMS gateway rejected our credentials: {0}")]
    Unauthorized(String),
    /// The provider refused this message for another reason (a bad sender,
    /// no credit, a malformed request). Nothing was sent.
    #[error("SMS gateway rejected the message: {0}")]
    Rejected(String),
    /// The provider says the destination cannot receive this channel (not a
    /// valid or mobile number, unsubscribed, barred, not reachable, not a
    /// WhatsApp user). Nothing was sent, and another provider of the same
    /// channel would not do better (another channel may).
    #[error("SMS gateway cannot deliver to this number: {0}")]
    Undeliverable(String),
}

impl GatewayError {
    /// Every [`GatewayError::kind`]: the closed set metrics start at 0.
    pub const KINDS: [&'static str; 5] = [
        "unavailable",
        "uncertain",
        "unauthorized",
        "rejected",
        "undeliverable",
    ];

    /// A short, stable name for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::Unavailable(_) => "unavailable",
            GatewayError::Uncertain(_) => "uncertain",
            GatewayError::Unauthorized(_) => "unauthorized",
            GatewayError::Rejected(_) => "rejected",
            GatewayError::Undeliverable(_) => "undeliverable",
        }
    }

    /// True when the message surely never reached the provider, so the send
    /// may be taken back from the limits (and, for a provider's own fault,
    /// handed to the next provider).
    pub fn surely_not_sent(&self) -> bool {
        !matches!(self, GatewayError::Uncertain(_))
    }
}

/// One code to send: the rendered SMS text, what the other channels of
/// the send need, and what a provider may want to know about it. `Debug` is
/// not derived: the text holds the code.
pub struct OutgoingSms<'a> {
    /// The channel asked for; the router falls through to the next ones of
    /// its fallback only after this one surely did not deliver.
    pub channel: Channel,
    /// The WhatsApp template and its parameter; set when WhatsApp is
    /// among the send's channels.
    pub whatsapp: Option<WhatsAppMessage<'a>>,
    /// What a voice call says; set when voice is among the send's channels.
    pub voice: Option<VoiceMessage<'a>>,
    /// The destination.
    pub to: &'a PhoneNumber,
    /// The message, code included. Never logged.
    pub text: &'a str,
    /// Digits in the code (for receivers that extract it, e.g. a voice call).
    pub code_length: u8,
    /// How long the code is valid.
    pub expires_in: Duration,
    /// BCP 47 tag of the template the text was rendered from; `None` for the default.
    pub locale: Option<&'a str>,
    /// Random id of this send, the same on every try and provider, so a
    /// receiver can drop a duplicate (see the signed webhook).
    pub request_id: String,
}

impl<'a> OutgoingSms<'a> {
    /// A message to `to` with a fresh random request id.
    pub fn new(
        to: &'a PhoneNumber,
        text: &'a str,
        code_length: u8,
        expires_in: Duration,
        locale: Option<&'a str>,
    ) -> Self {
        let request_id = hex::encode(rand::rng().random::<[u8; 16]>());
        Self {
            channel: Channel::Sms,
            whatsapp: None,
            voice: None,
            to,
            text,
            code_length,
            expires_in,
            locale,
            request_id,
        }
    }
}

/// What a provider said when it took the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The channel that carried it (the one asked for, or one it fell
    /// through to).
    pub channel: Channel,
    /// Which provider took it (`textbee`, `twilio`, …); empty for a gateway
    /// that is not a named provider.
    pub provider: &'static str,
    /// The provider's id for the message, when it gave one in time.
    pub message_id: Option<String>,
}

/// Something that delivers a text message to a phone: what the OTP flow
/// sends through ([`SmsRouter`] in the service; tests plug in their own).
///
/// Implementations must not log the message text (it holds the code) or any
/// credential, and must show phone numbers only masked.
#[async_trait]
pub trait SmsGateway: Send + Sync + 'static {
    /// Delivers `sms`. Returns once a provider has accepted it.
    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<Accepted, GatewayError>;

    /// The provider's name for audit events about a failed send (a sent one
    /// names the provider that took it, [`Accepted::provider`]).
    fn provider(&self) -> &'static str {
        "custom"
    }

    /// Whether this gateway can send on `channel` at all (a send asking for
    /// a channel it cannot is refused before anything is counted).
    fn serves(&self, channel: Channel) -> bool {
        channel == Channel::Sms
    }

    /// The channels a send preferring `channel` falls through to, in order.
    fn fallback_after(&self, _channel: Channel) -> &[Channel] {
        &[]
    }
}
