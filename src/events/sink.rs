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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ::metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder};

    use super::*;
    use crate::{domain::PhoneNumber, events::EventKind};

    /// Counts each counter increment by its key (name and labels).
    #[derive(Default)]
    struct CountingRecorder(Arc<Mutex<Vec<(String, u64)>>>);

    struct CountedKey(String, Arc<Mutex<Vec<(String, u64)>>>);

    impl CounterFn for CountedKey {
        fn increment(&self, value: u64) {
            if let Ok(mut counts) = self.1.lock() {
                counts.push((self.0.clone(), value));
            }
        }
        fn absolute(&self, _: u64) {}
    }

    impl Recorder for CountingRecorder {
        fn describe_counter(
            &self,
            _: KeyName,
            _: Option<::metrics::Unit>,
            _: ::metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: KeyName,
            _: Option<::metrics::Unit>,
            _: ::metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: KeyName,
            _: Option<::metrics::Unit>,
            _: ::metrics::SharedString,
        ) {
        }
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            Counter::from_arc(Arc::new(CountedKey(name, Arc::clone(&self.0))))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    fn an_event() -> AuditEvent {
        let phone = PhoneNumber::parse("+14155550123").expect("valid");
        AuditEvent::about(EventKind::Sent, &phone)
    }

    #[test]
    fn events_after_the_writer_stopped_are_dropped_as_writer_stopped() {
        let recorder = CountingRecorder::default();
        let (sink, receiver, overflowed) = EventSink::channel(4);
        drop(receiver);
        ::metrics::with_local_recorder(&recorder, || sink.emit(an_event));
        let counted = recorder.0.lock().expect("counts").clone();
        assert_eq!(
            counted,
            [(
                "otp_events_dropped_total{reason=writer_stopped}".to_owned(),
                1
            )]
        );
        assert_eq!(overflowed.load(Ordering::Relaxed), 0, "not an overflow");
    }

    #[test]
    fn events_past_a_full_queue_are_dropped_as_queue_full() {
        let recorder = CountingRecorder::default();
        let (sink, _receiver, overflowed) = EventSink::channel(1);
        ::metrics::with_local_recorder(&recorder, || {
            sink.emit(an_event);
            sink.emit(an_event);
        });
        let counted = recorder.0.lock().expect("counts").clone();
        assert_eq!(
            counted,
            [("otp_events_dropped_total{reason=queue_full}".to_owned(), 1)]
        );
        assert_eq!(overflowed.load(Ordering::Relaxed), 1);
    }
}
