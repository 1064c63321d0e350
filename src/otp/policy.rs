//! The rules the flow enforces, as `config` hands them over.

use std::time::Duration;

use crate::abuse::{CountryPolicy, PumpingGuardSettings, SendLimits, TestNumbers, VerifyLimits};

/// The OTP rules the flow enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpPolicy {
    /// Digits per code (`OTP_CODE_LENGTH`, 4–10).
    pub code_length: u8,
    /// Advertised validity of a code (`OTP_TTL_SECONDS`, 1–600).
    pub ttl: Duration,
    /// Extra time a code is still accepted after `ttl`, for network delay (`OTP_GRACE_SECONDS`, 0–60).
    pub grace: Duration,
    /// Wrong guesses allowed per pending code's lifetime (`OTP_MAX_ATTEMPTS`, 1–20).
    pub max_attempts: u32,
}

impl OtpPolicy {
    /// How long a stored code lives: validity plus grace.
    pub fn code_lifetime(&self) -> Duration {
        self.ttl + self.grace
    }
}

/// Abuse rules the flow applies before anything is sent.
#[derive(Debug, Clone)]
pub struct AbuseRules {
    /// Send limits per number, caller and service.
    pub limits: SendLimits,
    /// Verify limits per `client_key`, anonymous callers and caller.
    pub verify_limits: VerifyLimits,
    /// Countries that may be texted.
    pub countries: CountryPolicy,
    /// Numbers with a fixed code and no SMS.
    pub test_numbers: TestNumbers,
    /// The SMS-pumping guard per destination prefix.
    pub pumping_guard: PumpingGuardSettings,
    /// How long an idempotency key stays claimed while its first call sends
    /// (and how long duplicates wait for it): longer than any send can take
    /// (the server passes `Config::longest_send`), so a retry never sends a
    /// second code while the first is in flight, yet a key whose holder died
    /// mid-send frees itself.
    pub idempotency_claim_ttl: Duration,
}
