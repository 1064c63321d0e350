//! The SMS settings as a whole (which providers, which routes, how long a
//! send may take) and the router built from them at startup.

use std::sync::Arc;

use reqwest::Url;

use super::{
    BreakerSettings, RouteTable, SendSettings, SmsRouter, SmsSetupError,
    console::ConsoleGateway,
    http::{http_client, millis},
    provider::{Provider, ProviderName, SmsProvider},
    retry::RetryPolicy,
    textbee::{TextBeeConfig, TextBeeGateway},
    twilio::{TwilioConfig, TwilioGateway},
    vonage::{VonageConfig, VonageGateway},
    webhook::{WebhookConfig, WebhookGateway},
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
}

impl SmsConfig {
    /// Whether every route ends at the console (development only).
    pub fn is_console_only(&self) -> bool {
        self.routes
            .providers()
            .iter()
            .all(|name| *name == ProviderName::Console)
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
        for name in config.routes.providers() {
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
                    announce(name, &textbee.url, "SMS_SENDER_API");
                    Arc::new(TextBeeGateway::new(textbee, client.clone(), retry)?)
                }
                ProviderName::Twilio => {
                    let twilio = require(name, settings.twilio.as_ref())?;
                    announce(name, &twilio.base_url, "OTP_TWILIO_BASE_URL");
                    Arc::new(TwilioGateway::new(twilio, client.clone(), retry)?)
                }
                ProviderName::Vonage => {
                    let vonage = require(name, settings.vonage.as_ref())?;
                    announce(name, &vonage.base_url, "OTP_VONAGE_BASE_URL");
                    Arc::new(VonageGateway::new(vonage, client.clone(), retry)?)
                }
                ProviderName::Webhook => {
                    let webhook = require(name, settings.webhook.as_ref())?;
                    announce(name, &webhook.url, "OTP_SMS_WEBHOOK_URL");
                    Arc::new(WebhookGateway::new(webhook, client.clone(), retry))
                }
            };
            providers.push(Provider::new(name, wire, config.breaker));
        }
        tracing::info!(
            routes = %config.routes,
            connect_timeout_ms = millis(config.sending.connect_timeout),
            send_timeout_ms = millis(config.sending.send_timeout),
            max_retries = config.sending.max_retries,
            breaker_failures = config.breaker.failures,
            breaker_cooldown_s = config.breaker.cooldown.as_secs(),
            "SMS routes"
        );
        SmsRouter::new(
            config.routes.clone(),
            providers,
            config.sending.send_timeout,
        )
        .map_err(|err| SmsSetupError(err.to_string()))
    }
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
    tracing::info!(provider = name.as_str(), host, "SMS provider configured");
}
