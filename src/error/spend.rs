//! The spend refusals as gRPC statuses (part of the one mapping in
//! `error.rs`): a cap reached is RESOURCE_EXHAUSTED with `RetryInfo`, an
//! `ErrorInfo` `SPEND_LIMIT_REACHED` naming the cap and a `QuotaFailure`
//! per cap; a destination without a price is FAILED_PRECONDITION.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{ERROR_DOMAIN, status::whole_seconds};
use crate::{spend::PriceUnknown, store::SpendRefusal};

/// RESOURCE_EXHAUSTED: `RetryInfo` the longest wait (every cap must have
/// room), `ErrorInfo` naming that cap (`cap`), a violation per cap.
pub(super) fn spend_limit_reached(refusals: &[SpendRefusal]) -> Status {
    let longest = refusals
        .iter()
        .max_by_key(|refusal| refusal.retry_after)
        .copied();
    let retry_after = whole_seconds(longest.map(|r| r.retry_after).unwrap_or_default());
    let mut details = ErrorDetails::with_retry_info(Some(retry_after));
    for refusal in refusals {
        details.add_quota_failure_violation(
            refusal.cap.variable(),
            format!(
                "{}: this send's estimated price would cross the cap",
                refusal.cap.as_str()
            ),
        );
    }
    if let Some(longest) = longest {
        details.set_error_info(
            "SPEND_LIMIT_REACHED",
            ERROR_DOMAIN,
            [("cap".to_owned(), longest.cap.as_str().to_owned())],
        );
    }
    tracing::warn!(
        cap = longest.map_or("-", |r| r.cap.as_str()),
        "spend cap reached: send refused"
    );
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("spend limit reached; retry in {} s", retry_after.as_secs()),
        details,
    )
}

/// FAILED_PRECONDITION: an operator must add a price (or a default row).
pub(super) fn price_unknown(unknown: &PriceUnknown) -> Status {
    tracing::error!(
        provider = unknown.provider.as_str(),
        channel = unknown.channel.as_str(),
        region = unknown.region,
        "no price for this provider, channel and destination in OTP_PRICES_FILE (neither the \
         destination's row nor a \"*\" row prices the channel): send refused"
    );
    let details = ErrorDetails::with_error_info(
        "PRICE_UNKNOWN",
        ERROR_DOMAIN,
        [("region".to_owned(), unknown.region.clone())],
    );
    Status::with_error_details(
        Code::FailedPrecondition,
        format!(
            "no price is configured for sends to region {}; no code was sent",
            unknown.region
        ),
        details,
    )
}
