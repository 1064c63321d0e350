//! The send logs behind the rate limits: the sliding log of `sliding_log.rs`,
//! one mutex-held block on the log's shard per call. A number's log lives
//! in its record (`state.rs`), a client's in its own packed log
//! (`packed_log.rs`), the shared ones as plain lists of times.

use std::sync::atomic::Ordering;

use super::{
    packed_log::{self, PackedLog},
    state::{SendLogEntry, Shared},
    ticks::SPAN_MS,
};
use crate::{
    abuse::RateRule,
    domain::SubjectKey,
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
        let longest = sliding_log::longest_period_ms(rules);
        // A packed log holds its times in 32 bits and is rewritten on every
        // send: for rules within a tick's span and a few hundred sends (the
        // configuration allows no longer window; a daily limit to 10 000
        // or a client limit to 100 000 is kept as a plain list instead).
        let most_sends = rules.iter().map(|rule| rule.limit).max().unwrap_or(0);
        let packed = longest < SPAN_MS
            && usize::try_from(most_sends).is_ok_and(|most| most <= packed_log::MAX_SENDS);
        match log {
            SendLog::Phone(subject) if packed => self.record_number_send(subject, rules, token),
            SendLog::Client(client) if packed => self.record_client_send(client, rules, token),
            _ => self.record_shared_send(log, rules, longest, token),
        }
    }

    fn record_number_send(
        &self,
        subject: &SubjectKey,
        rules: &[RateRule],
        token: u64,
    ) -> Result<SendDecision, StoreError> {
        let mut numbers = self.numbers.lock(subject);
        if !self.numbers.has_room(&numbers, subject) {
            return Err(StoreError::Full);
        }
        // Read the clock under the lock, so each log's times stay in order.
        let now_ms = self.now_ms();
        let record = numbers.entry(*subject).or_default();
        Ok(record.log.record(rules, now_ms, token))
    }

    fn record_client_send(
        &self,
        client: &SubjectKey,
        rules: &[RateRule],
        token: u64,
    ) -> Result<SendDecision, StoreError> {
        let mut clients = self.clients.lock(client);
        if !self.clients.has_room(&clients, client) {
            return Err(StoreError::Full);
        }
        let now_ms = self.now_ms();
        let log = clients.entry(*client).or_default();
        Ok(log.record(rules, now_ms, token))
    }

    fn record_shared_send(
        &self,
        log: &SendLog,
        rules: &[RateRule],
        longest: u64,
        token: u64,
    ) -> Result<SendDecision, StoreError> {
        let mut sends = self.sends.lock(log);
        if !self.sends.has_room(&sends, log) {
            return Err(StoreError::Full);
        }
        let now_ms = self.now_ms();
        // Room for one send: most logs never hold more, and a first push
        // would reserve four; busier logs grow by doubling.
        let entry = sends.entry(log.clone()).or_insert_with(|| SendLogEntry {
            times: SendTimes::with_capacity(1),
            keep_for_ms: 0,
        });
        entry.keep_for_ms = entry.keep_for_ms.max(longest);
        Ok(sliding_log::record(&mut entry.times, rules, now_ms, token))
    }

    /// The newest send of `subject`'s log when it is kept as a plain list
    /// (its rules too large to pack), ms on the store's clock.
    pub(super) fn newest_listed_send(&self, subject: &SubjectKey) -> Option<u64> {
        let log = SendLog::Phone(*subject);
        let sends = self.sends.lock(&log);
        sends
            .get(&log)
            .and_then(|entry| entry.times.iter().map(|(at, _)| *at).max())
    }

    /// Twin of `lua/refund_send.lua` and `lua/refund_packed_send.lua`: an
    /// unknown token is ignored.
    pub(super) fn refund_send(&self, log: &SendLog, token: &str) -> Result<(), StoreError> {
        if packed_log::is_packed_token(token) {
            match log {
                SendLog::Phone(subject) => {
                    if let Some(record) = self.numbers.lock(subject).get_mut(subject) {
                        record.log.refund(token);
                    }
                }
                SendLog::Client(client) => {
                    if let Some(log) = self.clients.lock(client).get_mut(client) {
                        PackedLog::refund(log, token);
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        let Ok(token) = token.parse::<u64>() else {
            return Ok(());
        };
        if let Some(entry) = self.sends.lock(log).get_mut(log) {
            sliding_log::refund(&mut entry.times, token);
        }
        Ok(())
    }
}
