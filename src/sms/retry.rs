//! How one provider retries a send: only after a try that surely did not
//! reach it, within the send's deadline, with jittered exponential backoff
//! or the provider's `Retry-After`.
//!
//! Each try may use all the time left until the deadline, so the first try
//! gets the whole budget: a slow provider means one SMS and a slow call. A
//! try that is cut off or fails after its request may have been taken is
//! never repeated ([`GatewayError::Uncertain`]).

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use rand::Rng;
use tokio::time::Instant;
use tracing::Instrument;

use super::{GatewayError, http::millis};
use crate::telemetry;

/// First backoff before jitter; doubles per retry up to a cap.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Longest backoff before jitter, whatever the budget.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A try with less time than this left cannot get an answer: give up instead.
pub(super) const MIN_TRY: Duration = Duration::from_millis(100);

/// How long a send may take and how hard each provider tries, shared by
/// every provider (`OTP_SMS_CONNECT_TIMEOUT_MS`, `OTP_SMS_SEND_TIMEOUT_MS`,
/// `OTP_SMS_MAX_RETRIES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSettings {
    /// Longest wait for a TCP/TLS connection (DNS included).
    pub connect_timeout: Duration,
    /// Budget for one whole send: every try, every wait and every provider
    /// of a route. Never shorter than `connect_timeout`.
    pub send_timeout: Duration,
    /// Tries after the first one per provider, only after a try that surely
    /// did not reach it (no connection, 429, 503, throttled).
    pub max_retries: u32,
}

/// The retry rules of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first.
    pub max_retries: u32,
    /// A retry after a failed connect starts only if a whole connect
    /// timeout still fits before the deadline, so that the retry's connect
    /// can fail cleanly (surely not sent) rather than be cut off midway.
    pub connect_timeout: Duration,
}

impl From<SendSettings> for RetryPolicy {
    fn from(settings: SendSettings) -> Self {
        Self {
            max_retries: settings.max_retries,
            connect_timeout: settings.connect_timeout,
        }
    }
}

/// What one try came to.
#[derive(Debug)]
pub enum TryOutcome<T> {
    /// The provider took the message.
    Done(T),
    /// The message surely did not reach the provider, and a retry may pass.
    NotSent {
        /// For the log and the final error; never the message text.
        reason: String,
        /// How long the provider asked us to wait, if it did.
        retry_after: Option<Duration>,
        /// No connection could be made (the next try must connect afresh).
        connect_failed: bool,
    },
    /// Ends the send as it is: a refusal a retry cannot fix, or a failure
    /// after the message may have been taken ([`GatewayError::Uncertain`]).
    Failed(GatewayError),
}

impl RetryPolicy {
    /// Runs `try_once(attempt)` (attempt counts from 1) until it is done,
    /// fails for good, the tries run out, or a retry would not fit before
    /// `deadline`.
    ///
    /// Guarantees, provided each try returns by `deadline` (the shared
    /// `post` does): returns by `deadline`; repeats a try only after
    /// [`TryOutcome::NotSent`], so at most one try can have reached the
    /// provider; the tries running out ends in [`GatewayError::Unavailable`].
    pub async fn run<T, F, Fut>(
        &self,
        deadline: Instant,
        mut try_once: F,
    ) -> Result<T, GatewayError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = TryOutcome<T>>,
    {
        let tries = self.max_retries.saturating_add(1);
        // Waits stay small next to the budget, so that tries, not waits, use it.
        let budget = deadline.saturating_duration_since(Instant::now());
        let backoff_cap = (budget / tries.saturating_mul(4)).min(MAX_BACKOFF);
        let mut attempt = 1;
        loop {
            // While traces are exported each try is a child span of its provider's.
            let span = telemetry::sms_try_span(attempt);
            let outcome = try_once(attempt).instrument(span.clone()).await;
            telemetry::annotate(&span, "otp.sms.try_result", try_result(&outcome));
            let (reason, retry_after, connect_failed) = match outcome {
                TryOutcome::Done(value) => return Ok(value),
                TryOutcome::Failed(error) => return Err(error),
                TryOutcome::NotSent {
                    reason,
                    retry_after,
                    connect_failed,
                } => (reason, retry_after, connect_failed),
            };
            if attempt == tries {
                return Err(GatewayError::Unavailable(format!(
                    "{reason} (try {attempt} of {tries})"
                )));
            }
            let wait = retry_after.unwrap_or_else(|| backoff(attempt, backoff_cap));
            let needed = if connect_failed {
                self.connect_timeout
            } else {
                MIN_TRY
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if wait + needed > left {
                return Err(GatewayError::Unavailable(format!(
                    "{reason} (try {attempt} of {tries}); not retrying: waiting {} ms and \
                     trying again would pass the send deadline ({} ms left)",
                    wait.as_millis(),
                    left.as_millis()
                )));
            }
            tracing::debug!(attempt, wait_ms = millis(wait), "retrying SMS send");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A try's outcome as its span attribute.
fn try_result<T>(outcome: &TryOutcome<T>) -> &'static str {
    match outcome {
        TryOutcome::Done(_) => "accepted",
        TryOutcome::NotSent { .. } => "transient_failure",
        TryOutcome::Failed(GatewayError::Uncertain(_)) => "uncertain",
        TryOutcome::Failed(_) => "refused",
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

    const CONNECT: Duration = Duration::from_secs(2);

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            connect_timeout: CONNECT,
        }
    }

    fn in_ms(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    fn not_sent<T>(retry_after: Option<Duration>) -> TryOutcome<T> {
        TryOutcome::NotSent {
            reason: "HTTP 503".into(),
            retry_after,
            connect_failed: false,
        }
    }

    /// Counts the tries `outcome` is given to.
    async fn run_counting<T: Send>(
        policy: RetryPolicy,
        deadline: Instant,
        outcome: impl Fn(u32) -> TryOutcome<T>,
    ) -> (Result<T, GatewayError>, u32) {
        let calls = Arc::new(AtomicU32::new(0));
        let result = policy
            .run(deadline, |attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                let outcome = outcome(attempt);
                async move { outcome }
            })
            .await;
        (result, calls.load(Ordering::SeqCst))
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
    async fn surely_unsent_tries_are_retried_until_success() {
        let (result, calls) = run_counting(policy(2), in_ms(5_000), |attempt| {
            if attempt < 3 {
                not_sent(None)
            } else {
                TryOutcome::Done(attempt)
            }
        })
        .await;
        assert_eq!(result.expect("third try succeeds"), 3);
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_that_may_have_been_delivered_is_never_retried() {
        for error in [
            GatewayError::Uncertain("HTTP 500".into()),
            GatewayError::Rejected("HTTP 400".into()),
        ] {
            let kind = error.kind();
            let error = std::sync::Mutex::new(Some(error));
            let (result, calls) = run_counting(policy(2), in_ms(5_000), |_| {
                TryOutcome::<()>::Failed(error.lock().expect("lock").take().expect("once"))
            })
            .await;
            assert_eq!(result.expect_err("failed").kind(), kind);
            assert_eq!(calls, 1, "{kind}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tries_are_bounded_and_end_unavailable() {
        let (result, calls) =
            run_counting(policy(2), in_ms(60_000), |_| not_sent::<()>(None)).await;
        let Err(GatewayError::Unavailable(reason)) = result else {
            panic!("expected Unavailable, got {result:?}");
        };
        assert!(reason.contains("try 3 of 3"), "{reason}");
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_for_when_it_fits_the_budget() {
        let started = Instant::now();
        let result = policy(2)
            .run(in_ms(5_000), |attempt| async move {
                if attempt == 1 {
                    not_sent(Some(Duration::from_secs(2)))
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
        let (result, calls) = run_counting(policy(2), in_ms(5_000), |_| {
            not_sent::<()>(Some(Duration::from_secs(30)))
        })
        .await;
        let Err(GatewayError::Unavailable(reason)) = result else {
            panic!("expected Unavailable, got {result:?}");
        };
        assert!(reason.contains("would pass"), "{reason}");
        assert_eq!(calls, 1);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_connect_is_retried_only_when_a_whole_connect_fits() {
        let connect_failed = || TryOutcome::<()>::NotSent {
            reason: "cannot connect".into(),
            retry_after: None,
            connect_failed: true,
        };
        // 1.5 s left cannot hold another 2 s connect: stop, surely unsent.
        let (result, calls) = run_counting(policy(2), in_ms(1_500), |_| connect_failed()).await;
        assert!(matches!(result, Err(GatewayError::Unavailable(_))));
        assert_eq!(calls, 1);
        // With room for it, the connect is tried again.
        let (_, calls) = run_counting(policy(1), in_ms(5_000), |_| connect_failed()).await;
        assert_eq!(calls, 2);
    }
}
