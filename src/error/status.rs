//! How an [`Error`] reaches a caller: its gRPC code and `google.rpc`
//! details (`RetryInfo`, `QuotaFailure`, `ErrorInfo`, `BadRequest`), chosen
//! here and nowhere else.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{
    ADMIN_ERROR_DOMAIN, ERROR_DOMAIN, Error,
    delivery::{channel_not_configured, gateway_failed},
    spend,
};
use crate::{
    abuse::{DestinationPrefix, MAX_PREFIX_DIGITS, PrefixError},
    auth::AdminRefusal,
    domain::ceil_seconds,
    store::{StoreError, Violation},
};

impl From<Error> for Status {
    /// The only place gRPC codes and `google.rpc` details are chosen. Internal
    /// detail (store errors, gateway replies) is logged here and never sent.
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidPhone(why) => bad_request("phone_number", why.to_string()),
            Error::InvalidCode(why) => bad_request("code", why.to_string()),
            Error::InvalidClientKey(why) => bad_request("client_key", why.to_string()),
            Error::InvalidIdempotencyKey(why) => bad_request("idempotency_key", why.to_string()),
            Error::InvalidLocale(why) => bad_request("locale", why.to_string()),
            Error::InvalidChannel(raw) => bad_request(
                "channel",
                format!(
                    "{raw} is not a channel: use CHANNEL_SMS (1), CHANNEL_WHATSAPP (2), \
                     CHANNEL_VOICE (3), or leave it unset (CHANNEL_UNSPECIFIED, 0) for SMS"
                ),
            ),
            Error::IdempotencyKeyReused => bad_request(
                "idempotency_key",
                "was already used for a different phone_number".to_owned(),
            ),
            Error::IdempotencyKeyBusy => Status::unavailable(
                "a call with this idempotency_key is still in progress; retry shortly",
            ),
            Error::CountryNotAllowed { region } => country_not_allowed(&region),
            Error::RateLimited { violations } => {
                limit_reached(&violations, "SEND_LIMIT_REACHED", "send")
            }
            Error::VerifyLimited { violations } => {
                limit_reached(&violations, "VERIFY_LIMIT_REACHED", "verify")
            }
            Error::DestinationSuspended {
                prefix,
                retry_after,
            } => destination_suspended(&prefix, retry_after),
            Error::SpendLimited { refusals } => spend::spend_limit_reached(&refusals),
            Error::PriceUnknown(unknown) => spend::price_unknown(&unknown),
            Error::Locked { retry_after } => number_locked(retry_after),
            Error::Unauthenticated => Status::with_error_details(
                Code::Unauthenticated,
                "caller credentials required: a client certificate or `authorization: Bearer <token>`",
                ErrorDetails::with_error_info("CALLER_CREDENTIALS_MISSING", ERROR_DOMAIN, []),
            ),
            Error::UnknownCaller => Status::with_error_details(
                Code::PermissionDenied,
                "these credentials name no known caller",
                ErrorDetails::with_error_info("CALLER_UNKNOWN", ERROR_DOMAIN, []),
            ),
            Error::AdminDenied(refusal) => admin_denied(refusal),
            Error::InvalidPrefix(PrefixError::Malformed) => bad_request(
                "prefix",
                format!(
                    "must be `+` and 2 to {MAX_PREFIX_DIGITS} digits: the country calling code \
                     and the next digits, e.g. +447700"
                ),
            ),
            Error::InvalidPrefix(why @ PrefixError::NotCounted { .. }) => {
                bad_request("prefix", why.to_string())
            }
            Error::InvalidExemptionPeriod(why) => bad_request(
                "duration_seconds",
                format!("{why}; EndPrefixExemption ends an exemption"),
            ),
            Error::Store(store) => store_failed(&store),
            Error::Gateway(gateway) => gateway_failed(&gateway),
            Error::ChannelNotConfigured { channel } => channel_not_configured(channel),
        }
    }
}

/// PERMISSION_DENIED with an `ErrorInfo` saying what the admin API needs.
fn admin_denied(refusal: AdminRefusal) -> Status {
    let (reason, message) = match refusal {
        AdminRefusal::RoleMissing => (
            "ADMIN_ROLE_REQUIRED",
            "the admin API needs a caller whose line in the callers file carries role:admin",
        ),
        AdminRefusal::NotLoopback => (
            "ADMIN_LOOPBACK_ONLY",
            "without a callers file the admin API answers loopback connections only",
        ),
    };
    Status::with_error_details(
        Code::PermissionDenied,
        message,
        ErrorDetails::with_error_info(reason, ADMIN_ERROR_DOMAIN, []),
    )
}

/// INVALID_ARGUMENT with a `BadRequest` naming the field.
pub(super) fn bad_request(field: &str, description: String) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field} {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// PERMISSION_DENIED with an `ErrorInfo` naming the region.
fn country_not_allowed(region: &str) -> Status {
    let details = ErrorDetails::with_error_info(
        "COUNTRY_NOT_ALLOWED",
        ERROR_DOMAIN,
        [("region".to_owned(), region.to_owned())],
    );
    Status::with_error_details(
        Code::PermissionDenied,
        format!("sending codes to region {region} is not allowed"),
        details,
    )
}

/// RESOURCE_EXHAUSTED with `RetryInfo` (the longest wait), one
/// `QuotaFailure` violation per full limit, and an `ErrorInfo` with `reason`
/// naming the first; `what` (send, verify) says which kind of limit.
fn limit_reached(violations: &[Violation], reason: &str, what: &str) -> Status {
    let retry_after = violations
        .iter()
        .map(|violation| violation.retry_after)
        .max()
        .unwrap_or_default();
    let retry_after = whole_seconds(retry_after);
    let mut details = ErrorDetails::with_retry_info(Some(retry_after));
    for violation in violations {
        details.add_quota_failure_violation(
            violation.kind.subject(),
            format!(
                "{}: {}",
                violation.kind.as_str(),
                violation.kind.description()
            ),
        );
    }
    if let Some(first) = violations.first() {
        details.set_error_info(
            reason,
            ERROR_DOMAIN,
            [("limit".to_owned(), first.kind.as_str().to_owned())],
        );
    }
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("{what} limit reached; retry in {} s", retry_after.as_secs()),
        details,
    )
}

/// RESOURCE_EXHAUSTED with `RetryInfo` for the exact time the suspension
/// lifts and an `ErrorInfo` naming the prefix, so the caller can tell its
/// users why and until when.
fn destination_suspended(prefix: &DestinationPrefix, retry_after: Duration) -> Status {
    let retry_after = whole_seconds(retry_after);
    let mut details = ErrorDetails::with_retry_info(Some(retry_after));
    details.add_quota_failure_violation(
        "phone_number",
        format!(
            "destination_suspended: too few codes sent to numbers starting {prefix} were verified"
        ),
    );
    details.set_error_info(
        "DESTINATION_SUSPENDED",
        ERROR_DOMAIN,
        [("prefix".to_owned(), prefix.to_string())],
    );
    Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "sends to numbers starting {prefix} are suspended (suspected SMS pumping); retry in {} s",
            retry_after.as_secs()
        ),
        details,
    )
}

/// RESOURCE_EXHAUSTED with `RetryInfo` until the wrong-guess lock ends.
fn number_locked(retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(whole_seconds(retry_after)));
    details.add_quota_failure_violation(
        "phone_number",
        "wrong-code limit reached; the number is locked until its last code expires",
    );
    details.set_error_info("VERIFY_ATTEMPTS_EXHAUSTED", ERROR_DOMAIN, []);
    Status::with_error_details(
        Code::ResourceExhausted,
        "too many wrong codes for this phone number; try again later",
        details,
    )
}

/// What a full store advises: about one sweep of the memory store.
const STORE_FULL_RETRY: Duration = Duration::from_secs(5);

/// UNAVAILABLE when the store is down (fail closed), INTERNAL when it answered
/// nonsense; the cause goes to the log only. A full in-memory store is
/// RESOURCE_EXHAUSTED with a RetryInfo: a capacity limit reached (as by a
/// flood of sends to fresh numbers), which gRPC clients do not retry blindly
/// the way many retry UNAVAILABLE, so a flood is not amplified.
fn store_failed(store: &StoreError) -> Status {
    if matches!(store, StoreError::Full) {
        return store_full();
    }
    tracing::error!(error = %store, "store failed");
    match store {
        StoreError::Unavailable(_) => {
            Status::unavailable("OTP store is unavailable; retry shortly")
        }
        StoreError::Protocol(_) | StoreError::Full => Status::internal("internal error"),
    }
}

fn store_full() -> Status {
    tracing::error!("in-memory store full (OTP_MEMORY_MAX_ENTRIES): refusing new sends");
    let mut details = ErrorDetails::with_retry_info(Some(STORE_FULL_RETRY));
    details.set_error_info("STORE_FULL", ERROR_DOMAIN, []);
    Status::with_error_details(
        Code::ResourceExhausted,
        "the service is at capacity; retry later",
        details,
    )
}

/// A delay as `RetryInfo` carries it: whole seconds, rounded up.
pub(super) fn whole_seconds(delay: Duration) -> Duration {
    Duration::from_secs(u64::from(ceil_seconds(delay)))
}
