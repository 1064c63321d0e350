//! Spend ledgers in memory: every window of one decision under one lock
//! (the service's and a caller's ledgers share it, so a reservation in
//! several windows is one step), running `spend_window.rs`.

use std::time::Duration;

use super::state::{Shared, locked};
use crate::{
    spend::Micros,
    store::{
        StoreError,
        spend_window::{self, SpendDecision, SpendRefusal, SpendReservation, SpendWindow},
    },
};

impl Shared {
    /// Twin of `lua/reserve_spend.lua`: counts `amount` in every window, or,
    /// if any would cross its limit, in none and says which refused.
    pub(super) fn reserve_spend(
        &self,
        amount: Micros,
        windows: &[SpendWindow],
    ) -> Result<SpendDecision, StoreError> {
        let mut ledgers = locked(&self.spend);
        // Read the clock under the lock, so buckets fill in time order.
        let now_ms = self.now_ms();
        let mut buckets = Vec::with_capacity(windows.len());
        let mut refusals = Vec::new();
        for window in windows {
            let ledger = ledgers
                .entry((window.ledger.clone(), window.period))
                .or_default();
            match spend_window::check(ledger, window.period, window.limit, amount, now_ms) {
                Ok(bucket) => buckets.push((window.ledger.clone(), window.period, bucket)),
                Err(retry_after) => refusals.push(SpendRefusal {
                    cap: window.cap,
                    retry_after,
                }),
            }
        }
        if !refusals.is_empty() {
            return Ok(SpendDecision::Refused { refusals });
        }
        for (ledger, period, bucket) in &buckets {
            if let Some(ledger) = ledgers.get_mut(&(ledger.clone(), *period)) {
                spend_window::reserve(ledger, *bucket, amount);
            }
        }
        Ok(SpendDecision::Reserved(SpendReservation {
            amount,
            buckets,
        }))
    }

    /// Twin of `lua/refund_spend.lua`: gives `amount` back in each bucket
    /// still kept.
    pub(super) fn refund_spend(
        &self,
        reservation: &SpendReservation,
        amount: Micros,
    ) -> Result<(), StoreError> {
        let mut ledgers = locked(&self.spend);
        for (ledger, period, bucket) in &reservation.buckets {
            if let Some(ledger) = ledgers.get_mut(&(ledger.clone(), *period)) {
                spend_window::refund(ledger, *bucket, amount);
            }
        }
        Ok(())
    }

    /// Forgets ledgers with nothing left in their window (the sweeper's part).
    pub(super) fn sweep_spend(&self, now_ms: u64) -> usize {
        let mut ledgers = locked(&self.spend);
        let before = ledgers.len();
        ledgers.retain(|(_, period), buckets| !spend_window::is_idle(buckets, *period, now_ms));
        before - ledgers.len()
    }
}

/// A ledger's key in memory: whose spend, over which period.
pub(super) type LedgerKey = (crate::store::spend_window::SpendLedger, Duration);
