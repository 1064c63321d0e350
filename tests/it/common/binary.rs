//! Runs the real `otp-service` binary as a child process, the way operators
//! and CI run it, and captures what it prints: the one harness for every
//! test that needs the process (logs, metrics, signals, startup errors).

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

/// A running (or exited) service binary. Killed on drop if still running.
pub struct ServiceProcess {
    child: Child,
    /// The gRPC address, once [`ServiceProcess::start`] saw it listening.
    pub addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Collects the lines of `source` on a thread of its own.
fn collect_lines(
    source: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let reader = thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            sink.lock().expect("lines lock").push(line);
        }
    });
    (lines, reader)
}

/// Runs `wait` (a wait that blocks its thread: polling a child process or
/// its output) where it cannot stall the async workers: on a multi-thread
/// Tokio runtime through `block_in_place`, so the test's own client tasks
/// keep running meanwhile.
fn blocking_wait<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// What a binary started with its own `/metrics` listener says when another
/// process took the port between choosing and binding it.
const METRICS_PORT_TAKEN: &str = "cannot serve metrics on";

impl ServiceProcess {
    /// [`ServiceProcess::start`] with `/metrics` served on a free loopback
    /// port; returns the process and that address. A port chosen free can
    /// be taken by a parallel test before the binary binds it: the binary
    /// then exits saying so, and the start is tried again on another port.
    pub fn start_with_metrics(vars: &[(&str, &str)]) -> (Self, String) {
        for _ in 0..5 {
            let metrics_addr = free_loopback_addr();
            let mut env = vars.to_vec();
            env.push(("OTP_METRICS_ADDR", &metrics_addr));
            let mut env_with_listen =
                vec![("OTP_LISTEN_ADDR", "127.0.0.1:0"), ("RUST_LOG", "info")];
            env_with_listen.extend_from_slice(&env);
            let mut process = Self::spawn(&env_with_listen);
            let started = blocking_wait(|| {
                let give_up = Instant::now() + Duration::from_secs(10);
                loop {
                    let lines = process.stderr();
                    if lines.iter().any(|line| line.contains(METRICS_PORT_TAKEN)) {
                        return None;
                    }
                    if let Some(addr) = lines.iter().find_map(|line| listening_addr(line)) {
                        return Some(addr);
                    }
                    assert!(
                        Instant::now() < give_up,
                        "binary not listening after 10 s: {lines:?}"
                    );
                    thread::sleep(Duration::from_millis(20));
                }
            });
            if let Some(addr) = started {
                process.addr = addr;
                return (process, metrics_addr);
            }
            let _ = process.stop();
        }
        panic!("no free metrics port in 5 tries");
    }

    /// Starts the binary on an OS-chosen loopback port with `vars` set (and
    /// nothing else from this environment) and waits until it listens.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        Self::start_program(env!("CARGO_BIN_EXE_otp-service"), vars)
    }

    /// [`ServiceProcess::start`] for another build of the service at
    /// `program` (an older version, for a rolling upgrade).
    pub fn start_program(program: &str, vars: &[(&str, &str)]) -> Self {
        let mut env = vec![("OTP_LISTEN_ADDR", "127.0.0.1:0"), ("RUST_LOG", "info")];
        env.extend_from_slice(vars);
        let mut process = Self::spawn_program(program, &[], &env);
        process.addr = process.wait_for_stderr(
            "otp-service listening",
            Duration::from_secs(10),
            listening_addr,
        );
        process
    }

    /// Starts the binary with exactly `vars` as its environment (nothing
    /// inherited, so the developer's own settings cannot leak in; metrics
    /// off unless asked, as tests in parallel would share 9464), without
    /// waiting for anything.
    pub fn spawn(vars: &[(&str, &str)]) -> Self {
        Self::spawn_with_args(&[], vars)
    }

    /// [`ServiceProcess::spawn`] with command-line arguments.
    pub fn spawn_with_args(args: &[&str], vars: &[(&str, &str)]) -> Self {
        Self::spawn_program(env!("CARGO_BIN_EXE_otp-service"), args, vars)
    }

    fn spawn_program(program: &str, args: &[&str], vars: &[(&str, &str)]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .env_clear()
            .env("OTP_METRICS_ADDR", "")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let (stdout, stdout_reader) = collect_lines(child.stdout.take().expect("piped stdout"));
        let (stderr, stderr_reader) = collect_lines(child.stderr.take().expect("piped stderr"));
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout,
            stderr,
            readers: vec![stdout_reader, stderr_reader],
        }
    }

    /// Lines printed on standard output so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("lines lock").clone()
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

    /// Waits until a stderr (log) line containing `what` yields `Some` from
    /// `find`, or panics after `deadline`.
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
        self.signal("TERM")
    }

    /// Sends SIGINT (Ctrl-C) and waits (deadline 10 s) for the exit status.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.signal("INT")
    }

    fn signal(&mut self, name: &str) -> ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
        self.wait_for_exit(Duration::from_secs(10))
    }

    /// Waits (up to `deadline`) for the process to exit by itself; then
    /// every line it printed has been read.
    pub fn wait_for_exit(&mut self, deadline: Duration) -> ExitStatus {
        let give_up = Instant::now() + deadline;
        blocking_wait(|| {
            loop {
                if let Some(status) = self.child.try_wait().expect("process status") {
                    self.join_readers();
                    return status;
                }
                if Instant::now() >= give_up {
                    let _ = self.child.kill();
                    panic!("binary still running after {deadline:?}");
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    }

    /// Stops the process (SIGKILL if still running) and returns every
    /// stderr line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
        self.stderr()
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// The gRPC address on the binary's listening line (`addr=<ip:port>`, in
/// text or JSON logs).
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("otp-service listening") {
        return None;
    }
    let start = line.find("127.0.0.1:")?;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A loopback address that was free a moment ago (see
/// [`ServiceProcess::start_with_metrics`] for the race this leaves).
pub fn free_loopback_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    format!("127.0.0.1:{port}")
}

fn wait_for_line<T>(
    lines: &Mutex<Vec<String>>,
    what: &str,
    deadline: Duration,
    find: impl Fn(&str) -> Option<T>,
) -> T {
    blocking_wait(|| wait_for_line_here(lines, what, deadline, find))
}

fn wait_for_line_here<T>(
    lines: &Mutex<Vec<String>>,
    what: &str,
    deadline: Duration,
    find: impl Fn(&str) -> Option<T>,
) -> T {
    let give_up = Instant::now() + deadline;
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
            Instant::now() < give_up,
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

/// Runs the binary with exactly `vars` until it exits by itself (a binary
/// still running after 10 s fails the test); returns its exit code and stderr.
pub fn run_to_exit(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let (code, _, stderr) = run_args_to_exit(&[], vars);
    (code, stderr)
}

/// [`run_to_exit`] with command-line arguments; returns the exit code,
/// stdout and stderr.
pub fn run_args_to_exit(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut binary = ServiceProcess::spawn_with_args(args, vars);
    let status = binary.wait_for_exit(Duration::from_secs(10));
    let stdout = binary.stdout().join("\n");
    (status.code(), stdout, binary.stop().join("\n"))
}
