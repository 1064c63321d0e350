//! A number's or a `client_key`'s send log, packed (issue 30): one heap
//! block of exactly its size (a boxed byte slice: 16 bytes inline, where a
//! `VecDeque` and its own end time took 40, and no spare room), holding the time the whole log may be forgotten (4 bytes) and 6 bytes a
//! send (a 32-bit time and a 16-bit tag); an empty log holds no block. The
//! sliding log of `sliding_log.rs` runs on it unchanged. Twin of the packed
//! logs of `lua/record_packed_send.lua` and `lua/refund_packed_send.lua`,
//! whose tokens are likewise a send's time and a short tag.
//!
//! Every send rewrites the block (a copy of the log): fine for the logs it
//! serves, whose rules cap them at [`MAX_SENDS`] (`send_logs.rs` keeps a
//! busier log as a plain list).

use crate::{
    abuse::RateRule,
    store::{
        SendDecision,
        sliding_log::{self, LoggedSends},
    },
};

use super::ticks::{Tick, left_until, tick, tick_after, time_of};

/// Bytes of a send and of the log's own end time.
const SEND_BYTES: usize = 6;
const UNTIL_BYTES: usize = 4;

/// Most sends a packed log is used for: a log never holds more sends than
/// its rules' largest limit, and each send copies the log (6 KB at most).
pub(super) const MAX_SENDS: usize = 1_000;

/// One logged send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PackedSend {
    /// Its [`Tick`].
    at: Tick,
    /// The low 16 bits of the store's send token: tells apart two sends
    /// logged in one millisecond, so a refund takes back only its own.
    tag: u16,
}

impl PackedSend {
    fn to_bytes(self) -> [u8; SEND_BYTES] {
        let [a, b, c, d] = self.at.to_le_bytes();
        let [e, f] = self.tag.to_le_bytes();
        [a, b, c, d, e, f]
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let byte = |i: usize| bytes.get(i).copied().unwrap_or(0);
        Self {
            at: Tick::from_le_bytes([byte(0), byte(1), byte(2), byte(3)]),
            tag: u16::from_le_bytes([byte(4), byte(5)]),
        }
    }
}

/// Sends oldest first, with the time nothing logged counts any more (the
/// newest send plus the longest rule period seen).
#[derive(Debug, Default)]
pub(super) struct PackedLog(Box<[u8]>);

impl PackedLog {
    fn sends(&self) -> &[u8] {
        self.0.get(UNTIL_BYTES..).unwrap_or_default()
    }

    fn count(&self) -> usize {
        self.sends().len() / SEND_BYTES
    }

    fn send(&self, index: usize) -> Option<PackedSend> {
        let at = index * SEND_BYTES;
        self.sends()
            .get(at..at + SEND_BYTES)
            .map(PackedSend::from_bytes)
    }

    fn until(&self) -> Option<Tick> {
        let bytes = self.0.get(..UNTIL_BYTES)?;
        Some(Tick::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3],
        ]))
    }

    /// Replaces the log with `until` and `sends` (no block when none).
    fn rebuild(&mut self, until: Tick, sends: impl Iterator<Item = PackedSend>) {
        let mut data = Vec::with_capacity(UNTIL_BYTES + (self.count() + 1) * SEND_BYTES);
        data.extend_from_slice(&until.to_le_bytes());
        for send in sends {
            data.extend_from_slice(&send.to_bytes());
        }
        if data.len() == UNTIL_BYTES {
            data.clear();
        }
        self.0 = data.into_boxed_slice();
    }

    fn set_until(&mut self, until: Tick) {
        if let Some(bytes) = self.0.get_mut(..UNTIL_BYTES) {
            bytes.copy_from_slice(&until.to_le_bytes());
        }
    }

    /// Whether a rule may still count a send of this log.
    pub(super) fn is_live(&self, now_ms: u64) -> bool {
        self.until()
            .is_some_and(|until| left_until(until, now_ms).is_some())
    }

    /// [`sliding_log::record`] on this log at `now_ms`.
    pub(super) fn record(&mut self, rules: &[RateRule], now_ms: u64, token: u64) -> SendDecision {
        let decision = sliding_log::record(&mut AtNow { log: self, now_ms }, rules, now_ms, token);
        if let Some(newest) = self.count().checked_sub(1).and_then(|at| self.send(at)) {
            let keep = (time_of(newest.at, now_ms) + sliding_log::longest_period_ms(rules))
                .saturating_sub(now_ms);
            let kept = self
                .until()
                .and_then(|until| left_until(until, now_ms))
                .unwrap_or(0);
            self.set_until(tick_after(now_ms, keep.max(kept)));
        }
        decision
    }

    /// Takes back the send `token` (from [`PackedLog::record`]) names, if
    /// it is still logged; any other token is ignored.
    pub(super) fn refund(&mut self, token: &str) {
        let Some(refunded) = parse_token(token) else {
            return;
        };
        // From the newest end: a refund follows its send closely.
        let Some(index) = (0..self.count())
            .rev()
            .find(|at| self.send(*at) == Some(refunded))
        else {
            return;
        };
        let until = self.until().unwrap_or_default();
        let sends: Vec<PackedSend> = (0..self.count())
            .filter(|at| *at != index)
            .filter_map(|at| self.send(at))
            .collect();
        self.rebuild(until, sends.into_iter());
    }
}

/// Whether `token` is one a packed log gave (`<tick>:<tag>`), not a shared log's.
pub(super) fn is_packed_token(token: &str) -> bool {
    parse_token(token).is_some()
}

fn parse_token(token: &str) -> Option<PackedSend> {
    let (at, tag) = token.split_once(':')?;
    Some(PackedSend {
        at: at.parse().ok()?,
        tag: tag.parse().ok()?,
    })
}

/// A packed log read at one instant: its ticks as full times.
struct AtNow<'a> {
    log: &'a mut PackedLog,
    now_ms: u64,
}

impl LoggedSends for AtNow<'_> {
    fn count(&self) -> usize {
        self.log.count()
    }

    fn sent_at(&self, index: usize) -> u64 {
        self.log
            .send(index)
            .map_or(u64::MAX, |send| time_of(send.at, self.now_ms))
    }

    fn forget_oldest(&mut self, count: usize) {
        if count > 0 {
            let until = self.log.until().unwrap_or_default();
            let kept: Vec<PackedSend> = (count..self.log.count())
                .filter_map(|at| self.log.send(at))
                .collect();
            self.log.rebuild(until, kept.into_iter());
        }
    }

    fn log(&mut self, at_ms: u64, token: u64) -> String {
        let [low, high, ..] = token.to_le_bytes();
        let sent = PackedSend {
            at: tick(at_ms),
            tag: u16::from_le_bytes([low, high]),
        };
        let until = self.log.until().unwrap_or_else(|| tick(at_ms));
        let logged: Vec<PackedSend> = (0..self.log.count())
            .filter_map(|at| self.log.send(at))
            .chain([sent])
            .collect();
        self.log.rebuild(until, logged.into_iter());
        format!("{}:{}", sent.at, sent.tag)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::abuse::LimitKind;

    fn rules(limit: u32, secs: u64) -> [RateRule; 1] {
        [RateRule {
            kind: LimitKind::PhoneWindow,
            limit,
            period: Duration::from_secs(secs),
        }]
    }

    fn token(decision: &SendDecision) -> String {
        match decision {
            SendDecision::Admitted { token, .. } => token.clone(),
            SendDecision::Refused { .. } => panic!("admitted expected: {decision:?}"),
        }
    }

    #[test]
    fn a_log_is_two_words_and_a_send_six_bytes_of_its_block() {
        assert_eq!(size_of::<PackedLog>(), 2 * size_of::<usize>());
        let mut log = PackedLog::default();
        token(&log.record(&rules(5, 60), 1_000, 1));
        token(&log.record(&rules(5, 60), 2_000, 2));
        assert_eq!(log.0.len(), 4 + 2 * 6);
    }

    #[test]
    fn two_sends_in_one_millisecond_are_refunded_one_each() {
        let rules = rules(2, 60);
        let mut log = PackedLog::default();
        let first = token(&log.record(&rules, 1_000, 1));
        let second = token(&log.record(&rules, 1_000, 2));
        assert_ne!(first, second);
        log.refund(&first);
        log.refund(&first);
        assert_eq!(log.count(), 1, "a second refund of one token takes nothing");
        token(&log.record(&rules, 1_000, 3));
        assert!(matches!(
            log.record(&rules, 1_000, 4),
            SendDecision::Refused { .. }
        ));
    }

    #[test]
    fn the_log_lives_for_the_longest_period_after_its_newest_send() {
        let mut log = PackedLog::default();
        assert!(!log.is_live(0));
        token(&log.record(&rules(5, 3_600), 10_000, 1));
        token(&log.record(&rules(5, 60), 20_000, 2));
        assert!(log.is_live(10_000 + 3_600_000 - 1));
        assert!(!log.is_live(10_000 + 3_600_000));
    }

    #[test]
    fn old_sends_are_forgotten_across_a_wrap_of_the_clock_low_bits() {
        let rules = rules(1, 60);
        let mut log = PackedLog::default();
        let start = u64::from(u32::MAX) - 30_000;
        token(&log.record(&rules, start, 1));
        let SendDecision::Refused { violations } = log.record(&rules, start + 40_000, 2) else {
            panic!("within the minute");
        };
        assert_eq!(violations[0].retry_after, Duration::from_secs(20));
        token(&log.record(&rules, start + 60_000, 3));
        assert_eq!(log.count(), 1);
    }
}
