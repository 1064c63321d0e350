//! Times kept in 32 bits (issue 30): a number's record and a client's log
//! hold their times as the low 32 bits of the store's millisecond clock,
//! 4 bytes where an `Instant` takes 16 and a `u64` 8, still to the
//! millisecond (the contract suite checks 1.5 s windows and exact delays).
//! A tick is read back relative to now, so it stays exact while it lies
//! less than [`SPAN_MS`] (24.8 days) away from now; every rule these
//! records serve is at most a day (`OTP_SEND_WINDOW_SECONDS` ≤ 86 400 s, the
//! daily limit) and a code lives minutes, and the sweeper forgets a record
//! seconds after its last time has passed, long before a tick could wrap.

/// The low 32 bits of a time in ms on the store's clock.
pub(super) type Tick = u32;

/// How far from now a tick may lie and still be read back exactly.
pub(super) const SPAN_MS: u64 = 1 << 31;

/// `at_ms` (ms on the store's clock) as a tick.
pub(super) fn tick(at_ms: u64) -> Tick {
    // The low bits on purpose: the high ones are implied by now.
    (at_ms & u64::from(u32::MAX)) as Tick
}

/// The tick `ahead_ms` after `now_ms`; `ahead_ms` is cut to less than
/// [`SPAN_MS`] (see the module doc: no caller comes near it).
pub(super) fn tick_after(now_ms: u64, ahead_ms: u64) -> Tick {
    tick(now_ms.saturating_add(ahead_ms.min(SPAN_MS - 1)))
}

/// Ms from `now_ms` until `until`, or `None` once it has come (or lies
/// behind by any amount up to [`SPAN_MS`]).
pub(super) fn left_until(until: Tick, now_ms: u64) -> Option<u64> {
    let left = u64::from(until.wrapping_sub(tick(now_ms)));
    (left != 0 && left < SPAN_MS).then_some(left)
}

/// The full time (ms on the store's clock) of `at`, a tick at most
/// [`SPAN_MS`] before `now_ms`.
pub(super) fn time_of(at: Tick, now_ms: u64) -> u64 {
    now_ms.saturating_sub(u64::from(tick(now_ms).wrapping_sub(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_back_exactly_across_a_wrap_of_the_low_bits() {
        for now_ms in [
            5_000,
            u64::from(u32::MAX) - 10,
            u64::from(u32::MAX) + 7,
            1 << 40,
        ] {
            let day = 86_400_000;
            let sent = now_ms.saturating_sub(day);
            assert_eq!(time_of(tick(sent), now_ms), sent);
            let until = tick_after(now_ms, day);
            assert_eq!(left_until(until, now_ms), Some(day));
            assert_eq!(left_until(until, now_ms + day), None, "has come");
            assert_eq!(left_until(until, now_ms + day + 1), None, "has passed");
        }
    }
}
