//! What the flow is asked and what it answers, in domain words.

use std::time::Duration;

use crate::{
    auth::Caller,
    domain::{ClientKey, IdempotencyKey, Locale, PhoneNumber, ceil_seconds},
    sms::Channel,
    store::RecordedSend,
};

/// A code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentCode {
    /// Advertised validity (grace not included).
    pub expires_in: Duration,
    /// Digits in the code.
    pub code_length: u8,
    /// Wrong guesses still allowed for the number.
    pub attempts_remaining: u32,
    /// Time until the number may be sent another code.
    pub resend_after: Duration,
    /// The channel that carried the code (SMS for a test number).
    pub channel: Channel,
}

/// A SendOtp, parsed.
#[derive(Debug, Clone, Copy)]
pub struct SendRequest<'a> {
    /// Where the code goes.
    pub phone: &'a PhoneNumber,
    /// Who asked (limits are counted per client key).
    pub client_key: Option<&'a ClientKey>,
    /// Makes retries return the first response.
    pub idempotency_key: Option<&'a IdempotencyKey>,
    /// The authenticated caller (limits are counted per caller too).
    pub caller: Option<&'a Caller>,
    /// The language the message should be in, if the caller said.
    pub locale: Option<&'a Locale>,
    /// The channel asked for (SMS unless the caller said).
    pub channel: Channel,
}

/// A VerifyOtp, parsed.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRequest<'a> {
    /// Whose code is checked.
    pub phone: &'a PhoneNumber,
    /// The code as typed (checked for shape before anything is counted).
    pub code: &'a str,
    /// Who is checking (guesses are counted per client key).
    pub client_key: Option<&'a ClientKey>,
    /// The authenticated caller (guesses are counted per caller too).
    pub caller: Option<&'a Caller>,
}

/// The result of checking a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Right code, now used up.
    Approved,
    /// Wrong code; this many guesses remain (0: the number is now locked).
    Incorrect {
        /// Guesses left.
        attempts_remaining: u32,
    },
    /// No pending code.
    Expired,
    /// Too many wrong guesses.
    Locked,
}

/// Whether a code is pending and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLeft {
    /// A code can be verified right now (possibly within its grace period).
    pub pending: bool,
    /// Whole seconds of advertised validity left, rounded up; 0 during grace.
    pub seconds_left: u32,
}

impl From<SentCode> for RecordedSend {
    fn from(sent: SentCode) -> Self {
        Self {
            expires_in_secs: ceil_seconds(sent.expires_in),
            code_length: u32::from(sent.code_length),
            attempts_remaining: sent.attempts_remaining,
            resend_after_secs: ceil_seconds(sent.resend_after),
            channel: channel_number(sent.channel),
        }
    }
}

/// A channel's number in a recorded response (0 is SMS, so records from
/// before channels read as SMS).
fn channel_number(channel: Channel) -> u32 {
    match channel {
        Channel::Sms => 0,
        Channel::WhatsApp => 1,
        Channel::Voice => 2,
    }
}

/// The channel a recorded response names; an unknown number (a record of a
/// later version) reads as SMS.
fn channel_of(number: u32) -> Channel {
    match number {
        1 => Channel::WhatsApp,
        2 => Channel::Voice,
        _ => Channel::Sms,
    }
}

impl From<RecordedSend> for SentCode {
    fn from(recorded: RecordedSend) -> Self {
        Self {
            expires_in: Duration::from_secs(u64::from(recorded.expires_in_secs)),
            code_length: u8::try_from(recorded.code_length).unwrap_or(u8::MAX),
            attempts_remaining: recorded.attempts_remaining,
            resend_after: Duration::from_secs(u64::from(recorded.resend_after_secs)),
            channel: channel_of(recorded.channel),
        }
    }
}
