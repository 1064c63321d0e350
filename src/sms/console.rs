//! Development gateway: "sends" by printing to standard output.

use std::io::Write;

use async_trait::async_trait;

use super::{GatewayError, SmsGateway};
use crate::domain::PhoneNumber;

/// Prints each message as one line on standard output, never through the
/// log (logs go to standard error and must never carry a code):
///
/// `SMS to +14155550123: Your code is 123456`
///
/// For development only: the startup log warns loudly when it is in use.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleGateway;

#[async_trait]
impl SmsGateway for ConsoleGateway {
    fn provider(&self) -> &'static str {
        "console"
    }

    async fn send(&self, to: &PhoneNumber, text: &str) -> Result<(), GatewayError> {
        let line = format!("SMS to {}: {}\n", to.e164(), text.replace('\n', " | "));
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|err| GatewayError::Unavailable(format!("cannot write to stdout: {err}")))
    }
}
