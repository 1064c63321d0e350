//! The background task that appends queued events to the Redis Stream, off
//! the request path, in batches (one round trip for whatever has queued),
//! and trims the stream by age, so it never holds events much older than
//! `OTP_EVENTS_MAX_AGE_SECONDS` whether or not new ones arrive.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};

use super::{AuditEvent, EventSink, EventsConfig, sink::QUEUE_CAPACITY};
use crate::{domain::HmacKeys, metrics, store::RedisStreamAppender};

/// Most events written in one round trip.
const BATCH: usize = 256;
/// How long the writer lets a batch fill after its first event: one round
/// trip per few milliseconds rather than one per event under load, at the
/// price of events reaching the stream that much later.
const LINGER: Duration = Duration::from_millis(5);
/// Drops are logged at most once per this interval (they are always counted).
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The stream is trimmed by age this often (or as often as the age bound,
/// if that is shorter), and once at startup: events outlive the bound by at
/// most this much, for one cheap command per replica per interval.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// The running writer. [`EventWriter::finish`] stops it after it has
/// written what is queued.
pub struct EventWriter {
    /// Handed to the flow; kept here too so the queue outlives any one user.
    sink: EventSink,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl EventWriter {
    /// Starts the writer on the current Tokio runtime; events given to the
    /// writer's [`EventWriter::sink`] are appended to `config.stream` through
    /// `appender`, the number in them digested with `keys`
    /// ([`HmacKeys::event_subject`]).
    pub fn start(config: &EventsConfig, appender: RedisStreamAppender, keys: HmacKeys) -> Self {
        let (sink, queue, overflowed) = EventSink::channel(QUEUE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let writer = Writer {
            appender,
            max_age: config.max_age,
            replica: config.replica.clone(),
            keys,
            overflowed,
            drops: DropReport::default(),
        };
        let task = tokio::spawn(writer.run(queue, stopped));
        tracing::info!(
            stream = %config.stream,
            maxlen = config.maxlen,
            max_age_seconds = config.max_age.as_secs(),
            replica = %config.replica,
            "audit events: appended to a Redis stream (at most once)"
        );
        Self { sink, stop, task }
    }

    /// Where the flow hands its events.
    pub fn sink(&self) -> EventSink {
        self.sink.clone()
    }

    /// Takes no more events and waits (at most `wait`) for the ones still
    /// queued to be written.
    pub async fn finish(self, wait: Duration) {
        let _ = self.stop.send(());
        if tokio::time::timeout(wait, self.task).await.is_err() {
            tracing::warn!("audit events still queued at shutdown were not written");
        }
    }
}

/// The task's state: where entries go and what was lost.
struct Writer {
    appender: RedisStreamAppender,
    /// Events older than this are trimmed.
    max_age: Duration,
    replica: String,
    /// Key the number's digest in each event.
    keys: HmacKeys,
    /// Events the sinks dropped on a full queue (see [`EventSink::emit`]).
    overflowed: Arc<AtomicU64>,
    drops: DropReport,
}

impl Writer {
    /// Writes batches until stopped (then drains what is queued) or until
    /// every sink is gone.
    async fn run(mut self, mut queue: mpsc::Receiver<AuditEvent>, mut stop: oneshot::Receiver<()>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut stopping = false;
        // The first tick is at once: a stream left by an earlier run is
        // trimmed at startup, before any event is written.
        let mut trims = tokio::time::interval(TRIM_EVERY.min(self.max_age));
        trims.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                received = queue.recv_many(&mut batch, BATCH) => received,
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    queue.close();
                    continue;
                }
                _ = trims.tick(), if !stopping => {
                    self.trim().await;
                    continue;
                }
            };
            if received == 0 {
                break;
            }
            linger(&mut queue, &mut batch).await;
            self.write(&mut batch).await;
        }
        self.drops.log_if_due();
    }

    /// Trims events past the age bound. A failure loses nothing and is
    /// retried at the next tick; it is logged at debug level only, as the
    /// appends that fail alike are already counted and logged.
    async fn trim(&self) {
        if let Err(err) = self.appender.trim_older_than(self.max_age).await {
            tracing::debug!(error = %err, "could not trim the audit event stream by age");
        }
    }

    async fn write(&mut self, batch: &mut Vec<AuditEvent>) {
        let entries: Vec<_> = batch
            .drain(..)
            .map(|event| event.fields(&self.replica, &self.keys))
            .collect();
        if let Err(err) = self.appender.append(&entries).await {
            let lost = u64::try_from(entries.len()).unwrap_or(u64::MAX);
            metrics::events_dropped("stream_unwritable", lost);
            self.drops.unwritten(lost, err.to_string());
        }
        self.drops
            .overflowed(self.overflowed.swap(0, Ordering::Relaxed));
        self.drops.log_if_due();
    }
}

/// Lets events gather for [`LINGER`], then takes up to [`BATCH`] in all.
/// Sleeping rather than waiting on the queue means a batch costs one wake-up
/// of this task, not one per event.
async fn linger(queue: &mut mpsc::Receiver<AuditEvent>, batch: &mut Vec<AuditEvent>) {
    if batch.len() >= BATCH {
        return;
    }
    tokio::time::sleep(LINGER).await;
    while batch.len() < BATCH {
        match queue.try_recv() {
            Ok(event) => batch.push(event),
            Err(_) => return,
        }
    }
}

/// Drops since the last log line, so a Redis outage costs one line per
/// interval rather than one per event.
#[derive(Default)]
struct DropReport {
    unwritten: u64,
    overflowed: u64,
    last_error: Option<String>,
    last_logged: Option<Instant>,
}

impl DropReport {
    fn unwritten(&mut self, count: u64, error: String) {
        self.unwritten += count;
        self.last_error = Some(error);
    }

    fn overflowed(&mut self, count: u64) {
        self.overflowed += count;
    }

    fn log_if_due(&mut self) {
        if self.unwritten + self.overflowed == 0
            || self
                .last_logged
                .is_some_and(|at| at.elapsed() < DROP_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            unwritten = self.unwritten,
            queue_full = self.overflowed,
            error = self.last_error.as_deref().unwrap_or("none"),
            "audit events dropped (counted in otp_events_dropped_total)"
        );
        *self = Self {
            last_logged: Some(Instant::now()),
            ..Self::default()
        };
    }
}
