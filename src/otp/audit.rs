//! Which decisions of the flow become audit events, and with what detail.
//! Events are built only when a stream is configured (see `events`), and
//! never hold the code or the full number.

use super::{OtpFlow, Verification};
use crate::{
    domain::{ClientKey, PhoneNumber},
    error::Error,
    events::{AuditEvent, EventKind},
    sms::{Channel, GatewayError},
    spend::Micros,
};

/// The provider named on a send to a test number (no SMS leaves).
const TEST_NUMBER_PROVIDER: &str = "test_number";

impl OtpFlow {
    /// Queues an event of `kind` about `phone`, after `detail` fills in the
    /// rest; costs nothing when events are off.
    fn audit(&self, kind: EventKind, phone: &PhoneNumber, detail: impl FnOnce(&mut AuditEvent)) {
        self.events.emit(|| {
            let mut event = AuditEvent::about(kind, phone);
            detail(&mut event);
            event
        });
    }

    /// The caller's digest, as events name it.
    fn caller(&self, client_key: Option<&ClientKey>) -> Option<String> {
        client_key.map(|client| self.secret.client_subject(client).to_string())
    }

    /// A code went out through `provider` on `channel` (or was stored for
    /// a test number), at an estimated price of `spent` (with a prices
    /// file): that provider's price on that channel.
    pub(super) fn audit_sent(
        &self,
        phone: &PhoneNumber,
        client_key: Option<&ClientKey>,
        provider: Option<&'static str>,
        channel: Channel,
        spent: Option<Micros>,
    ) {
        self.audit(EventKind::Sent, phone, |event| {
            event.caller = self.caller(client_key);
            event.provider = Some(provider.unwrap_or(TEST_NUMBER_PROVIDER));
            event.channel = Some(channel.as_str());
            self.add_estimate(event, spent);
        });
    }

    /// The estimated price and its currency, when spend is estimated.
    fn add_estimate(&self, event: &mut AuditEvent, estimate: Option<Micros>) {
        if let (Some(spend), Some(estimate)) = (&self.spend, estimate) {
            event.estimate_micros = Some(estimate.0);
            event.currency = Some(spend.currency().code());
        }
    }

    /// No provider took the message asked for on `channel` (nor on a
    /// channel it fell through to); `estimate` is what was reserved.
    pub(super) fn audit_send_failed(
        &self,
        phone: &PhoneNumber,
        client_key: Option<&ClientKey>,
        provider: &'static str,
        channel: Channel,
        error: &GatewayError,
        estimate: Option<Micros>,
    ) {
        self.audit(EventKind::SendFailed, phone, |event| {
            event.caller = self.caller(client_key);
            event.provider = Some(provider);
            event.channel = Some(channel.as_str());
            event.reason = Some(error.kind());
            self.add_estimate(event, estimate);
        });
    }

    /// A send a rule refused: the country policy, a send limit, the
    /// wrong-guess lock. Other errors (store, gateway, bad input) are not
    /// decisions about the number and make no event.
    pub(super) fn audit_refusal(
        &self,
        phone: &PhoneNumber,
        client_key: Option<&ClientKey>,
        error: &Error,
    ) {
        if let Error::DestinationSuspended { .. } = error {
            // Not the suspended prefix: with the masked form's last digits
            // it would leave only a few digits of the number unknown.
            self.audit(EventKind::DestinationSuspended, phone, |event| {
                event.caller = self.caller(client_key);
                event.limit = Some("pumping_guard".to_owned());
            });
            return;
        }
        let limit = match error {
            Error::CountryNotAllowed { .. } => "country".to_owned(),
            Error::SpendLimited { refusals } => refusals
                .iter()
                .map(|refusal| refusal.cap.as_str())
                .collect::<Vec<_>>()
                .join(","),
            Error::Locked { .. } => "wrong_guess_lock".to_owned(),
            Error::RateLimited { violations } => violations
                .iter()
                .map(|violation| violation.kind.as_str())
                .collect::<Vec<_>>()
                .join(","),
            _ => return,
        };
        self.audit(EventKind::Refused, phone, |event| {
            event.caller = self.caller(client_key);
            event.limit = Some(limit);
        });
    }

    /// What a guess came to. A guess with nothing pending makes no event:
    /// it decides nothing about the number, and anyone can make as many as
    /// the verify limits allow for numbers never texted, which would fill
    /// the stream; `otp_verifies_total{result="expired"}` counts them.
    pub(super) fn audit_verification(&self, phone: &PhoneNumber, verification: Verification) {
        let (kind, attempts_remaining) = match verification {
            Verification::Approved => (EventKind::Approved, None),
            Verification::Incorrect { attempts_remaining } => {
                (EventKind::Incorrect, Some(attempts_remaining))
            }
            Verification::Expired => return,
            Verification::Locked => (EventKind::Locked, None),
        };
        self.audit(kind, phone, |event| {
            event.attempts_remaining = attempts_remaining
        });
    }

    /// CancelOtp removed a pending code.
    pub(super) fn audit_cancelled(&self, phone: &PhoneNumber) {
        self.audit(EventKind::Cancelled, phone, |_| {});
    }
}
