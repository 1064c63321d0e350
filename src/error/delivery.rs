//! The statuses of a send that was not delivered: the gateway's failures
//! and a channel the deployment has no route for.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{ERROR_DOMAIN, status::bad_request};
use crate::sms::{Channel, GatewayError};

/// FAILED_PRECONDITION with an `ErrorInfo` (`CHANNEL_NOT_CONFIGURED`,
/// `channel`): the request is fine, the deployment cannot serve it; asking
/// again will not help, asking for another channel (or none: SMS) may.
pub(super) fn channel_not_configured(channel: Channel) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        format!(
            "channel {channel} is not configured on this service (no {} is set); \
             ask for another channel, or leave `channel` unset for SMS",
            channel.routes_var()
        ),
        ErrorDetails::with_error_info(
            "CHANNEL_NOT_CONFIGURED",
            ERROR_DOMAIN,
            [("channel".to_owned(), channel.as_str().to_owned())],
        ),
    )
}

/// UNAVAILABLE when a retry may help, INTERNAL when an operator must act,
/// INVALID_ARGUMENT when the number cannot take SMS; the provider's own
/// words go to the log only.
pub(super) fn gateway_failed(gateway: &GatewayError) -> Status {
    match gateway {
        GatewayError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "SMS gateway unavailable");
            Status::unavailable("SMS gateway is unavailable; no code was sent")
        }
        GatewayError::Uncertain(detail) => {
            tracing::warn!(error = %detail, "SMS gateway failed; delivery uncertain");
            Status::unavailable(
                "SMS gateway failed; any code that still arrives will not work, request a new one",
            )
        }
        GatewayError::Unauthorized(detail) => {
            // `detail` names the variables to check for its provider.
            tracing::error!(error = %detail, "SMS gateway refused our credentials");
            Status::internal("SMS gateway is misconfigured; no code was sent")
        }
        GatewayError::Rejected(detail) => {
            tracing::error!(error = %detail, "SMS gateway rejected the message");
            Status::internal("SMS gateway rejected the message; no code was sent")
        }
        GatewayError::Undeliverable(detail) => {
            tracing::info!(error = %detail, "SMS provider cannot deliver to this number");
            bad_request(
                "phone_number",
                "cannot receive the code: the provider refused it as invalid, unreachable, \
                 not mobile, unsubscribed or not on the channel asked for"
                    .to_owned(),
            )
        }
    }
}
