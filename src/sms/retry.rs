//! How one send is retried: a deadline for the whole send, an equal share of
//! what is left for each try, jittered exponential backoff between tries,
//! and the gateway's `Retry-After` when it gives one.

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use rand::Rng;
use tokio::time::Instant;
use tracing::Instrument;

use super::GatewayError;
use crate::telemetry;

/// First backoff before jitter; doubles per retry up to a cap.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Longest backoff before jitter, whatever the budget.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A retry with less time than this left cannot get an answer: give up instead.
const MIN_TRY: Duration = Duration::from_millis(50);

/// The retry rules for one gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The whole send, every try and every wait, ends within this.
    pub budget: Duration,
    /// Tries after the first.
    pub max_retries: u32,
}

/// What one try came to.
#[derive(Debug)]
pub enum TryOutcome<T> {
    /// The gateway took the message.
    Done(T),
    /// Failed in a way a retry cannot fix (our key, a bad request).
    Fatal(GatewayError),
    /// Failed in a way that may pass (no connection, 5xx, 429).
    Transient {
        /// For the log and the final error; never the message text.
        reason: String,
        /// How long the gateway asked us to wait, if it did.
        retry_after: Option<Duration>,
        /// The gateway may have taken the message before failing (a 500, a
        /// dropped connection after the request went out): the send must
        /// then still count against the limits.
        maybe_delivered: bool,
    },
}

impl RetryPolicy {
    /// Runs `try_once(attempt)` (attempt counts from 1) until it is done,
    /// fails for good, the tries run out, or the budget would be exceeded.
    ///
    /// Guarantees: returns within `budget` of being called (each try is cut
    /// off at its share, each wait is skipped if it would pass the deadline),
    /// and every failure that is not [`TryOutcome::Fatal`] becomes
    /// [`GatewayError::Unavailable`] — or [`GatewayError::Uncertain`] when
    /// some try may have got through (cut off, or `maybe_delivered`).
    pub async fn run<T, F, Fut>(&self, mut try_once: F) -> Result<T, GatewayError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = TryOutcome<T>>,
    {
        let deadline = Instant::now() + self.budget;
        let tries = self.max_retries.saturating_add(1);
        // Waits stay small next to each try's share, so that the tries, not
        // the waits, use the budget: even when every try hangs until it is
        // cut off, all of them get their turn.
        let backoff_cap = (self.budget / tries.saturating_mul(4)).min(MAX_BACKOFF);
        let mut attempt = 1;
        let mut uncertain = false;
        loop {
            // An equal share of what is left, so one hung try cannot use up
            // the time the retries need; tries that failed fast leave more
            // for the later ones.
            let tries_left = tries - attempt + 1;
            let share = deadline.saturating_duration_since(Instant::now()) / tries_left;
            let span = telemetry::sms_try_span(attempt);
            let outcome = cut_off_at(share, attempt, try_once(attempt))
                .instrument(span.clone())
                .await;
            telemetry::annotate(
                &span,
                "otp.sms.try_result",
                match &outcome {
                    TryOutcome::Done(_) => "accepted",
                    TryOutcome::Fatal(_) => "refused",
                    TryOutcome::Transient { .. } => "transient_failure",
                },
            );
            let (reason, retry_after) = match outcome {
                TryOutcome::Done(value) => return Ok(value),
                TryOutcome::Fatal(error) => return Err(error),
                TryOutcome::Transient {
                    reason,
                    retry_after,
                    maybe_delivered,
                } => {
                    uncertain |= maybe_delivered;
                    (reason, retry_after)
                }
            };
            let reason = format!("{reason} (try {attempt} of {tries})");
            if attempt == tries {
                return Err(unavailable(uncertain, reason));
            }
            let wait = retry_after.unwrap_or_else(|| backoff(attempt, backoff_cap));
            let left = deadline.saturating_duration_since(Instant::now());
            if wait + MIN_TRY > left {
                return Err(unavailable(
                    uncertain,
                    format!(
                        "{reason}; not retrying: waiting {} ms would pass the {} ms send budget",
                        wait.as_millis(),
                        self.budget.as_millis()
                    ),
                ));
            }
            tracing::debug!(attempt, wait_ms = millis(wait), "retrying SMS send");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// One try, cut off after `share`. A try cut off mid-request may have been
/// queued by the gateway, so it counts as maybe delivered.
async fn cut_off_at<T>(
    share: Duration,
    attempt: u32,
    try_once: impl Future<Output = TryOutcome<T>>,
) -> TryOutcome<T> {
    tokio::time::timeout(share, try_once)
        .await
        .unwrap_or_else(|_| {
            tracing::warn!(
                attempt,
                timeout_ms = millis(share),
                "SMS gateway did not answer in time"
            );
            TryOutcome::Transient {
                reason: format!("no answer within {} ms", share.as_millis()),
                retry_after: None,
                maybe_delivered: true,
            }
        })
}

/// A failure that is not [`TryOutcome::Fatal`], as the caller sees it.
fn unavailable(uncertain: bool, reason: String) -> GatewayError {
    if uncertain {
        GatewayError::Uncertain(reason)
    } else {
        GatewayError::Unavailable(reason)
    }
}

/// Exponential backoff up to `cap`, with equal jitter: half the step is
/// fixed, half is random, so many replicas failing together do not retry in
/// lockstep.
fn backoff(attempt: u32, cap: Duration) -> Duration {
    let step = BASE_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

/// Whole milliseconds as a plain number for structured logs (tracing shows
/// `u128` as text).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a `Retry-After` value: whole seconds or an HTTP date (a date in the
/// past means now). `None` for anything else, which then means plain backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "longer than any budget".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    fn policy(budget_ms: u64, max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            budget: Duration::from_millis(budget_ms),
            max_retries,
        }
    }

    fn transient<T>(retry_after: Option<Duration>) -> TryOutcome<T> {
        TryOutcome::Transient {
            reason: "HTTP 503".into(),
            retry_after,
            maybe_delivered: false,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..100 {
            let first = backoff(1, MAX_BACKOFF);
            assert!((100..=200).contains(&first.as_millis()), "{first:?}");
            let second = backoff(2, MAX_BACKOFF);
            assert!((200..=400).contains(&second.as_millis()), "{second:?}");
            let late = backoff(30, MAX_BACKOFF);
            assert!((1000..=2000).contains(&late.as_millis()), "{late:?}");
            let capped = backoff(3, Duration::from_millis(120));
            assert!((60..=120).contains(&capped.as_millis()), "{capped:?}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let calls = Arc::new(AtomicU32::new(0));
        let result = policy(5_000, 2)
            .run(|attempt| {
                let calls = Arc::clone(&calls);
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if attempt < 3 {
                        transient(None)
                    } else {
                        TryOutcome::Done(attempt)
                    }
                }
            })
            .await;
        assert_eq!(result.expect("third try succeeds"), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_failures_are_not_retried() {
        let calls = Arc::new(AtomicU32::new(0));
        let result: Result<(), _> = policy(5_000, 2)
            .run(|_| {
                let calls = Arc::clone(&calls);
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    TryOutcome::Fatal(GatewayError::Rejected("HTTP 400".into()))
                }
            })
            .await;
        assert!(
            matches!(result, Err(GatewayError::Rejected(_))),
            "{result:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tries_are_bounded() {
        let calls = Arc::new(AtomicU32::new(0));
        let result: Result<(), _> = policy(60_000, 2)
            .run(|_| {
                let calls = Arc::clone(&calls);
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    transient(None)
                }
            })
            .await;
        let Err(GatewayError::Unavailable(reason)) = result else {
            panic!("expected Unavailable, got {result:?}");
        };
        assert!(reason.contains("try 3 of 3"), "{reason}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn hung_tries_share_the_budget_and_the_whole_send_ends_within_it() {
        for budget_ms in [300, 1_500, 5_000, 60_000] {
            hung_tries_all_run_within(budget_ms).await;
        }
    }

    async fn hung_tries_all_run_within(budget_ms: u64) {
        let started = Instant::now();
        let calls = Arc::new(AtomicU32::new(0));
        let result: Result<(), _> = policy(budget_ms, 2)
            .run(|_| {
                let calls = Arc::clone(&calls);
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<TryOutcome<()>>().await
                }
            })
            .await;
        assert!(
            matches!(result, Err(GatewayError::Uncertain(_))),
            "a try cut off mid-request may have been delivered: {result:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "every try got a share of {budget_ms} ms"
        );
        assert!(
            started.elapsed() <= Duration::from_millis(budget_ms),
            "{:?} for a {budget_ms} ms budget",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_for_when_it_fits_the_budget() {
        let started = Instant::now();
        let result = policy(5_000, 2)
            .run(|attempt| async move {
                if attempt == 1 {
                    transient(Some(Duration::from_secs(2)))
                } else {
                    TryOutcome::Done(Instant::now())
                }
            })
            .await;
        let second_try_at = result.expect("second try succeeds");
        assert_eq!(second_try_at - started, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_beyond_the_budget_gives_up_at_once() {
        let started = Instant::now();
        let calls = Arc::new(AtomicU32::new(0));
        let result: Result<(), _> = policy(5_000, 2)
            .run(|_| {
                let calls = Arc::clone(&calls);
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    transient(Some(Duration::from_secs(30)))
                }
            })
            .await;
        let Err(GatewayError::Unavailable(reason)) = result else {
            panic!("expected Unavailable, got {result:?}");
        };
        assert!(reason.contains("would pass"), "{reason}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
