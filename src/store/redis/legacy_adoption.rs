//! Whether, and until when, the scripts on a number's record (or a client's
//! packed send log) are handed the names an older version kept it under
//! (`number_record.rs`: a rolling upgrade adopts those records).
//!
//! Handing them costs every such call two or three more keys and an
//! `EXISTS` each (measured: SendOtp on Redis +10 % CPU per call). A
//! deployment that has nothing to adopt should not pay it, and nor should
//! one past the adoption window. So the first call of a process that
//! touches a record reads a marker in Redis (`lua/layout_marker.lua`), the
//! same for every replica: when the compact layout first ran on this
//! database, and whether the database held a key in an older version's
//! names then (read by SCAN up to 1 000 keys; a larger database is taken to
//! hold some). If it did not, there is nothing to adopt, ever; otherwise
//! old records are adopted until [`ADOPT_LEGACY_FOR`] after that first run
//! (not after each process's start: a replica started a week later has
//! nothing left to adopt). An old replica that writes its first record
//! only after that first run is not adopted from (README, "Upgrading to the
//! compact layout").
//!
//! Until a process has read the marker (the first call is under way, or
//! Redis did not answer it) it hands the names, as before: adopting when
//! there is nothing to adopt costs time, never a record. (Records this
//! layout writes meanwhile are not in the old names, so they cannot make
//! the marker say there is something to adopt.) Never on a Redis
//! Cluster, where the old names hash to other slots.

use std::{
    sync::{
        Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use super::RedisTopology;
use crate::store::StoreError;

/// How long after the compact layout first ran on a database old records
/// are still adopted: a day of send logs (the daily limit; no per-number or
/// per-client window is longer) and an hour to spare for the last code.
pub(super) const ADOPT_LEGACY_FOR: Duration = Duration::from_secs(25 * 60 * 60);

/// `layout_marker.lua`'s reply, times in ms on Redis's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LayoutMarker {
    /// When the compact layout first ran on this database.
    pub(super) since_ms: u64,
    /// Whether the database held (or may have held) a key in an older
    /// version's names then.
    pub(super) old_records_possible: bool,
    /// Redis's clock when the marker was read.
    pub(super) now_ms: u64,
}

impl LayoutMarker {
    /// The marker from the script's `{since, legacy, now}` reply.
    pub(super) fn from_reply(reply: &[u64]) -> Result<Self, StoreError> {
        match reply {
            [since_ms, legacy, now_ms] => Ok(Self {
                since_ms: *since_ms,
                old_records_possible: *legacy != 0,
                now_ms: *now_ms,
            }),
            other => Err(StoreError::Protocol(format!(
                "layout_marker replied {other:?}"
            ))),
        }
    }

    /// Until when (on this process's clock, read at `now`) old records are
    /// adopted; `None` when there is nothing to adopt.
    fn adopt_until(self, now: Instant) -> Option<Instant> {
        if !self.old_records_possible {
            return None;
        }
        let ends_ms = self
            .since_ms
            .saturating_add(u64::try_from(ADOPT_LEGACY_FOR.as_millis()).unwrap_or(u64::MAX));
        let left_ms = ends_ms.checked_sub(self.now_ms).filter(|left| *left > 0)?;
        Some(now + Duration::from_millis(left_ms))
    }
}

/// A process's knowledge of the marker (see the module doc).
#[derive(Debug)]
pub(super) struct LegacyAdoption {
    /// False on a Cluster: never adopt, never read the marker.
    applies: bool,
    /// The marker's answer once read: until when to adopt, or never.
    decided: OnceLock<Option<Instant>>,
    /// A call is reading the marker. The calls meanwhile do not wait for it
    /// (they adopt, which is never wrong), so on an unanswering Redis one
    /// call at a time waits out a timeout for the marker, not every call.
    reading: AtomicBool,
    /// Not before then does a call read again after a failed read (Redis
    /// down, or an ACL without `SCAN`): otherwise every call would pay a
    /// round trip for it.
    next_read: Mutex<Option<Instant>>,
}

/// How long after a failed read of the marker the next call reads again.
const REREAD_AFTER: Duration = Duration::from_secs(10);

impl LegacyAdoption {
    pub(super) fn new(topology: &RedisTopology) -> Self {
        Self {
            applies: !matches!(topology, RedisTopology::Cluster(_)),
            decided: OnceLock::new(),
            reading: AtomicBool::new(false),
            next_read: Mutex::new(None),
        }
    }

    /// Whether scripts are handed the old names now.
    pub(super) fn adopting(&self) -> bool {
        match self.decided.get() {
            None => self.applies,
            Some(None) => false,
            Some(Some(until)) => Instant::now() < *until,
        }
    }

    /// Reads the marker with `read` unless it is known or another call is
    /// reading it. A failed read leaves the process adopting; a call
    /// [`REREAD_AFTER`] later reads again.
    pub(super) async fn settle<F>(&self, read: impl FnOnce() -> F)
    where
        F: Future<Output = Result<LayoutMarker, StoreError>>,
    {
        if !self.applies || self.decided.get().is_some() {
            return;
        }
        if self
            .reading
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        // Cleared however this call ends, also when it is dropped mid-read.
        let _reading = ClearOnDrop(&self.reading);
        if self.next_read().is_some_and(|at| Instant::now() < at) {
            return;
        }
        match read().await {
            Ok(marker) => {
                let _ = self.decided.set(marker.adopt_until(Instant::now()));
            }
            Err(error) => {
                tracing::warn!(%error, "layout marker not read; adopting old records meanwhile");
                self.set_next_read(Instant::now() + REREAD_AFTER);
            }
        }
    }

    fn next_read(&self) -> Option<Instant> {
        *self
            .next_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_next_read(&self, at: Instant) {
        *self
            .next_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(at);
    }
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    fn marker(since_ms: u64, legacy: u64, now_ms: u64) -> LayoutMarker {
        LayoutMarker::from_reply(&[since_ms, legacy, now_ms]).expect("three numbers")
    }

    #[test]
    fn a_database_empty_at_the_first_run_has_nothing_to_adopt() {
        assert_eq!(
            marker(HOUR_MS, 0, HOUR_MS).adopt_until(Instant::now()),
            None
        );
    }

    #[test]
    fn old_records_are_adopted_until_25_hours_after_the_first_run() {
        let now = Instant::now();
        let until = marker(HOUR_MS, 1, 11 * HOUR_MS).adopt_until(now);
        assert_eq!(until, Some(now + Duration::from_millis(15 * HOUR_MS)));
        assert_eq!(marker(HOUR_MS, 1, 26 * HOUR_MS).adopt_until(now), None);
        assert_eq!(marker(HOUR_MS, 1, 30 * HOUR_MS).adopt_until(now), None);
    }

    #[test]
    fn a_reply_of_another_shape_is_a_protocol_error() {
        assert!(LayoutMarker::from_reply(&[1, 0]).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_leaves_the_process_adopting_and_a_later_call_reads_again() {
        let adoption = LegacyAdoption::new(&RedisTopology::Single(
            super::super::RedisUrl::parse("redis://127.0.0.1:1").expect("a URL"),
        ));
        assert!(adoption.adopting(), "adopting until the marker is read");
        adoption
            .settle(|| async { Err(StoreError::Unavailable("down".into())) })
            .await;
        assert!(adoption.adopting());
        adoption
            .settle(|| async { panic!("not read again at once") })
            .await;
        tokio::time::advance(REREAD_AFTER).await;
        adoption
            .settle(|| async { Ok(marker(HOUR_MS, 0, HOUR_MS)) })
            .await;
        assert!(!adoption.adopting(), "nothing to adopt");
        adoption
            .settle(|| async { panic!("the marker is read once") })
            .await;
    }
}
