//! Send limits: how many codes a phone, a caller and the whole service may
//! send per window; [`LimitKind`] names them and the verify limits
//! (`verify_limits.rs`) alike.

use std::{fmt, time::Duration};

/// One limit as a store enforces it: at most `limit` sends in any `period`.
/// A cooldown is `limit: 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    /// Which configured limit this is (for errors and metrics).
    pub kind: LimitKind,
    /// Sends allowed in any sliding `period`.
    pub limit: u32,
    /// The sliding window.
    pub period: Duration,
}

/// The configured send limits, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `OTP_RESEND_COOLDOWN_SECONDS`: minimum gap between sends to one number.
    PhoneCooldown,
    /// `OTP_SEND_LIMIT` per `OTP_SEND_WINDOW_SECONDS` for one number.
    PhoneWindow,
    /// `OTP_DAILY_SEND_LIMIT` per 24 h for one number.
    PhoneDaily,
    /// `OTP_CLIENT_SEND_LIMIT` per `OTP_SEND_WINDOW_SECONDS` for one `client_key`.
    ClientWindow,
    /// `OTP_ANONYMOUS_SEND_LIMIT` per `OTP_SEND_WINDOW_SECONDS`, shared by
    /// every send without a `client_key`.
    AnonymousWindow,
    /// `OTP_GLOBAL_SEND_LIMIT` per minute for the whole service.
    Global,
    /// `OTP_CALLER_SEND_LIMIT` per `OTP_SEND_WINDOW_SECONDS` for one
    /// authenticated caller (a service with a token or a client certificate).
    CallerWindow,
    /// `OTP_CLIENT_VERIFY_LIMIT` per `OTP_VERIFY_WINDOW_SECONDS`: guesses by
    /// one `client_key`, across every number.
    ClientVerifyWindow,
    /// `OTP_ANONYMOUS_VERIFY_LIMIT` per `OTP_VERIFY_WINDOW_SECONDS`: guesses
    /// without a `client_key`, all together.
    AnonymousVerifyWindow,
    /// `OTP_CALLER_VERIFY_LIMIT` per `OTP_VERIFY_WINDOW_SECONDS`: guesses by
    /// one authenticated caller.
    CallerVerifyWindow,
    /// `OTP_GLOBAL_VERIFY_LIMIT` per minute: guesses across the service.
    GlobalVerify,
}

impl LimitKind {
    /// The limits a send is checked against (the verify limits are not):
    /// the `limit` labels of the send-refusal counter, exported at 0.
    pub const SEND_LIMITS: [LimitKind; 7] = [
        Self::PhoneCooldown,
        Self::PhoneWindow,
        Self::PhoneDaily,
        Self::ClientWindow,
        Self::AnonymousWindow,
        Self::Global,
        Self::CallerWindow,
    ];

    /// Stable name used in `google.rpc.QuotaFailure` and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PhoneCooldown => "phone_resend_cooldown",
            Self::PhoneWindow => "phone_send_window",
            Self::PhoneDaily => "phone_daily",
            Self::ClientWindow => "client_send_window",
            Self::AnonymousWindow => "anonymous_send_window",
            Self::Global => "global_send_rate",
            Self::CallerWindow => "caller_send_window",
            Self::ClientVerifyWindow => "client_verify_window",
            Self::AnonymousVerifyWindow => "anonymous_verify_window",
            Self::CallerVerifyWindow => "caller_verify_window",
            Self::GlobalVerify => "global_verify_rate",
        }
    }

    /// What the limit protects against, for the caller.
    pub fn description(self) -> &'static str {
        match self {
            Self::PhoneCooldown => "a code was sent to this number moments ago",
            Self::PhoneWindow => "too many codes sent to this number in the current window",
            Self::PhoneDaily => "too many codes sent to this number today",
            Self::ClientWindow => "too many codes requested by this client in the current window",
            Self::AnonymousWindow => {
                "too many codes requested without a client_key in the current window; \
                 pass client_key so each end user is counted on their own"
            }
            Self::Global => "the service-wide send rate limit is reached",
            Self::CallerWindow => "too many codes requested by this caller in the current window",
            Self::ClientVerifyWindow => {
                "too many codes checked by this client in the current window"
            }
            Self::AnonymousVerifyWindow => {
                "too many codes checked without a client_key in the current window; \
                 pass client_key so each end user is counted on their own"
            }
            Self::CallerVerifyWindow => {
                "too many codes checked by this caller in the current window"
            }
            Self::GlobalVerify => "the service-wide verify rate limit is reached",
        }
    }

    /// The QuotaFailure subject: which request field the limit is counted on.
    pub fn subject(self) -> &'static str {
        match self {
            Self::PhoneCooldown | Self::PhoneWindow | Self::PhoneDaily => "phone_number",
            Self::ClientWindow
            | Self::AnonymousWindow
            | Self::ClientVerifyWindow
            | Self::AnonymousVerifyWindow => "client_key",
            Self::Global | Self::GlobalVerify => "service",
            Self::CallerWindow | Self::CallerVerifyWindow => "caller",
        }
    }
}

/// Every send limit in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    /// Minimum time between two sends to one number (zero: none).
    pub resend_cooldown: Duration,
    /// Sends per number per `window`.
    pub phone_limit: u32,
    /// The window for `phone_limit` and `client_limit`.
    pub window: Duration,
    /// Sends per number per 24 hours.
    pub phone_daily_limit: u32,
    /// Sends per `client_key` per `window`.
    pub client_limit: u32,
    /// Sends per `window` by all callers that give no `client_key`, together:
    /// without it, a caller that never names its end user would be capped
    /// only per number, and could text number after number without end.
    pub anonymous_limit: u32,
    /// Sends per minute across all numbers (`None`: off).
    pub global_per_minute: Option<u32>,
    /// Sends per authenticated caller per `window`.
    pub caller_limit: u32,
}

/// The length of a day for the daily limit.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The window of the global limit.
pub const MINUTE: Duration = Duration::from_secs(60);

impl SendLimits {
    /// Rules counted on one phone number.
    pub fn phone_rules(&self) -> Vec<RateRule> {
        let mut rules = Vec::with_capacity(3);
        if !self.resend_cooldown.is_zero() {
            rules.push(RateRule {
                kind: LimitKind::PhoneCooldown,
                limit: 1,
                period: self.resend_cooldown,
            });
        }
        rules.push(RateRule {
            kind: LimitKind::PhoneWindow,
            limit: self.phone_limit,
            period: self.window,
        });
        rules.push(RateRule {
            kind: LimitKind::PhoneDaily,
            limit: self.phone_daily_limit,
            period: DAY,
        });
        rules
    }

    /// Rules counted on one `client_key`.
    pub fn client_rules(&self) -> Vec<RateRule> {
        vec![RateRule {
            kind: LimitKind::ClientWindow,
            limit: self.client_limit,
            period: self.window,
        }]
    }

    /// Rules counted on one authenticated caller.
    pub fn caller_rules(&self) -> Vec<RateRule> {
        vec![RateRule {
            kind: LimitKind::CallerWindow,
            limit: self.caller_limit,
            period: self.window,
        }]
    }

    /// Rules counted on the one bucket of sends without a `client_key`.
    pub fn anonymous_rules(&self) -> Vec<RateRule> {
        vec![RateRule {
            kind: LimitKind::AnonymousWindow,
            limit: self.anonymous_limit,
            period: self.window,
        }]
    }

    /// Rules counted on the whole service (empty when off).
    pub fn global_rules(&self) -> Vec<RateRule> {
        per_minute_rules(LimitKind::Global, self.global_per_minute)
    }
}

/// Every cap on one line, for the startup log:
/// `resend_cooldown=30s phone=5/600s phone_daily=10/24h client=20/600s …`.
impl fmt::Display for SendLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let window = self.window.as_secs();
        write!(
            f,
            "resend_cooldown={}s phone={}/{window}s phone_daily={}/24h client={}/{window}s \
             anonymous={}/{window}s caller={}/{window}s global=",
            self.resend_cooldown.as_secs(),
            self.phone_limit,
            self.phone_daily_limit,
            self.client_limit,
            self.anonymous_limit,
            self.caller_limit,
        )?;
        write_per_minute(f, self.global_per_minute)
    }
}

/// The rules of a service-wide cap of `limit` a minute (none when off):
/// the send and the verify caps alike.
pub(super) fn per_minute_rules(kind: LimitKind, limit: Option<u32>) -> Vec<RateRule> {
    limit
        .map(|limit| RateRule {
            kind,
            limit,
            period: MINUTE,
        })
        .into_iter()
        .collect()
}

/// A service-wide cap as the caps line spells it: `60/min` or `off`.
pub(super) fn write_per_minute(f: &mut fmt::Formatter<'_>, limit: Option<u32>) -> fmt::Result {
    match limit {
        Some(limit) => write!(f, "{limit}/min"),
        None => f.write_str("off"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SendLimits {
        SendLimits {
            resend_cooldown: Duration::from_secs(30),
            phone_limit: 5,
            window: Duration::from_secs(600),
            phone_daily_limit: 10,
            client_limit: 20,
            anonymous_limit: 50,
            global_per_minute: None,
            caller_limit: 300,
        }
    }

    #[test]
    fn every_cap_is_named_on_one_line() {
        let line = SendLimits {
            global_per_minute: Some(60),
            ..limits()
        }
        .to_string();
        assert_eq!(
            line,
            "resend_cooldown=30s phone=5/600s phone_daily=10/24h client=20/600s \
             anonymous=50/600s caller=300/600s global=60/min"
        );
        assert!(limits().to_string().ends_with("global=off"));
    }

    #[test]
    fn phone_rules_include_cooldown_unless_zero() {
        let kinds: Vec<_> = limits().phone_rules().iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                LimitKind::PhoneCooldown,
                LimitKind::PhoneWindow,
                LimitKind::PhoneDaily
            ]
        );
        let no_cooldown = SendLimits {
            resend_cooldown: Duration::ZERO,
            ..limits()
        };
        assert_eq!(no_cooldown.phone_rules().len(), 2);
    }

    #[test]
    fn global_rule_only_when_configured() {
        assert!(limits().global_rules().is_empty());
        let on = SendLimits {
            global_per_minute: Some(100),
            ..limits()
        };
        assert_eq!(on.global_rules()[0].limit, 100);
        assert_eq!(on.global_rules()[0].period, MINUTE);
    }
}
