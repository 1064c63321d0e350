//! The pumping guard's counts per destination prefix, all in one map under
//! one mutex (a few thousand prefixes at most).

use std::{sync::atomic::Ordering, time::Duration};

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
        let mut prefixes = locked(&self.prefixes);
        // Read the clock under the lock, so each prefix's times stay in order.
        let now_ms = self.now_ms();
        let window = prefixes.entry(prefix.clone()).or_default();
        Ok(window.count_send(rule, now_ms, token))
    }

    /// Twin of `lua/refund_send.lua` on the prefix's sends.
    pub(super) fn refund_prefix_send(
        &self,
        prefix: &DestinationPrefix,
        token: &str,
    ) -> Result<(), StoreError> {
        let mut prefixes = locked(&self.prefixes);
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
        let mut prefixes = locked(&self.prefixes);
        let now_ms = self.now_ms();
        let counts = prefixes.entry(prefix.clone()).or_default();
        counts.count_approval(window, now_ms);
        Ok(())
    }

    /// Twin of `lua/suspended_prefixes.lua`; here every prefix is in one map,
    /// so the suspension itself is the record and `newly` adds nothing.
    pub(super) fn suspended_prefixes(
        &self,
        _newly: Option<(&DestinationPrefix, Duration)>,
    ) -> Result<u64, StoreError> {
        let prefixes = locked(&self.prefixes);
        let now_ms = self.now_ms();
        let suspended = prefixes.values().filter(|w| w.is_suspended(now_ms)).count();
        Ok(suspended as u64)
    }
}
