//! Twilio's WhatsApp and voice settings: the account of `twilio_vars.rs`
//! with the WhatsApp sender and content template (`twilio_whatsapp`), or
//! the voice caller id (`twilio_voice`). Read only when a route names them.

use super::{
    ConfigError,
    provider_vars::sender_id,
    twilio_vars::{TwilioVars, twilio_account, twilio_sid},
};
use crate::sms::{TwilioAccount, TwilioVoiceConfig, TwilioWhatsAppConfig};

/// `twilio_whatsapp`'s settings: the account, `OTP_TWILIO_WHATSAPP_FROM`
/// and `OTP_TWILIO_WHATSAPP_CONTENT_SID`, all required.
pub(super) fn twilio_whatsapp(
    vars: &TwilioVars,
    via: &'static str,
) -> Result<TwilioWhatsAppConfig, ConfigError> {
    let account = account(vars, via, "twilio_whatsapp")?;
    let from = required_number(
        vars.twilio_whatsapp_from.as_deref(),
        "OTP_TWILIO_WHATSAPP_FROM",
        via,
        "twilio_whatsapp",
    )?;
    let content_sid = vars.twilio_whatsapp_content_sid.as_deref().ok_or_else(|| {
        ConfigError::new(
            via,
            "names `twilio_whatsapp`, but OTP_TWILIO_WHATSAPP_CONTENT_SID is not set",
        )
    })?;
    Ok(TwilioWhatsAppConfig {
        account,
        from,
        content_sid: twilio_sid(content_sid, "HX", "OTP_TWILIO_WHATSAPP_CONTENT_SID")?,
    })
}

/// `twilio_voice`'s settings: the account and `OTP_TWILIO_VOICE_FROM`.
pub(super) fn twilio_voice(
    vars: &TwilioVars,
    via: &'static str,
) -> Result<TwilioVoiceConfig, ConfigError> {
    Ok(TwilioVoiceConfig {
        account: account(vars, via, "twilio_voice")?,
        from: required_number(
            vars.twilio_voice_from.as_deref(),
            "OTP_TWILIO_VOICE_FROM",
            via,
            "twilio_voice",
        )?,
    })
}

/// The variables set for a Twilio channel no route names (they would be
/// ignored): the first of them.
pub(super) fn unrouted(vars: &TwilioVars, whatsapp: bool, voice: bool) -> Option<&'static str> {
    if !whatsapp
        && (vars.twilio_whatsapp_from.is_some() || vars.twilio_whatsapp_content_sid.is_some())
    {
        return Some("OTP_TWILIO_WHATSAPP_FROM");
    }
    (!voice && vars.twilio_voice_from.is_some()).then_some("OTP_TWILIO_VOICE_FROM")
}

fn account(vars: &TwilioVars, via: &'static str, name: &str) -> Result<TwilioAccount, ConfigError> {
    twilio_account(vars)?.ok_or_else(|| {
        ConfigError::new(
            via,
            format!("names `{name}`, but OTP_TWILIO_ACCOUNT_SID is not set"),
        )
    })
}

/// A `+` number (a sender id or short code cannot send WhatsApp or call).
fn required_number(
    raw: Option<&str>,
    var: &'static str,
    via: &'static str,
    name: &str,
) -> Result<String, ConfigError> {
    let raw =
        raw.ok_or_else(|| ConfigError::new(via, format!("names `{name}`, but {var} is not set")))?;
    let number = sender_id(raw, var)?;
    if number.starts_with('+') {
        Ok(number)
    } else {
        Err(ConfigError::new(
            var,
            format!("must be a number like +14155550100 (got `{raw}`)"),
        ))
    }
}
