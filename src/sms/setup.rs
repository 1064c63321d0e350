//! The delivery settings as a whole (which providers, which routes per
//! channel, the fallback between channels, how long a send may take) and
//! the router built from them at startup.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use reqwest::Url;

use super::{
    BreakerSettings, Channel, ChannelFallback, RouteTable, SendSettings, SmsRouter, SmsSetupError,
    console::ConsoleGateway,
    http::{http_client, millis},
    provider::{Provider, ProviderName, SmsProvider},
    retry::RetryPolicy,
    textbee::{TextBeeConfig, TextBeeGateway},
    twilio::{TwilioConfig, TwilioGateway},
    twilio_voice::{TwilioVoiceConfig, TwilioVoiceGateway},
    twilio_whatsapp::{TwilioWhatsAppConfig, TwilioWhatsAppGateway},
    vonage::{VonageConfig, VonageGateway},
    webhook::{WebhookConfig, WebhookGateway},
    whatsapp_cloud::{WhatsAppCloudConfig, WhatsAppCloudGateway},
};

/// How codes are texted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsConfig {
    /// Country → providers (`OTP_SMS_ROUTES`, or the one gateway of
    /// `OTP_SMS_GATEWAY` / the TextBee variables for every country).
    pub routes: RouteTable,
    /// Each provider's settings; present when its variables are set.
    pub providers: ProviderSettings,
    /// Timeouts and retries.
    pub sending: SendSettings,
    /// The circuit breakers (off without `OTP_SMS_ROUTES`).
    pub breaker: BreakerSettings,
    /// The other channels' routes (`OTP_WHATSAPP_ROUTES`,
    /// `OTP_VOICE_ROUTES`); a channel without one is not set up.
    pub channel_routes: BTreeMap<Channel, RouteTable>,
    /// Which channel a send falls through to (`OTP_CHANNEL_FALLBACK`).
    pub fallback: ChannelFallback,
}

/// The settings of every provider whose variables are set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderSettings {
    /// `SMS_SENDER_API`, `TEXTBEE_API_KEY`.
    pub textbee: Option<TextBeeConfig>,
    /// `OTP_TWILIO_*`.
    pub twilio: Option<TwilioConfig>,
    /// `OTP_VONAGE_*`.
    pub vonage: Option<VonageConfig>,
    /// `OTP_SMS_WEBHOOK_*`.
    pub webhook: Option<WebhookConfig>,
    /// `OTP_WHATSAPP_CLOUD_*`.
    pub whatsapp_cloud: Option<WhatsAppCloudConfig>,
    /// `OTP_TWILIO_WHATSAPP_*` with the Twilio account.
    pub twilio_whatsapp: Option<TwilioWhatsAppConfig>,
    /// `OTP_TWILIO_VOICE_FROM` with the Twilio account.
    pub twilio_voice: Option<TwilioVoiceConfig>,
}

impl SmsConfig {
    /// Whether every SMS route ends at the console (development only),
    /// whatever the other channels' routes: SMS codes go to stdout.
    pub fn sms_is_console_only(&self) -> bool {
        self.routes
            .providers()
            .iter()
            .all(|name| *name == ProviderName::Console)
    }

    /// Whether any route ends at the console: some codes, with full
    /// numbers, are printed to stdout.
    pub fn prints_to_console(&self) -> bool {
        self.routed_providers().contains(&ProviderName::Console)
    }

    /// The URL a provider is reached at and the variable that sets it
    /// (`None` for the console, or a provider without settings).
    pub fn endpoint(&self, name: ProviderName) -> Option<(&Url, &'static str)> {
        let settings = &self.providers;
        match name {
            ProviderName::Console => None,
            ProviderName::TextBee => settings
                .textbee
                .as_ref()
                .map(|p| (&p.url, "SMS_SENDER_API")),
            ProviderName::Twilio => settings
                .twilio
                .as_ref()
                .map(|p| (&p.base_url, "OTP_TWILIO_BASE_URL")),
            ProviderName::Vonage => settings
                .vonage
                .as_ref()
                .map(|p| (&p.base_url, "OTP_VONAGE_BASE_URL")),
            ProviderName::Webhook => settings
                .webhook
                .as_ref()
                .map(|p| (&p.url, "OTP_SMS_WEBHOOK_URL")),
            ProviderName::WhatsAppCloud => settings
                .whatsapp_cloud
                .as_ref()
                .map(|p| (&p.base_url, "OTP_WHATSAPP_CLOUD_BASE_URL")),
            ProviderName::TwilioWhatsApp => settings
                .twilio_whatsapp
                .as_ref()
                .map(|p| (&p.account.base_url, "OTP_TWILIO_BASE_URL")),
            ProviderName::TwilioVoice => settings
                .twilio_voice
                .as_ref()
                .map(|p| (&p.account.base_url, "OTP_TWILIO_BASE_URL")),
        }
    }

    /// The variables of routed providers' endpoints that are plain http:
    /// credentials and codes would cross the network unencrypted.
    pub fn plain_http_endpoints(&self) -> BTreeSet<&'static str> {
        self.routed_providers()
            .into_iter()
            .filter_map(|name| self.endpoint(name))
            .filter(|(url, _)| url.scheme() == "http")
            .map(|(_, var)| var)
            .collect()
    }

    /// Every channel's route table, SMS first.
    pub fn all_routes(&self) -> BTreeMap<Channel, RouteTable> {
        let mut routes = self.channel_routes.clone();
        routes.insert(Channel::Sms, self.routes.clone());
        routes
    }

    /// Every provider some channel's route names.
    pub fn routed_providers(&self) -> BTreeSet<ProviderName> {
        let mut names = self.routes.providers();
        names.extend(self.channel_routes.values().flat_map(RouteTable::providers));
        names
    }
}

impl SmsRouter {
    /// The router for `config`, its providers sharing one HTTP client.
    /// Logs each provider's host (never a credential) and warns about
    /// plain-http endpoints and the console.
    pub fn build(config: &SmsConfig) -> Result<Self, SmsSetupError> {
        let client = http_client(config.sending.connect_timeout)?;
        let retry = RetryPolicy::from(config.sending);
        let settings = &config.providers;
        let mut providers = Vec::new();
        for name in config.routed_providers() {
            if let Some((url, var)) = config.endpoint(name) {
                announce(name, url, var);
            }
            let wire: Arc<dyn SmsProvider> = match name {
                ProviderName::Console => {
                    tracing::warn!(
                        "SMS gateway is `console`: codes are printed to stdout, not sent. \
                         For development only; set OTP_SMS_GATEWAY or OTP_SMS_ROUTES for \
                         production"
                    );
                    Arc::new(ConsoleGateway)
                }
                ProviderName::TextBee => {
                    let textbee = require(name, settings.textbee.as_ref())?;
                    Arc::new(TextBeeGateway::new(textbee, client.clone(), retry)?)
                }
                ProviderName::Twilio => {
                    let twilio = require(name, settings.twilio.as_ref())?;
                    Arc::new(TwilioGateway::new(twilio, client.clone(), retry)?)
                }
                ProviderName::Vonage => {
                    let vonage = require(name, settings.vonage.as_ref())?;
                    Arc::new(VonageGateway::new(vonage, client.clone(), retry)?)
                }
                ProviderName::Webhook => {
                    let webhook = require(name, settings.webhook.as_ref())?;
                    Arc::new(WebhookGateway::new(webhook, client.clone(), retry))
                }
                ProviderName::WhatsAppCloud => {
                    let cloud = require(name, settings.whatsapp_cloud.as_ref())?;
                    Arc::new(WhatsAppCloudGateway::new(cloud, client.clone(), retry)?)
                }
                ProviderName::TwilioWhatsApp => {
                    let whatsapp = require(name, settings.twilio_whatsapp.as_ref())?;
                    Arc::new(TwilioWhatsAppGateway::new(whatsapp, client.clone(), retry)?)
                }
                ProviderName::TwilioVoice => {
                    let voice = require(name, settings.twilio_voice.as_ref())?;
                    Arc::new(TwilioVoiceGateway::new(voice, client.clone(), retry)?)
                }
            };
            providers.push(Provider::new(name, wire, config.breaker));
        }
        tracing::info!(
            routes = %config.routes,
            whatsapp_routes = %display_routes(config, Channel::WhatsApp),
            voice_routes = %display_routes(config, Channel::Voice),
            channel_fallback = %config.fallback,
            connect_timeout_ms = millis(config.sending.connect_timeout),
            send_timeout_ms = millis(config.sending.send_timeout),
            max_retries = config.sending.max_retries,
            breaker_failures = config.breaker.failures,
            breaker_cooldown_s = config.breaker.cooldown.as_secs(),
            "routes"
        );
        SmsRouter::with_channels(
            config.all_routes(),
            config.fallback.clone(),
            providers,
            config.sending.send_timeout,
        )
        .map_err(|err| SmsSetupError(err.to_string()))
    }
}

/// A channel's routes for the log line, `none` when it is not set up.
fn display_routes(config: &SmsConfig, channel: Channel) -> String {
    config
        .channel_routes
        .get(&channel)
        .map_or_else(|| "none".to_owned(), ToString::to_string)
}

fn require<T>(name: ProviderName, settings: Option<&T>) -> Result<&T, SmsSetupError> {
    settings.ok_or_else(|| SmsSetupError(format!("provider `{name}` has no settings")))
}

fn announce(name: ProviderName, url: &Url, var: &str) {
    let host = url.host_str().unwrap_or_default();
    if url.scheme() == "http" {
        tracing::warn!(
            provider = name.as_str(),
            host,
            "{var} is plain http: credentials and codes cross the network unencrypted; \
             use https unless the endpoint is on a trusted network"
        );
    }
    tracing::info!(
        provider = name.as_str(),
        channel = name.channel().as_str(),
        host,
        "provider configured"
    );
}
