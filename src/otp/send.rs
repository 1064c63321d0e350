//! Sending a new code, step by step: price the send (with a prices file: on
//! the channel asked for and those it may fall through to), count the send
//! against every limit, let the pumping guard judge its destination, store
//! the code's digest, reserve its price against the spend caps (these four
//! one store call, `OtpStore::count_send_and_put_code`, which undoes its own
//! counts, and the code after a spend refusal, when a step refuses; the
//! caps' part is `spend_guard.rs`), deliver the code (`delivery.rs`: on the channel asked for, whatever it
//! is, so every limit and the pumping guard count a WhatsApp message or a
//! call exactly like an SMS, before it goes out), settle the price at the
//! channel and provider that carried it, and undo what is safe to undo when
//! it cannot be sent.

use std::time::Duration;

use super::{
    OtpFlow, SendRequest, SentCode,
    pumping_guard::{CountedPrefixSend, PumpingGuard},
    spend_guard::{ReservedSpend, SpendGuard},
};
use crate::{
    abuse::{DestinationPrefix, RateRule, SendSource},
    domain::{CodeDigest, OtpCode, PhoneNumber, SubjectKey},
    error::Error,
    sms::{Accepted, Channel, GatewayError, Rendered},
    spend::{Estimate, Micros},
    store::{
        CodeToStore, OtpStore, PrefixSender, PrefixSuspension, SendLog, SendOutcome, SendPlan,
        SpendReservation, SpendStep, SpendWindow, StoreError, take_back_sends,
    },
};

/// Sends counted so far by one SendOtp, taken back if it does not send.
struct CountedSends<'a> {
    store: &'a dyn OtpStore,
    counted: Vec<(SendLog, String)>,
    /// Time until the phone's own log admits another send.
    resend_after: Duration,
    guard: &'a PumpingGuard,
    /// The send as the pumping guard counted it for its destination prefix.
    prefix_send: Option<CountedPrefixSend>,
}

impl CountedSends<'_> {
    /// Takes back every count at once (see [`take_back_sends`]).
    async fn refund(self) {
        let prefix_send = self.prefix_send.as_ref().map(CountedPrefixSend::refund_key);
        take_back_sends(self.store, &self.counted, prefix_send).await;
    }

    /// Takes back only the pumping guard's count of the send.
    async fn refund_prefix_send(&mut self) {
        if let Some(prefix_send) = self.prefix_send.take() {
            self.guard.refund(prefix_send).await;
        }
    }
}

impl OtpFlow {
    /// Prices the send (with a prices file), counts it against every limit
    /// (refusing if one is full), stores the new code's digest (replacing
    /// any pending code, keeping the spent guess budget), reserves its price
    /// against the spend caps (all in one store call), then sends it on the channel asked for (or
    /// one it falls through to) and keeps the carrier's price on that
    /// channel as spent. If the text cannot be sent the digest is
    /// removed again, so no code the user never received can be guessed; the
    /// send (and its reserved price) is taken back only when it surely never
    /// reached the gateway, so a retry is not held back by a send that did
    /// not happen.
    pub(super) async fn send_new_code(
        &self,
        phone: &PhoneNumber,
        subject: &SubjectKey,
        request: &SendRequest<'_>,
    ) -> Result<SentCode, Error> {
        let test_code = self.abuse.test_numbers.code_for(phone);
        let code = test_code
            .cloned()
            .unwrap_or_else(|| OtpCode::generate(self.policy.code_length));
        let digest = self.secret.code_digest(phone, &code);
        // Test numbers are never texted, so the pumping guard has nothing to judge.
        let prefix = test_code
            .is_none()
            .then(|| self.guard.prefix_to_judge(phone))
            .flatten();
        // Rendered before anything is counted: its segments price an SMS.
        let rendered = test_code
            .is_none()
            .then(|| self.messages.render(&code, self.policy.ttl, request.locale));
        let estimate = self.estimate_spend(phone, request.channel, rendered.as_ref())?;
        let windows = self.spend_windows(request, estimate.as_ref());
        let spend = estimate
            .as_ref()
            .filter(|_| !windows.is_empty())
            .map(|estimate| SpendStep {
                amount: estimate.reserved,
                windows: &windows,
            });
        let (attempts_remaining, counted, reservation) = self
            .count_and_store(phone, subject, request, prefix.as_ref(), &digest, spend)
            .await?;
        let reserved = estimate.map(|estimate| SpendGuard::reserved(estimate, reservation));
        let resend_after = counted.resend_after;
        // A test number's code "goes" by the channel asked for, so a client
        // sees the answer it would in production.
        let Some(rendered) = rendered else {
            tracing::info!("test number: fixed code stored, no message sent");
            self.audit_sent(phone, request.client_key, None, request.channel, None);
            return Ok(self.sent_code(attempts_remaining, resend_after, request.channel));
        };
        match self.deliver(request, &code, &rendered).await {
            Ok(accepted) => {
                let spent = self.settle_spend(reserved.as_ref(), phone, &accepted).await;
                self.audit_sent(
                    phone,
                    request.client_key,
                    Some(accepted.provider),
                    accepted.channel,
                    spent,
                );
                Ok(self.sent_code(attempts_remaining, resend_after, accepted.channel))
            }
            Err(gateway_error) => {
                let provider = self.gateway.provider();
                let estimate = reserved.as_ref().map(|r| r.estimate.reserved);
                self.audit_send_failed(
                    phone,
                    request.client_key,
                    provider,
                    request.channel,
                    &gateway_error,
                    estimate,
                );
                self.undo_undelivered(subject, &digest, counted, reserved, phone, &gateway_error)
                    .await;
                Err(gateway_error.into())
            }
        }
    }

    /// The answer to a send that went out on `channel` (or was stored for a
    /// test number).
    fn sent_code(
        &self,
        attempts_remaining: u32,
        resend_after: Duration,
        channel: Channel,
    ) -> SentCode {
        SentCode {
            expires_in: self.policy.ttl,
            code_length: self.policy.code_length,
            attempts_remaining,
            resend_after,
            channel,
        }
    }

    /// Counts the send in the phone's, the caller's and the service's log,
    /// lets the pumping guard judge `prefix`, makes `digest` the pending
    /// code (replacing any pending code, keeping the spent guess budget) and
    /// reserves `spend`: one [`OtpStore::count_send_and_put_code`], which
    /// takes every count (and after a spend refusal the code) back itself if
    /// a step refuses. Returns the wrong guesses still allowed, the counts
    /// (to take back if the text cannot be sent) and what `spend` reserved.
    async fn count_and_store(
        &self,
        phone: &PhoneNumber,
        subject: &SubjectKey,
        request: &SendRequest<'_>,
        prefix: Option<&DestinationPrefix>,
        digest: &CodeDigest,
        spend: Option<SpendStep<'_>>,
    ) -> Result<(u32, CountedSends<'_>, Option<SpendReservation>), Error> {
        // Keyed once: the client's log and the guard's source both name it.
        let client = request
            .client_key
            .map(|client| self.secret.client_subject(client));
        let logs = self.send_logs(subject, client, request);
        let plan = SendPlan {
            logs: &logs,
            prefix: prefix.map(|prefix| {
                let source = self.send_source(client, request);
                self.guard.step(
                    prefix,
                    PrefixSender {
                        subject,
                        source,
                        sent_at_ms: None,
                    },
                )
            }),
            code: CodeToStore {
                subject,
                digest,
                lifetime: self.policy.code_lifetime(),
                max_attempts: self.policy.max_attempts,
            },
            spend,
        };
        let stored = match self.store.count_send_and_put_code(plan).await? {
            SendOutcome::Stored(stored) => stored,
            SendOutcome::Refused { violations } => {
                return Err(Error::RateLimited { violations });
            }
            SendOutcome::Suspended(suspension) => {
                return Err(match prefix {
                    Some(prefix) => self.guard.refusal(phone, prefix, suspension),
                    None => {
                        StoreError::Protocol("a suspension without a prefix step".into()).into()
                    }
                });
            }
            SendOutcome::Locked {
                retry_after,
                monitored,
            } => {
                self.report_monitored(phone, prefix, monitored);
                return Err(Error::Locked { retry_after });
            }
            SendOutcome::SpendRefused {
                refusals,
                monitored,
            } => {
                self.report_monitored(phone, prefix, monitored);
                return Err(SpendGuard::refused(refusals));
            }
        };
        self.report_monitored(phone, prefix, stored.monitored);
        let counted = CountedSends {
            store: self.store.as_ref(),
            counted: stored.counted,
            resend_after: stored.next_allowed_in,
            guard: &self.guard,
            prefix_send: prefix
                .zip(stored.prefix_token)
                .map(|(prefix, token)| PumpingGuard::counted(prefix, token)),
        };
        Ok((stored.attempts_remaining, counted, stored.spend))
    }

    /// The send's estimated price, with a prices file and a message to
    /// send: on `channel` and every channel its fallback may hand it to (the
    /// reservation covers the dearest); a destination without a price is
    /// refused before anything is counted.
    fn estimate_spend(
        &self,
        phone: &PhoneNumber,
        channel: Channel,
        rendered: Option<&Rendered<'_>>,
    ) -> Result<Option<Estimate>, Error> {
        let (Some(spend), Some(rendered)) = (&self.spend, rendered) else {
            return Ok(None);
        };
        let fallback = self.gateway.fallback_after(channel);
        let channels: Vec<Channel> = std::iter::once(channel)
            .chain(fallback.iter().copied())
            .collect();
        spend.estimate(phone, &rendered.text, &channels).map(Some)
    }

    /// The windows the send's estimate is reserved in, one per spend cap in
    /// force, the caller's own included (none without an estimate). The
    /// store reserves them after the counts and the code, so a send a send
    /// limit refuses never touches the spend ledgers.
    fn spend_windows(
        &self,
        request: &SendRequest<'_>,
        estimate: Option<&Estimate>,
    ) -> Vec<SpendWindow> {
        match (&self.spend, estimate) {
            (Some(spend), Some(_)) => spend.windows(request.caller.map(|caller| caller.name())),
            _ => Vec::new(),
        }
    }

    /// The send went out as `accepted` says: that provider's price on that
    /// channel is what was spent, the rest of the reservation goes back.
    /// Returns the spend.
    async fn settle_spend(
        &self,
        reserved: Option<&ReservedSpend>,
        phone: &PhoneNumber,
        accepted: &Accepted,
    ) -> Option<Micros> {
        let (Some(spend), Some(reserved)) = (&self.spend, reserved) else {
            return None;
        };
        Some(spend.settle(reserved, phone, accepted).await)
    }

    /// Undoes a reservation of a send that failed: given back when it
    /// surely was not sent, kept (and counted as spent) when it may have been.
    async fn unspend(&self, reserved: Option<&ReservedSpend>, phone: &PhoneNumber, sure: bool) {
        let (Some(spend), Some(reserved)) = (&self.spend, reserved) else {
            return;
        };
        if sure {
            spend.refund(reserved).await;
        } else {
            spend.keep_uncertain(reserved, phone);
        }
    }

    /// Reports a suspension `monitor` mode let the send through.
    fn report_monitored(
        &self,
        phone: &PhoneNumber,
        prefix: Option<&DestinationPrefix>,
        monitored: Option<PrefixSuspension>,
    ) {
        if let (Some(prefix), Some(suspension)) = (prefix, monitored) {
            self.guard.found_suspended(phone, prefix, suspension);
        }
    }

    /// Who asked for the send, as the pumping guard tells sources apart: the
    /// `client_key`, else the authenticated caller, else the anonymous one.
    fn send_source(&self, client: Option<SubjectKey>, request: &SendRequest<'_>) -> SendSource {
        match (client, request.caller) {
            (Some(client), _) => SendSource(client.tag()),
            (None, Some(caller)) => SendSource(self.secret.caller_source(caller.name()).tag()),
            (None, None) => SendSource::ANONYMOUS,
        }
    }

    /// The logs one send is counted in, with their rules; a log without
    /// rules (a limit turned off) is skipped. A send without a `client_key`
    /// counts in the one bucket every such send shares. `client` is the
    /// keyed `client_key`, if the request named one.
    fn send_logs(
        &self,
        subject: &SubjectKey,
        client: Option<SubjectKey>,
        request: &SendRequest<'_>,
    ) -> Vec<(SendLog, Vec<RateRule>)> {
        let limits = &self.abuse.limits;
        let mut logs = vec![(SendLog::Phone(*subject), limits.phone_rules())];
        logs.push(match client {
            Some(client) => (SendLog::Client(client), limits.client_rules()),
            None => (SendLog::Anonymous, limits.anonymous_rules()),
        });
        if let Some(caller) = request.caller {
            logs.push((
                SendLog::Caller(caller.name().to_owned()),
                limits.caller_rules(),
            ));
        }
        logs.push((SendLog::Global, limits.global_rules()));
        logs.retain(|(_, rules)| !rules.is_empty());
        logs
    }

    /// Undoes a send whose SMS failed: the code is discarded; the send is
    /// taken back from the limits only when it surely never reached a
    /// provider: one that may have gone out still counts, or a slow provider
    /// would let callers text a number without limit. The pumping guard's
    /// count goes either way: the code is discarded, so nobody could approve it.
    async fn undo_undelivered(
        &self,
        subject: &SubjectKey,
        digest: &CodeDigest,
        mut counted: CountedSends<'_>,
        reserved: Option<ReservedSpend>,
        phone: &PhoneNumber,
        error: &GatewayError,
    ) {
        let sure = error.surely_not_sent();
        // At once, as in `refund`: a hung store costs one timeout, not two.
        let take_back = async {
            if sure {
                counted.refund().await;
            } else {
                counted.refund_prefix_send().await;
            }
        };
        let spend = self.unspend(reserved.as_ref(), phone, sure);
        tokio::join!(self.discard_undelivered(subject, digest), take_back, spend);
    }

    /// Removes a code that was never delivered, unless a newer send replaced it.
    async fn discard_undelivered(&self, subject: &SubjectKey, digest: &CodeDigest) {
        if let Err(store_error) = self.store.discard_code(subject, digest).await {
            // The code stays stored but was never delivered; it expires
            // by itself and nobody knows it, so this is logged, not fatal.
            tracing::error!(error = %store_error, "could not discard an undelivered code");
        }
    }
}
