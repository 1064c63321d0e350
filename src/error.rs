//! The one error type of the OTP flow and its single mapping to gRPC status
//! (the spend refusals' details in `error/spend.rs`; `delivery.rs`: the
//! statuses of a send the gateway could not deliver).

mod delivery;
mod spend;

use std::time::Duration;

use thiserror::Error;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    abuse::{DestinationPrefix, ExemptionPeriodError, MAX_PREFIX_DIGITS, PrefixError},
    auth::AdminRefusal,
    domain::{CodeError, LocaleError, PhoneError, RequestKeyError, ceil_seconds},
    sms::{Channel, GatewayError},
    spend::PriceUnknown,
    store::{SpendRefusal, StoreError, Violation},
};

use delivery::{channel_not_configured, gateway_failed};

/// Everything that can stop an OTP request, in domain words.
#[derive(Debug, Error)]
pub enum Error {
    /// `phone_number` is not a usable international number.
    #[error("phone_number {0}")]
    InvalidPhone(PhoneError),
    /// `code` is not of the configured shape; no guess was spent.
    #[error("code {0}")]
    InvalidCode(CodeError),
    /// `client_key` is not acceptable.
    #[error("client_key {0}")]
    InvalidClientKey(RequestKeyError),
    /// `idempotency_key` is not acceptable.
    #[error("idempotency_key {0}")]
    InvalidIdempotencyKey(RequestKeyError),
    /// `locale` is not a BCP 47 language tag.
    #[error("locale {0}")]
    InvalidLocale(LocaleError),
    /// `channel` is not a value of the `Channel` enum this version knows.
    #[error("channel {0} is not a known channel")]
    InvalidChannel(i32),
    /// The idempotency key was first used for another phone number.
    #[error("idempotency_key was already used for a different phone_number")]
    IdempotencyKeyReused,
    /// The first call with this idempotency key is still sending.
    #[error("a call with this idempotency_key is still in progress")]
    IdempotencyKeyBusy,
    /// The number's country is not allowed by the country policy.
    #[error("sending to region {region} is not allowed")]
    CountryNotAllowed {
        /// ISO region of the number, or `unknown`.
        region: String,
    },
    /// A send limit is full.
    #[error("send limit reached")]
    RateLimited {
        /// Every limit that refused, with its delay.
        violations: Vec<Violation>,
    },
    /// A verify limit is full: too many codes checked by this client (or
    /// caller) across numbers; the code was not compared.
    #[error("verify limit reached")]
    VerifyLimited {
        /// Every limit that refused, with its delay.
        violations: Vec<Violation>,
    },
    /// The pumping guard suspended sends to the number's destination prefix:
    /// too few of the codes recently sent there were ever verified.
    #[error("sends to numbers starting {prefix} are suspended")]
    DestinationSuspended {
        /// The suspended prefix.
        prefix: DestinationPrefix,
        /// Time until the suspension lifts.
        retry_after: Duration,
    },
    /// The send's estimated price would cross a spend cap; nothing was sent.
    #[error("spend limit reached")]
    SpendLimited {
        /// Every cap that refused, with its delay.
        refusals: Vec<SpendRefusal>,
    },
    /// No price is known for the destination: the send is refused rather
    /// than sent at an unknown price.
    #[error(transparent)]
    PriceUnknown(PriceUnknown),
    /// The number spent its wrong-guess budget; no code is sent until the lock ends.
    #[error("too many wrong codes for this number; retry after {retry_after:?}")]
    Locked {
        /// Time until the lock ends.
        retry_after: Duration,
    },
    /// Caller authentication is configured and the call carries no
    /// credentials (or an `authorization` header that is not a bearer token).
    #[error("no caller credentials")]
    Unauthenticated,
    /// The call's credentials name no known caller.
    #[error("unknown caller")]
    UnknownCaller,
    /// The caller may not use the admin API.
    #[error("admin API refused: {0}")]
    AdminDenied(AdminRefusal),
    /// `prefix` (admin API) is not a destination prefix.
    #[error("prefix {0}")]
    InvalidPrefix(PrefixError),
    /// `duration_seconds` (admin API) is not an exemption's length.
    #[error("duration_seconds {0}")]
    InvalidExemptionPeriod(ExemptionPeriodError),
    /// The store could not be reached or did not answer in time.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The SMS gateway did not take the message.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The caller asked for a channel this deployment has no route for.
    #[error("channel {channel} is not configured")]
    ChannelNotConfigured {
        /// The channel asked for.
        channel: Channel,
    },
}

impl Error {
    /// Every name [`Error::kind`] gives (metrics export each at 0 from start).
    pub const KINDS: [&'static str; 16] = [
        "invalid_argument",
        "idempotency_busy",
        "country_not_allowed",
        "rate_limited",
        "destination_suspended",
        "spend_limited",
        "price_unknown",
        "locked",
        "unauthenticated",
        "unknown_caller",
        "admin_denied",
        "store_full",
        "store_error",
        "undeliverable_phone",
        "gateway_error",
        "channel_not_configured",
    ];

    /// The kinds a VerifyOtp can end in (of [`Error::KINDS`]): a bad field,
    /// a verify limit, the store. Refused credentials end the call before
    /// it is counted; every other kind is a send's.
    pub const VERIFY_KINDS: [&'static str; 4] = [
        "invalid_argument",
        "rate_limited",
        "store_full",
        "store_error",
    ];

    /// A short, stable name of what went wrong, for metric labels; one of
    /// [`Error::KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidPhone(_)
            | Error::InvalidCode(_)
            | Error::InvalidClientKey(_)
            | Error::InvalidIdempotencyKey(_)
            | Error::InvalidLocale(_)
            | Error::InvalidChannel(_)
            | Error::InvalidPrefix(_)
            | Error::InvalidExemptionPeriod(_)
            | Error::IdempotencyKeyReused => "invalid_argument",
            Error::IdempotencyKeyBusy => "idempotency_busy",
            Error::CountryNotAllowed { .. } => "country_not_allowed",
            Error::RateLimited { .. } | Error::VerifyLimited { .. } => "rate_limited",
            Error::DestinationSuspended { .. } => "destination_suspended",
            Error::SpendLimited { .. } => "spend_limited",
            Error::PriceUnknown(_) => "price_unknown",
            Error::Locked { .. } => "locked",
            Error::Unauthenticated => "unauthenticated",
            Error::UnknownCaller => "unknown_caller",
            Error::AdminDenied(_) => "admin_denied",
            Error::Store(StoreError::Full) => "store_full",
            Error::Store(_) => "store_error",
            // The number itself cannot take SMS: the caller's input, not an outage.
            Error::Gateway(GatewayError::Undeliverable(_)) => "undeliverable_phone",
            Error::Gateway(_) => "gateway_error",
            Error::ChannelNotConfigured { .. } => "channel_not_configured",
        }
    }
}

/// Domain for `google.rpc.ErrorInfo`.
pub const ERROR_DOMAIN: &str = "otp.v1";
/// Domain for the admin API's own `google.rpc.ErrorInfo` reasons.
pub const ADMIN_ERROR_DOMAIN: &str = "otp.admin.v1";

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
fn bad_request(field: &str, description: String) -> Status {
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
fn whole_seconds(delay: Duration) -> Duration {
    Duration::from_secs(u64::from(ceil_seconds(delay)))
}
