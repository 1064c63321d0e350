//! A number's or a `client_key`'s send log, packed (issue 30): 16 bytes
//! inline, where a `VecDeque` and its own end time took 40. A log of one
//! send (a number texted once, a client's one request) is held inline; a
//! longer one in one heap block of exactly its size (no spare room), its
//! end time and 6 bytes a send (a 32-bit time and a 16-bit tag). The
//! sliding log of `sliding_log.rs` runs on it unchanged. Twin of the packed
//! logs of `lua/record_packed_send.lua` and `lua/refund_packed_send.lua`,
//! whose tokens are likewise a send's time and a short tag.
//!
//! Every send rewrites the log (a copy of it): fine for the logs it serves,
//! whose rules cap them at [`MAX_SENDS`] (`send_logs.rs` keeps a busier log
//! as a plain list).

use crate::{
    abuse::RateRule,
    store::{
        SendDecision,
        sliding_log::{self, LoggedSends},
    },
};

use super::ticks::{Tick, left_until, tick, tick_after, time_of};

/// Bytes of a send and of the log's own end time in a block.
const SEND_BYTES: usize = 6;
const UNTIL_BYTES: usize = 4;
/// An inline log's end time is kept as the time after its send, in units
/// of this many ms, rounded up: it only says when the sweeper may forget
/// the log, and a second or two later is as good.
const KEEP_UNIT_MS: u64 = 2_000;

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

/// Sends oldest first, with the time nothing logged counts any more (the
/// newest send plus the longest rule period seen).
#[derive(Debug)]
pub(super) enum PackedLog {
    /// One send: its time and tag, and its end time as [`KEEP_UNIT_MS`]
    /// units after it.
    One([u8; 8]),
    /// The end time, then 6 bytes a send; empty when there is no send.
    Many(Box<[u8]>),
}

impl Default for PackedLog {
    fn default() -> Self {
        Self::Many(Box::default())
    }
}

/// A packed log unpacked, to be read and changed, then packed again.
struct Unpacked {
    until: Option<Tick>,
    sends: Vec<PackedSend>,
}

impl PackedLog {
    fn unpack(&self) -> Unpacked {
        match self {
            Self::One([a, b, c, d, e, f, g, h]) => {
                let at = Tick::from_le_bytes([*a, *b, *c, *d]);
                let keep = u64::from(u16::from_le_bytes([*g, *h])) * KEEP_UNIT_MS;
                Unpacked {
                    until: Some(at.wrapping_add(u32::try_from(keep).unwrap_or(u32::MAX))),
                    sends: vec![PackedSend {
                        at,
                        tag: u16::from_le_bytes([*e, *f]),
                    }],
                }
            }
            Self::Many(bytes) => Unpacked {
                until: bytes
                    .first_chunk::<UNTIL_BYTES>()
                    .map(|until| Tick::from_le_bytes(*until)),
                sends: bytes
                    .get(UNTIL_BYTES..)
                    .unwrap_or_default()
                    .chunks_exact(SEND_BYTES)
                    .map(|send| PackedSend {
                        at: Tick::from_le_bytes([send[0], send[1], send[2], send[3]]),
                        tag: u16::from_le_bytes([send[4], send[5]]),
                    })
                    .collect(),
            },
        }
    }

    fn pack(unpacked: &Unpacked) -> Self {
        let until = unpacked.until.unwrap_or_default();
        if let [send] = unpacked.sends.as_slice() {
            let keep = u64::from(until.wrapping_sub(send.at)).div_ceil(KEEP_UNIT_MS);
            if let Ok(keep) = u16::try_from(keep) {
                let [a, b, c, d] = send.at.to_le_bytes();
                let [e, f] = send.tag.to_le_bytes();
                let [g, h] = keep.to_le_bytes();
                return Self::One([a, b, c, d, e, f, g, h]);
            }
        }
        if unpacked.sends.is_empty() {
            return Self::default();
        }
        let mut bytes = Vec::with_capacity(UNTIL_BYTES + unpacked.sends.len() * SEND_BYTES);
        bytes.extend_from_slice(&until.to_le_bytes());
        for send in &unpacked.sends {
            bytes.extend_from_slice(&send.at.to_le_bytes());
            bytes.extend_from_slice(&send.tag.to_le_bytes());
        }
        Self::Many(bytes.into_boxed_slice())
    }

    /// Whether a rule may still count a send of this log (what the
    /// sweeper asks of every log: no allocation).
    pub(super) fn is_live(&self, now_ms: u64) -> bool {
        let until = match self {
            Self::One([a, b, c, d, _, _, g, h]) => {
                let keep = u64::from(u16::from_le_bytes([*g, *h])) * KEEP_UNIT_MS;
                let at = Tick::from_le_bytes([*a, *b, *c, *d]);
                at.wrapping_add(u32::try_from(keep).unwrap_or(u32::MAX))
            }
            Self::Many(bytes) if bytes.len() > UNTIL_BYTES => match bytes.first_chunk() {
                Some(until) => Tick::from_le_bytes(*until),
                None => return false,
            },
            Self::Many(_) => return false,
        };
        left_until(until, now_ms).is_some()
    }

    /// [`sliding_log::record`] on this log at `now_ms`.
    pub(super) fn record(&mut self, rules: &[RateRule], now_ms: u64, token: u64) -> SendDecision {
        let mut log = AtNow {
            unpacked: self.unpack(),
            now_ms,
        };
        let decision = sliding_log::record(&mut log, rules, now_ms, token);
        let mut unpacked = log.unpacked;
        if let Some(newest) = unpacked.sends.last() {
            let keep = (time_of(newest.at, now_ms) + sliding_log::longest_period_ms(rules))
                .saturating_sub(now_ms);
            let kept = unpacked
                .until
                .and_then(|until| left_until(until, now_ms))
                .unwrap_or(0);
            unpacked.until = Some(tick_after(now_ms, keep.max(kept)));
        }
        *self = Self::pack(&unpacked);
        decision
    }

    /// The newest send's time (ms), if one is logged (twin of the newest
    /// send `verify_and_consume.lua` replies with).
    pub(super) fn newest_ms(&self, now_ms: u64) -> Option<u64> {
        self.unpack()
            .sends
            .iter()
            .map(|send| time_of(send.at, now_ms))
            .max()
    }

    /// Takes back the send `token` (from [`PackedLog::record`]) names, if
    /// it is still logged; any other token is ignored.
    pub(super) fn refund(&mut self, token: &str) {
        let Some(refunded) = parse_token(token) else {
            return;
        };
        let mut unpacked = self.unpack();
        // From the newest end: a refund follows its send closely.
        if let Some(index) = unpacked.sends.iter().rposition(|send| *send == refunded) {
            unpacked.sends.remove(index);
            *self = Self::pack(&unpacked);
        }
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
struct AtNow {
    unpacked: Unpacked,
    now_ms: u64,
}

impl LoggedSends for AtNow {
    fn count(&self) -> usize {
        self.unpacked.sends.len()
    }

    fn sent_at(&self, index: usize) -> u64 {
        self.unpacked
            .sends
            .get(index)
            .map_or(u64::MAX, |send| time_of(send.at, self.now_ms))
    }

    fn forget_oldest(&mut self, count: usize) {
        let sends = &mut self.unpacked.sends;
        sends.drain(..count.min(sends.len()));
    }

    fn log(&mut self, at_ms: u64, token: u64) -> String {
        let [low, high, ..] = token.to_le_bytes();
        let sent = PackedSend {
            at: tick(at_ms),
            tag: u16::from_le_bytes([low, high]),
        };
        self.unpacked.sends.push(sent);
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
    fn a_log_is_two_words_one_send_inline_and_more_six_bytes_each() {
        assert_eq!(size_of::<PackedLog>(), 2 * size_of::<usize>());
        let mut log = PackedLog::default();
        token(&log.record(&rules(5, 60), 1_000, 1));
        assert!(matches!(log, PackedLog::One(_)), "{log:?}");
        token(&log.record(&rules(5, 60), 2_000, 2));
        let PackedLog::Many(bytes) = &log else {
            panic!("two sends take a block: {log:?}");
        };
        assert_eq!(bytes.len(), 4 + 2 * 6);
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
        assert_eq!(
            log.unpack().sends.len(),
            1,
            "a second refund of one token takes nothing"
        );
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
    fn a_log_of_one_send_lives_its_period_and_at_most_two_seconds_more() {
        let mut log = PackedLog::default();
        token(&log.record(
            &[RateRule {
                period: Duration::from_millis(1_500),
                ..rules(5, 0)[0]
            }],
            10_000,
            1,
        ));
        assert!(log.is_live(11_499));
        assert!(!log.is_live(12_000));
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
        assert_eq!(log.unpack().sends.len(), 1);
    }
}
