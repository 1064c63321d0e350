//! The SMS gateway variables: which providers send the codes (one gateway,
//! or routes per country), how long a send may take, and the circuit
//! breakers, read into [`SmsConfig`] (defined beside the providers in `sms`).

use std::time::Duration;

use clap::{Args, value_parser};

use super::{
    ConfigError, channel_vars,
    provider_vars::{self, ProviderVars},
    textbee_vars::{self, TextBeeVars},
    twilio_vars::{self, TwilioVars},
};
use crate::sms::{
    BreakerSettings, Channel, ChannelFallback, ProviderName, ProviderSettings, RouteTable,
    SendSettings, SmsConfig,
};

/// Which providers send the codes, and how long a send may take.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "SMS")]
pub struct SmsVars {
    /// One provider for every country (not with OTP_SMS_ROUTES); unset: TextBee
    /// when both its variables are set, else console
    #[arg(long, env = "OTP_SMS_GATEWAY",
          value_parser = ["console", "textbee", "twilio", "vonage", "webhook"])]
    pub sms_gateway: Option<String>,
    /// Per country an ordered list of providers, and `*` for every other:
    /// `IN=textbee; US,CA=twilio; *=twilio,vonage`
    #[arg(long, env = "OTP_SMS_ROUTES")]
    pub sms_routes: Option<String>,
    /// Connect timeout to a provider, in milliseconds [50-30000]
    #[arg(long, env = "OTP_SMS_CONNECT_TIMEOUT_MS", default_value_t = 2_000,
          value_parser = value_parser!(u64).range(50..=30_000))]
    pub sms_connect_timeout_ms: u64,
    /// Budget for one send, every try and provider, in milliseconds; at least
    /// the connect timeout [100-60000]
    #[arg(long, env = "OTP_SMS_SEND_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = value_parser!(u64).range(100..=60_000))]
    pub sms_send_timeout_ms: u64,
    /// Retries per provider, only when the message surely did not reach it [0-5]
    #[arg(long, env = "OTP_SMS_MAX_RETRIES", default_value_t = 2,
          value_parser = value_parser!(u32).range(0..=5))]
    pub sms_max_retries: u32,
    /// With routes: failed sends in a row that open a provider's circuit [1-100]
    #[arg(long, env = "OTP_SMS_BREAKER_FAILURES", default_value_t = 5,
          value_parser = value_parser!(u32).range(1..=100))]
    pub sms_breaker_failures: u32,
    /// How long an open circuit is skipped, in seconds [1-3600]
    #[arg(long, env = "OTP_SMS_BREAKER_COOLDOWN_SECONDS", default_value_t = 30,
          value_parser = value_parser!(u64).range(1..=3_600))]
    pub sms_breaker_cooldown_seconds: u64,
    #[command(flatten)]
    pub textbee: TextBeeVars,
    #[command(flatten)]
    pub twilio: TwilioVars,
    #[command(flatten)]
    pub providers: ProviderVars,
}

/// Reads the SMS settings.
///
/// With `OTP_SMS_ROUTES` every provider it names must be configured, and
/// the breakers are on. Without it, one gateway sends everything, exactly
/// as before routes existed: `OTP_SMS_GATEWAY` names it; unset, it is
/// TextBee when both `SMS_SENDER_API` and `TEXTBEE_API_KEY` are set and
/// console when neither is. Exactly one of them set is refused rather than
/// quietly falling back to console: an operator who set one meant to send
/// real SMS, and the console gateway would print the codes instead.
pub(super) fn sms_from_env(vars: &SmsVars) -> Result<SmsConfig, ConfigError> {
    // Read even when unused, so a typo fails now, not after a switch.
    let sending = send_settings(vars)?;
    let breaker = breaker_settings(vars);
    let mut providers = ProviderSettings {
        textbee: None,
        twilio: twilio_vars::twilio_from_env(&vars.twilio)?,
        vonage: provider_vars::vonage(&vars.providers)?,
        webhook: provider_vars::webhook(&vars.providers)?,
        ..ProviderSettings::default()
    };
    let Some(raw_routes) = vars.sms_routes.as_deref() else {
        let gateway = single_gateway(vars, &mut providers)?;
        return Ok(SmsConfig {
            routes: RouteTable::single(gateway),
            providers,
            sending,
            breaker: BreakerSettings::OFF,
            channel_routes: Default::default(),
            fallback: ChannelFallback::NONE,
        });
    };
    if vars.sms_gateway.is_some() {
        return Err(ConfigError::new(
            "OTP_SMS_GATEWAY",
            "cannot be set together with OTP_SMS_ROUTES; name the providers in the routes \
             (e.g. `*=twilio`)",
        ));
    }
    let routes = RouteTable::parse(raw_routes)
        .map_err(|why| ConfigError::new("OTP_SMS_ROUTES", why.to_string()))?;
    for name in routes.providers() {
        channel_vars::carries(name, Channel::Sms, "OTP_SMS_ROUTES")?;
        configured(&vars.textbee, name, &mut providers, "OTP_SMS_ROUTES")?;
    }
    Ok(SmsConfig {
        routes,
        providers,
        sending,
        breaker,
        channel_routes: Default::default(),
        fallback: ChannelFallback::NONE,
    })
}

/// `OTP_SMS_BREAKER_FAILURES`, `OTP_SMS_BREAKER_COOLDOWN_SECONDS`: in
/// force with any routes variable (SMS, WhatsApp or voice).
pub(super) fn breaker_settings(vars: &SmsVars) -> BreakerSettings {
    BreakerSettings {
        failures: vars.sms_breaker_failures,
        cooldown: Duration::from_secs(vars.sms_breaker_cooldown_seconds),
    }
}

/// `OTP_SMS_CONNECT_TIMEOUT_MS`, `OTP_SMS_SEND_TIMEOUT_MS`, `OTP_SMS_MAX_RETRIES`.
fn send_settings(vars: &SmsVars) -> Result<SendSettings, ConfigError> {
    let connect_timeout = Duration::from_millis(vars.sms_connect_timeout_ms);
    let send_timeout = Duration::from_millis(vars.sms_send_timeout_ms);
    if send_timeout < connect_timeout {
        return Err(ConfigError::new(
            "OTP_SMS_SEND_TIMEOUT_MS",
            format!(
                "must be at least OTP_SMS_CONNECT_TIMEOUT_MS ({} ms), so that the first try \
                 can always connect (got {} ms)",
                connect_timeout.as_millis(),
                send_timeout.as_millis()
            ),
        ));
    }
    Ok(SendSettings {
        connect_timeout,
        send_timeout,
        max_retries: vars.sms_max_retries,
    })
}

/// The one gateway without routes (`OTP_SMS_GATEWAY`, or chosen by which
/// variables are set).
fn single_gateway(
    vars: &SmsVars,
    providers: &mut ProviderSettings,
) -> Result<ProviderName, ConfigError> {
    const VAR: &str = "OTP_SMS_GATEWAY";
    let Some(raw) = vars.sms_gateway.as_deref() else {
        return auto_gateway(&vars.textbee, providers);
    };
    let name = raw.parse::<ProviderName>().map_err(|()| {
        ConfigError::new(
            VAR,
            format!("must be `console`, `textbee`, `twilio`, `vonage` or `webhook` (got `{raw}`)"),
        )
    })?;
    configured(&vars.textbee, name, providers, VAR)?;
    Ok(name)
}

/// Without `OTP_SMS_GATEWAY`: TextBee when its variables are set, console
/// when no provider's are; another provider's variables alone are refused
/// (they would be ignored and the codes printed instead).
fn auto_gateway(
    textbee: &TextBeeVars,
    providers: &mut ProviderSettings,
) -> Result<ProviderName, ConfigError> {
    if let Some(textbee) = textbee_vars::textbee_if_set(textbee)? {
        providers.textbee = Some(textbee);
        return Ok(ProviderName::TextBee);
    }
    let other = [
        (providers.twilio.is_some(), "twilio"),
        (providers.vonage.is_some(), "vonage"),
        (providers.webhook.is_some(), "webhook"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name));
    match other {
        Some(name) => Err(ConfigError::new(
            "OTP_SMS_GATEWAY",
            format!(
                "is required: the {name} variables are set but nothing selects them; set \
                 OTP_SMS_GATEWAY={name} or OTP_SMS_ROUTES"
            ),
        )),
        None => Ok(ProviderName::Console),
    }
}

/// Checks that `name`, selected by `via`, has its settings (reading
/// TextBee's now: only a selected TextBee needs them); the error names the
/// missing variable.
fn configured(
    textbee: &TextBeeVars,
    name: ProviderName,
    providers: &mut ProviderSettings,
    via: &'static str,
) -> Result<(), ConfigError> {
    let missing =
        |var: &str| ConfigError::new(via, format!("names `{name}`, but {var} is not set"));
    match name {
        ProviderName::Console => Ok(()),
        ProviderName::TextBee => {
            if providers.textbee.is_none() {
                providers.textbee = Some(textbee_vars::textbee_required(textbee)?);
            }
            Ok(())
        }
        ProviderName::Twilio if providers.twilio.is_none() => {
            Err(missing("OTP_TWILIO_ACCOUNT_SID"))
        }
        ProviderName::Vonage if providers.vonage.is_none() => Err(missing("OTP_VONAGE_API_KEY")),
        ProviderName::Webhook if providers.webhook.is_none() => Err(missing("OTP_SMS_WEBHOOK_URL")),
        ProviderName::Twilio | ProviderName::Vonage | ProviderName::Webhook => Ok(()),
        // Other channels' providers: `channel_vars` configures them.
        ProviderName::WhatsAppCloud | ProviderName::TwilioWhatsApp | ProviderName::TwilioVoice => {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
