//! The pumping guard's counts per destination prefix, each prefix's under
//! its shard's lock; the lift times of the current suspensions and the
//! operators' exemptions, service-wide.

use std::{cmp::Reverse, sync::atomic::Ordering, time::Duration};

use super::state::{Shared, locked};
use crate::{
    abuse::{DestinationPrefix, PrefixRule},
    domain::SubjectKey,
    store::{
        PrefixDecision, PrefixExemption, PrefixSender, StoreError, SuspendedPrefix,
        prefix_window::SenderTags,
    },
};

fn tags(sender: PrefixSender<'_>) -> SenderTags {
    SenderTags {
        subject: u64::from_be_bytes(sender.subject.tag()),
        source: sender.source.as_u64(),
        sent_at_ms: sender.sent_at_ms,
    }
}

impl Shared {
    /// Twin of `lua/count_prefix_send.lua`, through `PrefixWindow::count_send`
    /// (`prefix_window.rs`).
    pub(super) fn count_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        rule: &PrefixRule,
        sender: PrefixSender<'_>,
    ) -> Result<PrefixDecision, StoreError> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut prefixes = self.prefixes.lock(prefix);
        // Read the clock under the lock, so each prefix's times stay in order.
        let now_ms = self.now_ms();
        let window = prefixes.entry(prefix.clone()).or_default();
        let decision = window.count_send(rule, now_ms, token, tags(sender));
        let newly_suspended = matches!(
            decision,
            PrefixDecision::Suspended {
                verdict: Some(_),
                ..
            }
        );
        if let Some(lifts_at) = window.suspended_until().filter(|_| newly_suspended) {
            // Still under the prefix's lock, so a count never sees the
            // suspension without its lift time. A prefix is never suspended
            // again while suspended, and a suspension ends by time or by an
            // operator's lift (which takes its entry out): the lift times
            // still ahead are exactly the suspended prefixes.
            locked(&self.suspensions).push(Reverse((lifts_at, prefix.clone())));
        }
        Ok(decision)
    }

    /// Twin of `lua/refund_send.lua` on the prefix's sends.
    pub(super) fn refund_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        token: &str,
    ) -> Result<(), StoreError> {
        let mut prefixes = self.prefixes.lock(prefix);
        if let (Ok(token), Some(window)) = (token.parse::<u64>(), prefixes.get_mut(prefix)) {
            window.refund(token);
        }
        Ok(())
    }

    /// Twin of `lua/count_prefix_approval.lua`.
    pub(super) fn count_prefix_approval(
        &self,
        prefix: &DestinationPrefix,
        subject: &SubjectKey,
        rule: &PrefixRule,
        sent_at_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut prefixes = self.prefixes.lock(prefix);
        let now_ms = self.now_ms();
        let counts = prefixes.entry(prefix.clone()).or_default();
        let subject = u64::from_be_bytes(subject.tag());
        counts.count_approval(rule, now_ms, subject, sent_at_ms);
        Ok(())
    }

    /// Twin of `lua/suspended_prefixes.lua`: the lift times still ahead, as
    /// its sorted set; `count_prefix_send` records each suspension as it
    /// decides it, so `newly` adds nothing here.
    pub(super) fn suspended_prefixes(
        &self,
        _newly: Option<(&DestinationPrefix, Duration)>,
    ) -> Result<u64, StoreError> {
        Ok(self.suspensions_in_force(self.now_ms()) as u64)
    }

    /// Forgets the suspensions lifted by `now_ms` and counts the rest (the
    /// sweeper calls it too, so lifted ones never pile up unread).
    pub(super) fn suspensions_in_force(&self, now_ms: u64) -> usize {
        let mut suspensions = locked(&self.suspensions);
        while suspensions
            .peek()
            .is_some_and(|Reverse((lifts_at, _))| *lifts_at <= now_ms)
        {
            suspensions.pop();
        }
        suspensions.len()
    }

    /// Twin of `lua/list_prefixes.lua` on the suspended list, then
    /// `lua/prefix_counts.lua` per prefix.
    pub(super) fn list_suspended_prefixes(
        &self,
        rule: &PrefixRule,
    ) -> Result<Vec<SuspendedPrefix>, StoreError> {
        let now_ms = self.now_ms();
        self.suspensions_in_force(now_ms);
        let mut listed: Vec<(u64, DestinationPrefix)> = locked(&self.suspensions)
            .iter()
            .map(|Reverse(entry)| entry.clone())
            .collect();
        listed.sort();
        Ok(listed
            .into_iter()
            .filter_map(|(lifts_at, prefix)| {
                let prefixes = self.prefixes.lock(&prefix);
                let window = prefixes.get(&prefix)?;
                let counts = window.counts(rule, now_ms);
                Some(SuspendedPrefix {
                    lift_in: Duration::from_millis(lifts_at.saturating_sub(now_ms)),
                    counts,
                    prefix: prefix.clone(),
                })
            })
            .collect())
    }

    /// Twin of `lua/lift_prefix.lua` (and the list's ZREM).
    pub(super) fn lift_prefix_suspension(
        &self,
        prefix: &DestinationPrefix,
    ) -> Result<bool, StoreError> {
        let mut prefixes = self.prefixes.lock(prefix);
        let now_ms = self.now_ms();
        let lifted = prefixes
            .get_mut(prefix)
            .is_some_and(|window| window.lift(now_ms));
        locked(&self.suspensions).retain(|Reverse((_, listed))| listed != prefix);
        Ok(lifted)
    }

    /// Twin of `lua/lift_prefix.lua` with an exemption (and the exemption
    /// list's ZADD/ZREM). Returns whether an exemption was in force; ending
    /// one when none is changes nothing.
    pub(super) fn exempt_prefix(
        &self,
        prefix: &DestinationPrefix,
        duration: Duration,
    ) -> Result<bool, StoreError> {
        let mut prefixes = self.prefixes.lock(prefix);
        let now_ms = self.now_ms();
        let until = (!duration.is_zero()).then(|| {
            now_ms.saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
        });
        let was_exempt = match until {
            Some(_) => prefixes
                .entry(prefix.clone())
                .or_default()
                .exempt(until, now_ms),
            // No entry for an ending: a prefix never counted was never exempt.
            None => prefixes
                .get_mut(prefix)
                .is_some_and(|window| window.exempt(None, now_ms)),
        };
        if until.is_none() && !was_exempt {
            return Ok(false);
        }
        locked(&self.suspensions).retain(|Reverse((_, listed))| listed != prefix);
        let mut exemptions = locked(&self.exemptions);
        match until {
            Some(until) => exemptions.insert(prefix.clone(), until),
            None => exemptions.remove(prefix),
        };
        Ok(was_exempt)
    }

    /// Twin of `lua/list_prefixes.lua` on the exemption list.
    pub(super) fn list_prefix_exemptions(&self) -> Result<Vec<PrefixExemption>, StoreError> {
        let now_ms = self.now_ms();
        let mut exemptions = locked(&self.exemptions);
        exemptions.retain(|_, until| *until > now_ms);
        let mut listed: Vec<PrefixExemption> = exemptions
            .iter()
            .map(|(prefix, until)| PrefixExemption {
                prefix: prefix.clone(),
                ends_in: Duration::from_millis(until - now_ms),
            })
            .collect();
        listed.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        Ok(listed)
    }
}
