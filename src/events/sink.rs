//! The request path's side of audit events: a bounded queue that never waits.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::mpsc::{self, error::TrySendError};

use super::AuditEvent;
use crate::metrics;

/// Events that may wait for the writer. At a few hundred bytes each this
/// bounds the memory a stalled Redis can cost; past it events are dropped.
pub const QUEUE_CAPACITY: usize = 8192;

/// Where the flow hands its events. Cheap to clone. Disabled (the default)
/// it builds nothing and queues nothing.
#[derive(Clone, Debug, Default)]
pub struct EventSink {
    queue: Option<mpsc::Sender<AuditEvent>>,
    /// Events dropped because the queue was full, since the writer last
    /// logged them (the writer logs and resets this once per interval).
    overflowed: Arc<AtomicU64>,
}

impl EventSink {
    /// A sink that drops everything without building it (events off).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A sink and the receiving end its writer drains; `overflowed` is
    /// shared with the writer, which reports it.
    pub(super) fn channel(capacity: usize) -> (Self, mpsc::Receiver<AuditEvent>, Arc<AtomicU64>) {
        let (sender, receiver) = mpsc::channel(capacity);
        let overflowed = Arc::new(AtomicU64::new(0));
        let sink = Self {
            queue: Some(sender),
            overflowed: Arc::clone(&overflowed),
        };
        (sink, receiver, overflowed)
    }

    /// Whether events are being recorded.
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues the event `build` makes, if events are on. Never waits: with
    /// the queue full the event is dropped and counted.
    pub fn emit(&self, build: impl FnOnce() -> AuditEvent) {
        let Some(queue) = &self.queue else {
            return;
        };
        match queue.try_send(build()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::event_dropped("queue_full");
                self.overflowed.fetch_add(1, Ordering::Relaxed);
            }
            // Only while shutting down, after the writer stopped.
            Err(TrySendError::Closed(_)) => metrics::event_dropped("writer_stopped"),
        }
    }
}
