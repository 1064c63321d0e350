//! Settings that are each valid alone but unsafe together: refused at
//! startup, after every variable has been read on its own (so a malformed
//! value is named first), in one line naming the variables at fault.

use super::{ConfigError, OtpPolicy, SmsConfig, SmsVars, StoreConfig};
use crate::abuse::SendLimits;

/// Largest accepted chance that one number's code is guessed in a day:
/// 1 in 10 000. NIST SP 800-63B allows 100 failed guesses against a 6-digit
/// code (10^-4); the service grants `OTP_MAX_ATTEMPTS` guesses per code and
/// `OTP_DAILY_SEND_LIMIT` codes a day, so that product is what is bounded.
pub const MAX_DAILY_GUESS_ODDS: u128 = 10_000;

/// Runs every cross-variable check.
pub(super) fn refuse_unsafe_combinations(
    sms_vars: &SmsVars,
    caller_send_limit_set: bool,
    policy: &OtpPolicy,
    limits: &SendLimits,
    store: &StoreConfig,
    sms: &SmsConfig,
) -> Result<(), ConfigError> {
    console_must_be_chosen_with_redis(sms_vars, store, sms)?;
    guessing_must_stay_unlikely(policy, limits)?;
    caller_cap_must_stay_within_the_global_cap(caller_send_limit_set, limits)
}

/// A per-caller cap above the service-wide one can never bind, and says one
/// caller may spend everyone's budget: an `OTP_CALLER_SEND_LIMIT` set higher
/// (as a rate: its sends per `OTP_SEND_WINDOW_SECONDS` against
/// `OTP_GLOBAL_SEND_LIMIT` per minute) is refused. Its default is derived
/// from the global cap and always fits; with the global cap off any value is
/// accepted.
fn caller_cap_must_stay_within_the_global_cap(
    caller_send_limit_set: bool,
    limits: &SendLimits,
) -> Result<(), ConfigError> {
    let (Some(global), true) = (limits.global_per_minute, caller_send_limit_set) else {
        return Ok(());
    };
    let window = limits.window.as_secs();
    if u64::from(limits.caller_limit) * 60 <= u64::from(global) * window {
        return Ok(());
    }
    Err(ConfigError::new(
        "OTP_CALLER_SEND_LIMIT",
        format!(
            "{} per {window} s is more than the service-wide OTP_GLOBAL_SEND_LIMIT allows \
             ({global} per minute, {} per {window} s): one caller could spend every caller's \
             budget; set it to at most that (unset: half of it), or raise OTP_GLOBAL_SEND_LIMIT",
            limits.caller_limit,
            u64::from(global) * window / 60,
        ),
    ))
}

/// With Redis the service is a deployment, not `cargo run`: a console gateway
/// there usually means a TextBee secret that failed to mount, and it would
/// print every code and full number to stdout, which container runtimes ship
/// to log stores. So it must be asked for by name.
fn console_must_be_chosen_with_redis(
    vars: &SmsVars,
    store: &StoreConfig,
    sms: &SmsConfig,
) -> Result<(), ConfigError> {
    // Routes name every provider, the console included, on purpose.
    let chosen_by_name =
        vars.sms_gateway.as_deref() == Some("console") || vars.sms_routes.is_some();
    if matches!(store, StoreConfig::Redis(_)) && sms.sms_is_console_only() && !chosen_by_name {
        return Err(ConfigError::new(
            "OTP_SMS_GATEWAY",
            "must be set when a Redis store is configured (REDIS_URL, REDIS_CLUSTER_URLS or \
             REDIS_SENTINEL_URLS): `textbee`, `twilio`, `vonage` or `webhook` with its \
             variables (or OTP_SMS_ROUTES) to send SMS, or `console` to print codes and full \
             numbers to stdout on purpose",
        ));
    }
    Ok(())
}

/// `OTP_DAILY_SEND_LIMIT × OTP_MAX_ATTEMPTS / 10^OTP_CODE_LENGTH` is the
/// chance that an attacker guessing as fast as the limits allow finds one
/// number's code within a day; it must not exceed 1 / [`MAX_DAILY_GUESS_ODDS`].
fn guessing_must_stay_unlikely(policy: &OtpPolicy, limits: &SendLimits) -> Result<(), ConfigError> {
    let guesses = u128::from(limits.phone_daily_limit) * u128::from(policy.max_attempts);
    let codes = 10u128.pow(u32::from(policy.code_length));
    if guesses * MAX_DAILY_GUESS_ODDS <= codes {
        return Ok(());
    }
    let odds = match codes / guesses {
        0 | 1 => "a certainty".to_owned(),
        one_in => format!("a 1 in {one_in} chance"),
    };
    // The variable names the product, not only its first factor: any of the
    // three may be the one that was changed.
    Err(ConfigError::new(
        "OTP_DAILY_SEND_LIMIT",
        format!(
            "OTP_DAILY_SEND_LIMIT × OTP_MAX_ATTEMPTS / 10^OTP_CODE_LENGTH = {} × {} / 10^{} makes \
             guessing one number's code within a day {odds}, above the bound of 1 in \
             {MAX_DAILY_GUESS_ODDS}: lower OTP_DAILY_SEND_LIMIT or OTP_MAX_ATTEMPTS, or raise \
             OTP_CODE_LENGTH",
            limits.phone_daily_limit, policy.max_attempts, policy.code_length
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_refused, config};

    const REDIS: (&str, &str) = ("REDIS_URL", "redis://cache:6379");
    const SECRET: (&str, &str) = ("OTP_HMAC_SECRET", "0123456789abcdef0123456789abcdef");

    #[test]
    fn console_with_redis_must_be_chosen_by_name() {
        let line = assert_refused(&[REDIS, SECRET], "OTP_SMS_GATEWAY", "Redis store");
        assert!(
            line.contains("`console`") && line.contains("`textbee`"),
            "{line}"
        );
        config(&[REDIS, SECRET, ("OTP_SMS_GATEWAY", "console")]).expect("chosen by name");
        config(&[
            REDIS,
            SECRET,
            (
                "SMS_SENDER_API",
                "https://api.textbee.dev/api/v1/gateway/devices/d/send-sms",
            ),
            ("TEXTBEE_API_KEY", "key"),
        ])
        .expect("TextBee chosen by its variables");
        config(&[]).expect("in memory, console stays the default");
    }

    /// WhatsApp or voice routes do not choose an SMS provider: SMS would
    /// still go to the console, printing codes and numbers to stdout.
    #[test]
    fn other_channels_routed_do_not_choose_the_sms_console_with_redis() {
        let voice = [
            REDIS,
            SECRET,
            (
                "OTP_TWILIO_ACCOUNT_SID",
                "AC0123456789abcdef0123456789abcdef",
            ),
            ("OTP_TWILIO_AUTH_TOKEN", "twilio_token_secret_0123"),
            ("OTP_TWILIO_VOICE_FROM", "+14155550122"),
            ("OTP_VOICE_ROUTES", "*=twilio_voice"),
        ];
        assert_refused(&voice, "OTP_SMS_GATEWAY", "Redis store");
        let mut chosen = voice.to_vec();
        chosen.push(("OTP_SMS_GATEWAY", "console"));
        config(&chosen).expect("the console chosen by name");
    }

    #[test]
    fn every_redis_mode_needs_the_gateway_chosen() {
        let cluster = [("REDIS_CLUSTER_URLS", "redis://h:7000"), SECRET];
        assert_refused(&cluster, "OTP_SMS_GATEWAY", "REDIS_CLUSTER_URLS");
        let sentinel = [
            ("REDIS_SENTINEL_URLS", "redis://s:26379"),
            ("REDIS_SENTINEL_MASTER", "m"),
            SECRET,
        ];
        assert_refused(&sentinel, "OTP_SMS_GATEWAY", "REDIS_SENTINEL_URLS");
    }

    #[test]
    fn settings_that_make_guessing_likely_are_refused_naming_the_bound() {
        let line = assert_refused(
            &[
                ("OTP_CODE_LENGTH", "4"),
                ("OTP_MAX_ATTEMPTS", "20"),
                ("OTP_DAILY_SEND_LIMIT", "10000"),
            ],
            "OTP_DAILY_SEND_LIMIT",
            "10000 × 20 / 10^4",
        );
        for named in [
            "OTP_MAX_ATTEMPTS",
            "OTP_CODE_LENGTH",
            "1 in 10000",
            "a certainty",
        ] {
            assert!(line.contains(named), "{named}: {line}");
        }
        // The reviewer's case: only OTP_MAX_ATTEMPTS raised. One clear line.
        let line = assert_refused(&[("OTP_MAX_ATTEMPTS", "20")], "OTP_DAILY_SEND_LIMIT", "");
        assert_eq!(
            line,
            "OTP_DAILY_SEND_LIMIT: OTP_DAILY_SEND_LIMIT × OTP_MAX_ATTEMPTS / 10^OTP_CODE_LENGTH = \
             10 × 20 / 10^6 makes guessing one number's code within a day a 1 in 5000 chance, \
             above the bound of 1 in 10000: lower OTP_DAILY_SEND_LIMIT or OTP_MAX_ATTEMPTS, or \
             raise OTP_CODE_LENGTH"
        );
    }

    #[test]
    fn a_caller_cap_above_the_global_cap_is_refused_and_the_default_fits() {
        let line = assert_refused(
            &[("OTP_CALLER_SEND_LIMIT", "601")],
            "OTP_CALLER_SEND_LIMIT",
            "601 per 600 s",
        );
        assert!(line.contains("60 per minute, 600 per 600 s"), "{line}");
        config(&[("OTP_CALLER_SEND_LIMIT", "600")]).expect("equal to the global cap");
        let limits = config(&[]).expect("defaults").limits;
        assert_eq!(
            limits.caller_limit, 300,
            "half the global cap over the window"
        );
        let lowered = config(&[("OTP_GLOBAL_SEND_LIMIT", "10")])
            .expect("a lowered global cap lowers the default")
            .limits;
        assert_eq!(lowered.caller_limit, 50);
        assert_refused(
            &[
                ("OTP_GLOBAL_SEND_LIMIT", "10"),
                ("OTP_CALLER_SEND_LIMIT", "101"),
            ],
            "OTP_CALLER_SEND_LIMIT",
            "OTP_GLOBAL_SEND_LIMIT",
        );
        let off = [
            ("OTP_GLOBAL_SEND_LIMIT", "0"),
            ("OTP_CALLER_SEND_LIMIT", "100000"),
        ];
        config(&off).expect("no global cap to stay within");
        let short = config(&[
            ("OTP_SEND_WINDOW_SECONDS", "1"),
            ("OTP_GLOBAL_SEND_LIMIT", "1"),
        ])
        .expect("the derived default is never refused");
        assert_eq!(short.limits.caller_limit, 1);
    }

    #[test]
    fn the_bound_itself_and_the_defaults_pass() {
        // 10 × 10 / 10^6 = exactly 1/10 000.
        config(&[("OTP_MAX_ATTEMPTS", "10"), ("OTP_DAILY_SEND_LIMIT", "10")])
            .expect("at the bound");
        config(&[]).expect("defaults: 10 × 5 / 10^6");
        config(&[
            ("OTP_CODE_LENGTH", "10"),
            ("OTP_MAX_ATTEMPTS", "20"),
            ("OTP_DAILY_SEND_LIMIT", "10000"),
        ])
        .expect("long codes allow generous limits");
        assert_refused(
            &[("OTP_MAX_ATTEMPTS", "10"), ("OTP_DAILY_SEND_LIMIT", "11")],
            "OTP_DAILY_SEND_LIMIT",
            "1 in 10000",
        );
    }
}
