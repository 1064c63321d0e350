//! The real `otp-service` binary, run as an operator would: environment in,
//! exit code and standard error out.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

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
