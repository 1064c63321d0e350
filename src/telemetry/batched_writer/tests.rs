use std::{
    io::{self, Write},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use super::{BatchedWriter, MAX_BUFFERED_BYTES};

/// What the writer thread wrote, and how many `write_all` batches it took.
#[derive(Clone, Default)]
struct Sink {
    bytes: Arc<Mutex<Vec<u8>>>,
    writes: Arc<Mutex<usize>>,
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().expect("sink lock").clone()).expect("UTF-8")
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.bytes
            .lock()
            .expect("sink lock")
            .extend_from_slice(bytes);
        *self.writes.lock().expect("sink lock") += 1;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn line(i: usize) -> String {
    format!("line {i:06} {}\n", "x".repeat(40))
}

fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_line_reaches_the_output_without_shutting_down() {
    let sink = Sink::default();
    let (mut writer, _guard) = BatchedWriter::start(sink.clone(), "test-log").expect("thread");
    writer.write_all(b"first\n").expect("write");
    wait_for("the first line", Duration::from_secs(5), || {
        sink.text() == "first\n"
    });
    writer.write_all(b"second\n").expect("write");
    wait_for("the second line", Duration::from_secs(5), || {
        sink.text() == "first\nsecond\n"
    });
}

#[test]
fn lines_from_many_threads_arrive_whole_and_in_each_threads_order() {
    let sink = Sink::default();
    let (writer, guard) = BatchedWriter::start(sink.clone(), "test-log").expect("thread");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mut writer = writer.clone();
            thread::spawn(move || {
                for i in 0..5_000 {
                    writer
                        .write_all(format!("t{t} {}", line(i)).as_bytes())
                        .expect("write");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer thread");
    }
    drop(guard);
    let text = sink.text();
    assert_eq!(text.lines().count(), 20_000);
    for t in 0..4 {
        let own: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("t{t} ")))
            .collect();
        let expected: Vec<String> = (0..5_000).map(|i| line(i).trim_end().to_owned()).collect();
        assert_eq!(own, expected, "thread {t}'s lines");
    }
    // Batched: far fewer writes than lines.
    let writes = *sink.writes.lock().expect("sink lock");
    assert!(writes < 2_000, "{writes} writes for 20 000 lines");
}

#[test]
fn dropping_the_guard_writes_out_every_buffered_line() {
    let sink = Sink::default();
    let (mut writer, guard) = BatchedWriter::start(sink.clone(), "test-log").expect("thread");
    for i in 0..1_000 {
        writer.write_all(line(i).as_bytes()).expect("write");
    }
    drop(guard);
    let expected: String = (0..1_000).map(line).collect();
    assert_eq!(sink.text(), expected);
}

/// An output that blocks until released, as a stalled pipe would.
struct Stalled {
    release: mpsc::Receiver<()>,
    sink: Sink,
}

impl Write for Stalled {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let _ = self.release.recv();
        self.sink.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stalled_output_makes_callers_wait_instead_of_dropping_lines() {
    let sink = Sink::default();
    let (release, released) = mpsc::channel();
    let stalled = Stalled {
        release: released,
        sink: sink.clone(),
    };
    let (writer, guard) = BatchedWriter::start(stalled, "test-log").expect("thread");
    let line_len = line(0).len();
    // Enough for the stalled batch plus a full buffer, and more.
    let lines = 3 * MAX_BUFFERED_BYTES / line_len;
    let (progress_tx, progress) = mpsc::channel();
    let logger = {
        let mut writer = writer.clone();
        thread::spawn(move || {
            for i in 0..lines {
                writer.write_all(line(i).as_bytes()).expect("write");
                let _ = progress_tx.send(i);
            }
        })
    };
    // The logger gets well ahead, then blocks: the buffer is full and the
    // writer is stuck in its first write.
    let mut written = 0;
    loop {
        match progress.recv_timeout(Duration::from_millis(500)) {
            Ok(i) => written = i + 1,
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("logger finished past a stall"),
        }
    }
    assert!(written < lines, "the logger never waited");
    let buffered = writer.shared.lock().lines.len();
    assert!(
        buffered < MAX_BUFFERED_BYTES + line_len,
        "{buffered} bytes buffered"
    );
    // Unblock the output for good: every line arrives, in order.
    thread::spawn(move || while release.send(()).is_ok() {});
    logger.join().expect("logger");
    drop(guard);
    let expected: String = (0..lines).map(line).collect();
    assert!(sink.text() == expected, "lines lost or out of order");
}
