//! The one error type of the OTP flow, in domain words; its single mapping
//! to gRPC status is `error/status.rs` (the spend refusals' details in
//! `error/spend.rs`; `delivery.rs`: the statuses of a send the gateway could
//! not deliver).

mod delivery;
mod spend;
mod status;

use std::time::Duration;

use thiserror::Error;

use crate::{
    abuse::{DestinationPrefix, ExemptionPeriodError, PrefixError},
    auth::AdminRefusal,
    domain::{CodeError, LocaleError, PhoneError, RequestKeyError},
    sms::{Channel, GatewayError},
    spend::PriceUnknown,
    store::{SpendRefusal, StoreError, Violation},
};

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
