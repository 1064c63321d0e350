//! Sending the code to the user's phone.

mod console;
mod retry;
mod template;
mod textbee;

use async_trait::async_trait;
use thiserror::Error;

pub use console::ConsoleGateway;
pub use template::{MessageTemplate, TemplateError};
pub use textbee::{TextBeeConfig, TextBeeGateway, TextBeeSetupError};

use crate::domain::PhoneNumber;

/// The SMS gateway selection (`OTP_SMS_GATEWAY`), as `config` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsConfig {
    /// Print messages to standard output: development only.
    Console,
    /// Send through a TextBee server (textbee.dev or self-hosted).
    TextBee(TextBeeConfig),
}

/// Why a message was not sent. Text is for logs, never for callers.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// Unreachable or refusing for now (connect error, 429, 503) after
    /// retries: nothing was sent, and the caller may try again later.
    #[error("SMS gateway unavailable: {0}")]
    Unavailable(String),
    /// Like `Unavailable`, but some try may have reached the gateway before
    /// failing (cut off mid-request, a 500): the SMS may still arrive.
    #[error("SMS gateway failed, delivery uncertain: {0}")]
    Uncertain(String),
    /// The gateway refused our credentials: an operator must fix the configuration.
    #[error("SMS gateway rejected our credentials: {0}")]
    Unauthorized(String),
    /// The gateway refused this message for another reason.
    #[error("SMS gateway rejected the message: {0}")]
    Rejected(String),
}

/// Something that delivers a text message to a phone.
///
/// Implementations must not log the message text (it holds the code) or any
/// credential, and must show phone numbers only masked.
#[async_trait]
pub trait SmsGateway: Send + Sync + 'static {
    /// Delivers `text` to `to`. Returns once the gateway has accepted it.
    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<(), GatewayError>;

    /// The provider's name, for audit events and span attributes.
    fn provider(&self) -> &'static str {
        "custom"
    }
}
