//! The OTP flow: what sending, verifying, asking for time left and cancelling
//! mean, in one place. Knows the store and the gateway; knows nothing of gRPC
//! (service.rs maps its answers) nor of environment variables (config.rs
//! builds its policy).
//!
//! `send.rs` holds the steps of one send, `idempotency.rs` the retry-safe
//! wrapper around it, `pumping_guard.rs` the destination-prefix guard's part
//! in sending and verifying, `pumping_admin.rs` an operator's hand on that
//! guard (the admin API's policy).

mod audit;
mod delivery;
mod idempotency;
mod outcome;
mod policy;
mod pumping_admin;
mod pumping_guard;
mod send;
mod spend_guard;
mod verify_limits;

use std::{collections::BTreeMap, sync::Arc};

use idempotency::Claim;
use pumping_guard::PumpingGuard;
use spend_guard::SpendGuard;

pub use outcome::{SendRequest, SentCode, TimeLeft, Verification, VerifyRequest};
pub use policy::{AbuseRules, OtpPolicy};
pub use pumping_admin::PumpingAdmin;

use crate::{
    domain::{HmacKeys, OtpCode, PhoneNumber, ceil_seconds},
    error::Error,
    events::EventSink,
    metrics::timed_store,
    sms::{Channel, MessageTemplates, RouteTable, SmsGateway},
    spend::SpendSettings,
    store::{CheckOutcome, OtpStore, VerifyOutcome, VerifyPlan},
};

/// Sends and checks codes by the configured policy.
pub struct OtpFlow {
    policy: OtpPolicy,
    abuse: AbuseRules,
    secret: HmacKeys,
    messages: MessageTemplates,
    store: Arc<dyn OtpStore>,
    gateway: Arc<dyn SmsGateway>,
    /// Where decisions are recorded (`audit.rs`); disabled unless configured.
    events: EventSink,
    guard: PumpingGuard,
    /// Prices and spend caps (`spend_guard.rs`); `None`: no prices file.
    spend: Option<SpendGuard>,
}

impl OtpFlow {
    /// Wires a flow from its parts.
    pub fn new(
        policy: OtpPolicy,
        abuse: AbuseRules,
        secret: HmacKeys,
        messages: MessageTemplates,
        store: Arc<dyn OtpStore>,
        gateway: Arc<dyn SmsGateway>,
    ) -> Self {
        let guard = PumpingGuard::new(
            abuse.pumping_guard,
            policy.code_lifetime(),
            Arc::clone(&store),
        );
        Self {
            policy,
            abuse,
            secret,
            messages,
            store,
            gateway,
            events: EventSink::disabled(),
            guard,
            spend: None,
        }
    }

    /// Estimates each send's price over each channel's `routes` at
    /// `settings`' prices and holds it to the spend caps.
    pub fn with_spend(
        mut self,
        settings: SpendSettings,
        routes: BTreeMap<Channel, RouteTable>,
    ) -> Self {
        self.spend = Some(SpendGuard::new(settings, routes, Arc::clone(&self.store)));
        self
    }

    /// Records every decision as an audit event in `events`.
    pub fn with_events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &OtpPolicy {
        &self.policy
    }

    /// The abuse rules in force.
    pub fn abuse(&self) -> &AbuseRules {
        &self.abuse
    }

    /// Sends a code, unless a rule refuses: a channel the gateway does not
    /// serve, the country policy, then (for a repeated `idempotency_key`)
    /// the first call's response, then the send limits, then the wrong-guess
    /// lock. See `send.rs` for the steps.
    pub async fn send(&self, request: SendRequest<'_>) -> Result<SentCode, Error> {
        let result = self.send_unless_refused(request).await;
        if let Err(error) = &result {
            self.audit_refusal(request.phone, request.client_key, error);
        }
        result
    }

    async fn send_unless_refused(&self, request: SendRequest<'_>) -> Result<SentCode, Error> {
        let phone = request.phone;
        // Before anything is counted: no send of this channel can succeed.
        if !self.gateway.serves(request.channel) {
            return Err(Error::ChannelNotConfigured {
                channel: request.channel,
            });
        }
        if !self.abuse.countries.allows(phone) {
            return Err(Error::CountryNotAllowed {
                region: phone.region().unwrap_or("unknown").to_owned(),
            });
        }
        let subject = self.secret.subject_key(phone);
        let Some(key) = request.idempotency_key else {
            return self.send_new_code(phone, &subject, &request).await;
        };
        // Scoped to the caller: another caller's same key is another record.
        let caller = request.caller.map(|caller| caller.name());
        let key = self.secret.idempotency_subject(caller, key);
        let owner = match self.claim_idempotency(&key, &subject).await? {
            Claim::Owned(owner) => owner,
            Claim::Answered(first) => return Ok(first),
        };
        let result = self.send_new_code(phone, &subject, &request).await;
        self.settle_idempotency(&key, &owner, &result).await;
        result
    }

    /// Checks the request's code for its phone. A malformed code is refused
    /// before the store is asked, so it costs no guess; then the guess is
    /// counted against the verify limits (`verify_limits.rs`), which refuse
    /// before the code is compared.
    pub async fn verify(&self, request: VerifyRequest<'_>) -> Result<Verification, Error> {
        let phone = request.phone;
        let code =
            OtpCode::parse(request.code, self.policy.code_length).map_err(Error::InvalidCode)?;
        // A code sent before a key rotation was digested with a previous secret.
        let candidates = self.secret.candidate_digests(phone, &code);
        let subject = self.secret.subject_key(phone);
        let logs = self.verify_logs(&request);
        let plan = VerifyPlan {
            logs: &logs,
            subject: &subject,
            candidates: &candidates,
            max_attempts: self.policy.max_attempts,
        };
        let outcome = match self.store.count_verify_and_consume(plan).await? {
            CheckOutcome::Checked(outcome) => outcome,
            CheckOutcome::Refused { violations } => {
                return Err(Error::VerifyLimited { violations });
            }
        };
        let verification = match outcome {
            VerifyOutcome::Approved { sent_at_ms } => {
                if self.abuse.test_numbers.code_for(phone).is_none() {
                    self.guard.count_approval(phone, &subject, sent_at_ms);
                    if let Some(spend) = &self.spend {
                        spend.count_approval(phone);
                    }
                }
                Verification::Approved
            }
            VerifyOutcome::Incorrect { attempts_remaining } => {
                if attempts_remaining == 0 {
                    tracing::warn!("wrong-code limit reached; number locked");
                }
                Verification::Incorrect { attempts_remaining }
            }
            VerifyOutcome::Expired => Verification::Expired,
            VerifyOutcome::Locked => Verification::Locked,
        };
        self.audit_verification(phone, verification);
        Ok(verification)
    }

    /// How long the pending code for `phone` is still advertised as valid.
    pub async fn time_left(&self, phone: &PhoneNumber) -> Result<TimeLeft, Error> {
        let subject = self.secret.subject_key(phone);
        Ok(
            match timed_store("pending_lifetime", self.store.pending_lifetime(&subject)).await? {
                Some(lifetime) => TimeLeft {
                    pending: true,
                    seconds_left: ceil_seconds(lifetime.saturating_sub(self.policy.grace)),
                },
                None => TimeLeft {
                    pending: false,
                    seconds_left: 0,
                },
            },
        )
    }

    /// Invalidates the pending code for `phone`; the spent guesses and the
    /// send limits stay as they are. Returns whether a code was pending.
    pub async fn cancel(&self, phone: &PhoneNumber) -> Result<bool, Error> {
        let subject = self.secret.subject_key(phone);
        let cancelled = timed_store("cancel_code", self.store.cancel_code(&subject)).await?;
        if cancelled {
            tracing::info!("pending code cancelled");
            self.audit_cancelled(phone);
        } else {
            tracing::info!("no pending code to cancel");
        }
        Ok(cancelled)
    }
}
