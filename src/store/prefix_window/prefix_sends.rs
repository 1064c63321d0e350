//! A prefix's counted sends as the memory store keeps them (issue 30): 27
//! bytes each, in chunks of at most 128 with a count of each chunk's
//! unapproved and approved sends, and nothing per number: a number's latest
//! send is its newest entry. Twin of `src/store/lua/prefix_log.lua`, which
//! keeps the same entries in time buckets of a Redis hash; the layouts
//! differ (a Redis hash field cannot be appended to, a `Vec` can), the rules
//! they serve do not.

use std::collections::VecDeque;

use super::SenderTags;

/// Sends per chunk: a power of two, so a full chunk's `Vec` has no spare
/// capacity, and only the newest chunk grows.
const CHUNK: usize = 128;

/// What became of a counted send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum SendState {
    /// Its code was not (yet) approved.
    Unapproved,
    /// Its own code was approved.
    Approved,
    /// Taken back; kept so that its number's latest send stays the one it
    /// was (an approval after it approves nothing).
    Refunded,
}

/// One counted send, 27 bytes (byte arrays, so no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PrefixSend {
    /// Send time, ms on the store's clock, big-endian (6 bytes: 8 900 years).
    at: [u8; 6],
    /// The send's token (see [`PrefixSends::push`]).
    token: [u8; 4],
    /// Its source (a verdict counts distinct ones).
    source: [u8; 8],
    /// Its number's tag.
    subject: [u8; 8],
    state: SendState,
}

impl PrefixSend {
    pub(super) fn at(&self) -> u64 {
        let mut bytes = [0; 8];
        bytes[2..].copy_from_slice(&self.at);
        u64::from_be_bytes(bytes)
    }
}

/// A run of sends in time order, with its counts.
#[derive(Debug, Default)]
struct Chunk {
    sends: Vec<PrefixSend>,
    unapproved: u16,
    approved: u16,
}

impl Chunk {
    fn first_at(&self) -> u64 {
        self.sends.first().map_or(0, PrefixSend::at)
    }

    fn last_at(&self) -> u64 {
        self.sends.last().map_or(0, PrefixSend::at)
    }

    /// The sends at times in (`after`, `upto`].
    fn range(&self, after: Option<u64>, upto: u64) -> &[PrefixSend] {
        let from = self
            .sends
            .partition_point(|send| after.is_some_and(|after| send.at() <= after));
        let to = self.sends.partition_point(|send| send.at() <= upto);
        self.sends.get(from..to.max(from)).unwrap_or_default()
    }
}

/// A prefix's counted sends, oldest first.
#[derive(Debug, Default)]
pub(super) struct PrefixSends {
    chunks: VecDeque<Chunk>,
}

/// Sends at or before `after` are not in the range (`None`: no lower bound).
fn is_after(at: u64, after: Option<u64>) -> bool {
    after.is_none_or(|after| at > after)
}

impl PrefixSends {
    /// Counts a send at `at_ms` as unapproved. Times never go backwards in
    /// the log (as in Lua, where a failover may bring a clock that is
    /// behind): such a send is recorded at the newest time already there.
    pub(super) fn push(&mut self, at_ms: u64, token: u32, sender: SenderTags) {
        let at_ms = self.newest().map_or(at_ms, |newest| newest.max(at_ms));
        let mut at = [0; 6];
        at.copy_from_slice(&at_ms.to_be_bytes()[2..]);
        let send = PrefixSend {
            at,
            token: token.to_be_bytes(),
            source: sender.source.to_be_bytes(),
            subject: sender.subject.to_be_bytes(),
            state: SendState::Unapproved,
        };
        if self
            .chunks
            .back()
            .is_none_or(|chunk| chunk.sends.len() >= CHUNK)
        {
            self.chunks.push_back(Chunk::default());
        }
        if let Some(chunk) = self.chunks.back_mut() {
            chunk.sends.push(send);
            chunk.unapproved += 1;
        }
    }

    /// The newest send's time, if any is kept.
    pub(super) fn newest(&self) -> Option<u64> {
        self.chunks.back().map(Chunk::last_at)
    }

    /// Drops the chunks whose every send is at or before `cutoff` (the
    /// rest of the oldest chunk stays, outside every count's range).
    pub(super) fn forget(&mut self, cutoff: u64) {
        while self
            .chunks
            .front()
            .is_some_and(|chunk| chunk.last_at() <= cutoff)
        {
            self.chunks.pop_front();
        }
    }

    /// The chunks that may hold sends at times in (`after`, `upto`].
    fn spanning(&self, after: Option<u64>, upto: u64) -> impl Iterator<Item = &Chunk> {
        self.chunks
            .iter()
            .skip_while(move |chunk| !is_after(chunk.last_at(), after))
            .take_while(move |chunk| chunk.first_at() <= upto)
    }

    /// Unapproved and approved sends at times in (`after`, `upto`].
    pub(super) fn counts(&self, after: Option<u64>, upto: u64) -> (u64, u64) {
        let (mut unapproved, mut approved) = (0, 0);
        for chunk in self.spanning(after, upto) {
            if is_after(chunk.first_at(), after) && chunk.last_at() <= upto {
                unapproved += u64::from(chunk.unapproved);
                approved += u64::from(chunk.approved);
                continue;
            }
            for send in chunk.range(after, upto) {
                match send.state {
                    SendState::Unapproved => unapproved += 1,
                    SendState::Approved => approved += 1,
                    SendState::Refunded => {}
                }
            }
        }
        (unapproved, approved)
    }

    /// Whether the unapproved sends at times in (`after`, `upto`] came from
    /// at least `needed` sources. Stops as soon as it has seen enough.
    pub(super) fn sources_at_least(&self, after: Option<u64>, upto: u64, needed: u32) -> bool {
        let needed = usize::try_from(needed).unwrap_or(usize::MAX);
        let mut seen = std::collections::HashSet::new();
        needed == 0
            || self
                .spanning(after, upto)
                .flat_map(|chunk| chunk.range(after, upto))
                .filter(|send| send.state == SendState::Unapproved)
                .any(|send| seen.insert(send.source) && seen.len() >= needed)
    }

    /// Marks the newest send matching `is_it`, if it was unapproved and sent
    /// after `after`, as `state`; returns whether it did.
    fn mark_newest(
        &mut self,
        is_it: impl Fn(&PrefixSend) -> bool,
        after: Option<u64>,
        state: SendState,
    ) -> bool {
        for chunk in self.chunks.iter_mut().rev() {
            let Some(send) = chunk.sends.iter_mut().rev().find(|send| is_it(send)) else {
                continue;
            };
            if send.state != SendState::Unapproved || !is_after(send.at(), after) {
                return false;
            }
            send.state = state;
            chunk.unapproved -= 1;
            if state == SendState::Approved {
                chunk.approved += 1;
            }
            return true;
        }
        false
    }

    /// Takes back the send counted with `token`, if it is unapproved.
    pub(super) fn refund(&mut self, token: u32) -> bool {
        let token = token.to_be_bytes();
        self.mark_newest(|send| send.token == token, None, SendState::Refunded)
    }

    /// Approves `subject`'s latest send (its newest), if it is unapproved
    /// and sent after `after`.
    pub(super) fn approve_latest(&mut self, subject: u64, after: Option<u64>) -> bool {
        let subject = subject.to_be_bytes();
        self.mark_newest(|send| send.subject == subject, after, SendState::Approved)
    }

    /// Every send kept, oldest first (tests).
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &PrefixSend> {
        self.chunks.iter().flat_map(|chunk| chunk.sends.iter())
    }
}

#[cfg(test)]
impl PrefixSend {
    pub(super) fn token(&self) -> u32 {
        u32::from_be_bytes(self.token)
    }

    pub(super) fn state(&self) -> SendState {
        self.state
    }
}
