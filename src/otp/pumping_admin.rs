//! The operator's hand on the pumping guard (the admin API's policy): list
//! the suspended and the exempt prefixes, lift a suspension, exempt a prefix
//! for a bounded time or end its exemption. Each change is one store call,
//! so it holds for every replica at once, and leaves three traces: a log
//! line (who, which prefix, what), `otp_admin_actions_total{action,result}`
//! and, when it changed something, an audit event. Who may act is decided
//! before this is reached (`auth`); nothing here knows gRPC. How long an
//! exemption may last is a rule (`abuse/exemption.rs`).

use std::{sync::Arc, time::Duration};

use super::OtpFlow;
use crate::{
    abuse::{DestinationPrefix, ExemptionPeriod, PrefixRule},
    error::Error as FlowError,
    events::{AuditEvent, EventKind, EventSink},
    metrics::{self, timed_store},
    store::{OtpStore, PrefixExemption, StoreError, SuspendedPrefix},
};

/// An operator's change, as logs, metrics and events name it.
#[derive(Debug, Clone, Copy)]
enum Action {
    LiftSuspension,
    Exempt(ExemptionPeriod),
    EndExemption,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::LiftSuspension => "lift_suspension",
            Self::Exempt(_) => "exempt_prefix",
            Self::EndExemption => "end_exemption",
        }
    }

    fn event_kind(self) -> EventKind {
        match self {
            Self::LiftSuspension => EventKind::PrefixSuspensionLifted,
            Self::Exempt(_) => EventKind::PrefixExempted,
            Self::EndExemption => EventKind::PrefixExemptionEnded,
        }
    }
}

/// The admin API's operations on the guard's prefixes, over the flow's
/// store, rule and event sink. Cheap to make ([`OtpFlow::pumping_admin`]).
pub struct PumpingAdmin {
    store: Arc<dyn OtpStore>,
    /// The guard's rule, so listed counts are judged as the guard judges them.
    rule: PrefixRule,
    events: EventSink,
}

impl OtpFlow {
    /// The operator's hand on this flow's pumping guard.
    pub fn pumping_admin(&self) -> PumpingAdmin {
        PumpingAdmin {
            store: Arc::clone(&self.store),
            rule: self.abuse.pumping_guard.rule(self.policy.code_lifetime()),
            events: self.events.clone(),
        }
    }
}

impl PumpingAdmin {
    /// Every prefix suspended now, service-wide, soonest to lift first.
    pub async fn suspended(&self) -> Result<Vec<SuspendedPrefix>, FlowError> {
        let mut suspended = timed_store(
            "list_suspended_prefixes",
            self.store.list_suspended_prefixes(&self.rule),
        )
        .await?;
        suspended.sort_by(|a, b| {
            a.lift_in
                .cmp(&b.lift_in)
                .then(a.prefix.as_str().cmp(b.prefix.as_str()))
        });
        tracing::debug!(count = suspended.len(), "suspended prefixes listed");
        Ok(suspended)
    }

    /// Every prefix exempt now, service-wide, soonest to end first.
    pub async fn exemptions(&self) -> Result<Vec<PrefixExemption>, FlowError> {
        let mut exempt = timed_store(
            "list_prefix_exemptions",
            self.store.list_prefix_exemptions(),
        )
        .await?;
        exempt.sort_by(|a, b| {
            a.ends_in
                .cmp(&b.ends_in)
                .then(a.prefix.as_str().cmp(b.prefix.as_str()))
        });
        tracing::debug!(count = exempt.len(), "prefix exemptions listed");
        Ok(exempt)
    }

    /// Lifts `prefix`'s suspension for every replica, on `operator`'s word.
    /// Returns whether it was suspended (if not, nothing changed and no
    /// event is written).
    pub async fn lift(
        &self,
        operator: &str,
        prefix: &DestinationPrefix,
    ) -> Result<bool, FlowError> {
        let lifted = timed_store(
            "lift_prefix_suspension",
            self.store.lift_prefix_suspension(prefix),
        )
        .await;
        self.record(
            Action::LiftSuspension,
            operator,
            prefix,
            lifted.as_ref().copied(),
        );
        Ok(lifted?)
    }

    /// Exempts `prefix` from the guard for `period` (lifting any
    /// suspension) for every replica, on `operator`'s word.
    pub async fn exempt(
        &self,
        operator: &str,
        prefix: &DestinationPrefix,
        period: ExemptionPeriod,
    ) -> Result<(), FlowError> {
        let exempted = timed_store(
            "exempt_prefix",
            self.store.exempt_prefix(prefix, period.duration()),
        )
        .await;
        // Exempting always sets a new end, so it always changes something.
        self.record(
            Action::Exempt(period),
            operator,
            prefix,
            exempted.as_ref().map(|_| true),
        );
        exempted?;
        Ok(())
    }

    /// Ends `prefix`'s exemption now for every replica, on `operator`'s word.
    /// Returns whether it was exempt (if not, nothing changed and no event
    /// is written).
    pub async fn end_exemption(
        &self,
        operator: &str,
        prefix: &DestinationPrefix,
    ) -> Result<bool, FlowError> {
        // A zero length is how the store ends an exemption; it answers
        // whether one was in force.
        let ended = timed_store(
            "exempt_prefix",
            self.store.exempt_prefix(prefix, Duration::ZERO),
        )
        .await;
        self.record(
            Action::EndExemption,
            operator,
            prefix,
            ended.as_ref().copied(),
        );
        Ok(ended?)
    }

    /// The log line, the metric and (for a change) the audit event of one
    /// action; `outcome`: whether it changed something, or the store's error.
    fn record(
        &self,
        action: Action,
        operator: &str,
        prefix: &DestinationPrefix,
        outcome: Result<bool, &StoreError>,
    ) {
        let duration_seconds = match action {
            Action::Exempt(period) => Some(period.duration().as_secs()),
            Action::LiftSuspension | Action::EndExemption => None,
        };
        let changed = match outcome {
            Ok(changed) => changed,
            Err(err) => {
                tracing::warn!(
                    admin.action = action.as_str(),
                    operator,
                    prefix = %prefix,
                    duration_seconds,
                    error = %err,
                    "admin action failed"
                );
                metrics::admin_action(action.as_str(), "failed");
                return;
            }
        };
        tracing::info!(
            admin.action = action.as_str(),
            operator,
            prefix = %prefix,
            duration_seconds,
            changed,
            "admin action"
        );
        metrics::admin_action(action.as_str(), if changed { "done" } else { "no_change" });
        if changed {
            self.events.emit(|| {
                let mut event = AuditEvent::about_prefix(action.event_kind(), prefix, operator);
                event.duration_seconds = duration_seconds;
                event
            });
        }
    }
}
