//! The log writer: a line is appended to a shared buffer on the thread that
//! logs it, and one writer thread writes the buffer out in batches.
//!
//! tracing-appender's non-blocking writer (used before) hands every line to
//! its thread through a channel, waking the thread whenever the channel had
//! run empty: at moderate load that was one futex wake, one context switch
//! and one `write` every other call, on the core serving the calls (about
//! 5 µs of a 45 µs VerifyOtp on Redis at 12 600 calls a second, and most of
//! its p99; BENCHMARKS.md, issue 14). Here the first line into an empty
//! buffer wakes the thread, which then waits [`BATCH_DELAY`] for more before
//! writing them all in one `write`: at most ~100 wakes a second however busy
//! the service is, none while it is idle.

use std::{
    io::{self, Write},
    mem,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::{self, JoinHandle},
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread collects lines before writing them: the most
/// a line waits before it reaches standard error.
pub(super) const BATCH_DELAY: Duration = Duration::from_millis(10);

/// Bytes that may wait for the writer thread (several thousand lines, over
/// 0.1 s at full load). When the buffer is fuller, logging callers wait for
/// the writer (nothing is dropped): the INFO line of each call is the audit
/// trail, so back-pressure is preferred to losing lines.
pub(super) const MAX_BUFFERED_BYTES: usize = 1 << 20;

/// A batch buffer larger than this after a burst is given back rather than
/// kept for the next batch.
const KEPT_CAPACITY: usize = 256 << 10;

/// Where the log layer writes: every clone appends to the same buffer.
#[derive(Clone)]
pub(super) struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Keeps the writer thread running; dropping it writes out every buffered
/// line and stops the thread.
#[must_use = "dropping the guard stops the log writer"]
pub(super) struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled on the first line into an empty buffer, when the buffer is
    /// full, and at shutdown.
    lines_waiting: Condvar,
    /// Signalled whenever the writer takes the buffer, for callers waiting
    /// on a full one.
    buffer_taken: Condvar,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closing: bool,
}

impl BatchedWriter {
    /// Starts a writer thread named `thread_name` that writes to `out`.
    pub(super) fn start<W>(out: W, thread_name: &str) -> io::Result<(Self, WriterGuard)>
    where
        W: Write + Send + 'static,
    {
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            lines_waiting: Condvar::new(),
            buffer_taken: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || for_thread.write_batches(out))?;
        Ok((
            Self {
                shared: Arc::clone(&shared),
            },
            WriterGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

impl Write for BatchedWriter {
    /// Appends `bytes` whole: a line is never split between batches.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let shared = &self.shared;
        let mut pending = shared.lock();
        while pending.lines.len() >= MAX_BUFFERED_BYTES && !pending.closing {
            shared.lines_waiting.notify_one();
            pending = shared
                .buffer_taken
                .wait(pending)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if pending.closing && pending.lines.len() >= MAX_BUFFERED_BYTES {
            // The writer has stopped (the process is exiting): nothing will
            // write these out, so do not hold on to them.
            return Ok(bytes.len());
        }
        let was_empty = pending.lines.is_empty();
        pending.lines.extend_from_slice(bytes);
        drop(pending);
        if was_empty {
            shared.lines_waiting.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Shared {
    /// Locks the buffer, ignoring poisoning: every change to it is one
    /// append or one swap, so a panic elsewhere cannot leave it half-changed.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writer thread: waits for a first line, lets more gather for
    /// [`BATCH_DELAY`] (less when the buffer fills or the service stops),
    /// then writes them all at once; returns once closing with nothing left.
    fn write_batches(&self, mut out: impl Write) {
        let mut batch = Vec::new();
        loop {
            let mut pending = self.lock();
            while pending.lines.is_empty() && !pending.closing {
                pending = self
                    .lines_waiting
                    .wait(pending)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            if pending.lines.is_empty() {
                return;
            }
            if !pending.closing && pending.lines.len() < MAX_BUFFERED_BYTES {
                pending = self
                    .lines_waiting
                    .wait_timeout(pending, BATCH_DELAY)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
            mem::swap(&mut pending.lines, &mut batch);
            drop(pending);
            self.buffer_taken.notify_all();
            // Nowhere to report a failed write of the log itself; the lines
            // are dropped, as any logger writing to a closed stderr would.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
            if batch.capacity() > KEPT_CAPACITY {
                batch = Vec::new();
            }
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.lines_waiting.notify_one();
        self.shared.buffer_taken.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests;
