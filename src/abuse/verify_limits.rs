//! Verify limits: how many codes one `client_key`, the callers without one
//! and one authenticated caller may check per window, across every number.
//!
//! The wrong-guess cap (`OTP_MAX_ATTEMPTS`) bounds the guesses at one
//! number's code; these bound guesses spread over many numbers (each pending
//! code is a 10^-6 lottery ticket at 6 digits), and a flood of VerifyOtp for
//! numbers with nothing pending. The service-wide cap also bounds the logs a
//! flood with a fresh `client_key` per call leaves in the store. They count in the same sliding logs as the
//! send limits (`OtpStore::record_send`), in logs of their own.

use std::{fmt, time::Duration};

use super::{
    LimitKind, RateRule,
    limits::{per_minute_rules, write_per_minute},
};

/// Default `OTP_CLIENT_VERIFY_LIMIT`: a client's own sends
/// (`OTP_CLIENT_SEND_LIMIT`, 20 per 10 min) make at most 20 × 5 guesses
/// worth checking; 300 leaves room for many users behind one address and
/// for retries, yet one `client_key` spraying guesses across numbers finds
/// a 6-digit code with odds of about 3 in 10 000 per window.
pub const DEFAULT_CLIENT_VERIFY_LIMIT: u32 = 300;
/// Default `OTP_ANONYMOUS_VERIFY_LIMIT` and `OTP_CALLER_VERIFY_LIMIT`: the
/// default global cap's sends in 10 min (600) × 5 guesses each, all the
/// checks honest traffic can need, so the bucket that callers share when
/// they pass no `client_key` never refuses them before the send caps would.
pub const DEFAULT_SHARED_VERIFY_LIMIT: u32 = 3_000;
/// Default `OTP_GLOBAL_VERIFY_LIMIT`, per minute, for each send the global
/// send cap allows per minute: twice the default `OTP_MAX_ATTEMPTS`, so it
/// never binds before the send cap for honest traffic (600 a minute at the
/// defaults), while it bounds what a flood with a fresh `client_key` per call
/// costs the store (one small log per key for one window).
pub const GLOBAL_VERIFIES_PER_SEND: u32 = 10;

/// Every verify limit in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Verifies per `client_key` per `window`.
    pub client_limit: u32,
    /// Verifies per `window` by every call without a `client_key`, together.
    pub anonymous_limit: u32,
    /// Verifies per authenticated caller per `window`.
    pub caller_limit: u32,
    /// Verifies per minute across the service (`None`: off).
    pub global_per_minute: Option<u32>,
    /// The sliding window of all three.
    pub window: Duration,
}

impl VerifyLimits {
    fn rule(&self, kind: LimitKind, limit: u32) -> Vec<RateRule> {
        vec![RateRule {
            kind,
            limit,
            period: self.window,
        }]
    }

    /// Rules counted on one `client_key`.
    pub fn client_rules(&self) -> Vec<RateRule> {
        self.rule(LimitKind::ClientVerifyWindow, self.client_limit)
    }

    /// Rules counted on the one bucket of verifies without a `client_key`.
    pub fn anonymous_rules(&self) -> Vec<RateRule> {
        self.rule(LimitKind::AnonymousVerifyWindow, self.anonymous_limit)
    }

    /// Rules counted on one authenticated caller.
    pub fn caller_rules(&self) -> Vec<RateRule> {
        self.rule(LimitKind::CallerVerifyWindow, self.caller_limit)
    }

    /// Rules counted on the whole service (empty when off).
    pub fn global_rules(&self) -> Vec<RateRule> {
        per_minute_rules(LimitKind::GlobalVerify, self.global_per_minute)
    }
}

/// Every verify cap on one line, for the startup log:
/// `client=300/600s anonymous=3000/600s caller=3000/600s global=600/min`.
impl fmt::Display for VerifyLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let window = self.window.as_secs();
        write!(
            f,
            "client={}/{window}s anonymous={}/{window}s caller={}/{window}s global=",
            self.client_limit, self.anonymous_limit, self.caller_limit
        )?;
        write_per_minute(f, self.global_per_minute)
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::MINUTE;
    use super::*;

    #[test]
    fn each_bucket_has_its_own_kind_and_the_line_names_them_all() {
        let limits = VerifyLimits {
            client_limit: 300,
            anonymous_limit: 3_000,
            caller_limit: 2_000,
            global_per_minute: Some(600),
            window: Duration::from_secs(600),
        };
        let client = limits.client_rules();
        assert_eq!(
            (client[0].kind, client[0].limit, client[0].period),
            (LimitKind::ClientVerifyWindow, 300, Duration::from_secs(600))
        );
        assert_eq!(
            limits.anonymous_rules()[0].kind,
            LimitKind::AnonymousVerifyWindow
        );
        assert_eq!(limits.caller_rules()[0].limit, 2_000);
        assert_eq!(
            (
                limits.global_rules()[0].kind,
                limits.global_rules()[0].period
            ),
            (LimitKind::GlobalVerify, MINUTE)
        );
        assert_eq!(
            limits.to_string(),
            "client=300/600s anonymous=3000/600s caller=2000/600s global=600/min"
        );
        let off = VerifyLimits {
            global_per_minute: None,
            ..limits
        };
        assert!(off.global_rules().is_empty());
        assert!(off.to_string().ends_with("global=off"));
    }
}
