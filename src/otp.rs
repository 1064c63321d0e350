//! The OTP flow: what sending, verifying and asking for time left mean, in
//! one place. Knows the store and the gateway; knows nothing of gRPC.

use std::{sync::Arc, time::Duration};

use crate::{
    config::OtpPolicy,
    domain::{HmacSecret, OtpCode, PhoneNumber},
    error::Error,
    sms::{MessageTemplate, SmsGateway},
    store::{OtpStore, PutOutcome, VerifyOutcome},
};

/// A code was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCode {
    /// Advertised validity (grace not included).
    pub expires_in: Duration,
    /// Digits in the code.
    pub code_length: u8,
    /// Wrong guesses still allowed for the number.
    pub attempts_remaining: u32,
}

/// The result of checking a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Right code, now used up.
    Approved,
    /// Wrong code; this many guesses remain (0: the number is now locked).
    Incorrect {
        /// Guesses left.
        attempts_remaining: u32,
    },
    /// No pending code.
    Expired,
    /// Too many wrong guesses.
    Locked,
}

/// Whether a code is pending and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLeft {
    /// A code can be verified right now (possibly within its grace period).
    pub pending: bool,
    /// Whole seconds of advertised validity left, rounded up; 0 during grace.
    pub seconds_left: u32,
}

/// Sends and checks codes by the configured policy.
pub struct OtpFlow {
    policy: OtpPolicy,
    secret: HmacSecret,
    template: MessageTemplate,
    store: Arc<dyn OtpStore>,
    gateway: Arc<dyn SmsGateway>,
}

impl OtpFlow {
    /// Wires a flow from its parts.
    pub fn new(
        policy: OtpPolicy,
        secret: HmacSecret,
        template: MessageTemplate,
        store: Arc<dyn OtpStore>,
        gateway: Arc<dyn SmsGateway>,
    ) -> Self {
        Self {
            policy,
            secret,
            template,
            store,
            gateway,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &OtpPolicy {
        &self.policy
    }

    /// Makes a fresh code, stores its digest (replacing any pending code but
    /// keeping the spent guess budget), then texts it. If the text cannot be
    /// sent the digest is removed again, so no code the user never received
    /// can be guessed.
    pub async fn send(&self, phone: &PhoneNumber) -> Result<SentCode, Error> {
        let code = OtpCode::generate(self.policy.code_length);
        let digest = self.secret.code_digest(phone, &code);
        let subject = self.secret.subject_key(phone);
        let attempts_remaining = match self
            .store
            .put_code(
                &subject,
                &digest,
                self.policy.code_lifetime(),
                self.policy.max_attempts,
            )
            .await?
        {
            PutOutcome::Stored { attempts_remaining } => attempts_remaining,
            PutOutcome::Locked { retry_after } => return Err(Error::Locked { retry_after }),
        };

        let text = self.template.render(&code, self.policy.ttl);
        if let Err(gateway_error) = self.gateway.send(phone, &text).await {
            if let Err(store_error) = self.store.discard_code(&subject, &digest).await {
                // The code stays stored but was never delivered; it expires by
                // itself and nobody knows it, so this is logged, not fatal.
                tracing::error!(error = %store_error, "could not discard an undelivered code");
            }
            return Err(gateway_error.into());
        }
        tracing::info!("code sent");
        Ok(SentCode {
            expires_in: self.policy.ttl,
            code_length: self.policy.code_length,
            attempts_remaining,
        })
    }

    /// Checks `raw_code` for `phone`. A malformed code is refused before the
    /// store is asked, so it costs no guess.
    pub async fn verify(&self, phone: &PhoneNumber, raw_code: &str) -> Result<Verification, Error> {
        let code = OtpCode::parse(raw_code, self.policy.code_length).map_err(Error::InvalidCode)?;
        let digest = self.secret.code_digest(phone, &code);
        let subject = self.secret.subject_key(phone);
        let outcome = self
            .store
            .verify_and_consume(&subject, &digest, self.policy.max_attempts)
            .await?;
        Ok(match outcome {
            VerifyOutcome::Approved => Verification::Approved,
            VerifyOutcome::Incorrect { attempts_remaining } => {
                if attempts_remaining == 0 {
                    tracing::warn!("wrong-code limit reached; number locked");
                }
                Verification::Incorrect { attempts_remaining }
            }
            VerifyOutcome::Expired => Verification::Expired,
            VerifyOutcome::Locked => Verification::Locked,
        })
    }

    /// How long the pending code for `phone` is still advertised as valid.
    pub async fn time_left(&self, phone: &PhoneNumber) -> Result<TimeLeft, Error> {
        let subject = self.secret.subject_key(phone);
        Ok(match self.store.pending_lifetime(&subject).await? {
            Some(lifetime) => TimeLeft {
                pending: true,
                seconds_left: ceil_seconds(lifetime.saturating_sub(self.policy.grace)),
            },
            None => TimeLeft {
                pending: false,
                seconds_left: 0,
            },
        })
    }
}

fn ceil_seconds(duration: Duration) -> u32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}
