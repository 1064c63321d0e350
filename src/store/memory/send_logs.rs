//! The send logs behind the rate limits: the sliding log of `sliding_log.rs`,
//! one mutex-held block on the log's shard per call.

use std::sync::atomic::Ordering;

use super::state::{SendLogEntry, Shared};
use crate::{
    abuse::RateRule,
    store::{
        SendDecision, SendLog, StoreError,
        sliding_log::{self, SendTimes},
    },
};

impl Shared {
    /// Twin of `lua/record_send.lua` and, for a number's and a client's
    /// log, `lua/record_packed_send.lua`: all are the sliding log of
    /// `sliding_log.rs`, counted only if every rule admits the send.
    pub(super) fn record_send(
        &self,
        log: &SendLog,
        rules: &[RateRule],
    ) -> Result<SendDecision, StoreError> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let longest = rules
            .iter()
            .map(|rule| u64::try_from(rule.period.as_millis()).unwrap_or(u64::MAX))
            .max()
            .unwrap_or(0);
        let mut sends = self.sends.lock(log);
        if !self.sends.has_room(&sends, log) {
            return Err(StoreError::Full);
        }
        // Read the clock under the lock, so each log's times stay in order.
        let now_ms = self.now_ms();
        // Room for one send: most logs (one phone's, one client's) never
        // hold more, and a first push would reserve four (64 bytes against
        // 16; 1.9 MiB with 40 000 phones); busier logs grow by doubling.
        let entry = sends.entry(log.clone()).or_insert_with(|| SendLogEntry {
            times: SendTimes::with_capacity(1),
            keep_for_ms: 0,
        });
        entry.keep_for_ms = entry.keep_for_ms.max(longest);
        Ok(sliding_log::record(&mut entry.times, rules, now_ms, token))
    }

    /// Twin of `lua/refund_send.lua` and `lua/refund_packed_send.lua`: an
    /// unknown token is ignored.
    pub(super) fn refund_send(&self, log: &SendLog, token: &str) -> Result<(), StoreError> {
        let Ok(token) = token.parse::<u64>() else {
            return Ok(());
        };
        if let Some(entry) = self.sends.lock(log).get_mut(log) {
            sliding_log::refund(&mut entry.times, token);
        }
        Ok(())
    }
}
