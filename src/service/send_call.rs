//! SendOtp's request and response: the request parsed into domain values
//! and handed to the flow, and a sent code's answer.

use std::sync::Arc;

use super::parse_phone;
use crate::{
    auth::Caller,
    domain::{ClientKey, IdempotencyKey, Locale, PhoneNumber, ceil_seconds},
    error::Error,
    otp::{OtpFlow, SendRequest, SentCode},
    proto::{self, SendOtpRequest, SendOtpResponse},
    sms::Channel,
};

/// Parses `request` (a bad field is the `Error` naming it) and sends
/// through `flow`; the number, for the masked answer, and what was sent.
pub(super) async fn send(
    flow: Arc<OtpFlow>,
    request: SendOtpRequest,
    caller: Option<Caller>,
) -> Result<(PhoneNumber, SentCode), Error> {
    let phone = parse_phone(&request.phone_number)?;
    let client_key = ClientKey::parse(&request.client_key).map_err(Error::InvalidClientKey)?;
    let idempotency_key =
        IdempotencyKey::parse(&request.idempotency_key).map_err(Error::InvalidIdempotencyKey)?;
    let locale = Locale::parse_optional(&request.locale).map_err(Error::InvalidLocale)?;
    let channel = requested_channel(request.channel)?;
    let sent = flow
        .send(SendRequest {
            phone: &phone,
            client_key: client_key.as_ref(),
            idempotency_key: idempotency_key.as_ref(),
            caller: caller.as_ref(),
            locale: locale.as_ref(),
            channel,
        })
        .await?;
    Ok((phone, sent))
}

/// The answer to a send that went out.
pub(super) fn response(phone: &PhoneNumber, sent: &SentCode) -> SendOtpResponse {
    SendOtpResponse {
        expires_in_seconds: ceil_seconds(sent.expires_in),
        code_length: u32::from(sent.code_length),
        attempts_remaining: sent.attempts_remaining,
        masked_phone_number: phone.masked(),
        resend_after_seconds: ceil_seconds(sent.resend_after),
        channel: proto_channel(sent.channel).into(),
    }
}

/// The channel a SendOtp asks for: unset is SMS, as before channels. A
/// value this version does not know (a typo, or a newer client's channel)
/// is refused naming the known ones, never sent by another channel than
/// the one asked for.
pub(super) fn requested_channel(raw: i32) -> Result<Channel, Error> {
    match proto::Channel::try_from(raw).map_err(|_| Error::InvalidChannel(raw))? {
        proto::Channel::Unspecified | proto::Channel::Sms => Ok(Channel::Sms),
        proto::Channel::Whatsapp => Ok(Channel::WhatsApp),
        proto::Channel::Voice => Ok(Channel::Voice),
    }
}

/// A channel as the API names it.
fn proto_channel(channel: Channel) -> proto::Channel {
    match channel {
        Channel::Sms => proto::Channel::Sms,
        Channel::WhatsApp => proto::Channel::Whatsapp,
        Channel::Voice => proto::Channel::Voice,
    }
}
