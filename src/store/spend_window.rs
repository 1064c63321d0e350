//! Spend ledgers: how much was reserved in a window of time, per ledger
//! (the whole service, or one caller), against a limit in money.
//!
//! A window of `period` is kept as [`BUCKETS`] buckets of `period / BUCKETS`
//! (rounded up to a millisecond) plus the current one: an amount reserved in
//! bucket `k` counts until bucket `k + BUCKETS + 1` begins, so it counts for
//! at least `period` (at most one bucket more) and no `period`-long stretch
//! of time ever holds more than the limit. Buckets keep a ledger's size
//! fixed however many sends it counts (a sliding log of every send would
//! grow with the traffic it caps).
//!
//! [`reserve`] and [`refund`] are the rule; `MemoryStore::reserve_spend`
//! runs them under one lock, `lua/reserve_spend.lua` and
//! `lua/refund_spend.lua` are their Redis twins (keep them in step). The
//! Redis hash keeps the window's running total in the current bucket's
//! field (`lua/spend_window.lua`), so a send there is one `HINCRBY` per
//! window rather than a read of every bucket (a representation, not a rule).

use std::{collections::BTreeMap, time::Duration};

use crate::spend::{Micros, SpendCap};

/// Buckets per window (one a minute for an hour).
pub const BUCKETS: u64 = 60;

/// Whose spend a ledger counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpendLedger {
    /// Every send of the service, on every replica.
    Service,
    /// The sends of one authenticated caller (its name).
    Caller(String),
}

/// One cap as a store enforces it: a ledger, a window and a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendWindow {
    /// Which cap this is (reported back when it refuses).
    pub cap: SpendCap,
    /// Whose spend it counts.
    pub ledger: SpendLedger,
    /// The window's length (a ledger is kept per ledger and period).
    pub period: Duration,
    /// The most the window may hold.
    pub limit: Micros,
}

/// One cap that refused a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendRefusal {
    /// The cap.
    pub cap: SpendCap,
    /// Time until enough of the window's spend has left it for this
    /// reservation to fit (the whole period when it never fits).
    pub retry_after: Duration,
}

/// An amount reserved in each window of a decision, to give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendReservation {
    /// The amount reserved (in every window).
    pub amount: Micros,
    /// Each window's ledger and period, with the bucket it was counted in.
    pub buckets: Vec<(SpendLedger, Duration, u64)>,
}

/// What [`OtpStore::reserve_spend`](super::OtpStore::reserve_spend) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendDecision {
    /// Counted in every window.
    Reserved(SpendReservation),
    /// Some window would cross its limit; nothing was counted.
    Refused {
        /// Every cap that refused.
        refusals: Vec<SpendRefusal>,
    },
}

/// One ledger's buckets: bucket index → amount.
pub type Buckets = BTreeMap<u64, u64>;

/// A bucket's width for `period`, in ms (at least 1).
pub fn bucket_ms(period: Duration) -> u64 {
    let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    period_ms.div_ceil(BUCKETS).max(1)
}

/// The bucket of a window of `period` that `now_ms` falls in
/// (`lua/reserve_spend.lua` computes the same from the width it is handed:
/// keep both in step).
pub fn bucket_at(period: Duration, now_ms: u64) -> u64 {
    now_ms / bucket_ms(period)
}

/// `amount` reserved at `now_ms` in each of `windows`: the bucket each
/// counted it in (`lua/reserve_spend.lua` replies only the time).
pub fn reservation_at(amount: Micros, windows: &[SpendWindow], now_ms: u64) -> SpendReservation {
    let buckets = windows
        .iter()
        .map(|window| {
            let bucket = bucket_at(window.period, now_ms);
            (window.ledger.clone(), window.period, bucket)
        })
        .collect();
    SpendReservation { amount, buckets }
}

/// Forgets buckets that left the window at `now_ms`; returns what remains
/// in it and the current bucket.
fn live_total(buckets: &mut Buckets, width: u64, now_ms: u64) -> (u64, u64) {
    let current = now_ms / width;
    let oldest = current.saturating_sub(BUCKETS);
    buckets.retain(|bucket, _| *bucket >= oldest);
    (buckets.values().sum(), current)
}

/// Time until `amount` fits under `limit` as the oldest buckets leave.
fn wait_for_room(
    buckets: &Buckets,
    width: u64,
    now_ms: u64,
    total: u64,
    amount: u64,
    limit: u64,
) -> u64 {
    let full_period = width * (BUCKETS + 1);
    if amount > limit {
        return full_period;
    }
    let excess = total + amount - limit;
    let mut freed = 0;
    for (bucket, spent) in buckets {
        freed += spent;
        if freed >= excess {
            return ((bucket + BUCKETS + 1) * width).saturating_sub(now_ms);
        }
    }
    full_period
}

/// Whether `amount` fits in the window `buckets` holds under `limit` at
/// `now_ms`: `Ok(current bucket)` if it does, else the wait. Counts nothing.
pub fn check(
    buckets: &mut Buckets,
    period: Duration,
    limit: Micros,
    amount: Micros,
    now_ms: u64,
) -> Result<u64, Duration> {
    let width = bucket_ms(period);
    let (total, current) = live_total(buckets, width, now_ms);
    if total.saturating_add(amount.0) <= limit.0 {
        return Ok(current);
    }
    let wait = wait_for_room(buckets, width, now_ms, total, amount.0, limit.0);
    Err(Duration::from_millis(wait))
}

/// Counts `amount` in `bucket`.
pub fn reserve(buckets: &mut Buckets, bucket: u64, amount: Micros) {
    let spent = buckets.entry(bucket).or_insert(0);
    *spent = spent.saturating_add(amount.0);
}

/// Takes `amount` back from `bucket`, if it is still kept (never below 0).
pub fn refund(buckets: &mut Buckets, bucket: u64, amount: Micros) {
    if let Some(spent) = buckets.get_mut(&bucket) {
        *spent = spent.saturating_sub(amount.0);
        if *spent == 0 {
            buckets.remove(&bucket);
        }
    }
}

/// Whether a ledger holds nothing that still counts at `now_ms`.
pub fn is_idle(buckets: &Buckets, period: Duration, now_ms: u64) -> bool {
    let width = bucket_ms(period);
    let oldest = (now_ms / width).saturating_sub(BUCKETS);
    buckets.keys().all(|bucket| *bucket < oldest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3_600);

    #[test]
    fn the_exact_limit_fits_and_one_micro_more_waits_for_the_oldest_bucket() {
        let mut buckets = Buckets::new();
        let at = 10 * 60_000 + 5; // in bucket 10 of an hour's minutes
        let bucket = check(&mut buckets, HOUR, Micros(100), Micros(60), at).expect("fits");
        reserve(&mut buckets, bucket, Micros(60));
        let later = at + 30 * 60_000;
        let bucket = check(&mut buckets, HOUR, Micros(100), Micros(40), later).expect("exactly");
        reserve(&mut buckets, bucket, Micros(40));
        let wait = check(&mut buckets, HOUR, Micros(100), Micros(1), later).expect_err("full");
        // Bucket 10 leaves when bucket 71 begins.
        assert_eq!(wait, Duration::from_millis(71 * 60_000 - later));
        assert!(wait >= HOUR - Duration::from_secs(30 * 60));
        let after = 71 * 60_000;
        check(&mut buckets, HOUR, Micros(100), Micros(60), after).expect("the first left");
        check(&mut buckets, HOUR, Micros(100), Micros(61), after).expect_err("the second stays");
        assert_eq!(
            check(&mut buckets, HOUR, Micros(100), Micros(101), after),
            Err(HOUR + Duration::from_secs(60)),
            "never fits"
        );
    }

    #[test]
    fn a_refund_gives_back_only_what_is_still_kept() {
        let mut buckets = Buckets::new();
        reserve(&mut buckets, 3, Micros(50));
        refund(&mut buckets, 3, Micros(20));
        assert_eq!(buckets.get(&3), Some(&30));
        refund(&mut buckets, 3, Micros(90));
        assert!(buckets.is_empty());
        refund(&mut buckets, 4, Micros(10));
        assert!(buckets.is_empty());
        reserve(&mut buckets, 3, Micros(5));
        assert!(!is_idle(&buckets, HOUR, 3 * 60_000));
        assert!(is_idle(&buckets, HOUR, 64 * 60_000));
    }
}
