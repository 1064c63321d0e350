//! The OTP flow: what sending, verifying, asking for time left and cancelling
//! mean, in one place. Knows the store and the gateway; knows nothing of gRPC.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    abuse::{CountryPolicy, RateRule, SendLimits, TestNumbers},
    auth::Caller,
    config::OtpPolicy,
    domain::{ClientKey, HmacKeys, IdempotencyKey, OtpCode, PhoneNumber, SubjectKey},
    error::Error,
    metrics::{self, timed_store},
    sms::{GatewayError, MessageTemplate, SmsGateway},
    store::{
        ClaimOwner, IdempotencyClaim, OtpStore, PutOutcome, RecordedSend, SendDecision, SendLog,
        VerifyOutcome,
    },
};

/// First poll interval while a duplicate call waits for the first call with
/// its idempotency key; it doubles up to [`IDEMPOTENCY_POLL_MAX`], so a crowd
/// of waiting retries costs the store little.
const IDEMPOTENCY_POLL_FIRST: Duration = Duration::from_millis(20);
/// Longest poll interval while waiting.
const IDEMPOTENCY_POLL_MAX: Duration = Duration::from_millis(500);

/// A code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentCode {
    /// Advertised validity (grace not included).
    pub expires_in: Duration,
    /// Digits in the code.
    pub code_length: u8,
    /// Wrong guesses still allowed for the number.
    pub attempts_remaining: u32,
    /// Time until the number may be sent another code.
    pub resend_after: Duration,
}

/// A SendOtp, parsed.
#[derive(Debug, Clone, Copy)]
pub struct SendRequest<'a> {
    /// Where the code goes.
    pub phone: &'a PhoneNumber,
    /// Who asked (limits are counted per client key).
    pub client_key: Option<&'a ClientKey>,
    /// Makes retries return the first response.
    pub idempotency_key: Option<&'a IdempotencyKey>,
    /// The authenticated caller (limits are counted per caller too).
    pub caller: Option<&'a Caller>,
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

/// Abuse rules the flow applies before anything is sent.
#[derive(Debug, Clone)]
pub struct AbuseRules {
    /// Send limits per number, caller and service.
    pub limits: SendLimits,
    /// Countries that may be texted.
    pub countries: CountryPolicy,
    /// Numbers with a fixed code and no SMS.
    pub test_numbers: TestNumbers,
    /// How long an idempotency key stays claimed while its first call sends
    /// (and how long duplicates wait for it): longer than any send can take
    /// ([`crate::config::Config::longest_send`]), so a retry never sends a
    /// second code while the first is in flight, yet a key whose holder died
    /// mid-send frees itself.
    pub idempotency_claim_ttl: Duration,
}

/// Sends and checks codes by the configured policy.
pub struct OtpFlow {
    policy: OtpPolicy,
    abuse: AbuseRules,
    secret: HmacKeys,
    template: MessageTemplate,
    store: Arc<dyn OtpStore>,
    gateway: Arc<dyn SmsGateway>,
}

/// Outcome of claiming an idempotency key.
enum Claim {
    /// This call holds the key and sends.
    Owned(ClaimOwner),
    /// An earlier call with the key already sent; this is its response.
    Answered(SentCode),
}

/// Sends counted so far by one SendOtp, taken back if it does not send.
struct CountedSends<'a> {
    store: &'a dyn OtpStore,
    counted: Vec<(SendLog, String)>,
}

impl CountedSends<'_> {
    async fn refund(self) {
        for (log, token) in &self.counted {
            if let Err(err) = self.store.refund_send(log, token).await {
                // Over-counting errs on the safe side: the limit just bites sooner.
                tracing::warn!(error = %err, "could not take back a counted send");
            }
        }
    }
}

impl OtpFlow {
    /// Wires a flow from its parts.
    pub fn new(
        policy: OtpPolicy,
        abuse: AbuseRules,
        secret: HmacKeys,
        template: MessageTemplate,
        store: Arc<dyn OtpStore>,
        gateway: Arc<dyn SmsGateway>,
    ) -> Self {
        Self {
            policy,
            abuse,
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

    /// Sends a code, unless a rule refuses: the country policy, then (for a
    /// repeated `idempotency_key`) the first call's response, then the send
    /// limits, then the wrong-guess lock. See [`OtpFlow::send_new_code`].
    pub async fn send(&self, request: SendRequest<'_>) -> Result<SentCode, Error> {
        let phone = request.phone;
        if !self.abuse.countries.allows(phone) {
            return Err(Error::CountryNotAllowed {
                region: phone.region().unwrap_or("unknown").to_owned(),
            });
        }
        let subject = self.secret.subject_key(phone);
        let Some(key) = request.idempotency_key else {
            return self.send_new_code(phone, &subject, &request).await;
        };

        let key = self.secret.idempotency_subject(key);
        let owner = match self.claim_idempotency_key(&key, &subject).await? {
            Claim::Owned(owner) => owner,
            Claim::Answered(first) => return Ok(first),
        };
        let result = self.send_new_code(phone, &subject, &request).await;
        self.settle_idempotency_key(&key, &owner, &result).await;
        result
    }

    /// Claims the idempotency key for this call, or waits (bounded by the
    /// claim's lifetime) for the call that holds it and returns its response.
    async fn claim_idempotency_key(
        &self,
        key: &SubjectKey,
        subject: &SubjectKey,
    ) -> Result<Claim, Error> {
        let give_up = Instant::now() + self.abuse.idempotency_claim_ttl;
        let mut poll = IDEMPOTENCY_POLL_FIRST;
        loop {
            match timed_store(
                "claim_idempotency",
                self.store
                    .claim_idempotency(key, subject, self.abuse.idempotency_claim_ttl),
            )
            .await?
            {
                IdempotencyClaim::Claimed { owner } => return Ok(Claim::Owned(owner)),
                IdempotencyClaim::Completed(first) => {
                    tracing::info!("idempotent retry: returning the first response");
                    return Ok(Claim::Answered(first.into()));
                }
                IdempotencyClaim::OtherSubject => return Err(Error::IdempotencyKeyReused),
                IdempotencyClaim::InProgress if Instant::now() < give_up => {
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(IDEMPOTENCY_POLL_MAX);
                }
                IdempotencyClaim::InProgress => return Err(Error::IdempotencyKeyBusy),
            }
        }
    }

    /// Records the response of a successful send for retries, or frees the
    /// key after a failed one — only while this call still owns the claim.
    async fn settle_idempotency_key(
        &self,
        key: &SubjectKey,
        owner: &ClaimOwner,
        result: &Result<SentCode, Error>,
    ) {
        let settled = match result {
            Ok(sent) => {
                self.store
                    .complete_idempotency(
                        key,
                        owner,
                        &RecordedSend::from(*sent),
                        self.policy.code_lifetime(),
                    )
                    .await
            }
            Err(_) => self.store.release_idempotency(key, owner).await,
        };
        match settled {
            Ok(true) => {}
            // Our claim lapsed mid-send and another call may hold the key now:
            // its claim is left alone (the owner token is what protects it).
            Ok(false) => tracing::warn!(
                "idempotency claim expired before the send finished; the key was left to its new holder"
            ),
            // The send itself is decided; a retry with this key may send once
            // more after the in-progress claim lapses, which is logged.
            Err(err) => tracing::error!(error = %err, "could not settle the idempotency key"),
        }
    }

    /// Counts the send against every limit (refusing if one is full), stores
    /// the new code's digest (replacing any pending code, keeping the spent
    /// guess budget), then texts it. If the text cannot be sent the digest is
    /// removed again, so no code the user never received can be guessed; the
    /// send is taken back from the limits only when it surely never reached
    /// the gateway, so a retry is not held back by a send that did not happen.
    async fn send_new_code(
        &self,
        phone: &PhoneNumber,
        subject: &SubjectKey,
        request: &SendRequest<'_>,
    ) -> Result<SentCode, Error> {
        let mut counted = CountedSends {
            store: self.store.as_ref(),
            counted: Vec::new(),
        };
        let mut resend_after = Duration::ZERO;
        {
            let limits = &self.abuse.limits;
            let mut logs: Vec<(SendLog, Vec<RateRule>)> =
                vec![(SendLog::Phone(subject.clone()), limits.phone_rules())];
            if let Some(client) = request.client_key {
                logs.push((
                    SendLog::Client(self.secret.client_subject(client)),
                    limits.client_rules(),
                ));
            }
            if let Some(caller) = request.caller {
                logs.push((
                    SendLog::Caller(caller.name().to_owned()),
                    limits.caller_rules(),
                ));
            }
            logs.push((SendLog::Global, limits.global_rules()));
            for (log, rules) in logs.into_iter().filter(|(_, rules)| !rules.is_empty()) {
                match timed_store("record_send", self.store.record_send(&log, &rules)).await {
                    Ok(SendDecision::Admitted {
                        token,
                        next_allowed_in,
                    }) => {
                        if matches!(log, SendLog::Phone(_)) {
                            resend_after = next_allowed_in;
                        }
                        counted.counted.push((log, token));
                    }
                    Ok(SendDecision::Refused { violations }) => {
                        counted.refund().await;
                        return Err(Error::RateLimited { violations });
                    }
                    Err(err) => {
                        counted.refund().await;
                        return Err(err.into());
                    }
                }
            }
        }

        let test_code = self.abuse.test_numbers.code_for(phone);
        let code = test_code
            .cloned()
            .unwrap_or_else(|| OtpCode::generate(self.policy.code_length));
        let digest = self.secret.code_digest(phone, &code);
        let attempts_remaining = match timed_store(
            "put_code",
            self.store.put_code(
                subject,
                &digest,
                self.policy.code_lifetime(),
                self.policy.max_attempts,
            ),
        )
        .await
        {
            Ok(PutOutcome::Stored { attempts_remaining }) => attempts_remaining,
            Ok(PutOutcome::Locked { retry_after }) => {
                counted.refund().await;
                return Err(Error::Locked { retry_after });
            }
            Err(err) => {
                counted.refund().await;
                return Err(err.into());
            }
        };

        if test_code.is_some() {
            tracing::info!("test number: fixed code stored, no SMS sent");
        } else {
            let text = self.template.render(&code, self.policy.ttl);
            let started = Instant::now();
            let delivered = self.gateway.send(phone, &text).await;
            metrics::gateway_latency(started.elapsed());
            if let Err(gateway_error) = delivered {
                metrics::gateway_failed(match gateway_error {
                    GatewayError::Unavailable(_) => "unavailable",
                    GatewayError::Uncertain(_) => "uncertain",
                    GatewayError::Unauthorized(_) => "unauthorized",
                    GatewayError::Rejected(_) => "rejected",
                });
                if let Err(store_error) = self.store.discard_code(subject, &digest).await {
                    // The code stays stored but was never delivered; it expires
                    // by itself and nobody knows it, so this is logged, not fatal.
                    tracing::error!(error = %store_error, "could not discard an undelivered code");
                }
                // Only a send that surely never reached the gateway is taken
                // back; one that may have gone out still counts, or a slow
                // gateway would let callers text a number without limit.
                if !matches!(gateway_error, GatewayError::Uncertain(_)) {
                    counted.refund().await;
                }
                return Err(gateway_error.into());
            }
            tracing::info!("code sent");
        }
        Ok(SentCode {
            expires_in: self.policy.ttl,
            code_length: self.policy.code_length,
            attempts_remaining,
            resend_after,
        })
    }

    /// Checks `raw_code` for `phone`. A malformed code is refused before the
    /// store is asked, so it costs no guess.
    pub async fn verify(&self, phone: &PhoneNumber, raw_code: &str) -> Result<Verification, Error> {
        let code = OtpCode::parse(raw_code, self.policy.code_length).map_err(Error::InvalidCode)?;
        // A code sent before a key rotation was digested with a previous secret.
        let candidates = self.secret.candidate_digests(phone, &code);
        let subject = self.secret.subject_key(phone);
        let outcome = timed_store(
            "verify_and_consume",
            self.store
                .verify_and_consume(&subject, &candidates, self.policy.max_attempts),
        )
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
        tracing::info!(cancelled, "pending code cancelled");
        Ok(cancelled)
    }
}

/// Whole seconds, rounded up, saturating.
pub fn ceil_seconds(duration: Duration) -> u32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

impl From<SentCode> for RecordedSend {
    fn from(sent: SentCode) -> Self {
        Self {
            expires_in_secs: ceil_seconds(sent.expires_in),
            code_length: u32::from(sent.code_length),
            attempts_remaining: sent.attempts_remaining,
            resend_after_secs: ceil_seconds(sent.resend_after),
        }
    }
}

impl From<RecordedSend> for SentCode {
    fn from(recorded: RecordedSend) -> Self {
        Self {
            expires_in: Duration::from_secs(u64::from(recorded.expires_in_secs)),
            code_length: u8::try_from(recorded.code_length).unwrap_or(u8::MAX),
            attempts_remaining: recorded.attempts_remaining,
            resend_after: Duration::from_secs(u64::from(recorded.resend_after_secs)),
        }
    }
}
