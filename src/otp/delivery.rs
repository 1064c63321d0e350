//! Delivering a stored code: the message for each channel the send may use
//! (the one asked for and, when the router has a fallback for it, the ones
//! after it), rendered in the caller's language, handed to the gateway once.
//! One code for every channel: a send that falls through from WhatsApp to
//! SMS carries the same code, so the one stored digest verifies it.

use super::{OtpFlow, SendRequest};
use crate::{
    domain::OtpCode,
    sms::{Accepted, Channel, GatewayError, OutgoingSms, Rendered, VoiceMessage},
};

impl OtpFlow {
    /// Sends the code in the caller's language on the channel asked for
    /// (or one it falls through to), `rendered` its SMS text (rendered
    /// before the send was counted: its segments price it); returns what
    /// the provider that took it said. The router counts each provider's latency and failures, traces
    /// each provider asked, and logs its message id.
    pub(super) async fn deliver(
        &self,
        request: &SendRequest<'_>,
        code: &OtpCode,
        rendered: &Rendered<'_>,
    ) -> Result<Accepted, GatewayError> {
        let mut sms = OutgoingSms::new(
            request.phone,
            &rendered.text,
            self.policy.code_length,
            self.policy.ttl,
            rendered.locale,
        );
        sms.channel = request.channel;
        // Only a send that may leave SMS renders the other channels' parts:
        // the SMS path costs what it did before channels.
        let fallback = self.gateway.fallback_after(request.channel);
        let uses = |channel: Channel| request.channel == channel || fallback.contains(&channel);
        let channels = self.messages.channels();
        let voice = channels.filter(|_| uses(Channel::Voice)).map(|channels| {
            channels.voice(
                code,
                self.policy.ttl,
                self.messages.app_name(),
                request.locale,
            )
        });
        sms.whatsapp = channels
            .filter(|_| uses(Channel::WhatsApp))
            .map(|channels| channels.whatsapp(code, request.locale));
        sms.voice = voice
            .as_ref()
            .map(|(text, language)| VoiceMessage { text, language });
        let mut accepted = self.gateway.send(&sms).await?;
        // A gateway that is not a named provider (a test's) names itself.
        if accepted.provider.is_empty() {
            accepted.provider = self.gateway.provider();
        }
        tracing::info!(
            provider = accepted.provider,
            channel = accepted.channel.as_str(),
            message_id = accepted.message_id.as_deref().unwrap_or("-"),
            locale = rendered.locale.unwrap_or("default"),
            "code sent"
        );
        Ok(accepted)
    }
}
