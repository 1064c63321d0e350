//! One provider as routes see it: its wire format behind [`SmsProvider`],
//! its name (and with it the channel it carries), its circuit breaker, and
//! the metrics and log line of every send handed to it.

use std::{fmt, str::FromStr, sync::Arc};

use async_trait::async_trait;
use tokio::time::Instant;
use tracing::Instrument;

use super::{
    Channel, GatewayError, OutgoingSms,
    breaker::{BreakerSettings, CircuitBreaker},
    http::millis,
};
use crate::{metrics, telemetry};

/// One provider's wire format (TextBee, Twilio, Vonage, the signed webhook,
/// the console; WhatsApp through Meta or Twilio; voice through Twilio).
/// A provider of another channel than SMS reads that channel's part of the
/// message ([`OutgoingSms::whatsapp`], [`OutgoingSms::voice`]).
///
/// Contract: returns by `deadline`; repeats a request only after one that
/// surely did not reach the provider ([`super::retry::RetryPolicy`]); never
/// logs the text, a credential or a full number.
#[async_trait]
pub trait SmsProvider: Send + Sync + 'static {
    /// Sends `sms`; on success, the provider's message id if it gave one.
    async fn send(
        &self,
        sms: &OutgoingSms<'_>,
        deadline: Instant,
    ) -> Result<Option<String>, GatewayError>;
}

/// The providers a route can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProviderName {
    /// Prints to standard output (development only).
    Console,
    /// TextBee (`SMS_SENDER_API`, `TEXTBEE_API_KEY`).
    TextBee,
    /// Twilio Programmable Messaging (`OTP_TWILIO_*`).
    Twilio,
    /// Vonage SMS API (`OTP_VONAGE_*`).
    Vonage,
    /// The operator's own endpoint, signed (`OTP_SMS_WEBHOOK_*`).
    Webhook,
    /// WhatsApp through Meta's WhatsApp Cloud API (`OTP_WHATSAPP_CLOUD_*`).
    WhatsAppCloud,
    /// WhatsApp through Twilio's Messages API (`OTP_TWILIO_WHATSAPP_*`).
    TwilioWhatsApp,
    /// Voice calls through Twilio's Calls API (`OTP_TWILIO_VOICE_FROM`).
    TwilioVoice,
}

impl ProviderName {
    /// Every provider, in the order the docs list them.
    pub const ALL: [ProviderName; 8] = [
        ProviderName::Console,
        ProviderName::TextBee,
        ProviderName::Twilio,
        ProviderName::Vonage,
        ProviderName::Webhook,
        ProviderName::WhatsAppCloud,
        ProviderName::TwilioWhatsApp,
        ProviderName::TwilioVoice,
    ];

    /// The name used in the routes variables, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Console => "console",
            ProviderName::TextBee => "textbee",
            ProviderName::Twilio => "twilio",
            ProviderName::Vonage => "vonage",
            ProviderName::Webhook => "webhook",
            ProviderName::WhatsAppCloud => "whatsapp_cloud",
            ProviderName::TwilioWhatsApp => "twilio_whatsapp",
            ProviderName::TwilioVoice => "twilio_voice",
        }
    }

    /// Every provider's name, comma-separated, in [`ProviderName::ALL`]'s
    /// order: what error messages list as known.
    pub fn list() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// The channel this provider carries.
    pub fn channel(self) -> Channel {
        match self {
            ProviderName::Console
            | ProviderName::TextBee
            | ProviderName::Twilio
            | ProviderName::Vonage
            | ProviderName::Webhook => Channel::Sms,
            ProviderName::WhatsAppCloud | ProviderName::TwilioWhatsApp => Channel::WhatsApp,
            ProviderName::TwilioVoice => Channel::Voice,
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderName {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str() == raw)
            .ok_or(())
    }
}

/// A provider with its breaker: what a route tries in turn.
pub struct Provider {
    name: ProviderName,
    wire: Arc<dyn SmsProvider>,
    breaker: CircuitBreaker,
}

/// How a provider's turn in a route went.
pub(super) enum Turn {
    /// Its circuit is open: it was not asked.
    Skipped,
    /// It was asked; this is its answer.
    Answered(Result<Option<String>, GatewayError>),
}

impl Provider {
    /// `wire` under `name`, with a breaker of `breaker` settings.
    pub fn new(name: ProviderName, wire: Arc<dyn SmsProvider>, breaker: BreakerSettings) -> Self {
        Self {
            name,
            wire,
            breaker: CircuitBreaker::new(name.as_str(), breaker),
        }
    }

    /// The provider's name.
    pub fn name(&self) -> ProviderName {
        self.name
    }

    /// Its circuit breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Sends through this provider unless its circuit is open; records the
    /// outcome in the breaker, the metrics and one log line.
    pub(super) async fn take_turn(&self, sms: &OutgoingSms<'_>, deadline: Instant) -> Turn {
        let provider = self.name.as_str();
        let channel = self.name.channel().as_str();
        let Some(permit) = self.breaker.try_acquire() else {
            metrics::sms_provider_skipped(provider);
            tracing::warn!(provider, "circuit open: provider skipped");
            return Turn::Skipped;
        };
        let started = Instant::now();
        // While traces are exported, each provider asked is a child span of
        // the call, its tries children of that.
        let span = telemetry::sms_send_span(provider);
        let result = self.wire.send(sms, deadline).instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let outcome = result.as_ref().map_or_else(GatewayError::kind, |_| "sent");
        telemetry::annotate(&span, "otp.sms.result", outcome);
        match &result {
            Ok(message_id) => {
                permit.succeeded();
                metrics::sms_provider_send(provider, channel, None, elapsed);
                tracing::info!(
                    provider,
                    channel,
                    message_id = message_id.as_deref().unwrap_or("-"),
                    request_id = %sms.request_id,
                    latency_ms = millis(elapsed),
                    "message accepted"
                );
            }
            Err(error) => {
                // "Cannot deliver to this number" is a proper answer from a
                // working provider, not a sign of trouble.
                if matches!(error, GatewayError::Undeliverable(_)) {
                    permit.succeeded();
                } else {
                    permit.failed();
                }
                metrics::sms_provider_send(provider, channel, Some(error.kind()), elapsed);
                tracing::warn!(
                    provider,
                    channel,
                    request_id = %sms.request_id,
                    latency_ms = millis(elapsed),
                    error = %error,
                    "message not accepted"
                );
            }
        }
        Turn::Answered(result)
    }
}
