//! Domain values as the admin API answers them: lists of prefixes and the
//! abuse settings in force, field by field (the facts of the startup "caps
//! in force" line, `server/startup_log.rs`).

use crate::{
    abuse::{GuardMode, PumpingGuardSettings, SendLimits, VerifyLimits},
    domain::ceil_seconds,
    otp::{AbuseRules, OtpPolicy},
    proto::admin::{
        self as proto, GetAbuseSettingsResponse, ListPrefixExemptionsResponse,
        ListSuspendedPrefixesResponse, PumpingGuardMode,
    },
    store::{PrefixExemption, SuspendedPrefix},
};

/// `OTP_PUMPING_TRUST_DAYS` is whole days.
const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

/// The suspended prefixes, in the order given.
pub(super) fn suspended_prefixes(suspended: Vec<SuspendedPrefix>) -> ListSuspendedPrefixesResponse {
    ListSuspendedPrefixesResponse {
        suspended_prefixes: suspended
            .into_iter()
            .map(|suspended| proto::SuspendedPrefix {
                prefix: suspended.prefix.to_string(),
                lift_in_seconds: ceil_seconds(suspended.lift_in),
                judged_sends: suspended.counts.judged,
                approved_sends: suspended.counts.approved,
            })
            .collect(),
    }
}

/// The exempt prefixes, in the order given.
pub(super) fn prefix_exemptions(exemptions: Vec<PrefixExemption>) -> ListPrefixExemptionsResponse {
    ListPrefixExemptionsResponse {
        prefix_exemptions: exemptions
            .into_iter()
            .map(|exemption| proto::PrefixExemption {
                prefix: exemption.prefix.to_string(),
                ends_in_seconds: ceil_seconds(exemption.ends_in),
            })
            .collect(),
    }
}

/// Every abuse setting this replica enforces.
pub(super) fn abuse_settings(policy: &OtpPolicy, abuse: &AbuseRules) -> GetAbuseSettingsResponse {
    GetAbuseSettingsResponse {
        code_policy: Some(proto::CodePolicy {
            code_length: u32::from(policy.code_length),
            ttl_seconds: ceil_seconds(policy.ttl),
            grace_seconds: ceil_seconds(policy.grace),
            max_attempts: policy.max_attempts,
        }),
        send_limits: Some(send_limits(&abuse.limits)),
        pumping_guard: Some(pumping_guard(&abuse.pumping_guard)),
        allowed_countries: abuse.countries.allowed().map(str::to_owned).collect(),
        denied_countries: abuse.countries.denied().map(str::to_owned).collect(),
        verify_limits: Some(verify_limits(&abuse.verify_limits)),
    }
}

fn verify_limits(limits: &VerifyLimits) -> proto::VerifyLimits {
    proto::VerifyLimits {
        window_seconds: ceil_seconds(limits.window),
        client_limit: limits.client_limit,
        anonymous_limit: limits.anonymous_limit,
        caller_limit: limits.caller_limit,
        global_per_minute: limits.global_per_minute.unwrap_or(0),
    }
}

fn send_limits(limits: &SendLimits) -> proto::SendLimits {
    proto::SendLimits {
        resend_cooldown_seconds: ceil_seconds(limits.resend_cooldown),
        window_seconds: ceil_seconds(limits.window),
        phone_limit: limits.phone_limit,
        phone_daily_limit: limits.phone_daily_limit,
        client_limit: limits.client_limit,
        anonymous_limit: limits.anonymous_limit,
        caller_limit: limits.caller_limit,
        global_per_minute: limits.global_per_minute.unwrap_or(0),
    }
}

fn pumping_guard(guard: &PumpingGuardSettings) -> proto::PumpingGuard {
    let mode = match guard.mode {
        GuardMode::Off => PumpingGuardMode::Off,
        GuardMode::Monitor => PumpingGuardMode::Monitor,
        GuardMode::Enforce => PumpingGuardMode::Enforce,
    };
    proto::PumpingGuard {
        mode: mode.into(),
        prefix_digits: u32::from(guard.prefix_digits),
        window_seconds: ceil_seconds(guard.window),
        min_sends: guard.min_sends,
        min_approved_percent: guard.min_approved_percent,
        suspension_seconds: ceil_seconds(guard.suspension),
        min_sources: guard.min_sources,
        trust_days: u32::try_from(guard.trust_for.as_secs() / SECONDS_PER_DAY).unwrap_or(u32::MAX),
    }
}
