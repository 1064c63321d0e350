//! The SMS-pumping guard at work in the flow: the step of each send that
//! asks the store for a verdict on its destination prefix (one atomic script
//! per decision, within the send's store call), refuses a suspended prefix
//! (`enforce`) or only reports it (`monitor`),
//! takes back sends whose code was never delivered, counts approvals without
//! ever slowing or failing a verification, and keeps the suspended-prefix
//! gauge current. The rules themselves are in `abuse/pumping.rs`.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use crate::{
    abuse::{DestinationPrefix, GuardMode, PrefixRule, PumpingGuardSettings},
    domain::{PhoneNumber, SubjectKey},
    error::Error,
    metrics,
    store::{
        OtpStore, PrefixSender, PrefixStep, PrefixSuspension, PrefixVerdict, take_back_prefix_send,
    },
};

/// How often each replica re-reads how many prefixes are suspended, so the
/// gauge also falls when suspensions lift (a Prometheus scrape interval).
const GAUGE_REFRESH: Duration = Duration::from_secs(15);

/// The guard, shared by every call of one [`crate::otp::OtpFlow`].
pub struct PumpingGuard {
    settings: PumpingGuardSettings,
    rule: PrefixRule,
    store: Arc<dyn OtpStore>,
}

/// A send counted for its destination prefix; taken back with
/// [`PumpingGuard::refund`] if its code is never delivered.
#[derive(Debug)]
pub struct CountedPrefixSend {
    prefix: DestinationPrefix,
    token: String,
}

impl CountedPrefixSend {
    /// The prefix and token the store takes the count back by.
    pub fn refund_key(&self) -> (&DestinationPrefix, &str) {
        (&self.prefix, &self.token)
    }
}

impl PumpingGuard {
    /// A guard judging sends once their code (living `code_lifetime`) can no
    /// longer be approved. Unless off, it keeps the suspended-prefix gauge
    /// current until the store is dropped; must run inside a Tokio runtime.
    pub fn new(
        settings: PumpingGuardSettings,
        code_lifetime: Duration,
        store: Arc<dyn OtpStore>,
    ) -> Self {
        if settings.mode != GuardMode::Off {
            tokio::spawn(refresh_suspended_gauge(Arc::downgrade(&store)));
        }
        Self {
            rule: settings.rule(code_lifetime),
            settings,
            store,
        }
    }

    /// The prefix a send to `phone` is judged on, `None` while the guard is
    /// off (nothing is counted).
    pub fn prefix_to_judge(&self, phone: &PhoneNumber) -> Option<DestinationPrefix> {
        (self.settings.mode != GuardMode::Off).then(|| self.settings.prefix_of(phone))
    }

    /// The guard's step of a send (see [`SendPlan`](crate::store::SendPlan)):
    /// the store counts the send for `prefix`, or finds it suspended, which
    /// refuses the send only in `enforce` (`monitor` lets it through
    /// uncounted). A store failure fails the send, as every other rule does.
    pub fn step<'a>(
        &'a self,
        prefix: &'a DestinationPrefix,
        sender: PrefixSender<'a>,
    ) -> PrefixStep<'a> {
        PrefixStep {
            prefix,
            rule: &self.rule,
            refuse_suspended: self.settings.mode == GuardMode::Enforce,
            sender,
        }
    }

    /// The send counted for `prefix` with `token`, for [`PumpingGuard::refund`].
    pub fn counted(prefix: &DestinationPrefix, token: String) -> CountedPrefixSend {
        CountedPrefixSend {
            prefix: prefix.clone(),
            token,
        }
    }

    /// The refusal of a send to `phone` whose `prefix` the step found
    /// suspended (`enforce`), reported first if this call suspended it.
    pub fn refusal(
        &self,
        phone: &PhoneNumber,
        prefix: &DestinationPrefix,
        suspension: PrefixSuspension,
    ) -> Error {
        self.found_suspended(phone, prefix, suspension);
        Error::DestinationSuspended {
            prefix: prefix.clone(),
            retry_after: suspension.lift_in,
        }
    }

    /// Reports a suspension of `prefix` the step found, if this very call
    /// suspended it (in `monitor` the send goes on).
    pub fn found_suspended(
        &self,
        phone: &PhoneNumber,
        prefix: &DestinationPrefix,
        suspension: PrefixSuspension,
    ) {
        if let Some(verdict) = suspension.verdict {
            self.report_suspension(phone, prefix, suspension.lift_in, verdict);
        }
    }

    /// Takes back a counted send whose code was never delivered: nobody could
    /// have approved it, and counting it would read a failing gateway as pumping.
    pub async fn refund(&self, counted: CountedPrefixSend) {
        take_back_prefix_send(self.store.as_ref(), &counted.prefix, &counted.token).await;
    }

    /// Counts the approval of `phone`'s code (its own send becomes an
    /// approved one, the number trusted) in the background: a verification
    /// is never slowed or failed by the guard. A failed write is logged and
    /// counted (`otp_pumping_guard_errors_total`).
    /// `sent_at_ms`: when the approved code was sent, as the store said
    /// ([`crate::store::VerifyOutcome::Approved`]).
    pub fn count_approval(
        &self,
        phone: &PhoneNumber,
        subject: &SubjectKey,
        sent_at_ms: Option<u64>,
    ) {
        if self.settings.mode == GuardMode::Off {
            return;
        }
        let prefix = self.settings.prefix_of(phone);
        let (rule, subject) = (self.rule, *subject);
        let store = Arc::clone(&self.store);
        // Not in the call's span: its masked number beside the prefix would
        // show most of the number.
        tokio::spawn(async move {
            if let Err(err) = store
                .count_prefix_approval(&prefix, &subject, &rule, sent_at_ms)
                .await
            {
                tracing::warn!(error = %err, prefix = %prefix, "could not count an approval for the pumping guard");
                metrics::pumping_guard_failed("count_prefix_approval");
            }
        });
    }

    /// Counts a suspension this replica decided, then logs it and records
    /// it in the service-wide list behind the gauge on a task of its own:
    /// off the call's path, and outside the call's span, whose masked number
    /// beside the prefix would show most of the number.
    fn report_suspension(
        &self,
        phone: &PhoneNumber,
        prefix: &DestinationPrefix,
        lift_in: Duration,
        verdict: PrefixVerdict,
    ) {
        let country = phone.region().unwrap_or("unknown").to_owned();
        metrics::pumping_suspension(&country);
        let (store, prefix, mode) = (Arc::clone(&self.store), prefix.clone(), self.settings.mode);
        tokio::spawn(async move {
            let what = match mode {
                GuardMode::Enforce => "destination prefix suspended",
                GuardMode::Monitor | GuardMode::Off => {
                    "destination prefix would be suspended (monitor mode: sends continue)"
                }
            };
            tracing::warn!(
                prefix = %prefix,
                country,
                judged_sends = verdict.judged,
                approved = verdict.approved,
                lift_in_secs = lift_in.as_secs(),
                mode = mode.as_str(),
                "{what}: too few codes sent there were verified (suspected SMS pumping)"
            );
            match store.suspended_prefixes(Some((&prefix, lift_in))).await {
                Ok(suspended) => metrics::pumping_suspended_prefixes(suspended),
                Err(err) => {
                    tracing::warn!(error = %err, "could not list a suspended prefix");
                    metrics::pumping_guard_failed("suspended_prefixes");
                }
            }
        });
    }
}

/// Re-reads the service-wide count of suspended prefixes every
/// [`GAUGE_REFRESH`], until the store is dropped. A failed read is skipped:
/// store outages are reported by the health check.
async fn refresh_suspended_gauge(store: Weak<dyn OtpStore>) {
    let mut ticks = tokio::time::interval(GAUGE_REFRESH);
    loop {
        ticks.tick().await;
        let Some(store) = store.upgrade() else {
            return;
        };
        if let Ok(suspended) = store.suspended_prefixes(None).await {
            metrics::pumping_suspended_prefixes(suspended);
        }
    }
}
