//! The pumping guard's counts per destination prefix, each prefix's under
//! its shard's lock, and the lift times of the current suspensions.

use std::{cmp::Reverse, sync::atomic::Ordering, time::Duration};

use super::state::{Shared, locked};
use crate::{
    abuse::{DestinationPrefix, PrefixRule},
    store::{PrefixDecision, StoreError},
};

impl Shared {
    /// Twin of `lua/count_prefix_send.lua`, through `PrefixWindow::count_send`
    /// (`prefix_window.rs`).
    pub(super) fn count_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        rule: &PrefixRule,
    ) -> Result<PrefixDecision, StoreError> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let mut prefixes = self.prefixes.lock(prefix);
        // Read the clock under the lock, so each prefix's times stay in order.
        let now_ms = self.now_ms();
        let window = prefixes.entry(prefix.clone()).or_default();
        let decision = window.count_send(rule, now_ms, token);
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
            // again while suspended, and a suspension only ends by time:
            // the lift times still ahead are exactly the suspended prefixes.
            locked(&self.suspensions).push(Reverse(lifts_at));
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
        window: Duration,
    ) -> Result<(), StoreError> {
        let mut prefixes = self.prefixes.lock(prefix);
        let now_ms = self.now_ms();
        let counts = prefixes.entry(prefix.clone()).or_default();
        counts.count_approval(window, now_ms);
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
            .is_some_and(|Reverse(lifts_at)| *lifts_at <= now_ms)
        {
            suspensions.pop();
        }
        suspensions.len()
    }
}

/// The admin API's view of the prefixes (twins of the Lua scripts in
/// `redis/pumping.rs`'s admin calls).
impl Shared {
    pub(super) fn list_suspended_prefixes(
        &self,
        _rule: &PrefixRule,
    ) -> Result<Vec<crate::store::SuspendedPrefix>, StoreError> {
        Err(StoreError::Protocol("not implemented yet".into()))
    }

    pub(super) fn lift_prefix_suspension(
        &self,
        _prefix: &DestinationPrefix,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Protocol("not implemented yet".into()))
    }

    pub(super) fn exempt_prefix(
        &self,
        _prefix: &DestinationPrefix,
        _duration: Duration,
    ) -> Result<(), StoreError> {
        Err(StoreError::Protocol("not implemented yet".into()))
    }

    pub(super) fn list_prefix_exemptions(
        &self,
    ) -> Result<Vec<crate::store::PrefixExemption>, StoreError> {
        Err(StoreError::Protocol("not implemented yet".into()))
    }
}
