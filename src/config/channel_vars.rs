//! The channels beside SMS: routes per country for WhatsApp and voice
//! (`OTP_WHATSAPP_ROUTES`, `OTP_VOICE_ROUTES`, the syntax of
//! `OTP_SMS_ROUTES`), the fallback between channels
//! (`OTP_CHANNEL_FALLBACK`), and what each channel says (the WhatsApp
//! template, the voice language; per locale in the templates file).

use clap::Args;

use super::{
    ConfigError, twilio_channel_vars,
    twilio_vars::TwilioVars,
    whatsapp_vars::{self, WhatsAppCloudVars},
};
use crate::sms::{
    Channel, ChannelFallback, ChannelTemplates, MessageTemplate, ProviderName, RouteTable,
    SmsConfig, WhatsAppTemplate, is_language_code,
};

/// WhatsApp and voice.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Channels")]
pub struct ChannelVars {
    /// WhatsApp providers per country, as OTP_SMS_ROUTES: `*=whatsapp_cloud,twilio_whatsapp`;
    /// unset: no WhatsApp
    #[arg(long, env = "OTP_WHATSAPP_ROUTES")]
    pub whatsapp_routes: Option<String>,
    /// Voice providers per country, as OTP_SMS_ROUTES: `*=twilio_voice`; unset: no voice
    #[arg(long, env = "OTP_VOICE_ROUTES")]
    pub voice_routes: Option<String>,
    /// Where a send falls through when a channel surely did not deliver:
    /// `whatsapp>sms,voice>sms`
    #[arg(long, env = "OTP_CHANNEL_FALLBACK")]
    pub channel_fallback: Option<String>,
    /// The approved WhatsApp authentication template's name (whatsapp_cloud)
    #[arg(long, env = "OTP_WHATSAPP_TEMPLATE")]
    pub whatsapp_template: Option<String>,
    /// The template's language code without a `[whatsapp]` entry for the locale
    #[arg(long, env = "OTP_WHATSAPP_LANGUAGE",
          default_value = ChannelTemplates::DEFAULT_WHATSAPP_LANGUAGE)]
    pub whatsapp_language: String,
    /// The language of the default voice text (BCP 47), for the voice that reads it
    #[arg(long, env = "OTP_VOICE_LANGUAGE",
          default_value = ChannelTemplates::DEFAULT_VOICE_LANGUAGE)]
    pub voice_language: String,
    #[command(flatten)]
    pub cloud: WhatsAppCloudVars,
}

/// Adds the WhatsApp and voice routes, their providers' settings and the
/// fallback to `sms`. Every provider a route names must carry its channel
/// and be configured; a channel provider's variables without a route naming
/// it are refused (they would be ignored); the fallback may name only
/// channels that have routes.
pub(super) fn channels_from_env(
    vars: &ChannelVars,
    twilio: &TwilioVars,
    sms: &mut SmsConfig,
) -> Result<(), ConfigError> {
    for (channel, raw) in [
        (Channel::WhatsApp, vars.whatsapp_routes.as_deref()),
        (Channel::Voice, vars.voice_routes.as_deref()),
    ] {
        let Some(raw) = raw else { continue };
        let var = channel.routes_var();
        let routes =
            RouteTable::parse(raw).map_err(|why| ConfigError::new(var, why.to_string()))?;
        for name in routes.providers() {
            carries(name, channel, var)?;
            let providers = &mut sms.providers;
            match name {
                ProviderName::WhatsAppCloud => {
                    if vars.whatsapp_template.is_none() {
                        return Err(ConfigError::new(
                            "OTP_WHATSAPP_TEMPLATE",
                            "is required with `whatsapp_cloud`: the name of an approved \
                             authentication template",
                        ));
                    }
                    providers.whatsapp_cloud =
                        Some(whatsapp_vars::whatsapp_cloud(&vars.cloud, var)?);
                }
                ProviderName::TwilioWhatsApp => {
                    providers.twilio_whatsapp =
                        Some(twilio_channel_vars::twilio_whatsapp(twilio, var)?);
                }
                ProviderName::TwilioVoice => {
                    providers.twilio_voice = Some(twilio_channel_vars::twilio_voice(twilio, var)?);
                }
                // `carries` refused every SMS provider.
                _ => {}
            }
        }
        sms.channel_routes.insert(channel, routes);
    }
    refuse_unrouted(vars, twilio, sms)?;
    if let Some(raw) = vars.channel_fallback.as_deref() {
        const VAR: &str = "OTP_CHANNEL_FALLBACK";
        let fallback =
            ChannelFallback::parse(raw).map_err(|why| ConfigError::new(VAR, why.to_string()))?;
        if let Some(missing) = fallback
            .channels()
            .find(|channel| *channel != Channel::Sms && !sms.channel_routes.contains_key(channel))
        {
            return Err(ConfigError::new(
                VAR,
                format!("names `{missing}`, but {} is not set", missing.routes_var()),
            ));
        }
        sms.fallback = fallback;
    }
    Ok(())
}

/// Refuses a provider on another channel's routes.
pub(super) fn carries(
    name: ProviderName,
    channel: Channel,
    var: &'static str,
) -> Result<(), ConfigError> {
    let carried = name.channel();
    if carried == channel {
        return Ok(());
    }
    Err(ConfigError::new(
        var,
        format!(
            "names `{name}`, which carries {carried}, not {channel}; route it in {}",
            carried.routes_var()
        ),
    ))
}

/// A WhatsApp or voice provider's variables set with no route naming it.
fn refuse_unrouted(
    vars: &ChannelVars,
    twilio: &TwilioVars,
    sms: &SmsConfig,
) -> Result<(), ConfigError> {
    let routed = sms.routed_providers();
    if whatsapp_vars::any_set(&vars.cloud) && !routed.contains(&ProviderName::WhatsAppCloud) {
        return Err(unrouted(
            "OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID",
            Channel::WhatsApp,
            "whatsapp_cloud",
        ));
    }
    let whatsapp = routed.contains(&ProviderName::TwilioWhatsApp);
    let voice = routed.contains(&ProviderName::TwilioVoice);
    match twilio_channel_vars::unrouted(twilio, whatsapp, voice) {
        Some(var) if var == "OTP_TWILIO_VOICE_FROM" => {
            Err(unrouted(var, Channel::Voice, "twilio_voice"))
        }
        Some(var) => Err(unrouted(var, Channel::WhatsApp, "twilio_whatsapp")),
        None => Ok(()),
    }
}

fn unrouted(var: &'static str, channel: Channel, name: &str) -> ConfigError {
    ConfigError::new(
        var,
        format!(
            "is set but no route names `{name}`; set {}, e.g. `*={name}`",
            channel.routes_var()
        ),
    )
}

/// What WhatsApp and voice say, when either channel has routes.
pub(super) fn channel_templates(
    vars: &ChannelVars,
    sms: &SmsConfig,
) -> Result<Option<ChannelTemplates>, ConfigError> {
    if sms.channel_routes.is_empty() {
        return Ok(None);
    }
    if !is_language_code(&vars.whatsapp_language) {
        return Err(ConfigError::new(
            "OTP_WHATSAPP_LANGUAGE",
            "must be a WhatsApp language code such as `en_US`, `pt_BR` or `es`",
        ));
    }
    let voice_language = vars.voice_language.as_str();
    if crate::domain::Locale::parse(voice_language).is_err() {
        return Err(ConfigError::new(
            "OTP_VOICE_LANGUAGE",
            "must be a BCP 47 tag such as `en-US` or `pt-BR`",
        ));
    }
    let voice = MessageTemplate::new(ChannelTemplates::DEFAULT_VOICE)
        .map_err(|why| ConfigError::new("OTP_VOICE_LANGUAGE", why.to_string()))?;
    let whatsapp = WhatsAppTemplate {
        name: vars.whatsapp_template.clone().unwrap_or_default(),
        language: vars.whatsapp_language.clone(),
    };
    Ok(Some(ChannelTemplates::new(whatsapp, voice, voice_language)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        config::test_support::{assert_refused, config},
        domain::{Locale, OtpCode},
        sms::BreakerSettings,
    };

    const TWILIO: [(&str, &str); 6] = [
        (
            "OTP_TWILIO_ACCOUNT_SID",
            "AC0123456789abcdef0123456789abcdef",
        ),
        ("OTP_TWILIO_AUTH_TOKEN", "twilio_token_secret_0123"),
        ("OTP_TWILIO_FROM", "+14155550100"),
        ("OTP_TWILIO_WHATSAPP_FROM", "+14155550111"),
        (
            "OTP_TWILIO_WHATSAPP_CONTENT_SID",
            "HX0123456789abcdef0123456789abcdef",
        ),
        ("OTP_TWILIO_VOICE_FROM", "+14155550122"),
    ];
    const META: [(&str, &str); 3] = [
        ("OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID", "106540352242922"),
        ("OTP_WHATSAPP_CLOUD_ACCESS_TOKEN", "EAAJB_meta_token_secret"),
        ("OTP_WHATSAPP_TEMPLATE", "otp_code"),
    ];
    const ROUTES: [(&str, &str); 4] = [
        ("OTP_SMS_GATEWAY", "twilio"),
        (
            "OTP_WHATSAPP_ROUTES",
            "BR=whatsapp_cloud,twilio_whatsapp; *=twilio_whatsapp",
        ),
        ("OTP_VOICE_ROUTES", "*=twilio_voice"),
        ("OTP_CHANNEL_FALLBACK", "whatsapp>sms, voice>sms"),
    ];

    fn all(more: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        TWILIO
            .iter()
            .chain(&META)
            .chain(&ROUTES)
            .chain(more)
            .copied()
            .collect()
    }

    #[test]
    fn channels_get_routes_providers_fallback_breakers_and_templates() {
        let valid = config(&all(&[])).expect("valid");
        let sms = &valid.sms;
        assert_eq!(
            sms.channel_routes[&Channel::WhatsApp].route_for(|| Some("BR")),
            [ProviderName::WhatsAppCloud, ProviderName::TwilioWhatsApp]
        );
        assert_eq!(sms.fallback.after(Channel::Voice), [Channel::Sms]);
        assert!(sms.providers.whatsapp_cloud.is_some());
        assert_eq!(
            sms.providers.twilio_voice.as_ref().map(|v| v.from.as_str()),
            Some("+14155550122")
        );
        assert_ne!(
            sms.breaker,
            BreakerSettings::OFF,
            "channels turn breakers on"
        );
        let channels = valid.messages.channels().expect("channel templates");
        let code = OtpCode::parse("123456", 6).expect("code");
        let (text, language) = channels.voice(&code, Duration::from_secs(60), "OTP", None);
        assert_eq!(
            (text.as_str(), language),
            ("Your OTP verification code is 1, 2, 3, 4, 5, 6.", "en-US")
        );
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/message-templates.example.toml"
        );
        let with_file = config(&all(&[("OTP_MESSAGE_TEMPLATES_FILE", example)])).expect("example");
        let channels = with_file.messages.channels().expect("channel templates");
        let br = Locale::parse("pt-BR").expect("pt-BR");
        assert_eq!(channels.whatsapp(&code, Some(&br)).language, "pt_BR");
        assert_eq!(
            channels.voice(&code, Duration::from_secs(60), "OTP", Some(&br)),
            ("Seu código OTP é 1, 2, 3, 4, 5, 6.".to_owned(), "pt-BR")
        );
    }

    #[test]
    fn bad_channel_settings_stop_startup_in_one_line() {
        let without = |skip: &str| -> Vec<(&'static str, &'static str)> {
            all(&[]).into_iter().filter(|(k, _)| *k != skip).collect()
        };
        for (vars, var, expected) in [
            (
                all(&[("OTP_VOICE_ROUTES", "*=twilio")]),
                "OTP_VOICE_ROUTES",
                "`twilio`, which carries sms, not voice; route it in OTP_SMS_ROUTES",
            ),
            (
                all(&[
                    ("OTP_SMS_GATEWAY", ""),
                    ("OTP_SMS_ROUTES", "*=twilio_voice"),
                ]),
                "OTP_SMS_ROUTES",
                "carries voice, not sms",
            ),
            (
                without("OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID"),
                "OTP_WHATSAPP_ROUTES",
                "OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID is not set",
            ),
            (
                without("OTP_WHATSAPP_TEMPLATE"),
                "OTP_WHATSAPP_TEMPLATE",
                "is required",
            ),
            (
                without("OTP_TWILIO_VOICE_FROM"),
                "OTP_VOICE_ROUTES",
                "OTP_TWILIO_VOICE_FROM is not set",
            ),
            (
                all(&[("OTP_TWILIO_WHATSAPP_CONTENT_SID", "HX12")]),
                "OTP_TWILIO_WHATSAPP_CONTENT_SID",
                "32 hex digits",
            ),
            (
                without("OTP_VOICE_ROUTES"),
                "OTP_TWILIO_VOICE_FROM",
                "no route names `twilio_voice`",
            ),
            (
                all(&[("OTP_WHATSAPP_ROUTES", "*=twilio_whatsapp")]),
                "OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID",
                "no route names `whatsapp_cloud`",
            ),
            (
                all(&[("OTP_CHANNEL_FALLBACK", "sms>pigeon")]),
                "OTP_CHANNEL_FALLBACK",
                "unknown channel `pigeon`",
            ),
            (
                all(&[("OTP_WHATSAPP_LANGUAGE", "pt-BR")]),
                "OTP_WHATSAPP_LANGUAGE",
                "`en_US`",
            ),
            (
                all(&[("OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID", "+5511999999999")]),
                "OTP_WHATSAPP_CLOUD_PHONE_NUMBER_ID",
                "digits only",
            ),
        ] {
            let line = assert_refused(&vars, var, expected);
            assert!(!line.contains("EAAJB_meta_token_secret"), "{line}");
        }
        let no_voice: Vec<_> = without("OTP_VOICE_ROUTES")
            .into_iter()
            .filter(|(k, _)| *k != "OTP_TWILIO_VOICE_FROM")
            .collect();
        assert_refused(
            &no_voice,
            "OTP_CHANNEL_FALLBACK",
            "names `voice`, but OTP_VOICE_ROUTES is not set",
        );
    }
}
