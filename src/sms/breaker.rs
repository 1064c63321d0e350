//! A circuit breaker per provider per replica: after a run of failed sends
//! the provider is skipped for a cool-down, then one probe send is let
//! through; its success closes the circuit, its failure opens it again.
//!
//! It decides only where the *next* send goes, never whether a failed send
//! is repeated (that is the no-second-SMS rule of the router), so it may
//! count every failure: a provider that keeps timing out or answering 500
//! (delivery uncertain) is exactly the one routes should stop waiting for.

use std::{
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

use crate::metrics;

/// When a provider's circuit opens and for how long
/// (`OTP_SMS_BREAKER_FAILURES`, `OTP_SMS_BREAKER_COOLDOWN_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed sends that open the circuit; 0 turns the breaker off.
    pub failures: u32,
    /// How long an open circuit skips the provider before one probe.
    pub cooldown: Duration,
}

impl BreakerSettings {
    /// Never opens: the single-gateway set-up behaves as it always did.
    pub const OFF: Self = Self {
        failures: 0,
        cooldown: Duration::ZERO,
    };
}

/// A circuit's state, as the `otp_sms_provider_breaker_state` gauge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Sends go through (gauge 0).
    Closed,
    /// One probe send is in flight; others skip the provider (gauge 1).
    HalfOpen,
    /// Sends skip the provider until the cool-down ends (gauge 2).
    Open,
}

impl BreakerState {
    /// The gauge value.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Circuit {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The probe is in flight.
    HalfOpen,
}

/// One provider's breaker. Cheap to consult: one short lock per send.
#[derive(Debug)]
pub struct CircuitBreaker {
    provider: &'static str,
    settings: BreakerSettings,
    circuit: Mutex<Circuit>,
}

/// Leave to send through the provider; report how it went with
/// [`Permit::succeeded`] or [`Permit::failed`]. A probe's permit dropped
/// without a report (its send was abandoned) lets the next send probe.
#[must_use = "report the send's outcome"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl CircuitBreaker {
    /// A closed breaker for `provider` (its name labels the gauge).
    pub fn new(provider: &'static str, settings: BreakerSettings) -> Self {
        metrics::sms_breaker_state(provider, BreakerState::Closed.gauge());
        Self {
            provider,
            settings,
            circuit: Mutex::new(Circuit::Closed { failures: 0 }),
        }
    }

    /// The state now (an open circuit past its cool-down stays `Open` until
    /// a send takes the probe).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Circuit::Closed { .. } => BreakerState::Closed,
            Circuit::Open { .. } => BreakerState::Open,
            Circuit::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Leave to send, or `None` while the circuit is open (or its one probe
    /// is in flight).
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut circuit = self.lock();
        let probe = match *circuit {
            Circuit::Closed { .. } => false,
            Circuit::Open { until } if Instant::now() >= until => {
                *circuit = Circuit::HalfOpen;
                drop(circuit);
                self.changed(BreakerState::HalfOpen);
                tracing::info!(
                    provider = self.provider,
                    "circuit half-open: one probe send"
                );
                true
            }
            Circuit::Open { .. } | Circuit::HalfOpen => return None,
        };
        Some(Permit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Circuit> {
        // The state is a plain value; a panic elsewhere cannot leave it half-written.
        self.circuit.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self, state: BreakerState) {
        metrics::sms_breaker_state(self.provider, state.gauge());
    }

    fn record_success(&self) {
        let previous = std::mem::replace(&mut *self.lock(), Circuit::Closed { failures: 0 });
        if !matches!(previous, Circuit::Closed { .. }) {
            self.changed(BreakerState::Closed);
            tracing::info!(
                provider = self.provider,
                "circuit closed: provider sends again"
            );
        }
    }

    fn record_failure(&self) {
        if self.settings.failures == 0 {
            return;
        }
        let mut circuit = self.lock();
        let failures = match *circuit {
            Circuit::Closed { failures } => failures + 1,
            // A failed probe (or a send admitted before the circuit opened).
            Circuit::HalfOpen | Circuit::Open { .. } => self.settings.failures,
        };
        if failures < self.settings.failures {
            *circuit = Circuit::Closed { failures };
            return;
        }
        *circuit = Circuit::Open {
            until: Instant::now() + self.settings.cooldown,
        };
        drop(circuit);
        self.changed(BreakerState::Open);
        tracing::warn!(
            provider = self.provider,
            failures,
            cooldown_s = self.settings.cooldown.as_secs(),
            "circuit opened: routes skip this provider during the cool-down"
        );
    }

    fn abandon_probe(&self) {
        let mut circuit = self.lock();
        if matches!(*circuit, Circuit::HalfOpen) {
            *circuit = Circuit::Open {
                until: Instant::now(),
            };
        }
    }
}

impl Permit<'_> {
    /// The provider took the message, or answered properly (e.g. "not a
    /// valid number"): it works.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.breaker.record_success();
    }

    /// The send failed on the provider's side (or ours with it).
    pub fn failed(mut self) {
        self.settled = true;
        self.breaker.record_failure();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn breaker(failures: u32) -> CircuitBreaker {
        CircuitBreaker::new(
            "test",
            BreakerSettings {
                failures,
                cooldown: COOLDOWN,
            },
        )
    }

    fn fail(breaker: &CircuitBreaker) {
        breaker.try_acquire().expect("admitted").failed();
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_the_circuit_and_a_success_resets_the_count() {
        let breaker = breaker(3);
        fail(&breaker);
        fail(&breaker);
        breaker.try_acquire().expect("closed").succeeded();
        fail(&breaker);
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Closed);
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.try_acquire().is_none(), "open circuits skip");
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cool_down_one_probe_goes_and_its_success_closes() {
        let breaker = breaker(1);
        fail(&breaker);
        tokio::time::advance(COOLDOWN - Duration::from_millis(1)).await;
        assert!(breaker.try_acquire().is_none(), "still cooling down");
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = breaker.try_acquire().expect("the probe");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.try_acquire().is_none(), "only one probe at a time");
        probe.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.try_acquire().expect("closed again").succeeded();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_for_another_cool_down() {
        let breaker = breaker(2);
        fail(&breaker);
        fail(&breaker);
        tokio::time::advance(COOLDOWN).await;
        fail(&breaker);
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(COOLDOWN - Duration::from_millis(1)).await;
        assert!(breaker.try_acquire().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_lets_the_next_send_probe() {
        let breaker = breaker(1);
        fail(&breaker);
        tokio::time::advance(COOLDOWN).await;
        drop(breaker.try_acquire().expect("probe"));
        breaker.try_acquire().expect("next probe").succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_off_breaker_never_opens() {
        let breaker = CircuitBreaker::new("test", BreakerSettings::OFF);
        for _ in 0..100 {
            fail(&breaker);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
