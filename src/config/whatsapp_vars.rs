//! Meta's WhatsApp Cloud API variables (`whatsapp_cloud`): the business
//! phone number's id, a system user's access token, the Graph API version
//! and origin. Read only when a route names `whatsapp_cloud`.

use clap::Args;

use super::{
    ConfigError,
    provider_vars::{base_url, key},
};
use crate::sms::{WHATSAPP_CLOUD_API_VERSION, WHATSAPP_CLOUD_BASE_URL, WhatsAppCloudConfig};

/// Meta's WhatsApp Cloud API.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "WhatsApp: Meta Cloud API")]
pub struct WhatsAppCloudVars {
    /// The WhatsApp business phone number's id (digits, from WhatsApp Manager)
    #[arg(long, env = "OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID")]
    pub whatsapp_cloud_phone_number_id: Option<String>,
    /// A system user's access token with `whatsapp_business_messaging`
    #[arg(long, env = "OTP_WHATSAPP_CLOUD_ACCESS_TOKEN", value_name = "SECRET")]
    pub whatsapp_cloud_access_token: Option<String>,
    /// The Graph API version: `v` and a number such as `v25.0`
    #[arg(long, env = "OTP_WHATSAPP_CLOUD_API_VERSION",
          default_value = WHATSAPP_CLOUD_API_VERSION)]
    pub whatsapp_cloud_api_version: String,
    /// Graph API origin
    #[arg(long, env = "OTP_WHATSAPP_CLOUD_BASE_URL", default_value = WHATSAPP_CLOUD_BASE_URL,
          value_name = "URL")]
    pub whatsapp_cloud_base_url: String,
}

/// `whatsapp_cloud`'s settings, named by `via`: every variable required.
pub(super) fn whatsapp_cloud(
    vars: &WhatsAppCloudVars,
    via: &'static str,
) -> Result<WhatsAppCloudConfig, ConfigError> {
    let phone_number_id = vars
        .whatsapp_cloud_phone_number_id
        .as_deref()
        .ok_or_else(|| {
            ConfigError::new(
                via,
                "names `whatsapp_cloud`, but OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID is not set",
            )
        })?;
    if phone_number_id.is_empty()
        || phone_number_id.len() > 32
        || !phone_number_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ConfigError::new(
            "OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID",
            "must be the phone number's id as WhatsApp Manager shows it (digits only), \
             not the phone number",
        ));
    }
    let version = vars.whatsapp_cloud_api_version.as_str();
    let version_ok = version.strip_prefix('v').is_some_and(|number| {
        !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    });
    if !version_ok {
        return Err(ConfigError::new(
            "OTP_WHATSAPP_CLOUD_API_VERSION",
            format!("must be a Graph API version such as `{WHATSAPP_CLOUD_API_VERSION}`"),
        ));
    }
    Ok(WhatsAppCloudConfig {
        base_url: base_url(&vars.whatsapp_cloud_base_url, "OTP_WHATSAPP_CLOUD_BASE_URL")?,
        api_version: version.to_owned(),
        phone_number_id: phone_number_id.to_owned(),
        access_token: key(
            vars.whatsapp_cloud_access_token.as_deref(),
            "OTP_WHATSAPP_CLOUD_ACCESS_TOKEN",
            "for the WhatsApp Cloud API",
        )?,
    })
}

/// Whether any of the Cloud API's own variables is set.
pub(super) fn any_set(vars: &WhatsAppCloudVars) -> bool {
    vars.whatsapp_cloud_phone_number_id.is_some() || vars.whatsapp_cloud_access_token.is_some()
}
