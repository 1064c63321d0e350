//! Twilio's variables: the account, one way to authenticate (auth token or
//! API key) and one SMS sender (a number or sender id, or a Messaging
//! Service); the WhatsApp and voice senders are `twilio_channel_vars.rs`'.

use clap::Args;

use super::{
    ConfigError,
    provider_vars::{base_url, key, sender_id},
};
use crate::sms::{TWILIO_BASE_URL, TwilioAccount, TwilioAuth, TwilioConfig, TwilioSender};

/// Twilio Programmable Messaging.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "SMS: Twilio")]
pub struct TwilioVars {
    /// Configures Twilio: `AC` + 32 hex digits
    #[arg(long, env = "OTP_TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// Basic-auth password with the Account SID (or use the API key pair)
    #[arg(long, env = "OTP_TWILIO_AUTH_TOKEN", value_name = "SECRET")]
    pub twilio_auth_token: Option<String>,
    /// An API key instead of the auth token: `SK` + 32 hex digits
    #[arg(long, env = "OTP_TWILIO_API_KEY_SID")]
    pub twilio_api_key_sid: Option<String>,
    /// The API key's secret
    #[arg(long, env = "OTP_TWILIO_API_KEY_SECRET", value_name = "SECRET")]
    pub twilio_api_key_secret: Option<String>,
    /// The sender: a `+` number, short code or sender id (or a Messaging Service)
    #[arg(long, env = "OTP_TWILIO_FROM")]
    pub twilio_from: Option<String>,
    /// A Messaging Service picks the sender: `MG` + 32 hex digits
    #[arg(long, env = "OTP_TWILIO_MESSAGING_SERVICE_SID")]
    pub twilio_messaging_service_sid: Option<String>,
    /// Twilio API origin
    #[arg(long, env = "OTP_TWILIO_BASE_URL", default_value = TWILIO_BASE_URL,
          value_name = "URL")]
    pub twilio_base_url: String,
    /// The WhatsApp sender (`twilio_whatsapp`): a `+` number enabled for WhatsApp
    #[arg(long, env = "OTP_TWILIO_WHATSAPP_FROM")]
    pub twilio_whatsapp_from: Option<String>,
    /// The approved `whatsapp/authentication` content template: `HX` + 32 hex digits
    #[arg(long, env = "OTP_TWILIO_WHATSAPP_CONTENT_SID")]
    pub twilio_whatsapp_content_sid: Option<String>,
    /// The caller id of voice calls (`twilio_voice`): a voice-capable `+` number
    #[arg(long, env = "OTP_TWILIO_VOICE_FROM")]
    pub twilio_voice_from: Option<String>,
}

/// Twilio for SMS, when `OTP_TWILIO_ACCOUNT_SID` is set: an auth token or
/// an API key (not both), and a sender number or a Messaging Service (not
/// both). An account set up only for WhatsApp or voice (their sender set,
/// no SMS sender) has no SMS settings.
pub(super) fn twilio_from_env(vars: &TwilioVars) -> Result<Option<TwilioConfig>, ConfigError> {
    let Some(account) = twilio_account(vars)? else {
        return Ok(None);
    };
    let sms_sender = vars.twilio_from.is_some() || vars.twilio_messaging_service_sid.is_some();
    let other_sender = vars.twilio_whatsapp_from.is_some() || vars.twilio_voice_from.is_some();
    if !sms_sender && other_sender {
        return Ok(None);
    }
    Ok(Some(TwilioConfig {
        base_url: account.base_url,
        account_sid: account.account_sid,
        auth: account.auth,
        sender: twilio_sender(vars)?,
    }))
}

/// The Twilio account, when `OTP_TWILIO_ACCOUNT_SID` is set.
pub(super) fn twilio_account(vars: &TwilioVars) -> Result<Option<TwilioAccount>, ConfigError> {
    let Some(account_sid) = vars.twilio_account_sid.as_deref() else {
        return Ok(None);
    };
    Ok(Some(TwilioAccount {
        base_url: base_url(&vars.twilio_base_url, "OTP_TWILIO_BASE_URL")?,
        account_sid: twilio_sid(account_sid, "AC", "OTP_TWILIO_ACCOUNT_SID")?,
        auth: twilio_auth(vars)?,
    }))
}

/// `OTP_TWILIO_AUTH_TOKEN`, or `OTP_TWILIO_API_KEY_SID` with its secret.
fn twilio_auth(vars: &TwilioVars) -> Result<TwilioAuth, ConfigError> {
    Ok(
        match (
            vars.twilio_auth_token.as_deref(),
            vars.twilio_api_key_sid.as_deref(),
        ) {
            (Some(token), None) => {
                TwilioAuth::AuthToken(key(Some(token), "OTP_TWILIO_AUTH_TOKEN", "for Twilio")?)
            }
            (None, Some(sid)) => TwilioAuth::ApiKey {
                sid: twilio_sid(sid, "SK", "OTP_TWILIO_API_KEY_SID")?,
                secret: key(
                    vars.twilio_api_key_secret.as_deref(),
                    "OTP_TWILIO_API_KEY_SECRET",
                    "with OTP_TWILIO_API_KEY_SID",
                )?,
            },
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "OTP_TWILIO_AUTH_TOKEN",
                    "and OTP_TWILIO_API_KEY_SID are both set; use one way to authenticate",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "OTP_TWILIO_AUTH_TOKEN",
                    "is required with OTP_TWILIO_ACCOUNT_SID (or OTP_TWILIO_API_KEY_SID and \
                 OTP_TWILIO_API_KEY_SECRET)",
                ));
            }
        },
    )
}

/// `OTP_TWILIO_FROM`, or `OTP_TWILIO_MESSAGING_SERVICE_SID`.
fn twilio_sender(vars: &TwilioVars) -> Result<TwilioSender, ConfigError> {
    Ok(
        match (
            vars.twilio_from.as_deref(),
            vars.twilio_messaging_service_sid.as_deref(),
        ) {
            (Some(from), None) => TwilioSender::From(sender_id(from, "OTP_TWILIO_FROM")?),
            (None, Some(sid)) => TwilioSender::MessagingService(twilio_sid(
                sid,
                "MG",
                "OTP_TWILIO_MESSAGING_SERVICE_SID",
            )?),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "OTP_TWILIO_FROM",
                    "and OTP_TWILIO_MESSAGING_SERVICE_SID are both set; Twilio takes one sender",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "OTP_TWILIO_FROM",
                    "is required with OTP_TWILIO_ACCOUNT_SID: a Twilio number (+14155550100) or \
                 sender id, or set OTP_TWILIO_MESSAGING_SERVICE_SID instead",
                ));
            }
        },
    )
}

/// A Twilio id: its two-letter prefix and 32 hex digits.
pub(super) fn twilio_sid(
    raw: &str,
    prefix: &str,
    var: &'static str,
) -> Result<String, ConfigError> {
    let hex = raw.strip_prefix(prefix).unwrap_or("");
    if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::new(
            var,
            format!("must be `{prefix}` followed by 32 hex digits, as Twilio's console shows it"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{assert_refused, config};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "twilio_token_secret_0123";
    const KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
    const SERVICE_SID: &str = "MG0123456789abcdef0123456789abcdef";

    fn twilio(vars: &[(&str, &str)]) -> TwilioConfig {
        let mut all = vec![("OTP_SMS_GATEWAY", "twilio")];
        all.extend_from_slice(vars);
        config(&all)
            .expect("valid")
            .sms
            .providers
            .twilio
            .expect("twilio")
    }

    #[test]
    fn twilio_takes_a_token_or_an_api_key_and_a_number_or_a_messaging_service() {
        let by_token = twilio(&[
            ("OTP_TWILIO_ACCOUNT_SID", SID),
            ("OTP_TWILIO_AUTH_TOKEN", TOKEN),
            ("OTP_TWILIO_FROM", "+14155550100"),
        ]);
        assert_eq!(by_token.base_url.as_str(), "https://api.twilio.com/");
        assert_eq!(by_token.sender, TwilioSender::From("+14155550100".into()));
        assert!(matches!(by_token.auth, TwilioAuth::AuthToken(_)));
        let by_key = twilio(&[
            ("OTP_TWILIO_ACCOUNT_SID", SID),
            ("OTP_TWILIO_API_KEY_SID", KEY_SID),
            ("OTP_TWILIO_API_KEY_SECRET", "key_secret"),
            ("OTP_TWILIO_MESSAGING_SERVICE_SID", SERVICE_SID),
            ("OTP_TWILIO_BASE_URL", "http://127.0.0.1:9/twilio"),
        ]);
        assert_eq!(by_key.base_url.as_str(), "http://127.0.0.1:9/twilio/");
        assert!(matches!(by_key.auth, TwilioAuth::ApiKey { ref sid, .. } if sid.starts_with("SK")));
        assert!(matches!(by_key.sender, TwilioSender::MessagingService(_)));
    }

    #[test]
    fn twilio_settings_are_checked() {
        let sid = ("OTP_TWILIO_ACCOUNT_SID", SID);
        let token = ("OTP_TWILIO_AUTH_TOKEN", TOKEN);
        let from = ("OTP_TWILIO_FROM", "Acme");
        let gateway = ("OTP_SMS_GATEWAY", "twilio");
        for (vars, var, expected) in [
            (
                vec![("OTP_TWILIO_ACCOUNT_SID", "AC123"), token, from],
                "OTP_TWILIO_ACCOUNT_SID",
                "32 hex digits",
            ),
            (vec![sid, from], "OTP_TWILIO_AUTH_TOKEN", "is required"),
            (
                vec![sid, token, from, ("OTP_TWILIO_API_KEY_SID", KEY_SID)],
                "OTP_TWILIO_AUTH_TOKEN",
                "both set",
            ),
            (
                vec![sid, ("OTP_TWILIO_API_KEY_SID", KEY_SID), from],
                "OTP_TWILIO_API_KEY_SECRET",
                "is required",
            ),
            (vec![sid, token], "OTP_TWILIO_FROM", "is required"),
            (
                vec![sid, token, ("OTP_TWILIO_FROM", "not a sender!")],
                "OTP_TWILIO_FROM",
                "sender id",
            ),
            (
                vec![
                    sid,
                    token,
                    from,
                    ("OTP_TWILIO_MESSAGING_SERVICE_SID", SERVICE_SID),
                ],
                "OTP_TWILIO_FROM",
                "one sender",
            ),
            (
                vec![sid, token, from, ("OTP_TWILIO_BASE_URL", "ftp://x")],
                "OTP_TWILIO_BASE_URL",
                "http or https",
            ),
        ] {
            let mut all = vec![gateway];
            all.extend(vars);
            let line = assert_refused(&all, var, expected);
            assert!(!line.contains(TOKEN), "{line}");
        }
    }
}
