//! Runs the real `otp-service` binary as a child process, the way operators
//! and CI run it, and captures what it prints.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

/// A running service binary. Killed on drop if still running.
pub struct ServiceProcess {
    child: Child,
    pub addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect_lines(source: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            sink.lock().expect("lines lock").push(line);
        }
    });
    lines
}

impl ServiceProcess {
    /// Starts the binary on an OS-chosen loopback port with `vars` set (and
    /// nothing else from this environment) and waits until it listens.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_otp-service"))
            .env_clear()
            .env("OTP_LISTEN_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            // Off unless a test asks: tests run in parallel and would share 9464.
            .env("OTP_METRICS_ADDR", "")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stdout = collect_lines(child.stdout.take().expect("piped stdout"));
        let stderr = collect_lines(child.stderr.take().expect("piped stderr"));
        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
        };
        process.addr =
            process.wait_for_stderr("otp-service listening", Duration::from_secs(10), |line| {
                // The listening line carries `addr=<ip:port>`, in text or JSON logs.
                let start = line.find("127.0.0.1:")?;
                let rest = &line[start..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                    .unwrap_or(rest.len());
                rest[..end].parse().ok()
            });
        process
    }

    /// Lines printed on standard error (the log) so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("lines lock").clone()
    }

    /// Waits until a stdout line yields `Some` from `find`, or panics after `deadline`.
    pub fn wait_for_stdout<T>(
        &self,
        what: &str,
        deadline: Duration,
        find: impl Fn(&str) -> Option<T>,
    ) -> T {
        wait_for_line(&self.stdout, what, deadline, find)
    }

    /// Waits until a stderr (log) line yields `Some` from `find`, or panics after `deadline`.
    pub fn wait_for_stderr<T>(
        &self,
        what: &str,
        deadline: Duration,
        find: impl Fn(&str) -> Option<T>,
    ) -> T {
        let line_has = |line: &str| {
            if line.contains(what) {
                find(line)
            } else {
                None
            }
        };
        wait_for_line(&self.stderr, what, deadline, line_has)
    }

    /// Sends SIGTERM and waits (deadline 10 s) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(
                std::time::Instant::now() < give_up,
                "process did not exit within 10 s of SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_for_line<T>(
    lines: &Mutex<Vec<String>>,
    what: &str,
    deadline: Duration,
    find: impl Fn(&str) -> Option<T>,
) -> T {
    let give_up = std::time::Instant::now() + deadline;
    loop {
        if let Some(found) = lines
            .lock()
            .expect("lines lock")
            .iter()
            .find_map(|line| find(line))
        {
            return found;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "timed out after {deadline:?} waiting for output: {what}; got {:?}",
            lines.lock().expect("lines lock")
        );
        thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running binary whose standard error is read line by line.
pub struct RunningBinary {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<JoinHandle<()>>,
    /// Every stderr line received so far.
    pub seen: Vec<String>,
}

/// Starts the binary with exactly `vars` as its environment (nothing
/// inherited, so the developer's own settings cannot leak in).
pub fn start_binary(vars: &[(&str, &str)]) -> RunningBinary {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .env_clear()
        .env("OTP_METRICS_ADDR", "")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (sender, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    RunningBinary {
        child,
        lines,
        reader: Some(reader),
        seen: Vec::new(),
    }
}

impl RunningBinary {
    /// Waits (up to `deadline`) for a stderr line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, deadline: Duration) -> String {
        let give_up = Instant::now() + deadline;
        if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line containing {needle:?} within {deadline:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The gRPC address from the JSON "otp-service listening" log line
    /// (start the binary with `OTP_LOG_FORMAT=json` and port 0).
    pub fn listening_addr(&mut self) -> SocketAddr {
        let line = self.wait_for_line("otp-service listening", Duration::from_secs(10));
        let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        json.pointer("/fields/addr")
            .and_then(serde_json::Value::as_str)
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no addr in {line}"))
    }

    /// Waits (up to `deadline`) for the process to exit by itself.
    pub fn wait_for_exit(&mut self, deadline: Duration) -> ExitStatus {
        let give_up = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("process status") {
                self.drain();
                return status;
            }
            if Instant::now() >= give_up {
                let _ = self.child.kill();
                panic!("binary still running after {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process and returns every stderr line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
        std::mem::take(&mut self.seen)
    }

    fn drain(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.seen.extend(self.lines.try_iter());
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with exactly `vars` until it exits by itself (a binary
/// still running after 10 s fails the test); returns its exit code and stderr.
pub fn run_to_exit(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut binary = start_binary(vars);
    let status = binary.wait_for_exit(Duration::from_secs(10));
    (status.code(), binary.stop().join("\n"))
}
