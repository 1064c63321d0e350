//! Audit events: every decision about a number (sent, refused, approved, …)
//! and every change an operator makes through the admin API (a suspension
//! lifted, a prefix exempted) appended to a Redis Stream that any language
//! reads with `XREADGROUP`.
//!
//! Best effort by design: an event is queued without waiting (`sink.rs`) and
//! written by one background task (`writer.rs`); a full queue or a stream
//! that cannot be written drops the event, counts it
//! (`otp_events_dropped_total`) and logs once per interval. A call is never
//! slowed or failed by its event. Delivery is therefore at most once.
//!
//! An event never holds the code or the full number: only a keyed digest of
//! the number (consumers correlate on it), its country and its masked form.

mod sink;
mod writer;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use sink::EventSink;
pub use writer::EventWriter;

use crate::{
    abuse::DestinationPrefix,
    domain::{HmacKeys, PhoneNumber},
};

/// Where events go and how many the stream keeps (`OTP_EVENTS_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// The stream's Redis key: [`stream_key`] of `OTP_REDIS_PREFIX` and
    /// `OTP_EVENTS_STREAM`.
    pub stream: String,
    /// `XADD … MAXLEN ~ maxlen`: roughly how many events the stream keeps
    /// (`OTP_EVENTS_MAXLEN`).
    pub maxlen: u64,
    /// Events older than this are trimmed (`XTRIM … MINID`, by the writer
    /// at least every 10 s and at startup; `OTP_EVENTS_MAX_AGE_SECONDS`).
    pub max_age: Duration,
    /// Which replica wrote an event (`OTP_REPLICA_ID`, else the host name).
    pub replica: String,
}

/// The key of the stream named `name` under the store's key `prefix`
/// (`<prefix>:<name>`), so services sharing a Redis under different
/// prefixes keep their events apart as they keep their records apart.
pub fn stream_key(prefix: &str, name: &str) -> String {
    format!("{prefix}:{name}")
}

/// What was decided. The `event` field carries [`EventKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A code was handed to an SMS provider (or stored for a test number).
    Sent,
    /// The provider did not take the message; no code is pending.
    SendFailed,
    /// The right code: the number is verified and the code used up.
    Approved,
    /// A wrong code; one guess spent.
    Incorrect,
    /// A guess refused because the wrong-guess budget is spent.
    Locked,
    /// CancelOtp removed a pending code.
    Cancelled,
    /// A send refused by a rule (`limit` names it).
    Refused,
    /// A send refused because the pumping guard suspended the number's
    /// destination prefix.
    DestinationSuspended,
    /// An operator lifted a prefix's suspension (admin API).
    PrefixSuspensionLifted,
    /// An operator exempted a prefix from the pumping guard (admin API).
    PrefixExempted,
    /// An operator ended a prefix's exemption (admin API).
    PrefixExemptionEnded,
}

impl EventKind {
    /// The stable name consumers match on.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::SendFailed => "send_failed",
            Self::Approved => "approved",
            Self::Incorrect => "incorrect",
            Self::Locked => "locked",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
            Self::DestinationSuspended => "destination_suspended",
            Self::PrefixSuspensionLifted => "prefix_suspension_lifted",
            Self::PrefixExempted => "prefix_exempted",
            Self::PrefixExemptionEnded => "prefix_exemption_ended",
        }
    }
}

/// One decision, as queued. Built only when events are on. It holds the
/// number itself so that the costly parts (its keyed digest, its country,
/// which needs a numbering-plan lookup) are derived by the writer, off the
/// request path; only [`AuditEvent::fields`] says what leaves the process.
/// An operator's change is about a prefix instead of a number.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// What was decided.
    pub kind: EventKind,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The number (`Debug` and `Display` mask it); never written out.
    /// `None` for an operator's change, which is about a prefix.
    phone: Option<PhoneNumber>,
    /// Keyed digest of the caller's `client_key`, when it gave one.
    pub caller: Option<String>,
    /// The provider (sent, send failed).
    pub provider: Option<&'static str>,
    /// The channel (sent: the one that carried the code; send failed: the
    /// one asked for): `sms`, `whatsapp` or `voice`.
    pub channel: Option<&'static str>,
    /// The rule that refused (refused), comma-separated when several did.
    pub limit: Option<String>,
    /// Why a send failed (the gateway error kind).
    pub reason: Option<&'static str>,
    /// Wrong guesses still allowed (incorrect).
    pub attempts_remaining: Option<u32>,
    /// The send's estimated price in millionths of `currency` (sent, send
    /// failed; with a prices file).
    pub estimate_micros: Option<u64>,
    /// The ISO 4217 currency of `estimate_micros`.
    pub currency: Option<&'static str>,
    /// The destination prefix an operator acted on (admin API).
    pub prefix: Option<DestinationPrefix>,
    /// Who acted (admin API): the caller's name, or `loopback`.
    pub operator: Option<String>,
    /// How long an exemption lasts, in seconds (prefix exempted).
    pub duration_seconds: Option<u64>,
}

impl AuditEvent {
    /// An event of `kind` about `phone`, stamped now; add detail with the
    /// struct's fields.
    pub fn about(kind: EventKind, phone: &PhoneNumber) -> Self {
        Self {
            phone: Some(phone.clone()),
            ..Self::new(kind)
        }
    }

    /// An event of `kind` about an operator's change to `prefix`, stamped now.
    pub fn about_prefix(kind: EventKind, prefix: &DestinationPrefix, operator: &str) -> Self {
        Self {
            prefix: Some(prefix.clone()),
            operator: Some(operator.to_owned()),
            ..Self::new(kind)
        }
    }

    fn new(kind: EventKind) -> Self {
        Self {
            kind,
            time_ms: now_ms(),
            phone: None,
            caller: None,
            provider: None,
            channel: None,
            limit: None,
            reason: None,
            attempts_remaining: None,
            estimate_micros: None,
            currency: None,
            prefix: None,
            operator: None,
            duration_seconds: None,
        }
    }

    /// The stream entry's field/value pairs; absent details are left out.
    /// The number appears only as `phone_digest` ([`HmacKeys::event_subject`]:
    /// stable across key rotations, and not the store's key, so a reader of
    /// the stream learns nothing that addresses the stored code), `country`
    /// and `masked_phone`; an operator's change has `prefix` and `operator`
    /// instead.
    pub fn fields(&self, replica: &str, keys: &HmacKeys) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("time", self.time_ms.to_string()),
            ("event", self.kind.as_str().to_owned()),
            ("replica", replica.to_owned()),
        ];
        if let Some(phone) = &self.phone {
            fields.extend([
                ("phone_digest", keys.event_subject(phone).to_string()),
                ("country", phone.region().unwrap_or_default().to_owned()),
                ("masked_phone", phone.masked()),
            ]);
        }
        let optional = [
            ("caller", self.caller.clone()),
            ("provider", self.provider.map(str::to_owned)),
            ("channel", self.channel.map(str::to_owned)),
            ("limit", self.limit.clone()),
            ("reason", self.reason.map(str::to_owned)),
            (
                "attempts_remaining",
                self.attempts_remaining.map(|n| n.to_string()),
            ),
            (
                "estimate_micros",
                self.estimate_micros.map(|n| n.to_string()),
            ),
            ("currency", self.currency.map(str::to_owned)),
            ("prefix", self.prefix.as_ref().map(ToString::to_string)),
            ("operator", self.operator.clone()),
            (
                "duration_seconds",
                self.duration_seconds.map(|n| n.to_string()),
            ),
        ];
        fields.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        fields
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_hold_digest_country_and_mask_but_never_the_number() {
        let phone = PhoneNumber::parse("+14155550123").expect("valid");
        let keys = HmacKeys::single(crate::domain::HmacSecret::new(b"k"));
        let mut event = AuditEvent::about(EventKind::Incorrect, &phone);
        event.attempts_remaining = Some(4);
        assert!(!format!("{event:?}").contains("4155550123"), "Debug masks");
        let fields = event.fields("replica-1", &keys);
        let get = |name| {
            fields
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("event"), Some("incorrect"));
        assert_eq!(get("country"), Some("US"));
        assert_eq!(get("masked_phone"), Some("+1******0123"));
        assert_eq!(get("attempts_remaining"), Some("4"));
        assert_eq!(get("provider"), None);
        let digest = get("phone_digest").expect("digest");
        assert_ne!(
            digest,
            keys.subject_key(&phone).to_string(),
            "not the store key"
        );
        assert!(
            fields
                .iter()
                .all(|(_, value)| !value.contains("4155550123"))
        );
    }

    #[test]
    fn an_operators_change_names_the_prefix_and_the_operator_but_no_number() {
        let keys = HmacKeys::single(crate::domain::HmacSecret::new(b"k"));
        let prefix = DestinationPrefix::parse("+447700").expect("valid");
        let mut event = AuditEvent::about_prefix(EventKind::PrefixExempted, &prefix, "ops");
        event.duration_seconds = Some(3600);
        let fields = event.fields("replica-1", &keys);
        let names: Vec<_> = fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "time",
                "event",
                "replica",
                "prefix",
                "operator",
                "duration_seconds"
            ]
        );
        assert_eq!(fields[1].1, "prefix_exempted");
        assert_eq!(fields[3].1, "+447700");
        assert_eq!(fields[4].1, "ops");
        assert_eq!(fields[5].1, "3600");
    }
}
