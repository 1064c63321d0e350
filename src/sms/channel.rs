//! Channels: how a code reaches the phone (an SMS, a WhatsApp message, a
//! voice call), and the fallback between them (`OTP_CHANNEL_FALLBACK`):
//! which channel a send falls through to when the one before it surely did
//! not deliver.

use std::{collections::BTreeMap, fmt, str::FromStr};

use thiserror::Error;

/// A way to carry the code. Every provider carries exactly one
/// ([`super::ProviderName::channel`]); routes are per channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// A text message (every provider before channels; the default).
    #[default]
    Sms,
    /// A WhatsApp authentication template (Meta's Cloud API or Twilio).
    WhatsApp,
    /// A phone call that reads the code aloud (Twilio).
    Voice,
}

impl Channel {
    /// Every channel, in the order the docs list them.
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::WhatsApp, Channel::Voice];

    /// The name in settings, logs, metric labels and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::WhatsApp => "whatsapp",
            Channel::Voice => "voice",
        }
    }

    /// The variable that routes this channel's sends to providers.
    pub fn routes_var(self) -> &'static str {
        match self {
            Channel::Sms => "OTP_SMS_ROUTES",
            Channel::WhatsApp => "OTP_WHATSAPP_ROUTES",
            Channel::Voice => "OTP_VOICE_ROUTES",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == raw)
            .ok_or(())
    }
}

/// Per preferred channel, the channels a send falls through to, in order,
/// after the preferred one surely did not deliver. Empty: no fallback (a
/// send stays on the channel asked for, as SMS always did).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelFallback {
    next: BTreeMap<Channel, Vec<Channel>>,
}

/// Why `OTP_CHANNEL_FALLBACK` was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FallbackError {
    /// Not a channel name.
    #[error("unknown channel `{0}` (known: sms, whatsapp, voice)")]
    UnknownChannel(String),
    /// A chain of one channel, or with an empty step.
    #[error("entry `{0}` is not of the form `whatsapp>sms` or `whatsapp>voice>sms`")]
    Malformed(String),
    /// A channel twice in one chain.
    #[error("entry `{0}` names a channel twice")]
    Repeated(String),
    /// Two chains that start with the same channel.
    #[error("`{0}` starts more than one entry")]
    DuplicateStart(String),
}

impl ChannelFallback {
    /// No fallback at all.
    pub const NONE: Self = Self {
        next: BTreeMap::new(),
    };

    /// Parses `whatsapp>sms, voice>sms`: entries split by `,` (or `;`),
    /// each a chain of channels split by `>`, the preferred one first.
    pub fn parse(raw: &str) -> Result<Self, FallbackError> {
        let mut next = BTreeMap::new();
        for entry in raw
            .split([',', ';'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let chain = entry
                .split('>')
                .map(|name| {
                    let name = name.trim().to_ascii_lowercase();
                    if name.is_empty() {
                        return Err(FallbackError::Malformed(entry.to_owned()));
                    }
                    name.parse::<Channel>()
                        .map_err(|()| FallbackError::UnknownChannel(name.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let [first, rest @ ..] = chain.as_slice() else {
                return Err(FallbackError::Malformed(entry.to_owned()));
            };
            if rest.is_empty() {
                return Err(FallbackError::Malformed(entry.to_owned()));
            }
            if chain
                .iter()
                .enumerate()
                .any(|(i, channel)| chain[..i].contains(channel))
            {
                return Err(FallbackError::Repeated(entry.to_owned()));
            }
            if next.insert(*first, rest.to_vec()).is_some() {
                return Err(FallbackError::DuplicateStart(first.to_string()));
            }
        }
        Ok(Self { next })
    }

    /// The channels a send preferring `channel` falls through to, in order.
    pub fn after(&self, channel: Channel) -> &[Channel] {
        self.next.get(&channel).map_or(&[], Vec::as_slice)
    }

    /// Every channel some entry names.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        self.next
            .iter()
            .flat_map(|(first, rest)| std::iter::once(*first).chain(rest.iter().copied()))
    }
}

impl fmt::Display for ChannelFallback {
    /// As `OTP_CHANNEL_FALLBACK` would spell it (`none` when empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.next.is_empty() {
            return f.write_str("none");
        }
        let entries: Vec<String> = self
            .next
            .iter()
            .map(|(first, rest)| {
                std::iter::once(first)
                    .chain(rest)
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(">")
            })
            .collect();
        f.write_str(&entries.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Channel::{Sms, Voice, WhatsApp};

    #[test]
    fn chains_are_read_per_preferred_channel() {
        let fallback = ChannelFallback::parse(" WhatsApp > voice>sms , sms>voice;").expect("valid");
        assert_eq!(fallback.after(WhatsApp), [Voice, Sms]);
        assert_eq!(fallback.after(Sms), [Voice]);
        assert_eq!(fallback.after(Voice), []);
        assert_eq!(fallback.to_string(), "sms>voice,whatsapp>voice>sms");
        assert_eq!(
            ChannelFallback::parse("").expect("empty"),
            ChannelFallback::NONE
        );
        assert_eq!(ChannelFallback::NONE.to_string(), "none");
    }

    #[test]
    fn bad_chains_are_refused_with_the_reason() {
        for (raw, expected) in [
            ("whatsapp", FallbackError::Malformed("whatsapp".into())),
            ("whatsapp>", FallbackError::Malformed("whatsapp>".into())),
            ("pigeon>sms", FallbackError::UnknownChannel("pigeon".into())),
            (
                "whatsapp>sms>whatsapp",
                FallbackError::Repeated("whatsapp>sms>whatsapp".into()),
            ),
            (
                "whatsapp>sms,whatsapp>voice",
                FallbackError::DuplicateStart("whatsapp".into()),
            ),
        ] {
            assert_eq!(ChannelFallback::parse(raw), Err(expected), "{raw}");
        }
    }
}
